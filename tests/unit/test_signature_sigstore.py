"""Cosign key-based signatures, the cosign artifact manifest, and check_image over policies."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from berth.errors import InvalidArgument, PolicyDenied, UnsafeContent
from berth.image.reference import parse_reference
from berth.image.signature import (
    SigstoreSig,
    StaticSignatures,
    build_cosign_artifact,
    check_image,
    cosign_signature_tag,
    parse_cosign_manifest,
    parse_policy,
    sign_sigstore,
    sigstore_sig_from_blob,
    verify_sigstore,
)
from berth.image.signature.common import SignatureRejected
from berth.image.signature.cosign import SIGNATURE_ANNOTATION, SIMPLESIGNING_MEDIA_TYPE

MANIFEST = b'{"schemaVersion":2,"config":{},"layers":[]}'
DIGEST = "sha256:" + hashlib.sha256(MANIFEST).hexdigest()
REF = "registry.example.com/team/app:v1"

KEYS = {
    "ec": ec.generate_private_key(ec.SECP256R1()),
    "ec384": ec.generate_private_key(ec.SECP384R1()),
    "rsa": rsa.generate_private_key(65537, 2048),
    "ed25519": ed25519.Ed25519PrivateKey.generate(),
}
OTHER = ec.generate_private_key(ec.SECP256R1())


def pem(key: Any) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)


def policy_for(*keys: Any, identity: dict[str, str] | None = None, scope: str = "",
               origin: str = "policy") -> Any:
    req: dict[str, Any] = {"type": "sigstoreSigned"}
    if len(keys) == 1:
        req["keyData"] = base64.b64encode(pem(keys[0])).decode()
    else:
        req["keyDatas"] = [base64.b64encode(pem(k)).decode() for k in keys]
    if identity:
        req["signedIdentity"] = identity
    doc = {"default": [{"type": "reject"}], "transports": {"docker": {scope: [req]}}}
    return parse_policy(json.dumps(doc).encode(), origin=origin)


@pytest.mark.parametrize("kind", sorted(KEYS))
def test_sign_and_verify_round_trip(kind: str) -> None:
    key = KEYS[kind]
    payload, sig = sign_sigstore(DIGEST, REF, key, timestamp=5)
    claims = verify_sigstore([OTHER.public_key(), key.public_key()], payload, sig)
    assert (claims.manifest_digest, claims.docker_reference, claims.timestamp) == (
        DIGEST, REF, 5)
    doc = json.loads(payload)
    assert doc["critical"]["type"] == "cosign container image signature"


def test_verification_refuses_tampering_and_other_keys() -> None:
    key = KEYS["ec"]
    payload, sig = sign_sigstore(DIGEST, REF, key)
    with pytest.raises(SignatureRejected, match="no signature from a trusted key"):
        verify_sigstore([OTHER.public_key()], payload, sig)
    with pytest.raises(SignatureRejected, match="no signature from a trusted key"):
        verify_sigstore([key.public_key()], payload.replace(b"team", b"tean"), sig)
    raw = bytearray(base64.b64decode(sig))
    raw[-1] ^= 1
    with pytest.raises(SignatureRejected, match="no signature from a trusted key"):
        verify_sigstore([key.public_key()], payload, base64.b64encode(raw).decode())
    with pytest.raises(SignatureRejected, match="not valid base64"):
        verify_sigstore([key.public_key()], payload, "!!")


def _signed(doc: bytes, key: Any = KEYS["ec"]) -> tuple[bytes, str]:
    return doc, base64.b64encode(key.sign(doc, ec.ECDSA(hashes.SHA256()))).decode()


def test_cosign_payload_forms() -> None:
    key = KEYS["ec"]
    crit = (b'{"critical":{"identity":{"docker-reference":"a.io/x"},"image":{"docker-manifest-'
            b'digest":"' + DIGEST.encode() + b'"},"type":"cosign container image signature"},')
    claims = verify_sigstore([key.public_key()], *_signed(crit + b'"optional":null}'))
    assert claims.docker_reference == "a.io/x" and claims.creator is None
    claims = verify_sigstore([key.public_key()],
                             *_signed(crit + b'"optional":{"creator":"cosign","x":[1]}}'))
    assert claims.creator == "cosign"
    with pytest.raises(SignatureRejected, match="unknown field 'extra'"):
        verify_sigstore([key.public_key()], *_signed(
            crit.replace(b'"type"', b'"extra":1,"type"') + b'"optional":null}'))
    with pytest.raises(SignatureRejected, match="unrecognized signature type"):
        verify_sigstore([key.public_key()], *_signed(
            crit.replace(b"cosign container image", b"atomic container") + b'"optional":{}}'))


def test_cosign_artifact_round_trip() -> None:
    sigs = [SigstoreSig(*sign_sigstore(DIGEST, REF, KEYS["ec"])),
            SigstoreSig(*sign_sigstore(DIGEST, REF, KEYS["rsa"], timestamp=1))]
    artifact = build_cosign_artifact(DIGEST, sigs)
    assert artifact.tag == f"sha256-{DIGEST[7:]}.sig" == cosign_signature_tag(DIGEST)
    doc = json.loads(artifact.manifest)
    assert doc["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    assert doc["config"]["digest"] in artifact.blobs
    layers = parse_cosign_manifest(artifact.manifest)
    assert [layer.signature_b64 for layer in layers] == [s.signature_b64 for s in sigs]
    again = [sigstore_sig_from_blob(layer, artifact.blobs[layer.digest]) for layer in layers]
    assert again == sigs
    with pytest.raises(UnsafeContent, match="does not match"):
        sigstore_sig_from_blob(layers[0], artifact.blobs[layers[1].digest])


def _manifest(layers: list[Any], **top: Any) -> bytes:
    return json.dumps({"schemaVersion": 2, "layers": layers, **top}).encode()


def _layer(**fields: Any) -> dict[str, Any]:
    base = {"mediaType": SIMPLESIGNING_MEDIA_TYPE, "digest": DIGEST, "size": 10,
            "annotations": {SIGNATURE_ANNOTATION: "c2ln"}}
    return {**base, **fields}


def test_cosign_manifest_parsing_is_bounded_and_skips_other_layers() -> None:
    layers = parse_cosign_manifest(_manifest([
        _layer(), _layer(mediaType="application/vnd.oci.image.layer.v1.tar"),
        _layer(annotations={"other": "x"})]))
    assert [(layer.digest, layer.signature_b64) for layer in layers] == [(DIGEST, "c2ln")]
    for bad, message in [
        (b"[]", "not an OCI manifest"),
        (b'{"schemaVersion":2,"schemaVersion":2,"layers":[]}', "duplicate field"),
        (_manifest([], mediaType="application/vnd.docker.distribution.manifest.v2+json"),
         "unexpected mediaType"),
        (_manifest([_layer()] * 65), "more than 64 layers"),
        (_manifest([_layer(size=5 << 20)]), "size must be"),
        (_manifest([_layer(digest="sha256:../../x")]), "digest is invalid"),
        (b" " * (5 << 20), "larger than"),
    ]:
        with pytest.raises(UnsafeContent, match=message):
            parse_cosign_manifest(bad)


def test_check_image_accepts_and_explains_refusals() -> None:
    key = KEYS["ed25519"]
    good = SigstoreSig(*sign_sigstore(DIGEST, REF, key))
    other = SigstoreSig(*sign_sigstore(DIGEST, REF, OTHER))
    ref = parse_reference(REF)
    check_image([policy_for(key)], ref, MANIFEST, DIGEST, StaticSignatures(sigstore=[good]))
    check_image([policy_for(OTHER, key)], ref, MANIFEST, DIGEST,
                StaticSignatures(sigstore=[other]))
    with pytest.raises(PolicyDenied) as err:
        check_image([policy_for(key)], ref, MANIFEST, DIGEST, StaticSignatures(sigstore=[other]))
    assert err.value.message == (
        "image registry.example.com/team/app:v1 refused by policy: no signature from a trusted "
        "key (required by the docker transport default)")
    with pytest.raises(PolicyDenied, match="signature 1: no signature from a trusted key; "
                                           "signature 2: signed identity"):
        wrong_ref = SigstoreSig(*sign_sigstore(DIGEST, "registry.example.com/team/app:v0", key))
        check_image([policy_for(key)], ref, MANIFEST, DIGEST,
                    StaticSignatures(sigstore=[other, wrong_ref]))
    with pytest.raises(PolicyDenied, match="no sigstore signatures"):
        check_image([policy_for(key)], ref, MANIFEST, DIGEST, StaticSignatures())
    repo_only = SigstoreSig(*sign_sigstore(DIGEST, "registry.example.com/team/app", key))
    with pytest.raises(PolicyDenied, match="signed identity registry.example.com/team/app does "
                                           "not match registry.example.com/team/app:v1"):
        check_image([policy_for(key)], ref, MANIFEST, DIGEST,
                    StaticSignatures(sigstore=[repo_only]))
    check_image([policy_for(key, identity={"type": "matchRepository"})], ref, MANIFEST, DIGEST,
                StaticSignatures(sigstore=[repo_only]))


def test_digest_checks() -> None:
    key = KEYS["ec"]
    good = StaticSignatures(sigstore=[SigstoreSig(*sign_sigstore(DIGEST, REF, key))])
    ref = parse_reference(REF)
    with pytest.raises(PolicyDenied, match="manifest digest mismatch"):
        check_image([policy_for(key)], ref, MANIFEST + b" ", DIGEST, good)
    other = b'{"schemaVersion":2}'
    other_digest = "sha256:" + hashlib.sha256(other).hexdigest()
    with pytest.raises(PolicyDenied, match=f"signature is for digest {DIGEST} not "
                                           f"{other_digest}"):
        check_image([policy_for(key)], ref, other, other_digest, good)
    pinned = parse_reference(f"registry.example.com/team/app@{other_digest}")
    with pytest.raises(PolicyDenied, match="pins digest"):
        check_image([policy_for(key)], pinned, MANIFEST, DIGEST, good)
    by_digest = parse_reference(f"registry.example.com/team/app@{DIGEST}")
    check_image([policy_for(key)], by_digest, MANIFEST, DIGEST, good)  # repo match by digest
    sha512 = "sha512:" + hashlib.sha512(MANIFEST).hexdigest()
    check_image([policy_for(key)], ref, MANIFEST, sha512, good)
    with pytest.raises(InvalidArgument, match="invalid manifest digest"):
        check_image([policy_for(key)], ref, MANIFEST, "md5:00", good)
    with pytest.raises(InvalidArgument, match="no signature policy"):
        check_image([], ref, MANIFEST, DIGEST, good)


class CountingSource:
    def __init__(self, sigs: list[SigstoreSig]) -> None:
        self.sigs = sigs
        self.calls = {"simple": 0, "sigstore": 0}

    def simple_signatures(self) -> list[bytes]:
        self.calls["simple"] += 1
        return []

    def sigstore_signatures(self) -> list[SigstoreSig]:
        self.calls["sigstore"] += 1
        return self.sigs


def test_every_policy_must_accept() -> None:
    key, project_key = KEYS["ec"], KEYS["rsa"]
    host = policy_for(key, origin="host policy")
    project = policy_for(project_key, origin="project policy")
    ref = parse_reference(REF)
    by_host = SigstoreSig(*sign_sigstore(DIGEST, REF, key))
    by_project = SigstoreSig(*sign_sigstore(DIGEST, REF, project_key))
    source = CountingSource([by_host, by_project])
    check_image([host, project], ref, MANIFEST, DIGEST, source)
    assert source.calls == {"simple": 0, "sigstore": 1}  # fetched once, GPG never
    with pytest.raises(PolicyDenied, match="refused by project policy: no signature from a "
                                           "trusted key"):
        check_image([host, project], ref, MANIFEST, DIGEST, CountingSource([by_host]))
    accept_all = parse_policy(b'{"default": [{"type": "insecureAcceptAnything"}]}')
    source = CountingSource([])
    check_image([accept_all], ref, MANIFEST, DIGEST, source)
    assert source.calls == {"simple": 0, "sigstore": 0}
    strict = parse_policy(json.dumps({
        "default": [{"type": "insecureAcceptAnything"}],
        "transports": {"docker": {"registry.example.com/team": [{"type": "reject"}]}}}).encode(),
        origin="project acme policy")
    with pytest.raises(PolicyDenied) as err:
        check_image([accept_all, strict], ref, MANIFEST, DIGEST, source)
    assert err.value.message == (
        "image registry.example.com/team/app:v1 refused by project acme policy: rejected by "
        "policy for docker scope 'registry.example.com/team'")
    assert err.value.status == 403


def test_signature_count_is_bounded() -> None:
    key = KEYS["ec"]
    sig = SigstoreSig(*sign_sigstore(DIGEST, REF, key))
    with pytest.raises(PolicyDenied, match="too many sigstore signatures"):
        check_image([policy_for(key)], parse_reference(REF), MANIFEST, DIGEST,
                    StaticSignatures(sigstore=[sig] * 65))

"""Signature interop with the real tools: skopeo signs, Berth verifies; Berth signs, skopeo
verifies — for GPG "simple signing" (lookaside storage) and cosign key-based sigstore signatures
(``sha256-<hex>.sig`` attachments in the registry), against Debian's docker-registry.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import secrets
import shutil
import subprocess
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from berth.errors import PolicyDenied
from berth.image.reference import Reference, parse_reference
from berth.image.signature import (
    SigstoreSig,
    StaticSignatures,
    build_cosign_artifact,
    check_image,
    cosign_signature_tag,
    load_policy,
    load_registries_dir,
    parse_cosign_manifest,
    read_signatures,
    sign_sigstore,
    sign_simple,
    sigstore_sig_from_blob,
    write_signatures,
)
from tests.gpghome import GpgHome
from tests.integration.registry import REGISTRY_BIN, Registry, start_registry
from tests.unit.test_signature_simple import payload

pytestmark = pytest.mark.skipif(
    not all(shutil.which(t) for t in ("gpg", "skopeo")) or not Path(REGISTRY_BIN).exists(),
    reason="needs gpg, skopeo and docker-registry")

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
ACCEPT = f"{OCI_MANIFEST}, application/vnd.docker.distribution.manifest.v2+json"


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def make_oci_layout(root: Path, tag: str, content: bytes) -> None:
    """A one-layer OCI image layout, written by hand."""
    blobs = root / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)

    def put(data: bytes) -> dict[str, object]:
        (blobs / _digest(data)[7:]).write_bytes(data)
        return {"digest": _digest(data), "size": len(data)}

    tar_buf = io.BytesIO()
    with tarfile.open(fileobj=tar_buf, mode="w") as tar:
        info = tarfile.TarInfo("hello.txt")
        info.size, info.mtime = len(content), 0
        tar.addfile(info, io.BytesIO(content))
    layer = gzip.compress(tar_buf.getvalue(), mtime=0)
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {},
                         "rootfs": {"type": "layers",
                                    "diff_ids": [_digest(tar_buf.getvalue())]}}).encode()
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **put(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", **put(layer)}],
    }).encode()
    index = {"schemaVersion": 2, "manifests": [{
        "mediaType": OCI_MANIFEST, **put(manifest),
        "annotations": {"org.opencontainers.image.ref.name": tag}}]}
    (root / "index.json").write_text(json.dumps(index))
    (root / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')


# --- fixtures ------------------------------------------------------------------------------------

@dataclass
class Env:
    dir: Path
    registry: Registry
    gpg: GpgHome
    trusted: str
    other: str
    expired: str
    layout: Path
    layout2: Path
    http: httpx.Client

    @property
    def host(self) -> str:
        return self.registry.host

    def pubkey(self, fpr: str) -> Path:
        path = self.dir / f"{fpr}.gpg"
        if not path.exists():
            path.write_bytes(self.gpg.export(fpr))
        return path

    def skopeo(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "GNUPGHOME": str(self.gpg.path)}
        proc = subprocess.run(["skopeo", *args], capture_output=True, text=True, timeout=120,
                              env=env, check=False)
        if check and proc.returncode != 0:
            raise AssertionError(f"skopeo {' '.join(args)} failed:\n{proc.stderr}")
        return proc

    def push(self, repo_tag: str, *extra: str, regd: Path | None = None,
             layout: Path | None = None) -> None:
        regd_args = ["--registries.d", str(regd)] if regd else []
        self.skopeo("--insecure-policy", *regd_args, "copy", "--dest-tls-verify=false", *extra,
                    f"oci:{layout or self.layout}:v1", f"docker://{self.host}/{repo_tag}")

    def pull(self, repo_tag: str, policy: Path, regd: Path,
             check: bool = True) -> subprocess.CompletedProcess[str]:
        out = self.dir / f"pulled-{secrets.token_hex(4)}"
        return self.skopeo("--policy", str(policy), "--registries.d", str(regd), "copy",
                           "--src-tls-verify=false", "--remove-signatures",
                           f"docker://{self.host}/{repo_tag}",
                           f"oci:{out}:v1", check=check)

    def manifest(self, repo: str, reference: str) -> tuple[bytes, str]:
        resp = self.http.get(f"http://{self.host}/v2/{repo}/manifests/{reference}",
                             headers={"Accept": ACCEPT})
        resp.raise_for_status()
        return resp.content, _digest(resp.content)

    def blob(self, repo: str, digest: str) -> bytes:
        resp = self.http.get(f"http://{self.host}/v2/{repo}/blobs/{digest}")
        resp.raise_for_status()
        return resp.content

    def upload(self, repo: str, data: bytes) -> None:
        start = self.http.post(f"http://{self.host}/v2/{repo}/blobs/uploads/")
        assert start.status_code == 202, start.text
        url = httpx.URL(f"http://{self.host}").join(start.headers["Location"])
        done = self.http.put(url.copy_merge_params({"digest": _digest(data)}), content=data,
                             headers={"Content-Type": "application/octet-stream"})
        assert done.status_code == 201, done.text

    def put_manifest(self, repo: str, tag: str, manifest: bytes) -> None:
        resp = self.http.put(f"http://{self.host}/v2/{repo}/manifests/{tag}", content=manifest,
                             headers={"Content-Type": OCI_MANIFEST})
        assert resp.status_code == 201, resp.text


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    work = tmp_path_factory.mktemp("siginterop")
    gpg = GpgHome()
    registry = None
    try:
        trusted = gpg.gen_key("Berth Signer <signer@example.com>")
        other = gpg.gen_key("Someone Else <else@example.com>")
        expired = gpg.gen_key("Expired <expired@example.com>", expire="1d",
                              faked_time="20200101T000000!")
        make_oci_layout(work / "layout", "v1", b"hello from berth\n")
        make_oci_layout(work / "layout2", "v1", b"a different image\n")
        registry = start_registry(work / "registry", "open")
        with httpx.Client(timeout=30) as http:
            yield Env(work, registry, gpg, trusted, other, expired, work / "layout",
                      work / "layout2", http)
    finally:
        if registry is not None:
            registry.stop()
        gpg.close()


def registries_d(env: Env, name: str, text: str) -> Path:
    d = env.dir / name
    d.mkdir()
    (d / "berth.yaml").write_text(text)
    return d


def policy_file(env: Env, name: str, requirement: dict[str, object]) -> Path:
    doc = {"default": [{"type": "reject"}],
           "transports": {"docker": {f"{env.host}/berth": [requirement]}}}
    path = env.dir / name
    path.write_text(json.dumps(doc))
    return path


def gpg_requirement(env: Env, fpr: str) -> dict[str, object]:
    return {"type": "signedBy", "keyType": "GPGKeys", "keyPath": str(env.pubkey(fpr))}


def ref_of(env: Env, repo_tag: str) -> Reference:
    return parse_reference(f"{env.host}/{repo_tag}")


# --- GPG simple signing --------------------------------------------------------------------------

def test_skopeo_gpg_signature_is_verified_by_berth(env: Env) -> None:
    store = env.dir / "lookaside-a"
    regd = registries_d(env, "regd-a", f"default-docker:\n  lookaside: file://{store}\n"
                                       f"  lookaside-staging: file://{store}\n")
    env.push("berth/signed:v1", "--sign-by", env.trusted, regd=regd)
    manifest, digest = env.manifest("berth/signed", "v1")
    ref = ref_of(env, "berth/signed:v1")
    base = load_registries_dir(regd).lookaside_base(ref)
    assert base == f"file://{store}"
    sigs = read_signatures(base, ref, digest)
    assert len(sigs) == 1
    (store / "berth" / f"signed@sha256={digest[7:]}" / "signature-1").is_file()

    trusted = load_policy(policy_file(env, "a-trusted.json", gpg_requirement(env, env.trusted)))
    check_image([trusted], ref, manifest, digest, StaticSignatures(simple=sigs))

    untrusted = load_policy(policy_file(env, "a-other.json", gpg_requirement(env, env.other)))
    with pytest.raises(PolicyDenied, match="no signature from a trusted key"):
        check_image([untrusted], ref, manifest, digest, StaticSignatures(simple=sigs))
    with pytest.raises(PolicyDenied, match=f"signed identity {env.host}/berth/signed:v1 does "
                                           f"not match {env.host}/berth/signed:v2"):
        check_image([trusted], ref_of(env, "berth/signed:v2"), manifest, digest,
                    StaticSignatures(simple=sigs))
    env.push("berth/signed:other", layout=env.layout2)  # another image, same signatures
    other_manifest, other_digest = env.manifest("berth/signed", "other")
    with pytest.raises(PolicyDenied, match=f"signature is for digest {digest} not "
                                           f"{other_digest}"):
        check_image([trusted], ref, other_manifest, other_digest, StaticSignatures(simple=sigs))

    expired_sig = env.gpg.sign(payload(digest, str(ref)), env.expired,
                               faked_time="20200101T010000!")
    expired = load_policy(policy_file(env, "a-expired.json", gpg_requirement(env, env.expired)))
    with pytest.raises(PolicyDenied, match="key expired"):
        check_image([expired], ref, manifest, digest, StaticSignatures(simple=[expired_sig]))


def test_berth_gpg_signature_is_verified_by_skopeo(env: Env) -> None:
    env.push("berth/mine:v1")
    manifest, digest = env.manifest("berth/mine", "v1")
    ref = ref_of(env, "berth/mine:v1")
    store = env.dir / "lookaside-b"
    sig = sign_simple(digest, str(ref), env.trusted, env.gpg.path)
    write_signatures(f"file://{store}", ref, digest, [sig])
    regd = registries_d(env, "regd-b", f"docker:\n  {env.host}:\n    lookaside: file://{store}\n")
    assert load_registries_dir(regd).lookaside_base(ref) == f"file://{store}"

    good = policy_file(env, "b-trusted.json", gpg_requirement(env, env.trusted))
    env.pull("berth/mine:v1", good, regd)
    check_image([load_policy(good)], ref, manifest, digest,
                StaticSignatures(simple=read_signatures(f"file://{store}", ref, digest)))

    bad = policy_file(env, "b-other.json", gpg_requirement(env, env.other))
    refused = env.pull("berth/mine:v1", bad, regd, check=False)
    assert refused.returncode != 0 and "signature" in refused.stderr.lower(), refused.stderr

    (env.dir / "manifest-b.json").write_bytes(manifest)
    (env.dir / "signature-b").write_bytes(sig)
    verified = env.skopeo("standalone-verify", str(env.dir / "manifest-b.json"), str(ref),
                          env.trusted, str(env.dir / "signature-b"))
    assert "Signature verified" in verified.stdout

    wrong = sign_simple(digest, f"{env.host}/berth/mine:v9", env.trusted, env.gpg.path)
    store_c = env.dir / "lookaside-c"
    write_signatures(f"file://{store_c}", ref, digest, [wrong])
    regd_c = registries_d(env, "regd-c", f"default-docker:\n  lookaside: file://{store_c}\n")
    refused = env.pull("berth/mine:v1", good, regd_c, check=False)
    assert refused.returncode != 0, "skopeo accepted a signature for another tag"


# --- sigstore (cosign key-based) -----------------------------------------------------------------
# Debian's skopeo 1.9 is built with sigstore disabled and Debian has no cosign, so no real tool
# can check Berth's sigstore signatures here; this round trip (Berth's signer, the real
# registry, Berth's verifier) and the cosign-format unit tests are what we have.

def _fetch_sigstore(env: Env, repo: str, digest: str) -> list[SigstoreSig]:
    sig_manifest, _ = env.manifest(repo, cosign_signature_tag(digest))
    return [sigstore_sig_from_blob(layer, env.blob(repo, layer.digest))
            for layer in parse_cosign_manifest(sig_manifest)]


def _sigstore_requirement(env: Env, name: str, key: ec.EllipticCurvePrivateKey
                          ) -> dict[str, object]:
    path = env.dir / name
    path.write_bytes(key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    return {"type": "sigstoreSigned", "keyPath": str(path)}


def test_sigstore_round_trip_through_the_registry(env: Env) -> None:
    env.push("berth/roundtrip:v1")
    manifest, digest = env.manifest("berth/roundtrip", "v1")
    env.push("berth/roundtrip:other", layout=env.layout2)
    other_manifest, other_digest = env.manifest("berth/roundtrip", "other")
    ref = ref_of(env, "berth/roundtrip:v1")
    key = ec.generate_private_key(ec.SECP256R1())
    signed = SigstoreSig(*sign_sigstore(digest, str(ref), key))
    artifact = build_cosign_artifact(digest, [signed])
    for blob in artifact.blobs.values():
        env.upload("berth/roundtrip", blob)
    env.put_manifest("berth/roundtrip", artifact.tag, artifact.manifest)

    sigs = _fetch_sigstore(env, "berth/roundtrip", digest)
    assert sigs == [signed]
    good = load_policy(policy_file(env, "rt.json", _sigstore_requirement(env, "rt.pub", key)))
    check_image([good], ref, manifest, digest, StaticSignatures(sigstore=sigs))

    untrusted = ec.generate_private_key(ec.SECP256R1())
    bad = load_policy(policy_file(env, "rt-other.json",
                                  _sigstore_requirement(env, "rt-other.pub", untrusted)))
    with pytest.raises(PolicyDenied, match="no signature from a trusted key"):
        check_image([bad], ref, manifest, digest, StaticSignatures(sigstore=sigs))
    with pytest.raises(PolicyDenied, match=f"signature is for digest {digest} not "
                                           f"{other_digest}"):
        check_image([good], ref, other_manifest, other_digest, StaticSignatures(sigstore=sigs))
    with pytest.raises(PolicyDenied, match="does not match"):
        check_image([good], ref_of(env, "berth/roundtrip:v2"), manifest, digest,
                    StaticSignatures(sigstore=sigs))
    # A payload swapped in the registry under the original signature is refused.
    forged = SigstoreSig(sign_sigstore(other_digest, str(ref), untrusted)[0],
                         signed.signature_b64)
    forged_artifact = build_cosign_artifact(other_digest, [forged])
    for blob in forged_artifact.blobs.values():
        env.upload("berth/roundtrip", blob)
    env.put_manifest("berth/roundtrip", forged_artifact.tag, forged_artifact.manifest)
    with pytest.raises(PolicyDenied, match="no signature from a trusted key"):
        check_image([good], ref_of(env, "berth/roundtrip:other"), other_manifest, other_digest,
                    StaticSignatures(sigstore=_fetch_sigstore(env, "berth/roundtrip",
                                                              other_digest)))

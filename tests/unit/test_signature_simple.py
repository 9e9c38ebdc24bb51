"""GPG "simple signing": verification through the real gpg, with every refusal the spec asks for."""

from __future__ import annotations

import base64
import hashlib
import shutil
from collections.abc import Iterator

import pytest

from berth.errors import BerthError, InvalidArgument, PolicyDenied
from berth.image.reference import parse_reference
from berth.image.signature import (
    GpgKeyring,
    StaticSignatures,
    check_image,
    parse_policy,
    sign_simple,
    verify_simple,
)
from berth.image.signature.common import SignatureRejected
from berth.image.signature.payload import SIMPLE_TYPE, build_payload
from tests.gpghome import GpgHome

pytestmark = pytest.mark.skipif(shutil.which("gpg") is None, reason="gpg is not installed")

MANIFEST = b'{"schemaVersion":2,"layers":[]}'
DIGEST = "sha256:" + hashlib.sha256(MANIFEST).hexdigest()
REF = "registry.example.com/team/app:v1"


class Keys:
    def __init__(self, home: GpgHome) -> None:
        self.home = home
        self.trusted = home.gen_key("Trusted <trusted@example.com>")
        self.other = home.gen_key("Other <other@example.com>")
        self.expired = home.gen_key("Expired <expired@example.com>", expire="1d",
                                    faked_time="20200101T000000!")
        self.revoked = home.gen_key("Revoked <revoked@example.com>")
        self.with_subkey = home.gen_key("Subkey <subkey@example.com>")
        home.add_signing_subkey(self.with_subkey)
        self.revoked_sig = home.sign(payload(), self.revoked)
        home.revoke(self.revoked)


def payload(digest: str = DIGEST, ref: str = REF) -> bytes:
    return build_payload(SIMPLE_TYPE, digest, ref, creator="test", timestamp=1)


@pytest.fixture(scope="module")
def keys() -> Iterator[Keys]:
    home = GpgHome()
    try:
        yield Keys(home)
    finally:
        home.close()


def keyring(keys: Keys, *fprs: str) -> GpgKeyring:
    return GpgKeyring([keys.home.export(f) for f in fprs])


def test_good_signature_is_verified(keys: Keys) -> None:
    sig = keys.home.sign(payload(), keys.trusted)
    with keyring(keys, keys.trusted, keys.other) as ring:
        claims = verify_simple(ring, sig)
    assert claims.manifest_digest == DIGEST
    assert claims.docker_reference == REF
    assert (claims.creator, claims.timestamp) == ("test", 1)


def test_sign_simple_round_trip(keys: Keys) -> None:
    sig = sign_simple(DIGEST, "busybox:1.36", keys.trusted, keys.home.path, timestamp=7)
    with keyring(keys, keys.trusted) as ring:
        claims = verify_simple(ring, sig)
    assert claims.docker_reference == "docker.io/library/busybox:1.36"
    assert claims.timestamp == 7


def test_signing_subkey_is_trusted_through_its_primary(keys: Keys) -> None:
    sig = keys.home.sign(payload(), keys.with_subkey)
    with keyring(keys, keys.with_subkey) as ring:
        assert verify_simple(ring, sig).manifest_digest == DIGEST


@pytest.mark.parametrize(("case", "reason"), [
    ("untrusted", "no signature from a trusted key"),
    ("expired", "key expired"),
    ("revoked", "key revoked"),
    ("tampered", ""),
    ("literal", "not an OpenPGP signed message"),
    ("clearsigned", "unexpected OpenPGP signature class"),
    ("detached", ""),
    ("two-signers", "expected exactly one signature"),
    ("garbage", "gpg refused the signature"),
    ("empty", "gpg refused the signature"),
    ("bomb", "gpg refused the signature"),  # decompresses past the 4 MiB bound
])
def test_bad_signatures_are_refused(keys: Keys, case: str, reason: str) -> None:
    home = keys.home
    if case == "untrusted":
        sig = home.sign(payload(), keys.other)
    elif case == "expired":
        sig = home.sign(payload(), keys.expired, faked_time="20200101T010000!")
    elif case == "revoked":
        sig = keys.revoked_sig
    elif case == "tampered":
        signed = bytearray(home.run("--compress-algo", "none", "--local-user", keys.trusted,
                                    "--sign", "--output", "-", data=payload()).stdout)
        at = bytes(signed).index(b"sha256:")
        signed[at + 10] ^= 1  # a byte inside the signed payload
        sig = bytes(signed)
    elif case == "literal":
        sig = home.sign(payload(), keys.trusted, mode="--store")
    elif case == "clearsigned":
        sig = home.sign(payload(), keys.trusted, mode="--clearsign")
    elif case == "detached":
        sig = home.sign(payload(), keys.trusted, mode="--detach-sign")
    elif case == "two-signers":
        sig = home.sign(payload(), keys.trusted, keys.other)
    elif case == "garbage":
        sig = b"\x00not a signature" * 10
    elif case == "bomb":
        sig = home.sign(b" " * (6 << 20), keys.trusted)
    else:
        sig = b""
    fprs = [keys.trusted, keys.other] if case == "two-signers" else [keys.trusted]
    if case in ("expired", "revoked"):
        fprs = [keys.expired if case == "expired" else keys.revoked]
    with keyring(keys, *fprs) as ring, pytest.raises(SignatureRejected) as err:
        verify_simple(ring, sig)
    assert reason in err.value.reason


@pytest.mark.parametrize(("doc", "reason"), [
    (b'{"critical":{"type":"atomic container signature","image":{"docker-manifest-digest":"'
     + DIGEST.encode() + b'"},"identity":{"docker-reference":"a/b:c"},"extra":1},"optional":{}}',
     "unknown field 'extra'"),
    (b'{"critical":{"type":"cosign container image signature","image":{"docker-manifest-'
     b'digest":"' + DIGEST.encode() + b'"},"identity":{"docker-reference":"a/b:c"}},'
     b'"optional":{}}', "unrecognized signature type"),
    (b'{"critical":{"type":"atomic container signature","image":{"docker-manifest-digest":'
     b'"sha256:12"},"identity":{"docker-reference":"a/b:c"}},"optional":{}}', "not a digest"),
    (b'{"critical":{},"critical":{},"optional":{}}', "duplicate field 'critical'"),
    (b'{"critical":{"type":"atomic container signature","image":{"docker-manifest-digest":"'
     + DIGEST.encode() + b'"},"identity":{"docker-reference":"a/b:c"}},"optional":null}',
     "optional is null"),
    (b'{"critical":{"type":"atomic container signature","image":{"docker-manifest-digest":"'
     + DIGEST.encode() + b'"},"identity":{"docker-reference":"a/b:c"}},'
     b'"optional":{"timestamp":1.5}}', "not an integer"),
    (b"not json", "not valid JSON"),
])
def test_payload_is_parsed_strictly_after_authentication(keys: Keys, doc: bytes,
                                                         reason: str) -> None:
    with keyring(keys, keys.trusted) as ring, pytest.raises(SignatureRejected) as err:
        verify_simple(ring, keys.home.sign(doc, keys.trusted))
    assert reason in err.value.reason


def _policy(keys: Keys, fpr: str, identity: str = "") -> bytes:
    data = base64.b64encode(keys.home.export(fpr)).decode()
    extra = f', "signedIdentity": {identity}' if identity else ""
    return (f'{{"default": [{{"type": "reject"}}], "transports": {{"docker": '
            f'{{"registry.example.com/team": [{{"type": "signedBy", "keyType": "GPGKeys", '
            f'"keyData": "{data}"{extra}}}]}}}}}}').encode()


def test_check_image_with_signed_by(keys: Keys) -> None:
    policy = parse_policy(_policy(keys, keys.trusted))
    good = keys.home.sign(payload(), keys.trusted)
    untrusted = keys.home.sign(payload(), keys.other)
    ref = parse_reference(REF)
    check_image([policy], ref, MANIFEST, DIGEST, StaticSignatures(simple=[untrusted, good]))
    with pytest.raises(PolicyDenied, match="no signature from a trusted key"):
        check_image([policy], ref, MANIFEST, DIGEST, StaticSignatures(simple=[untrusted]))
    with pytest.raises(PolicyDenied, match="the image has no GPG signatures"):
        check_image([policy], ref, MANIFEST, DIGEST, StaticSignatures())
    with pytest.raises(PolicyDenied, match="does not match registry.example.com/team/app:v2"):
        check_image([policy], parse_reference("registry.example.com/team/app:v2"), MANIFEST,
                    DIGEST, StaticSignatures(simple=[good]))
    other = b'{"schemaVersion":2}'
    other_digest = "sha256:" + hashlib.sha256(other).hexdigest()
    with pytest.raises(PolicyDenied, match=f"signature is for digest {DIGEST} not "
                                           f"{other_digest}"):
        check_image([policy], ref, other, other_digest, StaticSignatures(simple=[good]))
    matching_repo = parse_policy(_policy(keys, keys.trusted, '{"type": "matchRepository"}'))
    check_image([matching_repo], parse_reference("registry.example.com/team/app:v2"), MANIFEST,
                DIGEST, StaticSignatures(simple=[good]))


def test_keyring_without_usable_keys_refuses_everything(keys: Keys) -> None:
    with GpgKeyring([b"not a keyring"]) as ring, pytest.raises(SignatureRejected,
                                                               match="no usable public key"):
        verify_simple(ring, keys.home.sign(payload(), keys.trusted))


def test_sign_simple_refusals(keys: Keys) -> None:
    with pytest.raises(InvalidArgument, match="full fingerprint"):
        sign_simple(DIGEST, REF, "DEADBEEF", keys.home.path)
    with pytest.raises(BerthError, match="could not sign"):
        sign_simple(DIGEST, REF, "A" * 40, keys.home.path)
    with pytest.raises(InvalidArgument, match="invalid manifest digest"):
        sign_simple("sha256:x", REF, keys.trusted, keys.home.path)

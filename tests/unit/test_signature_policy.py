"""containers-policy.json(5) parsing, scope precedence and signedIdentity matching."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from berth.errors import InvalidArgument, PolicyDenied
from berth.image.reference import parse_reference
from berth.image.signature import (
    InsecureAcceptAnything,
    Reject,
    SignedBy,
    SigstoreSigned,
    StaticSignatures,
    check_image,
    load_policy,
    parse_policy,
    scope_search_order,
)
from berth.image.signature.identity import (
    ExactReference,
    ExactRepository,
    MatchExact,
    MatchRepoDigestOrExact,
    MatchRepository,
    RemapIdentity,
    SignedIdentity,
    parse_signed_identity,
)

D1 = "sha256:" + "1" * 64
ACCEPT = [{"type": "insecureAcceptAnything"}]
REJECT = [{"type": "reject"}]


def _pem(key: Any) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)


@pytest.fixture(scope="module")
def keydir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("keys")
    (d / "cosign.pub").write_bytes(_pem(ec.generate_private_key(ec.SECP256R1())))
    (d / "pubring.gpg").write_bytes(b"\x99\x01fake keyring bytes, checked by gpg later")
    (d / "empty").write_bytes(b"")
    (d / "weak.pub").write_bytes(_pem(rsa.generate_private_key(65537, 1024)))
    return d


def parse(doc: Any, **kw: Any) -> Any:
    return parse_policy(json.dumps(doc).encode() if not isinstance(doc, bytes) else doc, **kw)


def test_minimal_policy() -> None:
    policy = parse({"default": ACCEPT})
    assert policy.default == (InsecureAcceptAnything(),)
    assert policy.requirements_for(parse_reference("busybox")) == [InsecureAcceptAnything()]


def test_full_policy(keydir: Path) -> None:
    gpg = str(keydir / "pubring.gpg")
    cosign = str(keydir / "cosign.pub")
    doc = {
        "default": REJECT,
        "transports": {
            "docker": {
                "docker.io/library/busybox": ACCEPT,
                "*.temporary.example.com": ACCEPT,
                "registry.example.com:5000/myns/sig": [
                    {"type": "sigstoreSigned", "keyPath": cosign},
                    {"type": "sigstoreSigned",
                     "keyData": base64.b64encode((keydir / "cosign.pub").read_bytes()).decode(),
                     "signedIdentity": {"type": "matchRepository"}}],
                "registry.example.com/vendor": [
                    {"type": "signedBy", "keyType": "GPGKeys", "keyPaths": [gpg, gpg],
                     "signedIdentity": {"type": "exactRepository",
                                        "dockerRepository": "vendor.example/product/repo"}},
                    {"type": "signedBy", "keyType": "GPGKeys", "keyPath": gpg}],
                "private-mirror:5000/vendor-mirror": [
                    {"type": "signedBy", "keyType": "GPGKeys",
                     "keyData": base64.b64encode(b"keyring").decode(),
                     "signedIdentity": {"type": "remapIdentity",
                                        "prefix": "private-mirror:5000/vendor-mirror",
                                        "signedPrefix": "vendor.example.com"}}],
                "": REJECT,
            },
            "dir": {"": ACCEPT, "/srv/images": REJECT},
            "docker-daemon": {"": ACCEPT},
        },
    }
    policy = parse(doc, origin="host policy")
    assert policy.origin == "host policy"
    reqs = policy.requirements_for(parse_reference("registry.example.com/vendor/x:1"))
    assert [type(r) for r in reqs] == [SignedBy, SignedBy]
    assert isinstance(reqs[0], SignedBy) and len(reqs[0].keyrings) == 2
    assert reqs[0].signed_identity == ExactRepository(
        parse_reference("vendor.example/product/repo"))
    assert reqs[1].signed_identity == MatchRepoDigestOrExact()  # the default
    sig = policy.requirements_for(parse_reference("registry.example.com:5000/myns/sig:v1"))
    assert [type(r) for r in sig] == [SigstoreSigned, SigstoreSigned]
    assert policy.requirements_for(parse_reference("quay.io/a/b")) == [Reject()]


def test_relative_key_path_resolves_against_base_dir(keydir: Path) -> None:
    doc = {"default": [{"type": "sigstoreSigned", "keyPath": "cosign.pub"}]}
    with pytest.raises(InvalidArgument, match=r"default\[0\]\.keyPath: key path must be "
                                              "absolute"):
        parse(doc)
    assert isinstance(parse(doc, base_dir=keydir).default[0], SigstoreSigned)


def test_load_policy_reads_a_file(tmp_path: Path) -> None:
    path = tmp_path / "policy.json"
    path.write_text(json.dumps({"default": REJECT}))
    assert load_policy(path).default == (Reject(),)
    with pytest.raises(InvalidArgument, match="cannot read policy"):
        load_policy(tmp_path / "missing.json")


def _signed_by(**fields: Any) -> dict[str, Any]:
    return {"default": [{"type": "signedBy", "keyType": "GPGKeys", **fields}]}


BAD_POLICIES: list[tuple[str, Any, str]] = [
    ("not json", b"{", "not valid JSON"),
    ("not utf-8", b'{"default": "\xff"}', "not valid JSON"),
    ("NaN", b'{"default": NaN}', "not valid JSON"),
    ("array", [], "policy: expected a JSON object, got an array"),
    ("missing default", {"transports": {}}, "missing field 'default'"),
    ("unknown top field", {"default": ACCEPT, "defaults": ACCEPT}, "unknown field 'defaults'"),
    ("duplicate top key", b'{"default": [{"type": "reject"}], "default": []}',
     "top level: duplicate field 'default'"),
    ("duplicate nested key",
     b'{"default": [{"type": "reject", "type": "insecureAcceptAnything"}]}',
     "default[0]: duplicate field 'type'"),
    ("empty default", {"default": []}, "default: must not be empty"),
    ("default not a list", {"default": {"type": "reject"}},
     "default: expected an array of requirements, got an object"),
    ("requirement not an object", {"default": ["reject"]},
     "default[0]: expected a requirement object, got a string"),
    ("requirement without type", {"default": [{}]}, "default[0]: missing field 'type'"),
    ("type not a string", {"default": [{"type": 1}]}, "default[0].type: expected a string"),
    ("unknown requirement", {"default": [{"type": "signedByX509"}]},
     "default[0].type: unknown requirement type 'signedByX509'"),
    ("extra field on reject", {"default": [{"type": "reject", "why": "x"}]},
     "default[0]: unknown field 'why'"),
    ("signedBy without keyType", {"default": [{"type": "signedBy", "keyPath": "/k"}]},
     "default[0]: missing field 'keyType'"),
    ("signedBy bad keyType", _signed_by(keyType="X509Certificates", keyPath="/k"),
     "unsupported key type 'X509Certificates'"),
    ("signedBy no key", _signed_by(), "exactly one of keyPath, keyPaths or keyData is required"
     " (got none)"),
    ("signedBy two keys", _signed_by(keyPath="/a", keyData="YQ=="),
     "(got keyPath and keyData)"),
    ("signedBy relative keyPath", _signed_by(keyPath="keys/pub.gpg"),
     "default[0].keyPath: key path must be absolute: 'keys/pub.gpg'"),
    ("signedBy missing key file", _signed_by(keyPath="/nonexistent/pub.gpg"),
     "default[0].keyPath: cannot read key file '/nonexistent/pub.gpg'"),
    ("signedBy keyPaths not a list", _signed_by(keyPaths="/a"),
     "default[0].keyPaths: expected an array of strings, got a string"),
    ("signedBy keyPaths empty", _signed_by(keyPaths=[]), "default[0].keyPaths: must not be empty"),
    ("signedBy keyPaths relative", _signed_by(keyPaths=["rel", "/dev/null"]),
     "default[0].keyPaths[0]: key path must be absolute"),
    ("signedBy keyData not base64", _signed_by(keyData="not base64!"),
     "default[0].keyData: not valid base64"),
    ("signedBy keyData empty", _signed_by(keyData=""), "default[0].keyData: must not be empty"),
    ("signedBy keyPath wrong type", _signed_by(keyPath=["/a"]),
     "default[0].keyPath: expected a string, got an array"),
    ("identity not an object", _signed_by(keyData="YQ==", signedIdentity="matchExact"),
     "default[0].signedIdentity: expected a JSON object, got a string"),
    ("identity unknown type", _signed_by(keyData="YQ==", signedIdentity={"type": "matchAll"}),
     "default[0].signedIdentity.type: unknown signedIdentity type 'matchAll'"),
    ("identity extra field",
     _signed_by(keyData="YQ==", signedIdentity={"type": "matchExact", "prefix": "a.io"}),
     "default[0].signedIdentity: unknown field 'prefix'"),
    ("identity unknown field",
     _signed_by(keyData="YQ==", signedIdentity={"type": "matchExact", "x": 1}),
     "default[0].signedIdentity: unknown field 'x'"),
    ("exactReference without tag",
     _signed_by(keyData="YQ==", signedIdentity={"type": "exactReference",
                                                "dockerReference": "quay.io/a/b"}),
     "dockerReference: must name exactly one tag or digest"),
    ("exactReference invalid",
     _signed_by(keyData="YQ==", signedIdentity={"type": "exactReference",
                                                "dockerReference": "Quay.io/A/B:1"}),
     "signedIdentity.dockerReference: invalid reference format"),
    ("exactReference missing",
     _signed_by(keyData="YQ==", signedIdentity={"type": "exactReference"}),
     "signedIdentity: missing field 'dockerReference'"),
    ("exactRepository with tag",
     _signed_by(keyData="YQ==", signedIdentity={"type": "exactRepository",
                                                "dockerRepository": "quay.io/a/b:1"}),
     "dockerRepository: must be a repository without a tag or digest"),
    ("remapIdentity prefix with tag",
     _signed_by(keyData="YQ==", signedIdentity={"type": "remapIdentity", "prefix": "a.io/b:1",
                                                "signedPrefix": "c.io"}),
     "signedIdentity.prefix: invalid prefix 'a.io/b:1': must not contain a tag or digest"),
    ("remapIdentity wildcard",
     _signed_by(keyData="YQ==", signedIdentity={"type": "remapIdentity", "prefix": "*.a.io",
                                                "signedPrefix": "c.io"}),
     "signedIdentity.prefix: invalid prefix '*.a.io': a wildcard is not allowed here"),
    ("remapIdentity not expanded",
     _signed_by(keyData="YQ==", signedIdentity={"type": "remapIdentity", "prefix": "busybox",
                                                "signedPrefix": "c.io"}),
     "invalid prefix 'busybox': not a registry host"),
    ("remapIdentity missing signedPrefix",
     _signed_by(keyData="YQ==", signedIdentity={"type": "remapIdentity", "prefix": "a.io"}),
     "signedIdentity: missing field 'signedPrefix'"),
    ("sigstore fulcio", {"default": [{"type": "sigstoreSigned", "fulcio": {}}]},
     "default[0].fulcio: not supported by Berth"),
    ("sigstore rekor", {"default": [{"type": "sigstoreSigned", "keyPath": "/k",
                                     "rekorPublicKeyPath": "/r"}]},
     "default[0].rekorPublicKeyPath: not supported by Berth"),
    ("sigstore no key", {"default": [{"type": "sigstoreSigned"}]},
     "exactly one of keyPath, keyPaths, keyData or keyDatas is required (got none)"),
    ("sigstore bad PEM", {"default": [{"type": "sigstoreSigned",
                                       "keyData": base64.b64encode(b"junk").decode()}]},
     "default[0]: key 1 from keyData: not a PEM public key"),
    ("sigstore keyType", {"default": [{"type": "sigstoreSigned", "keyType": "GPGKeys",
                                       "keyData": "YQ=="}]},
     "default[0]: unknown field 'keyType'"),
    ("transports not an object", {"default": ACCEPT, "transports": []},
     "transports: expected an object, got an array"),
    ("unknown transport", {"default": ACCEPT, "transports": {"dockr": {}}},
     "transports.dockr: unknown transport 'dockr'"),
    ("scopes not an object", {"default": ACCEPT, "transports": {"docker": ACCEPT}},
     "transports.docker: expected an object of scopes, got an array"),
    ("empty scope list", {"default": ACCEPT, "transports": {"docker": {"a.io/b": []}}},
     'transports.docker["a.io/b"]: must not be empty'),
    ("short name scope", {"default": ACCEPT, "transports": {"docker": {"busybox": ACCEPT}}},
     "invalid docker scope 'busybox': not a registry host"),
    ("unexpanded repo scope",
     {"default": ACCEPT, "transports": {"docker": {"library/busybox": ACCEPT}}},
     "invalid docker scope 'library/busybox': must start with a registry host"),
    ("bad wildcard", {"default": ACCEPT, "transports": {"docker": {"example*.com": ACCEPT}}},
     "'*' is only allowed as a leading '*.' of a domain"),
    ("wildcard with port",
     {"default": ACCEPT, "transports": {"docker": {"*.example.com:5000": ACCEPT}}},
     "a wildcard scope must look like '*.example.com'"),
    ("tag and digest scope",
     {"default": ACCEPT, "transports": {"docker": {f"a.io/b:1@{D1}": ACCEPT}}},
     "must not contain both a tag and a digest"),
    ("uppercase repo scope",
     {"default": ACCEPT, "transports": {"docker": {"a.io/Busybox": ACCEPT}}},
     "not a valid repository path"),
    ("hub alias scope",
     {"default": ACCEPT, "transports": {"docker": {"index.docker.io/library/a": ACCEPT}}},
     "use the canonical docker.io host"),
    ("relative dir scope", {"default": ACCEPT, "transports": {"dir": {"srv": ACCEPT}}},
     "invalid dir scope 'srv': must be an absolute path"),
    ("root dir scope", {"default": ACCEPT, "transports": {"dir": {"/": ACCEPT}}},
     "invalid dir scope '/'"),
    ("nested too deep", b'{"default": ' + b"[" * 100000 + b"]" * 100000 + b"}",
     "nested too deeply"),
]


@pytest.mark.parametrize(("doc", "message"), [(d, m) for _, d, m in BAD_POLICIES],
                         ids=[name for name, _, _ in BAD_POLICIES])
def test_bad_policies_are_refused(doc: Any, message: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        parse(doc)
    assert message in err.value.message
    assert err.value.message.startswith("policy: ")


@pytest.mark.parametrize(("name", "message"), [
    ("empty", "is empty"), ("weak.pub", "RSA key of 1024 bits is too small")])
def test_bad_key_files_are_refused(keydir: Path, name: str, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        parse({"default": [{"type": "sigstoreSigned", "keyPath": str(keydir / name)}]})


def test_oversized_policy_is_refused() -> None:
    with pytest.raises(InvalidArgument, match="larger than"):
        parse_policy(b" " * (4 << 20) + b"{}")


SCOPES = ["", "*.example.com", "*.sub.example.com", "reg.sub.example.com",
          "reg.sub.example.com/ns", "reg.sub.example.com/ns/repo",
          "reg.sub.example.com/ns/repo:v1", f"reg.sub.example.com/ns/repo@{D1}",
          "docker.io/library/busybox", "docker.io/library", "localhost:5000"]


@pytest.mark.parametrize(("ref", "scope"), [
    ("reg.sub.example.com/ns/repo:v1", "reg.sub.example.com/ns/repo:v1"),
    (f"reg.sub.example.com/ns/repo@{D1}", f"reg.sub.example.com/ns/repo@{D1}"),
    (f"reg.sub.example.com/ns/repo:v2@{D1}", f"reg.sub.example.com/ns/repo@{D1}"),
    ("reg.sub.example.com/ns/repo:v2", "reg.sub.example.com/ns/repo"),
    ("reg.sub.example.com/ns/repo", "reg.sub.example.com/ns/repo"),
    ("reg.sub.example.com/ns/other/deeper:v1", "reg.sub.example.com/ns"),
    ("reg.sub.example.com/x:v1", "reg.sub.example.com"),
    ("reg.sub.example.com:5000/x:v1", "*.sub.example.com"),  # a port is part of the host
    ("other.sub.example.com/x", "*.sub.example.com"),
    ("a.example.com/x", "*.example.com"),
    ("example.com/x", ""),
    ("quay.io/x/y:1", ""),
    ("busybox", "docker.io/library/busybox"),
    ("docker.io/library/alpine:3", "docker.io/library"),
    ("user/app", ""),
    ("localhost:5000/app", "localhost:5000"),
])
def test_most_specific_scope_wins(ref: str, scope: str) -> None:
    doc = {"default": REJECT, "transports": {"docker": {s: ACCEPT for s in SCOPES}}}
    match = parse(doc).lookup(parse_reference(ref))
    assert match.scope == scope


def test_transport_default_then_global_default() -> None:
    ref = parse_reference("quay.io/a/b:1")
    match = parse({"default": REJECT, "transports": {"docker": {"": ACCEPT}}}).lookup(ref)
    assert (match.scope, match.describe()) == ("", "the docker transport default")
    match = parse({"default": REJECT, "transports": {"docker": {"a.io": ACCEPT}}}).lookup(ref)
    assert (match.scope, match.describe()) == (None, "the policy's default")
    match = parse({"default": REJECT, "transports": {"dir": {"": ACCEPT}}}).lookup(ref)
    assert match.requirements == (Reject(),)
    match = parse({"default": REJECT, "transports": {"docker": {"quay.io/a": ACCEPT}}}
                  ).lookup(ref)
    assert match.describe() == "docker scope 'quay.io/a'"


def test_search_order() -> None:
    assert scope_search_order(parse_reference("a.b.example.com:5000/ns/repo:v1")) == [
        "a.b.example.com:5000/ns/repo:v1", "a.b.example.com:5000/ns/repo",
        "a.b.example.com:5000/ns", "a.b.example.com:5000", "*.b.example.com",
        "*.example.com", "*.com"]
    assert scope_search_order(parse_reference("[::1]:5000/x")) == [
        "[::1]:5000/x:latest", "[::1]:5000/x", "[::1]:5000"]


def _identity(doc: dict[str, Any]) -> SignedIdentity:
    return parse_signed_identity(doc, "signedIdentity")


EXACT_REF = {"type": "exactReference", "dockerReference": "vendor.io/prod/app:1.0"}
EXACT_REPO = {"type": "exactRepository", "dockerRepository": "vendor.io/prod/app"}
REMAP = {"type": "remapIdentity", "prefix": "mirror.local:5000/vendor",
         "signedPrefix": "vendor.io"}
REMAP_HUB = {"type": "remapIdentity", "prefix": "mirror.local/hub",
             "signedPrefix": "docker.io/library"}


@pytest.mark.parametrize(("identity", "image", "signed", "ok"), [
    ({"type": "matchExact"}, "a.io/x:1", "a.io/x:1", True),
    ({"type": "matchExact"}, "busybox", "docker.io/library/busybox:latest", True),
    ({"type": "matchExact"}, "a.io/x:1", "a.io/x:2", False),
    ({"type": "matchExact"}, "a.io/x:1", "a.io/x", False),
    ({"type": "matchExact"}, f"a.io/x@{D1}", "a.io/x:1", False),
    ({"type": "matchExact"}, f"a.io/x@{D1}", f"a.io/x@{D1}", True),
    ({"type": "matchRepoDigestOrExact"}, "a.io/x:1", "a.io/x:1", True),
    ({"type": "matchRepoDigestOrExact"}, "a.io/x:1", "a.io/x:2", False),
    ({"type": "matchRepoDigestOrExact"}, f"a.io/x@{D1}", "a.io/x:2", True),
    ({"type": "matchRepoDigestOrExact"}, f"a.io/x@{D1}", "a.io/y:2", False),
    ({"type": "matchRepoDigestOrExact"}, f"a.io/x@{D1}", "a.io/x", False),
    ({"type": "matchRepoDigestOrExact"}, f"a.io/x:1@{D1}", "a.io/x:1", True),
    ({"type": "matchRepository"}, "a.io/x:latest", "a.io/x:1.2", True),
    ({"type": "matchRepository"}, "a.io/x:latest", "a.io/x", True),
    ({"type": "matchRepository"}, "a.io/x:latest", "a.io/x/y:1", False),
    ({"type": "matchRepository"}, "a.io/x:latest", "b.io/x:latest", False),
    (EXACT_REF, "mirror.local/whatever:9", "vendor.io/prod/app:1.0", True),
    (EXACT_REF, "mirror.local/whatever:9", "vendor.io/prod/app:1.1", False),
    (EXACT_REPO, "mirror.local/whatever:9", "vendor.io/prod/app:7", True),
    (EXACT_REPO, "mirror.local/whatever:9", "vendor.io/prod/other:7", False),
    (REMAP, "mirror.local:5000/vendor/prod/app:1", "vendor.io/prod/app:1", True),
    (REMAP, "mirror.local:5000/vendor/prod/app:1", "vendor.io/prod/app:2", False),
    (REMAP, f"mirror.local:5000/vendor/prod/app@{D1}", "vendor.io/prod/app:2", True),
    (REMAP, "mirror.local:5000/vendorx/app:1", "vendor.io/x/app:1", False),
    (REMAP, "mirror.local:5000/vendorx/app:1", "mirror.local:5000/vendorx/app:1", True),
    (REMAP, "mirror.local:5000/vendor:1", "vendor.io:1", False),
    (REMAP_HUB, "mirror.local/hub/busybox:1", "busybox:1", True),
])
def test_signed_identity_matching(identity: dict[str, Any], image: str, signed: str,
                                  ok: bool) -> None:
    assert _identity(identity).matches(parse_reference(image), parse_reference(signed)) is ok


def test_identity_types() -> None:
    assert isinstance(_identity({"type": "matchExact"}), MatchExact)
    assert isinstance(_identity({"type": "matchRepository"}), MatchRepository)
    assert isinstance(_identity(EXACT_REF), ExactReference)
    assert _identity(REMAP) == RemapIdentity("mirror.local:5000/vendor", "vendor.io")


def test_a_scope_applies_to_every_spelling_of_its_registry_host():
    """A tenant must not skip the operator's rule for a registry by writing its host in
    another case: the default here accepts anything, the scope rejects."""
    policy = parse_policy(json.dumps({
        "default": ACCEPT, "transports": {"docker": {"reg.example.com": REJECT}},
    }).encode())
    manifest = b"{}"
    digest = "sha256:" + hashlib.sha256(manifest).hexdigest()
    check_image([policy], parse_reference("other.example.com/app:1"), manifest, digest,
                StaticSignatures())  # the default: accepted
    for text in ("reg.example.com/app:1", "REG.example.com/app:1", "Reg.Example.Com/app:1"):
        with pytest.raises(PolicyDenied):
            check_image([policy], parse_reference(text), manifest, digest, StaticSignatures())

"""Property tests (hypothesis) for the signature and trust-policy code, which reads what
registries, lookaside servers, signers and policy authors send.

The contract: a parser returns a well-formed result or raises a BerthError naming the problem
(SignatureRejected inside the signature package, which the evaluator turns into PolicyDenied);
nothing else escapes. On top of that, verification must never be fooled: a payload for another
manifest, a signature by an untrusted key, or a "reject" policy never lets an image through.
"""

from __future__ import annotations

import atexit
import base64
import copy
import hashlib
import json
import math
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from hypothesis import assume, event, example, given
from hypothesis import strategies as st

from berth.errors import BerthError, InvalidArgument, PolicyDenied, UnsafeContent, UpstreamFailure
from berth.image.reference import Reference, parse_reference
from berth.image.registry.sigext import parse_list
from berth.image.signature import (
    SigstoreSig,
    SigstoreSigned,
    StaticSignatures,
    build_cosign_artifact,
    check_image,
    parse_cosign_manifest,
    parse_policy,
    parse_registries_d,
    read_signatures,
    scope_search_order,
    sigstore_sig_from_blob,
    verify_sigstore,
    write_signatures,
)
from berth.image.signature.common import MAX_SIGNATURE_SIZE, SignatureRejected, digest_matches
from berth.image.signature.gpg import _judge, parse_status
from berth.image.signature.identity import (
    MatchExact,
    MatchRepoDigestOrExact,
    MatchRepository,
    RemapIdentity,
    _signed_exact,
    full_name,
    image_exact,
    parse_signed_identity,
    validate_docker_scope,
)
from berth.image.signature.lookaside import signature_url, validate_base_url
from berth.image.signature.payload import COSIGN_TYPE, SIMPLE_TYPE, build_payload, parse_payload
from berth.image.signature.sigstore import load_public_key
from berth.image.signature.strictjson import load_strict

# -- keys and fixed material ---------------------------------------------------------------

KEYS: dict[str, Any] = {
    "ec-a": ec.generate_private_key(ec.SECP256R1()),
    "ec-b": ec.generate_private_key(ec.SECP256R1()),
    "ec384": ec.generate_private_key(ec.SECP384R1()),
    "ed25519": ed25519.Ed25519PrivateKey.generate(),
    "rsa": rsa.generate_private_key(65537, 2048),
}
KEY_NAMES = sorted(KEYS)


def _pem(key: Any) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)


PEMS = {name: _pem(key) for name, key in KEYS.items()}
B64 = {name: base64.b64encode(pem).decode() for name, pem in PEMS.items()}

KEYDIR = Path(tempfile.mkdtemp(prefix="berth-fuzz-sig-"))
atexit.register(shutil.rmtree, KEYDIR, True)
for _name, _data in PEMS.items():
    (KEYDIR / f"{_name}.pub").write_bytes(_data)
(KEYDIR / "pubring.gpg").write_bytes(b"\x99\x01not parsed until a signature is checked")
(KEYDIR / "empty").write_bytes(b"")


def _sign(key: Any, payload: bytes) -> str:
    if isinstance(key, ec.EllipticCurvePrivateKey):
        raw = key.sign(payload, ec.ECDSA(hashes.SHA256()))
    elif isinstance(key, rsa.RSAPrivateKey):
        raw = key.sign(payload, padding.PKCS1v15(), hashes.SHA256())
    else:
        raw = key.sign(payload)
    return base64.b64encode(raw).decode()


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


MANIFESTS = [b'{"schemaVersion":2,"layers":[]}', b'{"schemaVersion":2,"layers":[{}]}']
D1, D2 = _digest(MANIFESTS[0]), _digest(MANIFESTS[1])

# -- hostile JSON building blocks ------------------------------------------------------------


class Raw(str):
    """Emitted verbatim into JSON text: NaN, 1e999, a 5000-digit integer..."""


class Dup(list[tuple[str, Any]]):
    """A JSON object written as (key, value) pairs, so a key can appear twice."""


def dump(value: Any) -> str:
    """JSON text of ``value`` (Raw and Dup allowed); lone surrogates come out as \\udXXX."""
    if isinstance(value, Raw):
        return str(value)
    if isinstance(value, Dup):
        return "{" + ",".join(f"{json.dumps(k)}:{dump(v)}" for k, v in value) + "}"
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(k)}:{dump(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(dump(v) for v in value) + "]"
    return json.dumps(value)


BAD_TOKENS = [Raw("NaN"), Raw("Infinity"), Raw("-Infinity"), Raw("1e999"), Raw("-1e400"),
              Raw("1" * 5000)]
HOSTILE_LEAVES = [
    None, True, False, 0, -1, 1, 2, 1 << 63, -(1 << 63) - 1, 1 << 200, 1.5, -0.0, 1e308, 2.0,
    "", " ", "\x00", "\ud800", "\udfff", "é", "a" * 3000, "sha256:" + "0" * 64, D1,
    "docker.io/library/busybox:latest", "/", "..", "%00", "*", "*.example.com",
    [], {}, [None], {"": None}, [[[[]]]], *BAD_TOKENS,
]
text_no_surrogates = st.text(st.characters(blacklist_categories=("Cs",)), max_size=30)
# Copied: a shared [] or {} mutated by one test case would change what the next one draws.
leaf = st.one_of(st.sampled_from(HOSTILE_LEAVES).map(copy.deepcopy), st.text(max_size=20),
                 st.integers(), st.floats(allow_nan=False, allow_infinity=False))


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(value, list) and not isinstance(value, Dup):
        for i, v in enumerate(value):
            out += _paths(v, (*prefix, i))
    return out


def _get(value: Any, path: tuple[Any, ...]) -> Any:
    for p in path:
        value = value[p]
    return value


def _set(root: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    _get(root, path[:-1])[path[-1]] = new
    return root


def _delete(root: Any, path: tuple[Any, ...]) -> Any:
    if not path:
        return root
    del _get(root, path[:-1])[path[-1]]
    return root


@st.composite
def mutated(draw: st.DrawFn, doc: Any, max_ops: int = 3) -> Any:
    """``doc`` after a few structural mutations: a field dropped, retyped, added, wrapped,
    nested deep, or duplicated."""
    doc = copy.deepcopy(doc)
    for _ in range(draw(st.integers(0, max_ops))):
        paths = _paths(doc)
        path = draw(st.sampled_from(paths))
        target = _get(doc, path)
        op = draw(st.sampled_from(["replace", "drop", "add", "wrap", "nest", "dup"]))
        if op == "replace":
            doc = _set(doc, path, draw(leaf))
        elif op == "drop":
            doc = _delete(doc, path)
        elif op == "add" and isinstance(target, dict):
            target[draw(st.sampled_from(["unknown", "", "type", "x-extra", "\ud800"]))] = draw(
                leaf)
        elif op == "wrap":
            doc = _set(doc, path, draw(st.sampled_from([[target], {"value": target}])))
        elif op == "nest":
            depth = draw(st.integers(1, 1200))
            doc = _set(doc, path, Raw("[" * depth + dump(target) + "]" * depth))
        elif op == "dup" and isinstance(target, dict) and target:
            items = list(target.items())
            k = draw(st.sampled_from([k for k, _ in items]))
            doc = _set(doc, path, Dup([*items, (k, draw(leaf))]))
        if isinstance(doc, Raw | Dup):
            break  # nothing further can be addressed inside verbatim text
    return doc


@st.composite
def hostile_bytes(draw: st.DrawFn, doc: Any) -> bytes:
    """JSON text of a mutated ``doc``, sometimes damaged at the byte level."""
    text = dump(draw(mutated(doc))).encode()
    op = draw(st.sampled_from(["none"] * 6 + ["truncate", "trail", "byte", "bom", "random"]))
    if op == "truncate":
        text = text[:draw(st.integers(0, len(text)))]
    elif op == "trail":
        text += draw(st.sampled_from([b"x", b"{}", b" ", b"\x00", b"\n[1]", b"\xff"]))
    elif op == "byte":
        i = draw(st.integers(0, len(text)))
        text = text[:i] + draw(st.sampled_from(
            [b"\xff", b"\xed\xa0\x80", b"\xc0\xaf", b"\x00", b"\\", b'"', b","])) + text[i:]
    elif op == "bom":
        text = b"\xef\xbb\xbf" + text
    elif op == "random":
        text = draw(st.binary(max_size=64))
    return text


# -- strict JSON -------------------------------------------------------------------------------

SAMPLE_DOC = {"a": [1, 2.5, {"b": None, "c": "x"}], "d": {"e": {"f": [True, False]}}, "g": ""}


def _json_tree_ok(value: Any) -> None:
    """What an accepted document may contain: finite numbers, valid Unicode, unique keys."""
    json.dumps(value, allow_nan=False).encode("utf-8")
    text = json.dumps(value, ensure_ascii=False, allow_nan=False)
    text.encode("utf-8")  # raises on a lone surrogate


@given(hostile_bytes(SAMPLE_DOC))
@example(b"[" * 100000)
@example(b'{"a": 1e999}')
@example(b'["\\ud800"]')
@example(b'{"\\udc00": 1}')
def test_load_strict_contract(data: bytes) -> None:
    try:
        value = load_strict(data, "doc", 1 << 20)
    except InvalidArgument as e:
        assert e.message.startswith("doc: ")
        return
    _json_tree_ok(value)
    # What is accepted means what Python's own parser reads (the last of nothing duplicated).
    assert json.dumps(value, sort_keys=True) == json.dumps(json.loads(data), sort_keys=True)


@given(st.data())
def test_load_strict_refuses_duplicate_keys_anywhere(data: st.DataObject) -> None:
    doc = copy.deepcopy(SAMPLE_DOC)
    objects = [p for p in _paths(doc) if isinstance(_get(doc, p), dict)]
    path = data.draw(st.sampled_from(objects))
    items = list(_get(doc, path).items())
    key = data.draw(st.sampled_from([k for k, _ in items]))
    doc = _set(doc, path, Dup([*items, (key, data.draw(st.integers() | text_no_surrogates))]))
    with pytest.raises(InvalidArgument, match="duplicate field"):
        load_strict(dump(doc).encode(), "doc", 1 << 20)


@given(st.data())
def test_load_strict_refuses_non_finite_numbers_and_lone_surrogates(
        data: st.DataObject) -> None:
    doc = copy.deepcopy(SAMPLE_DOC)
    path = data.draw(st.sampled_from(_paths(doc)))
    bad = data.draw(st.sampled_from([*BAD_TOKENS[:5], "\ud800", "a\udfffb", {"\udabc": 1}]))
    with pytest.raises(InvalidArgument):
        load_strict(dump(_set(doc, path, bad)).encode(), "doc", 1 << 20)


def test_load_strict_memory_stays_linear_for_deep_wide_documents() -> None:
    # 800 levels deep, 60k items inside: a path string per item used to cost 150 MB here
    # (and gigabytes for a 3 MB document).
    data = ("[" * 800 + ",".join(["[]"] * 60_000) + "]" * 800).encode()
    import tracemalloc
    tracemalloc.start()
    try:
        load_strict(data, "doc", 4 << 20)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 64 << 20, f"peak {peak >> 20} MiB for a {len(data)} byte document"


# -- signature payloads ------------------------------------------------------------------------

REF_DOMAINS = ["docker.io", "registry.example.com", "localhost:5000", "[::1]:5000",
               "Reg.Example.COM", "index.docker.io", "a.b.example.com", ""]
REF_PATHS = ["a", "b", "library/a", "team/app", "team/app/sub", "a-b", "x.y", "team"]


@st.composite
def references(draw: st.DrawFn) -> Reference:
    """Valid references from a small pool, so that equal and related names come up often."""
    domain = draw(st.sampled_from(REF_DOMAINS))
    text = (f"{domain}/" if domain else "") + draw(st.sampled_from(REF_PATHS))
    tag = draw(st.sampled_from([None, "v1", "latest", "V_2.0"]))
    digest = draw(st.sampled_from([None, D1, D2]))
    text += (f":{tag}" if tag else "") + (f"@{digest}" if digest else "")
    return parse_reference(text)


def _payload_doc(kind: str, digest: str, ref: str) -> dict[str, Any]:
    return {"critical": {"identity": {"docker-reference": ref},
                         "image": {"docker-manifest-digest": digest}, "type": kind},
            "optional": {"creator": "berth", "timestamp": 1700000000}}


PAYLOAD_DOC = _payload_doc(SIMPLE_TYPE, D1, "registry.example.com/team/app:v1")


@given(hostile_bytes(PAYLOAD_DOC), st.sampled_from([SIMPLE_TYPE, COSIGN_TYPE]))
@example(b'{"critical":{"identity":{"docker-reference":"a"},"image":{"docker-manifest-digest":'
         b'"sha256:' + b"0" * 64 + b'"},"type":"cosign container image signature"},'
         b'"optional":{"timestamp":1e999}}', COSIGN_TYPE)
def test_parse_payload_contract(data: bytes, kind: str) -> None:
    try:
        claims = parse_payload(data, kind)
    except SignatureRejected as e:
        assert e.reason
        event("payload refused")
        return
    event("payload accepted")
    doc = json.loads(data)
    assert doc["critical"]["type"] == kind
    assert claims.manifest_digest == doc["critical"]["image"]["docker-manifest-digest"]
    assert claims.docker_reference == doc["critical"]["identity"]["docker-reference"]
    assert isinstance(claims.docker_reference, str) and claims.docker_reference
    assert claims.creator is None or isinstance(claims.creator, str)
    assert claims.timestamp is None or (
        type(claims.timestamp) is int and -(1 << 63) <= claims.timestamp < (1 << 63))



@given(st.sampled_from([SIMPLE_TYPE, COSIGN_TYPE]), st.sampled_from([D1, D2]),
       references(), st.none() | text_no_surrogates,
       st.none() | st.integers(-(1 << 63), (1 << 63) - 1))
def test_payload_round_trip(kind: str, digest: str, ref: Reference, creator: str | None,
                            timestamp: int | None) -> None:
    payload = build_payload(kind, digest, str(ref), creator=creator, timestamp=timestamp)
    claims = parse_payload(payload, kind)
    assert (claims.manifest_digest, claims.docker_reference, claims.creator,
            claims.timestamp) == (digest, str(ref), creator, timestamp)
    other = COSIGN_TYPE if kind == SIMPLE_TYPE else SIMPLE_TYPE
    with pytest.raises(SignatureRejected, match="unrecognized signature type"):
        parse_payload(payload, other)


# -- sigstore verification -----------------------------------------------------------------


@given(st.sampled_from(KEY_NAMES), st.sets(st.sampled_from(KEY_NAMES)), st.sampled_from(
    [D1, D2]), references(), st.data())
def test_sigstore_signature_verifies_only_under_its_own_key(
        signer: str, trusted: set[str], digest: str, ref: Reference,
        data: st.DataObject) -> None:
    payload = build_payload(COSIGN_TYPE, digest, str(ref), creator=None, timestamp=1)
    sig = _sign(KEYS[signer], payload)
    keys = [KEYS[n].public_key() for n in sorted(trusted)]
    if signer in trusted:
        assert verify_sigstore(keys, payload, sig).manifest_digest == digest
    else:
        with pytest.raises(SignatureRejected, match="trusted key"):
            verify_sigstore(keys, payload, sig)
    # Any change to the signed bytes or to the signature bytes is refused.
    raw = bytearray(base64.b64decode(sig))
    # Indexes are drawn before they are reduced: ECDSA signatures vary in length from run to
    # run, and hypothesis needs the same draws each time.
    i = data.draw(st.integers(0, 1 << 16)) % len(raw)
    raw[i] ^= data.draw(st.integers(1, 255))
    with pytest.raises(SignatureRejected):
        verify_sigstore(keys, payload, base64.b64encode(bytes(raw)).decode())
    j = data.draw(st.integers(0, 1 << 16)) % len(payload)
    tampered = payload[:j] + bytes([payload[j] ^ data.draw(st.integers(1, 255))]) + payload[j + 1:]
    with pytest.raises(SignatureRejected):
        verify_sigstore(keys, tampered, sig)


@given(st.one_of(st.binary(max_size=600).map(lambda b: base64.b64encode(b).decode()),
                 st.text(max_size=100), st.sampled_from(["", "=", "====", "A", "\ud800"])),
       st.one_of(hostile_bytes(_payload_doc(COSIGN_TYPE, D1, "a/b:1")), st.binary()))
def test_verify_sigstore_hostile_input(signature_b64: str, payload: bytes) -> None:
    keys = [KEYS[n].public_key() for n in KEY_NAMES]
    try:
        verify_sigstore(keys, payload, signature_b64)
    except SignatureRejected:
        return
    raise AssertionError("an unsigned payload was accepted")


@given(st.data())
def test_sigstore_annotation_text_changes_never_change_what_verifies(
        data: st.DataObject) -> None:
    """A base64 text variant may decode to the same bytes; it must never verify otherwise."""
    name = data.draw(st.sampled_from(KEY_NAMES))
    payload = build_payload(COSIGN_TYPE, D1, "registry.example.com/a:v1", creator=None,
                            timestamp=None)
    sig = _sign(KEYS[name], payload)
    i = data.draw(st.integers(0, 1 << 16)) % len(sig)
    variant = sig[:i] + data.draw(st.sampled_from(list("AQgw+/=_-\n "))) + sig[i + 1:]
    try:
        verify_sigstore([KEYS[name].public_key()], payload, variant)
    except SignatureRejected:
        return
    assert base64.b64decode(variant) == base64.b64decode(sig)


@st.composite
def hostile_pem(draw: st.DrawFn) -> bytes:
    pem = bytearray(PEMS[draw(st.sampled_from(KEY_NAMES))])
    op = draw(st.sampled_from(["flip", "truncate", "header", "der", "as-is"]))
    if op == "flip":
        # Inside the base64 body: swap one character for another base64 character.
        lines = pem.split(b"\n")
        k = draw(st.integers(1, len(lines) - 3))
        body = bytearray(lines[k])
        j = draw(st.integers(0, len(body) - 1))
        body[j] = draw(st.sampled_from(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0"))
        lines[k] = bytes(body)
        return b"\n".join(lines)
    if op == "truncate":
        return bytes(pem[:draw(st.integers(0, len(pem)))])
    if op == "header":
        return bytes(pem).replace(b"PUBLIC KEY", draw(st.sampled_from(
            [b"PRIVATE KEY", b"RSA PUBLIC KEY", b"CERTIFICATE", b"X"])))
    if op == "der":
        body = base64.encodebytes(draw(st.binary(max_size=300)))
        return b"-----BEGIN PUBLIC KEY-----\n" + body + b"-----END PUBLIC KEY-----\n"
    return bytes(pem)


@given(hostile_pem())
def test_load_public_key_hostile_pem(pem: bytes) -> None:
    try:
        key = load_public_key(pem)
    except ValueError:  # requirements.py turns this into InvalidArgument naming the key
        pass
    else:
        assert key.public_bytes(serialization.Encoding.PEM,
                                serialization.PublicFormat.SubjectPublicKeyInfo)
    doc = {"default": [{"type": "sigstoreSigned",
                        "keyData": base64.b64encode(pem).decode() or "AA=="}]}
    try:
        parse_policy(json.dumps(doc).encode(), origin="p")
    except InvalidArgument as e:
        assert e.message.startswith("p: ")


# -- policies --------------------------------------------------------------------------------

REQUIREMENTS: list[dict[str, Any]] = [
    {"type": "insecureAcceptAnything"},
    {"type": "reject"},
    {"type": "signedBy", "keyType": "GPGKeys", "keyPath": str(KEYDIR / "pubring.gpg")},
    {"type": "signedBy", "keyType": "GPGKeys", "keyData": "mQENBF0=",
     "signedIdentity": {"type": "matchRepository"}},
    {"type": "signedBy", "keyType": "GPGKeys",
     "keyPaths": [str(KEYDIR / "pubring.gpg"), str(KEYDIR / "pubring.gpg")]},
    {"type": "sigstoreSigned", "keyData": B64["ec-a"]},
    {"type": "sigstoreSigned", "keyPath": str(KEYDIR / "ed25519.pub"),
     "signedIdentity": {"type": "matchExact"}},
    {"type": "sigstoreSigned", "keyDatas": [B64["rsa"], B64["ec384"]],
     "signedIdentity": {"type": "matchRepository"}},
    {"type": "sigstoreSigned", "keyPaths": [str(KEYDIR / "ec-a.pub")],
     "signedIdentity": {"type": "exactReference",
                        "dockerReference": "registry.example.com/team/app:v1"}},
    {"type": "sigstoreSigned", "keyData": B64["ec-b"],
     "signedIdentity": {"type": "exactRepository",
                        "dockerRepository": "registry.example.com/team/app"}},
    {"type": "sigstoreSigned", "keyData": B64["ec-a"],
     "signedIdentity": {"type": "remapIdentity", "prefix": "registry.example.com/team",
                        "signedPrefix": "localhost:5000/mirror"}},
    {"type": "sigstoreSigned", "keyData": B64["ec-a"], "fulcio": {"caPath": "/x"}},
    {"type": "sigstoreSigned", "keyData": B64["ec-a"], "rekorPublicKeyData": B64["ec-b"]},
]
SCOPES = ["", "docker.io", "docker.io/library/a", "registry.example.com/team/app:v1",
          "registry.example.com/team", "*.example.com", "localhost:5000", f"docker.io/b@{D1}",
          "[::1]:5000/a", "reg.example.com/Bad", "*", "index.docker.io/a", "a/b"]


@st.composite
def policy_docs(draw: st.DrawFn) -> dict[str, Any]:
    # Accept-anything twice as often: images get through often enough to check why.
    reqs = st.lists(st.sampled_from([REQUIREMENTS[0], *REQUIREMENTS]), min_size=1, max_size=3)
    doc: dict[str, Any] = {"default": draw(reqs)}
    if draw(st.booleans()):
        transports: dict[str, Any] = {}
        for name in draw(st.lists(st.sampled_from(
                ["docker", "atomic", "dir", "oci", "containers-storage", "nope"]),
                max_size=2, unique=True)):
            transports[name] = {s: draw(reqs) for s in draw(st.lists(
                st.sampled_from(SCOPES + ["/abs/path", "/", "rel"]), max_size=3, unique=True))}
        doc["transports"] = transports
    return doc


@st.composite
def sigstore_sources(draw: st.DrawFn, image: Reference | None = None,
                     digest: str | None = None) -> StaticSignatures:
    """Sigstore signatures by known keys, for the right or the wrong manifest and name (often
    for ``image`` itself or its remapped mirror name, and for ``digest``)."""
    digests = st.sampled_from([digest, digest, D1, D2] if digest else [D1, D2])
    names = st.sampled_from([image_exact(image), f"{full_name(image)}:v1",
                             "localhost:5000/mirror/app:v1"]) if image else st.nothing()
    sigs = []
    for _ in range(draw(st.integers(0, 3))):
        key = draw(st.sampled_from(["ec-a", "ec-a", *KEY_NAMES]))
        name = draw(names | references().map(str))
        payload = build_payload(COSIGN_TYPE, draw(digests), name,
                                creator=None, timestamp=None)
        sig = _sign(KEYS[key], payload)
        if draw(st.integers(0, 9)) == 0:
            sig = draw(st.sampled_from(["", "AAAA", sig[::-1], sig + "=="]))
        sigs.append(SigstoreSig(payload, sig))
    return StaticSignatures(simple=[], sigstore=sigs)  # no GPG blobs: gpg never starts


def _satisfied_by_some(req: SigstoreSigned, sigs: list[SigstoreSig], image: Reference,
                       manifest: bytes) -> bool:
    """An independent re-check: some signature verifies under the requirement's keys, is for
    this manifest and names an acceptable identity."""
    for sig in sigs:
        try:
            claims = verify_sigstore(req.public_keys, sig.payload, sig.signature_b64)
        except SignatureRejected:
            continue
        if digest_matches(claims.manifest_digest, manifest) and req.signed_identity.matches(
                image, parse_reference(claims.docker_reference)):
            return True
    return False


@given(st.one_of(policy_docs().flatmap(hostile_bytes), policy_docs().map(
    lambda d: json.dumps(d).encode())), references(), st.sampled_from([0, 1]), st.data())
@example(json.dumps({"default": [{"type": "signedBy", "keyType": "GPGKeys",
                                  "keyPath": "/a\x00b"}]}).encode(),
         parse_reference("a"), 0, None)
@example(b'{"default": [{"type": "signedBy", "keyType": "GPGKeys", "keyPath": "/a\\ud800"}]}',
         parse_reference("a"), 0, None)
def test_policy_loads_or_names_the_field_and_evaluation_is_sound(
        data: bytes, ref: Reference, which: int, draws: st.DataObject | None) -> None:
    source = (draws.draw(sigstore_sources(ref.with_default_tag(), _digest(MANIFESTS[which])))
              if draws else StaticSignatures())
    try:
        policy = parse_policy(data, origin="host policy")
    except InvalidArgument as e:
        assert e.message.startswith("host policy: ")
        event("policy refused")
        return
    manifest = MANIFESTS[which]
    digest = _digest(manifest)
    image = ref.with_default_tag()
    try:
        check_image([policy], ref, manifest, digest, source)
    except PolicyDenied as e:
        assert e.message
        event("image refused")
        return
    event("image accepted under " + ",".join(sorted(
        {r.type_name for r in policy.lookup(image).requirements})))
    # Accepted: the digest pinned by the name is this manifest's, and every requirement in
    # force really is satisfied.
    assert ref.digest is None or ref.digest == digest
    for req in policy.lookup(image).requirements:
        assert req.type_name in ("insecureAcceptAnything", "sigstoreSigned"), req
        if isinstance(req, SigstoreSigned):
            assert _satisfied_by_some(req, source.sigstore, image, manifest)


SIGSTORE_REQUIREMENTS = [r for r in REQUIREMENTS[5:11]]


@given(st.sampled_from(SIGSTORE_REQUIREMENTS), references(), st.sampled_from([0, 1]),
       st.data())
def test_sigstore_requirement_accepts_exactly_when_a_signature_fits(
        req: dict[str, Any], ref: Reference, which: int, data: st.DataObject) -> None:
    """check_image agrees with an independent check: accepted iff some signature verifies
    under the requirement's keys, is for this manifest and names an acceptable identity."""
    image = ref.with_default_tag()
    manifest = MANIFESTS[which]
    source = data.draw(sigstore_sources(image, _digest(manifest)))
    policy = parse_policy(json.dumps({"default": [req]}).encode())
    (parsed,) = policy.lookup(image).requirements
    assert isinstance(parsed, SigstoreSigned)
    expected = _satisfied_by_some(parsed, source.sigstore, image, manifest) and (
        ref.digest is None or ref.digest == _digest(manifest))
    event(f"expected {'accept' if expected else 'refuse'}")
    try:
        check_image([policy], ref, manifest, _digest(manifest), source)
    except PolicyDenied:
        assert not expected
    else:
        assert expected


@given(policy_docs(), references(), sigstore_sources(), st.sampled_from([0, 1]))
def test_reject_in_force_refuses_everything(doc: dict[str, Any], ref: Reference,
                                            source: StaticSignatures, which: int) -> None:
    """A policy whose scope for the image contains "reject" refuses it, whatever is signed."""
    try:
        policy = parse_policy(json.dumps(doc).encode())
    except InvalidArgument:
        return
    reject_everywhere = parse_policy(b'{"default": [{"type": "reject"}]}')
    manifest = MANIFESTS[which]
    for policies in ([reject_everywhere], [policy, reject_everywhere],
                     [reject_everywhere, policy]):
        with pytest.raises(PolicyDenied):
            check_image(policies, ref, manifest, _digest(manifest), source)
    if any(r.type_name == "reject" for r in policy.lookup(ref.with_default_tag()).requirements):
        with pytest.raises(PolicyDenied):
            check_image([policy], ref, manifest, _digest(manifest), source)


@given(st.sampled_from(KEY_NAMES), references(), st.sampled_from(
    [{"type": "matchRepoDigestOrExact"}, {"type": "matchRepository"}, {"type": "matchExact"}]))
def test_signature_for_another_manifest_is_refused(key: str, ref: Reference,
                                                   identity: dict[str, str]) -> None:
    image = ref.with_default_tag()
    policy = parse_policy(json.dumps({"default": [{
        "type": "sigstoreSigned", "keyData": B64[key], "signedIdentity": identity}]}).encode())
    # Signed by the trusted key, for exactly this name, but for the other manifest.
    payload = build_payload(COSIGN_TYPE, D2, image_exact(image), creator=None, timestamp=None)
    source = StaticSignatures(sigstore=[SigstoreSig(payload, _sign(KEYS[key], payload))])
    with pytest.raises(PolicyDenied):
        check_image([policy], ref, MANIFESTS[0], D1, source)
    # ... and the caller's claimed digest is not trusted either.
    with pytest.raises(PolicyDenied, match="digest mismatch"):
        check_image([policy], ref, MANIFESTS[0], D2, source)


# -- identities ------------------------------------------------------------------------------

scope_text = st.one_of(
    st.text(st.sampled_from("aZ09.-_:/@*[]é\x00 "), max_size=40),
    st.builds(lambda a, b: a + b, st.sampled_from(SCOPES), st.sampled_from(
        ["", ":", "/", "@sha256:" + "a" * 64, ":v1@" + D1, "/..", ".", "-", "*"])),
    st.sampled_from(["*." + "a." * 3000 + "com", "a" * 5000 + ".com", "-" * 3000 + "a",
                     "docker.io/" + "a-" * 3000 + "!", "[" + ":" * 3000]),
)


@given(scope_text)
def test_validate_docker_scope_only_raises_value_error(scope: str) -> None:
    try:
        validate_docker_scope(scope)
    except ValueError as e:
        assert str(e)
        return
    assert scope and "\x00" not in scope and " " not in scope


@given(references())
def test_scope_search_order_lists_valid_scopes_most_specific_first(ref: Reference) -> None:
    scopes = scope_search_order(ref)
    for s in scopes:
        validate_docker_scope(s)
    image = ref.with_default_tag()
    assert scopes[0] in (image_exact(image), f"{full_name(image)}@{image.digest}")
    assert full_name(ref) in scopes
    # Whichever subset of them a policy configures, the most specific configured one wins.
    reqs = [{"type": "insecureAcceptAnything"}]
    for cut in range(len(scopes)):
        doc = {"default": reqs, "transports": {"docker": {s: reqs for s in scopes[cut:]}}}
        assert parse_policy(json.dumps(doc).encode()).lookup(image).scope == scopes[cut]


@given(references(), references(), st.sampled_from(REF_DOMAINS[1:4]),
       st.sampled_from(["team", "team/app", "a", "mirror"]))
def test_identity_matching_semantics(image: Reference, signed: Reference, domain: str,
                                     path: str) -> None:
    image = image.with_default_tag()
    exact = MatchExact().matches(image, signed)
    assert exact == (_signed_exact(signed) == image_exact(image))
    assert MatchRepository().matches(image, signed) == (full_name(signed) == full_name(image))
    if MatchRepoDigestOrExact().matches(image, signed):
        assert full_name(signed) == full_name(image)
        assert signed.tag is not None or signed.digest is not None
        if image.tag:
            assert exact
    remap = RemapIdentity(f"{domain}/{path}", "localhost:5000/mirror")
    remapped = remap.remap(image)
    matched = remap.matches(image, signed)
    if not full_name(image).startswith(f"{domain}/{path}"):
        assert remapped == image
        assert matched == MatchRepoDigestOrExact().matches(image, signed)
    if matched:
        assert full_name(signed).startswith("localhost:5000/mirror") or (
            full_name(signed) == full_name(image))


@given(mutated({"type": "remapIdentity", "prefix": "registry.example.com/team",
                "signedPrefix": "localhost:5000/m", "dockerReference": "a:1",
                "dockerRepository": "a"}, max_ops=4))
def test_parse_signed_identity_contract(doc: Any) -> None:
    assume(not isinstance(doc, Raw | Dup))
    try:
        identity = parse_signed_identity(doc, "signedIdentity")
    except InvalidArgument as e:
        assert e.message.startswith("signedIdentity")
        return
    identity.matches(parse_reference("a:1"), parse_reference("registry.example.com/team/x:1"))


# -- registries.d ----------------------------------------------------------------------------

REGISTRIES_DOC = {
    "default-docker": {"lookaside": "file:///var/lib/sigs", "use-sigstore-attachments": True},
    "docker": {"registry.example.com/team": {"lookaside": "https://sigs.example.com/x",
                                             "lookaside-staging": "file:///tmp/staging"},
               "localhost:5000": {"sigstore": "http://127.0.0.1:8080/"}},
}
YAML_SNIPPETS = [
    "a: &x [1, 2]\nb: *x\n", "default-docker: 2001-02-30\n", "default-docker: !!int abc\n",
    "default-docker: " + "1" * 5000 + "\n", "docker:\n  <<: {a: 1}\n",
    "default-docker: !!binary '%%%'\n", "default-docker: !!python/object:os.system {}\n",
    "default-docker: {lookaside: \"file:///\\ud800\"}\n",
    "default-docker: {lookaside: \"file:///a\\x00b\"}\n", "? [a]\n: 1\n", "docker: !!set {a}\n",
    "default-docker: {lookaside: 'http://['}\n", "\t-\n", "- a\n- b\n", "docker: [1]\n",
    "docker:\n  2001-01-01: {}\n", "docker: {a.com: {lookaside: !!float .nan}}\n",
    "%YAML 1.1\n---\na: 1\n...\n---\nb: 2\n", "[" * 200, "{a: 1, a: 2}\n",
    "default-docker: {use-sigstore-attachments: yes}\n",
]
url_text = st.one_of(
    st.sampled_from(["file:///x", "file://localhost/x", "file://host/x", "file:x", "http://[",
                     "http://[::1", "http://a\uff03b/", "https://xn--a.com/", "http://a:x/",
                     "http:///x", "ftp://a/", "file:///%00", "file:///x?q", "https://é.com/",
                     "http://a b/", "https://a/\ud800", "file:///\x7f", "http://\u200b/"]),
    st.builds(lambda s, t: s + t, st.sampled_from(["file://", "http://", "https://", ""]),
              st.text(st.sampled_from("a/:.[]@%0-\x00é \\?#"), max_size=20)),
)


@st.composite
def registries_yaml(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["mutated", "mutated", "snippet", "urls"]))
    if kind == "snippet":
        return draw(st.sampled_from(YAML_SNIPPETS)).encode()
    if kind == "urls":
        doc: Any = {"default-docker": {draw(st.sampled_from(
            ["lookaside", "lookaside-staging", "sigstore"])): draw(url_text)}}
    else:
        doc = draw(mutated(REGISTRIES_DOC))
        if any(isinstance(_get(doc, p), Raw | Dup) for p in _paths(doc)):
            return dump(doc).encode()  # JSON is YAML too
    text = yaml.safe_dump(doc, allow_unicode=draw(st.booleans()))
    return text.encode("utf-8", "surrogatepass")


@given(registries_yaml(), references())
@example(b"default-docker: 2001-02-30\n", parse_reference("a"))
@example(b"default-docker: !!int abc\n", parse_reference("a"))
@example(b"docker: {a.com: " + b"9" * 5000 + b"}\n", parse_reference("a"))
@example(b"default-docker: {lookaside: 'http://['}\n", parse_reference("a"))
@example(b'default-docker: {lookaside: "file:///\\ud800"}\n', parse_reference("a"))
def test_registries_d_contract(data: bytes, ref: Reference) -> None:
    try:
        config = parse_registries_d(data, source="r.yaml")
    except InvalidArgument as e:
        assert e.message.startswith("r.yaml")
        event("registries.d refused")
        return
    event("registries.d accepted")
    sections = [config.default_docker, *config.docker.values()]
    for section in sections:
        if section is None:
            continue
        for url in (section.lookaside, section.lookaside_staging):
            if url is not None:
                assert validate_base_url(url) == url
        if section.lookaside_staging is not None:
            validate_base_url(section.lookaside_staging, writable=True)
    assert config.section_for(ref) in sections
    base = config.lookaside_base(ref)
    if base is not None:
        assert signature_url(base, ref, D1, 1).endswith(f"@sha256={D1[7:]}/signature-1")


def test_registries_d_refuses_an_alias_bomb() -> None:
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n"
        for p, c in zip("abcdefgh", "bcdefghi", strict=True))
    with pytest.raises(InvalidArgument, match="aliases"):
        parse_registries_d(bomb.encode())


# -- lookaside -------------------------------------------------------------------------------


@given(url_text, st.booleans(), references(), st.integers(-2, 70))
@example("http://[", False, parse_reference("a"), 1)
@example("https://xn--a.com/", False, parse_reference("a"), 1)
@example("https://a.com/#", False, parse_reference("a"), 1)
def test_lookaside_urls(url: str, writable: bool, ref: Reference, index: int) -> None:
    try:
        base = validate_base_url(url, writable=writable)
    except InvalidArgument as e:
        assert "lookaside URL" in e.message
        return
    assert base == url
    try:
        out = signature_url(base, ref, D1, index)
    except InvalidArgument:
        assert index < 1
        return
    assert index >= 1
    assert out == f"{base.rstrip('/')}/{ref.repository}@sha256={D1[7:]}/signature-{index}"
    assert "/../" not in out[len(base.rstrip("/")):]
    # The signature's path stays in the URL's path (nothing after a "?" or "#").
    assert httpx.URL(out).path.endswith(f"/signature-{index}") if base[:4] == "http" else True


@st.composite
def lookaside_servers(draw: st.DrawFn) -> list[tuple[int, list[bytes], str | None]]:
    """What a hostile lookaside server answers for signature-1, -2, ...: status, body chunks,
    redirect target."""
    answers = []
    for _ in range(draw(st.integers(0, 6))):
        status = draw(st.sampled_from([200, 200, 200, 404, 500, 302, 403]))
        chunks = draw(st.lists(st.binary(max_size=40), max_size=3))
        location = draw(st.sampled_from([None, "http://xn--a.com/", "http://a:x/", "\x00",
                                         "http://[::1", "/elsewhere", "http://\u00e9xn--/"]))
        answers.append((status, chunks, location))
    return answers


@given(lookaside_servers(), st.integers(1, 4), st.integers(1, 60))
@example([(302, [], "http://xn--a.com/")], 1, 1)  # httpx lets an IDNA error through
def test_read_signatures_from_hostile_server(
        answers: list[tuple[int, list[bytes], str | None]], max_count: int,
        max_size: int) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        name = request.url.path.rsplit("/", 1)[-1]
        if not name.startswith("signature-"):
            return httpx.Response(404)
        index = int(name.removeprefix("signature-"))
        if index > len(answers):
            return httpx.Response(404)
        status, chunks, location = answers[index - 1]
        headers = {"Location": location} if status == 302 and location else {}
        return httpx.Response(status, headers=headers, content=iter(chunks))

    client = httpx.Client(transport=httpx.MockTransport(handler), follow_redirects=True)
    with client:
        try:
            got = read_signatures("https://sigs.example.com/s", parse_reference("a/b:1"), D1,
                                  max_count=max_count, max_size=max_size, client=client)
        except (UpstreamFailure, UnsafeContent) as e:
            assert e.message
            event(type(e).__name__)
            return
    event(f"read {len(got)} signatures")
    assert len(got) <= max_count and all(len(g) <= max_size for g in got)
    # What came back is exactly the run of 200 answers before the first 404.
    assert got == [b"".join(chunks) for _, chunks, _ in answers[:len(got)]]
    assert all(status == 200 for status, _, _ in answers[:len(got)])


@given(st.lists(st.binary(min_size=1, max_size=50), max_size=5),
       st.lists(st.binary(min_size=1, max_size=50), max_size=5), references())
def test_lookaside_file_round_trip_is_confined(first: list[bytes], second: list[bytes],
                                               ref: Reference) -> None:
    shm = Path("/dev/shm")  # writes are fsynced: cheap there, slow on a disk
    root = Path(tempfile.mkdtemp(prefix="berth-fuzz-la-", dir=shm if shm.is_dir() else None))
    try:
        base = root.as_uri()
        for sigs in (first, second):
            paths = write_signatures(base, ref, D1, sigs)
            assert all(p.resolve().is_relative_to(root.resolve()) for p in paths)
            assert read_signatures(base, ref, D1) == sigs
        files = [p for p in root.rglob("*") if p.is_file()]
        assert len(files) == len(second)
    finally:
        shutil.rmtree(root)


@given(st.text(st.sampled_from("a/.%0-\x00\ud800é \\"), max_size=12), references())
@example("%00", parse_reference("a"))
@example("\ud800", parse_reference("a"))
def test_read_signatures_hostile_file_base(suffix: str, ref: Reference) -> None:
    try:
        read_signatures(f"file://{KEYDIR}/{suffix}", ref, D1)
    except BerthError as e:
        assert e.message


# -- cosign artifacts --------------------------------------------------------------------------


def _artifact_manifest() -> dict[str, Any]:
    payload = build_payload(COSIGN_TYPE, D1, "registry.example.com/a:v1", creator=None,
                            timestamp=None)
    sig = SigstoreSig(payload, _sign(KEYS["ec-a"], payload))
    return json.loads(build_cosign_artifact(D1, [sig, sig]).manifest)


ARTIFACT = _artifact_manifest()


@given(hostile_bytes(ARTIFACT))
def test_parse_cosign_manifest_contract(data: bytes) -> None:
    try:
        layers = parse_cosign_manifest(data)
    except UnsafeContent as e:
        assert e.message
        event("manifest refused")
        return
    event(f"manifest accepted with {len(layers)} layers")
    for layer in layers:
        assert layer.digest.startswith("sha256:") and len(layer.digest) == 71
        assert 0 < layer.size <= MAX_SIGNATURE_SIZE and type(layer.size) is int
        assert isinstance(layer.signature_b64, str) and layer.signature_b64


@given(st.lists(st.tuples(st.binary(min_size=1, max_size=80), st.text(
    st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=20)), min_size=1,
    max_size=5), st.binary(max_size=80))
def test_cosign_artifact_round_trip(items: list[tuple[bytes, str]], other: bytes) -> None:
    sigs = [SigstoreSig(p, s) for p, s in items]
    artifact = build_cosign_artifact(D1, sigs)
    layers = parse_cosign_manifest(artifact.manifest)
    assert [sigstore_sig_from_blob(layer, artifact.blobs[layer.digest]) for layer in layers] == sigs
    for layer in layers:
        if other != artifact.blobs[layer.digest]:
            with pytest.raises(UnsafeContent):
                sigstore_sig_from_blob(layer, other)


# -- registry signature extension ------------------------------------------------------------

SIGEXT_DOC = {"signatures": [
    {"schemaVersion": 2, "type": "atomic", "name": f"{D1}@{'0' * 32}",
     "content": base64.b64encode(b"signature one").decode()},
    {"schemaVersion": 2, "type": "atomic", "name": f"{D1}@{'1' * 32}",
     "content": base64.b64encode(b"two").decode()},
]}


@given(hostile_bytes(SIGEXT_DOC))
@example(b"[" * 100000)
def test_sigext_parse_list_contract(data: bytes) -> None:
    try:
        out = parse_list(data, "registry r")
    except (UpstreamFailure, UnsafeContent) as e:
        assert e.message.startswith("registry r")
        return
    for name, blob in out:
        assert isinstance(name, str) and isinstance(blob, bytes) and blob


@given(st.lists(st.tuples(st.text(max_size=10), st.binary(min_size=1, max_size=40)),
                max_size=70))
def test_sigext_round_trip(entries: list[tuple[str, bytes]]) -> None:
    doc = {"signatures": [{"schemaVersion": 2, "type": "atomic", "name": n,
                           "content": base64.b64encode(b).decode()} for n, b in entries]}
    data = json.dumps(doc).encode()
    if len(entries) > 64:
        with pytest.raises(UnsafeContent):
            parse_list(data, "r")
    else:
        assert parse_list(data, "r") == entries


# -- gpg status lines ------------------------------------------------------------------------

TRUSTED = "A" * 40
OTHER_FPR = "B" * 40
STATUS_LINES = [
    "NEWSIG", "PLAINTEXT 62 0 ", f"GOODSIG {TRUSTED[-16:]} someone",
    f"VALIDSIG {TRUSTED} 2024-01-01 0 0 4 0 1 10 00 {TRUSTED}",
    f"VALIDSIG {OTHER_FPR} 2024-01-01 0 0 4 0 1 10 00 {OTHER_FPR}",
    f"VALIDSIG {OTHER_FPR} 2024-01-01 0 0 4 0 1 10 00 {TRUSTED}",
    f"VALIDSIG {TRUSTED} 2024-01-01 0 0 4 0 1 10 01 {TRUSTED}", f"VALIDSIG {TRUSTED}",
    "VALIDSIG", f"ERRSIG {OTHER_FPR[-16:]} 1 8 00 1700000000 9 -", "ERRSIG", "BADSIG x",
    "EXPKEYSIG x", "EXPSIG x", "REVKEYSIG x", "FAILURE gpg-exit 1", "NODATA 1", "ENC_TO x",
    "BEGIN_DECRYPTION", "TRUST_UNDEFINED", "", " ", "GOODSIG", "KEY_CONSIDERED x 0",
]


GOOD_STATUS = [STATUS_LINES[0], "KEY_CONSIDERED x 0", STATUS_LINES[1], STATUS_LINES[2],
               STATUS_LINES[3]]


@st.composite
def status_lines(draw: st.DrawFn) -> list[str]:
    """A good verification's status lines with a few lines added, dropped or replaced."""
    lines = list(GOOD_STATUS)
    for _ in range(draw(st.integers(0, 3))):
        op = draw(st.sampled_from(["insert", "drop", "replace"]))
        i = draw(st.integers(0, len(lines)))
        if op == "insert":
            lines.insert(i, draw(st.sampled_from(STATUS_LINES)))
        elif lines and i < len(lines):
            if op == "drop":
                del lines[i]
            else:
                lines[i] = draw(st.sampled_from(STATUS_LINES))
    return lines


@given(st.one_of(status_lines(), st.lists(st.sampled_from(STATUS_LINES), max_size=8)),
       st.sampled_from([0, 0, 0, 1, 2]), st.binary(max_size=40))
def test_gpg_status_judgement_is_never_fooled(lines: list[str], returncode: int,
                                              noise: bytes) -> None:
    import subprocess
    stdout = noise + b"\n" + "".join(f"[GNUPG:] {line}\n" for line in lines).encode()
    parse_status(stdout)
    proc = subprocess.CompletedProcess(["gpg"], returncode, stdout, b"gpg: \x1b[31m oops\n")
    try:
        fingerprint = _judge(proc, frozenset({TRUSTED}))
    except SignatureRejected as e:
        assert e.reason and "\x1b" not in e.reason
        event("status refused")
        return
    event("status accepted")
    keywords = [k for k, _ in parse_status(stdout)]
    assert fingerprint == TRUSTED and returncode == 0
    for once in ("NEWSIG", "PLAINTEXT", "GOODSIG", "VALIDSIG"):
        assert keywords.count(once) == 1
    assert not {"BADSIG", "ERRSIG", "EXPKEYSIG", "EXPSIG", "REVKEYSIG", "FAILURE",
                "NODATA"} & set(keywords)


# -- helpers must be able to fail ------------------------------------------------------------


def test_hostile_builders_produce_what_they_claim() -> None:
    assert dump(Dup([("a", 1), ("a", 2)])) == '{"a":1,"a":2}'
    assert dump(["\ud800", Raw("NaN")]) == '["\\ud800",NaN]'
    assert not math.isfinite(json.loads("[1e999]")[0])
    check: Callable[[bytes], Any] = json.loads
    assert check(dump(SAMPLE_DOC).encode()) == SAMPLE_DOC

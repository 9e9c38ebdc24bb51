"""Property tests (hypothesis) for the image metadata that comes from untrusted parties:
references, registry manifests / indexes / configs, WWW-Authenticate challenges, Location
headers and error bodies, run settings read from an image config, and image archives.

The contract under test: a well-formed result, or a BerthError naming the problem; never
another exception, never a hang, and for archives nothing written outside the blob store.
Run with BERTH_FUZZ=1 to explore many more examples (see conftest.py).
"""

from __future__ import annotations

import copy
import gzip
import hashlib
import io
import json
import math
import os
import string
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import assume, example, given
from hypothesis import strategies as st

from berth.errors import InvalidArgument, NotFound, UnsafeContent, UpstreamFailure
from berth.image import runconfig
from berth.image.archive import (
    DOCKER_LIST,
    DOCKER_MANIFEST,
    LAYER_GZIP,
    LAYER_TAR,
    OCI_CONFIG,
    OCI_INDEX,
    OCI_MANIFEST,
    holds_images,
    host_arch,
    import_archive,
)
from berth.image.blobs import BlobStore
from berth.image.history import image_history
from berth.image.reference import (
    MAX_NAME,
    Reference,
    normalize_tag_reference,
    parse_reference,
)
from berth.image.registry import mediatypes as mt
from berth.image.registry.challenge import ChallengeError, parse_challenges
from berth.image.registry.config import RegistryLimits
from berth.image.registry.httputil import clean_text, error_summary, resolve_location
from berth.image.registry.manifest import (
    Descriptor,
    check_json_depth,
    document_media_type,
    load_json,
    parse_image_config,
    parse_image_manifest,
    parse_index,
)
from berth.image.registry.platforms import matches, select
from berth.image.types import ImageManifest, LayerRef
from berth.service import health

LIMITS = RegistryLimits()
HEX = "0123456789abcdef"
_TCHAR = string.ascii_letters + string.digits + "!#$%&'*+-.^_`|~"


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


# -- generic strategies -----------------------------------------------------------------------

digests = st.one_of(
    st.text(HEX, min_size=64, max_size=64).map(lambda h: f"sha256:{h}"),
    st.sampled_from(["sha256:" + "A" * 64, "sha512:" + "a" * 128, "sha256:", "", "sha256:../x",
                     "sha256:" + "a" * 63]),
)
valid_digests = st.text(HEX, min_size=64, max_size=64).map(lambda h: f"sha256:{h}")
weird_text = st.one_of(
    st.text(max_size=12),
    st.sampled_from(["", "\x00", "\udcff", "\u202e", "ǅ", "١", "é", " ", "\n", "../..", "/",
                     "a" * 300]),
)
numbers = st.one_of(
    st.integers(-(1 << 70), 1 << 70), st.just(10 ** 400), st.just(-(10 ** 400)),
    st.floats(allow_nan=True, allow_infinity=True), st.booleans(),
)
scalars = st.one_of(st.none(), numbers, weird_text)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(weird_text, inner, max_size=4)),
    max_leaves=12,
)


def _slots(doc: Any) -> list[tuple[Any, Any]]:
    """Every (container, key or index) in a JSON document, outermost first."""
    out: list[tuple[Any, Any]] = []
    stack = [doc]
    while stack:
        node = stack.pop()
        keys = list(node) if isinstance(node, dict) else range(len(node)) \
            if isinstance(node, list) else []
        for k in keys:
            out.append((node, k))
            stack.append(node[k])
    return out


@st.composite
def mutated(draw: st.DrawFn, doc: Any, max_ops: int = 3) -> Any:
    """``doc`` with a few fields dropped, retyped, wrapped in a list or nested deeper."""
    doc = copy.deepcopy(doc)
    for _ in range(draw(st.integers(0, max_ops))):
        slots = _slots(doc)
        if not slots:
            break
        container, key = draw(st.sampled_from(slots))
        op = draw(st.sampled_from(["drop", "replace", "replace", "wrap", "nest"]))
        if op == "drop":
            del container[key]
        elif op == "replace":
            container[key] = draw(json_values)
        elif op == "wrap":
            container[key] = [container[key]]
        else:
            container[key] = {"x": container[key]}
    return doc


# -- references -------------------------------------------------------------------------------

_COMPONENT_PIECES = st.lists(st.text("abz09", min_size=1, max_size=4), min_size=1, max_size=3)
components = st.builds(lambda parts, seps: "".join(
    p + (seps[i] if i < len(parts) - 1 else "") for i, p in enumerate(parts)),
    _COMPONENT_PIECES, st.lists(st.sampled_from([".", "_", "__", "-", "--"]), min_size=3,
                                max_size=3))
domains = st.one_of(
    st.sampled_from(["docker.io", "index.docker.io", "registry-1.docker.io", "localhost",
                     "localhost:5000", "quay.io", "Example.COM:443", "[::1]:5000", "[::1]",
                     "a.b", "127.0.0.1:80"]),
    st.builds(lambda a, b, port: f"{a}.{b}" + (f":{port}" if port is not None else ""),
              st.text("ab0-", min_size=1, max_size=5).filter(
                  lambda s: s[0] != "-" and s[-1] != "-"),
              st.text("abc", min_size=1, max_size=3), st.none() | st.integers(0, 65535)),
)
tags = st.one_of(st.text(string.ascii_letters + string.digits + "_.-", min_size=1,
                         max_size=10).filter(lambda t: t[0] not in ".-"),
                 st.sampled_from(["latest", "1.0", "_x", "T" * 128]))


@st.composite
def valid_refs(draw: st.DrawFn) -> tuple[str, str | None, list[str], str | None, str | None]:
    domain = draw(st.none() | domains)
    path = draw(st.lists(components, min_size=1, max_size=3))
    tag = draw(st.none() | tags)
    digest = draw(st.none() | valid_digests)
    text = (f"{domain}/" if domain else "") + "/".join(path)
    text += (f":{tag}" if tag else "") + (f"@{digest}" if digest else "")
    return text, domain, path, tag, digest


ref_alphabet = "abAB09._-:/@[]" + "\x00 é\u212a"
ref_texts = st.one_of(
    st.text(ref_alphabet, max_size=40),
    st.text(max_size=20),
    valid_refs().map(lambda v: v[0]),
    st.builds(lambda a, b: a + b, valid_refs().map(lambda v: v[0]), st.text(ref_alphabet,
                                                                            max_size=4)),
)


def _check_reference(ref: Reference) -> None:
    """What every parsed reference guarantees, and that its spellings parse back to it."""
    assert ref.registry not in ("docker.io", "index.docker.io", "registry-1.docker.io")
    assert all(c in string.ascii_lowercase + string.digits + "._-/" for c in ref.repository)
    if ref.registry is None:
        assert "/" in ref.repository
    if ref.tag is not None:
        assert ref.tag.isascii() and len(ref.tag) <= 128
    assert len(f"{ref.domain}/{ref.repository}") <= MAX_NAME
    port = ref.domain.rpartition(":")[2]
    assert not port.isdigit() or int(port) <= 65535
    assert httpx.URL(f"https://{ref.domain}/v2/").host  # the client's URL for it is sound
    assert parse_reference(str(ref)) == ref
    assert parse_reference(ref.familiar()) == ref
    assert parse_reference(ref.name) == Reference(ref.registry, ref.repository)


@given(ref_texts)
@example("docker.io/my.org/app:1")  # familiar "my.org/app" named registry my.org
@example("docker.io/library/a/b")  # familiar "a/b" named user a's repository
@example("docker.io/localhost/app")
@example("a:ǅ")  # a non-ASCII tag (Python's \w is Unicode, Docker's is not)
@example("a:\u0661")
@example("localhost:70000/app")  # a socket would wrap it to port 4464
@example("[:]/app")  # httpx.InvalidURL when the client builds its URL
@example("a" * 250)  # its normalised name (docker.io/library/...) is too long
def test_parse_reference_contract(text: str) -> None:
    try:
        ref = parse_reference(text)
    except InvalidArgument as exc:
        assert "invalid reference format" in exc.message
        return
    _check_reference(ref)


@given(valid_refs())
def test_valid_references_parse_to_their_parts(
        parts: tuple[str, str | None, list[str], str | None, str | None]) -> None:
    text, domain, path, tag, digest = parts
    inferred = domain is None and len(path) > 1 and ("." in path[0] or path[0] == "localhost")
    if inferred:
        domain, path = path[0], path[1:]  # a first part with a "." is a domain
    try:
        ref = parse_reference(text)
    except InvalidArgument as exc:
        # the only refusals of a well-formed reference: a too long name, or a first part
        # taken for a domain that is not one ("a_b.c/d")
        assert "longer than" in exc.message or inferred and "domain" in exc.message
        return
    assert ref.tag == tag and ref.digest == digest
    _check_reference(ref)
    domain = domain.lower() if domain else None  # host names are case-insensitive
    if domain in ("docker.io", "index.docker.io", "registry-1.docker.io") or domain is None:
        want = "/".join(path)
        assert ref.registry is None
        assert ref.repository in (want, f"library/{want}")
    else:
        assert (ref.registry, ref.repository) == (domain, "/".join(path))


@given(ref_texts)
def test_normalize_tag_reference_is_idempotent(text: str) -> None:
    try:
        once = normalize_tag_reference(text)
    except InvalidArgument:
        return
    assert normalize_tag_reference(once) == once
    assert parse_reference(once).tag is not None


# -- registry JSON: depth check and loading ---------------------------------------------------

json_soup = st.lists(st.sampled_from(['[', ']', '{', '}', '"', '\\', '\\"', ':', ',', 'a', '1',
                                      ' ', 'null', '"k":', 'é', '\x00']),
                     max_size=60).map("".join)


@given(st.one_of(json_soup.map(str.encode), st.binary(max_size=60),
                 json_values.map(lambda v: json.dumps(v).encode())))
@example(b"[" * 5000)
@example(b'"' + b'\\"' * 2000)
def test_load_json_contract(data: bytes) -> None:
    try:
        doc = load_json(data, 8, "m")
    except UnsafeContent:
        return
    assert isinstance(doc, dict)
    assert _depth(doc) <= 8


def _depth(doc: Any) -> int:
    if isinstance(doc, dict):
        return 1 + max(map(_depth, doc.values()), default=0)
    if isinstance(doc, list):
        return 1 + max(map(_depth, doc), default=0)
    return 0


def test_json_depth_check_is_linear() -> None:
    """An opening quote and then escaped quotes made the string pattern retry from each one:
    minutes of CPU for a manifest within the size limit."""
    text = '"' + '\\"' * (1 << 20)
    start = time.monotonic()
    check_json_depth(text, 32, "m")
    with pytest.raises(UnsafeContent):
        load_json(text.encode(), 32, "m")
    assert time.monotonic() - start < 5


# -- manifests, indexes, configs --------------------------------------------------------------

media_types = st.one_of(
    st.sampled_from(sorted(mt.MANIFESTS | mt.INDEXES | mt.CONFIGS | mt.LAYERS | mt.DOCKER_SCHEMA1
                           | {mt.OCI_LAYER_ZSTD, "application/vnd.docker.image.rootfs.foreign."
                              "diff.tar.gzip", "application/json", ""})),
    weird_text,
)
sizes = st.one_of(st.integers(0, 1 << 20), st.integers(-5, 1 << 40))
platforms_ = st.builds(lambda os_, arch, variant: {"os": os_, "architecture": arch,
                                                   **({"variant": variant} if variant else {})},
                       st.sampled_from(["linux", "windows", "Linux"]),
                       st.sampled_from(["amd64", "arm64", "arm", "386", "s390x"]),
                       st.none() | st.sampled_from(["v6", "v7", "v8", ""]))


def descriptors(media: st.SearchStrategy[str]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({"mediaType": media, "digest": digests, "size": sizes},
                                 optional={"platform": platforms_, "urls": st.just(["http://x"]),
                                           "annotations": st.just({"a": "b"})})


manifest_docs = st.fixed_dictionaries({
    "schemaVersion": st.sampled_from([2, 2, 2, 1, 3, "2", None]),
    "mediaType": st.sampled_from([mt.OCI_MANIFEST, mt.DOCKER_MANIFEST]) | media_types,
    "config": descriptors(st.sampled_from(sorted(mt.CONFIGS)) | media_types),
    "layers": st.lists(descriptors(st.sampled_from(sorted(mt.LAYERS)) | media_types),
                       max_size=4),
})
index_docs = st.fixed_dictionaries({
    "schemaVersion": st.sampled_from([2, 2, 1, None]),
    "mediaType": st.sampled_from([mt.OCI_INDEX, mt.DOCKER_LIST]) | media_types,
    "manifests": st.lists(descriptors(st.sampled_from(sorted(mt.MANIFESTS))), max_size=4),
})
content_types = st.none() | st.sampled_from(sorted(mt.MANIFESTS | mt.INDEXES | mt.DOCKER_SCHEMA1)
                                            ) | weird_text


def _check_descriptor(d: Descriptor, max_size: int) -> None:
    assert isinstance(d.media_type, str)
    assert len(d.digest) == 71 and d.digest.startswith("sha256:")
    assert all(c in HEX for c in d.digest[7:])
    assert type(d.size) is int and 0 <= d.size <= max_size
    if d.platform is not None:
        assert isinstance(d.platform.os, str) and isinstance(d.platform.architecture, str)
        assert d.platform.variant is None or isinstance(d.platform.variant, str)


@given(st.one_of(manifest_docs, index_docs).flatmap(mutated), content_types)
@example({"schemaVersion": 2, "mediaType": []}, None)  # TypeError: unhashable type: 'list'
@example({"schemaVersion": 2, "mediaType": {}}, None)
def test_document_media_type_contract(doc: Any, content_type: str | None) -> None:
    assume(isinstance(doc, dict))
    try:
        media = document_media_type(doc, content_type, "m")
    except (UnsafeContent, InvalidArgument):
        return
    assert media in mt.MANIFESTS | mt.INDEXES
    assert doc.get("schemaVersion") == 2


@given(manifest_docs.flatmap(mutated))
def test_parse_image_manifest_contract(doc: Any) -> None:
    assume(isinstance(doc, dict))
    try:
        config, layers = parse_image_manifest(doc, LIMITS, "m")
    except UnsafeContent:
        return
    assert config.media_type in mt.CONFIGS
    _check_descriptor(config, LIMITS.max_config_bytes)
    assert len(layers) == len(doc["layers"]) <= LIMITS.max_layers
    for layer, raw in zip(layers, doc["layers"], strict=True):
        _check_descriptor(layer, LIMITS.max_blob_bytes)
        assert layer.media_type in mt.LAYERS
        assert raw.get("urls") is None


wanted_platforms = st.tuples(st.sampled_from(["linux", "windows"]),
                             st.sampled_from(["amd64", "arm64", "arm"]),
                             st.none() | st.sampled_from(["v7", "v8"]))


@given(index_docs.flatmap(mutated), wanted_platforms)
def test_parse_index_and_select_contract(doc: Any, wanted: tuple[str, str, str | None]) -> None:
    assume(isinstance(doc, dict))
    try:
        entries = parse_index(doc, LIMITS, "i")
    except UnsafeContent:
        return
    for e in entries:
        _check_descriptor(e, LIMITS.max_manifest_bytes)
    try:
        chosen = select(entries, wanted, "i")
    except NotFound as exc:
        assert not any(e.platform and matches(e.platform, wanted) for e in entries)
        assert "no image for platform" in exc.message
        return
    assert chosen in entries
    assert chosen.platform is not None and matches(chosen.platform, wanted)


def _config_doc(n_layers: int) -> dict[str, Any]:
    return {"architecture": "amd64", "os": "linux",
            "config": {"Cmd": ["sh"], "Env": ["A=1"]},
            "rootfs": {"type": "layers", "diff_ids": [sha(bytes([i])) for i in range(n_layers)]},
            "history": [{"created_by": "x"}]}


@given(st.integers(0, 3).flatmap(lambda n: st.tuples(st.just(n), mutated(_config_doc(n)))),
       st.integers(0, 4))
def test_parse_image_config_contract(case: tuple[int, Any], layer_count: int) -> None:
    _, doc = case
    data = json.dumps(doc).encode()  # NaN and Infinity are written as JSON would not
    try:
        config, diff_ids = parse_image_config(data, layer_count, LIMITS, "c")
    except UnsafeContent:
        return
    assert isinstance(config, dict)
    assert len(diff_ids) == layer_count
    assert all(isinstance(d, str) and len(d) == 71 for d in diff_ids)


# -- WWW-Authenticate -------------------------------------------------------------------------

header_soup = st.lists(st.sampled_from(["Bearer", "Basic", " ", "\t", ",", "=", '"', "\\",
                                        "realm", "scope", "a", "é", "\x00", "\x7f", ";", "()",
                                        '"x"', "token68=="]), max_size=30).map("".join)


@given(st.lists(header_soup | st.text(max_size=30), max_size=3))
def test_parse_challenges_contract(values: list[str]) -> None:
    try:
        challenges = parse_challenges(values)
    except ChallengeError:
        return  # auth.py turns it into UpstreamFailure naming the registry
    for ch in challenges:
        assert ch.scheme and ch.scheme == ch.scheme.lower()
        assert set(ch.scheme) <= set(_TCHAR)
        for name, value in ch.params.items():
            assert name and set(name) <= set(_TCHAR) and name == name.lower()
            assert not any(ord(c) < 0x20 and c != "\t" or ord(c) == 0x7F for c in value)


tokens = st.text(_TCHAR, min_size=1, max_size=8)
param_values = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x7f",
                                     min_codepoint=0x20) | st.just("\t"), max_size=12)


@given(st.lists(st.tuples(tokens, st.dictionaries(tokens.map(str.lower), param_values,
                                                  max_size=4)), max_size=4))
def test_challenges_round_trip(spec: list[tuple[str, dict[str, str]]]) -> None:
    def quote(v: str) -> str:
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'

    header = ", ".join(f"{scheme} " + ", ".join(f"{k}={quote(v)}" for k, v in params.items())
                       for scheme, params in spec)
    parsed = parse_challenges([header])
    assert [(c.scheme, c.params) for c in parsed] == [(s.lower(), p) for s, p in spec]


# -- Location headers and registry error bodies -----------------------------------------------

location_soup = st.lists(st.sampled_from(["http://", "https://", "//", "/", "[", "]", ":", "@",
                                          "a", "b.c", "::1", "80", "99999", "x", "?", "#", "%",
                                          "%00", "..", "\\", "ftp:", "é", " "]),
                         max_size=10).map("".join)


@given(st.none() | location_soup | st.text(max_size=20),
       st.sampled_from(["https://r.example/v2/a/blobs/uploads/", "http://[::1]:5000/v2/"]))
@example("http://[/x", "https://r.example/v2/")  # ValueError: Invalid IPv6 URL
@example("http://a:99999/x", "https://r.example/v2/")  # a port httpx refuses
def test_resolve_location_contract(location: str | None, base: str) -> None:
    try:
        url = resolve_location(base, location, "w")
    except UpstreamFailure as exc:
        assert "Location" in exc.message
        return
    parts = httpx.URL(url)  # what the transport does next: must not raise either
    assert parts.scheme in ("http", "https") and parts.host
    assert not parts.userinfo


error_bodies = st.one_of(
    st.binary(max_size=40),
    json_values.map(lambda v: json.dumps({"errors": v}).encode()),
    st.lists(st.fixed_dictionaries({"code": weird_text, "message": weird_text}), max_size=5)
    .map(lambda errs: json.dumps({"errors": errs}).encode()),
)


@given(error_bodies)
@example(b"[" * 100_000)  # RecursionError out of json.loads
def test_error_summary_contract(body: bytes) -> None:
    resp = httpx.Response(400, content=body)
    summary = error_summary(resp, 1 << 20)
    assert isinstance(summary, str) and len(summary) <= 203
    assert summary.isprintable()


@given(st.text(max_size=300), st.integers(1, 250))
def test_clean_text_is_one_bounded_line(text: str, limit: int) -> None:
    out = clean_text(text, limit)
    assert out.isprintable() and len(out) <= limit + 3


# -- run settings from an image config --------------------------------------------------------

FULL_CONFIG = {
    "architecture": "amd64", "os": "linux",
    "config": {
        "Entrypoint": ["/init"], "Cmd": ["run", "--x"], "Env": ["PATH=/bin", "A=b=c"],
        "User": "1000:1000", "WorkingDir": "app/../srv", "ExposedPorts": {"80/tcp": {}, "53": {}},
        "Volumes": {"/data": {}}, "StopSignal": "SIGTERM", "Labels": {"a": "b", "n": "1"},
        "Healthcheck": {"Test": ["CMD", "true"], "Interval": 30_000_000_000,
                        "Timeout": 1_000_000_000, "StartPeriod": 0, "Retries": 3},
        "Shell": ["/bin/sh", "-c"],
    },
    "rootfs": {"type": "layers", "diff_ids": []},
}


@given(mutated(FULL_CONFIG, max_ops=5) | mutated(FULL_CONFIG["config"], max_ops=5) | json_values,
       st.none() | st.lists(st.text(max_size=5), max_size=2),
       st.none() | st.lists(st.text(max_size=5), max_size=2))
@example({"config": {"Healthcheck": {"Test": ["CMD", "true"], "Interval": 10 ** 400}}},
         None, None)  # OverflowError converting the interval to seconds
def test_runconfig_helpers_contract(cfg: Any, entrypoint: list[str] | None,
                                    cmd: list[str] | None) -> None:
    try:
        argv = runconfig.combine_command(cfg, entrypoint, cmd)
        assert argv and all(isinstance(a, str) for a in argv)
    except InvalidArgument as exc:
        assert "no command" in exc.message
    assert all(isinstance(e, str) for e in runconfig.image_env(cfg))
    wd = runconfig.image_workdir(cfg)
    assert wd.startswith("/") and "/../" not in wd + "/"
    assert isinstance(runconfig.image_user(cfg), str)
    labels = runconfig.image_labels(cfg)
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in labels.items())
    sig = runconfig.image_stop_signal(cfg)
    assert sig is None or isinstance(sig, str) and sig
    assert all("/" in p for p in runconfig.image_exposed_ports(cfg))
    assert all(isinstance(v, str) for v in runconfig.image_volumes(cfg))
    assert all(isinstance(a, str) for a in runconfig.image_shell(cfg))
    hc = runconfig.image_healthcheck(cfg)
    if hc is not None:
        for key in ("Interval", "Timeout", "StartPeriod", "StartInterval", "Retries"):
            value = hc.get(key)
            assert value is None or type(value) is int and abs(value) < 1 << 63
    checked = health.from_image(cfg)  # its caller: must turn any value into a usable check
    if checked is not None:
        assert all(math.isfinite(v) for v in checked.values() if isinstance(v, float))


@given(mutated(FULL_CONFIG, max_ops=3) | json_values,
       st.lists(st.text("AB=x", max_size=4), max_size=5))
def test_merge_env_last_word_wins(cfg: Any, env: list[str]) -> None:
    image = runconfig.image_env(cfg)
    try:
        merged = runconfig.merge_env(image, env)
    except InvalidArgument:
        assert any(e.partition("=")[0] == "" for e in env)
        return
    image_keys = [e.partition("=")[0] for e in image if e]
    assume(len(set(image_keys)) == len(image_keys))  # duplicates: Docker's rules are murky
    last = {e.partition("=")[0]: e for e in env}
    for key, item in last.items():
        found = [e for e in merged if e.partition("=")[0] == key]
        assert found == ([item] if "=" in item else [])
    assert all(e in merged for e in image if e and e.partition("=")[0] not in last)


history_entries = st.lists(
    st.fixed_dictionaries({}, optional={"created": weird_text | numbers,
                                        "created_by": weird_text | numbers,
                                        "comment": weird_text,
                                        "empty_layer": st.booleans() | json_values}) | json_values,
    max_size=6)


@given(st.one_of(history_entries.map(lambda h: {"history": h}), json_values),
       st.integers(0, 5))
def test_image_history_rows_pair_every_layer_once(config: Any, n_layers: int) -> None:
    layers = [LayerRef(f"sha256:{i:064x}", f"sha256:{i + 9:064x}", i, LAYER_TAR)
              for i in range(n_layers)]
    rows = image_history(config, layers, image_id="sha256:" + "f" * 64)
    assert len(rows) >= n_layers
    assert [r.layer for r in reversed(rows) if r.layer] == [la.digest for la in layers]
    for r in rows:
        assert isinstance(r.created_by, str) and isinstance(r.comment, str)
        assert r.created is None or isinstance(r.created, str)
        assert r.size >= 0
    if rows:
        json.dumps([vars(r) for r in rows])


# -- archive import ---------------------------------------------------------------------------

def _tar(members: list[tuple[str, bytes | tuple[str, str]]]) -> bytes:
    """A tar of regular files (bytes) and links (("sym"|"hard"|"fifo", target))."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, content in members:
            info = tarfile.TarInfo(name)
            info.mtime = 1_600_000_000
            if isinstance(content, tuple):
                kind, target = content
                info.type = {"sym": tarfile.SYMTYPE, "hard": tarfile.LNKTYPE,
                             "fifo": tarfile.FIFOTYPE, "dir": tarfile.DIRTYPE}[kind]
                info.linkname = target
                tf.addfile(info)
            else:
                info.size = len(content)
                tf.addfile(info, io.BytesIO(content))
    return buf.getvalue()


LAYER = _tar([("etc/hello", b"hi\n")])
LAYER_GZ = gzip.compress(LAYER, mtime=0)


def _config_bytes(doc: Any) -> bytes:
    return json.dumps(doc).encode()


def _archive_config(layers: list[bytes]) -> dict[str, Any]:
    return {"architecture": host_arch(), "os": "linux", "config": {"Cmd": ["sh"]},
            "rootfs": {"type": "layers", "diff_ids": [sha(x) for x in layers]}}


repo_tags = valid_refs().map(lambda v: v[0].partition("@")[0]) | ref_texts
member_mutations = st.lists(st.one_of(
    st.tuples(st.sampled_from(["../evil", "/abs", "a/../../b", "x\x00y", "./manifest.json",
                               "blobs/sha256/" + "0" * 64, "l/layer.tar", "index.json",
                               "oci-layout", "repositories"]),
              st.one_of(st.binary(max_size=20).map(bytes),
                        st.tuples(st.sampled_from(["sym", "hard", "fifo", "dir"]),
                                  st.sampled_from(["../../etc/passwd", "/etc/passwd", "l/layer.tar",
                                                   "manifest.json", "loop", "", ".", "a/../..",
                                                   "blobs/sha256/" + "0" * 64])))),
), max_size=2)


@st.composite
def docker_archives(draw: st.DrawFn) -> list[tuple[str, bytes | tuple[str, str]]]:
    layers = draw(st.lists(st.sampled_from([LAYER, LAYER_GZ, b"", b"\x28\xb5\x2f\xfd",
                                            b"\x1f\x8bjunk"]), max_size=2))
    config = draw(mutated(_archive_config(layers), max_ops=2))
    config_name = draw(st.sampled_from(["c.json", f"{sha(_config_bytes(config))[7:]}.json"] * 4
                                       + ["../c.json", "missing.json"]))
    entry = {"Config": config_name if config_name != "../c.json" else "c.json",
             "RepoTags": draw(st.lists(repo_tags, max_size=2)),
             "Layers": [f"l{i}/layer.tar" for i in range(len(layers))]}
    manifest = draw(mutated([entry], max_ops=2))
    members: list[tuple[str, bytes | tuple[str, str]]] = [
        (f"l{i}/layer.tar", data) for i, data in enumerate(layers)]
    if layers and draw(st.booleans()):
        members.append(("dup/layer.tar", ("sym", "../l0/layer.tar")))
    members.append((config_name, _config_bytes(config)))
    members.append(("manifest.json", json.dumps(manifest).encode()))
    return members + draw(member_mutations)


@st.composite
def oci_layouts(draw: st.DrawFn) -> list[tuple[str, bytes | tuple[str, str]]]:
    blobs: dict[str, bytes] = {}

    def blob(data: bytes) -> str:
        blobs[sha(data)] = data
        return sha(data)

    layers = draw(st.lists(st.sampled_from([LAYER, LAYER_GZ]), max_size=2))
    config = _config_bytes(draw(mutated(_archive_config(layers), max_ops=1)))
    manifest = draw(mutated({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": blob(config), "size": len(config)},
        "layers": [{"mediaType": LAYER_GZIP if x is LAYER_GZ else LAYER_TAR,
                    "digest": blob(x), "size": len(x)} for x in layers],
    }, max_ops=2))
    manifest_bytes = json.dumps(manifest).encode()
    desc: dict[str, Any] = {"mediaType": draw(st.sampled_from([OCI_MANIFEST, DOCKER_MANIFEST])),
                            "digest": blob(manifest_bytes), "size": len(manifest_bytes)}
    if draw(st.booleans()):  # through a nested index, with platforms
        nested = json.dumps(draw(mutated({"schemaVersion": 2, "manifests": [
            {**desc, "platform": draw(platforms_)}, {**desc, "platform": {
                "os": "linux", "architecture": host_arch()}}]}, max_ops=1))).encode()
        desc = {"mediaType": draw(st.sampled_from([OCI_INDEX, DOCKER_LIST])),
                "digest": blob(nested), "size": len(nested)}
    desc["annotations"] = draw(st.fixed_dictionaries({}, optional={
        "org.opencontainers.image.ref.name": repo_tags,
        "io.containerd.image.name": repo_tags}))
    index = draw(mutated({"schemaVersion": 2, "manifests": [desc]}, max_ops=2))
    members: list[tuple[str, bytes | tuple[str, str]]] = [
        (f"blobs/sha256/{d[7:]}", data) for d, data in blobs.items()]
    members.append(("oci-layout", draw(st.sampled_from(
        [b'{"imageLayoutVersion": "1.0.0"}', b"{}", b"[]", b"nope"]))))
    members.append(("index.json", json.dumps(index).encode()))
    return members + draw(member_mutations)


def _store_is_sound(root: Path, imported: list[ImageManifest] | None) -> None:
    """Only the store's own tree exists, its blobs are named by their content, the spool is
    gone, and a refused archive committed nothing."""
    assert sorted(os.listdir(root)) == ["store"]
    store = root / "store"
    assert sorted(os.listdir(store)) == ["sha256", "tmp"]
    assert os.listdir(store / "tmp") == []
    names = os.listdir(store / "sha256")
    if imported is None:
        assert names == []
    for name in names:
        path = store / "sha256" / name
        assert path.is_file() and not path.is_symlink()
        assert hashlib.sha256(path.read_bytes()).hexdigest() == name
    for image in imported or []:
        assert image.id[7:] in names
        assert all(la.digest[7:] in names for la in image.layers)
        for tag in image.repo_tags:
            assert parse_reference(tag).tag is not None


def _import(members: list[tuple[str, bytes | tuple[str, str]]], compress: bool,
            cut: int | None) -> None:
    data = _tar(members)
    if compress:
        data = gzip.compress(data, mtime=0)
    if cut is not None:
        data = data[:cut]
    try:
        assert holds_images(io.BytesIO(data)) in (True, False)
    except (UnsafeContent, InvalidArgument) as exc:
        assert exc.message
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        blobs = BlobStore(root / "store")
        try:
            imported: list[ImageManifest] | None = import_archive(io.BytesIO(data), blobs)
        except (UnsafeContent, InvalidArgument) as exc:
            assert exc.message
            imported = None
        _store_is_sound(root, imported)


@given(docker_archives(), st.booleans(), st.none() | st.integers(0, 4000))
@example([("manifest.json", b"[" * 100_000)], False, None)  # RecursionError in json.loads
def test_import_docker_archive_contract(members: list[tuple[str, bytes | tuple[str, str]]],
                                        compress: bool, cut: int | None) -> None:
    _import(members, compress, cut)


@given(oci_layouts(), st.booleans(), st.none() | st.integers(0, 4000))
def test_import_oci_layout_contract(members: list[tuple[str, bytes | tuple[str, str]]],
                                    compress: bool, cut: int | None) -> None:
    _import(members, compress, cut)


def test_import_refuses_deep_json_config() -> None:
    """A config nested within json's recursion limit but deeper than the registry allows
    would later break commit (deepcopy) and export: it is refused at import."""
    config = {"rootfs": {"type": "layers", "diff_ids": []}, "x": json.loads("[" * 200 + "]" * 200)}
    members: list[tuple[str, bytes | tuple[str, str]]] = [
        ("c.json", _config_bytes(config)),
        ("manifest.json", json.dumps([{"Config": "c.json", "Layers": []}]).encode())]
    with pytest.raises(UnsafeContent, match="nested deeper"), \
            tempfile.TemporaryDirectory() as tmp:
        import_archive(io.BytesIO(_tar(members)), BlobStore(Path(tmp)))

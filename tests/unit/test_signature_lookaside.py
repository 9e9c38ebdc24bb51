"""Lookaside signature storage (file:// and http://) and registries.d parsing."""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from berth.errors import InvalidArgument, UnsafeContent, UpstreamFailure
from berth.image.reference import parse_reference
from berth.image.signature import (
    LookasideSection,
    add_signature,
    load_registries_dir,
    parse_registries_d,
    read_signatures,
    signature_url,
    write_signatures,
)

DIGEST = "sha256:" + "ab" * 32
REF = parse_reference("registry.example.com:5000/team/app:v1")


def test_layout() -> None:
    assert signature_url("file:///var/sigs/", REF, DIGEST, 1) == (
        f"file:///var/sigs/team/app@sha256={'ab' * 32}/signature-1")
    hub = parse_reference("busybox:latest")
    assert signature_url("https://sigs.example.com/store", hub, DIGEST, 3) == (
        f"https://sigs.example.com/store/library/busybox@sha256={'ab' * 32}/signature-3")
    with pytest.raises(InvalidArgument, match="start at 1"):
        signature_url("file:///x", REF, DIGEST, 0)
    with pytest.raises(InvalidArgument, match="invalid manifest digest"):
        signature_url("file:///x", REF, "sha256:../..", 1)


@pytest.mark.parametrize(("url", "writable", "message"), [
    ("ftp://host/x", False, "scheme must be"),
    ("https://host/x", True, "scheme must be file://"),
    ("file://host/x", False, "expected file:///absolute/path"),
    ("file:relative", False, "expected file:///absolute/path"),
    ("http:///nohost", False, "missing host"),
    ("", False, "non-empty"),
])
def test_bad_urls(url: str, writable: bool, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        if writable:
            write_signatures(url, REF, DIGEST, [b"sig"])
        else:
            read_signatures(url, REF, DIGEST)


def test_write_and_read_file_store(tmp_path: Path) -> None:
    base = f"file://{tmp_path}"
    assert read_signatures(base, REF, DIGEST) == []
    paths = write_signatures(base, REF, DIGEST, [b"one", b"two", b"three"])
    assert paths[0] == tmp_path / f"team/app@sha256={'ab' * 32}" / "signature-1"
    assert read_signatures(base, REF, DIGEST) == [b"one", b"two", b"three"]
    write_signatures(base, REF, DIGEST, [b"only"])  # later leftovers are removed
    assert read_signatures(base, REF, DIGEST) == [b"only"]
    assert add_signature(base, REF, DIGEST, b"next").name == "signature-2"
    assert read_signatures(base, REF, DIGEST) == [b"only", b"next"]
    directory = paths[0].parent
    (directory / "signature-4").write_bytes(b"after a gap")  # reading stops at the first gap
    assert read_signatures(base, REF, DIGEST) == [b"only", b"next"]
    with pytest.raises(InvalidArgument, match="non-empty"):
        add_signature(base, REF, DIGEST, b"")


def test_file_store_bounds(tmp_path: Path) -> None:
    base = f"file://{tmp_path}"
    write_signatures(base, REF, DIGEST, [b"x" * 100, b"y"])
    with pytest.raises(UnsafeContent, match="larger than 50 bytes"):
        read_signatures(base, REF, DIGEST, max_size=50)
    write_signatures(base, REF, DIGEST, [b"s"] * 5)
    with pytest.raises(UnsafeContent, match="more than 4 signatures"):
        read_signatures(base, REF, DIGEST, max_count=4)
    assert len(read_signatures(base, REF, DIGEST, max_count=5)) == 5
    with pytest.raises(InvalidArgument, match="more than 64"):
        write_signatures(base, REF, DIGEST, [b"s"] * 65)


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        if "broken" in self.path:
            self.send_error(500)
            return
        super().do_GET()


@pytest.fixture
def http_store(tmp_path: Path) -> Iterator[tuple[str, str]]:
    handler = functools.partial(_Quiet, directory=str(tmp_path))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"file://{tmp_path}", f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_read_over_http(http_store: tuple[str, str]) -> None:
    staging, url = http_store
    assert read_signatures(url, REF, DIGEST) == []
    write_signatures(staging, REF, DIGEST, [b"one", b"two"])
    assert read_signatures(url, REF, DIGEST) == [b"one", b"two"]
    with pytest.raises(UnsafeContent, match="larger than 2 bytes"):
        read_signatures(url, REF, DIGEST, max_size=2)
    broken = parse_reference("registry.example.com/broken:v1")
    with pytest.raises(UpstreamFailure, match="answered 500"):
        read_signatures(url, broken, DIGEST)


def test_read_over_http_unreachable() -> None:
    with pytest.raises(UpstreamFailure, match="cannot fetch signature"):
        read_signatures("http://127.0.0.1:9", REF, DIGEST)


REGISTRIES_D = b"""
default-docker:
  sigstore-staging: file:///var/lib/containers/sigstore
docker:
  registry.example.com:
    lookaside: https://sigs.example.com
  registry.example.com/team:
    lookaside: http://localhost:4242/team
    lookaside-staging: file:///srv/team-staging
    use-sigstore-attachments: true
  "*.internal.example.com":
    sigstore: https://internal-sigs.example.com
  registry.example.com/team/app:v1:
    use-sigstore-attachments: false
"""


def test_registries_d_most_specific_section_wins() -> None:
    config = parse_registries_d(REGISTRIES_D)
    team = parse_reference("registry.example.com/team/other:1")
    assert config.lookaside_base(team) == "http://localhost:4242/team"
    assert config.lookaside_base(team, write=True) == "file:///srv/team-staging"
    assert config.use_sigstore_attachments(team)
    exact = parse_reference("registry.example.com/team/app:v1")
    assert config.section_for(exact) == LookasideSection(use_sigstore_attachments=False)
    assert config.lookaside_base(exact) is None  # the whole section wins, even if empty
    assert not config.use_sigstore_attachments(exact)
    host = parse_reference("registry.example.com/x:1")
    assert config.lookaside_base(host) == "https://sigs.example.com"
    assert config.lookaside_base(host, write=True) == "https://sigs.example.com"
    wild = parse_reference("a.internal.example.com/x")
    assert config.lookaside_base(wild) == "https://internal-sigs.example.com"
    other = parse_reference("quay.io/x/y")
    assert config.lookaside_base(other) is None
    assert config.lookaside_base(other, write=True) == "file:///var/lib/containers/sigstore"
    assert parse_registries_d(b"").lookaside_base(other) is None


@pytest.mark.parametrize(("doc", "message"), [
    (b"[]", "expected a mapping at the top level"),
    (b"docker: {}\nextra: 1\n", "unknown top-level key 'extra'"),
    (b"docker:\n  a.io:\n    lookaside: file:///x\n    lookaside: file:///y\n",
     "duplicate key 'lookaside'"),
    (b"docker:\n  a.io: {lookasde: file:///x}\n", "unknown key 'lookasde'"),
    (b"docker:\n  a.io: {lookaside: file:///x, sigstore: file:///y}\n",
     "'lookaside' and its old name 'sigstore' are both set"),
    (b"docker:\n  a.io: {lookaside: 5}\n", "expected a URL string"),
    (b"docker:\n  a.io: {lookaside-staging: 'https://x/'}\n", "scheme must be file://"),
    (b"docker:\n  a.io: {use-sigstore-attachments: 'yes please'}\n", "expected true or false"),
    (b"docker:\n  busybox: {lookaside: file:///x}\n", "invalid scope"),
    (b"docker:\n  '': {lookaside: file:///x}\n", "use default-docker"),
    (b"docker: [1]\n", "expected a mapping of scopes"),
    (b"default-docker: 3\n", "default-docker: expected a mapping"),
    (b"a: &x {b: 1}\nc: *x\n", "aliases are not allowed"),
    (b"docker: {\n", "not valid YAML"),
])
def test_bad_registries_d(doc: bytes, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        parse_registries_d(doc, source="test.yaml")


def test_registries_dir_merges_and_refuses_conflicts(tmp_path: Path) -> None:
    assert load_registries_dir(tmp_path / "missing").docker == {}
    (tmp_path / "a.yaml").write_bytes(b"docker:\n  a.io: {lookaside: file:///a}\n")
    (tmp_path / "b.yaml").write_bytes(b"default-docker: {lookaside: file:///d}\n")
    (tmp_path / "ignored.conf").write_bytes(b"not yaml: [")
    config = load_registries_dir(tmp_path)
    assert config.lookaside_base(parse_reference("a.io/x")) == "file:///a"
    assert config.lookaside_base(parse_reference("b.io/x")) == "file:///d"
    (tmp_path / "c.yaml").write_bytes(b"docker:\n  a.io: {lookaside: file:///c}\n")
    with pytest.raises(InvalidArgument, match="docker scope 'a.io' is configured in both"):
        load_registries_dir(tmp_path)
    (tmp_path / "c.yaml").write_bytes(b"default-docker: {lookaside: file:///c}\n")
    with pytest.raises(InvalidArgument, match="default-docker is configured in both"):
        load_registries_dir(tmp_path)

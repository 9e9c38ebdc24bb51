"""Where `berth build` takes its context and Dockerfile from, and the tar it sends (pure:
temp dirs and in-memory stdin)."""

from __future__ import annotations

import gzip
import io
import tarfile
from pathlib import Path

import pytest

from berth.cli.convert import UsageError
from berth.cli.image_commands import build_sources
from berth.client.builds import tar_context


def members(body: io.BufferedIOBase | object) -> dict[str, bytes]:
    with tarfile.open(fileobj=body, mode="r|") as tf:  # type: ignore[call-overload]
        return {m.name: (tf.extractfile(m).read() if m.isreg() else b"")  # type: ignore[union-attr]
                for m in tf}


def test_a_dockerfile_sent_along_is_hidden_from_copy(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("a")
    body, name = tar_context(str(tmp_path), b"FROM scratch\n")
    got = members(body)
    assert name.startswith(".dockerfile.") and got[name] == b"FROM scratch\n"
    assert got[".dockerignore"].split() == [b".dockerignore", name.encode()]
    assert got["a.txt"] == b"a"
    (tmp_path / ".dockerignore").write_text("a.txt\n")  # the context's own rules stay
    body, name = tar_context(str(tmp_path), b"FROM scratch\n")
    got = members(body)
    assert "a.txt" not in got and got[".dockerignore"].split() == [b"a.txt", name.encode()]
    body, name = tar_context(str(tmp_path))
    assert name == "Dockerfile" and not [n for n in members(body) if n.startswith(".dockerf")]


def test_no_context_at_all() -> None:
    body, name = tar_context(None, b"FROM busybox\n")
    assert set(members(body)) == {name, ".dockerignore"}


def test_where_it_comes_from(tmp_path: Path) -> None:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "sub").mkdir()
    assert build_sources(str(ctx), None, io.BytesIO()) == {"context_dir": str(ctx)}
    assert build_sources(str(ctx), str(ctx / "sub" / "D"), io.BytesIO()) == {
        "context_dir": str(ctx), "dockerfile": "sub/D"}
    (tmp_path / "Out").write_bytes(b"FROM x\n")
    assert build_sources(str(ctx), str(tmp_path / "Out"), io.BytesIO()) == {
        "context_dir": str(ctx), "dockerfile_text": b"FROM x\n"}
    assert build_sources(str(ctx), "-", io.BytesIO(b"FROM y\n"))["dockerfile_text"] == \
        b"FROM y\n"
    assert build_sources("-", None, io.BytesIO(b"FROM z\n")) == {
        "context_dir": None, "dockerfile_text": b"FROM z\n"}
    archive = gzip.compress(b"not looked into here")
    got = build_sources("-", "sub/D", io.BytesIO(archive))
    assert got["context_tar"].read() == archive and got["dockerfile"] == "sub/D"


@pytest.mark.parametrize(("context", "file", "words"), [
    ("-", "-", "stdin cannot hold both"),
    ("/no/such/dir", None, "is not a directory"),
    (".", "/no/such/Dockerfile", "cannot read the Dockerfile"),
])
def test_refusals(context: str, file: str | None, words: str) -> None:
    with pytest.raises(UsageError, match=words):
        build_sources(context, file, io.BytesIO(b""))

"""Images through the CLI: import an archive, run it (whiteouts honoured), tag, remove."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest

from tests.integration.daemon import Daemon

pytestmark = pytest.mark.integration


def _tar(entries: list[tuple[str, bytes | None, int]]) -> bytes:
    """A layer: (path, file content or None for a directory, mode)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for path, data, mode in entries:
            info = tarfile.TarInfo(path)
            info.mode = mode
            if data is None:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _busybox_layer() -> bytes:
    busybox = Path("/bin/busybox").read_bytes()
    return _tar([("bin", None, 0o755), ("bin/busybox", busybox, 0o755),
                 ("etc", None, 0o755), ("etc/passwd", b"root:x:0:0::/root:/bin/sh\n", 0o644),
                 ("keep", b"kept\n", 0o644), ("gone", b"deleted later\n", 0o644),
                 ("dir", None, 0o755), ("dir/old", b"hidden by opaque\n", 0o644)])


def _docker_archive(path: Path, tag: str) -> None:
    layers = [_busybox_layer(),
              _tar([(".wh.gone", b"", 0o644), ("dir", None, 0o755),
                    ("dir/.wh..wh..opq", b"", 0o644), ("dir/new", b"fresh\n", 0o644)])]
    diff_ids = ["sha256:" + hashlib.sha256(layer).hexdigest() for layer in layers]
    config = json.dumps({
        "architecture": "amd64", "os": "linux",
        "config": {"Entrypoint": ["/bin/busybox"], "Cmd": ["sh", "-c", "echo default"],
                   "Env": ["PATH=/bin"], "Labels": {"made.by": "test", "tag": tag}},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }).encode()
    config_name = hashlib.sha256(config).hexdigest() + ".json"
    manifest = json.dumps([{"Config": config_name, "RepoTags": [tag],
                            "Layers": [f"l{i}/layer.tar" for i in range(len(layers))]}]).encode()
    with tarfile.open(path, "w") as out:
        for name, data in [(config_name, config), ("manifest.json", manifest),
                           *[(f"l{i}/layer.tar", layer) for i, layer in enumerate(layers)]]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            out.addfile(info, io.BytesIO(data))


def test_import_and_run_a_two_layer_image_with_whiteouts(daemon: Daemon, tmp_path: Path) -> None:
    archive = tmp_path / "image.tar"
    _docker_archive(archive, "layered:1")
    res = daemon.cli("image", "import", str(archive))
    assert "layered:1" in res.stdout
    assert "layered" in daemon.cli("images").stdout
    info = json.loads(daemon.cli("image", "inspect", "layered:1").stdout)
    assert len(info["layers"]) == 2 and info["labels"] == {"made.by": "test", "tag": "layered:1"}
    # the image's entrypoint and cmd, as docker combines them
    assert daemon.cli("run", "--rm", "layered:1").stdout == "default\n"
    out = daemon.cli("run", "--rm", "layered:1", "sh", "-c",
                     "cat /keep; ls /gone 2>&1; ls /dir").stdout
    assert out.splitlines()[0] == "kept"
    assert "No such file" in out.splitlines()[1]  # the whiteout deleted it
    assert out.splitlines()[2:] == ["new"]  # the opaque dir hides the lower layer's files
    # importing the same archive again stores nothing twice
    before = {p.name for p in (daemon.root / "blobs" / "sha256").iterdir()}
    daemon.cli("image", "import", str(archive))
    assert {p.name for p in (daemon.root / "blobs" / "sha256").iterdir()} == before


def test_tag_and_remove_images(daemon: Daemon, tmp_path: Path) -> None:
    archive = tmp_path / "image.tar"
    _docker_archive(archive, "tagme:1")
    daemon.cli("image", "import", str(archive))
    daemon.cli("image", "tag", "tagme:1", "tagme:2")
    assert daemon.cli("run", "--rm", "tagme:2", "cat", "/keep").stdout == "kept\n"
    daemon.cli("create", "--name", "img-user", "tagme:2", "true")
    res = daemon.cli("image", "rm", "tagme:1")
    assert "untagged: tagme:1" in res.stdout  # one of two tags: only untagged
    res = daemon.cli("image", "rm", "tagme:2", check=False)
    assert res.returncode != 0 and "in use" in res.stderr  # the container still needs it
    daemon.cli("rm", "img-user")
    assert "deleted:" in daemon.cli("image", "rm", "tagme:2").stdout
    assert daemon.cli("run", "--rm", "tagme:2", "true", check=False).returncode == 125


def test_import_refuses_a_hostile_archive(daemon: Daemon, tmp_path: Path) -> None:
    bad = tmp_path / "bad.tar"
    with tarfile.open(bad, "w") as out:
        info = tarfile.TarInfo("../../escape.json")
        info.size = 2
        out.addfile(info, io.BytesIO(b"{}"))
    res = daemon.cli("image", "import", str(bad), check=False)
    assert res.returncode == 125 and res.stderr.startswith("berth: ")
    assert "Traceback" not in res.stderr
    assert not (daemon.root.parent / "escape.json").exists()
    res = daemon.cli("image", "import", str(tmp_path / "missing.tar"), check=False)
    assert res.returncode == 125 and "missing.tar" in res.stderr


def test_removing_a_tag_that_looks_like_the_id_only_untags(daemon: Daemon,
                                                           tmp_path: Path) -> None:
    archive = tmp_path / "image.tar"
    _docker_archive(archive, "hexy:1")
    daemon.cli("image", "import", str(archive))
    image_id = json.loads(daemon.cli("image", "inspect", "hexy:1").stdout)["id"]
    lookalike = f"{image_id[7:13]}app:1"  # a name that begins like the id
    daemon.cli("image", "tag", "hexy:1", lookalike)
    assert daemon.cli("image", "rm", lookalike).stdout == f"untagged: {lookalike}\n"
    assert json.loads(daemon.cli("image", "inspect", "hexy:1").stdout)["tags"] == ["hexy:1"]
    daemon.cli("image", "rm", "hexy:1")

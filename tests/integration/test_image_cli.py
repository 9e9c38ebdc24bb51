"""Images through the CLI: import an archive or a root filesystem, run it (whiteouts
honoured), tag, remove."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import subprocess
import tarfile
from pathlib import Path

import pytest

from tests.integration.daemon import BIN, Daemon

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


def _berth(daemon: Daemon, *args: str, data: bytes) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([str(BIN / "berth"), *args], env=daemon.env, input=data,
                          capture_output=True, timeout=120)


def test_export_then_import_flattens_a_container(daemon: Daemon, tmp_path: Path) -> None:
    """docker's export | import: a container's filesystem becomes a one-layer image."""
    daemon.cli("run", "--name", "flat-src", "busybox", "sh", "-c", "echo hello > /note")
    fs = tmp_path / "fs.tar"
    with fs.open("wb") as out:
        subprocess.run([str(BIN / "berth"), "export", "flat-src"], env=daemon.env, stdout=out,
                       check=True, timeout=120)
    daemon.cli("rm", "flat-src")
    image_id = daemon.cli("import", "-c", 'CMD ["cat", "/note"]', "-m", "flattened", str(fs),
                          "flat:1").stdout.strip()
    info = json.loads(daemon.cli("image", "inspect", "flat:1").stdout)
    assert info["id"] == image_id and len(info["layers"]) == 1
    assert daemon.cli("run", "--rm", "flat:1").stdout == "hello\n"
    assert "flattened" in daemon.cli("history", "flat:1").stdout
    # `image import` takes a root filesystem too, here gzip'd on stdin
    res = _berth(daemon, "image", "import", "-", "flat:2", data=gzip.compress(fs.read_bytes()))
    assert res.returncode == 0 and res.stdout == b"Loaded image: flat:2\n", res.stderr
    assert daemon.cli("run", "--rm", "flat:2", "cat", "/note").stdout == "hello\n"
    daemon.cli("rmi", "flat:2")


def test_image_import_tells_an_archive_from_a_root_filesystem(daemon: Daemon,
                                                              tmp_path: Path) -> None:
    archive = tmp_path / "image.tar"
    _docker_archive(archive, "told:1")
    # an archive is loaded as its images; a name or changes for it are refused by name
    res = daemon.cli("image", "import", str(archive), "other:1", check=False)
    assert res.returncode == 125 and "apply to a root filesystem tarball" in res.stderr
    assert daemon.cli("image", "import", str(archive)).stdout == "Loaded image: told:1\n"
    assert len(json.loads(daemon.cli("image", "inspect", "told:1").stdout)["layers"]) == 2
    # `import` is docker's: always a root filesystem, here the archive's own files
    image_id = daemon.cli("import", str(archive), "told:raw").stdout.strip()
    raw = json.loads(daemon.cli("image", "inspect", "told:raw").stdout)
    assert raw["id"] == image_id and len(raw["layers"]) == 1
    # `load` is only ever an archive
    fs = tmp_path / "fs.tar"
    fs.write_bytes(_tar([("etc/", None, 0o755), ("etc/note", b"x", 0o644)]))
    res = daemon.cli("load", "-i", str(fs), check=False)
    assert res.returncode == 125 and "neither a docker archive" in res.stderr
    daemon.cli("rmi", "told:1", "told:raw")


def test_import_refuses_a_root_filesystem_that_could_never_be_unpacked(
        daemon: Daemon, tmp_path: Path) -> None:
    before = daemon.cli("images", "-q").stdout
    device = io.BytesIO()
    with tarfile.open(fileobj=device, mode="w") as tar:
        info = tarfile.TarInfo("dev/null")
        info.type, info.devmajor, info.devminor = tarfile.CHRTYPE, 1, 3
        tar.addfile(info)
    for data, words in [(device.getvalue(), "device node 'dev/null'"),
                        (_tar([("../up", b"x", 0o644)]), "'../up' contains '..'"),
                        (_tar([("/abs", b"x", 0o644)]), "absolute entry name '/abs'")]:
        res = _berth(daemon, "import", "-", "never:1", data=data)
        assert res.returncode == 125 and words in res.stderr.decode(), res.stderr
        assert res.stderr.decode().count("\n") == 1  # one line, no traceback
    assert daemon.cli("images", "-q").stdout == before

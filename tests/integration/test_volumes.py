"""Volumes, bind mounts, tmpfs and a read-only rootfs, driven through the `berth` CLI."""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.daemon import Daemon

pytestmark = pytest.mark.integration


def _volume_names(daemon: Daemon) -> set[str]:
    return set(daemon.cli("volume", "ls", "-q").stdout.split())


def _one_line_error(res: object, *words: str) -> str:
    stderr = res.stderr  # type: ignore[attr-defined]
    assert "Traceback" not in stderr, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got: {stderr!r}"
    assert lines[0].startswith("berth: "), lines[0]
    for word in words:
        assert word in lines[0], f"{word!r} not in {lines[0]!r}"
    return lines[0]


@contextlib.contextmanager
def _host_dir() -> Iterator[Path]:
    """A host directory the container's mapped root (an unprivileged uid) can write."""
    path = Path(tempfile.mkdtemp(prefix="berth-bind-", dir="/var/tmp"))
    path.chmod(0o777)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _rm(daemon: Daemon, *names: str) -> None:
    daemon.cli("rm", "-f", "-v", *names, check=False)


def test_named_volume_outlives_its_container(daemon: Daemon) -> None:
    vol, writer = "keep-data", "vol-writer"
    try:
        daemon.cli("run", "--name", writer, "-v", f"{vol}:/data", "busybox",
                   "sh", "-c", "echo kept-by-volume > /data/note")
        daemon.cli("rm", writer)
        assert vol in _volume_names(daemon)
        out = daemon.cli("run", "--rm", "-v", f"{vol}:/data", "busybox", "cat", "/data/note")
        assert out.stdout == "kept-by-volume\n"
    finally:
        _rm(daemon, writer)
        daemon.cli("volume", "rm", vol, check=False)


def test_volume_create_ls_inspect_rm(daemon: Daemon) -> None:
    vol, user = "vol-cli", "vol-cli-user"
    try:
        assert daemon.cli("volume", "create", vol).stdout.strip() == vol
        assert vol in _volume_names(daemon)
        info = json.loads(daemon.cli("volume", "inspect", "-o", "json", vol).stdout)
        assert info["name"] == vol
        mountpoint = Path(info["mountpoint"])
        assert mountpoint.is_dir(), mountpoint

        daemon.cli("create", "--name", user, "-v", f"{vol}:/data", "busybox", "true")
        busy = daemon.cli("volume", "rm", vol, check=False)
        assert busy.returncode != 0
        _one_line_error(busy, vol)
        assert vol in _volume_names(daemon)
        assert mountpoint.is_dir()

        daemon.cli("rm", user)
        daemon.cli("volume", "rm", vol)
        assert vol not in _volume_names(daemon)
        assert not mountpoint.exists()
        gone = daemon.cli("volume", "inspect", vol, check=False)
        assert gone.returncode != 0
        _one_line_error(gone, vol)
    finally:
        _rm(daemon, user)
        daemon.cli("volume", "rm", vol, check=False)


def test_anonymous_volume_removed_with_rm_v(daemon: Daemon) -> None:
    name = "vol-anon"
    try:
        daemon.cli("run", "--name", name, "-v", "/data", "busybox",
                   "sh", "-c", "echo anon > /data/f")
        mounts = daemon.inspect(name)["config"]["mounts"]
        anon = [m["volume"] for m in mounts if m.get("type") == "volume"]
        assert len(anon) == 1, mounts
        assert anon[0] in _volume_names(daemon)
        mountpoint = Path(json.loads(daemon.cli("volume", "inspect", "-o", "json",
                                                anon[0]).stdout)["mountpoint"])
        assert (mountpoint / "f").read_text() == "anon\n"
        daemon.cli("rm", "-v", name)
        assert anon[0] not in _volume_names(daemon)
        assert not mountpoint.exists()
    finally:
        _rm(daemon, name)


def test_volumes_from_shares_volumes_and_binds(daemon: Daemon) -> None:
    anon: list[str] = []
    with _host_dir() as host:
        try:
            daemon.cli("create", "--name", "vf-data", "-v", "/anon", "-v", "vf-named:/named",
                       "-v", f"{host}:/bound:ro", "-v", "/own", "busybox", "true")
            daemon.cli("run", "--rm", "--volumes-from", "vf-data", "busybox", "sh", "-c",
                       "echo a > /anon/f; echo n > /named/f")
            # The same volumes, seen by a second user: the data is shared.
            out = daemon.cli("run", "--rm", "--volumes-from", "vf-data:ro", "-v", "/own",
                             "busybox", "sh", "-c",
                             "cat /anon/f /named/f; touch /named/g || echo read-only; "
                             "ls /own | wc -l").stdout
            assert out.split() == ["a", "n", "read-only", "0"], out
            # ":rw" lifts the source's read-only; without a mode its own stays.
            res = daemon.cli("run", "--rm", "--volumes-from", "vf-data", "busybox", "sh",
                             "-c", "touch /bound/x", check=False)
            assert res.returncode != 0 and not (host / "x").exists()
            daemon.cli("run", "--rm", "--volumes-from", "vf-data:rw", "busybox",
                       "touch", "/bound/x")
            assert (host / "x").exists()
            _one_line_error(daemon.cli("run", "--rm", "--volumes-from", "nosuch", "busybox",
                                       "true", check=False), "volumes_from", "nosuch")
            _one_line_error(daemon.cli("run", "--rm", "--volumes-from", "vf-data:rx",
                                       "busybox", "true", check=False), "vf-data:rx")
            # The anonymous volume stays its owner's; while another container mounts it,
            # removing the owner with -v leaves it.
            daemon.cli("create", "--name", "vf-user", "--volumes-from", "vf-data", "busybox",
                       "cat", "/anon/f")
            anon = [m["volume"] for m in daemon.inspect("vf-data")["config"]["mounts"]
                    if m.get("anonymous")]
            daemon.cli("rm", "-v", "vf-data")
            assert set(anon) <= _volume_names(daemon)
            assert daemon.cli("start", "-a", "vf-user").stdout == "a\n"
        finally:
            _rm(daemon, "vf-data", "vf-user")
            daemon.cli("volume", "rm", "vf-named", *anon, check=False)


def test_bind_mount_read_write(daemon: Daemon) -> None:
    with _host_dir() as host:
        (host / "from-host").write_text("hello from the host\n")
        out = daemon.cli("run", "--rm", "-v", f"{host}:/mnt", "busybox", "sh", "-c",
                         "cat /mnt/from-host; echo from-container > /mnt/written")
        assert out.stdout == "hello from the host\n"
        assert (host / "written").read_text() == "from-container\n"


def test_bind_mount_read_only(daemon: Daemon) -> None:
    with _host_dir() as host:
        (host / "existing").write_text("keep me\n")
        res = daemon.cli("run", "--rm", "-v", f"{host}:/mnt:ro", "busybox", "sh", "-c",
                         "cat /mnt/existing && echo nope > /mnt/new", check=False)
        assert res.returncode != 0, res
        assert res.stdout == "keep me\n"
        assert not (host / "new").exists()
        assert (host / "existing").read_text() == "keep me\n"


def test_bind_source_missing(daemon: Daemon) -> None:
    missing = "/var/tmp/berth-no-such-dir-for-bind"
    before = daemon.cli("ps", "-a", "-q").stdout
    res = daemon.cli("run", "--rm", "-v", f"{missing}:/mnt", "busybox", "true", check=False)
    assert res.returncode == 125, res
    _one_line_error(res, missing)
    assert daemon.cli("ps", "-a", "-q").stdout == before


def test_bind_source_inside_berth_root_refused(daemon: Daemon) -> None:
    before = daemon.cli("ps", "-a", "-q").stdout
    for source in (daemon.root, daemon.root / "volumes"):
        res = daemon.cli("run", "--rm", "-v", f"{source}:/mnt", "busybox", "ls", "/mnt",
                         check=False)
        assert res.returncode == 125, res
        _one_line_error(res)
        assert "berth.db" not in res.stdout
    assert daemon.cli("ps", "-a", "-q").stdout == before


def test_tmpfs_mount_and_size(daemon: Daemon) -> None:
    out = daemon.cli("run", "--rm", "--tmpfs", "/scratch:size=1m", "busybox",
                     "sh", "-c", "grep ' /scratch ' /proc/mounts")
    fields = out.stdout.split()
    assert fields[1:3] == ["/scratch", "tmpfs"], out.stdout
    res = daemon.cli("run", "--rm", "--tmpfs", "/scratch:size=1m", "busybox",
                     "sh", "-c", "dd if=/dev/zero of=/scratch/big bs=1M count=2", check=False)
    assert res.returncode != 0, res
    small = daemon.cli("run", "--rm", "--tmpfs", "/scratch:size=1m", "busybox",
                       "sh", "-c", "dd if=/dev/zero of=/scratch/ok bs=1k count=100 && echo ok")
    assert small.stdout.strip().endswith("ok")


def test_read_only_rootfs_keeps_tmpfs_writable(daemon: Daemon) -> None:
    res = daemon.cli("run", "--rm", "--read-only", "busybox", "touch", "/x", check=False)
    assert res.returncode != 0, res
    out = daemon.cli("run", "--rm", "--read-only", "--tmpfs", "/scratch", "busybox",
                     "sh", "-c", "echo w > /scratch/f && cat /scratch/f")
    assert out.stdout == "w\n"
    writable = daemon.cli("run", "--rm", "busybox", "sh", "-c", "touch /x && echo made")
    assert writable.stdout == "made\n"


def test_volume_prune_removes_unused_only(daemon: Daemon) -> None:
    used, unused, user = "prune-used", "prune-unused", "prune-user"
    try:
        daemon.cli("volume", "create", unused)
        daemon.cli("create", "--name", user, "-v", f"{used}:/data", "busybox", "true")
        assert {used, unused} <= _volume_names(daemon)
        out = daemon.cli("volume", "prune").stdout
        assert unused in out
        assert used not in out
        names = _volume_names(daemon)
        assert unused not in names
        assert used in names
        daemon.cli("rm", user)
        daemon.cli("volume", "prune")
        assert used not in _volume_names(daemon)
    finally:
        _rm(daemon, user)
        for vol in (used, unused):
            daemon.cli("volume", "rm", vol, check=False)

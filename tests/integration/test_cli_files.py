"""`berth cp`, `export` and `diff` through the real CLI, against a real berthd and container.

Copying out writes a container's files onto the host, so the tests also check that it never
writes through a symlink it finds at the destination and never leaves scratch files behind.
"""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.daemon import BIN, Daemon, refused

pytestmark = pytest.mark.integration
SETUP = ("mkdir -p /data/sub && echo hi > /data/a && echo deep > /data/sub/b && "
         "ln -s /data/a /data/link && chmod 4755 /data/a && chown 1000:1000 /data/sub/b && "
         "echo changed >> /etc/passwd && rm /etc/group && exec sleep 600")


@pytest.fixture(scope="module")
def box(daemon: Daemon) -> Iterator[str]:
    daemon.cli("run", "-d", "--name", "files", "busybox", "sh", "-c", SETUP)
    daemon.wait_for(lambda: daemon.cli("exec", "files", "test", "-L", "/data/link",
                                       check=False).returncode == 0, what="the files")
    yield "files"
    daemon.cli("rm", "-f", "files", check=False)


def in_box(d: Daemon, script: str) -> str:
    return d.cli("exec", "files", "sh", "-c", script).stdout


def no_scratch(where: Path) -> None:
    assert not [p for p in where.iterdir() if p.name.startswith(".berth-cp-")]


# -- out of the container --------------------------------------------------------------------

def test_cp_out_a_file_under_a_new_name_and_into_a_directory(daemon: Daemon, box: str,
                                                             tmp_path: Path) -> None:
    daemon.cli("cp", f"{box}:/data/a", str(tmp_path / "renamed"))
    assert (tmp_path / "renamed").read_text() == "hi\n"
    (tmp_path / "into").mkdir()
    daemon.cli("cp", f"{box}:/data/a", str(tmp_path / "into"))
    got = tmp_path / "into" / "a"
    assert got.read_text() == "hi\n"
    # The caller owns what it copied; a set-user-ID bit from the container does not survive.
    st = got.stat()
    assert (st.st_uid, st.st_gid) == (os.getuid(), os.getgid())
    assert st.st_mode & 0o7777 == 0o755
    no_scratch(tmp_path)


def test_cp_out_archive_mode_keeps_owners_and_set_id_bits(daemon: Daemon, box: str,
                                                          tmp_path: Path) -> None:
    daemon.cli("cp", "-a", f"{box}:/data", str(tmp_path))
    assert (tmp_path / "data" / "a").stat().st_mode & 0o7777 == 0o4755
    b = (tmp_path / "data" / "sub" / "b").stat()
    assert (b.st_uid, b.st_gid) == (1000, 1000)  # the container's ids, not the mapped host's


def test_cp_out_a_directory_its_contents_and_links(daemon: Daemon, box: str,
                                                   tmp_path: Path) -> None:
    daemon.cli("cp", f"{box}:/data", str(tmp_path))  # into an existing dir: DEST/data
    assert (tmp_path / "data" / "sub" / "b").read_text() == "deep\n"
    assert os.readlink(tmp_path / "data" / "link") == "/data/a"  # a link stays a link
    daemon.cli("cp", f"{box}:/data", str(tmp_path / "fresh"))  # a new path: the dir itself
    assert (tmp_path / "fresh" / "sub" / "b").read_text() == "deep\n"
    daemon.cli("cp", f"{box}:/data/sub", str(tmp_path / "fresh2") + "/.")
    assert (tmp_path / "fresh2" / "b").read_text() == "deep\n"
    (tmp_path / "merged").mkdir()
    (tmp_path / "merged" / "mine").write_text("kept")
    daemon.cli("cp", f"{box}:/data/.", str(tmp_path / "merged"))  # its contents, merged
    assert sorted(p.name for p in (tmp_path / "merged").iterdir()) == ["a", "link", "mine",
                                                                       "sub"]
    daemon.cli("cp", "-L", f"{box}:/data/link", str(tmp_path / "followed"))
    assert (tmp_path / "followed").read_text() == "hi\n"
    assert not (tmp_path / "followed").is_symlink()
    no_scratch(tmp_path)


def test_cp_out_to_standard_output_is_a_tar(daemon: Daemon, box: str) -> None:
    out = subprocess.run([str(BIN / "berth"), "cp", f"{box}:/data/sub", "-"],
                         env=daemon.env, capture_output=True, check=True, timeout=60).stdout
    with tarfile.open(fileobj=io.BytesIO(out)) as tf:
        assert sorted(tf.getnames()) == ["sub", "sub/b"]
        member = tf.extractfile("sub/b")
        assert member is not None and member.read() == b"deep\n"


def test_cp_out_refusals_leave_the_host_as_it_was(daemon: Daemon, box: str,
                                                  tmp_path: Path) -> None:
    (tmp_path / "file").write_text("mine")
    refused(daemon.cli("cp", f"{box}:/nope", str(tmp_path), check=False), "/nope")
    refused(daemon.cli("cp", f"{box}:/data", str(tmp_path / "file"), check=False),
            "directory", "file")
    refused(daemon.cli("cp", f"{box}:/data/a", str(tmp_path / "no" / "dir") + "/",
                       check=False), "no such directory")
    refused(daemon.cli("cp", f"{box}:/data", f"{box}:/tmp", check=False), "between")
    refused(daemon.cli("cp", str(tmp_path), str(tmp_path / "x"), check=False),
            "CONTAINER:PATH")
    assert (tmp_path / "file").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_cp_out_never_writes_through_a_symlink_at_the_destination(daemon: Daemon, box: str,
                                                                  tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "keep").write_text("untouched")
    before = digest_tree(victim)
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "data").symlink_to(victim)  # the copy's "data" would land in the victim
    refused(daemon.cli("cp", f"{box}:/data", str(dest), check=False), "data")
    assert digest_tree(victim) == before
    assert os.readlink(dest / "data") == str(victim)


# -- into the container ----------------------------------------------------------------------

def test_cp_in_files_directories_and_a_tar(daemon: Daemon, box: str, tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "inner").mkdir(parents=True)
    (src / "f1").write_text("one")
    (src / "inner" / "f2").write_text("two")
    (src / "lnk").symlink_to("f1")
    os.chown(src / "f1", 1234, 1234)
    daemon.cli("cp", str(src), f"{box}:/tmp/")  # into an existing dir: /tmp/src
    daemon.cli("cp", str(src / "f1"), f"{box}:/tmp/renamed")
    daemon.cli("cp", str(src), f"{box}:/tmp/newdir")  # a new path: the dir itself
    daemon.cli("cp", "-a", str(src / "f1"), f"{box}:/tmp/owned")
    tar = io.BytesIO()
    with tarfile.open(fileobj=tar, mode="w") as tf:
        info = tarfile.TarInfo("from-tar")
        info.size = 3
        tf.addfile(info, io.BytesIO(b"tar"))
    daemon.cli("cp", "-", f"{box}:/tmp", input=tar.getvalue())
    seen = in_box(daemon, "cat /tmp/src/inner/f2 /tmp/renamed /tmp/newdir/f1 /tmp/from-tar; "
                          "echo; readlink /tmp/src/lnk; stat -c '%u:%g' /tmp/src/f1 /tmp/owned")
    assert seen.split("\n") == ["twooneonetar", "f1", "0:0", "1234:1234", ""]


def test_cp_in_refusals(daemon: Daemon, box: str, tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "f").write_text("x")
    refused(daemon.cli("cp", str(tmp_path / "d"), f"{box}:/data/a", check=False),
            "directory", "file")
    refused(daemon.cli("cp", str(tmp_path / "f"), f"{box}:/no/such/", check=False), "/no")
    refused(daemon.cli("cp", str(tmp_path / "absent"), f"{box}:/tmp", check=False), "absent")
    refused(daemon.cli("cp", "-", f"{box}:/tmp", input=b"not a tar at all" * 64, check=False),
            "archive")
    assert in_box(daemon, "cat /data/a") == "hi\n"


# -- export and diff -------------------------------------------------------------------------

def test_export_writes_the_root_filesystem(daemon: Daemon, box: str, tmp_path: Path) -> None:
    out = tmp_path / "fs.tar"
    daemon.cli("export", "-o", str(out), box)
    with tarfile.open(out) as tf:
        names = set(tf.getnames())
        assert {"bin/busybox", "data/a", "data/sub/b"} <= names
        assert "etc/group" not in names
    assert not (tmp_path / "fs.tar.berth-partial").exists()
    refused(daemon.cli("export", "-o", str(tmp_path / "x.tar"), "no-such-box", check=False),
            "no-such-box")
    assert not list(tmp_path.glob("x.tar*"))


def test_diff_lists_added_changed_and_deleted_paths(daemon: Daemon, box: str) -> None:
    lines = daemon.cli("diff", box).stdout.splitlines()
    assert {"A /data", "A /data/a", "A /data/sub/b", "C /etc/passwd", "D /etc/group"} \
        <= set(lines)


def digest_tree(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}

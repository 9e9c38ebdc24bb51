"""Image management through the CLI: commit, history, save/load, filters, untag, prune."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import tarfile
import time
from pathlib import Path

import pytest

from tests.integration.daemon import BIN, Daemon

pytestmark = pytest.mark.integration


def _image(d: Daemon, ref: str) -> dict:
    return json.loads(d.cli("image", "inspect", ref).stdout)


def test_commit_keeps_changes_config_and_history(daemon: Daemon) -> None:
    daemon.cli("run", "--name", "to-commit", "-e", "FROM_RUN=1", "busybox", "sh", "-c",
               "mkdir -p /data && echo committed > /data/file && rm /bin/vi")
    img_id = daemon.cli("commit", "-c", "ENV MODE=prod", "-c", "LABEL team=core",
                        "-c", 'CMD ["cat", "/data/file"]', "-m", "first commit",
                        "to-commit", "committed:1").stdout.strip()
    info = _image(daemon, "committed:1")
    assert info["id"] == img_id
    assert "MODE=prod" in info["config"]["Env"] and "FROM_RUN=1" in info["config"]["Env"]
    assert info["labels"]["team"] == "core"
    assert len(info["layers"]) == len(_image(daemon, "busybox")["layers"]) + 1
    # the image runs with its new CMD and sees the committed file, and the deletion
    assert daemon.cli("run", "--rm", "committed:1").stdout == "committed\n"
    assert daemon.cli("run", "--rm", "committed:1", "sh", "-c",
                      "test -e /bin/vi || echo gone").stdout == "gone\n"
    history = json.loads(daemon.cli("history", "-o", "json", "committed:1").stdout)
    assert history[0]["comment"] == "first commit" and history[0]["size"] > 0
    assert history[0]["id"] == img_id
    daemon.cli("rm", "to-commit")


def test_commit_of_a_running_container_and_bad_changes(daemon: Daemon) -> None:
    daemon.cli("run", "-d", "--name", "live", "busybox", "sh", "-c",
               "echo state > /state; sleep 300")
    daemon.wait_for(lambda: daemon.cli("exec", "live", "cat", "/state", check=False)
                    .stdout == "state\n", what="file written")
    daemon.cli("commit", "live", "live-snap:1")
    assert daemon.inspect("live")["state"]["status"] == "running"  # paused and resumed, not stopped
    assert daemon.cli("run", "--rm", "live-snap:1", "cat", "/state").stdout == "state\n"
    res = daemon.cli("commit", "-c", "RUN rm -rf /", "live", "x:1", check=False)
    assert res.returncode == 125 and "RUN" in res.stderr
    res = daemon.cli("commit", "no-such-container", check=False)
    assert res.returncode == 125 and "no-such-container" in res.stderr
    daemon.cli("rm", "-f", "live")


@pytest.mark.parametrize("fmt", ["docker-archive", "oci-archive"])
def test_save_and_load_several_images(daemon: Daemon, tmp_path: Path, fmt: str) -> None:
    daemon.cli("tag", "busybox", f"saved-a-{fmt}:1")
    daemon.cli("run", "--name", f"mk-{fmt}", "busybox", "sh", "-c", "echo b > /b")
    daemon.cli("commit", f"mk-{fmt}", f"saved-b-{fmt}:1")
    daemon.cli("rm", f"mk-{fmt}")
    ids = {_image(daemon, f"saved-{x}-{fmt}:1")["id"] for x in "ab"}
    archive = tmp_path / "images.tar"
    daemon.cli("save", "--format", fmt, "-o", str(archive), f"saved-a-{fmt}:1",
               f"saved-b-{fmt}:1")
    with tarfile.open(archive) as tf:
        names = tf.getnames()
    assert len(names) == len(set(names))  # the shared busybox layer is written once
    for x in "ab":
        daemon.cli("rmi", f"saved-{x}-{fmt}:1")
    out = daemon.cli("load", "-i", str(archive)).stdout
    assert f"saved-a-{fmt}:1" in out and f"saved-b-{fmt}:1" in out
    assert {_image(daemon, f"saved-{x}-{fmt}:1")["id"] for x in "ab"} == ids
    assert daemon.cli("run", "--rm", f"saved-b-{fmt}:1", "cat", "/b").stdout == "b\n"
    for x in "ab":
        daemon.cli("rmi", f"saved-{x}-{fmt}:1")


def test_save_refuses_unknown_images_and_a_terminal(daemon: Daemon, tmp_path: Path) -> None:
    res = daemon.cli("save", "-o", str(tmp_path / "x.tar"), "busybox", "nope:1", check=False)
    assert res.returncode == 125 and "nope:1" in res.stderr
    assert not (tmp_path / "x.tar").exists()
    berth = shlex.quote(str(BIN / "berth"))  # the venv's: nothing links it into PATH here
    piped = subprocess.run(["bash", "-c", f"{berth} save busybox | tar -t | head -3"],
                           env=daemon.env, capture_output=True, text=True, timeout=60)
    assert "manifest.json" in piped.stdout or piped.stdout.count("\n") == 3


def test_filters_untag_and_dangling(daemon: Daemon) -> None:
    daemon.cli("tag", "busybox", "filt/one:1")
    daemon.cli("tag", "busybox", "filt/two:1")
    refs = json.loads(daemon.cli("images", "-o", "json", "-f", "reference=filt/*").stdout)
    assert {t for img in refs for t in img["tags"] if t.startswith("filt/")} == {
        "filt/one:1", "filt/two:1"}
    assert daemon.cli("images", "-f", "bogus=1", check=False).returncode == 125
    assert daemon.cli("images", "-f", "dangling=maybe", check=False).returncode == 125
    daemon.cli("run", "--name", "dang", "busybox", "sh", "-c", "echo > /x")
    daemon.cli("commit", "dang", "dangle:1")
    daemon.cli("rm", "dang")
    dangle_id = _image(daemon, "dangle:1")["id"]
    assert daemon.cli("image", "untag", "dangle:1").stdout == "untagged: dangle:1\n"
    dangling = json.loads(daemon.cli("images", "-o", "json", "-f", "dangling=true").stdout)
    assert [img["id"] for img in dangling] == [dangle_id]
    labelled = json.loads(daemon.cli("images", "-o", "json", "-f",
                                     "label=no.such=label").stdout)
    assert labelled == []
    for name in ("filt/one:1", "filt/two:1"):
        daemon.cli("image", "untag", name)
    res = daemon.cli("image", "untag", "never:1", check=False)
    assert res.returncode == 1 and "never:1" in res.stderr  # multi-target: docker's exit 1


def test_forced_removal_of_an_image_in_use_keeps_it_for_the_container(
        daemon: Daemon) -> None:
    daemon.cli("run", "--name", "maker", "busybox", "sh", "-c", "echo x > /x")
    daemon.cli("commit", "maker", "inuse:1")
    daemon.cli("rm", "maker")
    daemon.cli("run", "-d", "--name", "user", "inuse:1", "sleep", "300")
    out = daemon.cli("rmi", "-f", "inuse:1").stdout
    assert "untagged: inuse:1" in out and "deleted" not in out
    daemon.cli("exec", "user", "cat", "/x")  # its layers are still there
    # prune spares images a container uses, even dangling ones
    daemon.cli("image", "prune")
    assert daemon.cli("exec", "user", "cat", "/x").stdout == "x\n"
    daemon.cli("rm", "-f", "user")


def test_prune_removes_dangling_images_and_reclaims_space(own_daemon: Daemon) -> None:
    import hashlib

    d = own_daemon
    d.cli("run", "--name", "big", "busybox", "sh", "-c",
          "dd if=/dev/urandom of=/blob bs=1M count=4 2>/dev/null")
    d.cli("commit", "big", "big:1")
    d.cli("rm", "big")
    d.cli("image", "untag", "big:1")
    blobs = d.root / "blobs" / "sha256"
    before = set(blobs.iterdir())
    # a blob no image records (what a pull cut short leaves), new
    data = os.urandom(1024)
    orphan = blobs / hashlib.sha256(data).hexdigest()
    orphan.write_bytes(data)
    out = d.cli("image", "prune").stdout
    assert "deleted: sha256:" in out and "Total reclaimed space: 0B" not in out
    # the pruned image's content went with it; the new orphan is spared (a pull may be
    # about to record it) until it is older than the grace period
    assert set(blobs.iterdir()) < before | {orphan} and orphan.exists()
    images = json.loads(d.cli("images", "-o", "json").stdout)
    assert all(img["tags"] for img in images)
    old = time.time() - 3600
    os.utime(orphan, (old, old))
    d.cli("image", "prune")
    assert not orphan.exists()
    assert d.cli("run", "--rm", "busybox", "echo", "still fine").stdout == "still fine\n"


def _content(d: Daemon) -> set[str]:
    """The blobs and unpacked layers in the store (their lock files aside)."""
    return {str(p.relative_to(d.root)) for p in [*(d.root / "blobs").glob("sha256/*"),
                                                 *(d.root / "layers").glob("*/*")]
            if not p.name.endswith(".lock")}


def test_rmi_frees_what_no_image_needs_at_once(daemon: Daemon, tmp_path: Path) -> None:
    """As Docker's rmi: the blobs and unpacked layers of a deleted image go with it, unless
    another image (of any project) needs them."""
    from berth.client import Client

    d = daemon
    d.cli("run", "--rm", "busybox", "true")  # busybox's layer unpacked before we look
    before = _content(d)
    (tmp_path / "Dockerfile").write_text("FROM busybox\nCOPY mine /mine\n")
    (tmp_path / "mine").write_bytes(os.urandom(1 << 20))
    d.cli("build", "-q", "-t", "mine:1", str(tmp_path))
    d.cli("run", "--rm", "mine:1", "true")  # its layer unpacked too
    (tmp_path / "Dockerfile").write_text("FROM mine:1\nRUN echo more > /more\n")
    d.cli("build", "-q", "-t", "more:1", str(tmp_path))
    mine = _content(d) - before
    assert len([p for p in mine if p.startswith("layers/")]) == 1  # mine's (more's: not run)
    other = Client(d.host, project="gc-other")
    d.client.projects.create("gc-other")
    saved = tmp_path / "mine.tar"
    d.cli("save", "-o", str(saved), "mine:1")
    with open(saved, "rb") as f:
        other.images.import_archive(f)  # another project holds the same content
    try:
        d.cli("rmi", "mine:1")  # more:1 is built on its layer, the other project has it all
        assert _content(d) >= mine
        other.images.remove("mine:1")
        d.cli("rmi", "more:1")
        assert _content(d) == before, sorted(_content(d) - before)
    finally:
        for img in other.images.list():
            other.images.remove(img["id"], force=True)

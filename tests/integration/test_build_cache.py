"""Build cache as build cache (BuildKit's model): a build's step results are hidden from
image listings (-a shows them), left alone by image prune, shown by system df and removed by
builder prune; through the CLI, the docker CLI and docker-py."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest

from tests.integration.daemon import Daemon
from tests.integration.dockertools import docker, dockerpy
from tests.integration.test_build import build, write

pytestmark = pytest.mark.integration

# Three steps: a RUN whose layer the result holds, a LABEL (no layer), and the end.
STEPS = "FROM busybox\nRUN echo one > /one\nLABEL cache=test\nRUN echo two > /two\n"
# A stage whose 1 MiB layer no image holds: only the build cache keeps it.
STAGED = ("FROM busybox AS gen\nRUN head -c 1048576 /dev/urandom > /blob && echo {n} > /n\n"
          "FROM busybox\nCOPY --from=gen /n /n\n")


def image_ids(d: Daemon, *flags: str) -> set[str]:
    return {img["id"] for img in json.loads(d.cli("images", "-o", "json", *flags).stdout)}


def disk_use(d: Daemon) -> dict[str, Any]:
    return json.loads(d.cli("system", "df", "-v", "-o", "json").stdout)


def age_content(d: Daemon) -> None:
    """Blobs and layers younger than the collector's grace period are spared: age them."""
    old = time.time() - 3600
    for path in [*(d.root / "blobs" / "sha256").iterdir(), *(d.root / "layers").glob("*/*")]:
        os.utime(path, (old, old), follow_symlinks=False)


def test_steps_are_cache_not_images(own_daemon: Daemon, tmp_path: Path) -> None:
    d = own_daemon
    before = image_ids(d)
    final, _ = build(d, write(tmp_path / "a", {"Dockerfile": STEPS}), tags=["bc:1"])
    # listings show the result, not the three steps behind it
    assert image_ids(d) == before | {final}
    steps = image_ids(d, "-a") - image_ids(d)
    assert len(steps) == 2  # RUN, LABEL; the last step's result is the tagged image
    for step in steps:
        assert d.client.images.get(step)["intermediate"] is True
    assert d.client.images.get(final)["intermediate"] is False
    # image prune, even -a, is not the build cache's prune: the steps stay and still hit
    for name, image in (("base", "busybox"), ("result", "bc:1")):  # kept from prune -a
        d.cli("create", "--name", name, image)
    d.cli("image", "prune", "-a")
    d.cli("rm", "base", "result")
    assert steps <= image_ids(d, "-a")
    again, text = build(d, tmp_path / "a")
    assert again == final and text.count("Using cache") == 3

    use = disk_use(d)
    assert use["summary"]["build_cache"]["total"] == 3
    entries = use["build_cache"]
    assert all(e["usage_count"] == 1 and e["last_used"] for e in entries)
    run_step = next(e for e in entries if "echo one" in e["description"])
    # the RUN step's layer is in bc:1 too: pruning the cache would free none of it
    assert run_step["size"] > 0 and run_step["shared"] and not run_step["final"]
    assert use["summary"]["build_cache"]["reclaimable"] == 0
    assert next(e for e in entries if "LABEL" in e["description"])["size"] == 0

    # builder prune: the records of steps only, and the images only they kept
    out = d.cli("builder", "prune").stdout
    assert out.startswith("Deleted build cache objects:")
    assert image_ids(d, "-a") == before | {final}
    left = disk_use(d)["build_cache"]
    assert [e["image_id"] for e in left] == [final] and left[0]["final"]
    assert d.cli("run", "--rm", "bc:1", "cat", "/one", "/two").stdout == "one\ntwo\n"
    # -a: the record of the build's result too; the image stays
    d.cli("builder", "prune", "-a")
    assert disk_use(d)["build_cache"] == []
    assert final in image_ids(d)
    _, text = build(d, tmp_path / "a")
    assert "Using cache" not in text


def test_prune_frees_what_only_the_cache_held(own_daemon: Daemon, tmp_path: Path) -> None:
    d = own_daemon
    build(d, write(tmp_path / "s", {"Dockerfile": STAGED.format(n=1)}), tags=["staged:1"])
    use = disk_use(d)
    gen = next(e for e in use["build_cache"] if "/blob" in e["description"])
    assert gen["size"] >= 1 << 20 and not gen["shared"]
    assert use["summary"]["build_cache"]["reclaimable"] >= 1 << 20
    # keep-storage above what the cache takes: nothing goes
    assert d.client.builds.prune(keep_storage=100 << 20)["removed"] == []
    # filters: a key prefix no record has, a time before every record
    assert d.client.builds.prune(filters=["id=ffffffffffffffff0"])["removed"] == []
    assert d.client.builds.prune(filters=["until=2000-01-01T00:00:00Z"])["removed"] == []
    assert d.client.builds.prune(filters=["label=team=a"])["removed"] == []
    age_content(d)
    done = d.client.builds.prune(keep_storage=1024)
    assert gen["id"] in done["removed"]
    assert done["reclaimed"] >= 1 << 20
    assert d.cli("run", "--rm", "staged:1", "cat", "/n").stdout == "1\n"


def test_keep_storage_keeps_the_most_recently_used(own_daemon: Daemon, tmp_path: Path) -> None:
    d = own_daemon
    build(d, write(tmp_path / "old", {"Dockerfile": STAGED.format(n="old")}), tags=["o:1"])
    build(d, write(tmp_path / "new", {"Dockerfile": STAGED.format(n="new")}), tags=["n:1"])
    build(d, tmp_path / "old")  # the old build's steps are now the most recently used
    blobs = {e["id"]: e for e in disk_use(d)["build_cache"] if "/blob" in e["description"]}
    old = next(k for k, e in blobs.items() if e["usage_count"] == 1)
    new = next(k for k, e in blobs.items() if e["usage_count"] == 0)
    # room for one 1 MiB layer and the small ones: the least recently used goes
    d.cli("builder", "prune", "--keep-storage", "1200k")
    left = {e["id"] for e in disk_use(d)["build_cache"]}
    assert old in left and new not in left


def test_bad_requests(daemon: Daemon) -> None:
    for args, needle in ((["builder", "prune", "--filter", "type=regular"], "invalid filter"),
                         (["builder", "prune", "--keep-storage", "lots"], "--keep-storage"),
                         (["image", "prune", "--filter", "until=soon"], "until"),
                         (["image", "prune", "--filter", "reference=x"], "invalid filter"),
                         (["system", "prune", "--volumes", "--filter", "until=1h"], "until")):
        res = daemon.cli(*args, check=False)
        assert res.returncode == 125, args
        assert needle in res.stderr and len(res.stderr.strip().splitlines()) == 1, res.stderr


def test_docker_cli_and_docker_py(own_daemon: Daemon, tmp_path: Path) -> None:
    d = own_daemon
    ctx = write(tmp_path / "d", {"Dockerfile": STEPS})
    docker(d, "build", "-q", "-t", "dc:1", str(ctx))
    listed = docker(d, "images", "--format", "{{.Repository}}").stdout.split()
    assert "<none>" not in listed and "dc" in listed
    assert docker(d, "images", "-a", "--format", "{{.Repository}}").stdout.split().count(
        "<none>") == 2
    df = docker(d, "system", "df", "--format", "{{.Type}} {{.TotalCount}}").stdout
    assert "Build Cache 3" in df
    api = dockerpy(d)
    cache = api.df()["BuildCache"]
    assert len(cache) == 3 and all(c["Type"] == "regular" for c in cache)
    assert any("echo one" in c["Description"] for c in cache)

    out = docker(d, "builder", "prune", "-f").stdout
    assert "Deleted build cache objects" in out
    assert docker(d, "images", "-a", "--format", "{{.Repository}}").stdout.split().count(
        "<none>") == 0
    # docker system prune asks /build/prune too (it used to be a 404)
    docker(d, "rmi", "dc:1")
    docker(d, "build", "-q", str(ctx))  # untagged: a dangling result
    out = docker(d, "system", "prune", "-f").stdout
    assert "Deleted Images" in out and "Total reclaimed space" in out
    assert api.api.prune_builds() == {"CachesDeleted": [], "SpaceReclaimed": 0}
    assert len(api.df()["BuildCache"]) == 0

    # image prune's filters, as docker's
    docker(d, "build", "-q", "--label", "keep=yes", str(ctx))  # untagged: dangling
    res = docker(d, "image", "prune", "-f", "--filter", "label=keep=no").stdout
    assert "deleted" not in res
    res = docker(d, "image", "prune", "-f", "--filter", "until=2000-01-01T00:00:00Z").stdout
    assert "deleted" not in res
    assert "deleted: sha256:" in docker(d, "image", "prune", "-f", "--filter",
                                        "label=keep=yes").stdout
    bad = docker(d, "image", "prune", "-f", "--filter", "nope=1", check=False)
    assert bad.returncode != 0 and "invalid image prune filter 'nope'" in bad.stderr

"""Quotas: limits checked against usage, atomically (concurrent creates never overshoot); and
each project's own user-namespace range."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from berth.errors import Conflict, InvalidArgument
from berth.service.idmaps import IdMaps
from berth.service.quotas import (
    MILLI,
    QuotaExceeded,
    QuotaService,
    container_demand,
    container_usage,
    disk_usage,
    excess,
    human,
    update_demand,
    validate_limits,
)
from berth.store.db import DEFAULT_PROJECT, Store
from berth.store.models import Action, Container, Image, Project

MiB = 1 << 20


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store(f"sqlite:///{tmp_path / 'berth.db'}")
    with s.session() as db:
        db.add(Project(id="team", name="team", created_at=time.time(), userns_slot=3,
                       grants=[], quota_serial=0))
    return s


def _container(cid: str, project: str = DEFAULT_PROJECT, **spec: object) -> Container:
    return Container(id=cid, project_id=project, name=cid, host="h",
                     image_id="sha256:" + "0" * 64, image_ref="busybox", spec=dict(spec),
                     labels={}, created_at=time.time(), desired="created", status="created")


# -- pure logic ---------------------------------------------------------------------------


def test_validate_limits_refuses_unknown_negative_absurd_and_non_integers() -> None:
    assert validate_limits({"containers": 5, "memory": -1, "vcpus": None}) == \
        {"containers": 5, "memory": -1}
    for bad, words in [({"gpus": 1}, "unknown quota resource 'gpus'"),
                       ({"containers": -2}, "cannot be negative"),
                       ({"memory": 2**62}, "absurd"),
                       ({"vcpus": 1.5}, "integer"),
                       ({"volumes": True}, "integer"),
                       ({"images": "10"}, "integer")]:
        with pytest.raises(InvalidArgument, match=words):
            validate_limits(bad)


def test_human_amounts() -> None:
    assert human("memory", 300 * MiB) == "300 MiB"
    assert human("images", 1536 * MiB) == "1.5 GiB"
    assert human("disk", 512) == "512 B"
    assert human("vcpus", 2500) == "2.5"
    assert human("containers", 7) == "7"


def test_excess_message_names_request_usage_and_limit() -> None:
    assert excess("memory", -1, 10**12, 10**12) is None
    assert excess("memory", 400 * MiB, 200 * MiB, 200 * MiB) is None
    assert excess("memory", 400 * MiB, 200 * MiB, 300 * MiB) == (
        "quota exceeded: memory: 300 MiB requested, 200 MiB of 400 MiB in use")
    assert excess("vcpus", 2, 1500, 1000) == \
        "quota exceeded: vcpus: 1 requested, 1.5 of 2 in use"
    assert excess("containers", 0, 0, 1) is not None
    # measured: refused once the use has reached the limit
    assert excess("disk", 100, 99, None) is None
    assert "100 B of 100 B in use (measured" in (excess("disk", 100, 100, None) or "")


def test_demands_and_usage_with_queued_updates() -> None:
    assert container_demand({"cpus": 0.5, "memory": 64 * MiB}) == \
        {"containers": 1, "vcpus": 500, "memory": 64 * MiB}
    assert container_demand({}) == {"containers": 1, "vcpus": MILLI, "memory": None}
    assert update_demand({"cpus": 2.0, "restart_policy": {"name": "no"}}) == {"vcpus": 2000}
    usage = container_usage([("a", None, None), ("b", 0.25, 8 * MiB)],
                            [("b", {"memory": 16 * MiB}), ("b", {"cpus": 1.0}),
                             ("gone", {"cpus": 4.0})])
    assert usage == {"a": (1000, 0), "b": (1000, 16 * MiB)}


def test_disk_usage_counts_blocks_once_per_inode(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "f").write_bytes(b"x" * 100_000)
    (tmp_path / "d" / "link").hardlink_to(tmp_path / "d" / "f")
    (tmp_path / "sym").symlink_to("/usr")
    used = disk_usage(tmp_path)
    assert 100_000 <= used < 200_000
    assert disk_usage(tmp_path / "missing") == 0


# -- the service --------------------------------------------------------------------------


def test_set_limits_and_report(store: Store) -> None:
    q = QuotaService(store)
    q.set_limits("team", {"containers": 3, "memory": 100 * MiB})
    with store.session() as s:
        s.add(_container("c1", "team", cpus=0.5, memory=30 * MiB))
        s.add(_container("c2", "team"))
        s.add(_container("other", DEFAULT_PROJECT, memory=50 * MiB))
        s.add(Image(project_id="team", id="sha256:" + "1" * 64, manifest_digest="m",
                    config={}, layers=[], size=1234, created_at=time.time(),
                    repo_digests=[], signatures=[]))
    report = q.report("team")
    assert report["containers"] == {"limit": 3, "in_use": 2}
    assert report["memory"] == {"limit": 100 * MiB, "in_use": 30 * MiB}
    assert report["vcpus"] == {"limit": -1, "in_use": 1.5}
    assert report["images"] == {"limit": -1, "in_use": 1234}
    assert report["volumes"] == {"limit": -1, "in_use": 0}
    q.set_limits("team", {"containers": -1})
    assert q.limits("team") == {"memory": 100 * MiB}


def test_memory_quota_needs_a_memory_limit(store: Store) -> None:
    q = QuotaService(store)
    q.set_limits("team", {"memory": 100 * MiB})
    with store.session() as s, pytest.raises(QuotaExceeded, match="set a memory limit"):
        q.admit(s, "team", container_demand({}))
    with store.session() as s, pytest.raises(QuotaExceeded, match="200 MiB requested"):
        q.admit(s, "team", container_demand({"memory": 200 * MiB}))
    with store.session() as s:
        q.admit(s, "team", container_demand({"memory": 100 * MiB}))


def test_update_counts_the_new_limits_in_place_of_the_old(store: Store) -> None:
    q = QuotaService(store)
    q.set_limits("team", {"vcpus": 2})
    with store.session() as s:
        s.add(_container("a", "team", cpus=1.0))
        s.add(_container("b", "team", cpus=0.5))
    with store.session() as s:  # b from 0.5 to 1: 2 in all, fits
        q.lock(s, "team")
        q.check(s, "team", update_demand({"cpus": 1.0}), replacing="b")
    with store.session() as s:  # a queued update counts as applied
        s.add(Action(project_id="team", container_id="b", action="update",
                     params={"cpus": 1.0}, request_id="r", user="u", state="pending",
                     message="", error_status=0, result={}, started_at=time.time()))
    with store.session() as s, pytest.raises(QuotaExceeded, match="1.5 requested, 1 of 2"):
        q.lock(s, "team")
        q.check(s, "team", update_demand({"cpus": 1.5}), replacing="a")


def test_concurrent_creates_never_overshoot(store: Store) -> None:
    """20 threads, a limit of 5: each check and insert is one transaction behind the lock."""
    q = QuotaService(store)
    q.set_limits("team", {"containers": 5, "memory": 500 * MiB})
    start = threading.Barrier(20)
    results: list[str] = []

    def create(i: int) -> None:
        start.wait()
        try:
            with store.session() as s:
                q.admit(s, "team", container_demand({"memory": 50 * MiB}))
                time.sleep(0.01)  # widen the window a racing check would slip through
                s.add(_container(f"c{i}", "team", memory=50 * MiB))
            results.append("ok")
        except QuotaExceeded as e:
            results.append(e.message)

    threads = [threading.Thread(target=create, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count("ok") == 5, results
    assert all(r.startswith("quota exceeded: containers: 1 requested, 5 of 5") for r in results
               if r != "ok")
    with store.session() as s:
        assert s.query(Container).filter_by(project_id="team").count() == 5
        assert s.get(Project, "team").quota_serial == 5  # refused checks roll back


def test_disk_is_measured_not_reserved(store: Store, tmp_path: Path) -> None:
    volumes = tmp_path / "volumes"
    (volumes / "team" / "v" / "_data").mkdir(parents=True)
    (volumes / "team" / "v" / "_data" / "big").write_bytes(b"x" * 200_000)
    q = QuotaService(store, volumes_root=volumes)
    assert q.measure_disk("team") is None  # no limit: nothing to measure
    q.set_limits("team", {"disk": 100_000})
    used = q.measure_disk("team")
    assert used is not None and used >= 200_000
    with store.session() as s, pytest.raises(QuotaExceeded, match="measured on the host"):
        q.admit(s, "team", {"volumes": 1}, disk=used)


# -- user-namespace ranges ----------------------------------------------------------------


def test_each_project_has_its_own_id_range(store: Store) -> None:
    maps = IdMaps(store, 1_000_000_000)
    default, team = maps.for_project(DEFAULT_PROJECT), maps.for_project("team")
    assert default is not None and team is not None
    assert default.host_base == 1_000_000_000
    assert team.host_base == 1_000_000_000 + 3 * 65536
    assert maps.for_project("team") is team  # cached
    assert IdMaps(store, 0).for_project("team") is None  # user namespaces off
    with pytest.raises(Conflict, match="outside the host's uid range"):
        maps.mapping(60_000)

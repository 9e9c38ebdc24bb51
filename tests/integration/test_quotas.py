"""Quotas per project, against a real berthd: limits hold under concurrent creates, usage is
reported beside them, and every refusal is a 403 naming the resource and the numbers."""

from __future__ import annotations

import contextlib
import io
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from berth.client import Client
from berth.client.transport import APIError
from tests.integration.daemon import Daemon

pytestmark = pytest.mark.integration
MiB = 1 << 20


@contextlib.contextmanager
def _project(daemon: Daemon, name: str, busybox: bool = True) -> Iterator[Client]:
    """A new project (with busybox) and the admin's client in it; its containers and volumes
    are removed at the end."""
    daemon.client.projects.create(name)
    admin = Client(daemon.host, project=name)
    if busybox:
        admin.images.build_base("busybox")
    try:
        yield admin
    finally:
        for cid in _ids(daemon, name):
            with contextlib.suppress(APIError):
                admin.containers.remove(cid, force=True, volumes=True)
        for vol in _volumes(daemon, name):
            with contextlib.suppress(APIError):
                admin.volumes.remove(vol)


def _query(daemon: Daemon, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    db = sqlite3.connect(daemon.root / "berth.db")
    try:
        return list(db.execute(sql, args))
    finally:
        db.close()


def _ids(daemon: Daemon, project: str) -> list[str]:
    return [r[0] for r in _query(daemon, "SELECT id FROM containers WHERE project_id = ?",
                                 project)]


def _volumes(daemon: Daemon, project: str) -> list[str]:
    return [r[0] for r in _query(daemon, "SELECT name FROM volumes WHERE project_id = ?",
                                 project)]


def _refused(call: Any, *words: str) -> str:
    with pytest.raises(APIError) as refused:
        call()
    message = refused.value.message
    assert refused.value.status == 403, message
    for word in words:
        assert word in message, f"{word!r} not in {message!r}"
    return message


def test_twenty_concurrent_creates_against_a_quota_of_five(daemon: Daemon) -> None:
    with _project(daemon, "q-race") as admin:
        admin.projects.set_quotas({"containers": 5})
        start = threading.Barrier(20)
        outcomes: list[Any] = []

        def create(i: int) -> None:
            client = Client(daemon.host, project="q-race")
            start.wait()
            try:
                client.containers.create({"image": "busybox", "name": f"race-{i}",
                                          "command": ["true"]})
                outcomes.append("created")
            except APIError as e:
                outcomes.append((e.status, e.message))

        threads = [threading.Thread(target=create, args=(i,)) for i in range(20)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert outcomes.count("created") == 5, outcomes
        refusals = [o for o in outcomes if o != "created"]
        assert len(refusals) == 15
        for status, message in refusals:
            assert status == 403
            assert message == "quota exceeded: containers: 1 requested, 5 of 5 in use"
        assert len(_ids(daemon, "q-race")) == 5
        assert admin.projects.quotas()["containers"] == {"limit": 5, "in_use": 5}


def test_memory_and_vcpus_quotas(daemon: Daemon) -> None:
    with _project(daemon, "q-mem") as admin:
        admin.projects.set_quotas({"memory": 100 * MiB, "vcpus": 2})
        box = {"image": "busybox", "command": ["true"]}
        _refused(lambda: admin.containers.create(box), "memory quota", "set a memory limit")
        first = admin.containers.create({**box, "memory": 60 * MiB, "cpus": 0.5})
        _refused(lambda: admin.containers.create({**box, "memory": 50 * MiB}),
                 "quota exceeded: memory: 50 MiB requested, 60 MiB of 100 MiB in use")
        admin.containers.create({**box, "memory": 40 * MiB})  # counts 1 vCPU: 1.5 of 2
        _refused(lambda: admin.containers.create({**box, "memory": 6 * MiB, "cpus": 1}),
                 "quota exceeded: vcpus: 1 requested, 1.5 of 2 in use")
        usage = admin.projects.quotas()
        assert usage["memory"] == {"limit": 100 * MiB, "in_use": 100 * MiB}
        assert usage["vcpus"] == {"limit": 2, "in_use": 1.5}
        # an update cannot take more than is left, either
        _refused(lambda: admin.containers.update(first["id"], {"memory": 80 * MiB}),
                 "quota exceeded: memory: 80 MiB requested, 40 MiB of 100 MiB in use")
        admin.containers.update(first["id"], {"memory": 50 * MiB})
        assert admin.projects.quotas()["memory"]["in_use"] == 90 * MiB


def test_images_bytes_quota_refuses_an_import_and_a_commit(daemon: Daemon) -> None:
    archive = b"".join(daemon.client.images.save(["busybox"]))
    with _project(daemon, "q-img", busybox=False) as admin:
        admin.projects.set_quotas({"images": 1000})
        _refused(lambda: admin.images.import_archive(io.BytesIO(archive)),
                 "quota exceeded: images: ", "requested, 0 B of 1000 B in use")
        admin.projects.set_quotas({"images": -1})
        admin.images.import_archive(io.BytesIO(archive))
        size = admin.images.get("busybox")["size"]
        assert admin.projects.quotas()["images"] == {"limit": -1, "in_use": size}
        # the same image again adds nothing: allowed at the limit
        admin.projects.set_quotas({"images": size})
        admin.images.import_archive(io.BytesIO(archive))
        box = admin.containers.create({"image": "busybox", "command": [
            "sh", "-c", "head -c 300000 /dev/urandom > /noise"]}, start=True)
        assert admin.containers.wait(box["id"])["exit_code"] == 0
        _refused(lambda: admin.images.commit(box["id"], "noisy:1"),
                 "quota exceeded: images: ", "requested, ")
        with pytest.raises(APIError) as missing:
            admin.images.get("noisy:1")
        assert missing.value.status == 404


def test_volumes_and_disk_quotas(daemon: Daemon) -> None:
    with _project(daemon, "q-vol") as admin:
        admin.projects.set_quotas({"volumes": 1})
        admin.volumes.create("one")
        admin.volumes.create("one")  # it exists: creating it again is not a new volume
        _refused(lambda: admin.volumes.create("two"),
                 "quota exceeded: volumes: 1 requested, 1 of 1 in use")
        # a volume a container would make on first use counts too, and nothing is left
        _refused(lambda: admin.containers.create({"image": "busybox", "mounts": [
            {"type": "volume", "source": "three", "target": "/data"}]}), "volumes")
        assert sorted(_volumes(daemon, "q-vol")) == ["one"]
        assert not _ids(daemon, "q-vol")
        admin.projects.set_quotas({"volumes": -1, "disk": 1 * MiB})
        box = admin.containers.create({"image": "busybox", "command": [
            "sh", "-c", "head -c 2000000 /dev/urandom > /data/blob"],
            "mounts": [{"type": "volume", "source": "one", "target": "/data"}]}, start=True)
        assert admin.containers.wait(box["id"])["exit_code"] == 0
        used = admin.projects.quotas()["disk"]
        assert used["limit"] == MiB and used["in_use"] >= 2_000_000, used
        _refused(lambda: admin.volumes.create("four"), "quota exceeded: disk: ",
                 "of 1 MiB in use (measured on the host)")
        _refused(lambda: admin.containers.create({"image": "busybox"}), "disk")


def test_quotas_api_usage_roles_and_bad_input(daemon: Daemon) -> None:
    with _project(daemon, "q-api") as admin:
        empty = admin.projects.quotas()
        assert set(empty) == {"containers", "vcpus", "memory", "disk", "volumes", "images"}
        assert all(v["limit"] == -1 for v in empty.values())
        admin.containers.create({"image": "busybox", "cpus": 0.25, "memory": 16 * MiB})
        admin.containers.create({"image": "busybox"})
        admin.volumes.create("v")
        usage = admin.projects.set_quotas({"containers": 10, "memory": 1 << 30})
        assert usage["containers"] == {"limit": 10, "in_use": 2}
        assert usage["vcpus"] == {"limit": -1, "in_use": 1.25}
        assert usage["memory"] == {"limit": 1 << 30, "in_use": 16 * MiB}
        assert usage["volumes"] == {"limit": -1, "in_use": 1}
        assert usage["images"]["in_use"] == admin.images.get("busybox")["size"] > 0
        # another project's usage is its own
        assert daemon.client.projects.quotas()["containers"]["limit"] == -1
        # bad limits: a 400 naming the problem
        for body, words in [({"gpus": 1}, "gpus"), ({"containers": -5}, "containers"),
                            ({"memory": 1 << 62}, "memory"), ({"vcpus": 1.5}, "vcpus"),
                            ({"volumes": "3"}, "volumes")]:
            with pytest.raises(APIError) as bad:
                admin.projects.set_quotas(body)
            assert bad.value.status == 400 and words in bad.value.message, bad.value.message
        # members and readers see the numbers; only the cloud's admins change them
        for role in ("member", "reader"):
            daemon.client.users.create(f"q-{role}")
            daemon.client.projects.set_member("q-api", f"q-{role}", role)
            token = admin.tokens.create("t", user=f"q-{role}")["token"]
            user = Client(daemon.host, token=token)
            assert user.projects.quotas()["containers"] == {"limit": 10, "in_use": 2}
            with pytest.raises(APIError) as refused:
                user.projects.set_quotas({"containers": 100})
            assert refused.value.status == 403
        assert admin.projects.quotas()["containers"]["limit"] == 10


def test_a_build_runs_within_the_projects_quotas(daemon: Daemon, tmp_path: Path) -> None:
    """RUN steps are containers of the project, each step's image counts as images bytes:
    either quota refuses the build, naming itself, and nothing is left behind."""
    (tmp_path / "Dockerfile").write_text("FROM busybox\nRUN echo made > /made\n")
    with _project(daemon, "q-build") as admin:
        def refused(*words: str) -> None:
            with pytest.raises(APIError) as err:
                list(admin.builds.build(str(tmp_path), no_cache=True))
            for word in words:
                assert word in err.value.message, err.value.message

        admin.projects.set_quotas({"containers": 0})
        refused("quota exceeded: containers")
        admin.projects.set_quotas({"containers": -1,
                                   "images": admin.projects.quotas()["images"]["in_use"]})
        refused("quota exceeded: images")
        assert _ids(daemon, "q-build") == []
        admin.projects.set_quotas({"images": -1})
        assert list(admin.builds.build(str(tmp_path)))[-1]["status"] == "done"

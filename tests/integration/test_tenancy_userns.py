"""Separation between projects: each runs its containers in its own user-namespace range, and
admin-only features (host bind mounts, the host's network, added capabilities) are refused to
a project's members unless an admin granted them."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from berth.client import Client
from berth.client.transport import APIError
from tests.integration.daemon import Daemon

pytestmark = pytest.mark.integration
SIZE = 65536


def _project(daemon: Daemon, name: str) -> Client:
    """A new project with the busybox base image; the admin's client acting in it."""
    daemon.client.projects.create(name)
    admin = Client(daemon.host, project=name)
    admin.images.build_base("busybox")
    return admin


def _run(client: Client, spec: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """Run to completion (removed after); its stdout and its exit record."""
    out, final = b"", {}
    for stream, data in client.containers.run_attached({"image": "busybox", **spec,
                                                        "auto_remove": True}):
        if stream == 1:
            out += data
        elif stream == 3:
            final = json.loads(data)
    return out.decode(), final


def _host_range(uid_map: str) -> tuple[int, int]:
    inside, host, size = (int(x) for x in uid_map.split())
    assert inside == 0, uid_map
    return host, size


def _remove_volume(daemon: Daemon, client: Client, name: str) -> None:
    """Once the auto-removed containers that used it are gone."""
    def removed() -> bool:
        try:
            client.volumes.remove(name)
        except APIError as e:
            if e.status != 409:
                raise
            return False
        return True

    daemon.wait_for(removed, what=f"volume {name} to be free")


@contextlib.contextmanager
def _cleanup(*clients: Client) -> Iterator[list[tuple[Client, str]]]:
    """Containers made in the test (client, id), removed (with their volumes) at the end."""
    made: list[tuple[Client, str]] = []
    try:
        yield made
    finally:
        for client, cid in made:
            with contextlib.suppress(APIError):
                client.containers.remove(cid, force=True, volumes=True)


def test_each_project_runs_in_its_own_uid_range(daemon: Daemon) -> None:
    base = daemon.client.info()["userns_base"]
    a, b = _project(daemon, "ns-a"), _project(daemon, "ns-b")
    ranges = {}
    for name, client in (("default", daemon.client), ("ns-a", a), ("ns-b", b)):
        out, final = _run(client, {"command": ["cat", "/proc/self/uid_map",
                                               "/proc/self/gid_map"]})
        assert final["exit_code"] == 0, final
        uid_line, gid_line = out.strip().splitlines()
        host, size = _host_range(uid_line)
        assert _host_range(gid_line) == (host, size)
        slot = daemon.client.projects.get(name)["userns_slot"]
        assert (host, size) == (base + slot * SIZE, SIZE), (name, out)
        ranges[name] = host
    # container root is a different host uid in every project, and the ranges never overlap
    hosts = sorted(ranges.values())
    assert len(set(hosts)) == 3
    assert all(later - earlier >= SIZE for earlier, later in zip(hosts, hosts[1:], strict=False))


def test_a_projects_volume_belongs_to_its_own_range(daemon: Daemon) -> None:
    base = daemon.client.info()["userns_base"]
    b = _project(daemon, "vol-b")
    slot = daemon.client.projects.get("vol-b")["userns_slot"]
    assert slot > 0
    vol = b.volumes.create("owned")
    try:
        out, final = _run(b, {"command": ["sh", "-c", "echo hi > /data/f && id -u"],
                              "mounts": [{"type": "volume", "source": "owned",
                                          "target": "/data"}]})
        assert final["exit_code"] == 0 and out == "0\n", (out, final)
        data = Path(vol["mountpoint"])
        assert data.is_relative_to(daemon.root / "volumes" / "vol-b")
        expected = base + slot * SIZE
        for path in (data, data / "f"):
            st = os.stat(path)
            assert (st.st_uid, st.st_gid) == (expected, expected), path
        # the default project's root is another host uid: it does not own B's files
        assert os.stat(data / "f").st_uid != base
    finally:
        _remove_volume(daemon, b, "owned")


@pytest.fixture
def host_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="berth-grant-", dir="/var/tmp"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def test_admin_only_features_need_a_grant(daemon: Daemon, host_dir: Path) -> None:
    admin = _project(daemon, "grants-a")
    daemon.client.users.create("grant-member")
    daemon.client.projects.set_member("grants-a", "grant-member", "member")
    token = admin.tokens.create("t", user="grant-member")["token"]
    member = Client(daemon.host, token=token)
    assert member.whoami()["role"] == "member"
    bind = {"image": "busybox", "command": ["true"],
            "mounts": [{"type": "bind", "source": str(host_dir), "target": "/host"}]}
    with _cleanup(admin, member) as made:
        for spec, grant, words in [
            (bind, "host_mounts", f"bind mount of the host path {host_dir}"),
            ({"image": "busybox", "network": "host"}, "host_namespaces", "network namespace"),
            ({"image": "busybox", "cap_add": ["NET_ADMIN"]}, "cap_add", "NET_ADMIN"),
        ]:
            with pytest.raises(APIError) as refused:
                member.containers.create(spec)
            assert refused.value.status == 403, refused.value.message
            assert f"grant '{grant}'" in refused.value.message, refused.value.message
            assert words in refused.value.message, refused.value.message
        # a host path that does not exist is refused the same way: nothing is learnt
        with pytest.raises(APIError) as refused:
            member.containers.create({**bind, "mounts": [
                {"type": "bind", "source": "/no/such/dir", "target": "/host"}]})
        assert refused.value.status == 403
        # the admin may always; a member may once granted (and not what was not granted)
        made.append((admin, admin.containers.create(bind)["id"]))
        made.append((admin, admin.containers.create(
            {"image": "busybox", "cap_add": ["NET_ADMIN"]})["id"]))
        with pytest.raises(APIError) as refused:
            member.projects.set_grants("grants-a", ["host_mounts"])
        assert refused.value.status == 403
        granted = daemon.client.projects.set_grants("grants-a", ["host_mounts"])
        assert granted["grants"] == ["host_mounts"]
        (host_dir / "note").write_text("from the host\n")
        host_dir.chmod(0o755)
        out, final = _run(member, {"command": ["cat", "/host/note"],
                                   "mounts": bind["mounts"]})
        assert (out, final["exit_code"]) == ("from the host\n", 0)
        with pytest.raises(APIError) as refused:
            member.containers.create({"image": "busybox", "cap_add": ["NET_ADMIN"]})
        assert refused.value.status == 403 and "'cap_add'" in refused.value.message
        # a grant is the project's alone
        daemon.client.projects.create("grants-b")
        assert daemon.client.projects.get("grants-b")["grants"] == []

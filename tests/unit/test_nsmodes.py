"""--pid, --ipc and --uts as the API takes them (pure): the modes, what cannot go together,
and what a recorded spec joins."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from berth.service import nsmodes
from berth.service.specs import ContainerCreate


def create(**kw: Any) -> ContainerCreate:
    return ContainerCreate(image="busybox", **kw)


@pytest.mark.parametrize(("field", "value", "kept"), [
    ("pid_mode", None, None), ("pid_mode", "", None), ("pid_mode", "private", None),
    ("pid_mode", "host", "host"), ("pid_mode", "container:web", "container:web"),
    ("ipc_mode", "shareable", "shareable"), ("ipc_mode", "none", "none"),
    ("ipc_mode", "container:0123abc", "container:0123abc"), ("uts_mode", "host", "host"),
])
def test_modes_kept(field: str, value: str | None, kept: str | None) -> None:
    assert getattr(create(**{field: value}), field) == kept


@pytest.mark.parametrize(("field", "value", "words"), [
    ("pid_mode", "shareable", "unknown PID mode 'shareable'"),
    ("uts_mode", "container:web", "unknown UTS mode"),
    ("uts_mode", "none", "use private, host"),
    ("ipc_mode", "container:", "names no container"),
    ("ipc_mode", "HOST", "unknown IPC mode"),
])
def test_bad_modes(field: str, value: str, words: str) -> None:
    with pytest.raises(ValidationError, match=words):
        create(**{field: value})


@pytest.mark.parametrize(("kw", "words"), [
    ({"pod": "p", "ipc_mode": "host"}, "a container in a pod has the pod's namespaces"),
    ({"uts_mode": "host", "hostname": "web"}, "uts_mode host"),
    ({"uts_mode": "host", "domainname": "example.com"}, "uts_mode host"),
    ({"uts_mode": "host", "network_of": "web"}, "uts_mode host"),
    ({"ipc_mode": "host", "shm_size": 1 << 20}, "no /dev/shm of its own"),
    ({"ipc_mode": "container:a", "shm_size": 1 << 20}, "no /dev/shm of its own"),
    ({"ipc_mode": "container:a", "sysctls": {"kernel.msgmax": "1"}}, "kernel.msgmax"),
])
def test_what_cannot_go_together(kw: dict[str, Any], words: str) -> None:
    with pytest.raises(ValidationError, match=words):
        create(**kw)


def test_what_can() -> None:
    req = create(pid_mode="container:a", ipc_mode="container:a", network_of="a")
    assert (req.pid_mode, req.ipc_mode, req.network_of) == ("container:a", "container:a", "a")
    assert create(ipc_mode="shareable", shm_size=1 << 20).shm_size == 1 << 20
    assert create(pid_mode="host", sysctls={"kernel.msgmax": "1"}).sysctls


def test_joins_of_a_recorded_spec() -> None:
    spec = {"netns_of": "a1", "pid_mode": "container:a1", "ipc_mode": "container:a1",
            "uts_mode": "host"}
    assert nsmodes.container_joins(spec) == {"a1": ["network", "uts", "pid", "ipc"]}
    assert nsmodes.host_namespaces(spec) == frozenset({"uts"})
    assert nsmodes.container_joins({"ipc_mode": "shareable"}) == {}
    assert nsmodes.host_namespaces({"pid_mode": "host", "ipc_mode": "host"}) == \
        frozenset({"pid", "ipc"})


def test_what_the_runtime_is_told() -> None:
    from berth.agent.specbuild import namespace_joins, shm_of

    assert shm_of(None) == {"shm": "private"}
    assert shm_of("container:a1") == {"shm": "join", "shm_donor": "a1"}
    assert [shm_of(m)["shm"] for m in ("shareable", "none", "host")] == \
        ["shareable", "none", "host"]
    # the joined container's user namespace comes too: it owns the others
    assert namespace_joins(42, ["pid", "ipc"], userns=True) == {
        "pid": "/proc/42/ns/pid", "ipc": "/proc/42/ns/ipc", "user": "/proc/42/ns/user"}
    assert namespace_joins(42, ["network"], userns=False) == {"network": "/proc/42/ns/net"}

"""One handler per action the api queues. Each checks the container's current state itself
(the api's checks may be stale) and is idempotent: re-run after a crash, it finishes the work
or finds it done."""

from __future__ import annotations

import signal as signals
from collections.abc import Awaitable, Callable
from typing import Any

from berth.agent import policy, specbuild
from berth.agent.ops import KILL_WAIT, LIVE, ContainerOps
from berth.errors import BerthError, Conflict, InvalidArgument, NotModified
from berth.runtime.base import Observed, Status
from berth.store.models import Action, Container

Handler = Callable[[ContainerOps, Action], Awaitable[dict[str, Any] | None]]


async def create(ops: ContainerOps, act: Action) -> None:
    row = ops.load(act.container_id)
    try:
        image = ops.image(row)
        await ops.run(ops.layer_dirs, image)
        specbuild.build_spec(row.id, row.name, row.spec, image.config, [],
                             ops.idmaps.for_project(row.project_id))
    except BerthError:
        await ops.delete_row(row, volumes=True)  # roll back: a failed create leaves nothing
        raise
    if row.status == "creating":
        ops.save(row.id, status="created")
        ops.event(row, "create")


async def start(ops: ContainerOps, act: Action) -> None:
    row = ops.load(act.container_id)
    obs = await ops.run(ops.backend.state, row.id)
    if obs.status in (Status.RUNNING, Status.PAUSED):
        if row.status in LIVE:
            raise NotModified(f"container {row.name} is already started")
        ops.mark_running(row, obs)  # started just before a crash: record it
        return
    if row.status not in LIVE and _ran_for(act, obs):
        # started by this very action just before a crash, and it ran to its end while
        # berthd was away: record that run; starting it again would run its command twice
        ops.mark_running(row, obs)
        await ops.record_exit(ops.load(row.id), obs)
        return
    await ops.launch(row)


def _ran_for(act: Action, obs: Observed) -> bool:
    """The process exited, and had started after the action began (a start clears the
    previous run's start time before it makes the container)."""
    return obs.status == Status.STOPPED and obs.started_at is not None and \
        act.started_at is not None and obs.started_at >= act.started_at


async def stop(ops: ContainerOps, act: Action) -> None:
    row = ops.load(act.container_id)
    if row.status not in LIVE:
        ops.save(row.id, stopped_by_user=True, desired="stopped")
        raise NotModified(f"container {row.name} is already stopped")
    await ops.stop(row, specbuild.stop_timeout(row.spec, act.params.get("timeout")),
                   act.params.get("signal"))
    ops.save(row.id, stopped_by_user=True, desired="stopped")
    ops.event(row, "stop")


async def restart(ops: ContainerOps, act: Action) -> None:
    row = ops.load(act.container_id)
    if row.status in LIVE:
        await ops.stop(row, specbuild.stop_timeout(row.spec, act.params.get("timeout")),
                       act.params.get("signal"))
    await ops.launch(ops.load(row.id))
    ops.event(row, "restart")


async def kill(ops: ContainerOps, act: Action) -> None:
    row = ops.load(act.container_id)
    if row.status not in LIVE:
        raise Conflict(f"container {row.name} is not running")
    ops.save(row.id, stopped_by_user=True)  # Docker: a killed container is not restarted
    await _kill(ops, row, int(act.params["signal"]))


async def _kill(ops: ContainerOps, row: Container, sig: int) -> None:
    """Send sig; SIGKILL is answered once the process has stopped and its exit (and "die"
    event) is recorded, as docker's kill and rm -f are."""
    await ops.signal(row, sig)
    ops.event(row, "kill", signal=sig)
    if sig == signals.SIGKILL:
        await ops.wait_stopped(row.id, KILL_WAIT)
        await ops.observe(ops.load(row.id))


async def pause(ops: ContainerOps, act: Action) -> None:
    row = ops.load(act.container_id)
    if row.status == "paused":
        raise Conflict(f"container {row.name} is already paused")
    if row.status != "running":
        raise Conflict(f"container {row.name} is not running")
    await ops.run(ops.backend.pause, row.id)
    ops.save(row.id, status="paused", desired="paused")
    ops.event(row, "pause")


async def unpause(ops: ContainerOps, act: Action) -> None:
    row = ops.load(act.container_id)
    if row.status != "paused":
        raise Conflict(f"container {row.name} is not paused")
    await ops.run(ops.backend.resume, row.id)
    ops.save(row.id, status="running", desired="running")
    ops.event(row, "unpause")


async def update(ops: ContainerOps, act: Action) -> None:
    row = ops.load(act.container_id)
    spec = {**row.spec, **act.params}
    if spec.get("memory_swap") not in (None, -1) and spec.get("memory") and \
            spec["memory_swap"] < spec["memory"]:
        raise InvalidArgument("memory_swap: must be at least memory (or -1 for unlimited)")
    if spec.get("auto_remove") and spec.get("restart_policy", {}).get("name", "no") != "no":
        raise InvalidArgument("auto_remove and a restart policy cannot be combined")
    if row.status in LIVE:
        await ops.run(ops.backend.update, row.id, specbuild.resources_from(spec))
    ops.save(row.id, spec=spec)  # a stopped container gets the limits at its next start
    ops.event(row, "update")


async def remove(ops: ContainerOps, act: Action) -> dict[str, Any]:
    row = ops.load(act.container_id)
    if row.status in LIVE and not act.params.get("force"):
        raise Conflict(f"cannot remove container {row.name}: it is running; stop it first "
                       "or force the removal")
    ops.save(row.id, desired="removed")
    if row.status in LIVE:
        await _kill(ops, row, int(signals.SIGKILL))
    await ops.run(ops.backend.delete, row.id)
    row = ops.load(row.id) or row
    await ops.delete_row(row, volumes=bool(act.params.get("volumes")))
    return policy.last_exit(row)


HANDLERS: dict[str, Handler] = {
    "create": create, "start": start, "stop": stop, "restart": restart, "kill": kill,
    "pause": pause, "unpause": unpause, "update": update, "remove": remove,
}

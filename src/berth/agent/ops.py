"""The agent's steps on one container: read and write its row, drive the runtime, publish
events. Each step is safe to repeat after a crash."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import shutil
import signal as signals
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from berth.agent import policy, specbuild
from berth.errors import BerthError, Conflict, InvalidArgument, RuntimeFailure
from berth.image.layers import LayerStore
from berth.image.types import LayerRef
from berth.runtime.base import DnsSettings, Observed, RuntimeBackend, Status
from berth.runtime.oci.rootfs import unmount
from berth.service import health, ipam, nsmodes, runopts
from berth.service.endpoints import has_addresses, network_owner
from berth.service.events import container_event, volume_event
from berth.service.hub import Hub
from berth.service.idmaps import IdMaps
from berth.service.volumes import mounting
from berth.store.db import Store
from berth.store.models import Action, Container, Image, Pod, Volume
from berth.volume import hostmount
from berth.volume.options import HostMount

if TYPE_CHECKING:
    from berth.agent.netops import NetOps

LIVE = ("running", "paused", "restarting")
STOP_POLL = 0.05
KILL_WAIT = 10.0
POD_START_WAIT = 30.0  # a member waits this long for its pod's infra container


def namespace_id(pid: int, kind: str) -> int | None:
    """The inode of a process's namespace (equal inodes: the same namespace); None: gone."""
    try:
        return os.stat(f"/proc/{pid}/ns/{kind}").st_ino
    except OSError:
        return None


class ContainerOps:
    def __init__(self, store: Store, hub: Hub, backend: RuntimeBackend, layers: LayerStore,
                 idmaps: IdMaps, volumes_root: Path, net: NetOps | None = None) -> None:
        self.net = net  # bridge networking on this host (None: containers get none)
        self.store = store
        self.hub = hub
        self.backend = backend
        self.layers = layers
        self.idmaps = idmaps  # each project's own user-namespace range
        self.volumes_root = volumes_root
        if net is not None:
            net.on_replumbed = self.network_files_changed

    async def run(self, fn: Any, *args: Any) -> Any:
        """A blocking runtime call, off the event loop."""
        return await asyncio.to_thread(fn, *args)

    # -- rows and events -----------------------------------------------------------------

    def load(self, cid: str) -> Container | None:
        with self.store.session() as s:
            return s.get(Container, cid)

    def pending(self, cid: str) -> list[Action]:
        with self.store.session() as s:
            q = select(Action).where(Action.container_id == cid,
                                     Action.state.in_(("pending", "running")))
            return list(s.scalars(q.order_by(Action.id)).all())

    def save(self, cid: str, **fields: Any) -> Container | None:
        with self.store.session() as s:
            row = s.get(Container, cid)
            if row is None:
                return None
            for key, value in fields.items():
                setattr(row, key, value)
            return row

    def event(self, row: Container, action: str, **extra: Any) -> None:
        self.hub.publish(container_event(row, action, **extra))

    def image(self, row: Container) -> Image:
        with self.store.session() as s:
            image = s.get(Image, (row.project_id, row.image_id))
        if image is None:
            raise Conflict(f"image {row.image_ref} of container {row.name} is gone")
        return image

    def layer_dirs(self, image: Image) -> list[Path]:
        """Unpacked layers of the image (each unpacked once per id mapping)."""
        idmap = self.idmaps.for_project(image.project_id)
        return [self.layers.ensure(LayerRef(**layer), idmap) for layer in image.layers]

    def network_files_changed(self, owner_id: str) -> None:
        """The owner joined or left a network while running: rewrite the /etc/hosts and
        resolv.conf of every running container in its namespace (pod members and
        --network container:OWNER too). Blocking: runs off the loop."""
        assert self.net is not None
        plan = self.net.plan(owner_id)
        addresses, nameservers = (plan.addresses, plan.nameservers) if plan else ([], [])
        with self.store.session() as s:
            rows = s.execute(select(Container.id, Container.spec).where(
                Container.host == self.net.host, Container.status.in_(LIVE))).all()
        specs = {cid: spec or {} for cid, spec in rows}
        sharers = {cid for cid, spec in specs.items() if network_owner(spec, cid) == owner_id}
        sharers |= {cid for cid, spec in specs.items() if spec.get("netns_of") in sharers}
        for cid in sorted(sharers):
            self.backend.update_network_files(cid, addresses, nameservers,
                                              DnsSettings.of(specs[cid]))

    # -- observing -----------------------------------------------------------------------

    async def observe(self, row: Container) -> Observed | None:
        """Record what really runs: a status change, or an exit (with its real code)."""
        if row.status == "creating":
            return None
        obs = await self.run(self.backend.state, row.id)
        if row.status in LIVE:
            if obs.status in (Status.RUNNING, Status.PAUSED):
                status = "paused" if obs.status == Status.PAUSED else "running"
                if status != row.status or obs.pid != row.pid:
                    self.save(row.id, status=status, pid=obs.pid)
            elif obs.status == Status.STOPPED:
                await self.record_exit(row, obs)
            else:  # MISSING: the host rebooted or the runtime lost it
                await self.record_exit(row, obs, lost=True)
        return obs

    async def record_exit(self, row: Container, obs: Observed, lost: bool = False) -> None:
        code = 255 if lost or obs.exit_code is None else obs.exit_code
        error = "the container's process was lost (host reboot?)" if lost else ""
        self.save(row.id, status="exited", pid=0, exit_code=code, oom_killed=obs.oom_killed,
                  finished_at=obs.finished_at or time.time(), error=error, health=None)
        await self.run(self.backend.release, row.id)
        await self.unmount_volumes(row)
        if self.net is not None:
            await self.run(self.net.release, row.id)
            with self.store.session() as s:
                addressed = has_addresses(s, row.spec, row.id)
            if addressed:
                self.net.request_sync()
        if obs.oom_killed:
            self.event(row, "oom")
        self.event(row, "die", exitCode=code)

    # -- running -------------------------------------------------------------------------

    async def launch(self, row: Container) -> None:
        """Create and start the container's process from its recorded request."""
        image = self.image(row)
        layers = await self.run(self.layer_dirs, image)
        idmap = self.idmaps.for_project(row.project_id)
        spec = specbuild.build_spec(row.id, row.name, row.spec, image.config, layers, idmap)
        infra_id = row.spec.get("pod_infra")
        owner = network_owner(row.spec, row.id)  # whose endpoints the container has
        if infra_id:  # a pod's member: into the namespaces its infra container holds
            pid = await self.pod_infra_pid(row, infra_id)
            shared = row.spec.get("pod_shared") or []
            spec = dataclasses.replace(spec, joins=specbuild.pod_joins(
                pid, shared, idmap is not None))
            infra = self.load(infra_id)  # pods made before shareable infra keep their own
            if "ipc" in shared and infra is not None and \
                    infra.spec.get("ipc_mode") == "shareable":
                spec = dataclasses.replace(spec, shm="join", shm_donor=infra_id)
        for target_id, kinds in nsmodes.container_joins(row.spec).items():
            # --network, --pid, --ipc container:NAME (one container: service/nsmodes.py)
            target = self.load(target_id)
            if target is None or target.status != "running" or not target.pid:
                what = "network" if "network" in kinds else kinds[0].upper()
                raise Conflict(f"cannot join the {what} namespace of container "
                               f"{target.name if target else target_id[:12]}: it is not "
                               "running")
            if "network" in kinds:
                owner = network_owner(target.spec, target.id)
            spec = dataclasses.replace(spec, joins=specbuild.namespace_joins(
                target.pid, kinds, idmap is not None))
        plan = await self.run(self.net.plan, owner) if self.net is not None else None
        if plan is not None:
            spec = dataclasses.replace(spec, addresses=plan.addresses,
                                       nameservers=plan.nameservers)
        if row.spec.get("extra_hosts"):  # host-gateway: its network's gateway, or the host
            gateway = plan.nameservers[0] if plan is not None and plan.nameservers else \
                "127.0.0.1" if row.spec.get("network") == "host" else None
            spec = dataclasses.replace(spec, extra_hosts=runopts.extra_host_lines(
                row.spec["extra_hosts"], gateway))
        try:  # create releases whatever a previous run left
            await self.mount_volumes(row)
            await self.run(self.backend.create, spec)
            if plan is not None and self.net is not None and owner == row.id:
                # its interfaces, before it runs
                created = await self.run(self.backend.state, row.id)
                try:
                    await self.run(self.net.plumb, row.id, created.pid)
                except BerthError:
                    raise
                except Exception as e:  # netlink or nft: name it, release what was made
                    raise RuntimeFailure(f"network setup failed: {e}") from e
            await self.run(self.backend.start, row.id)
        except BerthError as e:
            await self.run(self.backend.release, row.id)
            await self.unmount_volumes(row)
            code = policy.start_failure_code(e.message)
            self.save(row.id, error=e.message, exit_code=code,
                      status="exited" if row.started_at else "created")
            if code in (policy.CANNOT_INVOKE, policy.NOT_FOUND):
                err = InvalidArgument(e.message)
                err.result = {"exit_code": code}  # type: ignore[attr-defined]
                raise err from None
            raise
        started = await self.run(self.backend.state, row.id)
        self.mark_running(row, started)
        if self.net is not None and plan is not None:  # its ports and name now lead to it
            self.net.request_sync()
        if row.spec.get("infra_of") and started.pid:
            await self.run(self.rejoin_members, row.id, started.pid)

    async def mount_volumes(self, row: Container) -> None:
        """Its volumes' tmpfs or host directory, on their data directories (once for all the
        containers that use a volume)."""
        for m in row.spec.get("mounts") or []:
            if m.get("type") == "volume" and m.get("host_mount"):
                await self.run(hostmount.ensure, Path(m["source"]),
                               HostMount.from_dict(m["host_mount"]))

    async def unmount_volumes(self, row: Container) -> None:
        """Take away the volume mounts no other container of the project runs with, or is
        about to (its desired state: running), as Docker's local driver does."""
        wanted = [(m["volume"], m["source"]) for m in row.spec.get("mounts") or []
                  if m.get("type") == "volume" and m.get("host_mount")]
        if not wanted:
            return
        idle = []
        with self.store.session() as s:
            for name, source in wanted:
                if not any(c.id != row.id and (c.status in LIVE or c.desired == "running")
                           for c in mounting(s, row.project_id, name)):
                    idle.append(source)
        for source in idle:
            await self.run(unmount, Path(source))

    def rejoin_members(self, infra_id: str, infra_pid: int) -> None:
        """A pod's infra container started while members ran (it died and its restart policy
        brought it back): its namespaces are new and the members are still in the old ones,
        without the pod's address. Restart those members into the new ones, as Kubernetes
        restarts a pod's containers when their sandbox is made anew."""
        ours = namespace_id(infra_pid, "net")
        with self.store.session() as s:
            rows = s.scalars(select(Container).where(Container.status.in_(LIVE))).all()
            stale = [m for m in rows if (m.spec or {}).get("pod_infra") == infra_id
                     and m.pid and namespace_id(m.pid, "net") not in (ours, None)]
            for m in stale:
                s.add(Action(project_id=m.project_id, container_id=m.id, action="restart",
                             params={}, request_id="pod-infra-restarted", user="agent",
                             state="pending", message="", error_status=0, result={},
                             started_at=time.time()))
        for m in stale:
            self.hub.kick_agent(m.id)

    async def pod_infra_pid(self, row: Container, infra_id: str) -> int:
        """The PID of the member's pod infra container, started first if it is not running
        (by its own worker: a start action, as a user's)."""
        def running() -> int | None:
            infra = self.load(infra_id)
            if infra is None:
                raise Conflict(f"the pod of container {row.name} is gone")
            return infra.pid if infra.status == "running" and infra.pid else None

        pid = running()
        if pid is None:
            with self.store.session() as s:
                infra = s.get(Container, infra_id)
                queued = s.scalars(select(Action.id).where(
                    Action.container_id == infra_id, Action.action == "start",
                    Action.state.in_(("pending", "running")))).first()
                if infra is not None and queued is None:
                    s.add(Action(project_id=infra.project_id, container_id=infra_id,
                                 action="start", params={}, request_id="pod-member",
                                 user="agent", state="pending", message="", error_status=0,
                                 result={}, started_at=time.time()))
            self.hub.kick_agent(infra_id)
            pid = await self.hub.wait_until(running, POD_START_WAIT)
        if pid is None:
            raise Conflict(f"the pod of container {row.name} did not start")
        return pid

    def mark_running(self, row: Container, obs: Observed) -> None:
        self.save(row.id, status="running", pid=obs.pid, started_at=obs.started_at or time.time(),
                  exit_code=None, oom_killed=False, error="", finished_at=None,
                  stopped_by_user=False, desired="running", health=health.at_start(row.spec))
        self.event(row, "start")

    async def stop(self, row: Container, timeout: float, sig: int | None = None) -> None:
        """The stop signal (``sig``, or the container's), up to timeout seconds to exit, then
        SIGKILL (Docker's stop)."""
        if sig is None:
            sig = specbuild.stop_signal(row.spec, self.image(row).config)
        if timeout < 0:  # Docker: -1 waits for ever
            timeout = float("inf")
        if timeout > 0:
            await self.signal(row, sig)
            if await self.wait_stopped(row.id, timeout):
                await self.observe(self.load(row.id))
                return
        await self.signal(row, signals.SIGKILL)
        await self.wait_stopped(row.id, KILL_WAIT)
        await self.observe(self.load(row.id))

    async def signal(self, row: Container, sig: int) -> None:
        await self.run(self.backend.kill, row.id, sig)
        current = self.load(row.id)
        if current is not None and current.status == "paused":
            # A frozen process cannot act on a signal: thaw it (as Docker does). One that a
            # fatal signal (SIGKILL) ended, or one thawed meanwhile, has nothing to thaw.
            with contextlib.suppress(Conflict):  # not running, or not paused
                await self.run(self.backend.resume, row.id)
            # Thawed: say so now, or a second signal (stop's SIGKILL after its SIGTERM) would
            # thaw again; an exit is recorded as for any running container.
            self.save(row.id, status="running")

    async def wait_stopped(self, cid: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while True:
            obs = await self.run(self.backend.state, cid)
            if obs.status in (Status.STOPPED, Status.MISSING):
                return True
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(STOP_POLL)

    # -- removing ------------------------------------------------------------------------

    async def delete_row(self, row: Container, volumes: bool = False,
                         record: Action | None = None) -> None:
        """Remove the container's row and what belongs to it; `record`: an action to store in
        the same transaction."""
        anonymous = [m["volume"] for m in row.spec.get("mounts", [])
                     if m.get("type") == "volume" and m.get("anonymous")]
        with self.store.session() as s:
            if record is not None:
                s.add(record)
            current = s.get(Container, row.id)
            if current is not None:
                s.delete(current)
            addressed = has_addresses(s, row.spec, row.id)  # before its own are freed
            ipam.free_owner(s, row.id)  # its addresses and host ports
            pod = s.get(Pod, row.spec["infra_of"]) if row.spec.get("infra_of") else None
            if pod is not None:  # a pod ends with its infra container
                s.delete(pod)
            # Actions still queued for it (a user's rm racing an auto-remove, a stop queued
            # behind the rm) end now: waiters must not wait for a container that is gone.
            left = s.scalars(select(Action).where(Action.container_id == row.id,
                                                  Action.state.in_(("pending", "running"))))
            for act in left:
                act.finished_at = time.time()
                if act.action == "remove":
                    act.state, act.result = "success", policy.last_exit(row)
                else:
                    act.state, act.error_status = "error", 404
                    act.message = f"the container {row.name} was removed"
            gone = []
            if volumes:
                # Not one another container still mounts (its --volumes-from).
                anonymous = [name for name in anonymous
                             if not mounting(s, row.project_id, name)]
                for name in anonymous:
                    vol = s.get(Volume, (row.project_id, name))
                    if vol is not None:
                        s.delete(vol)
                        gone.append(vol)
        if volumes:
            for name in anonymous:
                shutil.rmtree(self.volumes_root / row.project_id / name, ignore_errors=True)
        if self.net is not None:
            await self.run(self.net.release, row.id)
            if addressed:
                self.net.request_sync()
        self.event(row, "destroy")
        for vol in gone:
            self.hub.publish(volume_event(vol.project_id, "destroy", vol.name, vol.labels))

    async def auto_remove(self, row: Container) -> None:
        await self.run(self.backend.delete, row.id)
        # The exit code outlives the row, for waiters: recorded with the row's removal.
        await self.delete_row(row, volumes=True, record=Action(
            project_id=row.project_id, container_id=row.id, action="remove",
            params={"auto": True}, request_id="auto-remove", user="agent", state="success",
            message="", error_status=0, result=policy.last_exit(row), started_at=time.time(),
            finished_at=time.time()))

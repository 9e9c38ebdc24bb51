"""OciBackend: containers run by runc (or crun) under conmon, on an overlay rootfs."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import resource
import secrets
import shutil
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from berth.errors import Conflict, NotFound, RuntimeFailure
from berth.paths import HostPaths
from berth.runtime.base import (
    Capability,
    ContainerSpec,
    DnsSettings,
    ExecProcess,
    ExecSpec,
    IdMapping,
    LogRecord,
    Observed,
    Resources,
    RuntimeBackend,
    Stats,
    Status,
)
from berth.runtime.oci import blkio, cgroups, fsview, logfiles, rootfs
from berth.runtime.oci.conmon import (
    REOPEN_LOGS,
    WINDOW_RESIZE,
    ConmonLaunch,
    control,
    launch_conmon,
)
from berth.runtime.oci.exec import RuncExec, build_exec_process
from berth.runtime.oci.hostdevices import with_host_devices
from berth.runtime.oci.layout import LOG_NAME, ContainerLayout, check_id, exit_dir
from berth.runtime.oci.logs import read_log_files
from berth.runtime.oci.netstats import read_networks
from berth.runtime.oci.observe import observe, read_exit, read_float
from berth.runtime.oci.procutil import (
    conmon_alive,
    is_zombie,
    poll_until,
    proc_in_cgroup,
    read_pidfile,
    signal_pid,
)
from berth.runtime.oci.runc import RuncCli, clean_error, find_runtime, is_not_running
from berth.runtime.oci.spec import build_oci_config, cgroups_path, check_ulimits, hostname_of
from berth.runtime.oci.top import DEFAULT_PS_ARGS, process_table, ps_table
from berth.runtime.oci.user import resolve_user, supplementary_gids
from berth.runtime.oci.uts import set_domainname

CONMON_EXIT_WAIT = 5.0
CONMON_CGROUP = "/berth-conmon"  # outside /berth so a container's cgroup never holds it


def _hard_limit(name: str) -> int:
    return resource.getrlimit(getattr(resource, f"RLIMIT_{name.upper()}"))[1]


class OciBackend(RuntimeBackend):
    name = "oci"
    capabilities = frozenset({Capability.PAUSE, Capability.EXEC, Capability.TTY,
                              Capability.ATTACH, Capability.STATS, Capability.TOP,
                              Capability.UPDATE, Capability.USERNS})

    def __init__(self, paths: HostPaths, runtime: str | None = None) -> None:
        self.paths = paths
        # What the host's cgroups can do too (block IO limits need controllers and schedulers).
        self.capabilities = OciBackend.capabilities | blkio.host_support()
        self.runtime = find_runtime(runtime)
        self.runc = RuncCli(self.runtime, paths.run_root / Path(self.runtime).name)
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()
        self._log_keeper = logfiles.LogKeeper(
            LOG_NAME, lambda directory: control(self._layout(directory.name).ctl, REOPEN_LOGS))

    # ---- helpers ---------------------------------------------------------------------------

    def _layout(self, cid: str) -> ContainerLayout:
        return ContainerLayout(self.paths, check_id(cid))

    def _lock(self, cid: str) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault(cid, threading.Lock())

    def _cgroup(self, cid: str) -> cgroups.ContainerCgroup:
        return cgroups.container_cgroup(cgroups_path(cid))

    def _require_running(self, cid: str) -> dict[str, object]:
        st = self.runc.state(check_id(cid))
        if st is None:
            raise NotFound(f"no such container: {cid}")
        if st.get("status") not in ("running", "paused"):
            raise Conflict(f"container {cid} is not running")
        return st

    # ---- lifecycle -------------------------------------------------------------------------

    def create(self, spec: ContainerSpec) -> None:
        lay = self._layout(spec.id)
        with self._lock(spec.id):
            if self.runc.known(spec.id):
                raise Conflict(f"container {spec.id} already exists")
            existed = lay.dir.exists()  # released before: keep its writable layer and log
            if existed:  # else nothing of it can exist: every trace is made after its dir
                self._release(lay)
            try:
                self._create(lay, spec)
            except BaseException:
                with contextlib.suppress(Exception):
                    if existed:
                        self._release(lay)
                    else:
                        self._teardown(lay)
                raise

    def _create(self, lay: ContainerLayout, spec: ContainerSpec) -> None:
        check_ulimits(spec, _hard_limit)
        if spec.privileged:  # this host's nodes, read when it is made (as Docker does)
            spec = dataclasses.replace(spec, devices=with_host_devices(spec.devices))
        self.runc.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        lay.dir.mkdir(mode=0o711, parents=True, exist_ok=True)
        for d in (lay.rootfs, lay.upper, lay.work, lay.empty_lower, lay.persist, lay.run_dir,
                  lay.exit_dir, lay.socket_dir):
            d.mkdir(parents=True, exist_ok=True)
        for stale in (lay.persist / "exit", lay.persist / "oom", lay.started_at):
            stale.unlink(missing_ok=True)
        if spec.idmap is not None:
            # The overlay's root takes the upper dir's owner: make it the container's root.
            for d in (lay.upper, lay.work, lay.rootfs):
                os.chown(d, spec.idmap.host_base, spec.idmap.host_base)
        rootfs.mount_overlay(lay.rootfs, rootfs.overlay_options(
            list(spec.layers), lay.upper, lay.work, lay.empty_lower))
        user = resolve_user(lay.rootfs, spec.user)
        groups = supplementary_gids(lay.rootfs, user, spec.group_add)
        files = rootfs.write_etc_files(lay.dir, hostname_of(spec), spec.network == "host",
                                       spec.addresses, spec.nameservers,
                                       extra_hosts=spec.extra_hosts, dns=spec.dns,
                                       domainname=spec.domainname)
        if spec.idmap is not None:
            for path in files.values():
                os.chown(path, spec.idmap.host_base, spec.idmap.host_base)
        config = build_oci_config(spec, user.uid, user.gid, groups, lay.rootfs,
                                  files, home=user.home,
                                  nofile_hard_limit=resource.getrlimit(resource.RLIMIT_NOFILE)[1],
                                  shm_source=self._shm_source(lay, spec),
                                  host_mqueue="ipc" in spec.host_namespaces
                                  and rootfs.mounted_at(Path("/dev/mqueue")))
        lay.config.write_text(json.dumps(config, separators=(",", ":")))
        size, files = spec.log.max_size, spec.log.max_files
        logfiles.begin_new_file(lay.log, size, files)
        logfiles.write_keep_file(lay.dir, size, files)
        if size is not None and files > 1:  # Berth rotates; conmon's limit is for its absence
            self._log_keeper.keep(lay.dir, size, files)  # watching before conmon makes the file
            size *= files
        pid = launch_conmon(ConmonLaunch(
            cid=spec.id, name=spec.name, runtime=self.runtime, runtime_root=self.runc.root,
            bundle=lay.bundle, container_pidfile=lay.container_pidfile,
            conmon_pidfile=lay.conmon_pidfile, log_path=lay.log, exit_dir=lay.exit_dir,
            persist_dir=lay.persist, socket_dir=lay.socket_dir, error_file=lay.conmon_errors,
            terminal=spec.tty, stdin=spec.stdin, stdin_once=spec.stdin_once,
            log_size_max=size),
            # Moving a process between cgroups waits for an RCU grace period (~10 ms here):
            # done while `runc create` runs, it is paid in parallel, not after.
            on_monitor=lambda monitor: cgroups.move_to_cgroup(monitor, CONMON_CGROUP))
        if spec.domainname:  # created, not started: its process sees it from the first
            set_domainname(pid, spec.domainname)

    def _shm_source(self, lay: ContainerLayout, spec: ContainerSpec) -> Path | None:
        """The host directory bound at the container's /dev/shm, or None (a tmpfs of its own,
        or none)."""
        if spec.shm == "shareable":
            lay.shm.mkdir(exist_ok=True)
            rootfs.mount_shm(lay.shm, spec.shm_size,
                             spec.idmap.host_base if spec.idmap is not None else 0)
            return lay.shm
        if spec.shm == "join":
            donor = self._layout(spec.shm_donor).shm
            if not rootfs.mounted_at(donor):
                raise Conflict(f"cannot join the /dev/shm of container {spec.shm_donor[:12]}: "
                               "it is not running")
            return donor
        return Path("/dev/shm") if spec.shm == "host" else None

    def start(self, cid: str) -> None:
        lay = self._layout(cid)
        if not self.runc.known(cid):
            raise NotFound(f"no such container: {cid}")
        lay.started_at.write_text(f"{time.time():.6f}\n")
        result = self.runc.run("start", cid, check=False)  # runc refuses unless "created"
        if result.returncode != 0:
            lay.started_at.unlink(missing_ok=True)
            raise Conflict(f"start {cid}: {clean_error(result.stderr)}")

    def kill(self, cid: str, signal: int) -> None:
        check_id(cid)
        result = self.runc.run("kill", cid, str(int(signal)), check=False)
        if result.returncode != 0:
            message = clean_error(result.stderr)
            if not is_not_running(message):
                raise RuntimeFailure(message or f"kill {cid} failed")

    def pause(self, cid: str) -> None:
        self._require_running(cid)
        self.runc.run("pause", cid)

    def resume(self, cid: str) -> None:
        if self._require_running(cid).get("status") != "paused":
            raise Conflict(f"container {cid} is not paused")
        self.runc.run("resume", cid)

    def changes_dir(self, cid: str) -> Path:
        upper = self._layout(cid).upper
        if not upper.is_dir():
            raise NotFound(f"container {cid} has no filesystem on this host")
        return upper

    @contextlib.contextmanager
    def open_root(self, cid: str, layers: list[Path], idmap: IdMapping | None, *,
                  writable: bool, mounts: bool) -> Iterator[int]:
        lay = self._layout(cid)
        obs = self.state(cid)
        if obs.status in (Status.RUNNING, Status.PAUSED) and obs.pid:
            fd = fsview.live_root(obs.pid, cgroups_path(cid)) if mounts else \
                fsview.mounted_rootfs(lay)
            if fd is None:
                raise Conflict(f"container {cid[:12]} stopped meanwhile: try again")
            try:
                yield fd
            finally:
                os.close(fd)
            return
        if self.runc.known(cid):
            raise Conflict(f"container {cid[:12]} is starting or stopping: try again")
        if not writable:
            with fsview.read_view(lay, layers, self.paths.run_root / "fsviews") as fd:
                yield fd
            return
        with self._lock(cid):  # it cannot start while its overlay is mounted here
            if self.runc.known(cid):
                raise Conflict(f"container {cid[:12]} is starting: try again")
            with fsview.write_view(lay, layers, idmap) as fd:
                yield fd

    def state(self, cid: str) -> Observed:
        lay = self._layout(cid)
        if not self.runc.known(cid):
            return observe(lay, None)
        quick = self._quick_state(lay)
        return quick if quick is not None else observe(lay, self.runc.state(cid))

    def _quick_state(self, lay: ContainerLayout) -> Observed | None:
        """Exited or running, read from conmon's files, /proc and the cgroup without spawning
        the runtime (the agent asks often); None when only the runtime can tell."""
        if read_exit(lay)[0] is not None:
            return observe(lay, {"status": "stopped"})
        started = read_float(lay.started_at)
        pid = read_pidfile(lay.container_pidfile)
        if started is None or pid is None:
            return None  # created but not started
        if is_zombie(pid) or not proc_in_cgroup(pid, cgroups_path(lay.cid)):
            # Just exited (or a reused pid): stopped, as the runtime would say (10 ms to ask,
            # on every short `run --rm`). With its monitor alive, observe() waits for the
            # exit file it is about to write; without, only the runtime can tell.
            if conmon_alive(read_pidfile(lay.conmon_pidfile), lay.cid) or \
                    read_exit(lay)[0] is not None:  # it wrote the exit, then left, meanwhile
                return observe(lay, {"status": "stopped"})
            return None
        status = Status.PAUSED if cgroups.frozen(self._cgroup(lay.cid)) else Status.RUNNING
        return Observed(status=status, pid=pid, started_at=started)

    def delete(self, cid: str) -> None:
        lay = self._layout(cid)
        with self._lock(cid):
            self._teardown(lay)

    def release(self, cid: str) -> None:
        lay = self._layout(cid)
        with self._lock(cid):
            self._release(lay)

    def exit_watch_dir(self) -> Path | None:
        return exit_dir(self.paths)

    def start_watching(self) -> None:
        """Keep the log files of the containers that run on from before berthd's start."""
        with contextlib.suppress(FileNotFoundError):
            for directory in self.paths.containers.iterdir():
                kept = logfiles.read_keep_file(directory)
                if kept is not None and self._layout(directory.name).run_dir.exists():
                    self._log_keeper.keep(directory, *kept)

    def _release(self, lay: ContainerLayout) -> None:
        """Free the runtime side (runc state, monitor, processes, mount, cgroup, run dir) and
        keep the writable layer, the log and the recorded exit. Each step tolerates the thing
        being gone already."""
        # The run dir is made before anything else and removed after everything else: with it,
        # the runtime's record and the mount gone, there is nothing to free (an auto-remove's
        # delete comes right after its exit's release).
        if lay.run_dir.exists() or self.runc.known(lay.cid) or rootfs.mounted_at(lay.rootfs):
            self._free_runtime(lay)
        self._log_keeper.forget(lay.dir)  # its monitor is gone: no new files to keep
        lay.exit_file.unlink(missing_ok=True)  # persist/exit keeps the code
        for link in lay.attach_links():  # conmon's symlink(s) to the bundle
            link.unlink(missing_ok=True)
        for name in ("ctl", "winsz", "attach"):  # conmon's fifos and socket, made anew
            (lay.bundle / name).unlink(missing_ok=True)

    def _free_runtime(self, lay: ContainerLayout) -> None:
        cid = lay.cid
        # Once conmon has recorded the exit, the process is reaped: the runtime's delete would
        # only remove the cgroup (done below in any case) and its own record.
        reaped = read_exit(lay)[0] is not None
        result = self.runc.run("delete", "--force", cid, check=False) \
            if self.runc.known(cid) and not reaped else None
        if result is not None and result.returncode != 0:
            message = clean_error(result.stderr)
            if not is_not_running(message) and self.runc.state(cid) is not None:
                raise RuntimeFailure(f"delete {cid}: {message}")
        self._stop_conmon(lay)
        cg = self._cgroup(cid)
        self._kill_cgroup_procs(cg)
        rootfs.unmount(lay.rootfs)
        if rootfs.mounted_at(lay.rootfs):
            raise RuntimeFailure(f"rootfs of {cid} is still mounted")  # never rm through it
        if lay.shm.exists():  # the host's side: joiners keep theirs until they stop
            rootfs.unmount(lay.shm)
            if rootfs.mounted_at(lay.shm):
                raise RuntimeFailure(f"/dev/shm of {cid} is still mounted")  # rmtree below
        left = cgroups.remove_cgroup(cg)
        if left:
            raise RuntimeFailure(f"cgroup of {cid} is busy: {left[0]}")
        if reaped:
            self.runc.forget(cid)
        shutil.rmtree(lay.run_dir, ignore_errors=True)  # last: see _release

    def _teardown(self, lay: ContainerLayout) -> None:
        self._release(lay)
        shutil.rmtree(lay.dir, ignore_errors=True)
        if lay.dir.exists():
            raise RuntimeFailure(f"could not remove {lay.dir}")

    def _stop_conmon(self, lay: ContainerLayout) -> None:
        pid = read_pidfile(lay.conmon_pidfile)
        # conmon exits by itself once the container is gone; give it a moment to write exits.
        poll_until(lambda: not conmon_alive(pid, lay.cid), CONMON_EXIT_WAIT)
        if pid is not None and conmon_alive(pid, lay.cid):
            signal_pid(pid, signal.SIGKILL)

    def _kill_cgroup_procs(self, cg: cgroups.ContainerCgroup) -> None:
        """Processes runc no longer knows of (its state was lost) still die with the container."""
        freezer = cg.v1.get("freezer")
        if freezer is not None and (freezer / "freezer.state").exists():
            with contextlib.suppress(OSError):
                (freezer / "freezer.state").write_text("THAWED")
        for _ in range(50):
            pids = cgroups.cgroup_procs(cg)
            if not pids:
                return
            for pid in pids:
                signal_pid(pid, signal.SIGKILL)
            time.sleep(0.05)

    def update_network_files(self, cid: str, addresses: list[str], nameservers: list[str],
                             dns: DnsSettings) -> None:
        lay = self._layout(cid)
        try:
            config = json.loads(lay.config.read_text())
        except FileNotFoundError:
            return  # not created (yet), or released: its next start writes them anew
        hostname = config.get("hostname") or cid[:12]
        with self._lock(cid):
            rootfs.update_network_files(lay.dir, hostname, addresses, nameservers, dns,
                                        domainname=config.get("domainname") or "")

    def list_ids(self) -> list[str]:
        ids: set[str] = set()
        for parent in (self.paths.containers, self.paths.runtime_state):
            with contextlib.suppress(FileNotFoundError):
                ids.update(p.name for p in parent.iterdir() if p.is_dir())
        return sorted(ids)

    # ---- interaction -----------------------------------------------------------------------

    def exec(self, cid: str, spec: ExecSpec) -> ExecProcess:
        lay = self._layout(cid)
        st = self._require_running(cid)
        if st.get("status") == "paused":
            raise Conflict(f"container {cid} is paused")
        if not spec.args:
            raise RuntimeFailure("no command given to exec")
        config = json.loads(lay.config.read_text())
        user = None
        if spec.user:  # that user's groups and, as docker's exec, the container's --group-add
            resolved = resolve_user(lay.rootfs, spec.user)
            user = {"uid": resolved.uid, "gid": resolved.gid}
            groups = supplementary_gids(lay.rootfs, resolved, spec.group_add)
            if groups:
                user["additionalGids"] = groups
        process = build_exec_process(config["process"], spec, user)
        workdir = lay.run_dir / f"exec-{secrets.token_hex(6)}"
        return RuncExec(self.runc.base_args(), cid, process, workdir)

    def stats(self, cid: str) -> Stats:
        state = self._require_running(cid)
        sample = cgroups.read_stats(self._cgroup(cid))
        pid = state.get("pid")
        if not isinstance(pid, int) or pid <= 0:
            return sample
        return dataclasses.replace(sample, networks=read_networks(pid))

    def top(self, cid: str, ps_args: list[str] | None = None
            ) -> tuple[list[str], list[list[str]]]:
        self._require_running(cid)
        pids = cgroups.cgroup_procs(self._cgroup(cid))
        if ps_args is None or tuple(ps_args) in DEFAULT_PS_ARGS:
            return process_table(pids)
        return ps_table(pids, ps_args)

    def update(self, cid: str, resources: Resources) -> None:
        self._require_running(cid)
        args = ["update"]
        if resources.memory is not None:
            args += ["--memory", str(resources.memory)]
        if resources.memory_swap is not None:
            args += ["--memory-swap", str(resources.memory_swap)]
        if resources.nano_cpus:
            args += ["--cpu-period", "100000",
                     "--cpu-quota", str(max(1000, resources.nano_cpus * 100000 // 10**9))]
        if resources.cpu_shares:
            args += ["--cpu-share", str(resources.cpu_shares)]
        if resources.pids_limit is not None:
            args += ["--pids-limit", str(resources.pids_limit)]
        if resources.memory_reservation is not None:
            args += ["--memory-reservation", str(resources.memory_reservation)]
        if resources.blkio_weight:  # runc updates no other block IO setting
            args += ["--blkio-weight", str(resources.blkio_weight)]
        for flag, value in (("--cpuset-cpus", resources.cpuset_cpus),
                            ("--cpuset-mems", resources.cpuset_mems)):
            if value:
                args += [flag, value]
        if len(args) > 1:
            self.runc.run(*args, cid)

    def read_logs(self, cid: str, follow: bool = False,
                  from_end: bool = False) -> Iterator[LogRecord]:
        lay = self._layout(cid)
        if not lay.dir.exists() and not from_end:
            return (record for record in ())  # not made here yet (never started): no output
        if from_end:  # read before a start: the monitor to watch is the one it makes
            def alive() -> bool:
                return conmon_alive(read_pidfile(lay.conmon_pidfile), cid)
        else:  # this run's: a follower ends when it does, as docker's logs -f
            pid = read_pidfile(lay.conmon_pidfile)

            def alive() -> bool:
                return conmon_alive(pid, cid)
        return read_log_files(logfiles.files_in_order(lay.log), follow, alive=alive,
                              newer=lambda inode: logfiles.newer_files(lay.log, inode),
                              from_end=from_end)

    def attach_socket(self, cid: str) -> Path:
        lay = self._layout(cid)
        if not lay.attach_socket.exists():
            raise Conflict(f"container {cid} has no attach socket (not running)")
        return lay.attach_socket

    def resize(self, cid: str, rows: int, cols: int) -> None:
        if not control(self._layout(cid).ctl, WINDOW_RESIZE, rows, cols):
            raise Conflict(f"container {cid} is not running")

"""Start conmon, the per-container monitor that outlives berthd.

conmon runs `runc create`, holds the container's stdio, writes the k8s-file log, records the
exit code (exit-dir/<id> and persist-dir/exit) and OOM kills (persist-dir/oom). It forks and
detaches itself, so the monitor is not our child: berthd may die without touching it.
"""

from __future__ import annotations

import errno
import json
import os
import select
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from berth.errors import RuntimeFailure
from berth.runtime.oci.procutil import read_pidfile
from berth.runtime.oci.runc import clean_error, runtime_env

SYNC_TIMEOUT = 60.0


@dataclass(frozen=True)
class ConmonLaunch:
    cid: str
    name: str
    runtime: str
    runtime_root: Path
    bundle: Path
    container_pidfile: Path
    conmon_pidfile: Path
    log_path: Path
    exit_dir: Path
    persist_dir: Path
    socket_dir: Path
    error_file: Path  # conmon's own stderr (before it detaches)
    terminal: bool = False
    stdin: bool = False
    stdin_once: bool = False  # an attach client's end of input closes the container's stdin
    log_size_max: int | None = None  # conmon starts a new log file rather than grow past it


def conmon_binary() -> str:
    found = shutil.which("conmon") or next(
        (p for p in ("/usr/libexec/podman/conmon", "/usr/bin/conmon") if Path(p).exists()), None)
    if found is None:
        raise RuntimeFailure("conmon is not installed")
    return found


def conmon_args(launch: ConmonLaunch) -> list[str]:
    args = [
        conmon_binary(), "--api-version", "1",
        "-c", launch.cid, "-u", launch.cid, "-n", launch.name or launch.cid,
        "-r", launch.runtime, "-b", str(launch.bundle),
        "-p", str(launch.container_pidfile), "-P", str(launch.conmon_pidfile),
        "-l", f"k8s-file:{launch.log_path}",
        "--exit-dir", str(launch.exit_dir), "--persist-dir", str(launch.persist_dir),
        # Without --full-attach conmon links <socket-dir>/<id> -> bundle, so the attach socket
        # has a short, predictable path: <socket-dir>/<id>/attach.
        "--socket-dir-path", str(launch.socket_dir),
        "--runtime-arg", "--root", "--runtime-arg", str(launch.runtime_root),
        "--log-level", "error",
    ]
    if launch.log_size_max is not None:
        args += ["--log-size-max", str(launch.log_size_max)]
    if launch.terminal:
        args.append("-t")
    if launch.stdin:
        args.append("-i")
        # conmon closes the container's stdin when an attach client ends its input unless
        # told to leave it open; a terminal's must stay open (it is the pty, output too).
        if not launch.stdin_once or launch.terminal:
            args.append("--leave-stdin-open")
    return args


def parse_sync_message(line: bytes) -> tuple[int, str]:
    """conmon's answer on the sync pipe: {"data": pid} or {"data": -1, "message": "..."}
    (API version 0 used "pid" instead of "data")."""
    try:
        msg = json.loads(line)
    except json.JSONDecodeError as e:
        raise RuntimeFailure(f"conmon sent an unreadable message: {line[:200]!r}") from e
    value = msg.get("data", msg.get("pid"))
    if not isinstance(value, int):
        raise RuntimeFailure(f"conmon sent an unexpected message: {line[:200]!r}")
    return value, str(msg.get("message", ""))


def _read_line(fd: int, timeout: float) -> bytes:
    buf = b""
    deadline = time.monotonic() + timeout
    while b"\n" not in buf:
        left = deadline - time.monotonic()
        if left <= 0:
            raise RuntimeFailure("timed out waiting for conmon to create the container")
        ready, _, _ = select.select([fd], [], [], left)
        if not ready:
            continue
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        buf += chunk
    return buf.split(b"\n", 1)[0]


def _wait_first_exit(proc: subprocess.Popen[bytes], timeout: float) -> int:
    """Wait for conmon's first process, which exits once it has forked the monitor and
    written its pid file (a pidfd wakes us at once; Popen.wait(timeout) polls in sleeps)."""
    try:
        pidfd = os.pidfd_open(proc.pid)
    except OSError:  # an old kernel: poll
        return proc.wait(timeout=timeout)
    try:
        if not select.select([pidfd], [], [], timeout)[0]:
            raise subprocess.TimeoutExpired(proc.args, timeout)
    finally:
        os.close(pidfd)
    return proc.wait(timeout=timeout)


def launch_conmon(launch: ConmonLaunch,
                  on_monitor: Callable[[int], None] | None = None) -> int:
    """Run conmon until `runc create` is done; return the container's pid. on_monitor gets
    the monitor's pid while `runc create` still runs, so what it does costs no extra time."""
    read_fd, write_fd = os.pipe()
    try:
        env = runtime_env(_OCI_SYNCPIPE=str(write_fd))
        with launch.error_file.open("wb") as err:
            proc = subprocess.Popen(
                conmon_args(launch), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=err, pass_fds=(write_fd,), env=env, cwd=launch.bundle,
                start_new_session=True)  # no terminal signal of ours may reach it
        os.close(write_fd)
        write_fd = -1
        rc = _wait_first_exit(proc, SYNC_TIMEOUT)
        monitor = read_pidfile(launch.conmon_pidfile) if rc == 0 else None
        if monitor is not None and on_monitor is not None:
            on_monitor(monitor)
        # The monitor answers once `runc create` is done (or the pipe closes when conmon
        # fails).
        line = _read_line(read_fd, SYNC_TIMEOUT)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise RuntimeFailure(f"conmon: {e}") from e
    finally:
        if write_fd >= 0:
            os.close(write_fd)
        os.close(read_fd)
    if not line:
        detail = _error_text(launch.error_file) or f"exit status {rc}"
        raise RuntimeFailure(f"conmon failed: {detail}")
    pid, message = parse_sync_message(line)
    if pid <= 0:
        raise RuntimeFailure(clean_error(message) or _error_text(launch.error_file) or
                             "the OCI runtime failed to create the container")
    return pid


def _error_text(path: Path) -> str:
    try:
        return clean_error(path.read_text(errors="replace"))
    except OSError:
        return ""


WINDOW_RESIZE = 1  # conmon's control messages: "<type> <rows> <cols>\n" on the ctl fifo
REOPEN_LOGS = 2  # a new log file at the log path (the old one keeps what it has)


def control(ctl: Path, kind: int, rows: int = 0, cols: int = 0) -> bool:
    """Send conmon a control message; False when no monitor listens (it has exited)."""
    try:
        fd = os.open(ctl, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as e:
        if e.errno in (errno.ENOENT, errno.ENXIO):
            return False
        raise
    try:
        os.write(fd, f"{kind} {int(rows)} {int(cols)}\n".encode())
    finally:
        os.close(fd)
    return True

"""Shared helpers for the Berth benchmarks: the CLI as a black box, an own berthd, mounts.

The benchmarks talk to Berth only through the `berth` command (`berth --host H ...`), exactly
as a user would, so they measure CLI start-up, the API round trips and the daemon's work.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

DEFAULT_HOST = "unix:///run/berth/berth.sock"
DEFAULT_PIDFILE = Path("/run/berth/berthd.pid")


def die(message: str) -> NoReturn:
    print(f"bench: error: {message}", file=sys.stderr)
    raise SystemExit(1)


def venv_bin(name: str) -> str:
    """The venv's own copy of a Berth command (next to this interpreter), else PATH."""
    here = Path(sys.executable).parent / name
    if here.exists():
        return str(here)
    found = shutil.which(name)
    if found is None:
        die(f"{name} not found next to {sys.executable} or on PATH (run scripts/setup.sh)")
    return str(found)


def require_root() -> None:
    if os.geteuid() != 0:
        die("benchmarks need root (runc, overlayfs, user namespaces)")


# --- mounts -------------------------------------------------------------------------------

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
MNT_DETACH = 2


def mount_overlay(lower: Path, upper: Path, work: Path, target: Path) -> None:
    opts = f"lowerdir={lower},upperdir={upper},workdir={work}".encode()
    if _libc.mount(b"overlay", str(target).encode(), b"overlay", 0, opts) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"mount overlay on {target}: {os.strerror(err)}")


def umount(target: Path, lazy: bool = False) -> None:
    if _libc.umount2(str(target).encode(), MNT_DETACH if lazy else 0) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"umount {target}: {os.strerror(err)}")


def mounts_under(prefix: Path) -> list[Path]:
    """Mount points at or below prefix, deepest first."""
    found: list[Path] = []
    base = str(prefix).rstrip("/")
    with open("/proc/self/mountinfo") as f:
        for line in f:
            point = line.split()[4].encode().decode("unicode_escape")
            if point == base or point.startswith(base + "/"):
                found.append(Path(point))
    return sorted(found, key=lambda p: len(p.parts), reverse=True)


def remove_tree(path: Path) -> None:
    """Unmount whatever is still mounted below path, then delete it (never across a mount)."""
    if not path.exists():
        return
    for point in mounts_under(path):
        try:
            umount(point, lazy=True)
        except OSError as e:
            print(f"bench: warning: {e}", file=sys.stderr)
    if mounts_under(path):
        print(f"bench: warning: mounts remain under {path}; leaving it in place", file=sys.stderr)
        return
    shutil.rmtree(path, ignore_errors=True)


# --- processes ----------------------------------------------------------------------------


def rss_kib(pid: int) -> int:
    """VmRSS of a process in KiB (0 when it has gone)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0


def pss_kib(pid: int) -> int:
    """Proportional set size in KiB: private pages plus a fair share of shared ones (libc and
    glib pages shared by 100 monitors count once in total, not 100 times as in RSS)."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        pass
    return 0


def cmdline(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
    except OSError:
        return []


def ppid(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/stat") as f:
            # the comm field may contain spaces; everything after the last ')' is fixed
            return int(f.read().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return -1


def all_pids() -> list[int]:
    return [int(d) for d in os.listdir("/proc") if d.isdigit()]


# --- the berth CLI ------------------------------------------------------------------------


@dataclass
class Berth:
    """Runs `berth --host HOST ...` as a subprocess."""

    host: str
    exe: str = field(default_factory=lambda: venv_bin("berth"))

    def argv(self, *args: str) -> list[str]:
        return [self.exe, "--host", self.host, *args]

    def run(self, *args: str, check: bool = True, timeout: float = 120) -> str:
        proc = subprocess.run(
            self.argv(*args), capture_output=True, text=True, timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
        if check and proc.returncode != 0:
            raise RuntimeError(
                f"berth {' '.join(args)} exited {proc.returncode}: "
                f"{(proc.stderr or proc.stdout).strip()}"
            )
        return proc.stdout

    def answers(self) -> bool:
        try:
            return subprocess.run(
                self.argv("info"), capture_output=True, timeout=10, stdin=subprocess.DEVNULL
            ).returncode == 0
        except subprocess.TimeoutExpired:
            return False

    def inspect(self, name: str) -> dict[str, Any]:
        data = json.loads(self.run("inspect", name, "--output", "json"))
        if isinstance(data, list):  # tolerate docker-style [ {...} ]
            data = data[0]
        return data

    def ensure_busybox(self) -> None:
        self.run("image", "build-base", "busybox", timeout=300)


class OwnDaemon:
    """A berthd of our own in temporary --root/--run-root dirs; stopped by the pid we started."""

    def __init__(self, extra_args: Sequence[str] = ()) -> None:
        self.extra_args = list(extra_args)  # more berthd flags, e.g. --insecure-registry H
        self.root = Path(tempfile.mkdtemp(prefix="berth-bench-root-", dir="/var/tmp"))
        self.run_root = Path(tempfile.mkdtemp(prefix="berth-bench-run-", dir="/run"))
        for d in (self.root, self.run_root):
            d.chmod(0o711)  # like /var/lib/berth: traversable by user-namespaced roots
        self.host = f"unix://{self.run_root / 'berth.sock'}"
        self.log_path = self.root.with_name(self.root.name + ".log")
        self.proc: subprocess.Popen[bytes] | None = None
        self.keep_log = False

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self, berth: Berth, timeout: float = 30) -> None:
        argv = [venv_bin("berthd"), "--root", str(self.root), "--run-root", str(self.run_root),
                *self.extra_args]
        print(f"bench: starting {' '.join(argv)} (log {self.log_path})", file=sys.stderr)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + timeout
        while not berth.answers():
            if self.proc.poll() is not None:
                self.keep_log = True
                die(f"berthd exited with {self.proc.returncode} during start-up; "
                    f"see {self.log_path}")
            if time.monotonic() > deadline:
                self.keep_log = True
                self.stop()
                die(f"berthd did not answer within {timeout:.0f} s; see {self.log_path}")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            print("bench: berthd ignored SIGTERM for 20 s; killing it", file=sys.stderr)
            self.proc.kill()
            self.proc.wait()

    def cleanup(self) -> None:
        from berth.agent.netops import forget_host

        self.stop()
        forget_host(self.run_root)  # its nft table and bridges outlive it, as on a real host
        remove_tree(self.run_root)
        remove_tree(self.root)
        if self.keep_log:
            print(f"bench: berthd log kept at {self.log_path}", file=sys.stderr)
        else:
            self.log_path.unlink(missing_ok=True)


def find_berthd_pid(pidfile: Path = DEFAULT_PIDFILE) -> int | None:
    """The pid of an externally started berthd: from its pid file, else by command line."""
    try:
        pid = int(pidfile.read_text().strip())
        if any("berthd" in a for a in cmdline(pid)):
            return pid
    except (OSError, ValueError):
        pass
    candidates = [p for p in all_pids() if any(Path(a).name == "berthd" for a in cmdline(p)[:2])]
    return candidates[0] if len(candidates) == 1 else None


class PrivateDockerd:
    """A dockerd of our own for the comparison, when one is installed but none is running:
    its own data, exec root and socket; no bridge, no iptables rules, so it changes nothing
    on the host's network. Stopped by the pid we started."""

    def __init__(self, extra_args: Sequence[str] = ()) -> None:
        self.extra_args = list(extra_args)  # more dockerd flags, e.g. --insecure-registry H
        self.dir = Path(tempfile.mkdtemp(prefix="berth-bench-dockerd-", dir="/var/tmp"))
        self.socket = self.dir / "docker.sock"
        self.proc: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        """dockerd's command line (a subclass may give it a network of its own)."""
        return ["dockerd", "--data-root", str(self.dir / "data"),
                "--exec-root", str(self.dir / "exec"), "-H", f"unix://{self.socket}",
                "--pidfile", str(self.dir / "dockerd.pid"), "--bridge=none",
                "--iptables=false", "--ip6tables=false", "--ip-masq=false",
                "--containerd-namespace", "berth-bench", "--log-level", "error",
                *self.extra_args]

    def start(self, timeout: float = 60) -> bool:
        argv = self.command()
        with open(self.dir / "dockerd.log", "ab") as log:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT)
        env = {**os.environ, "DOCKER_HOST": f"unix://{self.socket}"}
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            ok = subprocess.run(["docker", "version"], env=env, capture_output=True)
            if ok.returncode == 0:
                os.environ["DOCKER_HOST"] = env["DOCKER_HOST"]
                return True
            time.sleep(0.3)
        return False

    def cleanup(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        os.environ.pop("DOCKER_HOST", None)
        remove_tree(self.dir)

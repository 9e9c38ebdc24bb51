"""A real berthd in temp dirs, driven through the real `berth` CLI and the SDK."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from berth.client import APIError, Client

BIN = Path(sys.executable).parent
TEST_BASE = Path("/var/tmp/berth-tests")


def make_dirs() -> tuple[Path, Path]:
    """A root and run-root whose parents a container's mapped uid can traverse (0711)."""
    TEST_BASE.mkdir(parents=True, exist_ok=True)
    TEST_BASE.chmod(0o711)
    top = Path(tempfile.mkdtemp(prefix="d-", dir=TEST_BASE))
    top.chmod(0o711)
    root, run = top / "root", top / "run"
    root.mkdir()
    run.mkdir()
    return root, run


@dataclass
class Daemon:
    root: Path
    run_root: Path
    proc: subprocess.Popen[bytes] | None = None
    args: list[str] = field(default_factory=list)  # extra berthd options
    log: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log = self.root.parent / "berthd.log"

    @property
    def socket(self) -> Path:
        return self.run_root / "berth.sock"

    @property
    def host(self) -> str:
        return f"unix://{self.socket}"

    @property
    def docker_socket(self) -> Path:
        return self.run_root / "docker.sock"

    @property
    def docker_host(self) -> str:
        return f"unix://{self.docker_socket}"

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "BERTH_HOST": self.host}

    def start(self, timeout: float = 20.0) -> None:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [str(BIN / "berthd"), "--root", str(self.root), "--run-root", str(self.run_root),
                 "--log-level", "info", *self.args],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        client = Client(self.host)
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"berthd exited early:\n{self.log.read_text()[-4000:]}")
            try:
                client.info()
                return
            except APIError as e:
                if e.status == 401:  # answering, but root is nobody (--no-local-root-admin)
                    return
                time.sleep(0.05)
            except Exception:
                time.sleep(0.05)
        raise RuntimeError(f"berthd did not answer in {timeout}s:\n{self.log.read_text()[-4000:]}")

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    @property
    def client(self) -> Client:
        return Client(self.host)

    def cli(self, *args: str, check: bool = True, input: bytes | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess[str]:
        res = subprocess.run([str(BIN / "berth"), *args], env=self.env, capture_output=True,
                             timeout=timeout, input=input.decode() if input else None,
                             text=True)
        if check and res.returncode != 0:
            raise AssertionError(f"berth {' '.join(args)} -> {res.returncode}\n"
                                 f"stdout: {res.stdout}\nstderr: {res.stderr}")
        return res

    def inspect(self, name: str) -> dict[str, Any]:
        return json.loads(self.cli("inspect", "--output", "json", name).stdout)

    def remove_all(self) -> None:
        remove_pods(self.client)
        for c in self.client.containers.list(all=True):
            # best effort: whatever is left is reported by the leak check that follows
            with contextlib.suppress(Exception):
                self.client.containers.remove(c["id"], force=True, volumes=True)

    def wait_for(self, predicate: Any, timeout: float = 20.0, what: str = "condition") -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            time.sleep(0.05)
        raise AssertionError(f"timed out waiting for {what}")


def refused(res: subprocess.CompletedProcess[str], *words: str) -> str:
    """A CLI refusal as docker's: exit 125 and one "berth: …" line holding every word."""
    assert res.returncode == 125, (res.returncode, res.stdout, res.stderr)
    assert "Traceback" not in res.stderr, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("berth: "), res.stderr
    for word in words:
        assert word in lines[0], f"{word!r} not in {lines[0]!r}"
    return lines[0]


def remove_pods(c: Client) -> None:
    """A pod's infra container goes with its pod only: pods first (best effort)."""
    for pod in c.transport.call("GET", "/v1/pods") or []:
        with contextlib.suppress(Exception):
            c.transport.call("DELETE", f"/v1/pods/{pod['id']}", {"force": True})


def empty_project(c: Client) -> None:
    """Remove what a test made in the client's project: pods, services, containers,
    volumes, images."""
    remove_pods(c)
    for svc in c.transport.call("GET", "/v1/services") or []:
        c.transport.call("DELETE", f"/v1/services/{svc['id']}")
    for box in c.containers.list(all=True):
        c.containers.remove(box["id"], force=True)
    for vol in c.volumes.list():
        c.volumes.remove(vol["name"])
    for img in c.images.list():
        c.images.remove(img["id"], force=True)


def leaks(d: Daemon) -> list[str]:
    """What a daemon's containers left on the host: mounts, monitors, cgroups, runtime state."""
    found = []
    root = str(d.root)
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        if root in line or str(d.run_root) in line:
            found.append("mount: " + line.split()[4])
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if "conmon" in cmd.split(" ", 1)[0] and root in cmd:
            found.append(f"conmon process {pid}")
    containers = d.root / "containers"
    if containers.exists():
        found += [f"container dir {p.name}" for p in containers.iterdir()]
    ids = ever_created(d)
    for ctl in Path("/sys/fs/cgroup").iterdir():
        for cid in ids:
            if (ctl / "berth" / cid).exists():
                found.append(f"cgroup {ctl / 'berth' / cid}")
    netns_dir = d.run_root / "netns"
    if netns_dir.exists():  # a removed container's network namespace goes with it
        found += [f"network namespace {p.name}" for p in netns_dir.iterdir()
                  if not p.name.startswith(".")]
    for shared in ("containers", "exits", "attach"):
        state_dir = d.run_root / shared
        if state_dir.exists():
            found += [f"runtime state {shared}/{p.name}" for p in state_dir.iterdir()]
    return found


def ever_created(d: Daemon) -> set[str]:
    """Every container id this daemon's store has seen (its actions log keeps them)."""
    import sqlite3

    db = sqlite3.connect(d.root / "berth.db")
    try:
        return {row[0] for row in db.execute(
            "SELECT DISTINCT container_id FROM actions WHERE container_id != ''")}
    finally:
        db.close()


def destroy(d: Daemon) -> None:
    from berth.agent.netops import forget_host

    forget_host(d.run_root)  # bridges and nft table outlive a daemon, as on a real host
    shutil.rmtree(d.root.parent, ignore_errors=True)


def registry_daemon(work: Path, registry_host: str, gpg_home: Path) -> tuple[Daemon, Path]:
    """A berthd for registry tests: plain HTTP to ``registry_host``, a host signature policy
    (returned; it accepts anything until a test rewrites it), no registries.d, GPG keys from
    ``gpg_home``, and the busybox base image built."""
    policy = work / "policy.json"
    policy.write_text('{"default": [{"type": "insecureAcceptAnything"}]}')
    root, run = make_dirs()
    d = Daemon(root, run, args=["--insecure-registry", registry_host,
                                "--signature-policy", str(policy),
                                "--registries-d", str(work / "no-registries.d"),
                                "--gpg-home", str(gpg_home)])
    d.start()
    d.cli("image", "build-base", "busybox")
    return d, policy

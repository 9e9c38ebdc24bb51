"""OciBackend against real runc, conmon, overlayfs and cgroups, on a hand-made busybox rootfs."""

from __future__ import annotations

import contextlib
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from berth.errors import RuntimeFailure
from berth.paths import HostPaths
from berth.runtime.base import (
    ContainerSpec,
    ExecProcess,
    ExecSpec,
    IdMapping,
    MountSpec,
    Resources,
    Status,
)
from berth.runtime.oci import OciBackend
from berth.runtime.oci.backend import CONMON_CGROUP
from berth.runtime.oci.procutil import comm, conmon_alive, is_zombie, read_pidfile

pytestmark = pytest.mark.integration

HOST_BASE = 100000
BUSYBOX = shutil.which("busybox") or "/bin/busybox"
SRC = Path(__file__).resolve().parents[2] / "src"

if os.geteuid() != 0 or not shutil.which("runc") or not shutil.which("conmon"):
    pytest.skip("needs root, runc and conmon", allow_module_level=True)


def _mkdtemp(prefix: str) -> Path:
    # 0711: a container root mapped to HOST_BASE must be able to traverse to its files.
    path = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    path.chmod(0o711)
    return path


@pytest.fixture(scope="module")
def image_layer() -> Iterator[Path]:
    base = _mkdtemp("berth-layer-")
    root = base / "rootfs"
    for d in ("bin", "etc", "tmp", "root", "home/app", "data"):
        (root / d).mkdir(parents=True)
    shutil.copy2(BUSYBOX, root / "bin" / "busybox")
    applets = subprocess.run([BUSYBOX, "--list"], capture_output=True, text=True,
                             check=True).stdout.split()
    for applet in applets:
        if applet != "busybox":
            (root / "bin" / applet).symlink_to("busybox")
    (root / "etc" / "passwd").write_text(
        "root:x:0:0:root:/root:/bin/sh\n"
        "app:x:1000:1000:app:/home/app:/bin/sh\n"
        "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")
    (root / "etc" / "group").write_text(
        "root:x:0:\nwheel:x:10:root\nstaff:x:50:app\napp:x:1000:\nnogroup:x:65534:\n")
    (root / "tmp").chmod(0o1777)
    (root / "data" / "notexec").write_text("plain text\n")
    (root / "data" / "notexec").chmod(0o644)
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [*dirnames, *filenames, ""]:
            os.lchown(os.path.join(dirpath, name), HOST_BASE, HOST_BASE)
    os.lchown(root / "home" / "app", HOST_BASE + 1000, HOST_BASE + 1000)
    yield root
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture()
def paths() -> Iterator[HostPaths]:
    base = _mkdtemp("berth-oci-")
    hp = HostPaths(base / "root", base / "run")
    hp.create()
    yield hp
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture()
def backend(paths: HostPaths) -> OciBackend:
    return OciBackend(paths)


Factory = Callable[..., ContainerSpec]


@pytest.fixture()
def make(backend: OciBackend, image_layer: Path, request: pytest.FixtureRequest
         ) -> Iterator[Factory]:
    """Create containers that are deleted at the end of the test, pass or fail."""
    made: list[str] = []

    def factory(args: list[str], start: bool = True, **kw: object) -> ContainerSpec:
        cid = f"t{len(made)}-{os.getpid()}-{request.node.name[:20].replace('[', '')}"
        kw.setdefault("idmap", IdMapping(HOST_BASE))
        spec = ContainerSpec(id=cid, name=cid, args=args, env=kw.pop("env", ["A=1"]),
                             layers=[image_layer], **kw)  # type: ignore[arg-type]
        made.append(cid)
        backend.create(spec)
        if start:
            backend.start(cid)
        return spec

    yield factory
    for cid in made:
        backend.delete(cid)
        assert_no_traces(backend, cid)


def assert_no_traces(backend: OciBackend, cid: str) -> None:
    assert cid not in Path("/proc/self/mountinfo").read_text()
    leftover = [p for p in Path("/sys/fs/cgroup").glob(f"*/berth/{cid}")]
    assert leftover == []
    assert not (backend.runc.root / cid).exists()
    assert not os.path.lexists(backend.paths.run_root / "attach" / cid)
    assert not (backend.paths.run_root / "exits" / cid).exists()
    for pid_dir in Path("/proc").iterdir():
        if pid_dir.name.isdigit() and comm(int(pid_dir.name)) == "conmon":
            with contextlib.suppress(OSError):
                assert cid.encode() not in (pid_dir / "cmdline").read_bytes()
    assert cid not in backend.list_ids()


def wait_status(backend: OciBackend, cid: str, want: Status, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while True:
        st = backend.state(cid)
        if st.status == want or time.monotonic() > deadline:
            assert st.status == want, st
            return st
        time.sleep(0.05)


def logs(backend: OciBackend, cid: str) -> tuple[bytes, bytes]:
    out, err = b"", b""
    for rec in backend.read_logs(cid):
        if rec.stream == "stdout":
            out += rec.data
        else:
            err += rec.data
    return out, err


def run_to_end(backend: OciBackend, make: Factory, args: list[str], **kw: object
               ) -> tuple[int | None, bytes, bytes]:
    spec = make(args, **kw)
    st = wait_status(backend, spec.id, Status.STOPPED)
    out, err = logs(backend, spec.id)
    return st.exit_code, out, err


def read_all(fd: int, timeout: float = 10.0) -> bytes:
    data = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                break
            if not chunk:
                break
            data += chunk
    return data


def exec_run(backend: OciBackend, cid: str, spec: ExecSpec) -> tuple[int, bytes, bytes]:
    proc: ExecProcess = backend.exec(cid, spec)
    try:
        stdin = proc.fileno_stdin()
        if stdin is not None:
            os.close(stdin)
        out = read_all(proc.fileno_stdout())
        err_fd = proc.fileno_stderr()
        err = read_all(err_fd) if err_fd is not None else b""
        return proc.wait(), out, err
    finally:
        proc.close()


# ---- basic run --------------------------------------------------------------------------


def test_exit_code_and_separate_streams_with_timestamps(backend: OciBackend, make: Factory
                                                        ) -> None:
    spec = make(["sh", "-c", "echo to-out; echo to-err >&2; printf partial; exit 7"])
    st = wait_status(backend, spec.id, Status.STOPPED)
    assert st.exit_code == 7
    assert st.finished_at is not None and st.started_at is not None
    assert st.finished_at >= st.started_at
    records = list(backend.read_logs(spec.id))
    by_stream = {r.stream: b"".join(x.data for x in records if x.stream == r.stream)
                 for r in records}
    assert by_stream["stdout"] == b"to-out\npartial"
    assert by_stream["stderr"] == b"to-err\n"
    for rec in records:
        assert rec.time[:4].isdigit() and "T" in rec.time and rec.time[19] == "."


def test_uid_map_env_cwd_user_hostname(backend: OciBackend, make: Factory) -> None:
    code, out, _ = run_to_end(
        backend, make,
        ["sh", "-c", "cat /proc/self/uid_map; echo B=$B; pwd; id; hostname; echo HOME=$HOME"],
        env=["B=bee"], cwd="/tmp", user="app", hostname="boxy")
    assert code == 0
    lines = out.decode().splitlines()
    assert lines[0].split() == ["0", str(HOST_BASE), "65536"]
    assert lines[1] == "B=bee"
    assert lines[2] == "/tmp"
    assert lines[3].startswith("uid=1000(app) gid=1000(app)") and "50(staff)" in lines[3]
    assert lines[4] == "boxy"
    assert lines[5] == "HOME=/home/app"


def test_numeric_user_and_group(backend: OciBackend, make: Factory) -> None:
    code, out, _ = run_to_end(backend, make, ["id", "-u"], user="4321:50")
    assert code == 0 and out == b"4321\n"


def test_missing_command_fails_with_runc_message_and_leaves_nothing(
        backend: OciBackend, image_layer: Path, paths: HostPaths) -> None:
    cid = f"missing-{os.getpid()}"
    spec = ContainerSpec(id=cid, name=cid, args=["nosuch-binary"], env=[],
                         layers=[image_layer], idmap=IdMapping(HOST_BASE))
    with pytest.raises(RuntimeFailure) as exc:
        backend.create(spec)
    assert 'exec: "nosuch-binary": executable file not found' in exc.value.message
    assert_no_traces(backend, cid)
    assert not (paths.containers / cid).exists()
    assert not (paths.runtime_state / cid).exists()


# ---- limits -----------------------------------------------------------------------------


def test_fork_bomb_contained_by_pids_limit(backend: OciBackend, make: Factory) -> None:
    # In a subshell: a starved fork kills the shell that tried it, never the init.
    spec = make(["sh", "-c", "f() { f | f & }; (f); exec sleep 30"],
                resources=Resources(pids_limit=32))
    time.sleep(2)
    stats = backend.stats(spec.id)
    assert stats.pids_limit == 32
    assert stats.pids_current <= 32
    events = Path(f"/sys/fs/cgroup/pids/berth/{spec.id}/pids.events").read_text()
    assert int(events.split()[1]) > 0  # forks were refused: the bomb did hit the limit
    assert subprocess.run(["true"]).returncode == 0  # the host can still start processes
    backend.kill(spec.id, signal.SIGKILL)
    st = wait_status(backend, spec.id, Status.STOPPED)
    assert st.exit_code == 137, (st, monitor_report(backend, spec.id))


def monitor_report(backend: OciBackend, cid: str) -> dict[str, object]:
    """What conmon left, for a failure message: a lost exit code must say why."""
    lay = backend._layout(cid)
    monitor = read_pidfile(lay.conmon_pidfile)
    return {"conmon": monitor, "alive": conmon_alive(monitor, cid),
            "errors": lay.conmon_errors.read_text(errors="replace")[-500:]
            if lay.conmon_errors.exists() else None,
            "persist": sorted(p.name for p in lay.persist.iterdir())
            if lay.persist.is_dir() else None}


def test_memory_hog_is_oom_killed(backend: OciBackend, make: Factory) -> None:
    mib = 1024 * 1024
    # tail buffers everything and is OOM-killed; the shell exits with its status, 137.
    spec = make(["sh", "-c", "head -c 200m /dev/zero | tail"],
                resources=Resources(memory=32 * mib, memory_swap=32 * mib))
    st = wait_status(backend, spec.id, Status.STOPPED, timeout=60)
    assert st.oom_killed is True
    assert st.exit_code == 137
    assert subprocess.run(["true"]).returncode == 0  # the host is fine


def test_oom_killed_init_exits_137(backend: OciBackend, make: Factory) -> None:
    mib = 1024 * 1024
    # The shell itself grows: the kernel kills the init process.
    spec = make(["sh", "-c", "x=$(head -c 100m /dev/zero | tr '\\0' a); echo ${#x}"],
                resources=Resources(memory=16 * mib, memory_swap=16 * mib))
    st = wait_status(backend, spec.id, Status.STOPPED, timeout=60)
    assert st.oom_killed is True
    assert st.exit_code == 137


def test_update_live_and_stats_top(backend: OciBackend, make: Factory) -> None:
    spec = make(["sh", "-c", "while :; do :; done & exec sleep 300"],
                resources=Resources(memory=64 * 1024 * 1024, pids_limit=100))
    wait_status(backend, spec.id, Status.RUNNING)
    time.sleep(0.5)
    backend.update(spec.id, Resources(memory=48 * 1024 * 1024, memory_swap=48 * 1024 * 1024,
                                      pids_limit=50))
    mem = Path(f"/sys/fs/cgroup/memory/berth/{spec.id}/memory.limit_in_bytes")
    pids = Path(f"/sys/fs/cgroup/pids/berth/{spec.id}/pids.max")
    assert int(mem.read_text()) == 48 * 1024 * 1024
    assert pids.read_text().strip() == "50"
    stats = backend.stats(spec.id)
    assert stats.cpu_usage_ns > 0 and stats.system_cpu_ns > 0
    assert stats.memory_usage > 0 and stats.memory_limit == 48 * 1024 * 1024
    assert stats.pids_current >= 2 and stats.pids_limit == 50
    titles, rows = backend.top(spec.id)
    assert titles == ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]
    cmds = [row[-1] for row in rows]
    assert "sleep 300" in cmds
    assert all(row[0] == str(HOST_BASE) for row in rows)


# ---- lifecycle --------------------------------------------------------------------------


def test_pause_resume_and_sigterm(backend: OciBackend, make: Factory) -> None:
    spec = make(["sh", "-c", "trap 'exit 42' TERM; while :; do sleep 0.1; done"])
    running = wait_status(backend, spec.id, Status.RUNNING)
    assert running.pid > 0
    backend.pause(spec.id)
    assert backend.state(spec.id).status == Status.PAUSED
    backend.resume(spec.id)
    assert backend.state(spec.id).status == Status.RUNNING
    backend.kill(spec.id, signal.SIGTERM)
    st = wait_status(backend, spec.id, Status.STOPPED)
    assert st.exit_code == 42
    backend.kill(spec.id, signal.SIGTERM)  # no error once it has exited


def test_an_exit_not_yet_recorded_is_read_without_asking_the_runtime(
        backend: OciBackend, make: Factory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Between a process's end and its monitor writing the exit file, state() waits for
    the file rather than spawn `runc state` (10 ms of every short `run --rm`)."""
    spec = make(["sh", "-c", "sleep 0.3; exit 5"])
    lay = backend._layout(spec.id)
    monitor, pid = read_pidfile(lay.conmon_pidfile), read_pidfile(lay.container_pidfile)
    assert monitor is not None and pid is not None
    os.kill(monitor, signal.SIGSTOP)  # it cannot reap the process nor write the exit
    try:
        deadline = time.monotonic() + 10
        while not is_zombie(pid):
            assert time.monotonic() < deadline, "the process did not end"
            time.sleep(0.02)

        def no_runtime(cid: str) -> None:
            raise AssertionError("state() asked the runtime")

        monkeypatch.setattr(backend.runc, "state", no_runtime)
        threading.Timer(0.05, os.kill, (monitor, signal.SIGCONT)).start()
        st = backend.state(spec.id)
    finally:
        os.kill(monitor, signal.SIGCONT)
    assert st.status == Status.STOPPED and st.exit_code == 5, st


def test_an_exited_container_is_released_without_the_runtime(
        backend: OciBackend, make: Factory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Once conmon recorded the exit, release frees the cgroup and the runtime's record
    itself: `runc delete` would cost every `run --rm` ~10 ms for the same."""
    spec = make(["true"])
    wait_status(backend, spec.id, Status.STOPPED)
    real_run = backend.runc.run

    def no_delete(*args: str, **kw: Any) -> Any:
        assert args[0] != "delete", "release ran the runtime's delete"
        return real_run(*args, **kw)

    monkeypatch.setattr(backend.runc, "run", no_delete)
    backend.release(spec.id)
    assert not (backend.runc.root / spec.id).exists()
    assert backend.runc.state(spec.id) is None  # the runtime agrees: it knows it no more
    assert [p for p in Path("/sys/fs/cgroup").glob(f"*/berth/{spec.id}")] == []
    assert backend.state(spec.id).exit_code == 0

    def nothing_to_free(lay: Any) -> None:
        raise AssertionError("released twice")

    monkeypatch.setattr(backend, "_free_runtime", nothing_to_free)
    backend.delete(spec.id)  # an auto-remove's delete, right after the exit's release
    assert_no_traces(backend, spec.id)


def test_a_created_container_is_still_deleted_by_the_runtime(
        backend: OciBackend, make: Factory) -> None:
    spec = make(["true"], start=False)
    backend.delete(spec.id)  # no exit recorded: only the runtime can undo its create
    assert_no_traces(backend, spec.id)


def test_created_state_and_missing(backend: OciBackend, make: Factory) -> None:
    spec = make(["true"], start=False)
    assert backend.state(spec.id).status == Status.CREATED
    assert backend.state("never-made").status == Status.MISSING
    backend.delete("never-made")  # idempotent


def test_release_keeps_upper_and_log_then_runs_again(backend: OciBackend, make: Factory,
                                                      paths: HostPaths) -> None:
    spec = make(["sh", "-c", "echo run; cat /data/count 2>/dev/null; echo x >> /data/count"])
    wait_status(backend, spec.id, Status.STOPPED)
    backend.release(spec.id)
    backend.release(spec.id)  # idempotent
    assert spec.id not in Path("/proc/self/mountinfo").read_text()
    assert backend.state(spec.id).exit_code == 0
    backend.create(spec)
    backend.start(spec.id)
    wait_status(backend, spec.id, Status.STOPPED)
    out, _ = logs(backend, spec.id)
    assert out == b"run\nrun\nx\n"  # the log kept run one; run two saw run one's write
    assert backend.exit_watch_dir() == paths.run_root / "exits"


def test_conmon_survives_its_launcher(backend: OciBackend, paths: HostPaths,
                                      image_layer: Path) -> None:
    cid = f"survivor-{os.getpid()}"
    script = textwrap.dedent(f"""
        import os, sys, time
        from pathlib import Path
        from berth.paths import HostPaths
        from berth.runtime.base import ContainerSpec, IdMapping
        from berth.runtime.oci import OciBackend
        b = OciBackend(HostPaths(Path({str(paths.root)!r}), Path({str(paths.run_root)!r})))
        b.create(ContainerSpec(id={cid!r}, name="s", env=[], idmap=IdMapping({HOST_BASE}),
                               args=["sh", "-c", "sleep 3; exit 5"],
                               layers=[Path({str(image_layer)!r})]))
        b.start({cid!r})
        print("started", flush=True)
        time.sleep(600)
    """)
    env = dict(os.environ, PYTHONPATH=str(SRC))
    launcher = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                                env=env)
    try:
        assert launcher.stdout is not None
        assert launcher.stdout.readline() == b"started\n"
        before = OciBackend(paths).state(cid)
        launcher.send_signal(signal.SIGKILL)
        launcher.wait()
        fresh = OciBackend(paths)
        after = fresh.state(cid)
        assert after.status == Status.RUNNING
        assert after.pid == before.pid > 0
        st = wait_status(fresh, cid, Status.STOPPED)
        assert st.exit_code == 5
    finally:
        if launcher.poll() is None:
            launcher.kill()
            launcher.wait()
        backend.delete(cid)
        assert_no_traces(backend, cid)


# ---- filesystem -------------------------------------------------------------------------


def test_readonly_rootfs(backend: OciBackend, make: Factory) -> None:
    code, _, err = run_to_end(backend, make, ["sh", "-c", "touch /data/x"],
                              readonly_rootfs=True)
    assert code != 0 and b"Read-only file system" in err


def test_bind_ro_rw_and_tmpfs(backend: OciBackend, make: Factory) -> None:
    host = _mkdtemp("berth-bind-")
    try:
        (host / "in.txt").write_text("from host\n")
        os.chown(host, HOST_BASE, HOST_BASE)
        code, out, err = run_to_end(
            backend, make,
            ["sh", "-c", "cat /ro/in.txt; touch /ro/no || echo ro-refused; "
                         "echo hi > /rw/out.txt; grep ' /scratch ' /proc/mounts"],
            mounts=[MountSpec("bind", "/ro", str(host), readonly=True),
                    MountSpec("volume", "/rw", str(host)),
                    MountSpec("tmpfs", "/scratch", options=("size=1m", "mode=1777"))])
        assert code == 0, err
        lines = out.decode().splitlines()
        assert lines[0] == "from host"
        assert lines[1] == "ro-refused"
        assert (host / "out.txt").read_text() == "hi\n"
        assert lines[2].startswith("tmpfs /scratch tmpfs") and "size=1024k" in lines[2]
    finally:
        shutil.rmtree(host, ignore_errors=True)


# ---- security ---------------------------------------------------------------------------


def test_seccomp_blocks_namespaces_and_swapoff(backend: OciBackend, make: Factory) -> None:
    code, out, err = run_to_end(
        backend, make,
        ["sh", "-c", "unshare -U true; echo unshare=$?; swapoff /data/notexec; "
                     "echo swapoff=$?; linux32 uname -m; ls / >/dev/null && echo ok; "
                     "grep -E '^(Seccomp|NoNewPrivs|CapEff):' /proc/self/status"])
    assert code == 0
    text = out.decode()
    assert "unshare=1" in text and "Operation not permitted" in err.decode()
    assert "swapoff=" in text and "swapoff=0" not in text
    assert "ok" in text
    assert "i686" in text  # personality(PER_LINUX32) is one of the allowed values
    assert "Seccomp:\t2" in text and "NoNewPrivs:\t1" in text
    assert "CapEff:\t00000000a80425fb" in text  # Docker's default set


def test_masked_and_readonly_proc_paths(backend: OciBackend, make: Factory) -> None:
    code, out, err = run_to_end(
        backend, make,
        ["sh", "-c", "wc -c < /proc/timer_list; echo 1 > /proc/sys/vm/drop_caches;"
                     " cat /etc/hostname /etc/hosts"],
        hostname="hn")
    assert code == 0
    lines = out.decode().splitlines()
    assert lines[0] == "0"  # masked by /dev/null (the host's is not empty)
    assert b"Read-only file system" in err
    assert lines[1] == "hn" and any(line.endswith("\thn") for line in lines[2:])


def test_attach_socket_and_resize(backend: OciBackend, make: Factory) -> None:
    spec = make(["sh"], tty=True, stdin=True)
    wait_status(backend, spec.id, Status.RUNNING)
    path = backend.attach_socket(spec.id)
    assert len(str(path)) < 108
    backend.resize(spec.id, 41, 123)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        sock.connect(str(path))
        time.sleep(0.3)
        sock.sendall(b"stty size; echo at-$((40+2))\n")
        got = b""
        deadline = time.monotonic() + 10
        while b"at-42" not in got and time.monotonic() < deadline:
            ready, _, _ = select.select([sock], [], [], 0.2)
            if ready:
                packet = sock.recv(65536)
                if not packet:
                    break
                assert packet[0] == 2  # conmon tags packets: 2 stdout, 3 stderr
                got += packet[1:]
        assert b"41 123" in got and b"at-42" in got
    finally:
        sock.close()
    backend.kill(spec.id, signal.SIGKILL)
    assert wait_status(backend, spec.id, Status.STOPPED).exit_code == 137


# ---- exec -------------------------------------------------------------------------------


def test_exec_exit_codes(backend: OciBackend, make: Factory) -> None:
    spec = make(["sleep", "300"], env=["A=1", "B=2"])
    wait_status(backend, spec.id, Status.RUNNING)
    code, out, err = exec_run(backend, spec.id, ExecSpec(
        ["sh", "-c", "echo $A$B$C; pwd; id -u; echo e >&2; exit 3"], env=["C=3"], cwd="/tmp",
        user="app"))
    assert (code, out, err) == (3, b"123\n/tmp\n1000\n", b"e\n")
    code, _, _ = exec_run(backend, spec.id, ExecSpec(["nosuch-cmd"]))
    assert code == 127
    code, _, _ = exec_run(backend, spec.id, ExecSpec(["/data/notexec"]))
    assert code == 126


def test_exec_tty(backend: OciBackend, make: Factory) -> None:
    spec = make(["sleep", "300"])
    wait_status(backend, spec.id, Status.RUNNING)
    proc = backend.exec(spec.id, ExecSpec(["sh"], tty=True))
    try:
        assert proc.fileno_stderr() is None
        fd = proc.fileno_stdout()
        proc.resize(33, 101)
        time.sleep(0.3)
        os.write(fd, b"tty; stty size; echo marker-$((6*7)); exit 9\n")
        out = read_all(fd, timeout=10)
        assert b"/dev/pts/" in out
        assert b"33 101" in out
        assert b"marker-42" in out
        assert proc.wait() == 9
    finally:
        proc.close()


def test_conmon_lives_outside_the_launchers_cgroups(backend: OciBackend, make: Factory) -> None:
    """A service manager stopping berthd kills its cgroup: the monitors must not be in it."""
    spec = make(["sleep", "30"])
    monitor = read_pidfile(backend._layout(spec.id).conmon_pidfile)
    assert monitor is not None
    placed = {}
    for line in Path(f"/proc/{monitor}/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        placed[controllers or "unified"] = path
    assert placed and set(placed.values()) == {CONMON_CGROUP}, placed  # v1's cpuset too

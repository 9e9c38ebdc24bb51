"""--sig-proxy, as docker's: a signal sent to an attached `berth run`, `start -a` or `attach`
(without a TTY) goes on to the container; with --sig-proxy=false, or a TTY container, it stays
with the client, which dies of it and leaves the container running."""

from __future__ import annotations

import select
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from tests.integration.daemon import BIN, Daemon, refused

pytestmark = pytest.mark.integration

# Says "ready" once its traps are set, then answers USR1 and leaves on TERM with code 3.
TRAPS = ('trap "echo got-usr1" USR1; trap "echo got-term; exit 3" TERM; echo ready; '
         'while true; do sleep 0.1; done')


@contextmanager
def client(daemon: Daemon, *args: str, stdin: int | None = subprocess.DEVNULL
           ) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen([str(BIN / "berth"), *args], env=daemon.env, stdin=stdin,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            bufsize=0)  # unbuffered: select() sees what read() has not
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)
        for pipe in (proc.stdin, proc.stdout, proc.stderr):
            if pipe:
                pipe.close()


def read_line(proc: subprocess.Popen[bytes], timeout: float = 15.0) -> bytes:
    """The client's next line of output (the container's), or fail after timeout."""
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    line = b""
    while not line.endswith(b"\n"):
        left = deadline - time.monotonic()
        ready, _, _ = select.select([proc.stdout], [], [], max(left, 0))
        if not ready:
            raise AssertionError(f"no line from the client in {timeout}s (so far {line!r})")
        byte = proc.stdout.read(1)
        if not byte:
            raise AssertionError(f"the client's output ended (so far {line!r}); stderr: "
                                 f"{proc.stderr.read() if proc.stderr else b''!r}")
        line += byte
    return line


def passes_signals_on(daemon: Daemon, proc: subprocess.Popen[bytes], name: str) -> None:
    """USR1 reaches the container's trap; TERM ends it, and the client leaves with its code."""
    assert read_line(proc) == b"ready\n"
    proc.send_signal(signal.SIGUSR1)
    assert read_line(proc) == b"got-usr1\n"
    proc.send_signal(signal.SIGTERM)
    assert read_line(proc) == b"got-term\n"
    assert proc.wait(15) == 3
    state = daemon.inspect(name)["state"]
    assert (state["status"], state["exit_code"]) == ("exited", 3)


def keeps_signals(daemon: Daemon, proc: subprocess.Popen[bytes], name: str) -> None:
    """The client dies of TERM itself; the container never hears of it."""
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(15) == -signal.SIGTERM
    time.sleep(0.5)  # (a TERM passed on would have ended it by now)
    assert daemon.inspect(name)["state"]["status"] == "running"
    assert "got-term" not in daemon.cli("logs", name).stdout


def test_run_passes_signals_to_the_container(daemon: Daemon) -> None:
    name = "sigp-run"
    try:
        with client(daemon, "run", "--name", name, "busybox", "sh", "-c", TRAPS) as proc:
            passes_signals_on(daemon, proc, name)
    finally:
        daemon.cli("rm", "-f", name, check=False)


def test_run_with_rm_removes_the_container_a_signal_ended(daemon: Daemon) -> None:
    name = "sigp-rm"
    with client(daemon, "run", "--rm", "--name", name, "busybox", "sh", "-c", TRAPS) as proc:
        assert read_line(proc) == b"ready\n"
        proc.send_signal(signal.SIGTERM)
        assert read_line(proc) == b"got-term\n"
        assert proc.wait(15) == 3
    assert name not in daemon.cli("ps", "-a", "--format", "{{.Names}}").stdout.split()


def test_run_interactive_without_a_tty_passes_signals(daemon: Daemon) -> None:
    name = "sigp-i"
    try:
        with client(daemon, "run", "-i", "--name", name, "busybox", "sh", "-c", TRAPS,
                    stdin=subprocess.PIPE) as proc:
            passes_signals_on(daemon, proc, name)
    finally:
        daemon.cli("rm", "-f", name, check=False)


def test_start_attached_passes_signals(daemon: Daemon) -> None:
    name = "sigp-start"
    daemon.cli("create", "--name", name, "busybox", "sh", "-c", TRAPS)
    try:
        with client(daemon, "start", "-a", name) as proc:
            passes_signals_on(daemon, proc, name)
    finally:
        daemon.cli("rm", "-f", name, check=False)


def test_attach_passes_signals(daemon: Daemon) -> None:
    name = "sigp-attach"
    daemon.cli("run", "-d", "--name", name, "busybox", "sh", "-c",
               TRAPS.replace("echo ready; ", "echo ready > /ready; "))
    try:
        daemon.wait_for(lambda: daemon.cli("exec", name, "test", "-e", "/ready",
                                           check=False).returncode == 0, what="the traps")
        with client(daemon, "attach", name) as proc:
            time.sleep(0.5)  # attached: (output from now on, so no "ready" to wait for)
            proc.send_signal(signal.SIGTERM)
            assert read_line(proc) == b"got-term\n"
            assert proc.wait(15) == 3
    finally:
        daemon.cli("rm", "-f", name, check=False)


def test_sig_proxy_false_keeps_signals_with_the_client(daemon: Daemon) -> None:
    name = "sigp-off"
    try:
        with client(daemon, "run", "--sig-proxy=false", "--name", name, "busybox", "sh", "-c",
                    TRAPS) as proc:
            assert read_line(proc) == b"ready\n"
            keeps_signals(daemon, proc, name)
    finally:
        daemon.cli("rm", "-f", name, check=False)


def test_attach_to_a_tty_container_keeps_signals(daemon: Daemon) -> None:
    """As docker: with a TTY, ctrl-c travels as a byte, and signals are not passed on."""
    name = "sigp-tty"
    daemon.cli("run", "-d", "-t", "--name", name, "busybox", "sh", "-c", TRAPS)
    try:
        with client(daemon, "attach", name) as proc:
            time.sleep(0.5)
            keeps_signals(daemon, proc, name)
    finally:
        daemon.cli("rm", "-f", name, check=False)


def test_bad_sig_proxy_value_is_refused(daemon: Daemon) -> None:
    refused(daemon.cli("run", "--sig-proxy=maybe", "busybox", "true", check=False),
            "--sig-proxy", "maybe")

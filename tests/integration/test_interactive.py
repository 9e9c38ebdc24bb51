"""Interactive sessions through a real pseudo-terminal: `run -it`, detach keys, `exec -it`,
`exec -i` with piped stdin, and a non-interactive exec's streams and exit code."""

from __future__ import annotations

import contextlib
import os
import select
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.daemon import BIN, Daemon

pytestmark = pytest.mark.integration

PROMPT_TIMEOUT = 10.0


class PtySession:
    """`berth ARGS` with a pseudo-terminal as its stdin, stdout and stderr."""

    def __init__(self, daemon: Daemon, *args: str) -> None:
        master, slave = os.openpty()
        self.master = master
        self.seen = b""
        self.pos = 0  # read_until looks for its needle after this point
        self.proc = subprocess.Popen(
            [str(BIN / "berth"), *args], stdin=slave, stdout=slave, stderr=slave,
            env={**daemon.env, "TERM": "xterm"}, start_new_session=True, close_fds=True)
        os.close(slave)

    def read_until(self, needle: bytes, timeout: float = PROMPT_TIMEOUT) -> bytes:
        """Read until needle appears after the previous match; fail with what came."""
        start = self.pos
        deadline = time.monotonic() + timeout
        while (found := self.seen.find(needle, start)) < 0:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"timed out waiting for {needle!r} (berth "
                                     f"{'running' if self.proc.poll() is None else 'exited'})"
                                     f"; read so far: {self.seen[start:]!r}")
            ready, _, _ = select.select([self.master], [], [], min(left, 0.5))
            if ready:
                try:
                    chunk = os.read(self.master, 4096)
                except OSError:  # EIO: the CLI exited and closed the terminal
                    chunk = b""
                if not chunk:
                    raise AssertionError(f"the terminal closed before {needle!r}; read so "
                                         f"far: {self.seen[start:]!r}")
                self.seen += chunk
        self.pos = found + len(needle)
        return self.seen[start:self.pos]

    def send(self, data: bytes) -> None:
        os.write(self.master, data)

    def wait(self, timeout: float = PROMPT_TIMEOUT) -> int:
        """The CLI's exit code, draining the terminal meanwhile so it never blocks."""
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None and time.monotonic() < deadline:
            ready, _, _ = select.select([self.master], [], [], 0.1)
            if ready:
                with contextlib.suppress(OSError):
                    self.seen += os.read(self.master, 4096)
        if self.proc.poll() is None:
            raise AssertionError(f"berth did not exit; terminal showed: {self.seen[-2000:]!r}")
        return self.proc.returncode

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        with contextlib.suppress(OSError):
            os.close(self.master)


@contextlib.contextmanager
def pty_session(daemon: Daemon, *args: str) -> Iterator[PtySession]:
    session = PtySession(daemon, *args)
    try:
        yield session
    finally:
        session.close()


def _status(daemon: Daemon, name: str) -> str:
    return daemon.inspect(name)["state"]["status"]


def _running(daemon: Daemon, name: str) -> dict[str, Any] | None:
    info = daemon.inspect(name)
    return info if info["state"]["status"] == "running" else None


BANNER = b"built-in commands."  # the last line busybox sh prints before its first prompt


def test_run_it_shows_the_prompt(daemon: Daemon) -> None:
    """The prompt has no newline after it: it must still reach the terminal at once."""
    name = "it-prompt"
    try:
        with pty_session(daemon, "run", "-it", "--name", name, "busybox", "sh") as s:
            s.read_until(BANNER)
            s.read_until(b"/ # ", timeout=10)
    finally:
        daemon.cli("rm", "-f", name, check=False)


def test_run_it_shell_through_a_pty(daemon: Daemon) -> None:
    name = "it-shell"
    try:
        with pty_session(daemon, "run", "-it", "--name", name, "busybox", "sh") as s:
            s.read_until(BANNER)
            s.send(b"echo $((6*7))\r")
            s.read_until(b"42")
            assert daemon.inspect(name)["config"]["tty"] is True
            s.send(b"exit 5\r")
            assert s.wait() == 5, s.seen
        info = daemon.inspect(name)
        assert info["state"]["status"] == "exited"
        assert info["state"]["exit_code"] == 5
    finally:
        daemon.cli("rm", "-f", name, check=False)


def test_run_it_detach_keys_leave_container_running(daemon: Daemon) -> None:
    name = "it-detach"
    try:
        with pty_session(daemon, "run", "-it", "--name", name, "busybox", "sh") as s:
            s.read_until(BANNER)
            s.send(b"\x10\x11")
            assert s.wait(timeout=30) == 0, s.seen
        assert _status(daemon, name) == "running"
        # Still a live shell: exec into it works.
        assert daemon.cli("exec", name, "echo", "alive").stdout == "alive\n"
    finally:
        daemon.cli("rm", "-f", name, check=False)


def test_exec_it_with_a_tty(daemon: Daemon) -> None:
    name = "it-exec-tty"
    try:
        daemon.cli("run", "-d", "--name", name, "busybox", "sleep", "100")
        daemon.wait_for(lambda: _running(daemon, name), timeout=20, what="running")
        with pty_session(daemon, "exec", "-it", name, "sh") as s:
            s.read_until(b"# ")
            s.send(b"tty\r")
            s.read_until(b"/dev/pts/")
            s.read_until(b"# ")
            s.send(b"exit 3\r")
            assert s.wait() == 3, s.seen
        assert _status(daemon, name) == "running"
    finally:
        daemon.cli("rm", "-f", name, check=False)


def test_exec_without_tty_has_no_terminal(daemon: Daemon) -> None:
    name = "it-exec-notty"
    try:
        daemon.cli("run", "-d", "--name", name, "busybox", "sleep", "100")
        daemon.wait_for(lambda: _running(daemon, name), timeout=20, what="running")
        res = daemon.cli("exec", name, "tty", check=False)
        assert res.returncode != 0
        assert "/dev/pts/" not in res.stdout
    finally:
        daemon.cli("rm", "-f", name, check=False)


def test_exec_i_pipes_stdin(daemon: Daemon) -> None:
    name = "it-exec-stdin"
    try:
        daemon.cli("run", "-d", "--name", name, "busybox", "sleep", "100")
        daemon.wait_for(lambda: _running(daemon, name), timeout=20, what="running")
        data = "".join(f"line {i} of the data\n" for i in range(2000))
        res = daemon.cli("exec", "-i", name, "cat", input=data.encode(), timeout=30)
        assert res.returncode == 0, res
        assert res.stdout == data
        counted = daemon.cli("exec", "-i", name, "wc", "-l", input=data.encode(), timeout=30)
        assert counted.stdout.strip() == "2000"
    finally:
        daemon.cli("rm", "-f", name, check=False)


def test_exec_streams_and_exit_code(daemon: Daemon) -> None:
    name = "it-exec-streams"
    try:
        daemon.cli("run", "-d", "--name", name, "busybox", "sleep", "100")
        daemon.wait_for(lambda: _running(daemon, name), timeout=20, what="running")
        res = daemon.cli("exec", name, "sh", "-c", "echo out; echo err >&2; exit 4",
                         check=False)
        assert res.returncode == 4, res
        assert res.stdout == "out\n"
        assert res.stderr == "err\n"
    finally:
        daemon.cli("rm", "-f", name, check=False)

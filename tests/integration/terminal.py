"""A CLI on a pseudo-terminal the test drives (run -it, exec -it, attach): the berth CLI's
interactive tests and the docker CLI's share it."""

from __future__ import annotations

import contextlib
import fcntl
import os
import select
import struct
import subprocess
import termios
import time

from tests.integration.daemon import Daemon

TIMEOUT = 15.0
DETACH = b"\x10\x11"  # ctrl-p ctrl-q, Docker's default detach keys


class Terminal:
    """``argv`` with a pseudo-terminal (rows x cols) as its stdin, stdout and stderr."""

    def __init__(self, argv: list[str], env: dict[str, str], *, rows: int = 24,
                 cols: int = 80, timeout: float = TIMEOUT) -> None:
        master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        self.master = master
        self.name = os.path.basename(argv[0])
        self.timeout = timeout
        self.seen = b""
        self.pos = 0  # read_until looks for its needle after this point
        self.proc = subprocess.Popen(
            argv, stdin=slave, stdout=slave, stderr=slave, env={**env, "TERM": "xterm"},
            start_new_session=True, close_fds=True)
        os.close(slave)

    def read_until(self, needle: bytes, timeout: float | None = None) -> bytes:
        """Read until needle appears after the previous match; fail with what came."""
        start = self.pos
        deadline = time.monotonic() + (timeout or self.timeout)
        while (found := self.seen.find(needle, start)) < 0:
            left = deadline - time.monotonic()
            if left <= 0:
                state = "running" if self.proc.poll() is None else "exited"
                raise AssertionError(f"timed out waiting for {needle!r} ({self.name} {state}); "
                                     f"read so far: {self.seen[start:]!r}")
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

    def wait(self, timeout: float | None = None) -> int:
        """The CLI's exit code, draining the terminal meanwhile so it never blocks."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while self.proc.poll() is None and time.monotonic() < deadline:
            ready, _, _ = select.select([self.master], [], [], 0.1)
            if ready:
                with contextlib.suppress(OSError):
                    self.seen += os.read(self.master, 4096)
        if self.proc.poll() is None:
            raise AssertionError(f"{self.name} did not exit; terminal showed: "
                                 f"{self.seen[-2000:]!r}")
        return self.proc.returncode

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        with contextlib.suppress(OSError):
            os.close(self.master)


def DockerPty(d: Daemon, *args: str, rows: int = 24, cols: int = 80) -> Terminal:  # noqa: N802
    """`docker ARGS` at the daemon's Docker socket, on a terminal."""
    from tests.integration.dockertools import docker_cli, docker_env

    return Terminal([docker_cli(), *args], docker_env(d), rows=rows, cols=cols)

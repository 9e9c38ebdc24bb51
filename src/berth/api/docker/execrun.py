"""One running Docker exec: its process's output to the attached client (while there is one),
the client's input to the process, and its exit code recorded when it ends.

The process runs to its end whether or not a client stays: a detach (keys, or Detach=true)
only stops the forwarding. Output nobody reads is drained so the process never blocks on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from dataclasses import dataclass, field
from typing import Any

from berth.api.docker.attach import Peer
from berth.api.docker.streamio import STDERR, STDOUT, frame
from berth.api.fdio import read_chunk, write_all
from berth.detachkeys import DetachScanner
from berth.runtime.base import ExecProcess


@dataclass
class ExecInstance:
    """What dockerd calls an exec config: made by create, run once by start."""

    id: str
    project_id: str
    container_id: str
    command: list[str]
    env: list[str]
    workdir: str
    user: str
    tty: bool
    stdin: bool
    stdout: bool
    stderr: bool
    detach_keys: str
    created_at: float = field(default_factory=time.time)
    started: bool = False
    running: bool = False
    exit_code: int | None = None
    finished_at: float | None = None
    process: ExecProcess | None = None
    size: tuple[int, int] | None = None  # a resize before the process existed
    task: asyncio.Task[Any] | None = None

    def inspect(self) -> dict[str, Any]:
        return {"ID": self.id, "Running": self.running, "ExitCode": self.exit_code,
                "ProcessConfig": {"entrypoint": self.command[0],
                                  "arguments": self.command[1:], "tty": self.tty,
                                  "user": self.user, "privileged": False},
                "OpenStdin": self.stdin, "OpenStdout": self.stdout,
                "OpenStderr": self.stderr, "ContainerID": self.container_id,
                "Pid": 0, "CanRemove": False, "DetachKeys": self.detach_keys}


class ExecSession:
    """Pumps one exec's process; ``peer`` is the attached client or None."""

    def __init__(self, inst: ExecInstance, proc: ExecProcess, peer: Peer | None,
                 detach_keys: bytes) -> None:
        self.inst = inst
        self.proc = proc
        self.peer = peer
        self.scanner = DetachScanner(detach_keys)

    async def run(self) -> None:
        """Until the process ends, or until the client detaches or goes (then the process
        goes on in the background and its end is still recorded)."""
        inst = self.inst
        inst.process, inst.running = self.proc, True
        if inst.size is not None:
            self.proc.resize(*inst.size)
        if not inst.stdin and not inst.tty:
            self.proc.close_stdin()  # nothing will come: reading it must see the end
        output = asyncio.create_task(self._output_then_exit())
        inst.task = output
        if self.peer is None:
            return
        listener = asyncio.create_task(self._input())
        await asyncio.wait({output, listener}, return_when=asyncio.FIRST_COMPLETED)
        if not output.done():  # detached or gone: stop forwarding, let it run on
            self.peer = None
        listener.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await listener

    async def _output_then_exit(self) -> None:
        fds = [(self.proc.fileno_stdout(), STDOUT)]
        err = self.proc.fileno_stderr()
        if err is not None:
            fds.append((err, STDERR))
        try:
            await asyncio.gather(*(self._pump_out(fd, stream) for fd, stream in fds))
            self.inst.exit_code = await asyncio.to_thread(self.proc.wait)
        finally:
            self.inst.process = None
            await asyncio.to_thread(self.proc.close)
            self.inst.finished_at = time.time()
            self.inst.running = False

    async def _pump_out(self, fd: int, stream: int) -> None:
        os.set_blocking(fd, False)
        wanted = self.inst.stdout if stream == STDOUT else self.inst.stderr
        while data := await read_chunk(fd):
            peer = self.peer
            if peer is None or not wanted:
                continue
            try:
                await peer.write(data if self.inst.tty else frame(stream, data))
            except (ConnectionError, OSError):
                self.peer = None

    async def _input(self) -> None:
        """Forward the client's input; return when it detached or went away."""
        peer = self.peer
        assert peer is not None
        stdin = self.proc.fileno_stdin() if self.inst.stdin else None
        if stdin is not None:
            os.set_blocking(stdin, False)
        while data := await peer.read():
            if stdin is None:
                continue
            data, detached = self.scanner.feed(data)
            try:
                await write_all(stdin, data)
            except OSError:  # the process closed its input or ended
                stdin = None
            if detached:
                return
        if stdin is not None:
            held = self.scanner.flush()
            with contextlib.suppress(OSError):
                if held:
                    await write_all(stdin, held)
            self.proc.close_stdin()
        await peer.wait_closed()

"""A Docker attach session: the container's output to the client, the client's input to the
container, over a hijacked connection or a websocket.

Output comes from the container's log (following it), as in the native attach: that way an
attach made before the container starts (``docker run`` attaches, then starts) misses nothing.
Input goes to the container's monitor (conmon's attach socket). The client's end of input
(a half-close) ends the container's input; conmon closes the container's stdin then when the
container was created with StdinOnce (and no tty), as dockerd does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from dataclasses import dataclass
from typing import Protocol

from fastapi import WebSocket
from starlette.websockets import WebSocketDisconnect

from berth.api.deps import Services
from berth.api.docker.hijack import Hijack
from berth.api.docker.streamio import STREAM_IDS, frame
from berth.detachkeys import DetachScanner
from berth.errors import BerthError
from berth.service.context import Context
from berth.store.models import Container

log = logging.getLogger("berth.api.docker")
LIVE = ("running", "paused", "restarting")  # the container's monitor is there
SEND_CHUNK = 4096  # conmon reads its attach socket in messages of a few KiB


class Peer(Protocol):
    """The client's end: raw bytes in and out."""

    async def read(self) -> bytes: ...  # b"": no more input
    async def write(self, data: bytes) -> None: ...
    async def wait_closed(self) -> None: ...
    def close(self) -> None: ...


class HijackPeer:
    def __init__(self, hijack: Hijack) -> None:
        self.hijack = hijack

    async def read(self) -> bytes:
        return await self.hijack.read()

    async def write(self, data: bytes) -> None:
        await self.hijack.write(data)

    async def wait_closed(self) -> None:
        await self.hijack.wait_closed()

    def close(self) -> None:
        self.hijack.close()


class WebSocketPeer:
    """Docker's /attach/ws: binary (or text) messages carry raw bytes both ways. A websocket
    has no half-close: the end of input is the client going away."""

    def __init__(self, ws: WebSocket) -> None:
        self.ws = ws
        self.gone = asyncio.Event()

    async def read(self) -> bytes:
        while not self.gone.is_set():
            msg = await self.ws.receive()
            if msg["type"] == "websocket.disconnect":
                break
            data = msg.get("bytes") or (msg.get("text") or "").encode()
            if data:
                return data
        self.gone.set()
        return b""

    async def write(self, data: bytes) -> None:
        if self.gone.is_set():
            raise ConnectionResetError("the client went away")
        await self.ws.send_bytes(data)

    async def wait_closed(self) -> None:
        await self.gone.wait()

    def close(self) -> None:
        self.gone.set()
        with contextlib.suppress(Exception):
            asyncio.get_running_loop().create_task(self.ws.close())


@dataclass(frozen=True)
class AttachOptions:
    stdin: bool
    stdout: bool
    stderr: bool
    logs: bool  # replay what the log holds before following
    stream: bool  # follow until the container exits
    detach_keys: bytes
    multiplexed: bool  # Docker's 8-byte frames (no tty) or raw bytes (tty)


async def run_session(svc: Services, ctx: Context, row: Container, peer: Peer,
                      opts: AttachOptions) -> None:
    """Serve one attach until the container's output ends, the client detaches or goes."""
    begun = time.time()
    output = asyncio.create_task(_output(svc, ctx, row.id, peer, opts, begun))
    wants_input = opts.stream and opts.stdin and bool(row.spec.get("stdin_open"))
    listener = asyncio.create_task(_input(svc, ctx, row.id, peer, opts, wants_input, begun))
    try:
        await asyncio.wait({output, listener}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (output, listener):
            task.cancel()
        for task in (output, listener):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
            if task.done() and not task.cancelled() and task.exception() is not None:
                exc = task.exception()
                if not isinstance(exc, (ConnectionError, WebSocketDisconnect, BerthError)):
                    log.warning("attach to %s: %s", row.id[:12], exc)
        peer.close()


async def _wait_started(svc: Services, ctx: Context, cid: str, begun: float) -> bool:
    """Until the container runs (or ran since the attach began: a short one may be over
    already); False if it was removed. A created container has no monitor yet."""
    def check() -> str | None:
        try:
            row = svc.containers.get(ctx, cid)
        except BerthError:
            return "gone"
        if row.status in LIVE or (row.started_at is not None and row.started_at >= begun):
            return "started"
        return None

    return await svc.hub.wait_until(check, None) == "started"


async def _output(svc: Services, ctx: Context, cid: str, peer: Peer, opts: AttachOptions,
                  begun: float) -> None:
    wanted = {s for s, on in (("stdout", opts.stdout), ("stderr", opts.stderr)) if on}
    if opts.logs:
        async for rec in svc.hostops.logs(cid, follow=False):
            if rec.stream in wanted:
                await peer.write(_encode(rec.stream, rec.data, opts))
    if not opts.stream:
        return
    # A container not running yet is waited for: `docker run` and `docker start -a`
    # attach before they start it.
    if not await _wait_started(svc, ctx, cid, begun):
        return
    # Only what was written since the attach began (the replay above had the rest).
    async for rec in svc.hostops.logs(cid, follow=True, since=begun):
        if rec.stream in wanted:
            await peer.write(_encode(rec.stream, rec.data, opts))


def _encode(stream: str, data: bytes, opts: AttachOptions) -> bytes:
    return frame(STREAM_IDS[stream], data) if opts.multiplexed else data


async def _input(svc: Services, ctx: Context, cid: str, peer: Peer, opts: AttachOptions,
                 wants_input: bool, begun: float) -> None:
    """Forward the client's input; return when the client detached or went away."""
    if not wants_input:
        while await peer.read():  # nothing to forward: just notice the client's end
            pass
        await peer.wait_closed()
        return
    if not await _wait_started(svc, ctx, cid, begun):
        await peer.wait_closed()
        return
    sock = await _monitor_socket(svc, cid)
    drain = asyncio.create_task(_drain(sock)) if sock is not None else None
    scanner = DetachScanner(opts.detach_keys)
    loop = asyncio.get_running_loop()
    try:
        while data := await peer.read():
            data, detached = scanner.feed(data)
            if sock is not None:
                for at in range(0, len(data), SEND_CHUNK):
                    await loop.sock_sendall(sock, data[at:at + SEND_CHUNK])
            if detached:
                return
        if sock is not None:
            held = scanner.flush()
            if held:
                await loop.sock_sendall(sock, held)
            sock.shutdown(socket.SHUT_WR)  # the end of the client's input
        await peer.wait_closed()
    except OSError as e:  # the monitor went away: the container ended, output will end too
        log.debug("attach input to %s ended: %s", cid[:12], e)
        await peer.wait_closed()
    finally:
        if drain is not None:
            drain.cancel()
        if sock is not None:
            sock.close()


async def _monitor_socket(svc: Services, cid: str) -> socket.socket | None:
    try:
        path = svc.hostops.attach_socket(cid)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
        try:
            await asyncio.to_thread(connect_unix, sock, path)
        except BaseException:
            sock.close()
            raise
    except (OSError, BerthError) as e:
        log.info("attach to %s: no input path: %s", cid[:12], e)
        return None
    sock.setblocking(False)
    return sock


async def _drain(sock: socket.socket) -> None:
    """conmon copies output to its attach clients too; read it so it never waits on us
    (the output we send comes from the log)."""
    loop = asyncio.get_running_loop()
    with contextlib.suppress(OSError):
        while await loop.sock_recv(sock, 65536):
            pass


def connect_unix(sock: socket.socket, path: str) -> None:
    """Connect whatever the path's length: through a descriptor of its directory, as
    /proc/self/fd/N/NAME always fits in a sockaddr_un (108 bytes)."""
    dir_fd = os.open(os.path.dirname(path), os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        sock.connect(f"/proc/self/fd/{dir_fd}/{os.path.basename(path)}")
    finally:
        os.close(dir_fd)


"""Logs, exec, attach, top and stats of a container.

Logs use Docker's multiplexed framing (8-byte header: stream, 0, 0, 0, big-endian length), so
stdout and stderr stay apart and bytes stay bytes. Exec and attach are websockets: binary
messages carry a one-byte channel (0 stdin, 1 stdout, 2 stderr) then data; text messages carry
JSON control (client: {"resize": [rows, cols]}, {"close_stdin": true}; server: {"exit_code": n}
or {"error": "...", "exit_code": n}).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import struct
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, WebSocket, WebSocketDisconnect
from fastapi.responses import StreamingResponse

from berth import jsontext
from berth.agent.hostops import parse_time, split_ps_args
from berth.api.auth import authenticate
from berth.api.deps import Services, context, services
from berth.api.fdio import read_chunk, write_all
from berth.errors import BerthError, Conflict, InvalidArgument, NotFound
from berth.runtime.base import ExecSpec, LogRecord
from berth.service.context import Context
from berth.service.specs import ExecRequest

router = APIRouter(prefix="/v1/containers", tags=["streams"])
Svc = Annotated[Services, Depends(services)]
Ctx = Annotated[Context, Depends(context)]
STREAM_IDS = {"stdout": 1, "stderr": 2}
EXIT_FRAME = 3  # a last frame carrying JSON {"exit_code", "oom_killed", "error"}
MULTIPLEXED = "application/vnd.berth.multiplexed-stream"
REMOVAL_WAIT = 30.0  # seconds; a removal failing longer is retried by the agent meanwhile
# Names the container an attached run made, so the client can pass signals on to it.
CONTAINER_HEADER = "X-Berth-Container-Id"


def frame(stream: int, data: bytes) -> bytes:
    return struct.pack(">BxxxI", stream, len(data)) + data


@router.get("/{ref}/logs", response_class=StreamingResponse, responses={200: {
    "content": {MULTIPLEXED: {}}, "description": "the log as multiplexed frames"}})
async def logs(ref: str, svc: Svc, ctx: Ctx, follow: bool = False, tail: str = "all",
               since: str | None = None, until: str | None = None, timestamps: bool = False,
               stdout: bool = True, stderr: bool = True) -> StreamingResponse:
    row = svc.containers.get(ctx, ref)
    if tail != "all" and not (tail.isdigit()):
        raise InvalidArgument(f"tail: expected a number or 'all', got {tail!r}")
    records = svc.hostops.logs(
        row.id, follow=follow and row.status in ("running", "paused", "restarting"),
        tail=None if tail == "all" else int(tail),
        since=parse_time(since) if since else None, until=parse_time(until) if until else None,
        stdout=stdout, stderr=stderr)

    async def body() -> Any:
        async for rec in records:
            data = rec.data if not timestamps else rec.time.encode() + b" " + rec.data
            yield frame(STREAM_IDS[rec.stream], data)

    return StreamingResponse(body(), media_type=MULTIPLEXED)


def attached_output(svc: Services, ctx: Context, cid: str,
                    records: AsyncIterator[LogRecord] | None = None) -> StreamingResponse:
    """The container's output until it exits, then an exit frame (for attached `run`).
    records: the output to send (hostops.logs_from_now, read before a start); default, the
    whole log (a container that has only ever run once)."""

    async def body() -> Any:
        async for rec in records or svc.hostops.logs(cid, follow=True):
            yield frame(STREAM_IDS[rec.stream], rec.data)
        yield frame(EXIT_FRAME, json.dumps(await _final_exit(svc, ctx, cid)).encode())

    return StreamingResponse(body(), media_type=MULTIPLEXED, headers={CONTAINER_HEADER: cid})


async def _final_exit(svc: Services, ctx: Context, cid: str) -> dict[str, Any]:
    """The container's exit; for `run --rm`, told once the container is gone too, as
    `docker run --rm` does: a `ps -a`, or a run reusing the name, right after finds nothing."""
    final = await svc.containers.wait_exit(ctx, cid, "not-running", 3600) or {}
    with contextlib.suppress(NotFound):  # NotFound: removed already
        if svc.containers.get(ctx, cid).spec.get("auto_remove"):
            await svc.containers.wait_exit(ctx, cid, "removed", REMOVAL_WAIT)
    return final


@router.get("/{ref}/top")
async def top(ref: str, svc: Svc, ctx: Ctx, ps_args: str | None = None) -> dict:
    """ps_args: options for the host's ps, as docker's (`aux`, `-o pid,user,args`)."""
    row = _running(svc, ctx, ref)
    titles, procs = await svc.hostops.top(row.id, split_ps_args(ps_args))
    return {"titles": titles, "processes": procs}


@router.get("/{ref}/stats", responses={200: {
    "content": {"application/x-ndjson": {}}, "description": "stream=true: one JSON per second"}})
async def stats(ref: str, svc: Svc, ctx: Ctx, stream: bool = False) -> Any:
    row = _running(svc, ctx, ref)
    if not stream:
        return await svc.hostops.stats(row.id)

    async def body() -> Any:
        while True:
            current = svc.containers.get(ctx, row.id)
            if current.status not in ("running", "paused"):
                return
            yield json.dumps(await svc.hostops.stats(row.id)).encode() + b"\n"
            await asyncio.sleep(1.0)

    return StreamingResponse(body(), media_type="application/x-ndjson")


def _running(svc: Services, ctx: Context, ref: str) -> Any:
    row = svc.containers.get(ctx, ref)
    if row.status not in ("running", "paused"):
        raise Conflict(f"container {row.name} is not running")
    return row


async def _ws_error(ws: WebSocket, message: str, code: int = 125, close: int = 1000) -> None:
    with contextlib.suppress(Exception):
        await ws.send_text(json.dumps({"error": message, "exit_code": code}))
        await ws.close(close)


@router.websocket("/{ref}/exec")
async def exec_ws(ws: WebSocket, ref: str) -> None:
    svc: Services = ws.app.state.services
    await ws.accept()
    try:
        # The request first (the client sends it at once), so a refusal below is read as
        # an answer rather than breaking the client's send.
        req = ExecRequest.model_validate_json(await ws.receive_text())
        ctx = authenticate(ws, write=True)
        row = _running(svc, ctx, ref)
        if row.status == "paused":
            raise Conflict(f"container {row.name} is paused: unpause it first")
        proc = await svc.hostops.exec(row.id, ExecSpec(
            args=req.command, env=req.env, cwd=req.workdir, user=req.user, tty=req.tty,
            group_add=list(row.spec.get("group_add") or [])))
    except BerthError as e:
        await _ws_error(ws, e.message)
        return
    except (ValueError, WebSocketDisconnect) as e:
        await _ws_error(ws, f"bad exec request: {e}")
        return
    if req.detach:
        _run_on(proc, close_stdin=True)
        with contextlib.suppress(Exception):
            await ws.send_text(json.dumps({"exit_code": 0, "detached": True}))
            await ws.close()
        return
    detached = False
    try:
        code = await _pump_exec(ws, proc, req.stdin)
        if code is None:  # the client detached: the command runs on without it
            detached = True
            _run_on(proc, close_stdin=False)
            return
        await ws.send_text(json.dumps({"exit_code": code}))
        await ws.close()
    except WebSocketDisconnect:
        pass  # the client went away: its command ends with the session
    finally:
        if not detached:
            await asyncio.to_thread(proc.close)


_detached: set[asyncio.Task[None]] = set()  # detached execs being drained (kept referenced)
# Output chunks waiting for the client: a client that reads slowly slows the command down
# instead of growing our memory.
OUTPUT_QUEUE = 16


def _outputs(proc: Any) -> list[tuple[int, int]]:
    """The exec's output descriptors, each with its stream (1 stdout, 2 stderr)."""
    return [(fd, stream) for fd, stream in ((proc.fileno_stdout(), 1),
                                           (proc.fileno_stderr(), 2)) if fd is not None]


def _run_on(proc: Any, close_stdin: bool) -> None:
    """Leave an exec to run without a client (exec -d, or the client detached)."""
    _detached.add(task := asyncio.create_task(_drain_exec(proc, close_stdin)))
    task.add_done_callback(_detached.discard)


async def _drain_exec(proc: Any, close_stdin: bool) -> None:
    """Read and drop the output of an exec nobody watches until it ends (a full pipe would
    stop it), then reap it. close_stdin: give it the end of its input (exec -d); a detached
    session's command keeps its input open, as docker's does."""
    if close_stdin:
        proc.close_stdin()

    async def drain(fd: int) -> None:
        os.set_blocking(fd, False)
        while await read_chunk(fd):
            pass

    try:
        await asyncio.gather(*(drain(fd) for fd, _stream in _outputs(proc)))
        await asyncio.to_thread(proc.wait)
    finally:
        await asyncio.to_thread(proc.close)


def control_message(text: str) -> tuple[dict[str, Any], tuple[int, int] | None]:
    """A client's control message ({"resize": [rows, cols]}, {"close_stdin": true},
    {"detach": true}) and the size it asks for; a malformed message asks for nothing."""
    try:
        ctl = jsontext.loads(text)
    except ValueError:
        return {}, None
    if not isinstance(ctl, dict):
        return {}, None
    size = ctl.get("resize")
    if isinstance(size, list) and len(size) == 2 and \
            all(isinstance(n, int) and not isinstance(n, bool) and 0 < n < 1 << 16
                for n in size):
        return ctl, (size[0], size[1])
    return ctl, None


async def _pump_exec(ws: WebSocket, proc: Any, want_stdin: bool) -> int | None:
    """Forward the exec's output to the client and the client's input to it, until it ends
    (its exit code) or the client detaches (None). Raises WebSocketDisconnect when the
    client goes away."""
    sends: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=OUTPUT_QUEUE)

    async def read(fd: int, stream: int) -> None:
        os.set_blocking(fd, False)
        while data := await read_chunk(fd):
            await sends.put(bytes([stream]) + data)

    async def output() -> None:
        await asyncio.gather(*(read(fd, stream) for fd, stream in _outputs(proc)))
        await sends.put(None)

    async def sender() -> None:
        while (item := await sends.get()) is not None:
            await ws.send_bytes(item)

    async def receiver() -> None:
        stdin = proc.fileno_stdin()
        if stdin is not None:
            os.set_blocking(stdin, False)
        while True:
            msg = await ws.receive()
            if msg["type"] == "websocket.disconnect":
                raise WebSocketDisconnect()
            if msg.get("bytes") is not None:
                data = msg["bytes"]
                if data[:1] == b"\x00" and stdin is not None and want_stdin:
                    try:
                        await write_all(stdin, data[1:])
                    except OSError:  # it closed its input or ended: the rest goes nowhere
                        stdin = None
            elif msg.get("text"):
                ctl, size = control_message(msg["text"])
                if size is not None:
                    try:
                        proc.resize(*size)
                    except OSError:  # it ended meanwhile
                        continue
                if ctl.get("close_stdin") and stdin is not None:
                    proc.close_stdin()  # the process owns the descriptor: close() follows
                    stdin = None
                if ctl.get("detach"):
                    return

    tasks = [asyncio.create_task(output()), send := asyncio.create_task(sender()),
             recv := asyncio.create_task(receiver())]
    try:
        await asyncio.wait({send, recv}, return_when=asyncio.FIRST_COMPLETED)
        if not send.done():
            recv.result()  # the client went away: raises
            return None
        send.result()
        return await asyncio.to_thread(proc.wait)
    finally:
        for task in tasks:
            task.cancel()


@router.websocket("/{ref}/attach")
async def attach_ws(ws: WebSocket, ref: str, start: bool = False, logs: bool = True) -> None:
    """Stream a container's output (from its log, so nothing is missed) until it exits;
    forward stdin to its monitor. With start=true the container is started once attached."""
    svc: Services = ws.app.state.services
    await ws.accept()
    try:
        ctx = authenticate(ws, write=True)
        row = svc.containers.get(ctx, ref)
        records = None
        if start:  # this run's output: none of an earlier run's (`start -ai` after `run -it`)
            records = await svc.hostops.logs_from_now(row.id)
            act = svc.containers.start(ctx, row.id)
            done = await svc.containers.wait_action(ctx, act.id, 3600)
            if done is not None and done.state == "error" and done.error_status != 304:
                await _ws_error(ws, done.message, done.result.get("exit_code", 125))
                return
            row = svc.containers.get(ctx, row.id)
    except BerthError as e:
        await _ws_error(ws, e.message)
        return
    output = asyncio.create_task(_send_output(ws, svc, ctx, row.id, logs, records))
    # Always listen: stdin goes to the container (when it has stdin open), and a client that
    # goes away (detach keys, ^C) ends the session at once instead of at the next output.
    listener = asyncio.create_task(_listen_to_client(ws, svc, row.id, row.spec.get("stdin_open")))
    try:
        await asyncio.wait({output, listener}, return_when=asyncio.FIRST_COMPLETED)
        if listener.done() and not output.done():
            output.cancel()  # the client left
        with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect, BerthError):
            await output
    finally:
        listener.cancel()


async def _send_output(ws: WebSocket, svc: Services, ctx: Context, cid: str,
                       logs: bool, records: AsyncIterator[LogRecord] | None) -> None:
    if records is None:
        records = svc.hostops.logs(cid, follow=True, tail=None if logs else 0)
    async for rec in records:
        await ws.send_bytes(bytes([STREAM_IDS[rec.stream]]) + rec.data)
    final = await _final_exit(svc, ctx, cid)
    await ws.send_text(json.dumps({"exit_code": final.get("exit_code") or 0}))
    await ws.close()


def _connect_unix(sock: socket.socket, path: str) -> None:
    """Connect to a unix socket whatever its path length: through a descriptor of its
    directory, as /proc/self/fd/N/NAME always fits in a sockaddr_un (108 bytes)."""
    dir_fd = os.open(os.path.dirname(path), os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        sock.connect(f"/proc/self/fd/{dir_fd}/{os.path.basename(path)}")
    finally:
        os.close(dir_fd)


async def _listen_to_client(ws: WebSocket, svc: Services, cid: str, stdin_open: bool) -> None:
    """Read the client until it goes away; forward its input to the container's monitor."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        if stdin_open:
            try:
                path = svc.hostops.attach_socket(cid)
                await asyncio.to_thread(_connect_unix, sock, path)
            except (OSError, BerthError) as e:
                reason = e.message if isinstance(e, BerthError) else str(e)
                await ws.send_text(json.dumps({"error": f"cannot forward input: {reason}"}))
                stdin_open = False
        while True:
            msg = await ws.receive()
            if msg["type"] == "websocket.disconnect":
                return
            if not stdin_open:
                continue
            if msg.get("bytes") is not None and msg["bytes"][:1] == b"\x00":
                await asyncio.to_thread(sock.sendall, msg["bytes"][1:])
            elif msg.get("text"):
                ctl, size = control_message(msg["text"])
                if size is not None:
                    await svc.hostops.resize(cid, *size)
                if ctl.get("close_stdin"):
                    sock.shutdown(socket.SHUT_WR)
                if ctl.get("detach"):
                    return  # the client leaves; the container runs on
    except (OSError, BerthError, ValueError, WebSocketDisconnect):
        return
    finally:
        sock.close()

"""HTTP hijacking for the Docker API: attach and exec take over the connection.

Docker's clients ask ``Connection: Upgrade`` + ``Upgrade: tcp`` on attach and exec start; the
daemon answers ``101 UPGRADED`` and from then on the socket carries raw bytes both ways (stdin
in, multiplexed or raw output out, half-closes meaning end of input). ASGI cannot express that,
so the Docker socket's uvicorn protocol is extended: an upgrade request it does not know
(anything but websocket) switches the connection to raw mode at once, buffering what follows
the headers, and the request's scope carries a ``Hijack`` the route uses to answer and to read
and write the raw stream. llhttp ends such a request at its headers, so a body (exec start's
JSON) is read from the raw stream too: ``Hijack.body()``.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httptools

from berth.api.peercred import PeerCredProtocol

HIJACK = "berth.hijack"
RAW_STREAM = "application/vnd.docker.raw-stream"
MULTIPLEXED_STREAM = "application/vnd.docker.multiplexed-stream"
BODY_LIMIT = 1 << 20


class Hijack:
    """One request's handle on its connection. ``upgrade`` tells whether the client asked for
    one (then the answer is 101 and input flows); otherwise the answer is a 200 whose body is
    the raw stream until the connection closes, and there is no input."""

    def __init__(self, protocol: DockerProtocol, cycle: Any, upgrade: bool,
                 content_length: int) -> None:
        self._protocol = protocol
        self._cycle = cycle
        self.upgrade = upgrade
        self._content_length = content_length
        self.started = False

    async def body(self) -> bytes:
        """The request body, which follows the headers on an upgraded connection."""
        n = self._content_length
        if n <= 0 or not self.upgrade:
            return b""
        if n > BODY_LIMIT:
            raise ValueError(f"request body over {BODY_LIMIT} bytes")
        try:
            return await self._protocol.reader().readexactly(n)
        except asyncio.IncompleteReadError as e:
            return e.partial

    def start(self, media_type: str = RAW_STREAM) -> None:
        """Answer the request and hand the connection to the caller: uvicorn must not write
        to it or keep it alive afterwards."""
        cycle = self._cycle
        cycle.response_started = cycle.response_complete = True
        cycle.keep_alive = False
        self.started = True
        if self.upgrade:
            head = (b"HTTP/1.1 101 UPGRADED\r\nContent-Type: " + media_type.encode()
                    + b"\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n")
        else:
            head = (b"HTTP/1.1 200 OK\r\nContent-Type: " + media_type.encode()
                    + b"\r\nConnection: close\r\n")
        head += _api_headers(self._protocol) + b"\r\n"
        self._protocol.transport.write(head)

    async def read(self, n: int = 65536) -> bytes:
        """Input from the client; b"" once it half-closed (or never could send any)."""
        if not self.upgrade:
            return b""
        return await self._protocol.reader().read(n)

    async def write(self, data: bytes) -> None:
        transport = self._protocol.transport
        if transport.is_closing():
            raise ConnectionResetError("the client went away")
        transport.write(data)
        flow = self._protocol.flow
        if flow.write_paused:
            await flow.drain()

    @property
    def closed(self) -> bool:
        return self._protocol.transport.is_closing()

    async def wait_closed(self) -> None:
        """Until the connection is gone (a half-close is not enough: output may still go)."""
        await self._protocol.lost.wait()

    def close(self) -> None:
        self._protocol.transport.close()


def _api_headers(protocol: DockerProtocol) -> bytes:
    return b"".join(name + b": " + value + b"\r\n"
                    for name, value in protocol.server_state.default_headers)


class DockerProtocol(PeerCredProtocol):
    """uvicorn's HTTP protocol plus raw mode after an ``Upgrade: tcp`` request."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._raw: asyncio.StreamReader | None = None
        self.lost = asyncio.Event()

    def reader(self) -> asyncio.StreamReader:
        if self._raw is None:  # not upgraded: nothing will come
            self._raw = asyncio.StreamReader()
            self._raw.feed_eof()
        return self._raw

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        if self.cycle is None or self.cycle.scope is not self.scope:
            return
        upgrade = self.parser.should_upgrade() and self._get_upgrade() not in (None, b"websocket")
        if upgrade:
            self.cycle.keep_alive = False  # a normal answer (an error) ends the connection
        length = 0
        for name, value in self.headers:
            if name == b"content-length" and value.isdigit():
                length = int(value)
        self.scope.setdefault("extensions", {})[HIJACK] = Hijack(  # type: ignore[typeddict-item]
            self, self.cycle, upgrade, length)

    def data_received(self, data: bytes) -> None:
        if self._raw is not None:
            self._raw.feed_data(data)
            return
        self._unset_keepalive_if_required()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self.send_400_response("Invalid HTTP request received.")
        except httptools.HttpParserUpgrade as e:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
                return
            offset = e.args[0] if e.args and isinstance(e.args[0], int) else len(data)
            self._raw = asyncio.StreamReader(limit=BODY_LIMIT)
            self._raw.set_transport(self.transport)  # it pauses reading when it fills up
            if data[offset:]:
                self._raw.feed_data(data[offset:])

    def eof_received(self) -> bool | None:  # type: ignore[override]
        if self._raw is not None:
            self._raw.feed_eof()
            return True  # a half-close ends the input, not the output
        return super().eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._raw is not None and not self._raw.at_eof():
            self._raw.feed_eof()
        self.lost.set()
        super().connection_lost(exc)

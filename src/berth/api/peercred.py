"""Who is on the other end of the unix socket: uvicorn's HTTP protocol, plus SO_PEERCRED.

The peer's uid goes into every request's ASGI scope as ``berth.peer_uid`` (None over TCP), so
the auth layer can map root on the local socket to the admin, as the operator configured.
"""

from __future__ import annotations

import asyncio
import socket
import struct

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

PEER_UID = "berth.peer_uid"
_UCRED = struct.Struct("3i")  # pid, uid, gid


def peer_uid(transport: asyncio.BaseTransport) -> int | None:
    sock = transport.get_extra_info("socket")
    if sock is None or sock.family != socket.AF_UNIX:
        return None
    try:
        _pid, uid, _gid = _UCRED.unpack(
            sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _UCRED.size))
    except OSError:
        return None
    return uid


class PeerCredProtocol(HttpToolsProtocol):
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._peer_uid = peer_uid(transport)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.scope[PEER_UID] = self._peer_uid  # type: ignore[literal-required]


class PeerCredWebSocketProtocol(WebSocketsSansIOProtocol):
    """The same for websockets (exec, attach): their scope is built anew on upgrade."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._peer_uid = peer_uid(transport)

    def handle_connect(self, event: object) -> None:  # type: ignore[override]
        super().handle_connect(event)  # type: ignore[arg-type]
        if getattr(self, "scope", None) is not None:
            self.scope[PEER_UID] = self._peer_uid  # type: ignore[literal-required]

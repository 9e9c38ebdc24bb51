"""Who is on the other end of a TLS connection: uvicorn's protocols, plus the client certificate.

berthd asks for a client certificate only when it has ``--tls-client-ca``, and the handshake
fails for one that CA did not sign, so a certificate seen here is verified. Its subject's
common name (CN) is a Berth user name: it goes into every request's ASGI scope as
``berth.peer_cn`` (None without a certificate), and the auth layer acts as that user.
The unix socket keeps api/peercred.py's protocols (SO_PEERCRED); TCP has no peer uid.
"""

from __future__ import annotations

import asyncio

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

PEER_CN = "berth.peer_cn"


def peer_cn(transport: asyncio.BaseTransport) -> str | None:
    """The verified client certificate's one subject CN (None: no certificate, or not
    exactly one CN, which names nobody)."""
    cert = transport.get_extra_info("peercert")
    if not cert:
        return None
    names = [value for rdn in cert.get("subject", ()) for key, value in rdn
             if key == "commonName"]
    return names[0] if len(names) == 1 else None


class TlsPeerProtocol(HttpToolsProtocol):
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._peer_cn = peer_cn(transport)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.scope[PEER_CN] = self._peer_cn  # type: ignore[literal-required]


class TlsPeerWebSocketProtocol(WebSocketsSansIOProtocol):
    """The same for websockets (exec, attach): their scope is built anew on upgrade."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._peer_cn = peer_cn(transport)

    def handle_connect(self, event: object) -> None:  # type: ignore[override]
        super().handle_connect(event)  # type: ignore[arg-type]
        if getattr(self, "scope", None) is not None:
            self.scope[PEER_CN] = self._peer_cn  # type: ignore[literal-required]

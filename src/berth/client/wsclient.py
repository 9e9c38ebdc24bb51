"""A WebSocket client (RFC 6455) on the SDK's own socket, for interactive exec and attach.

Why not the websockets package: importing its client costs ~50 ms (typing, ssl, logging,
importlib.metadata), half of a whole `berth exec`. This is what those sessions use and no
more: the opening handshake, text and binary messages (fragmented ones too), ping/pong and
close. Frames from berthd are bounded (MAX_MESSAGE); anything else is a ProtocolError.
"""

from __future__ import annotations

import base64
import contextlib
import os
import struct
import threading

from berth.client.wire import ProtocolError, Response

TYPE_CHECKING = False
if TYPE_CHECKING:
    import socket
    from collections.abc import Iterator

MAX_MESSAGE = 1 << 20
CLOSE_TIMEOUT = 10.0  # seconds a closing handshake may take (the websockets package's too)
_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455's, for Sec-WebSocket-Accept
CONT, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA


class HandshakeRefused(ProtocolError):
    """The server answered the upgrade with an HTTP status of its own (a 4xx, say)."""

    def __init__(self, status: int, body: bytes) -> None:
        super().__init__(f"the server refused the WebSocket upgrade ({status})")
        self.status = status
        self.body = body


def accept_key(key: str) -> str:
    try:  # CPython's built-in SHA-1: loading hashlib's OpenSSL binding costs ~2 ms
        from _sha1 import sha1
    except ImportError:  # pragma: no cover - another Python
        from hashlib import sha1
    return base64.b64encode(sha1(key.encode() + _GUID).digest()).decode()


def mask(payload: bytes, key: bytes) -> bytes:
    """XOR with the 4-byte key repeated (one big-integer XOR: fast for whole messages)."""
    if not payload:
        return payload
    n = len(payload)
    keys = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(keys, "big")).to_bytes(n, "big")


def encode_frame(opcode: int, payload: bytes, key: bytes) -> bytes:
    """One final frame, masked with key, as a client must send it."""
    head = bytes([0x80 | opcode])
    n = len(payload)
    if n < 126:
        head += bytes([0x80 | n])
    elif n < 1 << 16:
        head += bytes([0x80 | 126]) + struct.pack("!H", n)
    else:
        head += bytes([0x80 | 127]) + struct.pack("!Q", n)
    return head + key + mask(payload, key)


class WebSocket:
    """An open session: ``send(str | bytes)``, iteration over the messages received (str or
    bytes) until the server closes, ``close()``. send may be called from another thread
    than the one that reads."""

    def __init__(self, sock: socket.socket, reader: object) -> None:
        self.sock = sock
        self._in = reader  # the buffered reader the handshake was read through
        self._send_lock = threading.Lock()
        self._close_sent = False
        self._close_received = False
        self._reader: threading.Thread | None = None  # the thread in recv(), if any

    def __enter__(self) -> WebSocket:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- opening -----------------------------------------------------------------------

    @classmethod
    def open(cls, sock: socket.socket, host: str, target: str,
             headers: dict[str, str]) -> WebSocket:
        key = base64.b64encode(os.urandom(16)).decode()
        lines = [f"GET {target} HTTP/1.1", f"Host: {host}", "Upgrade: websocket",
                 "Connection: Upgrade", f"Sec-WebSocket-Key: {key}",
                 "Sec-WebSocket-Version: 13"]
        for name, value in headers.items():
            if any(c in f"{name}{value}" for c in "\r\n\0") or not name or ":" in name:
                raise ValueError(f"invalid HTTP header {name!r}")
            lines.append(f"{name}: {value}")
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        answer = Response(sock, "GET")  # its reader reads no further than the headers' end
        if answer.status != 101:
            raise HandshakeRefused(answer.status, answer.read(65536))
        if (answer.getheader("upgrade") or "").lower() != "websocket" or \
                answer.getheader("sec-websocket-accept") != accept_key(key):
            raise ProtocolError("the server's WebSocket handshake answer is not valid")
        sock.settimeout(None)  # a session may sit idle for as long as its user likes
        return cls(sock, answer.fp)

    # -- sending -----------------------------------------------------------------------

    def send(self, message: str | bytes) -> None:
        if isinstance(message, str):
            self._send(TEXT, message.encode())
        else:
            self._send(BINARY, bytes(message))

    def _send(self, opcode: int, payload: bytes) -> None:
        frame = encode_frame(opcode, payload, os.urandom(4))
        with self._send_lock:
            if self._close_sent and opcode != CLOSE:
                raise ConnectionError("the WebSocket is closed")
            self.sock.sendall(frame)

    def close(self) -> None:
        """The closing handshake, then the end of the connection. The server may still be
        acting on what we sent last (a detach): until its close frame comes back (or
        CLOSE_TIMEOUT passes) the connection stays, so that what it sends meanwhile does not
        fail. A thread reading at the time sees that close frame and the end."""
        if not self._close_sent:
            self._close_sent = True
            with contextlib.suppress(OSError):
                self._send(CLOSE, struct.pack("!H", 1000))
        if self._close_received:
            self._shutdown()
        elif self._reader is not None and self._reader is not threading.current_thread():
            timer = threading.Timer(CLOSE_TIMEOUT, self._shutdown)
            timer.daemon = True
            timer.start()
        else:
            import time

            deadline = time.monotonic() + CLOSE_TIMEOUT
            with contextlib.suppress(OSError, ProtocolError):  # (a timeout is an OSError)
                while self.recv(timeout=max(deadline - time.monotonic(), 0.001)) is not None:
                    pass
            self._shutdown()

    def _shutdown(self) -> None:
        import socket

        for end in (lambda: self.sock.shutdown(socket.SHUT_RDWR), self.sock.close):
            with contextlib.suppress(OSError):
                end()

    # -- receiving ---------------------------------------------------------------------

    def __iter__(self) -> Iterator[str | bytes]:
        while True:
            message = self.recv()
            if message is None:
                return
            yield message

    def recv(self, timeout: float | None = None) -> str | bytes | None:
        """The next message; None once the server has closed. timeout: seconds to wait for
        it, then TimeoutError, after which the session can only be closed."""
        self._reader = threading.current_thread()
        self.sock.settimeout(timeout)
        try:
            return self._recv()
        finally:
            self._reader = None
            with contextlib.suppress(OSError):
                self.sock.settimeout(None)

    def _recv(self) -> str | bytes | None:
        if self._close_received:
            return None
        kind: int | None = None
        parts: list[bytes] = []
        size = 0
        while True:
            frame = _read_frame(self._in)
            if frame is None:
                return None  # the connection ended
            fin, opcode, payload = frame
            if opcode == PING:
                self._reply(PONG, payload)
                continue
            if opcode == PONG:
                continue
            if opcode == CLOSE:
                self._close_received = True
                if not self._close_sent:
                    self._close_sent = True
                    self._reply(CLOSE, payload[:2])
                return None
            if opcode == CONT:
                if kind is None:
                    raise ProtocolError("a continuation frame with no message to continue")
            elif kind is not None:
                raise ProtocolError("a new message began before the last one ended")
            else:
                kind = opcode
            size += len(payload)
            if size > MAX_MESSAGE:
                raise ProtocolError(f"a message larger than {MAX_MESSAGE} bytes")
            parts.append(payload)
            if fin:
                data = b"".join(parts)
                if kind == TEXT:
                    try:
                        return data.decode()
                    except UnicodeDecodeError:
                        raise ProtocolError("a text message that is not UTF-8") from None
                return data

    def _reply(self, opcode: int, payload: bytes) -> None:
        with contextlib.suppress(OSError):  # closing anyway
            self._send(opcode, payload)


def _read_exact(reader: object, n: int) -> bytes | None:
    data = reader.read(n)  # type: ignore[attr-defined]
    if len(data) == n:
        return data
    if not data:
        return None
    raise ProtocolError("the connection ended in the middle of a WebSocket frame")


def _read_frame(reader: object) -> tuple[bool, int, bytes] | None:
    """(fin, opcode, payload) of the server's next frame, None at the end of the stream."""
    head = _read_exact(reader, 2)
    if head is None:
        return None
    fin, opcode = bool(head[0] & 0x80), head[0] & 0x0F
    if head[0] & 0x70:
        raise ProtocolError("a WebSocket frame with reserved bits set")
    if head[1] & 0x80:
        raise ProtocolError("a masked frame from the server")
    if opcode not in (CONT, TEXT, BINARY, CLOSE, PING, PONG):
        raise ProtocolError(f"unknown WebSocket opcode {opcode:#x}")
    n = head[1] & 0x7F
    if n >= 126:
        ext = _read_exact(reader, 2 if n == 126 else 8)
        if ext is None:
            raise ProtocolError("the connection ended in the middle of a WebSocket frame")
        n = struct.unpack("!H" if len(ext) == 2 else "!Q", ext)[0]
    if opcode >= CLOSE and (n > 125 or not fin):
        raise ProtocolError("a control frame that is too long or fragmented")
    if n > MAX_MESSAGE:
        raise ProtocolError(f"a frame larger than {MAX_MESSAGE} bytes")
    payload = _read_exact(reader, n) if n else b""
    if payload is None:
        raise ProtocolError("the connection ended in the middle of a WebSocket frame")
    return fin, opcode, payload

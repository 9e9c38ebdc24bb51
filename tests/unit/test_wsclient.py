"""The SDK's WebSocket client against a scripted server on a socketpair (pure: no daemon)."""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from collections.abc import Iterator
from typing import BinaryIO

import pytest

from berth.client.wire import ProtocolError
from berth.client.wsclient import (
    BINARY,
    CLOSE,
    CONT,
    MAX_MESSAGE,
    PING,
    PONG,
    TEXT,
    HandshakeRefused,
    WebSocket,
    accept_key,
    encode_frame,
    mask,
)


def server_frame(opcode: int, payload: bytes, fin: bool = True, extra: int = 0) -> bytes:
    """A frame as a server sends it: unmasked."""
    n = len(payload)
    head = bytes([(0x80 if fin else 0) | extra | opcode])
    if n < 126:
        head += bytes([n])
    elif n < 1 << 16:
        head += bytes([126]) + struct.pack("!H", n)
    else:
        head += bytes([127]) + struct.pack("!Q", n)
    return head + payload


def read_client_frame(f: BinaryIO) -> tuple[int, bytes]:
    """The next frame a client sent (f: one buffered reader for the whole test)."""
    b0, b1 = f.read(2)
    assert b1 & 0x80, "a client frame must be masked"
    n = b1 & 0x7F
    if n == 126:
        n = struct.unpack("!H", f.read(2))[0]
    elif n == 127:
        n = struct.unpack("!Q", f.read(8))[0]
    key = f.read(4)
    return b0 & 0x0F, mask(f.read(n), key)


def handshake(server: socket.socket, status: bytes = b"101 Switching Protocols",
              body: bytes = b"") -> None:
    request = b""
    while b"\r\n\r\n" not in request:
        request += server.recv(4096)
    key = next(line.split(b": ", 1)[1] for line in request.split(b"\r\n")
               if line.lower().startswith(b"sec-websocket-key"))
    if status.startswith(b"101"):
        server.sendall(b"HTTP/1.1 " + status + b"\r\nUpgrade: websocket\r\n"
                       b"Connection: Upgrade\r\nSec-WebSocket-Accept: " +
                       accept_key(key.decode()).encode() + b"\r\n\r\n")
    else:
        server.sendall(b"HTTP/1.1 " + status + b"\r\nContent-Length: " +
                       str(len(body)).encode() + b"\r\n\r\n" + body)


Pair = tuple[WebSocket, socket.socket, BinaryIO]


@pytest.fixture
def pair() -> Iterator[Pair]:
    """An open session, the server's socket and a reader of what the client sends."""
    client, server = socket.socketpair()
    client.settimeout(10)
    server.settimeout(10)
    t = threading.Thread(target=handshake, args=(server,))
    t.start()
    ws = WebSocket.open(client, "localhost", "/v1/x", {"Authorization": "Bearer t"})
    t.join()
    client.settimeout(10)  # (open made it blocking: a broken test must not hang)
    yield ws, server, server.makefile("rb")
    ws._shutdown()
    server.close()


def test_rfc_accept_key_and_masking() -> None:
    assert accept_key("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    data = bytes(range(256)) * 5
    assert mask(mask(data, b"\x01\x02\x03\x04"), b"\x01\x02\x03\x04") == data
    assert mask(b"", b"abcd") == b""


@pytest.mark.parametrize("size", [0, 1, 125, 126, 65535, 65536])
def test_frames_of_every_length_reach_the_server(size: int, pair: Pair) -> None:
    ws, server, sent = pair
    payload = bytes(i % 251 for i in range(size))
    ws.send(payload)
    assert read_client_frame(sent) == (BINARY, payload)
    ws.send("héllo")
    assert read_client_frame(sent) == (TEXT, "héllo".encode())
    assert encode_frame(TEXT, b"x", b"\0\0\0\0")[:2] == b"\x81\x81"


def test_messages_pings_fragments_and_close(pair: Pair) -> None:
    ws, server, sent = pair
    server.sendall(server_frame(TEXT, b'{"a": 1}') + server_frame(PING, b"p?") +
                   server_frame(BINARY, b"\x01ab", fin=False) + server_frame(CONT, b"cd") +
                   server_frame(CLOSE, struct.pack("!H", 1000)))
    assert list(ws) == ['{"a": 1}', b"\x01abcd"]
    assert read_client_frame(sent) == (PONG, b"p?")
    assert read_client_frame(sent) == (CLOSE, struct.pack("!H", 1000))
    ws.close()  # the server closed first: no second close frame, and no wait
    server.settimeout(1)
    assert server.recv(10) == b""


def test_close_gives_up_on_a_server_that_never_answers(pair: Pair,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    import berth.client.wsclient as wsclient

    ws, server, sent = pair
    monkeypatch.setattr(wsclient, "CLOSE_TIMEOUT", 0.2)
    server.sendall(server_frame(BINARY, b"\x01chatter"))  # and no close frame, ever
    ws.close()  # returns after CLOSE_TIMEOUT
    assert read_client_frame(sent)[0] == CLOSE


def test_close_waits_for_the_servers_close(pair: Pair) -> None:
    ws, server, sent = pair

    def answer() -> None:
        assert read_client_frame(sent)[0] == CLOSE
        server.sendall(server_frame(BINARY, b"\x01late") +
                       server_frame(CLOSE, struct.pack("!H", 1000)))

    t = threading.Thread(target=answer)
    t.start()
    ws.close()  # returns once the server's close arrives
    t.join(5)
    assert not t.is_alive()


@pytest.mark.parametrize(("frames", "words"), [
    (encode_frame(TEXT, b"x", b"abcd"), "masked frame from the server"),
    (server_frame(TEXT, b"x", extra=0x40), "reserved bits"),
    (server_frame(0x3, b"x"), "unknown WebSocket opcode"),
    (server_frame(PING, b"x" * 126), "control frame"),
    (server_frame(CLOSE, b"", fin=False), "control frame"),
    (server_frame(CONT, b"x"), "continuation frame with no message"),
    (server_frame(TEXT, b"a", fin=False) + server_frame(TEXT, b"b"), "new message began"),
    (server_frame(TEXT, b"\xff\xfe"), "not UTF-8"),
    (server_frame(BINARY, b"x" * 10)[:-3], "ended in the middle"),
    (bytes([0x82, 127]) + struct.pack("!Q", MAX_MESSAGE + 1), "larger than"),
    (server_frame(BINARY, b"x" * 60000, fin=False) +
     server_frame(CONT, b"x" * 60000, fin=False) * 20, "a message larger than"),
])
def test_bad_frames_from_the_server(frames: bytes, words: str, pair: Pair) -> None:
    ws, server, sent = pair

    def feed() -> None:
        with contextlib.suppress(OSError):  # the client stops reading at the fault
            server.sendall(frames)
            server.shutdown(socket.SHUT_WR)

    t = threading.Thread(target=feed)
    t.start()
    with pytest.raises(ProtocolError, match=words):
        ws.recv()
    ws._shutdown()  # what the server still sends goes nowhere
    t.join(5)


def test_a_refused_upgrade_carries_the_servers_answer() -> None:
    client, server = socket.socketpair()
    t = threading.Thread(target=handshake, args=(server, b"403 Forbidden",
                                                 b'{"message": "no such token"}'))
    t.start()
    with pytest.raises(HandshakeRefused) as refused:
        WebSocket.open(client, "localhost", "/v1/x", {})
    t.join()
    assert refused.value.status == 403 and b"no such token" in refused.value.body
    client.close()
    server.close()


def test_header_injection_is_refused() -> None:
    client, server = socket.socketpair()
    with pytest.raises(ValueError, match="invalid HTTP header"):
        WebSocket.open(client, "localhost", "/", {"X-Evil": "a\r\nInjected: 1"})
    client.close()
    server.close()


def test_a_timed_recv_and_the_context_manager(pair: Pair) -> None:
    ws, server, sent = pair
    server.sendall(server_frame(TEXT, b"in time"))
    with ws:
        assert ws.recv(timeout=5) == "in time"
        with pytest.raises(TimeoutError):
            ws.recv(timeout=0.05)
    assert read_client_frame(sent) == (CLOSE, struct.pack("!H", 1000))  # closed on leaving

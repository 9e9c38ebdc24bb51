"""The SDK's HTTP/1.1 framing (berth.client.wire) over a socket pair: what it sends, and how it
reads every kind of answer berthd (uvicorn) gives, and refuses what is not HTTP."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from berth.client.wire import Disconnected, ProtocolError, Response, send_request


def answer(raw: bytes, method: str = "GET") -> Response:
    ours, theirs = socket.socketpair()
    theirs.sendall(raw)
    theirs.close()
    return Response(ours, method)


def sent(method: str, body: bytes | Iterator[bytes] | None,
         headers: dict[str, str] | None = None) -> bytes:
    ours, theirs = socket.socketpair()
    send_request(ours, method, "/v1/x?a=1", "localhost", headers or {"Accept": "a/b"}, body)
    ours.close()
    out = b""
    while chunk := theirs.recv(65536):
        out += chunk
    theirs.close()
    return out


def test_requests_carry_length_or_chunks() -> None:
    assert sent("GET", None) == (b"GET /v1/x?a=1 HTTP/1.1\r\nHost: localhost\r\n"
                                 b"Connection: close\r\nAccept: a/b\r\n\r\n")
    assert sent("POST", None).endswith(b"Content-Length: 0\r\n\r\n")
    assert sent("POST", b'{"k": 1}').endswith(b'Content-Length: 8\r\n\r\n{"k": 1}')
    chunked = sent("POST", iter([b"abc", b"", b"0123456789abcdef"]))
    assert b"Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n10\r\n0123456789abcdef\r\n0\r\n\r\n" \
        in chunked
    with pytest.raises(ValueError, match="invalid HTTP header"):
        sent("GET", None, {"X-Evil": "a\r\nInjected: 1"})


def test_content_length_answer() -> None:
    resp = answer(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                  b"content-length: 11\r\nX-Two: a\r\nX-Two: b\r\n\r\nhello\nworldTRAILING")
    assert (resp.status, resp.reason) == (200, "OK")
    assert resp.getheader("Content-Type") == "application/json"
    assert resp.getheader("x-two") == "a, b" and resp.getheader("missing", "d") == "d"
    assert resp.readline() == b"hello\n"
    assert resp.read() == b"world"  # never past the declared length
    assert resp.read() == b""


def test_chunked_answer_reads_across_chunks() -> None:
    body = b"4\r\nab\nc\r\n5;ext=1\r\nd\nefg\r\n0\r\nTrailer: x\r\n\r\n"
    resp = answer(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + body)
    assert list(resp) == [b"ab\n", b"cd\n", b"efg"]
    resp = answer(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + body)
    assert resp.read1(2) == b"ab" and resp.read(100) == b"\ncd\nefg"


def test_close_delimited_and_bodiless_answers() -> None:
    assert answer(b"HTTP/1.0 200 OK\r\n\r\nuntil the end").read() == b"until the end"
    assert answer(b"HTTP/1.1 204 No Content\r\n\r\n").read() == b""
    assert answer(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", "HEAD").read() == b""


@pytest.mark.parametrize("raw, reason", [
    (b"SSH-2.0-OpenSSH_9.2\r\n\r\n", "not an HTTP"),
    (b"HTTP/1.1 2000 Odd\r\n\r\n", "not an HTTP"),
    (b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n", "malformed header"),
    (b"HTTP/1.1 200 OK\r\n" + b"X: y\r\n" * 200 + b"\r\n", "more than"),
    (b"HTTP/1.1 200 OK\r\nX: " + b"y" * 70000 + b"\r\n\r\n", "too long"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", "invalid Content-Length"),
    (b"HTTP/1.1 200 OK\r\nContent-Type: x", "closed before"),
])
def test_what_is_not_http_is_refused(raw: bytes, reason: str) -> None:
    with pytest.raises(ProtocolError, match=reason):
        answer(raw)


def test_broken_bodies_are_errors_not_short_reads() -> None:
    with pytest.raises(ProtocolError, match="middle of the answer's body"):
        answer(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort").read()
    with pytest.raises(ProtocolError, match="invalid chunk size"):
        answer(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n").read()
    with pytest.raises(Disconnected):
        answer(b"")
    assert issubclass(Disconnected, ConnectionResetError)

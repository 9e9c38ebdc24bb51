"""HTTP/1.1 on one socket: the part of the protocol the SDK speaks to berthd.

Why not http.client: importing it costs ~30 ms (it brings the email package to parse headers),
a fifth of a whole `berth run`, and every CLI command pays it; h11 and httpx cost more. This is
one request per connection (``Connection: close``), a body sent with Content-Length or chunked,
and an answer framed by Content-Length, chunked transfer coding or the end of the connection.
Status line and header sizes are bounded; whatever is not HTTP/1.x is a ProtocolError.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    import socket
    from collections.abc import Iterable, Iterator

MAX_LINE = 65536
MAX_HEADERS = 128
READ = 65536


class ProtocolError(Exception):
    """The peer's answer is not HTTP/1.x, or it broke off in the middle of a body."""


class Disconnected(ProtocolError, ConnectionResetError):
    """The peer closed the connection without answering at all (as a TLS server does after
    refusing a client certificate): an OSError too, like http.client's RemoteDisconnected."""


def send_request(sock: socket.socket, method: str, target: str, host: str,
                 headers: dict[str, str], body: bytes | Iterable[bytes] | None) -> None:
    """Write the request line, headers and body (bytes: Content-Length; an iterable of
    chunks: chunked transfer coding)."""
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}", "Connection: close"]
    for name, value in headers.items():
        if any(c in f"{name}{value}" for c in "\r\n\0") or not name or ":" in name:
            raise ValueError(f"invalid HTTP header {name!r}")
        if name.lower() not in ("host", "connection", "content-length", "transfer-encoding"):
            lines.append(f"{name}: {value}")
    if body is None:
        if method in ("POST", "PUT", "PATCH"):
            lines.append("Content-Length: 0")
    elif isinstance(body, bytes | bytearray):
        lines.append(f"Content-Length: {len(body)}")
    else:
        lines.append("Transfer-Encoding: chunked")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    if body is None or isinstance(body, bytes | bytearray):
        sock.sendall(head + bytes(body or b""))
        return
    sock.sendall(head)
    for chunk in body:
        if chunk:
            sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
    sock.sendall(b"0\r\n\r\n")


class Response:
    """The answer: ``status``, ``reason``, ``getheader()``, and its body through ``read``,
    ``read1``, ``readline`` or iteration by lines. Closing it closes the connection."""

    def __init__(self, sock: socket.socket, method: str = "GET") -> None:
        self.sock = sock
        self.fp = sock.makefile("rb")
        self._buf = b""
        self._left: int | None = None  # bytes left of the body, or of the current chunk
        self._chunked = False
        self._done = False
        first = self.fp.readline(MAX_LINE + 1)
        if not first:
            raise Disconnected("the connection closed without an answer")
        version, _, rest = first.partition(b" ")
        code, _, reason = rest.partition(b" ")
        if not version.startswith(b"HTTP/1.") or len(code) != 3 or not code.isdigit():
            raise ProtocolError(f"not an HTTP/1.x answer: {version[:20]!r}")
        self.status = int(code)
        self.reason = reason.strip().decode("latin-1")
        self.headers: dict[str, str] = {}
        for _ in range(MAX_HEADERS + 1):
            line = self._line()
            if not line.strip():
                break
            name, colon, value = line.partition(b":")
            if not colon:
                raise ProtocolError(f"malformed header line {line[:40]!r}")
            key = name.strip().decode("latin-1").lower()
            text = value.strip().decode("latin-1")
            self.headers[key] = f"{self.headers[key]}, {text}" if key in self.headers else text
        else:
            raise ProtocolError(f"more than {MAX_HEADERS} header fields")
        self._frame(method)

    def _frame(self, method: str) -> None:
        if method == "HEAD" or self.status in (204, 304) or 100 <= self.status < 200:
            self._done = True
        elif "chunked" in self.headers.get("transfer-encoding", "").lower():
            self._chunked, self._left = True, 0
        elif "content-length" in self.headers:
            length = self.headers["content-length"]
            if not length.isdigit():
                raise ProtocolError(f"invalid Content-Length {length[:20]!r}")
            self._left = int(length)

    def _line(self) -> bytes:
        line = self.fp.readline(MAX_LINE + 1)
        if len(line) > MAX_LINE:
            raise ProtocolError("a header line is too long")
        if not line:
            raise ProtocolError("the connection closed before the answer's headers ended")
        return line

    def getheader(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(name.lower(), default)

    # -- the body ---------------------------------------------------------------------------

    def _some(self, n: int) -> bytes:
        """Up to ``n`` bytes of body (at least one unless the body is over)."""
        if self._done:
            return b""
        if self._chunked and self._left == 0:
            size = self._line().split(b";")[0].strip()
            try:
                self._left = int(size, 16)
            except ValueError:
                raise ProtocolError(f"invalid chunk size {size[:20]!r}") from None
            if self._left == 0:
                while self._line().strip():  # trailer fields, up to the blank line
                    pass
                self._done = True
                return b""
        want = n if self._left is None else min(n, self._left)
        data = self.fp.read1(want) if want else b""
        if self._left is None:
            self._done = not data
            return data
        if not data:
            raise ProtocolError("the connection closed in the middle of the answer's body")
        self._left -= len(data)
        if self._left == 0:
            if self._chunked:
                self._line()  # the CRLF after a chunk's data
            else:
                self._done = True
        return data

    def read1(self, n: int = READ) -> bytes:
        if self._buf:
            data, self._buf = self._buf[:n], self._buf[n:]
            return data
        return self._some(n)

    def read(self, n: int = -1) -> bytes:
        parts, got = [], 0
        while n < 0 or got < n:
            data = self.read1(READ if n < 0 else n - got)
            if not data:
                break
            parts.append(data)
            got += len(data)
        return b"".join(parts)

    def readline(self) -> bytes:
        while b"\n" not in self._buf:
            data = self._some(READ)
            if not data:
                line, self._buf = self._buf, b""
                return line
            self._buf += data
        line, _, self._buf = self._buf.partition(b"\n")
        return line + b"\n"

    def __iter__(self) -> Iterator[bytes]:
        while line := self.readline():
            yield line

    def shutdown(self) -> None:
        """End the connection now, even while another thread is blocked reading it."""
        import contextlib
        import socket

        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self.fp.close()
        self.sock.close()

    def __enter__(self) -> Response:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

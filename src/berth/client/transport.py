"""HTTP to berthd over a unix socket or TCP (TLS when configured).

The CLI's start-up time is part of every `berth run`, so the SDK avoids heavy imports: it speaks
HTTP/1.1 through berth.client.wire rather than http.client (which imports the email package),
ssl is imported only for a TLS daemon; interactive exec and attach speak WebSocket through
berth.client.wsclient on the same sockets.
"""

from __future__ import annotations

import json
import socket
import struct
from urllib.parse import quote, urlencode, urlsplit

from berth.client.wire import ProtocolError, Response, send_request

TYPE_CHECKING = False  # importing typing costs ~10 ms of CLI start-up; annotations are strings
if TYPE_CHECKING:
    import ssl
    from collections.abc import Iterator
    from typing import Any

    from berth.client.wsclient import WebSocket

DEFAULT_HOST = "unix:///run/berth/berth.sock"
TIMEOUT = 3700.0  # longer than the api's longest wait


class APIError(Exception):
    def __init__(self, status: int, message: str, body: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.body = body or {}


class ConnectionFailed(APIError):
    pass


class Transport:
    """``unix:///path``; ``tcp://host:port`` (HTTPS when any TLS file is given, else plain
    HTTP for a loopback ``--insecure-tcp`` daemon); ``https://host:port`` (TLS, trusting the
    system's CAs unless ``tls_ca``). ``tls_cert``/``tls_key``: a client certificate."""

    def __init__(self, host: str = DEFAULT_HOST, timeout: float = TIMEOUT,
                 token: str | None = None, project: str | None = None,
                 tls_ca: str | None = None, tls_cert: str | None = None,
                 tls_key: str | None = None) -> None:
        self.host = host
        self.timeout = timeout
        self.ssl_context: ssl.SSLContext | None = None  # (ssl is imported only for TLS)
        self.client_cert = tls_cert
        # Sent with every request: who we are, and which of our projects we act in.
        self.auth_headers: dict[str, str] = {}
        if token:
            self.auth_headers["Authorization"] = f"Bearer {token}"
        if project:
            self.auth_headers["X-Berth-Project"] = project
        parts = urlsplit(host)
        if parts.scheme == "unix":
            self.unix_path: str | None = parts.path
            self.netloc = "localhost"
        elif parts.scheme in ("tcp", "http", "https"):
            self.unix_path = None
            self.netloc = parts.netloc
            if parts.scheme == "https" or (parts.scheme == "tcp" and (tls_ca or tls_cert)):
                self.ssl_context = _ssl_context(tls_ca, tls_cert, tls_key)
        else:
            raise ValueError(f"unsupported host {host!r}: use unix:///path or tcp://host:port")
        if (tls_ca or tls_cert) and parts.scheme == "http":  # (a unix socket ignores them)
            raise ValueError(f"TLS options need a tcp:// or https:// host, not {host}")
        if token and self.unix_path is None and self.ssl_context is None and \
                not _loopback(parts.hostname or ""):
            raise ValueError(f"refusing to send a token in the clear to {host}: give --tls-ca "
                             "(BERTH_TLS_CA) for TLS, or use https://")

    def connect(self) -> socket.socket:
        """A socket to berthd: its unix socket, or TCP (wrapped in TLS when configured)."""
        if self.unix_path is not None:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.settimeout(self.timeout)
                sock.connect(self.unix_path)
            except BaseException:
                sock.close()
                raise
            return sock
        host, _, port = self.netloc.rpartition(":")
        sock = socket.create_connection((host.strip("[]"), int(port)), timeout=self.timeout)
        if self.ssl_context is None:
            return sock
        try:
            return self.ssl_context.wrap_socket(sock, server_hostname=host.strip("[]"))
        except BaseException:
            sock.close()
            raise

    def _hint(self, e: OSError) -> str:
        """A connection closed on us over TCP: usually TLS spoken to plain HTTP, or the other
        way, or a client certificate the daemon did not accept."""
        if self.unix_path is not None:
            return ""
        import ssl

        if isinstance(e, ssl.SSLCertVerificationError) or \
                not isinstance(e, ConnectionResetError | ssl.SSLError):
            return ""
        if self.ssl_context is None:
            return " (a TLS port? give --tls-ca, or use https://)"
        if self.client_cert:
            return " (was the client certificate refused? berthd's --tls-client-ca must sign it)"
        return ""

    def open(self, method: str, path: str, params: dict[str, Any] | None = None,
             body: Any = None, raw: bytes | Iterator[bytes] | None = None,
             headers: dict[str, str] | None = None) -> Response:
        """Send a request; raise APIError for any non-2xx/304 answer."""
        url = quote(path) + ("?" + urlencode(_params(params)) if params else "")
        hdrs = {"Accept": "application/json", **self.auth_headers, **(headers or {})}
        data: Any = None
        if body is not None:
            data = json.dumps(body).encode()
            hdrs["Content-Type"] = "application/json"
        elif raw is not None:
            data = raw
            hdrs["Content-Type"] = "application/octet-stream"
        sock: socket.socket | None = None
        try:
            sock = self.connect()
            try:
                send_request(sock, method, url, self.netloc, hdrs, data)
            except (BrokenPipeError, ConnectionResetError) as cut:
                # berthd answered (a refusal: too big, disk full) before it took the whole
                # body, and closed: its answer says why, the broken pipe does not
                resp = _early_answer(sock, method, cut)
            else:
                resp = Response(sock, method)
        except (FileNotFoundError, ConnectionRefusedError) as e:
            _close(sock)
            raise ConnectionFailed(0, f"cannot reach berthd at {self.host}: {e.strerror}. Is "
                                   "berthd running?") from None
        except OSError as e:
            _close(sock)
            raise ConnectionFailed(0, f"cannot talk to berthd at {self.host}: "
                                   f"{e}{self._hint(e)}") from None
        except ProtocolError as e:  # not HTTP: a TLS port spoken to in plain HTTP
            _close(sock)
            hint = "" if self.ssl_context else " (a TLS port? give --tls-ca or use https://)"
            raise ConnectionFailed(0, f"cannot talk to berthd at {self.host}: no HTTP answer "
                                   f"({e}){hint}") from None
        if resp.status >= 400:
            try:
                payload = resp.read()
            except (OSError, ProtocolError):
                payload = b""
            finally:
                resp.close()
            try:
                doc = json.loads(payload)
                message = doc.get("message") or payload.decode(errors="replace")
            except (ValueError, AttributeError):
                doc, message = {}, payload.decode(errors="replace") or resp.reason
            raise APIError(resp.status, message, doc if isinstance(doc, dict) else {})
        return resp

    def call(self, method: str, path: str, params: dict[str, Any] | None = None,
             body: Any = None, raw: bytes | Iterator[bytes] | None = None) -> Any:
        with self.open(method, path, params, body, raw) as resp:
            payload = resp.read()
        if resp.status in (204, 304) or not payload:
            return None
        return json.loads(payload)

    def websocket(self, path: str, params: dict[str, Any] | None = None) -> WebSocket:
        """An open WebSocket session (berth.client.wsclient) to the path."""
        from berth.client.wsclient import HandshakeRefused, WebSocket

        url = quote(path) + ("?" + urlencode(_params(params)) if params else "")
        sock: socket.socket | None = None
        try:
            sock = self.connect()
            return WebSocket.open(sock, self.netloc, url, self.auth_headers)
        except (FileNotFoundError, ConnectionRefusedError) as e:
            _close(sock)
            raise ConnectionFailed(0, f"cannot reach berthd at {self.host}: {e.strerror}. Is "
                                   "berthd running?") from None
        except HandshakeRefused as e:
            _close(sock)
            try:
                message = json.loads(e.body).get("message") or str(e)
            except (ValueError, AttributeError):
                message = str(e)
            raise APIError(e.status, message) from None
        except (OSError, ProtocolError) as e:  # TLS refused, reset, timed out, not HTTP
            _close(sock)
            raise ConnectionFailed(0, f"cannot talk to berthd at {self.host}: {e}") from None


def _early_answer(sock: socket.socket, method: str, cut: OSError) -> Response:
    try:
        return Response(sock, method)
    except (OSError, ProtocolError):
        raise cut from None


def _loopback(host: str) -> bool:
    import ipaddress

    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _ssl_context(ca: str | None, cert: str | None, key: str | None) -> ssl.SSLContext:
    """Verify the daemon against ``ca`` (default: the system's CAs) and its name; present a
    client certificate when given one."""
    import ssl

    if key and not cert:
        raise ValueError("a TLS client key needs its certificate (--tls-cert)")
    try:
        ctx = ssl.create_default_context(cafile=ca)
        if cert:
            ctx.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as e:
        what = f"{ca or ''} {cert or ''} {key or ''}".split()
        raise ValueError(f"cannot use TLS files {', '.join(what)}: {e}") from None
    return ctx


def _params(params: dict[str, Any]) -> list[tuple[str, str]]:
    out = []
    for key, value in params.items():
        if value is None:
            continue
        for item in value if isinstance(value, list) else [value]:
            out.append((key, str(item).lower() if isinstance(item, bool) else str(item)))
    return out


def _close(sock: socket.socket | None) -> None:
    if sock is not None:
        sock.close()


def read_chunks(source: Any, *, close: bool = False) -> Iterator[bytes]:
    """``source`` (a response, a file) read to its end in 1 MiB pieces; ``close``: then
    closed, also when the reader stops early."""
    try:
        while chunk := source.read(1 << 20):
            yield chunk
    finally:
        if close:
            source.close()


def read_frames(resp: Response) -> Iterator[tuple[int, bytes]]:
    """Docker-style multiplexed frames: (stream, data) until the response ends."""
    while True:
        header = _read_exact(resp, 8)
        if not header:
            return
        stream, size = struct.unpack(">BxxxI", header)
        yield stream, _read_exact(resp, size)


def _read_exact(resp: Response, n: int) -> bytes:
    chunks, got = [], 0
    while got < n:
        chunk = resp.read1(n - got)
        if not chunk:
            if got:
                raise APIError(0, "the stream from berthd ended in the middle of a frame")
            return b""
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)

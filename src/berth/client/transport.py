"""HTTP to berthd over a unix socket or TCP, on the standard library's http.client.

The CLI's start-up time is part of every `berth run`, so the SDK avoids heavy imports: the
stdlib client costs a fraction of the alternatives, and websockets (interactive exec/attach)
are imported only when used.
"""

from __future__ import annotations

import http.client
import json
import socket
import ssl
import struct
from urllib.parse import quote, urlencode, urlsplit

TYPE_CHECKING = False  # importing typing costs ~10 ms of CLI start-up; annotations are strings
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Any

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


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self.unix_path)
        self.sock = sock


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
        self.ssl_context: ssl.SSLContext | None = None
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

    def connection(self) -> http.client.HTTPConnection:
        """A raw http.client connection to berthd (unix socket or TCP)."""
        if self.unix_path is not None:
            return _UnixConnection(self.unix_path, self.timeout)
        if self.ssl_context is not None:
            return http.client.HTTPSConnection(self.netloc, timeout=self.timeout,
                                               context=self.ssl_context)
        return http.client.HTTPConnection(self.netloc, timeout=self.timeout)

    def _hint(self, e: OSError) -> str:
        """A connection closed on us over TCP: usually TLS spoken to plain HTTP, or the other
        way, or a client certificate the daemon did not accept."""
        if self.unix_path is not None or isinstance(e, ssl.SSLCertVerificationError) or \
                not isinstance(e, ConnectionResetError | ssl.SSLError):
            return ""
        if self.ssl_context is None:
            return " (a TLS port? give --tls-ca, or use https://)"
        if self.client_cert:
            return " (was the client certificate refused? berthd's --tls-client-ca must sign it)"
        return ""

    def open(self, method: str, path: str, params: dict[str, Any] | None = None,
             body: Any = None, raw: bytes | Iterator[bytes] | None = None,
             headers: dict[str, str] | None = None) -> http.client.HTTPResponse:
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
            if not isinstance(raw, bytes):
                hdrs["Transfer-Encoding"] = "chunked"
        conn = self.connection()
        try:
            conn.request(method, url, body=data, headers=hdrs,
                         encode_chunked=data is not None and not isinstance(data, bytes))
            resp = conn.getresponse()
        except (FileNotFoundError, ConnectionRefusedError) as e:
            raise ConnectionFailed(0, f"cannot reach berthd at {self.host}: {e.strerror}. Is "
                                   "berthd running?") from None
        except OSError as e:
            raise ConnectionFailed(0, f"cannot talk to berthd at {self.host}: "
                                   f"{e}{self._hint(e)}") from None
        except http.client.HTTPException as e:  # not HTTP: a TLS port spoken to in plain HTTP
            hint = "" if self.ssl_context else " (a TLS port? give --tls-ca or use https://)"
            raise ConnectionFailed(0, f"cannot talk to berthd at {self.host}: no HTTP answer "
                                   f"({type(e).__name__}){hint}") from None
        if resp.status >= 400:
            payload = resp.read()
            try:
                doc = json.loads(payload)
                message = doc.get("message") or payload.decode(errors="replace")
            except (ValueError, AttributeError):
                doc, message = {}, payload.decode(errors="replace") or resp.reason
            raise APIError(resp.status, message, doc if isinstance(doc, dict) else {})
        return resp

    def call(self, method: str, path: str, params: dict[str, Any] | None = None,
             body: Any = None, raw: bytes | Iterator[bytes] | None = None) -> Any:
        resp = self.open(method, path, params, body, raw)
        payload = resp.read()
        if resp.status in (204, 304) or not payload:
            return None
        return json.loads(payload)

    def websocket(self, path: str, params: dict[str, Any] | None = None) -> Any:
        from websockets.sync.client import connect, unix_connect

        url = quote(path)
        if params:
            url += "?" + urlencode(_params(params))
        try:
            if self.unix_path is not None:
                return unix_connect(self.unix_path, "ws://localhost" + url, max_size=1 << 20,
                                    compression=None, open_timeout=30,
                                    additional_headers=self.auth_headers)
            if self.ssl_context is not None:
                return connect(f"wss://{self.netloc}{url}", ssl=self.ssl_context,
                               max_size=1 << 20, compression=None, open_timeout=30,
                               additional_headers=self.auth_headers)
            return connect(f"ws://{self.netloc}{url}", max_size=1 << 20, compression=None,
                           open_timeout=30, additional_headers=self.auth_headers)
        except (FileNotFoundError, ConnectionRefusedError) as e:
            raise ConnectionFailed(0, f"cannot reach berthd at {self.host}: {e}") from None
        except OSError as e:  # TLS refused, reset, timed out
            raise ConnectionFailed(0, f"cannot talk to berthd at {self.host}: {e}") from None


def _loopback(host: str) -> bool:
    import ipaddress

    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _ssl_context(ca: str | None, cert: str | None, key: str | None) -> ssl.SSLContext:
    """Verify the daemon against ``ca`` (default: the system's CAs) and its name; present a
    client certificate when given one."""
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


def read_frames(resp: http.client.HTTPResponse) -> Iterator[tuple[int, bytes]]:
    """Docker-style multiplexed frames: (stream, data) until the response ends."""
    while True:
        header = _read_exact(resp, 8)
        if not header:
            return
        stream, size = struct.unpack(">BxxxI", header)
        yield stream, _read_exact(resp, size)


def _read_exact(resp: http.client.HTTPResponse, n: int) -> bytes:
    chunks, got = [], 0
    while got < n:
        chunk = resp.read1(n - got) if hasattr(resp, "read1") else resp.read(n - got)
        if not chunk:
            if got:
                raise APIError(0, "the stream from berthd ended in the middle of a frame")
            return b""
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)

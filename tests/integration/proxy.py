"""A fault-injecting HTTP proxy for registry tests: it forwards to a real registry (or answers
alone) and can answer, delay, cut, rewrite or stall any request by rule.
"""

from __future__ import annotations

import http.client
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

from tests.integration.registry import LoopbackServer

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length",
              "proxy-connection", "te", "upgrade"}


@dataclass
class Fault:
    """What the proxy does to one request instead of passing it through untouched."""

    status: int | None = None  # answer with this (and body/headers) instead of forwarding
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # before forwarding
    strip_range: bool = False  # forward without Range, like a server that ignores it
    mutate: Callable[[bytes], bytes] | None = None  # rewrite the body (length follows it)
    cut_after: int | None = None  # send the full Content-Length but only this many bytes
    stall: float = 0.0  # after a cut, hold the connection open this long before dropping
    no_length: bool = False  # a close-delimited body (no Content-Length)
    rewrite: Callable[[list[tuple[str, str]]], list[tuple[str, str]]] | None = None  # headers


Rule = Callable[[str, str, int], Fault | None]  # (method, path, nth time seen) -> fault
Responder = Callable[[str, str, bytes], Fault | None]  # (method, path, body) -> fault


class FaultProxy:
    """A threaded loopback HTTP proxy in front of ``upstream`` (or, without one, a server
    that only answers from its rules). It records every request's headers."""

    def __init__(self, upstream: str | None, rules: list[Rule] | None = None,
                 tls: tuple[Path, Path] | None = None,
                 responders: list[Responder] | None = None) -> None:
        self.upstream = upstream
        self.rules = list(rules or [])
        self.responders = list(responders or [])  # asked first, with the request body
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self._counts: dict[tuple[str, str], int] = {}
        self._lock = threading.Lock()
        self._server = LoopbackServer(self._handler(), tls)
        self.host = self._server.host

    def stop(self) -> None:
        self._server.stop()

    def __enter__(self) -> FaultProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def seen(self, method: str, path_part: str) -> list[dict[str, str]]:
        """Headers of the requests whose path contains ``path_part``."""
        return [h for m, p, h in self.requests if m == method and path_part in p]

    def _decide(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Fault:
        with self._lock:
            self.requests.append((method, path, headers))
            key = (method, path.split("?")[0])
            self._counts[key] = n = self._counts.get(key, 0) + 1
        for responder in self.responders:
            answer = responder(method, path, body)
            if answer is not None:
                return answer
        for rule in self.rules:
            fault = rule(method, path, n)
            if fault is not None:
                return fault
        return Fault()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def handle_one(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers: dict[str, str] = {}
                for k, v in self.headers.items():  # repeated fields (Accept) as one list
                    headers[k] = f"{headers[k]}, {v}" if k in headers else v
                fault = proxy._decide(self.command, self.path, headers, body)
                if fault.delay:
                    time.sleep(fault.delay)
                if fault.status is not None:
                    status, out_headers, data = fault.status, list(fault.headers.items()), \
                        fault.body
                else:
                    status, out_headers, data = self.forward(body, headers, fault)
                if fault.mutate is not None:
                    data = fault.mutate(data)
                if fault.rewrite is not None:
                    out_headers = fault.rewrite(out_headers)
                self.send_response(status)
                for k, v in out_headers:
                    if k.lower() not in HOP_BY_HOP or self.command == "HEAD" \
                            and k.lower() == "content-length":
                        self.send_header(k, v)
                if fault.no_length:
                    self.send_header("Connection", "close")
                    self.close_connection = True
                elif self.command != "HEAD":
                    self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command == "HEAD":
                    return
                if fault.cut_after is None:
                    self.wfile.write(data)
                    return
                self.wfile.write(data[:fault.cut_after])
                self.wfile.flush()
                time.sleep(fault.stall)
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)

            def forward(self, body: bytes, headers: dict[str, str],
                        fault: Fault) -> tuple[int, list[tuple[str, str]], bytes]:
                assert proxy.upstream is not None, "no rule answered and no upstream"
                send = {k: v for k, v in headers.items() if k.lower() not in HOP_BY_HOP
                        and not (fault.strip_range and k.lower() == "range")}
                if body or self.command in ("PUT", "POST", "PATCH"):
                    send["Content-Length"] = str(len(body))
                conn = http.client.HTTPConnection(proxy.upstream, timeout=30)
                try:
                    conn.request(self.command, self.path, body=body or None, headers=send)
                    resp = conn.getresponse()
                    data = resp.read()
                    return resp.status, resp.getheaders(), data
                finally:
                    conn.close()

            do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = handle_one  # noqa: N815

        return Handler

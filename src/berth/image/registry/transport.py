"""One registry host over HTTP: authentication, manual redirects, retries, error mapping.

Redirects are followed by hand (at most ``max_redirects``) so the Authorization header can be
dropped the moment a request leaves the registry's own origin (blob downloads are commonly
redirected to object storage), and so HTTPS is never downgraded to plain HTTP.
"""

from __future__ import annotations

import functools
import ssl
import time
from collections.abc import Callable, Iterable
from contextlib import closing
from pathlib import Path
from typing import Union

import httpcore
import httpx

from berth.errors import NotFound, Unauthorized, UpstreamFailure
from berth.image.registry.auth import Authenticator
from berth.image.registry.config import (
    CredentialsFn,
    RegistryConfig,
    api_host,
    no_credentials,
)
from berth.image.registry.httputil import (
    clean_text,
    error_summary,
    origin_of,
    read_bounded,
    resolve_location,
)

# httpcore reads a response 64 KiB at a time, and each read goes through h11's parser in
# Python: a 300 MB pull made ~4,600 of them, on four threads sharing the GIL.
# Reads of up to 1 MiB cut a cold pull by a quarter (bench/bench_pull.py: 1.08 -> 0.81 s).
READ_SIZE = 1 << 20
httpcore.HTTP11Connection.READ_NUM_BYTES = READ_SIZE

REDIRECTS = frozenset({301, 302, 303, 307, 308})
RETRYABLE = frozenset({408, 429, 500, 502, 503, 504})
IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE"})
Body = Union[bytes, Callable[[], Iterable[bytes]], None]  # noqa: UP007 - a runtime alias


@functools.lru_cache(maxsize=8)
def _tls_context(ca_bundle: Path | None) -> ssl.SSLContext:
    """One verifying context per CA bundle, shared by every client of the process: loading
    the CA certificates costs ~17 ms, which a pull would otherwise pay per registry client."""
    if ca_bundle is not None:
        return ssl.create_default_context(cafile=str(ca_bundle))
    return httpx.create_ssl_context()


def scope(repo: str, *actions: str) -> str:
    return f"repository:{repo}:{','.join(actions)}"


class Transport:
    """Requests to one registry host (as the reference names it: "host:port", "docker.io")."""

    def __init__(self, host: str, config: RegistryConfig | None = None,
                 credentials_for: CredentialsFn | None = None) -> None:
        self.host = host
        self.config = config or RegistryConfig()
        self.origin = f"{self.config.scheme_for(host)}://{api_host(host)}".lower()
        self.http = httpx.Client(
            follow_redirects=False, verify=_tls_context(self.config.ca_bundle),
            trust_env=False,
            timeout=httpx.Timeout(self.config.timeout, connect=self.config.connect_timeout),
            headers={"User-Agent": self.config.user_agent})
        creds = (credentials_for or no_credentials)(host)
        self.auth = Authenticator(host, self.origin, creds, self.http, self.config)

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> Transport:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def url(self, path: str) -> str:
        return self.origin + path

    def sleep_before(self, attempt: int) -> None:
        """Exponential back-off before retry number ``attempt`` (1 = the first retry)."""
        delay = min(self.config.backoff * (2 ** (attempt - 1)), self.config.max_backoff)
        time.sleep(delay)

    def request(self, method: str, url: str, *, scopes: Iterable[str], what: str,
                headers: dict[str, str] | None = None, content: Body = None,
                ok: Iterable[int] = (200,), retry: bool | None = None) -> httpx.Response:
        """Send with auth, redirects and retries; return the streamed response (the caller
        closes it) if its status is in ``ok``, else raise the matching Berth error."""
        if not url.startswith(("http://", "https://")):
            url = self.url(url)
        ok = frozenset(ok)
        retry = method in IDEMPOTENT if retry is None else retry
        attempts = self.config.attempts if retry else 1
        for attempt in range(attempts):
            if attempt:
                self.sleep_before(attempt)
            try:
                resp = self._authed(method, url, frozenset(scopes), what, headers or {},
                                    content)
            except httpx.TransportError as exc:
                if attempt + 1 < attempts:
                    continue
                raise UpstreamFailure(f"cannot reach registry {self.host} ({what}): "
                                      f"{clean_text(str(exc)) or type(exc).__name__}") from None
            if resp.status_code in ok:
                return resp
            if resp.status_code in RETRYABLE and attempt + 1 < attempts:
                resp.close()
                continue
            self.raise_for(resp, what)
        raise AssertionError("unreachable")

    def get_bytes(self, url: str, *, scopes: Iterable[str], what: str, limit: int,
                  headers: dict[str, str] | None = None,
                  raw: bool = False) -> tuple[bytes, httpx.Headers]:
        """GET a small body (bounded) with its headers; a connection dropped while reading
        the body is retried like one dropped before the answer."""
        attempts = self.config.attempts
        for attempt in range(attempts):
            if attempt:
                self.sleep_before(attempt)
            resp = self.request("GET", url, scopes=scopes, what=what, headers=headers)
            try:
                with closing(resp):
                    return read_bounded(resp, limit, what, raw=raw), resp.headers
            except httpx.TransportError as exc:
                if attempt + 1 >= attempts:
                    raise UpstreamFailure(f"registry {self.host}: {what}: connection failed "
                                          f"while reading: {type(exc).__name__}") from None
        raise AssertionError("unreachable")

    def raise_for(self, resp: httpx.Response, what: str) -> None:
        """Raise the Berth error for an unwanted response (and close it)."""
        try:
            status = resp.status_code
            summary = error_summary(resp, self.config.limits.max_error_body)
            detail = f" ({summary})" if summary else ""
            if status == 404:
                raise NotFound(f"registry {self.host}: {what}: not found{detail}")
            if status == 403:
                raise Unauthorized(f"registry {self.host} denied access: {what}{detail}")
            if status == 401:
                raise self.auth.refused(what, resp.headers.get_list("www-authenticate"))
            if status == 429:
                raise UpstreamFailure(f"registry {self.host} is rate limiting requests: "
                                      f"{what}{detail}")
            if status >= 500:
                raise UpstreamFailure(f"registry {self.host} failed: {what}: HTTP {status}"
                                      f"{detail}")
            raise UpstreamFailure(f"registry {self.host} refused: {what}: HTTP {status}{detail}")
        finally:
            resp.close()

    def _authed(self, method: str, url: str, scopes: frozenset[str], what: str,
                headers: dict[str, str], content: Body) -> httpx.Response:
        auth = self.auth.header(scopes)
        resp, final_url = self._send(method, url, headers, auth, content, what)
        if resp.status_code != 401 or origin_of(final_url) != self.origin:
            return resp  # a 401 from a redirect target is never answered with our credentials
        challenge = resp.headers.get_list("www-authenticate")
        resp.close()
        auth = self.auth.respond(challenge, scopes, what)
        resp, _ = self._send(method, url, headers, auth, content, what)
        return resp

    def _send(self, method: str, url: str, headers: dict[str, str], auth: str | None,
              content: Body, what: str) -> tuple[httpx.Response, str]:
        follow = method in ("GET", "HEAD")
        for _ in range(self.config.limits.max_redirects + 1):
            hdrs = dict(headers)
            if auth is not None and origin_of(url) == self.origin:
                hdrs["Authorization"] = auth
            body = content() if callable(content) else content
            req = self.http.build_request(method, url, headers=hdrs, content=body)
            resp = self.http.send(req, stream=True)
            if not (follow and resp.status_code in REDIRECTS):
                return resp, url
            location = resp.headers.get("location")
            resp.close()
            new = resolve_location(url, location, f"registry {self.host}: {what}")
            if url.startswith("https:") and not new.startswith("https:"):
                raise UpstreamFailure(f"registry {self.host}: {what}: refusing a redirect from "
                                      "HTTPS to plain HTTP")
            url = new
        raise UpstreamFailure(f"registry {self.host}: {what}: more than "
                              f"{self.config.limits.max_redirects} redirects")

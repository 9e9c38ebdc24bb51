"""Registry authentication: anonymous, Basic, and the Bearer token flow.

Credentials go only to the registry host that asked for them and to the token realm its
challenge names; tokens are cached per set of scopes until shortly before they expire.
"""

from __future__ import annotations

import base64
import threading
import time
import urllib.parse
from dataclasses import dataclass

import httpx

from berth import jsontext
from berth.errors import Unauthorized, UpstreamFailure
from berth.image.registry.challenge import Challenge, ChallengeError, parse_challenges
from berth.image.registry.config import Credentials, RegistryConfig
from berth.image.registry.httputil import read_bounded

DEFAULT_TOKEN_TTL = 60  # seconds, as the token spec says when expires_in is missing
EXPIRY_MARGIN = 10
MAX_TOKEN_LEN = 64 << 10


@dataclass(frozen=True)
class _Token:
    value: str
    expires: float


def basic_header(creds: Credentials) -> str:
    raw = f"{creds.username}:{creds.password}".encode()
    return "Basic " + base64.b64encode(raw).decode()


def _printable_token(value: object) -> str | None:
    if not isinstance(value, str) or not value or len(value) > MAX_TOKEN_LEN:
        return None
    if any(not (0x21 <= ord(c) <= 0x7E) for c in value):
        return None
    return value


class Authenticator:
    """Decides the Authorization header for requests to one registry host."""

    def __init__(self, host: str, origin: str, creds: Credentials | None,
                 http: httpx.Client, config: RegistryConfig) -> None:
        self.host = host  # as the user names it, for messages
        self.origin = origin  # "https://host:port": the only place Basic credentials go
        self.creds = creds
        self._http = http
        self._config = config
        self._scheme: str | None = None  # learned from the first challenge
        self._bearer: Challenge | None = None
        self._tokens: dict[frozenset[str], _Token] = {}
        self._lock = threading.Lock()

    def header(self, scopes: frozenset[str]) -> str | None:
        """The header to send before any challenge for these scopes (None: try anonymously)."""
        with self._lock:
            if self._scheme == "basic" and self.creds is not None:
                return basic_header(self.creds)
            if self._scheme == "bearer":
                tok = self._tokens.get(scopes)
                if tok is not None and tok.expires > time.monotonic():
                    return "Bearer " + tok.value
        return None

    def respond(self, headers: list[str], scopes: frozenset[str], what: str) -> str:
        """The header to retry with after a 401 carrying ``headers`` (WWW-Authenticate)."""
        try:
            challenges = parse_challenges(headers)
        except ChallengeError as exc:
            raise UpstreamFailure(f"registry {self.host} sent a malformed authentication "
                                  f"challenge for {what}: {exc}") from None
        by_scheme = {c.scheme: c for c in challenges}
        if "bearer" in by_scheme:
            ch = by_scheme["bearer"]
            wanted = frozenset(scopes | set(ch.scopes))
            token = self._fetch_token(ch, wanted, what)
            with self._lock:
                self._scheme, self._bearer = "bearer", ch
                self._tokens[scopes] = token
            return "Bearer " + token.value
        if "basic" in by_scheme:
            if self.creds is None:
                raise Unauthorized(f"registry {self.host} requires a login for {what} "
                                   "(no credentials are saved for it)")
            with self._lock:
                self._scheme = "basic"
            return basic_header(self.creds)
        schemes = ", ".join(sorted(by_scheme)) or "none"
        raise Unauthorized(f"registry {self.host} asks for an authentication scheme Berth "
                           f"does not support for {what} ({schemes})")

    def _realm_url(self, ch: Challenge, what: str) -> str:
        realm = ch.realm
        if not realm:
            raise UpstreamFailure(f"registry {self.host}: bearer challenge without a realm")
        parts = urllib.parse.urlsplit(realm)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.username:
            raise UpstreamFailure(f"registry {self.host}: unusable token realm for {what}")
        if parts.scheme == "http" and self.origin.startswith("https:") \
                and parts.netloc not in self._config.insecure:
            raise UpstreamFailure(f"registry {self.host} served over HTTPS names a plain HTTP "
                                  f"token realm ({parts.netloc}); refusing to send credentials")
        return realm

    def _fetch_token(self, ch: Challenge, scopes: frozenset[str], what: str) -> _Token:
        realm = self._realm_url(ch, what)
        params: list[tuple[str, str]] = []
        if ch.service:
            params.append(("service", ch.service))
        params.extend(("scope", s) for s in sorted(scopes))
        headers = {}
        if self.creds is not None:
            headers["Authorization"] = basic_header(self.creds)
            params.append(("account", self.creds.username))
        sep = "&" if urllib.parse.urlsplit(realm).query else "?"
        url = realm + sep + urllib.parse.urlencode(params)
        try:
            with self._http.stream("GET", url, headers=headers) as resp:
                if resp.status_code in (401, 403):
                    raise self._refused(what)
                if resp.status_code != 200:
                    raise UpstreamFailure(f"token service of registry {self.host} answered "
                                          f"HTTP {resp.status_code} for {what}")
                body = read_bounded(resp, self._config.limits.max_token_body, "token response")
        except httpx.HTTPError as exc:
            raise UpstreamFailure(f"cannot reach the token service of registry {self.host}: "
                                  f"{type(exc).__name__}") from None
        try:
            doc = jsontext.loads(body)
        except ValueError:
            doc = None
        if not isinstance(doc, dict):
            raise UpstreamFailure(f"token service of registry {self.host} sent no JSON object")
        value = _printable_token(doc.get("token")) or _printable_token(doc.get("access_token"))
        if value is None:
            raise UpstreamFailure(f"token service of registry {self.host} sent no usable token")
        ttl = doc.get("expires_in")
        if not isinstance(ttl, int) or isinstance(ttl, bool) or ttl <= 0:
            ttl = DEFAULT_TOKEN_TTL
        ttl = min(max(ttl, DEFAULT_TOKEN_TTL), 24 * 3600)
        return _Token(value, time.monotonic() + ttl - EXPIRY_MARGIN)

    def _refused(self, what: str) -> Unauthorized:
        if self.creds is None:
            return Unauthorized(f"registry {self.host} requires a login for {what} "
                                "(no credentials are saved for it)")
        return Unauthorized(f"registry {self.host} refused the credentials of user "
                            f"{self.creds.username!r} for {what}")

    def refused(self, what: str, headers: list[str]) -> Unauthorized:
        """The error for a 401 that came back even after authenticating."""
        try:
            errors = {c.params.get("error", "") for c in parse_challenges(headers)}
        except ChallengeError:
            errors = set()
        if "insufficient_scope" in errors and self.creds is not None:
            return Unauthorized(f"registry {self.host} does not give user "
                                f"{self.creds.username!r} access to {what} (insufficient scope)")
        return self._refused(what)

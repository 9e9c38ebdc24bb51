"""Small HTTP helpers: bounded reads, registry error bodies, safe Location handling."""

from __future__ import annotations

import urllib.parse

import httpx

from berth import jsontext
from berth.errors import UnsafeContent, UpstreamFailure

MAX_MESSAGE = 200


def clean_text(text: str, limit: int = MAX_MESSAGE) -> str:
    """Text from a remote party, made safe to put in one line of an error message."""
    out = "".join(c if c.isprintable() else "?" for c in text)
    return out if len(out) <= limit else out[:limit] + "..."


def read_bounded(resp: httpx.Response, limit: int, what: str, raw: bool = False) -> bytes:
    """The body of a streamed response, refusing (without reading it all) past ``limit``.
    ``raw``: the bytes as sent, without undoing any Content-Encoding (what a digest covers)."""
    length = resp.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        raise UnsafeContent(f"{what} is {int(length)} bytes, more than the limit of {limit}")
    buf = bytearray()
    for chunk in resp.iter_raw() if raw else resp.iter_bytes():
        buf += chunk
        if len(buf) > limit:
            raise UnsafeContent(f"{what} is larger than the limit of {limit} bytes")
    return bytes(buf)


def error_summary(resp: httpx.Response, limit: int) -> str:
    """"CODE: message" from a registry's JSON error body (or '' if there is none)."""
    try:
        body = read_bounded(resp, limit, "error body")
    except (UnsafeContent, httpx.HTTPError):
        return ""
    try:
        doc = jsontext.loads(body)  # a body of nested brackets must not overflow the parser
    except ValueError:
        return ""
    errors = doc.get("errors") if isinstance(doc, dict) else None
    if not isinstance(errors, list):
        return ""
    parts = []
    for err in errors[:3]:
        if isinstance(err, dict):
            code, msg = err.get("code"), err.get("message")
            parts.append(": ".join(str(x) for x in (code, msg) if isinstance(x, str) and x))
    return clean_text("; ".join(p for p in parts if p))


def error_codes(summary: str) -> set[str]:
    return {part.split(":", 1)[0].strip() for part in summary.split(";") if part.strip()}


def origin_of(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def resolve_location(base: str, location: str | None, what: str) -> str:
    """An absolute URL for a Location header (which may be relative), checked for sanity."""
    if not location:
        raise UpstreamFailure(f"{what}: the registry sent no Location header")
    if len(location) > 8192 or any(ord(c) < 0x21 or ord(c) > 0x7E for c in location):
        raise UpstreamFailure(f"{what}: the registry sent an unusable Location header")
    try:
        url = urllib.parse.urljoin(base, location)
        parts = urllib.parse.urlsplit(url)
        usable = parts.scheme in ("http", "https") and bool(parts.hostname) \
            and not parts.username and not parts.password
        parts.port  # noqa: B018 - raises for a port that is not a number in 0..65535
    except ValueError:  # urllib refuses some netlocs ("http://[x/": "Invalid IPv6 URL")
        usable = False
    if not usable:
        raise UpstreamFailure(f"{what}: the registry sent an unusable Location "
                              f"({clean_text(location, 80)})")
    return url


def add_query(url: str, **params: str) -> str:
    """``url`` with ``params`` appended, keeping the query it already has (upload state)."""
    parts = urllib.parse.urlsplit(url)
    extra = urllib.parse.urlencode(params)
    query = f"{parts.query}&{extra}" if parts.query else extra
    return urllib.parse.urlunsplit(parts._replace(query=query))

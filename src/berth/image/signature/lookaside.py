"""Lookaside signature storage (containers-registries.d(5), "simple signing" signatures).

Signatures of an image live beside the registry, at

    <base>/<repository path>@<algorithm>=<hex>/signature-<N>      N = 1, 2, ...

where the repository path has no host ("library/busybox", "team/app"). Readers stop at the
first missing index. Reading works from ``file://`` and ``http(s)://`` bases; writing only to a
``file://`` (staging) base.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import urllib.parse
from pathlib import Path

import httpx

from berth.errors import InvalidArgument, UnsafeContent, UpstreamFailure
from berth.image.reference import Reference

from .common import MAX_SIGNATURE_SIZE, MAX_SIGNATURES, is_valid_digest

HTTP_TIMEOUT = 30.0


def validate_base_url(url: str, *, writable: bool = False) -> str:
    """Refuse anything but file:///absolute/dir and (for reading) http(s)://host/..."""
    if not isinstance(url, str) or not url:
        raise InvalidArgument("lookaside URL must be a non-empty string")
    # Control characters and lone surrogates can name no file and no host; refused here, they
    # would otherwise surface as ValueError/UnicodeError from open() or httpx much later.
    if not url.isprintable():
        raise InvalidArgument(f"lookaside URL {url!r}: contains a control character")
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError as e:  # "http://[::1" and NFKC-ambiguous hosts
        raise InvalidArgument(f"lookaside URL {url!r}: {e}") from None
    # Signature paths are appended to the base: after a "?" or "#" they would name no file.
    if parts.query or parts.fragment or "?" in url or "#" in url:
        raise InvalidArgument(f"lookaside URL {url!r}: no query or fragment allowed")
    if parts.scheme == "file":
        if parts.netloc not in ("", "localhost") or not parts.path.startswith("/"):
            raise InvalidArgument(f"lookaside URL {url!r}: expected file:///absolute/path")
        if not urllib.parse.unquote(parts.path).isprintable():
            raise InvalidArgument(f"lookaside URL {url!r}: the path has a control character")
        return url
    if parts.scheme in ("http", "https") and not writable:
        if not parts.hostname:
            raise InvalidArgument(f"lookaside URL {url!r}: missing host")
        try:
            httpx.URL(url)
        except (httpx.InvalidURL, ValueError) as e:  # IDNA errors are UnicodeErrors
            raise InvalidArgument(f"lookaside URL {url!r}: {e}") from None
        return url
    allowed = "file://" if writable else "file://, http:// or https://"
    raise InvalidArgument(f"lookaside URL {url!r}: scheme must be {allowed}")


def _suffix(ref: Reference, manifest_digest: str) -> str:
    if not is_valid_digest(manifest_digest):
        raise InvalidArgument(f"invalid manifest digest: {manifest_digest!r}")
    algorithm, hex_part = manifest_digest.split(":", 1)
    if any(part in ("", ".", "..") for part in ref.repository.split("/")):
        raise InvalidArgument(f"invalid repository path {ref.repository!r}")
    return f"{ref.repository}@{algorithm}={hex_part}"


def signature_url(base: str, ref: Reference, manifest_digest: str, index: int) -> str:
    """The URL of signature number ``index`` (from 1) of the image in a lookaside store."""
    if index < 1:
        raise InvalidArgument("signature indexes start at 1")
    validate_base_url(base)
    return f"{base.rstrip('/')}/{_suffix(ref, manifest_digest)}/signature-{index}"


def _file_path(url: str) -> Path:
    return Path(urllib.parse.unquote(urllib.parse.urlsplit(url).path))


def _read_file(path: Path, max_size: int) -> bytes | None:
    try:
        with open(path, "rb") as f:
            data = f.read(max_size + 1)
    except FileNotFoundError:
        return None
    except OSError as e:
        raise UpstreamFailure(f"cannot read signature {str(path)!r}: {e.strerror or e}") from None
    if len(data) > max_size:
        raise UnsafeContent(f"signature {str(path)!r} is larger than {max_size} bytes")
    return data


def _read_http(client: httpx.Client, url: str, max_size: int) -> bytes | None:
    try:
        with client.stream("GET", url) as resp:
            if resp.status_code == 404:
                return None
            if resp.status_code != 200:
                raise UpstreamFailure(f"lookaside server answered {resp.status_code} for {url}")
            data = bytearray()
            for chunk in resp.iter_bytes():
                data += chunk
                if len(data) > max_size:
                    raise UnsafeContent(f"signature {url} is larger than {max_size} bytes")
            return bytes(data)
    except (httpx.HTTPError, httpx.InvalidURL, UnicodeError) as e:
        # UnicodeError: httpx lets IDNA errors through from a redirect to "http://xn--a.com/"
        raise UpstreamFailure(f"cannot fetch signature {url}: {e}") from None


def read_signatures(base: str, ref: Reference, manifest_digest: str, *,
                    max_count: int = MAX_SIGNATURES, max_size: int = MAX_SIGNATURE_SIZE,
                    client: httpx.Client | None = None) -> list[bytes]:
    """Every signature stored for the image, in index order (bounded in count and size)."""
    validate_base_url(base)
    scheme = urllib.parse.urlsplit(base).scheme
    out: list[bytes] = []
    with contextlib.ExitStack() as stack:
        http = client
        if scheme != "file" and http is None:
            http = stack.enter_context(httpx.Client(timeout=HTTP_TIMEOUT,
                                                    follow_redirects=True))
        for index in range(1, max_count + 2):
            url = signature_url(base, ref, manifest_digest, index)
            if http is None:
                data = _read_file(_file_path(url), max_size)
            else:
                data = _read_http(http, url, max_size)
            if data is None:
                return out
            if index > max_count:
                raise UnsafeContent(f"more than {max_count} signatures for {ref} at {base}")
            out.append(data)
    return out


def _image_dir(staging: str, ref: Reference, manifest_digest: str) -> Path:
    validate_base_url(staging, writable=True)
    root = _file_path(staging)
    return root / _suffix(ref, manifest_digest)


def _write_atomic(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".signature-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _check_blob(data: bytes) -> None:
    if not isinstance(data, bytes | bytearray) or not data:
        raise InvalidArgument("a signature must be non-empty bytes")
    if len(data) > MAX_SIGNATURE_SIZE:
        raise InvalidArgument(f"a signature is larger than {MAX_SIGNATURE_SIZE} bytes")


def write_signatures(staging: str, ref: Reference, manifest_digest: str,
                     signatures: list[bytes]) -> list[Path]:
    """Store exactly ``signatures`` as signature-1..N, removing any later leftovers."""
    if len(signatures) > MAX_SIGNATURES:
        raise InvalidArgument(f"more than {MAX_SIGNATURES} signatures")
    for sig in signatures:
        _check_blob(sig)
    directory = _image_dir(staging, ref, manifest_digest)
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for index, sig in enumerate(signatures, start=1):
        path = directory / f"signature-{index}"
        _write_atomic(path, bytes(sig))
        paths.append(path)
    index = len(signatures) + 1
    while (directory / f"signature-{index}").exists():
        (directory / f"signature-{index}").unlink()
        index += 1
    return paths


def add_signature(staging: str, ref: Reference, manifest_digest: str,
                  signature: bytes) -> Path:
    """Append one signature after those already stored; returns its path."""
    _check_blob(signature)
    directory = _image_dir(staging, ref, manifest_digest)
    directory.mkdir(parents=True, exist_ok=True)
    for index in range(1, MAX_SIGNATURES + 1):
        path = directory / f"signature-{index}"
        if not path.exists():
            _write_atomic(path, bytes(signature))
            return path
    raise InvalidArgument(f"already {MAX_SIGNATURES} signatures for {ref}")

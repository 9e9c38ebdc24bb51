"""Simple-signing signatures stored in the registry itself: the X-Registry-Supports-Signatures
API extension (OpenShift's integrated registry; what containers/image and skopeo use when a
registry's /v2/ answer carries ``X-Registry-Supports-Signatures: 1``).

    GET /extensions/v2/<repo>/signatures/<digest>   {"signatures": [{"schemaVersion": 2,
                                                      "type": "atomic", "name": "<digest>@<id>",
                                                      "content": "<base64>"}, ...]}
    PUT /extensions/v2/<repo>/signatures/<digest>   one such object: adds a signature

The list comes from whoever runs the registry: it is bounded in size and count, entries of
another schema or type are skipped (as containers/image does), and anything malformed is a
refusal naming the registry. The signatures themselves are still checked by the policy.
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets

from berth import jsontext
from berth.errors import NotFound, UnsafeContent, UpstreamFailure
from berth.image.registry.client import RegistryClient, check_digest, check_repo
from berth.image.registry.transport import scope
from berth.image.signature.common import MAX_SIGNATURE_SIZE, MAX_SIGNATURES

SCHEMA_VERSION = 2
TYPE_ATOMIC = "atomic"
# A list holds at most MAX_SIGNATURES signatures of MAX_SIGNATURE_SIZE, base64-encoded.
MAX_LIST_BYTES = 8 << 20


def _path(repo: str, digest: str) -> str:
    return f"/extensions/v2/{check_repo(repo)}/signatures/{check_digest(digest)}"


def read_attached(client: RegistryClient, repo: str, digest: str) -> list[bytes]:
    """The simple-signing signatures the registry keeps for manifest ``digest`` of ``repo``."""
    return [content for _, content in _entries(client, repo, digest)]


def _entries(client: RegistryClient, repo: str, digest: str) -> list[tuple[str, bytes]]:
    what = f"signatures of {client.where(repo, digest)}"
    try:
        data, _ = client.get_bytes(_path(repo, digest), scopes=[scope(repo, "pull")],
                                   what=what, limit=MAX_LIST_BYTES)
    except NotFound:
        return []
    return parse_list(data, f"registry {client.host}: {what}")


def parse_list(data: bytes, where: str) -> list[tuple[str, bytes]]:
    """(name, content) of each atomic schema-2 signature in an extension list document."""
    try:
        doc = jsontext.loads(data)
    except ValueError as e:  # nesting too deep included
        raise UpstreamFailure(f"{where}: the answer is not JSON ({e})") from None
    items = doc.get("signatures") if isinstance(doc, dict) else None
    if items is None and isinstance(doc, dict):
        items = []
    if not isinstance(items, list):
        raise UpstreamFailure(f"{where}: expected {{\"signatures\": [...]}}")
    out: list[tuple[str, bytes]] = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise UpstreamFailure(f"{where}: signatures[{i}] is not an object")
        if item.get("schemaVersion") != SCHEMA_VERSION or item.get("type") != TYPE_ATOMIC:
            continue  # another kind of signature: not ours to judge
        name, content = item.get("name"), item.get("content")
        if not isinstance(name, str) or not isinstance(content, str):
            raise UpstreamFailure(f"{where}: signatures[{i}] lacks a name or content string")
        if len(content) > MAX_SIGNATURE_SIZE * 4 // 3 + 4:
            raise UnsafeContent(f"{where}: signatures[{i}] is larger than "
                                f"{MAX_SIGNATURE_SIZE} bytes")
        try:
            blob = base64.b64decode(content, validate=True)
        except (binascii.Error, ValueError):
            raise UpstreamFailure(f"{where}: signatures[{i}].content is not base64") from None
        if not blob:
            raise UpstreamFailure(f"{where}: signatures[{i}] is empty")
        out.append((name, blob))
        if len(out) > MAX_SIGNATURES:
            raise UnsafeContent(f"{where}: more than {MAX_SIGNATURES} signatures")
    return out


def attach(client: RegistryClient, repo: str, digest: str, signature: bytes) -> str:
    """Add ``signature`` to the registry's list for ``digest`` (unless it is already there);
    return the signature's name there."""
    existing = _entries(client, repo, digest)
    for name, content in existing:
        if content == signature:
            return name
    if len(existing) >= MAX_SIGNATURES:
        raise UpstreamFailure(f"registry {client.host} already keeps {MAX_SIGNATURES} "
                              f"signatures for {client.where(repo, digest)}")
    taken = {name for name, _ in existing}
    name = f"{digest}@{secrets.token_hex(16)}"
    while name in taken:  # 128 random bits: only a hostile registry makes this loop
        name = f"{digest}@{secrets.token_hex(16)}"
    body = json.dumps({"schemaVersion": SCHEMA_VERSION, "type": TYPE_ATOMIC, "name": name,
                       "content": base64.b64encode(signature).decode()}).encode()
    client.request("PUT", _path(repo, digest), scopes=[scope(repo, "pull", "push")],
                   what=f"store a signature of {client.where(repo, digest)}",
                   headers={"Content-Type": "application/json"}, content=body,
                   ok=(200, 201, 204)).close()
    return name

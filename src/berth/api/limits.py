"""Request bodies are bounded: 1 MiB for JSON, except the routes that take an archive.

A body announced too large is refused before it is read; any other body is read first (up to
the bound) and handed on whole, so an endless chunked body is cut off at the bound too. Either
way the answer is a 413 naming the limit.
"""

from __future__ import annotations

import json
import re
from typing import Any

MAX_JSON_BODY = 1 << 20
# Routes whose body is a tarball (bounded by their own, larger limits).
UNBOUNDED = ("/v1/images/import",)
# The Docker API's (unversioned paths): docker load, docker import's POST /images/create,
# and the build contexts of both APIs.
UNBOUNDED_EXACT = frozenset({"/images/load", "/images/create", "/build", "/v1/build"})
# docker cp's upload (Docker API) and the native one: PUT /[v1/]containers/{ref}/archive.
UNBOUNDED_PATTERN = re.compile(r"^(/v1)?/containers/[^/]+/archive$")


class BodyLimit:
    def __init__(self, app: Any, limit: int = MAX_JSON_BODY) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or path.startswith(UNBOUNDED) or path in UNBOUNDED_EXACT \
                or UNBOUNDED_PATTERN.match(path):
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers") or []:
            if name == b"content-length" and (not value.isdigit() or int(value) > self.limit):
                await self._refuse(send)
                return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                await self.app(scope, _replay([message]), send)
                return
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.limit:
                await self._refuse(send)
                return
            if not message.get("more_body"):
                break
        await self.app(scope, _replay([{"type": "http.request", "body": b"".join(chunks),
                                        "more_body": False}], receive), send)

    async def _refuse(self, send: Any) -> None:
        body = json.dumps({"message": f"request body larger than {self.limit} bytes"}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


def _replay(messages: list[dict[str, Any]], then: Any = None) -> Any:
    """A receive() that gives these messages, then defers to ``then`` (disconnects)."""
    pending = list(messages)

    async def receive() -> dict[str, Any]:
        if pending:
            return pending.pop(0)
        if then is not None:
            return await then()
        return {"type": "http.disconnect"}

    return receive

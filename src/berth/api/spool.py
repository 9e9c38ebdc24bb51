"""A request body too large to hold in memory, spooled to a temp file in Berth's own tmp dir
(in memory while small) with a bound, for the routes that take tarballs."""

from __future__ import annotations

import asyncio
import tempfile
from typing import IO

from starlette.requests import Request

from berth.errors import InvalidArgument

IN_MEMORY = 8 << 20


async def spool_body(request: Request, tmp: str, *, limit: int, too_large: str,
                     empty: str) -> IO[bytes]:
    """The body, rewound; a 400 with ``too_large`` past ``limit`` bytes, ``empty`` if none."""
    spool = tempfile.SpooledTemporaryFile(max_size=IN_MEMORY, dir=tmp)  # noqa: SIM115
    try:
        total = 0
        async for chunk in request.stream():
            total += len(chunk)
            if total > limit:
                raise InvalidArgument(too_large)
            await asyncio.to_thread(spool.write, chunk)
        if total == 0:
            raise InvalidArgument(empty)
        spool.seek(0)
    except BaseException:
        spool.close()
        raise
    return spool  # type: ignore[return-value]

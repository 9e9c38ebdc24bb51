"""Pure pieces of Docker's stream endpoints: framing, log timestamps, params (the detach
keys are berth.detachkeys, which the CLI uses too).

Kept apart from the routes so they can be tested without a daemon.
"""

from __future__ import annotations

import struct
from datetime import UTC, datetime

from berth.errors import InvalidArgument

STDIN, STDOUT, STDERR = 0, 1, 2
STREAM_IDS = {"stdout": STDOUT, "stderr": STDERR}


def frame(stream: int, data: bytes) -> bytes:
    """Docker's multiplexed frame: stream id, three zero bytes, big-endian length, data."""
    return struct.pack(">BxxxI", stream, len(data)) + data


def docker_timestamp(text: str) -> str:
    """conmon's RFC 3339 time (any offset, up to nanoseconds) as dockerd prints log
    timestamps: UTC, nine fraction digits, "Z"."""
    core = text.strip().replace("Z", "+00:00")
    head, frac, tz = core, "", ""
    if "." in core:
        head, _, rest = core.partition(".")
        digits = len(rest) - len(rest.lstrip("0123456789"))
        frac, tz = rest[:digits], rest[digits:]
    else:
        for sign in ("+", "-"):
            at = core.rfind(sign)
            if at > 10:  # past the date's own dashes
                head, tz = core[:at], core[at:]
                break
    try:
        moment = datetime.fromisoformat(head + (tz or "+00:00")).astimezone(UTC)
    except ValueError:
        return text  # not a time we understand: pass it on as written
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + (frac + "000000000")[:9] + "Z"


def parse_tail(text: str | None) -> int | None:
    """Docker's ``tail``: "all" (or nothing, or a negative number) means every line."""
    value = (text or "all").strip()
    if value == "all":
        return None
    try:
        number = int(value)
    except ValueError:
        raise InvalidArgument(f"invalid value for tail: {text!r}: use a number or 'all'") \
            from None
    return None if number < 0 else number


def parse_size(h: str | None, w: str | None) -> tuple[int, int]:
    """resize's ``h`` and ``w`` query parameters."""
    try:
        rows, cols = int(h or ""), int(w or "")
    except ValueError:
        raise InvalidArgument(f"resize: h and w must be numbers (got h={h!r}, w={w!r})") \
            from None
    if not (0 <= rows < 10_000 and 0 <= cols < 10_000):
        raise InvalidArgument("resize: h and w must be between 0 and 9999")
    return rows, cols

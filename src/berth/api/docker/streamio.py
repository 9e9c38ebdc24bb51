"""Pure pieces of Docker's stream endpoints: framing, detach keys, log timestamps, params.

Kept apart from the routes so they can be tested without a daemon.
"""

from __future__ import annotations

import struct
from datetime import UTC, datetime

from berth.errors import InvalidArgument

STDIN, STDOUT, STDERR = 0, 1, 2
STREAM_IDS = {"stdout": STDOUT, "stderr": STDERR}
DEFAULT_DETACH_KEYS = "ctrl-p,ctrl-q"
# ctrl- plus one of these gives the control code of its position (ctrl-@ = 0 ... ctrl-_ = 31).
_CTRL_SPECIALS = {"@": 0, "[": 27, "\\": 28, "]": 29, "^": 30, "_": 31}


def frame(stream: int, data: bytes) -> bytes:
    """Docker's multiplexed frame: stream id, three zero bytes, big-endian length, data."""
    return struct.pack(">BxxxI", stream, len(data)) + data


def parse_detach_keys(text: str | None) -> bytes:
    """Docker's detach key notation ("ctrl-p,ctrl-q", "a", "ctrl-\\\\") as the bytes typed.
    An empty value means the default."""
    if not text:
        text = DEFAULT_DETACH_KEYS
    out = bytearray()
    for key in text.split(","):
        low = key.strip().lower()
        if len(key) == 1:
            out.append(ord(key))
        elif low.startswith("ctrl-") and len(low) == 6:
            ch = low[5]
            if "a" <= ch <= "z":
                out.append(ord(ch) - ord("a") + 1)
            elif ch in _CTRL_SPECIALS:
                out.append(_CTRL_SPECIALS[ch])
            else:
                raise InvalidArgument(f"Invalid detach keys ({text}) provided: unknown "
                                      f"key {key!r}")
        else:
            raise InvalidArgument(f"Invalid detach keys ({text}) provided: use one "
                                  "character or ctrl-<value>, separated by commas")
    return bytes(out)


class DetachScanner:
    """Watches client input for the detach sequence. ``feed`` returns what may be passed on
    and whether the sequence was typed; a partial match is held back until it is decided."""

    def __init__(self, keys: bytes) -> None:
        self.keys = keys
        self._held = b""

    def feed(self, data: bytes) -> tuple[bytes, bool]:
        if not self.keys:
            return data, False
        out = bytearray()
        for byte in data:
            candidate = self._held + bytes([byte])
            if self.keys.startswith(candidate):
                if candidate == self.keys:
                    self._held = b""
                    return bytes(out), True
                self._held = candidate
                continue
            # Not the sequence after all: release what was held, then look at this byte anew.
            out += self._held
            self._held = b""
            if self.keys[:1] == bytes([byte]):
                self._held = bytes([byte])
                if self.keys == self._held:
                    self._held = b""
                    return bytes(out), True
            else:
                out.append(byte)
        return bytes(out), False

    def flush(self) -> bytes:
        """Whatever was held when input ended."""
        held, self._held = self._held, b""
        return held


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

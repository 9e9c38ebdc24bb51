"""Sizes as people write them: "64m", "1g", "512k", "1.5G", "1048576" (binary units, as
docker's RAMInBytes). Shared by the CLI, the Docker API and berthd's own flags."""

from __future__ import annotations

import re

_UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}
_SIZE_RE = re.compile(r"^([0-9]+)(?:\.([0-9]+))?\s*([bkmgtp]?)i?b?$", re.IGNORECASE)
INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1  # Go's int64: Docker's sizes, durations, ids
MAX_SIZE = INT64_MAX
_MAX_DIGITS = 40  # far beyond MAX_SIZE in any unit; keeps int() of hostile text cheap


def fits_int64(value: int | float) -> bool:
    return INT64_MIN <= value <= INT64_MAX


def bytes_of(text: str) -> int | None:
    """The size in bytes (a fraction of a unit rounds down); None when the text is not a
    size or does not fit an int64."""
    m = _SIZE_RE.match(text.strip())
    if not m:
        return None
    whole, frac = m.group(1).lstrip("0") or "0", (m.group(2) or "")[:_MAX_DIGITS]
    if len(whole) > _MAX_DIGITS:
        return None
    # Exact arithmetic: a float would lose bytes above 2**53 and overflow on long digits.
    scale = _UNITS[m.group(3).lower()]
    size = int(whole) * scale + int(frac or "0") * scale // 10 ** len(frac)
    return size if size <= MAX_SIZE else None

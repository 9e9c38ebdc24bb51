"""Sizes as people write them: "64m", "1g", "512k", "1.5G", "1048576" (binary units, as
docker's RAMInBytes). Shared by the CLI, the Docker API and berthd's own flags."""

from __future__ import annotations

import re

_UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}
_SIZE_RE = re.compile(r"^([0-9]+(?:\.[0-9]+)?)\s*([bkmgtp]?)i?b?$", re.IGNORECASE)


def bytes_of(text: str) -> int | None:
    """The size in bytes; None when the text is not a size."""
    m = _SIZE_RE.match(text.strip())
    if not m:
        return None
    return int(float(m.group(1)) * _UNITS[m.group(2).lower()])

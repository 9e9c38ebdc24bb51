"""json.loads for text from outside Berth.

Nesting deeper than the parser's recursion allows ("[" * 100000) raises RecursionError, which
no `except ValueError` catches: it escaped as a 500. Here it is a decode error like any other.
"""

from __future__ import annotations

import json
from typing import Any


def loads(text: str | bytes | bytearray) -> Any:
    try:
        return json.loads(text)
    except RecursionError:
        raise json.JSONDecodeError("nested too deeply", "", 0) from None

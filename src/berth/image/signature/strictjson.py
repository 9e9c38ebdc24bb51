"""Strict JSON for policies and signature payloads: no duplicated keys, no NaN, bounded size.

containers-policy.json(5) and containers-signature(5) both ask for parsing that refuses anything
ambiguous, so a duplicated member is an error (Python's json keeps the last one silently) and
the error names where it was found.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from berth.errors import InvalidArgument


class _Object(dict[str, Any]):
    """A JSON object that remembers which keys it saw twice."""

    duplicates: list[str]


def _object_pairs(pairs: list[tuple[str, Any]]) -> _Object:
    obj = _Object()
    obj.duplicates = []
    for key, value in pairs:
        if key in obj:
            obj.duplicates.append(key)
        obj[key] = value
    return obj


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _finite_float(text: str) -> float:
    # Go's decoder (containers/image) refuses 1e999 too: a number must fit a float64.
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:40]} is out of range")
    return value


_SURROGATE = re.compile(r"[\ud800-\udfff]")


def _where(path: tuple[Any, ...] | None) -> str:
    """Render a path kept as nested (parent, segment) pairs: "a.b[3].c"."""
    parts: list[str | int] = []
    while path is not None:
        path, segment = path
        parts.append(segment)
    out = ""
    for segment in reversed(parts):
        if isinstance(segment, int):
            out += f"[{segment}]"
        else:
            out += f".{segment}" if out else segment
    return out


def _check_tree(value: Any, what: str) -> None:
    """Refuse duplicated members and strings that are not Unicode text (lone surrogates).

    Iterative, and paths are only rendered for the error: building a path string per item
    would cost depth x items memory (a 3 MB document nested 800 deep took gigabytes).
    """
    stack: list[tuple[Any, tuple[Any, ...] | None]] = [(value, None)]
    while stack:
        item, path = stack.pop()
        if isinstance(item, str):
            if _SURROGATE.search(item):
                raise InvalidArgument(f"{what}: {_where(path) or 'top level'}: string is not "
                                      "valid Unicode (lone surrogate)")
        elif isinstance(item, _Object):
            if item.duplicates:
                raise InvalidArgument(f"{what}: {_where(path) or 'top level'}: duplicate "
                                      f"field {item.duplicates[0]!r}")
            for k, v in item.items():
                if _SURROGATE.search(k):
                    raise InvalidArgument(f"{what}: {_where(path) or 'top level'}: field name "
                                          "is not valid Unicode (lone surrogate)")
                if isinstance(v, str | list | dict):
                    stack.append((v, (path, k)))
        elif isinstance(item, list):
            stack.extend((v, (path, i)) for i, v in enumerate(item)
                         if isinstance(v, str | list | dict))


def load_strict(data: bytes, what: str, max_size: int) -> Any:
    """Parse ``data`` as JSON or raise InvalidArgument naming ``what`` and the problem."""
    if not isinstance(data, bytes | bytearray):
        raise InvalidArgument(f"{what}: expected bytes")
    if len(data) > max_size:
        raise InvalidArgument(f"{what}: larger than {max_size} bytes")
    try:
        text = bytes(data).decode("utf-8")
        value = json.loads(text, object_pairs_hook=_object_pairs,
                           parse_constant=_refuse_constant, parse_float=_finite_float)
    except RecursionError:
        raise InvalidArgument(f"{what}: nested too deeply") from None
    except (UnicodeDecodeError, ValueError) as e:
        raise InvalidArgument(f"{what}: not valid JSON: {e}") from None
    _check_tree(value, what)
    return value


def expect_object(value: Any, where: str, *, required: set[str],
                  optional: frozenset[str] | set[str] = frozenset()) -> dict[str, Any]:
    """Check that ``value`` is an object with all ``required`` and only known fields."""
    if not isinstance(value, dict):
        raise InvalidArgument(f"{where}: expected a JSON object, got {kind_of(value)}")
    for key in value:
        if key not in required and key not in optional:
            raise InvalidArgument(f"{where}: unknown field {key!r}")
    for key in sorted(required):
        if key not in value:
            raise InvalidArgument(f"{where}: missing field {key!r}")
    return value


def expect_str(value: Any, where: str, *, non_empty: bool = True) -> str:
    if not isinstance(value, str):
        raise InvalidArgument(f"{where}: expected a string, got {kind_of(value)}")
    if non_empty and not value:
        raise InvalidArgument(f"{where}: must not be empty")
    return value


def kind_of(value: Any) -> str:
    """A JSON type name for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


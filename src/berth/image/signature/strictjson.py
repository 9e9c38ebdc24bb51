"""Strict JSON for policies and signature payloads: no duplicated keys, no NaN, bounded size.

containers-policy.json(5) and containers-signature(5) both ask for parsing that refuses anything
ambiguous, so a duplicated member is an error (Python's json keeps the last one silently) and
the error names where it was found.
"""

from __future__ import annotations

import json
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


def _find_duplicates(value: Any, path: str, what: str) -> None:
    stack = [(value, path)]
    while stack:
        item, where = stack.pop()
        if isinstance(item, _Object):
            if item.duplicates:
                raise InvalidArgument(
                    f"{what}: {where or 'top level'}: duplicate field {item.duplicates[0]!r}")
            stack.extend((v, f"{where}.{k}" if where else k) for k, v in item.items())
        elif isinstance(item, list):
            stack.extend((v, f"{where}[{i}]") for i, v in enumerate(item))


def load_strict(data: bytes, what: str, max_size: int) -> Any:
    """Parse ``data`` as JSON or raise InvalidArgument naming ``what`` and the problem."""
    if not isinstance(data, bytes | bytearray):
        raise InvalidArgument(f"{what}: expected bytes")
    if len(data) > max_size:
        raise InvalidArgument(f"{what}: larger than {max_size} bytes")
    try:
        text = bytes(data).decode("utf-8")
        value = json.loads(text, object_pairs_hook=_object_pairs,
                           parse_constant=_refuse_constant)
    except RecursionError:
        raise InvalidArgument(f"{what}: nested too deeply") from None
    except (UnicodeDecodeError, ValueError) as e:
        raise InvalidArgument(f"{what}: not valid JSON: {e}") from None
    _find_duplicates(value, "", what)
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


"""Typed, strict reads of Docker's JSON bodies: a wrong type or a value Berth cannot honour is a
400 naming the field (``HostConfig.Memory: expected an integer, got str``)."""

from __future__ import annotations

from typing import Any

from berth.errors import InvalidArgument
from berth.units import bytes_of, fits_int64

NETWORKING = "is not supported by Berth yet"
_WHY = {
    "Dns": f"DNS settings {NETWORKING}",
    "DnsSearch": f"DNS settings {NETWORKING}",
    "DnsOptions": f"DNS settings {NETWORKING}",
    "ExtraHosts": f"extra hosts {NETWORKING}",
    "Links": "links are not supported: put the containers on one user-defined network and "
             "use the container's name (Berth's DNS answers it)",
}


def is_zero(value: Any) -> bool:
    if isinstance(value, bool):
        return not value
    return value is None or value in (0, "", [], {})


def unsupported(field: str) -> InvalidArgument:
    why = _WHY.get(field.rpartition(".")[2])
    if why:
        return InvalidArgument(f"{field}: {why}")
    return InvalidArgument(f"{field} is not supported by Berth")


class Fields:
    """Typed reads from one JSON object; a wrong type is a 400 naming the field."""

    def __init__(self, obj: Any, prefix: str) -> None:
        if obj is None:
            obj = {}
        if not isinstance(obj, dict):
            raise InvalidArgument(f"{prefix or 'body'}: expected a JSON object")
        self.obj = obj
        self.prefix = prefix

    def name(self, key: str) -> str:
        return f"{self.prefix}.{key}" if self.prefix else key

    def zero_except(self, used: set[str]) -> None:
        for key, value in self.obj.items():
            if key not in used and not is_zero(value):
                raise unsupported(self.name(key))

    def _bad(self, key: str, what: str) -> InvalidArgument:
        return InvalidArgument(f"{self.name(key)}: expected {what}, got "
                               f"{type(self.obj[key]).__name__}")

    def str(self, key: str) -> str | None:
        value = self.obj.get(key)
        if value is not None and not isinstance(value, str):
            raise self._bad(key, "a string")
        return value

    def int(self, key: str) -> int | None:
        value = self.obj.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float) or (
                isinstance(value, float) and not value.is_integer()):
            raise self._bad(key, "an integer")
        if not fits_int64(value):  # Docker's are int64; huge ones overflow
            raise InvalidArgument(f"{self.name(key)}: {value} is out of range")  # floats
        return int(value)

    def bool(self, key: str) -> bool:
        value = self.obj.get(key)
        if value is not None and not isinstance(value, bool):
            raise self._bad(key, "a boolean")
        return bool(value)

    def strs(self, key: str, *, split: bool = False) -> list[str] | None:
        """A list of strings (Docker's strslice also takes one string)."""
        value = self.obj.get(key)
        if value is None:
            return None
        if isinstance(value, str) and split:
            return [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self._bad(key, "a list of strings")
        return list(value)

    def mapping(self, key: str) -> dict[str, Any]:
        value = self.obj.get(key)
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self._bad(key, "an object")
        return value

    def strings_map(self, key: str) -> dict[str, str]:
        """An object of strings (labels, driver options)."""
        value = self.mapping(key)
        if not all(isinstance(v, str) for v in value.values()):
            raise InvalidArgument(f"{self.name(key)}: expected string values")
        return dict(value)

    def objects(self, key: str) -> list[dict[str, Any]]:
        value = self.obj.get(key)
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            raise self._bad(key, "a list of objects")
        return value

    def sub(self, key: str) -> Fields:
        return Fields(self.obj.get(key), self.name(key))


def parse_size(text: str, what: str) -> int:
    """Docker's RAMInBytes: "64m", "1g", "512k", "1024" (binary units)."""
    size = bytes_of(text)
    if size is None:
        raise InvalidArgument(f"{what}: invalid size {text!r}")
    return size

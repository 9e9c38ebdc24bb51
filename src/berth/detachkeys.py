"""Docker's detach keys: their notation ("ctrl-p,ctrl-q", "a", "ctrl-\\\\") and a scanner that
spots them in a client's input. The Docker API's attach and exec and the CLI's interactive
sessions share them."""

from __future__ import annotations

from berth.errors import InvalidArgument

DEFAULT = "ctrl-p,ctrl-q"
# ctrl- plus one of these gives the control code of its position (ctrl-@ = 0 ... ctrl-_ = 31).
_CTRL_SPECIALS = {"@": 0, "[": 27, "\\": 28, "]": 29, "^": 30, "_": 31}


def parse(text: str | None) -> bytes:
    """Docker's detach key notation ("ctrl-p,ctrl-q", "a", "ctrl-\\\\") as the bytes typed.
    An empty value means the default."""
    if not text:
        text = DEFAULT
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

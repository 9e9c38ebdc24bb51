"""Docker's detach keys: the notation, and spotting the sequence in a stream of input."""

from __future__ import annotations

import pytest

from berth.detachkeys import DetachScanner, parse
from berth.errors import InvalidArgument


@pytest.mark.parametrize(("text", "keys"), [
    (None, b"\x10\x11"), ("", b"\x10\x11"), ("ctrl-p,ctrl-q", b"\x10\x11"),
    ("ctrl-a", b"\x01"), ("a,b", b"ab"), ("ctrl-@,ctrl-[,ctrl-\\,ctrl-],ctrl-^,ctrl-_",
                                          b"\x00\x1b\x1c\x1d\x1e\x1f"), ("CTRL-X", b"\x18"),
])
def test_detach_keys(text: str | None, keys: bytes) -> None:
    assert parse(text) == keys


@pytest.mark.parametrize("text", ["ctrl-", "ctrl-??", "ctrl-1", "meta-a", "ab,c"])
def test_bad_detach_keys(text: str) -> None:
    with pytest.raises(InvalidArgument, match="detach keys"):
        parse(text)


def test_scanner_passes_input_and_stops_at_the_sequence() -> None:
    s = DetachScanner(b"\x10\x11")
    assert s.feed(b"echo hi\r") == (b"echo hi\r", False)
    assert s.feed(b"ab\x10") == (b"ab", False)  # held: may be the start of the sequence
    assert s.feed(b"\x11tail") == (b"", True)


def test_scanner_releases_a_false_start() -> None:
    s = DetachScanner(b"\x10\x11")
    assert s.feed(b"\x10") == (b"", False)
    assert s.feed(b"x") == (b"\x10x", False)
    assert s.feed(b"\x10\x10\x11") == (b"\x10", True)
    s = DetachScanner(b"\x10\x11")
    s.feed(b"\x10")
    assert s.flush() == b"\x10"


def test_scanner_single_key_and_none() -> None:
    assert DetachScanner(b"q").feed(b"abqcd") == (b"ab", True)
    assert DetachScanner(b"").feed(b"\x10\x11") == (b"\x10\x11", False)


def test_the_clis_default_is_dockers() -> None:
    from berth.cli.interactive import DEFAULT_KEYS  # kept as bytes there: no parse at start-up

    assert parse(None) == DEFAULT_KEYS

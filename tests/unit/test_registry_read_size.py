"""Registry downloads read up to 1 MiB at a time, not httpcore's 64 KiB: if an httpcore
release drops the class attribute this sets, the setting silently stops mattering, so
check that httpcore still reads it where a response body is received."""

from __future__ import annotations

import inspect

import httpcore
import httpcore._sync.http11 as http11

from berth.image.registry import transport


def test_registry_responses_are_read_a_mebibyte_at_a_time() -> None:
    assert transport.READ_SIZE == 1 << 20
    assert httpcore.HTTP11Connection.READ_NUM_BYTES == transport.READ_SIZE
    assert http11.HTTP11Connection is httpcore.HTTP11Connection
    source = inspect.getsource(http11)
    assert "self.READ_NUM_BYTES" in source  # still what the connection's reads ask for

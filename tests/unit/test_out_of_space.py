"""A full disk, found in an exception or its causes, becomes OutOfSpace (pure)."""

from __future__ import annotations

import errno
import sqlite3

import pytest
from sqlalchemy.exc import OperationalError

from berth.errors import NO_SPACE, Conflict, OutOfSpace, out_of_space


def raised_from(cause: BaseException) -> BaseException:
    try:
        try:
            raise cause
        except BaseException as inner:
            raise RuntimeError("wrapped") from inner
    except RuntimeError as outer:
        return outer


@pytest.mark.parametrize("exc", [
    OSError(errno.ENOSPC, "No space left on device", "/var/lib/berth/blobs/x"),
    OSError(errno.EDQUOT, "Disk quota exceeded"),
    raised_from(OSError(errno.ENOSPC, "No space left on device")),
    OperationalError("COMMIT", {}, sqlite3.OperationalError("database or disk is full")),
    OutOfSpace("already"),
])
def test_a_full_disk(exc: BaseException) -> None:
    found = out_of_space(exc)
    assert isinstance(found, OutOfSpace) and found.status == 507
    assert "/var/lib" not in found.message  # no host path
    assert found.message == NO_SPACE or found.message == "already"


@pytest.mark.parametrize("exc", [
    OSError(errno.EACCES, "Permission denied"), ValueError("no"), Conflict("taken"),
    OperationalError("SELECT", {}, sqlite3.OperationalError("database is locked")),
])
def test_not_a_full_disk(exc: BaseException) -> None:
    assert out_of_space(exc) is None


def test_a_cycle_of_causes_ends() -> None:
    a, b = ValueError("a"), ValueError("b")
    a.__cause__, b.__cause__ = b, a
    assert out_of_space(a) is None

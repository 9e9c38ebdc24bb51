"""Integration fixtures: a real berthd per module (or per test where a test kills it)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest

from tests.integration.daemon import Daemon, destroy, leaks, make_dirs


def _require_host() -> None:
    if os.geteuid() != 0:
        pytest.skip("integration tests need root (namespaces, mounts, cgroups)")
    for tool in ("runc", "conmon"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed on this host (scripts/setup.sh installs it)")


def _daemon_with_busybox() -> Daemon:
    root, run = make_dirs()
    d = Daemon(root, run)
    d.start()
    d.cli("image", "build-base", "busybox")
    return d


def _finish(d: Daemon) -> None:
    d.remove_all()
    d.stop()
    left = leaks(d)
    if not left:
        destroy(d)
    assert not left, f"left behind by the tests: {left}"


@pytest.fixture(scope="module")
def daemon() -> Iterator[Daemon]:
    """One berthd shared by a module's tests; leak-checked when the module ends."""
    _require_host()
    d = _daemon_with_busybox()
    try:
        yield d
    finally:
        _finish(d)


@pytest.fixture
def own_daemon() -> Iterator[Daemon]:
    """A berthd for one test that may kill or restart it."""
    _require_host()
    d = _daemon_with_busybox()
    try:
        yield d
    finally:
        if d.proc is None or d.proc.poll() is not None:
            d.start()
        _finish(d)

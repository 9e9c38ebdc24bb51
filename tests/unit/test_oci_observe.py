"""observe(): an exit is concluded only from conmon's record, never while conmon may still
write it (a late record must not turn into the lost-code 255)."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from berth.paths import HostPaths
from berth.runtime.base import Status
from berth.runtime.oci import observe as observe_mod
from berth.runtime.oci.layout import ContainerLayout
from berth.runtime.oci.observe import UNKNOWN_EXIT, observe

CID = "c0ffee"
STOPPED = {"status": "stopped"}


@pytest.fixture()
def layout(tmp_path: Path) -> ContainerLayout:
    lay = ContainerLayout(HostPaths(root=tmp_path / "root", run_root=tmp_path / "run"), CID)
    for d in (lay.dir, lay.run_dir, lay.exit_file.parent, lay.persist):
        d.mkdir(parents=True)
    lay.container_pidfile.write_text("4242")
    return lay


@pytest.fixture()
def fake_conmon(tmp_path: Path, layout: ContainerLayout) -> Iterator[Path]:
    """A process whose comm is "conmon" and whose command line names the container, as the
    real monitor's does; it writes the exit code once the file `release` appears."""
    script = tmp_path / "conmon"
    script.write_text(f"#!/bin/sh\nwhile [ ! -e {tmp_path}/release ]; do sleep 0.01; done\n"
                      f"echo 137 > {layout.exit_file}\n")
    script.chmod(0o755)
    proc = subprocess.Popen([str(script), CID])
    layout.conmon_pidfile.write_text(str(proc.pid))
    deadline = time.monotonic() + 5
    while Path(f"/proc/{proc.pid}/comm").read_text().strip() != "conmon":
        assert time.monotonic() < deadline, "the stand-in monitor did not start"
        time.sleep(0.01)
    yield tmp_path / "release"
    proc.kill()
    proc.wait()


def test_a_recorded_exit_is_reported(layout: ContainerLayout) -> None:
    layout.exit_file.write_text("3")
    obs = observe(layout, STOPPED)
    assert (obs.status, obs.exit_code) == (Status.STOPPED, 3)
    assert obs.finished_at is not None


def test_the_persisted_exit_is_read_when_the_exit_dir_is_gone(layout: ContainerLayout) -> None:
    (layout.persist / "exit").write_text("137")
    assert observe(layout, STOPPED).exit_code == 137


def test_a_late_record_keeps_the_container_exiting_not_lost(
        layout: ContainerLayout, fake_conmon: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(observe_mod, "EXIT_FILE_WAIT", 0.05)
    obs = observe(layout, STOPPED)
    assert obs.status == Status.RUNNING, obs  # not STOPPED with the lost-code 255
    assert obs.pid == 4242
    fake_conmon.touch()  # the monitor gets to write its record
    deadline = time.monotonic() + 5
    while (obs := observe(layout, STOPPED)).status != Status.STOPPED:
        assert time.monotonic() < deadline, obs
    assert obs.exit_code == 137


def test_a_record_written_within_the_wait_is_found(
        layout: ContainerLayout, fake_conmon: Path) -> None:
    fake_conmon.touch()
    obs = observe(layout, STOPPED)  # waits up to EXIT_FILE_WAIT for the monitor
    assert (obs.status, obs.exit_code) == (Status.STOPPED, 137)


def test_no_monitor_and_no_record_is_a_lost_code(layout: ContainerLayout) -> None:
    layout.conmon_pidfile.write_text("999999999")  # no such process
    obs = observe(layout, STOPPED)
    assert (obs.status, obs.exit_code) == (Status.STOPPED, UNKNOWN_EXIT)


def test_unknown_to_the_runtime_and_unrecorded_is_missing(layout: ContainerLayout) -> None:
    assert observe(layout, None).status == Status.MISSING

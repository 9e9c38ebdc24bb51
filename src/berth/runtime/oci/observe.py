"""Turn what runc, conmon's files and the cgroup say into an Observed state."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from berth.runtime.base import Observed, Status
from berth.runtime.oci.cgroups import container_cgroup, oom_kill_count
from berth.runtime.oci.layout import ContainerLayout
from berth.runtime.oci.procutil import conmon_alive, poll_until, read_pidfile
from berth.runtime.oci.spec import cgroups_path

RUNC_STATUS = {"created": Status.CREATED, "running": Status.RUNNING,
               "paused": Status.PAUSED, "stopped": Status.STOPPED}
EXIT_FILE_WAIT = 2.0  # conmon writes the exit file a moment after the process is reaped
UNKNOWN_EXIT = 255  # what Docker reports when the exit status was lost


def read_exit(layout: ContainerLayout) -> tuple[int | None, float | None]:
    """The exit code and the time it was recorded (exit-dir first, then the persist dir)."""
    for path in (layout.exit_file, layout.persist / "exit"):
        try:
            text = path.read_text().strip()
            mtime = path.stat().st_mtime
        except OSError:
            continue
        if text.lstrip("-").isdigit():
            return int(text), mtime
    return None, None


def read_float(path: Path) -> float | None:
    try:
        return float(path.read_text().strip())
    except (OSError, ValueError):
        return None


def oom_killed(layout: ContainerLayout) -> bool:
    if (layout.persist / "oom").exists() or (layout.bundle / "oom").exists():
        return True
    return oom_kill_count(container_cgroup(cgroups_path(layout.cid))) > 0


def _wait_exit(layout: ContainerLayout) -> tuple[int | None, float | None, bool]:
    """The exit code and its time, waiting a moment for conmon to write them; the last item
    says whether conmon still lives (then a missing code is late, not lost)."""
    found = read_exit(layout)
    conmon_pid = read_pidfile(layout.conmon_pidfile)
    alive = True

    def written() -> bool:
        nonlocal found, alive
        found = read_exit(layout)
        alive = conmon_alive(conmon_pid, layout.cid)
        return found[0] is not None or not alive

    if found[0] is None:
        poll_until(written, EXIT_FILE_WAIT)
        if found[0] is None and not alive:
            found = read_exit(layout)  # it may have written the file just before exiting
    return found[0], found[1], found[0] is None and alive


def observe(layout: ContainerLayout, runc_state: dict[str, Any] | None) -> Observed:
    started = read_float(layout.started_at)
    status = RUNC_STATUS.get(str(runc_state.get("status"))) if runc_state else None
    if status in (Status.CREATED, Status.RUNNING, Status.PAUSED):
        assert runc_state is not None
        return Observed(status=status, pid=int(runc_state.get("pid") or 0), started_at=started)
    if status is Status.STOPPED:
        code, finished, late = _wait_exit(layout)
        if late:
            # The process is gone but its monitor has not recorded how yet (a loaded host can
            # delay it for seconds): still exiting. Concluding now would lose the real code.
            return Observed(status=Status.RUNNING, pid=read_pidfile(layout.container_pidfile) or 0,
                            started_at=started)
    else:
        code, finished = read_exit(layout)
    if code is None:
        if status is Status.STOPPED:
            # runc saw it die but nobody recorded how (the monitor was killed): unknown code.
            return Observed(status=Status.STOPPED, exit_code=UNKNOWN_EXIT, started_at=started,
                            oom_killed=oom_killed(layout))
        return Observed(status=Status.MISSING)
    return Observed(status=Status.STOPPED, exit_code=code, oom_killed=oom_killed(layout),
                    started_at=started, finished_at=finished)

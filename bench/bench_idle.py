"""Memory Berth spends per idle container, beyond the container's own processes.

Starts N (default 100) `berth run -d busybox sleep 3600` containers, then reports

  (berthd RSS after - berthd RSS before + sum of the RSS of their conmon monitors) / N

against the 2 MiB target. berthd's RSS is VmRSS from /proc/<pid>/status. A container's
monitor pid comes from `berth inspect --output json` when it reports one (monitor_pid /
conmon_pid, at the top level or under state), otherwise from the process table: conmon
processes whose command line names the container id (normally re-parented to pid 1).
All containers are removed afterwards (`berth rm -f`), also on errors and Ctrl-C.

Usage: bench_idle.py [--count N] [--host URL | --own-daemon] [--daemon-pid PID]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

from benchlib import (
    DEFAULT_HOST,
    Berth,
    OwnDaemon,
    all_pids,
    cmdline,
    find_berthd_pid,
    ppid,
    pss_kib,
    require_root,
    rss_kib,
)

TARGET_KIB = 2 * 1024
MONITOR_KEYS = ("monitor_pid", "conmon_pid", "monitorPid", "conmonPid", "MonitorPid")


def monitor_pid_from_inspect(data: dict[str, Any]) -> int | None:
    for scope in (data, data.get("state") or {}, data.get("State") or {}):
        if not isinstance(scope, dict):
            continue
        for key in MONITOR_KEYS:
            value = scope.get(key)
            if isinstance(value, int) and value > 0:
                return value
    return None


def conmon_pids_by_id(ids: list[str]) -> dict[str, int]:
    """Map container id -> conmon pid from the process table (prefer children of pid 1)."""
    found: dict[str, int] = {}
    conmons = [(p, cmdline(p)) for p in all_pids()]
    conmons = [(p, argv) for p, argv in conmons if argv and Path(argv[0]).name == "conmon"]
    conmons.sort(key=lambda pa: ppid(pa[0]) != 1)  # parent-is-init first
    for cid in ids:
        for pid, argv in conmons:
            if any(cid in a for a in argv):
                found[cid] = pid
                break
    return found


def mib(kib: float) -> str:
    return f"{kib / 1024:.2f} MiB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=100, help="idle containers (default 100)")
    parser.add_argument("--host", default=os.environ.get("BERTH_HOST", DEFAULT_HOST),
                        help="berthd to use with --no-own-daemon")
    parser.add_argument("--own-daemon", action=argparse.BooleanOptionalAction, default=True,
                        help="start a berthd in temp dirs (default) instead of using --host")
    parser.add_argument("--daemon-pid", type=int,
                        help="pid of the berthd behind --host (default: /run/berth/berthd.pid)")
    parser.add_argument("--settle", type=float, default=2.0,
                        help="seconds to wait before each RSS reading (default 2)")
    args = parser.parse_args()
    require_root()

    os.environ.pop("BERTH_HOST", None)
    daemon: OwnDaemon | None = None
    host = args.host
    if args.own_daemon:
        daemon = OwnDaemon()
        host = daemon.host
        os.environ["BERTH_HOST"] = host
    berth = Berth(host)
    ids: list[str] = []
    try:
        if daemon is not None:
            daemon.start(berth)
            berthd_pid: int | None = daemon.pid
        else:
            if not berth.answers():
                raise SystemExit(f"bench: no berthd answering on {host}")
            berthd_pid = args.daemon_pid or find_berthd_pid()
            if berthd_pid is None:
                raise SystemExit("bench: cannot tell which process is berthd; pass --daemon-pid")
        berth.ensure_busybox()
        # one throw-away container first, so lazily-initialised code paths are already paid for
        berth.run("run", "--rm", "busybox", "true")

        time.sleep(args.settle)
        before = rss_kib(berthd_pid)
        t0 = time.perf_counter()
        for i in range(args.count):
            out = berth.run("run", "-d", "busybox", "sleep", "3600").strip()
            if not out:
                raise RuntimeError(f"berth run -d printed no container id (container {i})")
            ids.append(out.splitlines()[-1].strip())
        started = time.perf_counter() - t0
        time.sleep(args.settle)
        after = rss_kib(berthd_pid)

        monitors: dict[str, int] = {}
        full_ids: dict[str, str] = {}
        for cid in ids:
            data = berth.inspect(cid)
            full_ids[cid] = str(data.get("id") or cid)
            pid = monitor_pid_from_inspect(data)
            if pid is not None:
                monitors[cid] = pid
        missing = [c for c in ids if c not in monitors]
        if missing:
            by_table = conmon_pids_by_id([full_ids[c] for c in missing])
            for cid in missing:
                if full_ids[cid] in by_table:
                    monitors[cid] = by_table[full_ids[cid]]
        conmon_total = sum(rss_kib(p) for p in set(monitors.values()))
        conmon_pss = sum(pss_kib(p) for p in set(monitors.values()))

        delta = after - before
        per = (max(delta, 0) + conmon_total) / args.count
        print()
        print(f"containers started:        {args.count} in {started:.1f} s "
              f"({started / args.count * 1000:.0f} ms each, sequential)")
        print(f"berthd RSS before / after: {mib(before)} / {mib(after)} "
              f"(delta {mib(delta)}, pid {berthd_pid})")
        print(f"conmon monitors found:     {len(monitors)} of {args.count}, "
              f"total RSS {mib(conmon_total)}")
        if len(monitors) < args.count:
            print("warning: some monitors were not found; the per-container figure is low")
        per_pss = (max(delta, 0) + conmon_pss) / args.count
        print(f"conmon total PSS:          {mib(conmon_pss)} (shared library pages counted "
              "once)")
        print(f"per container, RSS basis (berthd delta + conmon RSS) / {args.count}: {mib(per)}"
              f"  target <= 2 MiB: {'PASS' if per <= TARGET_KIB else 'FAIL'}")
        print(f"per container, PSS basis (berthd delta + conmon PSS) / {args.count}: "
              f"{mib(per_pss)}  target <= 2 MiB: {'PASS' if per_pss <= TARGET_KIB else 'FAIL'}")
    finally:
        if ids:
            print(f"bench: removing {len(ids)} containers", file=sys.stderr)
            for cid in ids:
                try:
                    berth.run("rm", "-f", cid, check=False, timeout=60)
                except Exception as e:  # noqa: BLE001 - keep removing the rest
                    print(f"bench: rm -f {cid}: {e}", file=sys.stderr)
        if daemon is not None:
            daemon.cleanup()


if __name__ == "__main__":
    main()

"""A `ps -ef`-like table of a container's processes, read from /proc."""

from __future__ import annotations

import os
import time
from pathlib import Path

from berth.runtime.oci.procutil import boot_time

TITLES = ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]


def tty_name(tty_nr: int) -> str:
    if tty_nr == 0:
        return "?"
    major = (tty_nr >> 8) & 0xFFF
    minor = (tty_nr & 0xFF) | ((tty_nr >> 12) & 0xFFF00)
    if 136 <= major <= 143:  # Unix98 pty slaves
        return f"pts/{(major - 136) * 256 + minor}"
    if major == 4:
        return f"tty{minor}"
    return f"{major}:{minor}"


def format_cpu_time(seconds: int) -> str:
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    clock = f"{hours:02d}:{minutes:02d}:{secs:02d}"
    return f"{days}-{clock}" if days else clock


def format_stime(started: float, now: float) -> str:
    start, today = time.localtime(started), time.localtime(now)
    if (start.tm_year, start.tm_yday) == (today.tm_year, today.tm_yday):
        return time.strftime("%H:%M", start)
    return time.strftime("%b%d", start)


def process_row(pid: int, now: float, btime: float, clk_tck: int) -> list[str] | None:
    proc = Path(f"/proc/{pid}")
    try:
        stat = (proc / "stat").read_text()
        status = (proc / "status").read_text()
        cmdline = (proc / "cmdline").read_bytes()
    except OSError:
        return None  # exited meanwhile
    comm = stat[stat.index("(") + 1: stat.rindex(")")]
    fields = stat[stat.rindex(")") + 2:].split()
    ppid, tty_nr = int(fields[1]), int(fields[4])
    cpu_ticks = int(fields[11]) + int(fields[12])  # utime + stime
    started = btime + int(fields[19]) / clk_tck
    uid = next((line.split()[1] for line in status.splitlines() if line.startswith("Uid:")), "?")
    elapsed = max(now - started, 1e-9)
    c = int(100 * (cpu_ticks / clk_tck) / elapsed)
    args = [a.decode(errors="replace") for a in cmdline.split(b"\0") if a]
    cmd = " ".join(args) if args else f"[{comm}]"
    return [uid, str(pid), str(ppid), str(c), format_stime(started, now), tty_name(tty_nr),
            format_cpu_time(cpu_ticks // clk_tck), cmd]


def process_table(pids: list[int]) -> tuple[list[str], list[list[str]]]:
    now, btime, clk_tck = time.time(), boot_time(), os.sysconf("SC_CLK_TCK")
    rows = [row for pid in sorted(pids) if (row := process_row(pid, now, btime, clk_tck))]
    return list(TITLES), rows

"""A container's processes: a `ps -ef`-like table read from /proc, or, given ps options,
the host's ps cut to the container's processes."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

from berth.errors import InvalidArgument, RuntimeFailure
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


DEFAULT_PS_ARGS = ((), ("-ef",), ("ef",))  # what the /proc reader above already shows
PS_TIMEOUT = 10.0


def ps_table(pids: list[int], args: list[str]) -> tuple[list[str], list[list[str]]]:
    """The host's `ps` with the caller's options, cut to the container's processes, as
    docker's top does: the PID column picks the rows. ps only reads /proc, the options go
    to it as words (no shell), and rows of other processes never leave here."""
    ps = shutil.which("ps", path="/usr/bin:/bin")
    if ps is None:
        raise RuntimeFailure("top with ps options needs ps (Debian's procps) on the host")
    env = {"PATH": "/usr/bin:/bin", "LC_ALL": "C"}  # no PS_FORMAT, PS_PERSONALITY of ours
    picked = ["-q", ",".join(map(str, pids))] if pids else []
    try:
        res = subprocess.run([ps, *args, *picked], capture_output=True, text=True, env=env,
                             timeout=PS_TIMEOUT, errors="replace")
        if res.returncode != 0 and picked:  # some options (BSD f) cannot be mixed with -q
            res = subprocess.run([ps, *args], capture_output=True, text=True, env=env,
                                 timeout=PS_TIMEOUT, errors="replace")
    except subprocess.TimeoutExpired:
        raise RuntimeFailure("ps did not answer in time") from None
    if res.returncode != 0:
        reason = next((line for line in res.stderr.splitlines() if line.strip()), "")
        raise InvalidArgument(f"ps {' '.join(args)}: "
                              f"{reason.strip() or f'exit status {res.returncode}'}")
    return parse_ps(res.stdout, set(pids))


def parse_ps(output: str, pids: set[int]) -> tuple[list[str], list[list[str]]]:
    lines = output.splitlines()
    titles = lines[0].split() if lines else []
    if "PID" not in titles:
        raise InvalidArgument("ps options must keep the PID column (e.g. -o pid,args)")
    at = titles.index("PID")
    rows = []
    for line in lines[1:]:
        fields = line.split(None, len(titles) - 1)  # the last column keeps its spaces
        if len(fields) > at and fields[at].isdigit() and int(fields[at]) in pids:
            rows.append(fields)
    return titles, rows

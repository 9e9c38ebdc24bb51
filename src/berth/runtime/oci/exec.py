"""Exec sessions: `runc exec --process <json> <id>` as our child, with pipes or a pty."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import pty
import shutil
import struct
import subprocess
import termios
from pathlib import Path
from typing import Any

from berth.runtime.base import ExecProcess, ExecSpec
from berth.runtime.oci.runc import clean_error, runtime_env

EXIT_NOT_EXECUTABLE = 126
EXIT_NOT_FOUND = 127
RUNC_FAILED = 255  # runc's own exit status when it could not start the process


def merge_env(base: list[str], extra: list[str]) -> list[str]:
    """Exec env: the container's env, overridden key by key by the exec's."""
    merged: dict[str, str] = {}
    for item in [*base, *extra]:
        key = item.partition("=")[0]
        merged[key] = item
    return list(merged.values())


def build_exec_process(config_process: dict[str, Any], spec: ExecSpec,
                       user: dict[str, Any] | None) -> dict[str, Any]:
    """The container's process (same caps, rlimits, no-new-privileges) with the exec's args."""
    process = json.loads(json.dumps(config_process))  # deep copy
    process["args"] = list(spec.args)
    process["env"] = merge_env(process.get("env", []), spec.env)
    process["terminal"] = spec.tty
    if spec.cwd:
        process["cwd"] = spec.cwd
    if user is not None:
        process["user"] = user
    if spec.tty and not any(e.startswith("TERM=") for e in process["env"]):
        process["env"].append("TERM=xterm")
    process.pop("consoleSize", None)
    return process


def exit_code_for(returncode: int, runtime_error: str) -> int:
    """runc reports a failed start with status 255 and a message; map it like Docker does."""
    if returncode < 0:
        return 128 - returncode  # runc itself was killed by a signal
    if returncode != RUNC_FAILED or not runtime_error:
        return returncode
    low = runtime_error.lower()
    if "executable file not found" in low or "no such file or directory" in low:
        return EXIT_NOT_FOUND
    return EXIT_NOT_EXECUTABLE  # permission denied, not a binary, other runtime refusals


def read_runtime_log(path: Path) -> str:
    """Errors from runc's --log file (JSON lines: {"level": "error", "msg": "..."})."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    messages = []
    for line in text.splitlines():
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            messages.append(clean_error(line))
            continue
        if isinstance(entry, dict) and entry.get("level") in ("error", "fatal"):
            messages.append(str(entry.get("msg", "")))
    return "; ".join(m for m in messages if m)


def set_winsize(fd: int, rows: int, cols: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


class RuncExec(ExecProcess):
    def __init__(self, runtime_args: list[str], cid: str, process: dict[str, Any],
                 workdir: Path) -> None:
        """runtime_args: the runtime binary and its global flags (--root ...)."""
        workdir.mkdir(parents=True, exist_ok=True)
        self._workdir = workdir
        self._log = workdir / "runtime.log"
        spec_file = workdir / "process.json"
        spec_file.write_text(json.dumps(process))
        argv = [*runtime_args, "--log", str(self._log), "--log-format", "json",
                "exec", "--process", str(spec_file), cid]
        self._tty = bool(process.get("terminal"))
        self._master: int | None = None
        self._code: int | None = None
        if self._tty:
            self._proc = self._start_tty(argv)
        else:
            self._proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                          stderr=subprocess.PIPE, env=runtime_env())

    def _start_tty(self, argv: list[str]) -> subprocess.Popen[bytes]:
        # runc (not detached) wants its stdio to be a terminal: it makes the container's pty
        # and copies between the two, and on SIGWINCH copies our size onto the inner pty.
        # setsid --ctty makes our pty runc's controlling terminal, so a TIOCSWINSZ on the
        # master reaches runc as SIGWINCH (no preexec_fn: not safe with threads).
        master, slave = pty.openpty()
        set_winsize(master, 24, 80)
        setsid = shutil.which("setsid") or "setsid"
        try:
            proc = subprocess.Popen([setsid, "--ctty", *argv], stdin=slave, stdout=slave,
                                    stderr=slave, env=runtime_env())
        except BaseException:
            os.close(master)
            raise
        finally:
            os.close(slave)
        self._master = master
        return proc

    def fileno_stdin(self) -> int | None:
        if self._master is not None:
            return self._master
        return self._proc.stdin.fileno() if self._proc.stdin else None

    def fileno_stdout(self) -> int:
        if self._master is not None:
            return self._master
        assert self._proc.stdout is not None
        return self._proc.stdout.fileno()

    def fileno_stderr(self) -> int | None:
        if self._master is not None:
            return None
        return self._proc.stderr.fileno() if self._proc.stderr else None

    def resize(self, rows: int, cols: int) -> None:
        if self._master is not None:
            set_winsize(self._master, rows, cols)

    def close_stdin(self) -> None:
        if self._master is not None:
            with contextlib.suppress(OSError):
                os.write(self._master, b"\x04")  # the terminal's end-of-file character
        elif self._proc.stdin is not None and not self._proc.stdin.closed:
            with contextlib.suppress(OSError):
                self._proc.stdin.close()  # through the file object: close() must not repeat it

    def wait(self) -> int:
        if self._code is None:
            returncode = self._proc.wait()
            self._code = exit_code_for(returncode, read_runtime_log(self._log))
        return self._code

    def runtime_error(self) -> str:
        """What runc said when it could not start the process (empty if it did)."""
        return read_runtime_log(self._log)

    def close(self) -> None:
        if self._proc.poll() is None:
            self._proc.terminate()  # runc forwards it to the process
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        for stream in (self._proc.stdin, self._proc.stdout, self._proc.stderr):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
        if self._master is not None:
            with contextlib.suppress(OSError):
                os.close(self._master)
            self._master = None
        shutil.rmtree(self._workdir, ignore_errors=True)

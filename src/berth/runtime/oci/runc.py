"""Thin wrapper over the runc (or crun) command line."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from berth.errors import RuntimeFailure

TIMEOUT = 60.0
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def runtime_env(**extra: str) -> dict[str, str]:
    """The environment of the runtime and of the monitors: PATH and a UTF-8 locale. Not
    berthd's own: a store URL with its password, say, would sit in every monitor's
    /proc/PID/environ for its container's life. (Without a UTF-8 locale each conmon's glib
    touches ~0.3 MiB more of its libraries, measured.)"""
    return {"PATH": os.environ.get("PATH") or DEFAULT_PATH, "LANG": "C.UTF-8", **extra}


@dataclass(frozen=True)
class RuntimeResult:
    returncode: int
    stdout: str
    stderr: str


def _logrus_msg(line: str) -> str | None:
    """The msg field of a logrus text line: time="..." level=error msg="quoted \\"text\\"" ."""
    at = line.find(" msg=")
    if at < 0:
        return None
    rest = line[at + 5:]
    if not rest.startswith('"'):
        return rest.split(" ", 1)[0]
    i = 1
    while i < len(rest):
        if rest[i] == "\\":
            i += 2
            continue
        if rest[i] == '"':
            break
        i += 1
    quoted = rest[: i + 1]
    try:
        return str(json.loads(quoted))
    except json.JSONDecodeError:
        return quoted.strip('"')


def clean_error(stderr: str) -> str:
    """runc prints errors as plain text or as logrus lines; keep only the messages."""
    messages = []
    for line in stderr.splitlines():
        line = line.strip()
        if line:
            msg = _logrus_msg(line)
            messages.append(line if msg is None else msg)
    return "; ".join(messages)


def is_not_found(message: str) -> bool:
    low = message.lower()
    return "does not exist" in low or ("container" in low and "not found" in low)


def is_not_running(message: str) -> bool:
    low = message.lower()
    return "not running" in low or "process already finished" in low or is_not_found(message)


class RuncCli:
    def __init__(self, binary: str, root: Path) -> None:
        self.binary = binary
        self.root = root

    def base_args(self) -> list[str]:
        return [self.binary, "--root", str(self.root)]

    def run(self, *args: str, check: bool = True, timeout: float = TIMEOUT) -> RuntimeResult:
        try:
            proc = subprocess.run([*self.base_args(), *args], capture_output=True, text=True,
                                  timeout=timeout, stdin=subprocess.DEVNULL, env=runtime_env())
        except (OSError, subprocess.TimeoutExpired) as e:
            raise RuntimeFailure(f"{Path(self.binary).name} {args[0]}: {e}") from e
        result = RuntimeResult(proc.returncode, proc.stdout, proc.stderr)
        if check and proc.returncode != 0:
            raise RuntimeFailure(clean_error(proc.stderr) or
                                 f"{Path(self.binary).name} {args[0]} exited {proc.returncode}")
        return result

    def known(self, cid: str) -> bool:
        """Does the runtime hold state for cid? (runc and crun keep a directory per container
        under --root: checking it costs a stat, not a process.)"""
        return (self.root / cid).is_dir()

    def forget(self, cid: str) -> None:
        """Drop the runtime's record of a container whose process has been reaped and whose
        cgroup is gone. That is all `delete` does then, and starting the runtime for it
        cost every `run --rm` ~10 ms."""
        record = self.root / cid
        if record.parent != self.root or cid in ("", ".", ".."):  # never leave the root
            raise RuntimeFailure(f"invalid container id: {cid!r}")
        shutil.rmtree(record, ignore_errors=True)

    def state(self, cid: str) -> dict[str, Any] | None:
        """runc's view of the container, or None when runc has no record of it."""
        result = self.run("state", cid, check=False)
        if result.returncode != 0:
            message = clean_error(result.stderr)
            if is_not_found(message) or not message:
                return None
            raise RuntimeFailure(message)
        try:
            data: dict[str, Any] = json.loads(result.stdout)
        except json.JSONDecodeError as e:
            raise RuntimeFailure(f"runtime state is not JSON: {e}") from e
        return data


def _crun_works() -> bool:
    # crun 1.8 refuses hybrid cgroup hierarchies (v1 controllers + a v2 mount): probe it.
    crun = shutil.which("crun")
    if crun is None:
        return False
    unified = Path("/sys/fs/cgroup/unified")
    return not unified.is_dir() or not unified.is_mount()


def find_runtime(preferred: str | None = None) -> str:
    if preferred:
        path = shutil.which(preferred) or preferred
        if not Path(path).is_file():
            raise RuntimeFailure(f"OCI runtime not found: {preferred}")
        return path
    runc = shutil.which("runc")
    if runc:
        return runc
    if _crun_works():
        return shutil.which("crun") or "crun"
    raise RuntimeFailure("no usable OCI runtime: install runc (or crun on a non-hybrid host)")

"""Docker's ``--change`` instructions (CMD, ENV, LABEL, …) for commit: parse, then apply to an
image's run config."""

from __future__ import annotations

import copy
import posixpath
import re
import shlex
from typing import Any

from berth import jsontext
from berth.errors import InvalidArgument
from berth.image.runconfig import image_env, image_workdir, merge_env

CHANGE_INSTRUCTIONS = ("CMD", "ENTRYPOINT", "ENV", "EXPOSE", "LABEL", "STOPSIGNAL", "USER",
                       "VOLUME", "WORKDIR")
MAX_CHANGES = 1_000
MAX_CHANGE_LEN = 64 << 10
_INSTRUCTION = re.compile(r"(\S+)\s*(.*)", re.S)
_SIGNAL = re.compile(r"(SIG)?[A-Z][A-Z0-9]*([+-][0-9]+)?|[0-9]{1,2}")
_PORT = re.compile(r"([0-9]{1,5})(?:-([0-9]{1,5}))?(?:/(tcp|udp|sctp))?")


def _json_list(rest: str) -> list[str] | None:
    """The exec (JSON array) form of an argument, or None when it is not one."""
    if not rest.startswith("["):
        return None
    try:
        value = jsontext.loads(rest)
    except ValueError:  # too deep included
        return None
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    return None


def _pairs(inst: str, rest: str) -> list[tuple[str, str]]:
    """KEY=VALUE words (shell quoting), or the legacy single ``KEY value with spaces``."""
    try:
        words = shlex.split(rest)
    except ValueError as exc:
        raise InvalidArgument(f"{inst} {rest!r}: {exc}") from None
    if words and "=" not in words[0]:
        key, *value = rest.split(None, 1)
        if not value:
            raise InvalidArgument(f"{inst} {rest!r}: expected KEY=VALUE")
        return [(key, value[0])]
    pairs = []
    for word in words:
        key, eq, value = word.partition("=")
        if not key or not eq:
            raise InvalidArgument(f"{inst}: {word!r} is not KEY=VALUE")
        pairs.append((key, value))
    return pairs


def _ports(spec: str) -> list[str]:
    m = _PORT.fullmatch(spec.lower())
    if not m:
        raise InvalidArgument(f"EXPOSE: invalid port {spec!r} (expected PORT[-END][/PROTO])")
    start = int(m.group(1))
    end = int(m.group(2) or start)
    if not 1 <= start <= end <= 65535:
        raise InvalidArgument(f"EXPOSE: invalid port range {spec!r}")
    return [f"{p}/{m.group(3) or 'tcp'}" for p in range(start, end + 1)]


def parse_changes(lines: list[str]) -> dict[str, Any]:
    """Docker's ``commit --change`` instructions as image config fields (Cmd, Env, ...).

    Env entries accumulate as "KEY=VALUE" strings; Labels, ExposedPorts and Volumes as maps;
    the other fields take the last value given. A relative WORKDIR is kept relative (it is
    resolved against the image's own working directory by ``apply_changes``).
    """
    if len(lines) > MAX_CHANGES:
        raise InvalidArgument(f"more than {MAX_CHANGES} changes")
    out: dict[str, Any] = {}
    for line in lines:
        if not isinstance(line, str) or len(line) > MAX_CHANGE_LEN:
            raise InvalidArgument("a change must be a string of at most 64 KiB")
        m = _INSTRUCTION.fullmatch(line.strip())
        if m is None:
            continue  # a blank line
        word, rest = m.group(1), m.group(2).strip()
        inst = word.upper()
        if inst not in CHANGE_INSTRUCTIONS:
            raise InvalidArgument(f"{word} is not supported as a commit change (supported: "
                                  f"{', '.join(CHANGE_INSTRUCTIONS)})")
        if not rest:
            raise InvalidArgument(f"{inst} needs an argument")
        if inst in ("CMD", "ENTRYPOINT"):
            exec_form = _json_list(rest)
            out[inst.title()] = exec_form if exec_form is not None else ["/bin/sh", "-c", rest]
        elif inst == "ENV":
            out.setdefault("Env", []).extend(f"{k}={v}" for k, v in _pairs(inst, rest))
        elif inst == "LABEL":
            out.setdefault("Labels", {}).update(_pairs(inst, rest))
        elif inst == "EXPOSE":
            for spec in rest.split():
                out.setdefault("ExposedPorts", {}).update(dict.fromkeys(_ports(spec), {}))
        elif inst == "VOLUME":
            vols = _json_list(rest)
            for vol in rest.split() if vols is None else vols:
                if not vol.strip():
                    raise InvalidArgument("VOLUME: a volume path cannot be empty")
                out.setdefault("Volumes", {})[vol] = {}
        elif inst == "USER":
            if len(rest.split()) != 1:
                raise InvalidArgument(f"USER takes exactly one argument, not {rest!r}")
            out["User"] = rest
        elif inst == "WORKDIR":
            out["WorkingDir"] = posixpath.normpath(posixpath.join(out.get("WorkingDir", ""),
                                                                  rest))
        elif not _SIGNAL.fullmatch(rest.upper()):
            raise InvalidArgument(f"STOPSIGNAL: invalid signal {rest!r}")
        else:
            out["StopSignal"] = rest
    return out


def apply_changes(run: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """An image's run config (the config's "config" object) with ``changes`` applied."""
    unknown = set(changes) - {"Cmd", "Entrypoint", "Env", "Labels", "ExposedPorts", "User",
                              "WorkingDir", "Volumes", "StopSignal"}
    if unknown:
        raise InvalidArgument(f"unsupported config changes: {', '.join(sorted(unknown))}")
    out = copy.deepcopy(run)
    for key in ("Cmd", "Entrypoint", "User", "StopSignal"):
        if key in changes:
            out[key] = changes[key]
    if "Entrypoint" in changes and "Cmd" not in changes:
        out.pop("Cmd", None)  # as a Dockerfile ENTRYPOINT does, and docker commit --change
    if "WorkingDir" in changes:
        out["WorkingDir"] = posixpath.normpath(posixpath.join(image_workdir(out),
                                                              changes["WorkingDir"]))
    if "Env" in changes:
        out["Env"] = merge_env(image_env(out), changes["Env"])
    for key in ("Labels", "ExposedPorts", "Volumes"):
        if key in changes:
            old = out.get(key)
            out[key] = {**(old if isinstance(old, dict) else {}), **changes[key]}
    return out

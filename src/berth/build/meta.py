"""Instructions that only edit the image's run config (ENV, LABEL, CMD, ...)."""

from __future__ import annotations

import copy
import posixpath
import re
from typing import Any

from berth.build.dockerfile import parse_duration
from berth.build.expand import expand_word, expand_words, parse_key_values
from berth.build.model import DockerfileError, Instruction
from berth.image.runconfig import merge_env

META = {"ENV", "LABEL", "WORKDIR", "USER", "CMD", "ENTRYPOINT", "EXPOSE", "VOLUME",
        "STOPSIGNAL", "HEALTHCHECK", "SHELL", "ONBUILD", "MAINTAINER"}
DEFAULT_SHELL = ["/bin/sh", "-c"]
_PORT = re.compile(r"([0-9]{1,5})(?:-([0-9]{1,5}))?(?:/(tcp|udp|sctp))?")


def env_map(cfg: dict[str, Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in cfg.get("Env") or []:
        k, _, v = item.partition("=")
        out[k] = v
    return out


def shell_of(cfg: dict[str, Any]) -> list[str]:
    sh = cfg.get("Shell")
    return list(sh) if isinstance(sh, list) and sh else list(DEFAULT_SHELL)


def command_form(inst: Instruction, cfg: dict[str, Any]) -> list[str]:
    """RUN/CMD/ENTRYPOINT argv: the JSON form as is, the shell form through SHELL."""
    if inst.json_form:
        return list(inst.args)
    return [*shell_of(cfg), " ".join(inst.args)]


def _duration(text: str, line: int) -> int:
    try:
        return parse_duration(text)
    except ValueError:
        raise DockerfileError(line, f"HEALTHCHECK: invalid duration {text!r}") from None


def apply(inst: Instruction, cfg: dict[str, Any], env: dict[str, str],
          escape: str) -> dict[str, Any]:
    """The run config after ``inst``; ``env``: the variables in scope (ENV and ARGs)."""
    out = copy.deepcopy(cfg)
    kw, line = inst.keyword, inst.line

    def word(text: str) -> str:
        return expand_word(text, env, escape, line)

    if kw == "ENV":
        pairs = parse_key_values(inst.args, env, escape, line)
        out["Env"] = merge_env(list(out.get("Env") or []), [f"{k}={v}" for k, v in pairs])
    elif kw == "LABEL":
        labels = dict(out.get("Labels") or {})
        labels.update(parse_key_values(inst.args, env, escape, line))
        out["Labels"] = labels
    elif kw == "WORKDIR":
        wd = word(" ".join(inst.args))
        out["WorkingDir"] = posixpath.normpath(posixpath.join(out.get("WorkingDir") or "/", wd))
    elif kw == "USER":
        out["User"] = word(" ".join(inst.args))
    elif kw == "CMD":
        out["Cmd"] = command_form(inst, out)
    elif kw == "ENTRYPOINT":
        out["Entrypoint"] = command_form(inst, out)
        out.pop("Cmd", None)  # as Docker: a new ENTRYPOINT resets CMD
    elif kw == "EXPOSE":
        ports = dict(out.get("ExposedPorts") or {})
        for spec in expand_words(" ".join(inst.args), env, escape, line):
            m = _PORT.fullmatch(spec.lower())
            if not m:
                raise DockerfileError(line, f"EXPOSE: invalid port {spec!r}")
            lo, hi = int(m.group(1)), int(m.group(2) or m.group(1))
            if hi > 65535 or lo > hi:  # as Docker's nat.ParsePortRange
                raise DockerfileError(line, f"EXPOSE: invalid port or range {spec!r}")
            for port in range(lo, hi + 1):
                ports[f"{port}/{m.group(3) or 'tcp'}"] = {}
        out["ExposedPorts"] = ports
    elif kw == "VOLUME":
        vols = dict(out.get("Volumes") or {})
        items = inst.args if inst.json_form else expand_words(" ".join(inst.args), env, escape,
                                                                line)
        for v in items:
            if not v:
                raise DockerfileError(line, "VOLUME: a path cannot be empty")
            vols[word(v) if inst.json_form else v] = {}
        out["Volumes"] = vols
    elif kw == "STOPSIGNAL":
        out["StopSignal"] = word(" ".join(inst.args))
    elif kw == "SHELL":
        if not inst.json_form:
            raise DockerfileError(line, "SHELL requires the arguments to be in JSON form")
        out["Shell"] = list(inst.args)
    elif kw == "HEALTHCHECK":
        out["Healthcheck"] = _healthcheck(inst, out)
    elif kw == "ONBUILD":
        trigger = inst.original.split(None, 1)[1] if " " in inst.original.strip() else ""
        out["OnBuild"] = [*(out.get("OnBuild") or []), trigger.strip()]
    return out


def _healthcheck(inst: Instruction, cfg: dict[str, Any]) -> dict[str, Any]:
    if inst.args and inst.args[0].upper() == "NONE" and not inst.json_form:
        return {"Test": ["NONE"]}
    args = list(inst.args)  # the parser has already taken "CMD" off
    test = ["CMD", *args] if inst.json_form else ["CMD-SHELL", " ".join(args).strip()]
    hc: dict[str, Any] = {"Test": test}
    for flag, key in (("interval", "Interval"), ("timeout", "Timeout"),
                      ("start-period", "StartPeriod"), ("start-interval", "StartInterval")):
        if flag in inst.flags:
            hc[key] = _duration(inst.flags[flag], inst.line)
    if "retries" in inst.flags:
        try:
            hc["Retries"] = int(inst.flags["retries"])
        except ValueError:
            raise DockerfileError(inst.line, "HEALTHCHECK: --retries takes a number") from None
    return hc

"""Pure helpers that read run settings out of an image config, with Docker's merge rules.

Each helper takes the image config as stored (``ImageManifest.config``: architecture, os,
config, rootfs, ...); the inner ``config`` object alone is accepted too.
"""

from __future__ import annotations

import posixpath
from typing import Any

from berth.errors import InvalidArgument
from berth.units import fits_int64


def _run_config(image_cfg: dict[str, Any] | None) -> dict[str, Any]:
    if not isinstance(image_cfg, dict):
        return {}
    inner = image_cfg.get("config")
    if isinstance(inner, dict):
        return inner
    if "config" in image_cfg or "rootfs" in image_cfg:
        return {}  # a full image config whose "config" is null
    return image_cfg


def _str_list(value: Any) -> list[str]:
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    return []


def combine_command(image_cfg: dict[str, Any], entrypoint: list[str] | None,
                    cmd: list[str] | None) -> list[str]:
    """entrypoint + cmd, as Docker builds a container's argv.

    An explicit non-empty entrypoint replaces the image's and drops the image's Cmd; an
    explicit empty one ([] or [""]) clears the image's entrypoint but keeps its Cmd. A
    non-empty cmd replaces the image's Cmd.
    """
    cfg = _run_config(image_cfg)
    if entrypoint is not None and entrypoint not in ([], [""]):
        args = list(entrypoint) + list(cmd or [])
    else:
        ep = [] if entrypoint is not None else _str_list(cfg.get("Entrypoint"))
        args = ep + (list(cmd) if cmd else _str_list(cfg.get("Cmd")))
    if not args:
        raise InvalidArgument("no command specified")
    return args


def merge_env(image_env: list[str], env: list[str]) -> list[str]:
    """The image's env overridden by the request's, by key, keeping the image's order.

    A request entry without "=" unsets that variable, as in Docker.
    """
    merged: list[str | None] = list(image_env or [])
    index = {e.split("=", 1)[0]: i for i, e in enumerate(merged) if e}
    for item in env or []:
        key, eq, _ = item.partition("=")
        if not key:
            raise InvalidArgument(f"invalid environment variable: {item!r}")
        if not eq:
            if key in index:
                merged[index.pop(key)] = None
            continue
        if key in index:
            merged[index[key]] = item
        else:
            index[key] = len(merged)
            merged.append(item)
    return [e for e in merged if e is not None]


def image_env(image_cfg: dict[str, Any]) -> list[str]:
    return _str_list(_run_config(image_cfg).get("Env"))


def image_workdir(image_cfg: dict[str, Any]) -> str:
    """The image's working directory, absolute; "/" when it sets none."""
    wd = _run_config(image_cfg).get("WorkingDir")
    if not isinstance(wd, str) or not wd:
        return "/"
    return posixpath.normpath(posixpath.join("/", wd))


def image_user(image_cfg: dict[str, Any]) -> str:
    user = _run_config(image_cfg).get("User")
    return user if isinstance(user, str) else ""


def image_labels(image_cfg: dict[str, Any]) -> dict[str, str]:
    labels = _run_config(image_cfg).get("Labels")
    if not isinstance(labels, dict):
        return {}
    return {str(k): str(v) for k, v in labels.items()}


def image_stop_signal(image_cfg: dict[str, Any]) -> str | None:
    sig = _run_config(image_cfg).get("StopSignal")
    return sig if isinstance(sig, str) and sig else None


def image_exposed_ports(image_cfg: dict[str, Any]) -> list[str]:
    """Sorted "port/proto" strings; a bare port means tcp."""
    ports = _run_config(image_cfg).get("ExposedPorts")
    if not isinstance(ports, dict):
        return []
    return sorted(p if "/" in p else f"{p}/tcp" for p in map(str, ports))


def image_volumes(image_cfg: dict[str, Any]) -> list[str]:
    vols = _run_config(image_cfg).get("Volumes")
    if not isinstance(vols, dict):
        return []
    return sorted(str(v) for v in vols)


_HEALTH_NUMBERS = ("Interval", "Timeout", "StartPeriod", "StartInterval", "Retries")


def image_healthcheck(image_cfg: dict[str, Any]) -> dict[str, Any] | None:
    """The image's Healthcheck object as written (Test, Interval, Timeout, StartPeriod,
    StartInterval in nanoseconds, Retries); None when it has none. A number that is not a
    Go int64 (Docker's type for them) is dropped, as if unset: a huge int would not even
    convert to a float."""
    hc = _run_config(image_cfg).get("Healthcheck")
    if not isinstance(hc, dict) or not _str_list(hc.get("Test")):
        return None
    out = dict(hc)
    for key in _HEALTH_NUMBERS:
        value = out.get(key)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)
                                  or not fits_int64(value)):
            del out[key]
    return out


def image_shell(image_cfg: dict[str, Any]) -> list[str]:
    """The image's SHELL (Dockerfile), [] when it sets none."""
    return _str_list(_run_config(image_cfg).get("Shell"))

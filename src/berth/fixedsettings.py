"""Docker settings whose only honourable values are what Berth always does.

A request (the CLI's flags, the Docker API's HostConfig) may name Berth's own behaviour, so
that docker command lines and compose files work unchanged; any other value is refused by
name, never dropped. Kept free of imports: the CLI loads it on every `run`.
"""

from __future__ import annotations

# no-new-privileges is always on
NO_NEW_PRIVILEGES = ("no-new-privileges", "no-new-privileges:true", "no-new-privileges=true")

# setting -> the values that mean what Berth does ("" is the unset default)
CHOICES: dict[str, tuple[str, ...]] = {
    "cgroupns": ("", "private"),
    "volume-driver": ("", "local"),
    "runtime": ("", "runc"),
    "isolation": ("", "default"),
    "userns": ("", "private"),  # Berth maps container root to an unprivileged host range
}

# why a value other than those is refused (the settings that share hosts with tenants)
WHY: dict[str, str] = {
    "userns": "container root is an unprivileged user of the host",
}


def refusal(setting: str, value: str) -> str | None:
    """Why the value cannot be honoured, or None when it is Berth's own behaviour."""
    if value in CHOICES[setting]:
        return None
    why = WHY.get(setting)
    return f"{value!r} is not supported by Berth" + (f" ({why})" if why else "")


def security_opt_refusal(opt: str) -> str | None:
    if opt in NO_NEW_PRIVILEGES:
        return None
    return (f"{opt!r} is not supported by Berth: no-new-privileges is always on, and the "
            "seccomp profile and capabilities are Berth's own (--cap-add, --cap-drop)")

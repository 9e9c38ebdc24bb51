"""Choosing one image from an index by platform, with Go's names for architectures."""

from __future__ import annotations

import platform as _platform

from berth.errors import NotFound
from berth.image.registry.manifest import Descriptor, Platform

_MACHINES: dict[str, tuple[str, str | None]] = {
    "x86_64": ("amd64", None), "amd64": ("amd64", None),
    "aarch64": ("arm64", None), "arm64": ("arm64", None),
    "armv7l": ("arm", "v7"), "armv6l": ("arm", "v6"),
    "i386": ("386", None), "i686": ("386", None),
    "ppc64le": ("ppc64le", None), "s390x": ("s390x", None), "riscv64": ("riscv64", None),
}


def host_platform() -> tuple[str, str, str | None]:
    """("linux", GOARCH, variant) of this machine."""
    machine = _platform.machine().lower()
    arch, variant = _MACHINES.get(machine, (machine, None))
    return "linux", arch, variant


def _variant(arch: str, variant: str | None) -> str | None:
    """arm64's only variant is v8; treat it as unset so "linux/arm64" matches either way."""
    if arch == "arm64" and variant == "v8":
        return None
    return variant or None


def matches(p: Platform, wanted: tuple[str, str, str | None]) -> bool:
    os_, arch, variant = wanted
    if p.os != os_ or p.architecture != arch:
        return False
    want = _variant(arch, variant)
    return want is None or _variant(arch, p.variant) == want


def select(entries: list[Descriptor], wanted: tuple[str, str, str | None],
           where: str) -> Descriptor:
    """The entry for ``wanted`` (an exact variant preferred), or NotFound listing what exists."""
    found = [e for e in entries if e.platform is not None and matches(e.platform, wanted)]
    if found:
        exact = [e for e in found if e.platform is not None
                 and _variant(wanted[1], e.platform.variant) == _variant(wanted[1], wanted[2])]
        return (exact or found)[0]
    available = sorted({str(e.platform) for e in entries if e.platform is not None})
    want = "/".join(x for x in wanted if x)
    raise NotFound(f"{where} has no image for platform {want}; available: "
                   f"{', '.join(available) or 'none'}")

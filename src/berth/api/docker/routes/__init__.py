"""The Docker API's routers, one module per area of the Engine API."""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter

# Each module defines ``router``; a module not written yet is simply absent.
MODULES = ("system", "containers", "streams", "execs", "archives", "images", "build",
           "volumes", "networks")


@dataclass
class DockerState:
    """What the Docker API keeps in memory: exec instances live as long as the daemon (as
    in dockerd, where they are not persisted either)."""

    execs: dict[str, Any] = field(default_factory=dict)


def routers() -> list[APIRouter]:
    found = []
    for name in MODULES:
        try:
            module = importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as e:
            if e.name != f"{__name__}.{name}":
                raise
            continue
        found.append(module.router)
    return found

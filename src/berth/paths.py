"""Where a daemon keeps things on a host (see DESIGN.md, "Where things live")."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

DEFAULT_ROOT = Path("/var/lib/berth")
DEFAULT_RUN_ROOT = Path("/run/berth")


@dataclass(frozen=True)
class HostPaths:
    root: Path
    run_root: Path

    @property
    def store_file(self) -> Path:
        return self.root / "berth.db"

    @property
    def blobs(self) -> Path:
        return self.root / "blobs"

    @property
    def layers(self) -> Path:
        return self.root / "layers"

    @property
    def containers(self) -> Path:
        return self.root / "containers"

    @property
    def volumes(self) -> Path:
        return self.root / "volumes"

    @property
    def tmp(self) -> Path:
        return self.root / "tmp"

    @property
    def socket(self) -> Path:
        return self.run_root / "berth.sock"

    @property
    def docker_socket(self) -> Path:
        return self.run_root / "docker.sock"

    @property
    def runtime_state(self) -> Path:
        """Per-container conmon pid files, exit files and attach sockets (lost on reboot)."""
        return self.run_root / "containers"

    def create(self) -> None:
        for d in (self.root, self.blobs, self.layers, self.containers, self.volumes, self.tmp,
                  self.run_root, self.runtime_state):
            d.mkdir(parents=True, exist_ok=True)
        # Container root is an unprivileged host uid (user namespace): it must be able to
        # traverse (not list) the directories above its rootfs, layers and volumes.
        for d in (self.root, self.layers, self.containers, self.volumes, self.run_root,
                  self.runtime_state):
            d.chmod(0o711)
        self.blobs.chmod(0o700)
        self.tmp.chmod(0o700)

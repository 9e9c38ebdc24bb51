"""Where one container's files live on the host."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from berth.errors import InvalidArgument
from berth.paths import HostPaths

LOG_NAME = "ctr.log"  # conmon's k8s-file log; kept older files are LOG_NAME.<n>
_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


def check_id(cid: str) -> str:
    # The id becomes a path component, a cgroup name and a runc id: keep it plain.
    if not _ID_RE.match(cid):
        raise InvalidArgument(f"invalid container id: {cid!r}")
    return cid


def exit_dir(paths: HostPaths) -> Path:
    return paths.run_root / "exits"


@dataclass(frozen=True)
class ContainerLayout:
    paths: HostPaths
    cid: str

    # --- paths.containers/<id>: survives a reboot -------------------------------------------
    @property
    def dir(self) -> Path:
        return self.paths.containers / self.cid

    @property
    def bundle(self) -> Path:
        return self.dir  # config.json, and conmon's ctl/winsz fifos and attach socket

    @property
    def config(self) -> Path:
        return self.dir / "config.json"

    @property
    def rootfs(self) -> Path:
        return self.dir / "rootfs"

    @property
    def upper(self) -> Path:
        return self.dir / "upper"

    @property
    def work(self) -> Path:
        return self.dir / "work"

    @property
    def empty_lower(self) -> Path:
        return self.dir / "empty"  # the lower dir of an image without layers

    @property
    def log(self) -> Path:
        return self.dir / LOG_NAME

    @property
    def persist(self) -> Path:
        return self.dir / "persist"  # conmon writes "exit" and "oom" here

    @property
    def started_at(self) -> Path:
        return self.dir / "started_at"

    @property
    def ctl(self) -> Path:
        return self.bundle / "ctl"

    # --- paths.runtime_state/<id>: lost on reboot -------------------------------------------
    @property
    def run_dir(self) -> Path:
        return self.paths.runtime_state / self.cid

    @property
    def shm(self) -> Path:
        return self.run_dir / "shm"  # a shareable container's /dev/shm (a tmpfs)

    @property
    def conmon_pidfile(self) -> Path:
        return self.run_dir / "conmon.pid"

    @property
    def container_pidfile(self) -> Path:
        return self.run_dir / "pidfile"

    @property
    def exit_dir(self) -> Path:
        # Shared by all containers (conmon writes exits/<id>), so the agent can watch one dir.
        return exit_dir(self.paths)

    @property
    def exit_file(self) -> Path:
        return self.exit_dir / self.cid

    @property
    def socket_dir(self) -> Path:
        # Shared and short: conmon links <socket_dir>/<id> -> bundle, and a unix socket path
        # must stay under 108 bytes for clients that connect by path.
        return self.paths.run_root / "attach"

    def attach_links(self) -> list[Path]:
        """conmon's link(s) for this container in socket_dir. conmon shortens the link's name
        (a prefix of the id) so that the socket path fits a sockaddr_un; match by prefix and
        by target rather than by re-deriving its rule."""
        try:
            entries = list(self.socket_dir.iterdir())
        except FileNotFoundError:
            return []
        links = []
        for entry in entries:
            if self.cid.startswith(entry.name) and entry.is_symlink():
                try:
                    if Path(os.readlink(entry)) == self.bundle:
                        links.append(entry)
                except OSError:
                    continue
        return links

    @property
    def attach_socket(self) -> Path:
        links = self.attach_links()
        return (links[0] if links else self.socket_dir / self.cid) / "attach"

    @property
    def conmon_errors(self) -> Path:
        return self.run_dir / "conmon.err"

"""Each project's own range of host uids and gids for its containers' user namespaces.

Container root of a project runs as host uid ``base + slot * size`` (the project's
``userns_slot``; 0 is the default project), so root in one project is never the same host
uid as in another. Image layers are unpacked, and volumes owned, per mapping.
"""

from __future__ import annotations

import threading

from berth.errors import Conflict, NotFound
from berth.runtime.base import IdMapping
from berth.store.db import Store
from berth.store.models import Project

USERNS_SIZE = 65536
MAX_HOST_ID = 2**32 - 2  # (uid_t)-1 is "no id"


class IdMaps:
    """The id mapping of a project (None when user namespaces are off: ``base`` 0)."""

    def __init__(self, store: Store | None, base: int, size: int = USERNS_SIZE) -> None:
        if base < 0 or size <= 0:
            raise ValueError(f"invalid user namespace base {base} or size {size}")
        self.store = store
        self.base = base
        self.size = size
        self._cache: dict[str, IdMapping] = {}
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.base > 0

    def mapping(self, slot: int) -> IdMapping:
        host_base = self.base + slot * self.size
        if slot < 0 or host_base + self.size - 1 > MAX_HOST_ID:
            raise Conflict(f"user namespace slot {slot} lies outside the host's uid range "
                           f"(base {self.base}, {self.size} ids per project)")
        return IdMapping(host_base, self.size)

    def for_project(self, project_id: str) -> IdMapping | None:
        if not self.enabled:
            return None
        with self._lock:
            cached = self._cache.get(project_id)
        if cached is not None:
            return cached
        if self.store is None:
            raise NotFound(f"no such project: {project_id}")
        with self.store.session() as s:
            project = s.get(Project, project_id)
            slot = None if project is None else project.userns_slot
        if slot is None:
            raise NotFound(f"no such project: {project_id}")
        found = self.mapping(slot)
        with self._lock:
            self._cache[project_id] = found
        return found

    def forget(self, project_id: str) -> None:
        """A deleted project's name may come back with another slot."""
        with self._lock:
            self._cache.pop(project_id, None)

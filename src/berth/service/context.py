"""Who is asking: every service call is scoped to one project."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

from berth.store.db import DEFAULT_PROJECT


@dataclass(frozen=True)
class Context:
    project_id: str = DEFAULT_PROJECT
    user: str = "admin"
    request_id: str = field(default_factory=lambda: "req-" + secrets.token_hex(8))

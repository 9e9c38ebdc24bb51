"""Who is asking: every service call is scoped to one project, with the caller's role in it."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

from berth.errors import BerthError, NotFound
from berth.store.db import DEFAULT_PROJECT, Store
from berth.store.models import Action

ROLE_RANK = {"reader": 0, "member": 1, "admin": 2}


class Forbidden(BerthError):
    """The caller's role in its own project does not allow it (a reader writing, say)."""

    status = 403


@dataclass(frozen=True)
class Context:
    project_id: str = DEFAULT_PROJECT
    user: str = "admin"
    request_id: str = field(default_factory=lambda: "req-" + secrets.token_hex(8))
    user_id: str = ""
    role: str = "admin"  # in project_id
    is_admin: bool = True  # the cloud's admin: may act in any project
    all_projects: bool = False  # an admin's explicit ask to list across projects

    def require(self, role: str, what: str) -> None:
        if ROLE_RANK[self.role] < ROLE_RANK[role]:
            raise Forbidden(f"{what} needs the {role} role in project {self.project_id}; "
                            f"{self.user} is a {self.role}")


def find_action(store: Store, ctx: Context, action_id: int) -> Action:
    """One of the project's actions (a container's or a pull); another project's is a 404."""
    with store.session() as s:
        act = s.get(Action, action_id)
    if act is None or act.project_id != ctx.project_id:
        raise NotFound(f"no such action: {action_id}")
    return act

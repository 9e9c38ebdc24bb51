"""Projects, users, roles and API tokens: who may act, where, and how much.

A token is ``berth_<id>_<secret>``: the id finds the row, the secret is checked against its
SHA-256 (a token is 256 random bits, so a fast hash is enough; compared in constant time). It
is shown once, when made. Roles rank reader < member < admin; a user's role in a project comes
from a membership; the cloud's admins (``users.is_admin``) may act in any project.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import random
import re
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from berth.errors import Conflict, InvalidArgument, NotFound, Unauthorized
from berth.service.context import Context
from berth.service.paging import Listing, PageRequest, Sort, listing, marker_position, page_rows
from berth.store.db import DEFAULT_PROJECT, Store
from berth.store.models import (
    Container,
    Image,
    Membership,
    Network,
    Project,
    RegistryCredential,
    Service,
    Token,
    User,
    Volume,
)

log = logging.getLogger("berth.identity")
SLOT_ATTEMPTS = 30
ROLES = ("reader", "member", "admin")
RANK = {role: i for i, role in enumerate(ROLES)}
ADMIN_USER = "admin"
_NAME = re.compile(r"[a-z0-9](?:[a-z0-9_-]{0,62}[a-z0-9])?")
_TOKEN = re.compile(r"berth_([0-9a-f]{16})_([A-Za-z0-9_-]{43})")
MAX_TOKEN_LIFETIME = 10 * 365 * 86400
PROJECT_SORT = Sort(("name", "created_at"), "name", "asc")
USER_SORT = Sort(("name", "created_at"), "name", "asc")
TOKEN_SORT = Sort(("created_at", "name", "id"), "created_at", "asc")


def check_name(kind: str, name: str) -> str:
    """Project and user names: lowercase letters, digits, '-' and '_' (no dots or slashes:
    they end up in paths and URLs)."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise InvalidArgument(f"invalid {kind} name {name!r}: 1-64 of a-z, 0-9, '-', '_', "
                              "starting and ending with a letter or digit")
    return name


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True)
class Principal:
    """An authenticated caller."""

    user_id: str
    user: str
    is_admin: bool
    project_id: str  # the project its token acts in
    via: str  # "token <id>" or "unix socket (uid 0)"


class IdentityService:
    def __init__(self, store: Store) -> None:
        self.store = store
        self._local_admin: Principal | None = None  # the admin user is never renamed or removed

    # -- bootstrap --------------------------------------------------------------------------

    def bootstrap(self, token_file: Path) -> str | None:
        """On first start: the admin user, a membership in the default project, and a token
        written to ``token_file`` (0600). Returns the path written, or None if not first."""
        with self.store.session() as s:
            if s.scalars(select(User).where(User.name == ADMIN_USER)).first() is not None:
                return None
        user = self.create_user(ADMIN_USER, is_admin=True)
        self.set_role(user["id"], DEFAULT_PROJECT, "admin")
        made = self.create_token(user["id"], DEFAULT_PROJECT, "bootstrap")
        fd = os.open(token_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(made["token"] + "\n")
        return str(token_file)

    def local_admin(self) -> Principal:
        """Who root on the unix socket is, when the daemon maps it to the admin (asked on
        every request over the socket: looked up once)."""
        if self._local_admin is None:
            with self.store.session() as s:
                user = s.scalars(select(User).where(User.name == ADMIN_USER)).one()
            self._local_admin = Principal(user.id, user.name, True, DEFAULT_PROJECT,
                                          "unix socket (uid 0)")
        return self._local_admin

    def certificate_user(self, name: str) -> Principal:
        """Who a verified TLS client certificate (subject CN ``name``) is: that user, acting
        by default in its first project (by name; an admin without one: the default)."""
        with self.store.session() as s:
            user = s.scalars(select(User).where(User.name == name)).first()
            first = None if user is None else s.scalars(
                select(Membership.project_id).where(Membership.user_id == user.id)
                .order_by(Membership.project_id)).first()
        if user is None:
            raise Unauthorized(f"the client certificate names no Berth user ({name!r})")
        if first is None and not user.is_admin:
            raise Unauthorized(f"user {name} (client certificate) is in no project")
        return Principal(user.id, user.name, user.is_admin, first or DEFAULT_PROJECT,
                         f"client certificate CN={name}")

    # -- authentication ---------------------------------------------------------------------

    def authenticate(self, token: str) -> Principal:
        m = _TOKEN.fullmatch(token.strip())
        if m is None:
            raise Unauthorized("malformed token: expected berth_<id>_<secret>")
        with self.store.session() as s:
            row = s.get(Token, m.group(1))
            user = s.get(User, row.user_id) if row is not None else None
        # One message for every failure: a caller learns nothing about which tokens exist.
        refused = Unauthorized("invalid, expired or revoked token")
        if row is None or user is None:
            _hash(m.group(2))  # same work either way
            raise refused
        if not hmac.compare_digest(row.secret_hash, _hash(m.group(2))):
            raise refused
        if row.revoked_at is not None or (row.expires_at is not None
                                          and row.expires_at <= time.time()):
            raise refused
        return Principal(user.id, user.name, user.is_admin, row.project_id, f"token {row.id}")

    def context(self, who: Principal, project: str | None, request_id: str | None,
                all_projects: bool = False) -> Context:
        """The caller's context in ``project`` (default: its token's). Not a member: 404,
        as if the project did not exist."""
        project_id = project or who.project_id
        with self.store.session() as s:
            proj = s.get(Project, project_id)
            # the cloud's admins act in any project: their memberships do not matter here
            member = None if who.is_admin else s.get(Membership, (who.user_id, project_id))
        if proj is None or (member is None and not who.is_admin):
            raise NotFound(f"no such project: {project_id}")
        role = "admin" if who.is_admin else member.role  # type: ignore[union-attr]
        if all_projects and not who.is_admin:
            raise NotFound("all_projects is for admins")  # like any unknown thing
        kw: dict[str, Any] = {"request_id": request_id[:64]} if request_id else {}
        return Context(project_id=project_id, user=who.user, user_id=who.user_id, role=role,
                       is_admin=who.is_admin, all_projects=all_projects, **kw)

    # -- projects ---------------------------------------------------------------------------

    def create_project(self, name: str) -> dict[str, Any]:
        check_name("project", name)
        # Two creates may pick the same next slot: the loser tries again, after a random
        # pause so that a burst of creates does not collide round after round.
        for attempt in range(SLOT_ATTEMPTS):
            if attempt:
                time.sleep(random.uniform(0, 0.005 * attempt))
            try:
                with self.store.session() as s:
                    if s.get(Project, name) is not None:
                        raise Conflict(f"project {name} exists")
                    slot = (s.scalar(select(func.max(Project.userns_slot))) or 0) + 1
                    s.add(Project(id=name, name=name, created_at=time.time(),
                                  userns_slot=slot, grants=[], quota_serial=0))
                return self.project(name)
            except IntegrityError:
                continue
        raise Conflict(f"project {name} could not be created (too many at once): try again")

    def project(self, project_id: str) -> dict[str, Any]:
        with self.store.session() as s:
            p = s.get(Project, project_id)
            if p is None:
                raise NotFound(f"no such project: {project_id}")
            members = s.scalars(select(Membership).where(
                Membership.project_id == project_id)).all()
            names = {u.id: u.name for u in s.scalars(select(User)).all()}
        return {"id": p.id, "name": p.name, "created_at": p.created_at,
                "userns_slot": p.userns_slot, "grants": list(p.grants or []),
                "members": sorted(({"user": names.get(m.user_id, m.user_id), "role": m.role}
                                   for m in members), key=lambda m: m["user"])}

    def projects(self, who: Principal, page: PageRequest | None = None) -> Listing:
        """The projects ``who`` may see (admins: all), by name unless page says otherwise."""
        key, desc = PROJECT_SORT.choose(page)
        scope = select(Project)
        if not who.is_admin:
            scope = scope.join(Membership, Membership.project_id == Project.id).where(
                Membership.user_id == who.user_id)
        order = (Project.name,) if key == "name" else (Project.created_at, Project.name)
        with self.store.session() as s:
            after = None
            if page is not None and page.marker is not None:
                after = marker_position(s, scope, order, Project.name == page.marker,
                                        page.marker)
            rows, more = page_rows(s, scope, order, desc, page.limit if page else None, after)
        return listing([self.project(p.id) for p in rows], more, lambda p: p["name"])

    def delete_project(self, project_id: str) -> None:
        if project_id == DEFAULT_PROJECT:
            raise Conflict("the default project cannot be deleted")
        with self.store.session() as s:
            in_use = sum(s.scalar(select(func.count()).select_from(model).where(
                model.project_id == project_id)) or 0
                for model in (Container, Image, Volume, Service))
            in_use += s.scalar(select(func.count()).select_from(Network).where(
                Network.project_id == project_id, Network.builtin.is_(False))) or 0
            if in_use:
                raise Conflict(f"project {project_id} still has {in_use} containers, images, "
                               "volumes, networks or services: remove them first")
            p = s.get(Project, project_id)
            if p is None:
                raise NotFound(f"no such project: {project_id}")
            for model in (Membership, Token, RegistryCredential, Network):  # its "bridge"
                for row in s.scalars(select(model).where(model.project_id == project_id)):
                    s.delete(row)
            s.delete(p)

    def set_grants(self, project_id: str, grants: list[str]) -> dict[str, Any]:
        from berth.service.grants import GRANTS

        unknown = sorted(set(grants) - set(GRANTS))
        if unknown:
            raise InvalidArgument(f"unknown grant {unknown[0]!r}: use {', '.join(GRANTS)}")
        with self.store.session() as s:
            p = s.get(Project, project_id)
            if p is None:
                raise NotFound(f"no such project: {project_id}")
            p.grants = sorted(set(grants))
        return self.project(project_id)

    # -- users and roles --------------------------------------------------------------------

    def create_user(self, name: str, is_admin: bool = False) -> dict[str, Any]:
        check_name("user", name)
        with self.store.session() as s:
            if s.scalars(select(User).where(User.name == name)).first() is not None:
                raise Conflict(f"user {name} exists")
            user = User(id=secrets.token_hex(16), name=name, is_admin=is_admin,
                        created_at=time.time())
            s.add(user)
        return {"id": user.id, "name": name, "is_admin": is_admin}

    def user_by_name(self, name: str) -> User:
        with self.store.session() as s:
            user = s.scalars(select(User).where(User.name == name)).first()
        if user is None:
            raise NotFound(f"no such user: {name}")
        return user

    def is_member(self, user_id: str, project_id: str) -> bool:
        with self.store.session() as s:
            return s.get(Membership, (user_id, project_id)) is not None

    def users(self, project_id: str | None = None, page: PageRequest | None = None
              ) -> Listing:
        """Every user, or a project's members; by name unless page says otherwise."""
        key, desc = USER_SORT.choose(page)
        order = (User.name,) if key == "name" else (User.created_at, User.name)
        with self.store.session() as s:
            q = select(User)
            if project_id is not None:
                q = q.join(Membership, Membership.user_id == User.id).where(
                    Membership.project_id == project_id)
            after = None
            if page is not None and page.marker is not None:
                after = marker_position(s, q, order, User.name == page.marker, page.marker)
            rows, more = page_rows(s, q, order, desc, page.limit if page else None, after)
            roles = {} if project_id is None else {
                m.user_id: m.role for m in s.scalars(select(Membership).where(
                    Membership.project_id == project_id))}
        return listing([{"id": u.id, "name": u.name, "is_admin": u.is_admin,
                         **({"role": roles[u.id]} if u.id in roles else {})} for u in rows],
                       more, lambda u: u["name"])

    def set_role(self, user_id: str, project_id: str, role: str | None) -> None:
        """Give a user a role in a project (None: take it away)."""
        if role is not None and role not in ROLES:
            raise InvalidArgument(f"invalid role {role!r}: use {', '.join(ROLES)}")
        with self.store.session() as s:
            if s.get(Project, project_id) is None:
                raise NotFound(f"no such project: {project_id}")
            if s.get(User, user_id) is None:
                raise NotFound(f"no such user: {user_id}")
            row = s.get(Membership, (user_id, project_id))
            if role is None:
                if row is not None:
                    s.delete(row)
            elif row is None:
                s.add(Membership(user_id=user_id, project_id=project_id, role=role))
            else:
                row.role = role

    # -- tokens -----------------------------------------------------------------------------

    def create_token(self, user_id: str, project_id: str, name: str,
                     expires_in: float | None = None) -> dict[str, Any]:
        """The only time the secret is seen: the caller must show it now."""
        if expires_in is not None and not 0 < expires_in <= MAX_TOKEN_LIFETIME:
            raise InvalidArgument(f"expires_in must be 1 to {MAX_TOKEN_LIFETIME} seconds")
        if not 1 <= len(name) <= 128:
            raise InvalidArgument("token name must be 1 to 128 characters")
        token_id, secret = secrets.token_hex(8), secrets.token_urlsafe(32)
        now = time.time()
        with self.store.session() as s:
            s.add(Token(id=token_id, user_id=user_id, project_id=project_id, name=name,
                        secret_hash=_hash(secret), created_at=now,
                        expires_at=now + expires_in if expires_in else None))
        return {**self._token_view_by_id(token_id), "token": f"berth_{token_id}_{secret}"}

    def tokens(self, user_id: str | None, project_id: str | None,
               page: PageRequest | None = None) -> Listing:
        """A user's tokens (None: everyone's), oldest first unless page says otherwise."""
        key, desc = TOKEN_SORT.choose(page)
        order = (Token.id,) if key == "id" else (getattr(Token, key), Token.id)
        with self.store.session() as s:
            q = select(Token)
            if user_id is not None:
                q = q.where(Token.user_id == user_id)
            if project_id is not None:
                q = q.where(Token.project_id == project_id)
            after = None
            if page is not None and page.marker is not None:
                after = marker_position(s, q, order, Token.id == page.marker, page.marker)
            rows, more = page_rows(s, q, order, desc, page.limit if page else None, after)
        return listing([_token_view(t) for t in rows], more, lambda t: t["id"])

    def token(self, token_id: str) -> Token:
        with self.store.session() as s:
            row = s.get(Token, token_id)
        if row is None:
            raise NotFound(f"no such token: {token_id}")
        return row

    def revoke(self, token_id: str) -> None:
        with self.store.session() as s:
            row = s.get(Token, token_id)
            if row is None:
                raise NotFound(f"no such token: {token_id}")
            if row.revoked_at is None:
                row.revoked_at = time.time()

    def _token_view_by_id(self, token_id: str) -> dict[str, Any]:
        return _token_view(self.token(token_id))


def _token_view(t: Token) -> dict[str, Any]:
    return {"id": t.id, "name": t.name, "user_id": t.user_id, "project": t.project_id,
            "created_at": t.created_at, "expires_at": t.expires_at,
            "revoked": t.revoked_at is not None}

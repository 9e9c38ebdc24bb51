"""Registry logins a project keeps: encrypted at rest, never shown, only sent where they belong.

The secret is sealed with a key file in the host's root (0600), so a copy of the store alone
does not give the passwords away. Lookups are by exact registry host: a credential saved for
``registry.example.com`` is never offered to ``evil.example.com`` or to a redirect target.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import select

from berth.errors import InvalidArgument, NotFound
from berth.service.context import Context
from berth.store.db import Store
from berth.store.models import RegistryCredential

_HOST = re.compile(r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.[a-zA-Z0-9]"
                   r"(?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*(?::[0-9]{1,5})?|\[[0-9a-fA-F:.]+\](?::[0-9]{1,5})?")
MAX_FIELD = 4096


def normalize_host(host: str) -> str:
    """A registry host as the user names it, without a scheme or path; Docker Hub's aliases
    are one host."""
    text = host.strip().removeprefix("https://").removeprefix("http://").rstrip("/")
    if not _HOST.fullmatch(text):
        raise InvalidArgument(f"invalid registry host {host!r}: expected HOST or HOST:PORT")
    text = text.lower()
    if text in ("docker.io", "index.docker.io", "registry-1.docker.io"):
        return "docker.io"
    return text


class _Sealer:
    """Fernet with a per-host key, created on first use."""

    def __init__(self, key_file: Path) -> None:
        self.key_file = key_file
        self._fernet = None

    def _get(self):  # noqa: ANN202 - cryptography's Fernet, imported lazily
        if self._fernet is None:
            from cryptography.fernet import Fernet

            try:
                key = self.key_file.read_bytes().strip()
            except FileNotFoundError:
                key = Fernet.generate_key()
                fd = os.open(self.key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "wb") as f:
                    f.write(key)
            self._fernet = Fernet(key)
        return self._fernet

    def seal(self, secret: str) -> str:
        return self._get().encrypt(secret.encode()).decode()

    def open(self, token: str) -> str:
        return self._get().decrypt(token.encode()).decode()


class CredentialService:
    def __init__(self, store: Store, key_file: Path) -> None:
        self.store = store
        self._sealer = _Sealer(key_file)

    def save(self, ctx: Context, host: str, username: str, password: str) -> str:
        host = normalize_host(host)
        for what, value in (("username", username), ("password", password)):
            if not value or len(value) > MAX_FIELD or "\x00" in value:
                raise InvalidArgument(f"{what} must be 1 to {MAX_FIELD} characters")
        sealed = self._sealer.seal(password)
        with self.store.session() as s:
            row = s.get(RegistryCredential, (ctx.project_id, host))
            if row is None:
                s.add(RegistryCredential(project_id=ctx.project_id, registry_host=host,
                                         username=username, secret=sealed,
                                         created_at=time.time()))
            else:
                row.username, row.secret, row.created_at = username, sealed, time.time()
        return host

    def remove(self, ctx: Context, host: str) -> None:
        host = normalize_host(host)
        with self.store.session() as s:
            row = s.get(RegistryCredential, (ctx.project_id, host))
            if row is None:
                raise NotFound(f"not logged in to {host}")
            s.delete(row)

    def list(self, ctx: Context) -> list[dict[str, object]]:
        """Hosts and user names only: the secret never leaves the daemon."""
        with self.store.session() as s:
            rows = s.scalars(select(RegistryCredential).where(
                RegistryCredential.project_id == ctx.project_id)
                .order_by(RegistryCredential.registry_host)).all()
        return [{"registry": r.registry_host, "username": r.username,
                 "created_at": r.created_at} for r in rows]

    def lookup(self, ctx: Context) -> Callable[[str], tuple[str, str] | None]:
        """A function giving (username, password) for exactly one registry host."""

        def credentials_for(host: str) -> tuple[str, str] | None:
            try:
                key = normalize_host(host)
            except InvalidArgument:
                return None
            with self.store.session() as s:
                row = s.get(RegistryCredential, (ctx.project_id, key))
            if row is None:
                return None
            return row.username, self._sealer.open(row.secret)

        return credentials_for

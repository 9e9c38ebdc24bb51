"""Resolve a Docker-style user string against the image's /etc/passwd and /etc/group."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from berth.errors import InvalidArgument
from berth.fsutil import read_file_in_root

MAX_ID = 2**31 - 1  # ids above this are not portable (and -1 means "no change" to chown)


@dataclass(frozen=True)
class PasswdEntry:
    name: str
    uid: int
    gid: int
    home: str


@dataclass(frozen=True)
class GroupEntry:
    name: str
    gid: int
    members: tuple[str, ...]


@dataclass(frozen=True)
class ResolvedUser:
    uid: int
    gid: int
    additional_gids: list[int] = field(default_factory=list)
    home: str = "/"


def _numeric(text: str) -> int | None:
    if not text.isdigit():
        return None
    value = int(text)
    if value > MAX_ID:
        raise InvalidArgument(f"id {text} is out of range")
    return value


def parse_passwd(data: bytes) -> list[PasswdEntry]:
    """Lines "name:x:uid:gid:gecos:home:shell"; malformed lines are skipped, like libc does."""
    entries = []
    for raw in data.decode("utf-8", "replace").splitlines():
        parts = raw.split(":")
        if len(parts) < 4 or not parts[0] or parts[0].startswith("#"):
            continue
        uid, gid = parts[2].strip(), parts[3].strip()
        if not (uid.isdigit() and gid.isdigit()):
            continue
        home = parts[5] if len(parts) > 5 and parts[5] else "/"
        entries.append(PasswdEntry(parts[0], int(uid), int(gid), home))
    return entries


def parse_group(data: bytes) -> list[GroupEntry]:
    """Lines "name:x:gid:member,member"."""
    entries = []
    for raw in data.decode("utf-8", "replace").splitlines():
        parts = raw.split(":")
        if len(parts) < 3 or not parts[0] or parts[0].startswith("#"):
            continue
        gid = parts[2].strip()
        if not gid.isdigit():
            continue
        members = tuple(m.strip() for m in parts[3].split(",") if m.strip()) if len(
            parts) > 3 else ()
        entries.append(GroupEntry(parts[0], int(gid), members))
    return entries


def _lookup_user(users: list[PasswdEntry], spec: str) -> PasswdEntry | None:
    uid = _numeric(spec)
    for entry in users:
        if (uid is not None and entry.uid == uid) or (uid is None and entry.name == spec):
            return entry
    return None


def _resolve_group(groups: list[GroupEntry], spec: str) -> int:
    gid = _numeric(spec)
    if gid is not None:
        return gid
    for entry in groups:
        if entry.name == spec:
            return entry.gid
    raise InvalidArgument(f"unable to find group {spec}: no matching entries in group file")


def resolve_user(rootfs: Path, user: str) -> ResolvedUser:
    """"" -> root; "name" | "uid" | "uid:gid" | "name:group" (any mix of names and numbers).

    Numeric ids need no passwd entry (gid then defaults to 0, as in Docker). Supplementary
    groups come from /etc/group membership, only when no group was given explicitly.
    """
    user_part, _, group_part = (user or "0").partition(":")
    if not user_part:
        raise InvalidArgument(f"invalid user {user!r}")
    users = parse_passwd(read_file_in_root(rootfs, "/etc/passwd") or b"")
    entry = _lookup_user(users, user_part)
    if entry is None:
        uid = _numeric(user_part)
        if uid is None:
            raise InvalidArgument(
                f"unable to find user {user_part}: no matching entries in passwd file")
        entry = PasswdEntry("", uid, 0, "/")

    need_groups = bool(group_part) or bool(entry.name)
    groups = parse_group(read_file_in_root(rootfs, "/etc/group") or b"") if need_groups else []
    if group_part:
        return ResolvedUser(entry.uid, _resolve_group(groups, group_part), [], entry.home)
    extra = sorted({g.gid for g in groups if entry.name and entry.name in g.members}
                   - {entry.gid})
    return ResolvedUser(entry.uid, entry.gid, extra, entry.home)


def supplementary_gids(rootfs: Path, user: ResolvedUser, group_add: list[str]) -> list[int]:
    """The user's own supplementary groups and the container's --group-add ones, without
    the primary group."""
    return sorted({*user.additional_gids, *resolve_groups(rootfs, group_add)} - {user.gid})


def resolve_groups(rootfs: Path, groups: list[str]) -> list[int]:
    """Supplementary groups asked for by name (the image's /etc/group) or number."""
    if not groups:
        return []
    known = parse_group(read_file_in_root(rootfs, "/etc/group") or b"") \
        if any(_numeric(g) is None for g in groups) else []
    return [_resolve_group(known, g) for g in groups]

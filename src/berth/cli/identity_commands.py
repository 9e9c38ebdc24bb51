"""`berth project|user|token|whoami|quota`: tenancy, on top of the SDK."""

from __future__ import annotations

import argparse
import re
import sys
from datetime import UTC, datetime

from berth.cli.convert import UsageError, digits, parse_size
from berth.cli.output import each, emit, inspect_each
from berth.client import Client

TYPE_CHECKING = False  # importing typing costs ~10 ms of CLI start-up; annotations are strings
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw]?)")
_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration(text: str) -> float:
    """'3600', '90m', '12h', '30d', '8w' -> seconds."""
    m = _DURATION.fullmatch(text.strip().lower())
    if not m or float(m.group(1)) <= 0:
        raise UsageError(f"invalid duration {text!r}: a positive number with an optional unit "
                         "(s, m, h, d, w), e.g. 30d")
    return float(m.group(1)) * _SECONDS[m.group(2)]


def _when(ts: float | None) -> str:
    if not ts:
        return "never"
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


# -- projects -------------------------------------------------------------------------------

PROJECT_COLUMNS: list[tuple[str, Callable[[dict], Any]]] = [
    ("NAME", lambda p: p["name"]),
    ("MEMBERS", lambda p: len(p.get("members") or [])),
    ("GRANTS", lambda p: ",".join(p.get("grants") or []) or "-"),
    ("CREATED", lambda p: _when(p.get("created_at"))),
]
MEMBER_COLUMNS: list[tuple[str, Callable[[dict], Any]]] = [
    ("USER", lambda m: m["user"]), ("ROLE", lambda m: m["role"])]


def cmd_project(client: Client, args: argparse.Namespace) -> int:
    sub, fmt = args.project_cmd, args.output
    projects = client.projects
    if sub == "ls":
        rows = list(projects.list())  # a plain list: yaml does not dump list subclasses
        if args.quiet:
            for p in rows:
                print(p["name"])
        else:
            emit(rows, fmt, PROJECT_COLUMNS)
    elif sub == "create":
        made = projects.create(args.name)
        if fmt == "table":
            print(made["name"])
        else:
            emit(made, fmt)
    elif sub == "rm":
        return each(args.projects, projects.remove)
    elif sub == "inspect":
        return inspect_each(args.projects, projects.get, fmt, args.format)
    elif sub in ("grant", "ungrant"):
        have = set(projects.get(args.project).get("grants") or [])
        want = have | set(args.grants) if sub == "grant" else have - set(args.grants)
        done = projects.set_grants(args.project, sorted(want))
        if fmt == "table":
            print(f"{done['name']}: {', '.join(done.get('grants') or []) or 'no grants'}")
        else:
            emit(done, fmt)
    elif sub == "member":
        return _member(client, args)
    return 0


def _member(client: Client, args: argparse.Namespace) -> int:
    sub, fmt = args.member_cmd, args.output
    if sub == "set":
        project = client.projects.set_member(args.project, args.user, args.role)
        if fmt == "table":
            print(f"{args.user} is a {args.role} in {args.project}")
        else:
            emit(project, fmt)
    elif sub == "rm":
        client.projects.remove_member(args.project, args.user)
        print(args.user)
    elif sub == "ls":
        emit(client.projects.get(args.project).get("members") or [], fmt, MEMBER_COLUMNS)
    return 0


# -- users ----------------------------------------------------------------------------------

USER_COLUMNS: list[tuple[str, Callable[[dict], Any]]] = [
    ("NAME", lambda u: u["name"]), ("ROLE", lambda u: u.get("role") or "-"),
    ("ADMIN", lambda u: "yes" if u.get("is_admin") else "no"), ("ID", lambda u: u["id"]),
]


def cmd_user(client: Client, args: argparse.Namespace) -> int:
    if args.user_cmd == "ls":
        rows = list(client.users.list(all_projects=args.all_projects))
        if args.quiet:
            for u in rows:
                print(u["name"])
        else:
            emit(rows, args.output, USER_COLUMNS)
    elif args.user_cmd == "create":
        made = client.users.create(args.name, is_admin=args.admin)
        if args.output == "table":
            print(made["name"])
        else:
            emit(made, args.output)
    return 0


# -- tokens ---------------------------------------------------------------------------------

def _token_state(t: dict[str, Any]) -> str:
    if t.get("revoked"):
        return "revoked"
    if t.get("expires_at") and t["expires_at"] <= datetime.now(UTC).timestamp():
        return "expired"
    return "active"


TOKEN_COLUMNS: list[tuple[str, Callable[[dict], Any]]] = [
    ("ID", lambda t: t["id"]), ("NAME", lambda t: t["name"]),
    ("PROJECT", lambda t: t["project"]), ("STATE", _token_state),
    ("CREATED", lambda t: _when(t["created_at"])), ("EXPIRES", lambda t: _when(t["expires_at"])),
]


def cmd_token(client: Client, args: argparse.Namespace) -> int:
    sub = args.token_cmd
    if sub == "create":
        expires = parse_duration(args.expires_in) if args.expires_in else None
        made = client.tokens.create(args.name, expires_in=expires, user=args.user)
        if args.output == "table":
            print(made["token"], flush=True)  # stdout: the secret alone, for $(…)
        else:
            emit(made, args.output)
        sys.stderr.write(
            f"berth: token {made['id']} ({made['name']}) acts in project {made['project']}, "
            f"expires {_when(made.get('expires_at'))}. Its secret is shown only now: store it "
            "somewhere safe; it cannot be shown again.\n")
    elif sub == "ls":
        rows = list(client.tokens.list(all_projects=args.all_projects))
        if args.quiet:
            for t in rows:
                print(t["id"])
        else:
            emit(rows, args.output, TOKEN_COLUMNS)
    elif sub == "revoke":
        return each(args.tokens, client.tokens.revoke)
    return 0


# -- whoami and quotas ----------------------------------------------------------------------

def cmd_whoami(client: Client, args: argparse.Namespace) -> int:
    me = client.whoami()
    if args.output != "table":
        emit(me, args.output)
        return 0
    for key, value in me.items():
        print(f"{key}: {value}")
    return 0


def parse_limits(items: list[str]) -> dict[str, int]:
    """containers=10 memory=8g … -> {resource: limit}; -1 or 'unlimited': no limit."""
    out: dict[str, int] = {}
    for item in items:
        resource, sep, value = item.partition("=")
        value = value.strip().lower()
        if not sep or not resource or not value:
            raise UsageError(f"invalid quota {item!r}: expected RESOURCE=LIMIT, e.g. "
                             "containers=10 or memory=8g")
        if value in ("unlimited", "none", "-1"):
            out[resource] = -1
        elif digits(value):
            out[resource] = int(value)
        else:
            out[resource] = parse_size(value, f"limit for {resource}")
    return out


def _used(r: dict[str, Any]) -> Any:
    return next((r[k] for k in ("in_use", "usage", "used") if k in r), None)


def quota_rows(doc: Any) -> list[dict[str, Any]]:
    """One row per resource: {resource: {"limit": …, "in_use": …}} as berthd answers, and
    lists of {"resource": …, "limit": …, "in_use"|"usage"|"used": …} or {"limits": {…},
    "usage": {…}} too."""
    if isinstance(doc, list):
        return [{"resource": r.get("resource") or r.get("name"), "usage": _used(r),
                 "limit": r.get("limit")} for r in doc if isinstance(r, dict)]
    if not isinstance(doc, dict):
        return []
    if isinstance(doc.get("quotas"), list | dict):
        return quota_rows(doc["quotas"])
    limits = doc.get("limits")
    if isinstance(limits, dict):
        usage = doc.get("usage") if isinstance(doc.get("usage"), dict) else {}
        return [{"resource": k, "usage": usage.get(k), "limit": v}
                for k, v in {**dict.fromkeys(usage), **limits}.items()]
    return [{"resource": k, "usage": _used(v), "limit": v.get("limit")}
            for k, v in doc.items() if isinstance(v, dict)]


def _amount(value: Any, resource: str) -> str:
    from berth.cli.output import human_size

    if value is None:
        return "-"
    if isinstance(value, int | float) and value < 0:
        return "unlimited"
    if resource in ("memory", "disk", "images") and isinstance(value, int | float):
        return human_size(value)
    return str(value)


QUOTA_COLUMNS: list[tuple[str, Callable[[dict], Any]]] = [
    ("RESOURCE", lambda r: r["resource"]),
    ("USAGE", lambda r: _amount(r["usage"], r["resource"])),
    ("LIMIT", lambda r: "unlimited" if r["limit"] is None else _amount(r["limit"],
                                                                        r["resource"])),
]


def cmd_quota(client: Client, args: argparse.Namespace) -> int:
    if getattr(args, "quota_cmd", None) == "set":
        doc = client.projects.set_quotas(parse_limits(args.limits))
    else:
        doc = client.projects.quotas()
    if args.output != "table":
        emit(doc, args.output)
        return 0
    rows = quota_rows(doc)
    if rows:
        emit(rows, "table", QUOTA_COLUMNS)
    else:
        emit(doc, "json")
    return 0


COMMANDS: dict[str, Callable[[Client, argparse.Namespace], int]] = {
    "project": cmd_project, "user": cmd_user, "token": cmd_token, "whoami": cmd_whoami,
    "quota": cmd_quota,
}

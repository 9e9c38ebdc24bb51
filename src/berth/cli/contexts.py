"""Named contexts, like docker's: an endpoint and the credentials for it, saved under a name.

Stored in ``$BERTH_CONFIG`` or ``~/.config/berth/config.json`` (mode 0600, replaced
atomically)::

    {"current": "prod", "contexts": {"prod": {"host": "tcp://…", "token": "berth_…", …}}}

Each setting comes from, in order: its flag (--host, --token, --project, --tls-*), its
environment variable (BERTH_HOST, …), the context (--context, BERTH_CONTEXT or the current
one), the default. A context's credentials belong to its endpoint: when --host or BERTH_HOST
names another daemon, the *current* context is left out entirely (a context named with
--context or BERTH_CONTEXT always applies). Tokens are never printed.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys

from berth.cli.convert import UsageError

TYPE_CHECKING = False  # importing typing costs ~10 ms of CLI start-up; annotations are strings
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

DEFAULT = "default"  # no context: flags, environment and defaults only
SETTINGS = {"host": "BERTH_HOST", "token": "BERTH_TOKEN", "project": "BERTH_PROJECT",
            "tls_ca": "BERTH_TLS_CA", "tls_cert": "BERTH_TLS_CERT", "tls_key": "BERTH_TLS_KEY"}
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]{0,63}")
_SCHEMES = ("unix://", "tcp://", "http://", "https://")


def config_path(env: Mapping[str, str] | None = None) -> str:
    env = os.environ if env is None else env
    if env.get("BERTH_CONFIG"):
        return env["BERTH_CONFIG"]
    return os.path.join(os.path.expanduser("~"), ".config", "berth", "config.json")


def load(path: str) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
    except FileNotFoundError:
        return {"current": None, "contexts": {}}
    except (OSError, ValueError) as e:
        raise UsageError(f"cannot read the contexts in {path}: {e}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("contexts", {}), dict):
        raise UsageError(f"cannot read the contexts in {path}: not a Berth config file")
    doc.setdefault("contexts", {})
    doc.setdefault("current", None)
    return doc


def save(path: str, doc: dict[str, Any]) -> None:
    """Write the whole file anew, 0600 from its first byte, and swap it in: a reader sees the
    old file or the new one, never half of one."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, mode=0o700, exist_ok=True)
    tmp = os.path.join(folder, f".{os.path.basename(path)}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(doc, f, indent=2, sort_keys=True)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        import contextlib

        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def resolve(flags: Mapping[str, str | None], context: str | None = None,
            env: Mapping[str, str] | None = None) -> dict[str, str | None]:
    """Host, token, project and TLS files: flag > environment > context > default."""
    env = os.environ if env is None else env
    name = context or env.get("BERTH_CONTEXT") or None
    explicit = name is not None
    saved: dict[str, Any] = {}
    path = config_path(env)
    if explicit or os.path.exists(path):
        doc = load(path)
        if name is None:
            name = doc.get("current")
        if name and name != DEFAULT:
            if name not in doc["contexts"]:
                how = "" if explicit else " (the current one; `berth context use default`)"
                raise UsageError(f"no such context: {name}{how}")
            saved = doc["contexts"][name]
    override = flags.get("host") or env.get("BERTH_HOST")
    if saved and not explicit and override and override != saved.get("host"):
        saved = {}  # its token is for its own host, not this one
    return {key: flags.get(key) or env.get(var) or saved.get(key) or None
            for key, var in SETTINGS.items()}  # host None: the SDK's default


# -- berth context … ----------------------------------------------------------------------

def _view(name: str, ctx: dict[str, Any], current: str | None) -> dict[str, Any]:
    return {"name": name, "current": name == (current or DEFAULT),
            "description": ctx.get("description", ""), "host": ctx.get("host"),
            "project": ctx.get("project"), "token": "set" if ctx.get("token") else "-",
            "tls_ca": ctx.get("tls_ca"), "tls_cert": ctx.get("tls_cert"),
            "tls_key": ctx.get("tls_key")}


def _default_view(current: str | None) -> dict[str, Any]:
    from berth.client.transport import DEFAULT_HOST

    env = os.environ
    return _view(DEFAULT, {"description": "flags, BERTH_* variables and defaults",
                           **{k: env.get(v) for k, v in SETTINGS.items()},
                           "host": env.get("BERTH_HOST") or DEFAULT_HOST}, current)


COLUMNS = [
    ("NAME", lambda c: c["name"] + (" *" if c["current"] else "")),
    ("DESCRIPTION", lambda c: c["description"] or ""),
    ("HOST", lambda c: c["host"]),
    ("PROJECT", lambda c: c["project"] or "-"),
    ("TOKEN", lambda c: c["token"]),
    ("TLS", lambda c: "client cert" if c["tls_cert"] else "ca" if c["tls_ca"] else "-"),
]


def _file(value: str | None, what: str) -> str | None:
    if not value:
        return None
    full = os.path.abspath(os.path.expanduser(value))
    if not os.path.isfile(full):
        raise UsageError(f"{what} {value}: no such file")
    return full


def cmd_context(args: argparse.Namespace) -> int:
    from berth.cli.output import emit

    path = config_path()
    doc = load(path)
    current = doc.get("current")
    sub = args.context_cmd
    if sub == "create":
        name = args.name
        if not _NAME.fullmatch(name) or name == DEFAULT:
            raise UsageError(f"invalid context name {name!r}: letters, digits, '_', '.', '+', "
                             f"'-' (and not {DEFAULT!r})")
        if name in doc["contexts"] and not args.force:
            raise UsageError(f"context {name} exists: remove it first, or give --force")
        if not args.ctx_host.startswith(_SCHEMES):
            raise UsageError(f"invalid host {args.ctx_host!r}: use unix:///path, "
                             "tcp://HOST:PORT or https://HOST:PORT")
        token = sys.stdin.readline().strip() if args.token_stdin else args.ctx_token
        if args.ctx_tls_key and not args.ctx_tls_cert:
            raise UsageError("--tls-key needs --tls-cert")
        ctx = {"host": args.ctx_host, "description": args.description, "token": token,
               "project": args.ctx_project,
               "tls_ca": _file(args.ctx_tls_ca, "--tls-ca"),
               "tls_cert": _file(args.ctx_tls_cert, "--tls-cert"),
               "tls_key": _file(args.ctx_tls_key, "--tls-key")}
        doc["contexts"][name] = {k: v for k, v in ctx.items() if v}
        save(path, doc)
        print(name)
    elif sub == "ls":
        rows = [_default_view(current)] + [_view(n, c, current)
                                           for n, c in sorted(doc["contexts"].items())]
        if args.quiet:
            for row in rows:
                print(row["name"])
        else:
            emit(rows, args.output, COLUMNS)
    elif sub == "use":
        if args.name != DEFAULT and args.name not in doc["contexts"]:
            raise UsageError(f"no such context: {args.name}")
        doc["current"] = None if args.name == DEFAULT else args.name
        save(path, doc)
        print(args.name)
        if os.environ.get("BERTH_HOST"):
            sys.stderr.write("berth: note: BERTH_HOST is set: it takes the place of the "
                             "context's host (and then the current context is not used)\n")
    elif sub == "show":
        print(current or DEFAULT)
    elif sub == "rm":
        failed = 0
        for name in args.names:
            if name not in doc["contexts"]:
                sys.stderr.write(f"berth: no such context: {name}\n")
                failed = 1
            elif name == current and not args.force:
                sys.stderr.write(f"berth: {name} is the current context: `berth context use "
                                 "default` first, or give --force\n")
                failed = 1
            else:
                del doc["contexts"][name]
                if name == current:
                    doc["current"] = None
                print(name)
        save(path, doc)
        return failed
    elif sub == "inspect":
        found, failed = [], 0
        for name in args.names or [current or DEFAULT]:
            if name == DEFAULT:
                found.append(_default_view(current))
            elif name in doc["contexts"]:
                found.append(_view(name, doc["contexts"][name], current))
            else:
                sys.stderr.write(f"berth: no such context: {name}\n")
                failed = 1
        emit(found, "json" if args.output == "table" else args.output)
        return failed
    return 0

"""Docker's shapes for images: list items, inspect, history, removal reports, registry auth,
and a commit body's Config as ``--change`` lines. Pure functions of Berth's image rows."""

from __future__ import annotations

import base64
import binascii
import json
import re
import shlex
from datetime import UTC, datetime
from typing import Any

from berth import jsontext
from berth.errors import InvalidArgument
from berth.image.registry import Credentials
from berth.service.images import config_time
from berth.store.models import Image

ZERO_TIME = "0001-01-01T00:00:00Z"
MAX_AUTH_HEADER = 64 << 10

# The run-config fields dockerd always shows (with these empty values when unset).
_CONFIG_DEFAULTS: dict[str, Any] = {
    "Hostname": "", "Domainname": "", "User": "", "AttachStdin": False, "AttachStdout": False,
    "AttachStderr": False, "Tty": False, "OpenStdin": False, "StdinOnce": False, "Env": None,
    "Cmd": None, "Image": "", "Volumes": None, "WorkingDir": "", "Entrypoint": None,
    "OnBuild": None, "Labels": None}


def created_unix(img: Image) -> int:
    when = config_time(img.config.get("created"))
    return int(when.timestamp()) if when else int(img.created_at)


def created_rfc3339(img: Image) -> str:
    when = config_time(img.config.get("created")) or datetime.fromtimestamp(img.created_at, UTC)
    return when.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _run_config(img: Image) -> dict[str, Any]:
    cfg = img.config.get("config")
    return {**_CONFIG_DEFAULTS, **(cfg if isinstance(cfg, dict) else {})}


def _labels(img: Image) -> dict[str, str] | None:
    cfg = img.config.get("config")
    labels = cfg.get("Labels") if isinstance(cfg, dict) else None
    return labels if isinstance(labels, dict) and labels else None


def list_item(img: Image, tags: list[str]) -> dict[str, Any]:
    """GET /images/json: an untagged image shows as "<none>:<none>", as dockerd 20.10 does."""
    digests = list(img.repo_digests or [])
    return {"Id": img.id, "ParentId": "", "RepoTags": tags or ["<none>:<none>"],
            "RepoDigests": digests or (["<none>@<none>"] if not tags else []),
            "Created": created_unix(img), "Size": img.size, "VirtualSize": img.size,
            "SharedSize": -1, "Labels": _labels(img) or {}, "Containers": -1}


def inspect(img: Image, tags: list[str]) -> dict[str, Any]:
    """GET /images/{name}/json."""
    cfg = img.config
    history = cfg.get("history") if isinstance(cfg.get("history"), list) else []
    last = history[-1] if history and isinstance(history[-1], dict) else {}
    comment = cfg.get("comment") if isinstance(cfg.get("comment"), str) else \
        str(last.get("comment") or "")
    rootfs = cfg.get("rootfs") if isinstance(cfg.get("rootfs"), dict) else {}
    out = {
        "Id": img.id, "RepoTags": tags, "RepoDigests": list(img.repo_digests or []),
        "Parent": "", "Comment": comment, "Created": created_rfc3339(img),
        "Container": str(cfg.get("container") or ""),
        "ContainerConfig": {**_CONFIG_DEFAULTS, "Labels": _labels(img)},
        "DockerVersion": str(cfg.get("docker_version") or ""),
        "Author": str(cfg.get("author") or ""), "Config": _run_config(img),
        "Architecture": str(cfg.get("architecture") or ""), "Os": str(cfg.get("os") or ""),
        "Size": img.size, "VirtualSize": img.size,
        "GraphDriver": {"Name": "overlay2", "Data": None},
        "RootFS": {"Type": str(rootfs.get("type") or "layers"),
                   "Layers": list(rootfs.get("diff_ids") or [la["diff_id"]
                                                            for la in img.layers])},
        "Metadata": {"LastTagTime": ZERO_TIME},
    }
    if cfg.get("variant"):
        out["Variant"] = cfg["variant"]
    return out


def history(rows: list[dict[str, Any]], tags: list[str]) -> list[dict[str, Any]]:
    """GET /images/{name}/history, newest first; older steps have no id ("<missing>")."""
    out = []
    for i, row in enumerate(rows):
        when = config_time(row.get("created"))
        out.append({"Id": row.get("id") or "<missing>",
                    "Created": int(when.timestamp()) if when else 0,
                    "CreatedBy": row.get("created_by") or "", "Tags": tags if i == 0 else None,
                    "Size": row.get("size") or 0, "Comment": row.get("comment") or ""})
    return out


def removal(lines: list[str]) -> list[dict[str, str]]:
    """The service's "untagged: x" / "deleted: id" lines as Docker's report."""
    out = []
    for line in lines:
        kind, _, what = line.partition(": ")
        out.append({"Untagged" if kind == "untagged" else "Deleted": what})
    return out


def _decode_header(header: str, name: str) -> Any:
    if len(header) > MAX_AUTH_HEADER:
        raise InvalidArgument(f"{name} header is too large")
    text = header.strip()
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        doc = jsontext.loads(raw)
    except (binascii.Error, ValueError):
        raise InvalidArgument(f"invalid {name} header: expected base64url-encoded "
                              "JSON") from None
    if not isinstance(doc, dict):
        raise InvalidArgument(f"invalid {name} header: expected a JSON object")
    return doc


def _credentials(doc: dict[str, Any], name: str) -> Credentials | None:
    """One auth config {username, password, ...} (or "auth": base64 "user:password")."""
    username, password = doc.get("username") or "", doc.get("password") or ""
    if not username and isinstance(doc.get("auth"), str) and doc["auth"]:
        try:
            username, _, password = base64.b64decode(doc["auth"]).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise InvalidArgument(f"invalid {name} header: bad auth field") from None
    if doc.get("identitytoken") or doc.get("registrytoken"):
        raise InvalidArgument(f"{name}: identity and registry tokens are not "
                              "supported; log in with a username and password")
    if not isinstance(username, str) or not isinstance(password, str):
        raise InvalidArgument(f"invalid {name} header: username and password must "
                              "be strings")
    if not username and not password:
        return None
    return Credentials(username, password)


def registry_auth(header: str | None) -> Credentials | None:
    """X-Registry-Auth: base64url JSON {username, password, serveraddress, ...} (an "auth"
    field may hold base64 "user:password" instead). Empty or credential-less: None."""
    if not header or not header.strip() or header.strip() in ("e30=", "e30"):  # "{}"
        return None
    return _credentials(_decode_header(header, "X-Registry-Auth"), "X-Registry-Auth")


def registry_config(header: str | None) -> dict[str, Credentials]:
    """X-Registry-Config (docker build): base64url JSON {registry: auth config}, every
    registry the client has credentials for; keyed here by registry host ("docker.io" for
    Docker Hub's "https://index.docker.io/v1/")."""
    if not header or not header.strip():
        return {}
    out: dict[str, Credentials] = {}
    for key, doc in _decode_header(header, "X-Registry-Config").items():
        if not isinstance(key, str) or not isinstance(doc, dict):
            raise InvalidArgument("invalid X-Registry-Config header: expected "
                                  "{registry: {username, password}}")
        creds = _credentials(doc, "X-Registry-Config")
        host = re.sub(r"^https?://", "", key).split("/")[0].lower()
        if host in ("index.docker.io", "registry-1.docker.io"):
            host = "docker.io"
        if creds is not None and host:
            out[host] = creds
    return out


def _quoted_pairs(values: dict[str, Any] | list[str], what: str) -> str:
    pairs = values.items() if isinstance(values, dict) else \
        (v.partition("=")[::2] for v in values)
    words = []
    for key, value in pairs:
        if not isinstance(key, str) or not key or not isinstance(value, str):
            raise InvalidArgument(f"commit Config.{what}: expected string keys and values")
        words.append(shlex.quote(f"{key}={value}"))
    return " ".join(words)


def _string_list(value: Any, what: str) -> list[str]:
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidArgument(f"commit Config.{what}: expected a list of strings")
    return value


# Config fields a commit body may set, as the --change instruction each becomes.
def config_changes(config: dict[str, Any]) -> list[str]:
    """The Config a commit body carries (docker-py's ``conf``) as ``--change`` lines, so the
    service applies it like the CLI's changes. Fields a commit cannot set are refused unless
    empty (clients send whole Config objects full of defaults)."""
    out: list[str] = []
    for key, value in config.items():
        if value in (None, "", [], {}, False):
            continue
        if key in ("Cmd", "Entrypoint"):
            out.append(f"{key.upper()} {json.dumps(_string_list(value, key))}")
        elif key == "Env":
            env = _string_list(value, key)
            if any("=" not in e for e in env):
                raise InvalidArgument("commit Config.Env: expected KEY=VALUE entries")
            out.append(f"ENV {_quoted_pairs(env, key)}")
        elif key == "Labels":
            if not isinstance(value, dict):
                raise InvalidArgument("commit Config.Labels: expected an object")
            out.append(f"LABEL {_quoted_pairs(value, key)}")
        elif key in ("ExposedPorts", "Volumes"):
            if not isinstance(value, dict):
                raise InvalidArgument(f"commit Config.{key}: expected an object")
            word = "EXPOSE" if key == "ExposedPorts" else "VOLUME"
            out += [f"{word} {json.dumps([k]) if word == 'VOLUME' else k}" for k in value]
        elif key in ("User", "WorkingDir", "StopSignal") and isinstance(value, str):
            word = {"User": "USER", "WorkingDir": "WORKDIR", "StopSignal": "STOPSIGNAL"}[key]
            out.append(f"{word} {value}")
        else:
            raise InvalidArgument(f"commit Config.{key} cannot be set on an image by Berth: "
                                  "use Cmd, Entrypoint, Env, Labels, ExposedPorts, Volumes, "
                                  "User, WorkingDir or StopSignal")
    return out

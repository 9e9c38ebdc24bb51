"""Every request is authenticated, then acts in one project with one role.

``Authorization: Bearer berth_<id>_<secret>`` names the caller; without it, a verified TLS client
certificate names a user by its subject CN (api/tlspeer.py), and root on the local unix socket
is the admin when the daemon allows that (``--no-local-root-admin`` turns it off).
``X-Berth-Project`` picks another project the caller belongs to; ``all_projects=true`` lets
an admin list across projects. Reading needs the reader role; anything else needs member.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import HTTPConnection

from berth.api.peercred import PEER_UID
from berth.api.tlspeer import PEER_CN
from berth.errors import Unauthorized
from berth.service.context import Context

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
PROJECT_HEADER = "x-berth-project"


def read_only(endpoint: Any) -> Any:
    """Mark a POST route that only reads or waits (wait, verify): a reader may call it. By
    the route itself, never by the path's shape: an image may be named "team/wait"."""
    endpoint.berth_read_only = True
    return endpoint


def authenticate(conn: HTTPConnection, write: bool) -> Context:
    svc = conn.app.state.services
    header = conn.headers.get("authorization", "")
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise Unauthorized("use Authorization: Bearer <token>")
        who = svc.identity.authenticate(token)
    elif conn.scope.get(PEER_CN):
        who = svc.identity.certificate_user(conn.scope[PEER_CN])
    elif conn.scope.get(PEER_UID) == 0 and svc.local_root_admin:
        who = svc.identity.local_admin()
    else:
        raise Unauthorized("authentication required: give a token (--token or BERTH_TOKEN)")
    all_projects = conn.query_params.get("all_projects", "").lower() in ("1", "true")
    ctx = svc.identity.context(who, conn.headers.get(PROJECT_HEADER) or None,
                               conn.headers.get("x-request-id"), all_projects)
    if write:
        ctx.require("member", "changing things")
    return ctx


def is_write(method: str, endpoint: Any) -> bool:
    return method not in SAFE_METHODS and not getattr(endpoint, "berth_read_only", False)

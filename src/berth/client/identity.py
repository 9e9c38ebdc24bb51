"""Projects, users and tokens in the SDK."""

from __future__ import annotations

from berth.client.paging import Page, fetch
from berth.client.transport import Transport

TYPE_CHECKING = False  # importing typing costs ~10 ms of CLI start-up; annotations are strings
if TYPE_CHECKING:
    from typing import Any


class Projects:
    def __init__(self, t: Transport) -> None:
        self._t = t

    def list(self, *, limit: int | None = None, marker: str | None = None,
             sort: str | None = None) -> Page:
        return fetch(self._t, "/v1/projects", {}, limit=limit, marker=marker, sort=sort)

    def get(self, name: str) -> dict[str, Any]:
        return self._t.call("GET", f"/v1/projects/{name}")

    def create(self, name: str) -> dict[str, Any]:
        return self._t.call("POST", "/v1/projects", body={"name": name})

    def remove(self, name: str) -> None:
        self._t.call("DELETE", f"/v1/projects/{name}")

    def set_grants(self, name: str, grants: list[str]) -> dict[str, Any]:
        return self._t.call("PUT", f"/v1/projects/{name}/grants", body={"grants": grants})

    def set_member(self, name: str, user: str, role: str) -> dict[str, Any]:
        return self._t.call("PUT", f"/v1/projects/{name}/members/{user}", body={"role": role})

    def remove_member(self, name: str, user: str) -> None:
        self._t.call("DELETE", f"/v1/projects/{name}/members/{user}")

    def quotas(self) -> dict[str, Any]:
        return self._t.call("GET", "/v1/quotas")

    def set_quotas(self, limits: dict[str, int]) -> dict[str, Any]:
        return self._t.call("PUT", "/v1/quotas", body=limits)


class Users:
    def __init__(self, t: Transport) -> None:
        self._t = t

    def list(self, all_projects: bool = False, *, limit: int | None = None,
             marker: str | None = None, sort: str | None = None) -> Page:
        return fetch(self._t, "/v1/users", {"all_projects": all_projects or None},
                     limit=limit, marker=marker, sort=sort)

    def create(self, name: str, is_admin: bool = False) -> dict[str, Any]:
        return self._t.call("POST", "/v1/users", body={"name": name, "is_admin": is_admin})


class Tokens:
    def __init__(self, t: Transport) -> None:
        self._t = t

    def list(self, all_projects: bool = False, *, limit: int | None = None,
             marker: str | None = None, sort: str | None = None) -> Page:
        return fetch(self._t, "/v1/tokens", {"all_projects": all_projects or None},
                     limit=limit, marker=marker, sort=sort)

    def create(self, name: str, expires_in: float | None = None,
               user: str | None = None) -> dict[str, Any]:
        """The answer's "token" is the secret: shown this once."""
        body: dict[str, Any] = {"name": name}
        if expires_in is not None:
            body["expires_in"] = expires_in
        if user is not None:
            body["user"] = user
        return self._t.call("POST", "/v1/tokens", body=body)

    def revoke(self, token_id: str) -> None:
        self._t.call("DELETE", f"/v1/tokens/{token_id}")

"""/v1/projects, /v1/users, /v1/tokens, /v1/whoami: tenancy.

Projects and users are the cloud admins' to make; a project's admins manage its members; every
user manages their own tokens. A project the caller is not in answers 404, like one that does
not exist.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from berth.api.deps import Services, context, services
from berth.api.listing import PAGED, paged, paging
from berth.errors import NotFound
from berth.service.context import Context, Forbidden
from berth.service.identity import PROJECT_SORT, TOKEN_SORT, USER_SORT
from berth.service.paging import PageRequest

router = APIRouter(prefix="/v1", tags=["identity"])
Svc = Annotated[Services, Depends(services)]
Ctx = Annotated[Context, Depends(context)]
ProjectPage = Annotated[PageRequest, Depends(paging(PROJECT_SORT))]
UserPage = Annotated[PageRequest, Depends(paging(USER_SORT))]
TokenPage = Annotated[PageRequest, Depends(paging(TOKEN_SORT))]


class ProjectCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=64)


class GrantsUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    grants: list[str] = Field(max_length=16)


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=64)
    is_admin: bool = False


class RoleUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: str = Field(pattern="^(reader|member|admin)$")


class TokenCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=128)
    expires_in: float | None = Field(default=None, gt=0, le=10 * 365 * 86400,
                                     description="seconds until it expires (default: never)")
    user: str | None = Field(default=None, max_length=64,
                             description="admins only: make it for this user")


def _cloud_admin(ctx: Context) -> None:
    if not ctx.is_admin:
        raise Forbidden("only the cloud's admins manage projects and users")


def _project_admin(ctx: Context, project: str) -> None:
    if ctx.is_admin:
        return
    if project != ctx.project_id:
        raise NotFound(f"no such project: {project}")
    ctx.require("admin", "managing the project's members")


@router.get("/whoami")
def whoami(ctx: Ctx) -> dict[str, Any]:
    return {"user": ctx.user, "user_id": ctx.user_id, "project": ctx.project_id,
            "role": ctx.role, "is_admin": ctx.is_admin}


@router.get("/projects", response_model=list[dict[str, Any]], responses=PAGED)
def list_projects(svc: Svc, ctx: Ctx, page: ProjectPage) -> Any:
    """The projects the caller is in (admins: all), by name."""
    from berth.service.identity import Principal

    who = Principal(ctx.user_id, ctx.user, ctx.is_admin, ctx.project_id, "")
    return paged(svc.identity.projects(who, page))


@router.post("/projects", status_code=201)
def create_project(body: ProjectCreate, svc: Svc, ctx: Ctx) -> dict[str, Any]:
    _cloud_admin(ctx)
    return svc.identity.create_project(body.name)


@router.get("/projects/{project}")
def get_project(project: str, svc: Svc, ctx: Ctx) -> dict[str, Any]:
    if not ctx.is_admin and project != ctx.project_id:
        raise NotFound(f"no such project: {project}")
    return svc.identity.project(project)


@router.delete("/projects/{project}", status_code=204)
def delete_project(project: str, svc: Svc, ctx: Ctx) -> None:
    _cloud_admin(ctx)
    svc.identity.delete_project(project)
    if svc.idmaps is not None:
        svc.idmaps.forget(project)  # the name may come back with another uid range


@router.put("/projects/{project}/grants")
def set_grants(project: str, body: GrantsUpdate, svc: Svc, ctx: Ctx) -> dict[str, Any]:
    _cloud_admin(ctx)
    return svc.identity.set_grants(project, body.grants)


@router.put("/projects/{project}/members/{user}")
def set_member(project: str, user: str, body: RoleUpdate, svc: Svc,
               ctx: Ctx) -> dict[str, Any]:
    _project_admin(ctx, project)
    svc.identity.set_role(svc.identity.user_by_name(user).id, project, body.role)
    return svc.identity.project(project)


@router.delete("/projects/{project}/members/{user}", status_code=204)
def remove_member(project: str, user: str, svc: Svc, ctx: Ctx) -> None:
    _project_admin(ctx, project)
    svc.identity.set_role(svc.identity.user_by_name(user).id, project, None)


@router.get("/users", response_model=list[dict[str, Any]], responses=PAGED)
def list_users(svc: Svc, ctx: Ctx, page: UserPage, all_projects: bool = False) -> Any:
    """Admins with all_projects=true see every user; others, their project's members. By
    name (the marker: a user name)."""
    if ctx.is_admin and ctx.all_projects:
        return paged(svc.identity.users(None, page))
    return paged(svc.identity.users(ctx.project_id, page))


@router.post("/users", status_code=201)
def create_user(body: UserCreate, svc: Svc, ctx: Ctx) -> dict[str, Any]:
    _cloud_admin(ctx)
    return svc.identity.create_user(body.name, body.is_admin)


@router.get("/tokens", response_model=list[dict[str, Any]], responses=PAGED)
def list_tokens(svc: Svc, ctx: Ctx, page: TokenPage, all_projects: bool = False) -> Any:
    """Your own tokens (admins with all_projects=true: everyone's), oldest first (the
    marker: a token id). Never their secrets."""
    if ctx.is_admin and ctx.all_projects:
        return paged(svc.identity.tokens(None, None, page))
    return paged(svc.identity.tokens(ctx.user_id, None, page))


@router.post("/tokens", status_code=201)
def create_token(body: TokenCreate, svc: Svc, ctx: Ctx) -> dict[str, Any]:
    """A token acting in the caller's current project. The answer holds the secret: it is
    shown this once and never again."""
    user_id = ctx.user_id
    if body.user is not None:
        _cloud_admin(ctx)
        user_id = svc.identity.user_by_name(body.user).id
        if not svc.identity.is_member(user_id, ctx.project_id):
            raise NotFound(f"user {body.user} is not in project {ctx.project_id}")
    return svc.identity.create_token(user_id, ctx.project_id, body.name, body.expires_in)


@router.delete("/tokens/{token_id}", status_code=204)
def revoke_token(token_id: str, svc: Svc, ctx: Ctx) -> None:
    row = svc.identity.token(token_id)
    if row.user_id != ctx.user_id and not ctx.is_admin:
        raise NotFound(f"no such token: {token_id}")  # someone else's: as if none
    svc.identity.revoke(token_id)

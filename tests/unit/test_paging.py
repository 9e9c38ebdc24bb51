"""Keyset pagination and sorting over a real (SQLite) store, without a daemon."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from berth.errors import InvalidArgument
from berth.service.containers import ContainerService
from berth.service.context import Context
from berth.service.identity import IdentityService
from berth.service.paging import PageRequest, Sort, page_rows
from berth.service.selectors import parse_selector
from berth.store.db import Store
from berth.store.models import Container, Project

ADMIN = Context()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(f"sqlite:///{tmp_path / 'b.db'}")
    yield s
    s.close()


def _containers(store: Store, n: int, project: str = "default") -> list[Container]:
    with store.session() as s:
        if s.get(Project, project) is None:
            s.add(Project(id=project, name=project, created_at=0.0, userns_slot=len(project),
                          grants=[], quota_serial=0))
            s.flush()
        rows = [Container(id=f"{project[:4]}{i:060d}", project_id=project, name=f"c{i:03d}",
                          host="h", image_id="sha256:x", image_ref="busybox", spec={},
                          labels={"app": "web" if i % 3 else "db", "n": str(i)},
                          created_at=1000.0 + i // 2,  # pairs share a time: ties broken by id
                          desired="created", status=("exited", "created", "running")[i % 3],
                          pid=0, exit_code=None, oom_killed=False, error="", restart_count=0,
                          stopped_by_user=False)
                for i in range(n)]
        s.add_all(rows)
    return rows


def _service(store: Store) -> ContainerService:
    return ContainerService(store=store, hub=None, host="h",  # type: ignore[arg-type]
                            capabilities=frozenset(), images=None,  # type: ignore[arg-type]
                            volumes=None)  # type: ignore[arg-type]


def _all_pages(fetch, limit: int) -> list[list]:  # noqa: ANN001
    pages, marker = [], None
    while True:
        page = fetch(PageRequest(limit=limit, marker=marker))
        pages.append(list(page))
        if page.next_marker is None:
            return pages
        marker = page.next_marker


@pytest.mark.parametrize(("sort_key", "sort_dir"), list(itertools.product(
    ["created_at", "name", "status", "id"], [None, "asc", "desc"])))
def test_pages_cover_the_sorted_list_once(store: Store, sort_key: str,
                                          sort_dir: str | None) -> None:
    _containers(store, 25)
    svc = _service(store)
    whole = svc.list(ADMIN, all_=True, page=PageRequest(limit=1000, sort_key=sort_key,
                                                        sort_dir=sort_dir))
    assert len(whole) == 25 and whole.next_marker is None
    values = [(getattr(r, sort_key), r.id) for r in whole]
    desc = sort_dir == "desc" or (sort_dir is None and sort_key == "created_at")
    assert values == sorted(values, reverse=desc)
    pages = _all_pages(lambda p: svc.list(ADMIN, all_=True, page=PageRequest(
        limit=p.limit, marker=p.marker, sort_key=sort_key, sort_dir=sort_dir)), 7)
    assert [len(p) for p in pages] == [7, 7, 7, 4]
    assert [r.id for p in pages for r in p] == [r.id for r in whole]


def test_default_order_is_newest_first_and_default_limit(store: Store) -> None:
    _containers(store, 130)
    svc = _service(store)
    page = svc.list(ADMIN, all_=True, page=PageRequest())
    assert len(page) == 100 and page.next_marker == page[-1].id
    assert page[0].created_at >= page[-1].created_at
    assert len(svc.list(ADMIN, all_=True)) == 130  # no page: the whole list (internal callers)


def test_filters_and_selectors_with_pages(store: Store) -> None:
    _containers(store, 60)
    svc = _service(store)
    sel = parse_selector("app=web")
    pages = _all_pages(lambda p: svc.list(ADMIN, all_=True, selector=sel, page=p), 9)
    got = [r for p in pages for r in p]
    assert len(got) == 40 and all(r.labels["app"] == "web" for r in got)
    # Docker-style filters (some in Python) page the same way
    pages = _all_pages(lambda p: svc.list(ADMIN, filters={"label": ["app=db"],
                                                          "name": ["c0"]}, all_=True, page=p), 4)
    got = [r.name for p in pages for r in p]
    assert sorted(got) == sorted(f"c{i:03d}" for i in range(60) if i % 3 == 0 and i < 100)
    live = svc.list(ADMIN, page=PageRequest(limit=1000))  # default: running ones only
    assert {r.status for r in live} == {"running"} and len(live) == 20


def test_a_marker_keeps_its_place_after_its_item_stopped_matching(store: Store) -> None:
    _containers(store, 12)
    svc = _service(store)
    first = svc.list(ADMIN, filters={"status": ["running"]}, page=PageRequest(limit=2))
    with store.session() as s:
        s.get(Container, first.next_marker).status = "exited"
    rest = svc.list(ADMIN, filters={"status": ["running"]},
                    page=PageRequest(limit=10, marker=first.next_marker))
    assert len(first) + len(rest) == 4
    assert not {r.id for r in first} & {r.id for r in rest}


def test_markers_name_an_item_the_caller_may_see(store: Store) -> None:
    _containers(store, 5)
    _containers(store, 5, project="other")
    svc = _service(store)
    by_name = svc.list(ADMIN, all_=True, page=PageRequest(limit=10, marker="c002",
                                                         sort_key="name"))
    assert [r.name for r in by_name] == ["c003", "c004"]
    for marker in ("nope", "othe" + "0" * 60):  # unknown, or another project's
        with pytest.raises(InvalidArgument, match="invalid marker"):
            svc.list(ADMIN, all_=True, page=PageRequest(marker=marker))
    member = Context(project_id="other", user="bob", role="member", is_admin=False)
    assert {r.project_id for r in svc.list(member, all_=True, all_projects=True)} == {"other"}
    across = svc.list(ADMIN, all_=True, all_projects=True, page=PageRequest(limit=3))
    pages = [across, svc.list(ADMIN, all_=True, all_projects=True,
                              page=PageRequest(limit=100, marker=across.next_marker))]
    assert sorted(r.project_id for p in pages for r in p) == ["default"] * 5 + ["other"] * 5
    with pytest.raises(InvalidArgument, match="ambiguous marker"):  # c001 is in both
        svc.list(ADMIN, all_=True, all_projects=True, page=PageRequest(marker="c001"))


@pytest.mark.parametrize(("page", "words"), [
    (PageRequest(limit=0), "limit"),
    (PageRequest(limit=1001), "limit"),
    (PageRequest(sort_key="spec"), "invalid sort_key"),
    (PageRequest(sort_dir="up"), "invalid sort_dir"),
])
def test_bad_pages(store: Store, page: PageRequest, words: str) -> None:
    with pytest.raises(InvalidArgument, match=words):
        _service(store).list(ADMIN, page=page)


def test_actions_marker_is_an_action_id(store: Store) -> None:
    _containers(store, 1)
    svc = _service(store)
    with pytest.raises(InvalidArgument, match="an action id"):
        svc.actions(ADMIN, "c000", PageRequest(marker="abc"))
    with pytest.raises(InvalidArgument, match="invalid marker"):
        svc.actions(ADMIN, "c000", PageRequest(marker="12345"))
    assert svc.actions(ADMIN, "c000", PageRequest()) == []


def test_identity_lists_page(store: Store) -> None:
    ids = IdentityService(store)
    for i in range(12):
        ids.create_user(f"user{i:02d}")
    names = [u["name"] for p in _all_pages(lambda p: ids.users(None, p), 5) for u in p]
    assert names == sorted(f"user{i:02d}" for i in range(12))
    user = ids.user_by_name("user03")
    for i in range(7):
        ids.create_token(user.id, "default", f"t{i}")
    pages = _all_pages(lambda p: ids.tokens(user.id, None, p), 3)
    assert [len(p) for p in pages] == [3, 3, 1]
    with pytest.raises(InvalidArgument, match="invalid marker"):
        ids.tokens(ids.user_by_name("user04").id, None, PageRequest(marker=pages[0][0]["id"]))
    for i in range(4):
        ids.create_project(f"p{i}")
    from berth.service.identity import Principal

    admin = Principal("", "admin", True, "default", "")
    names = [p["name"] for p in ids.projects(admin, PageRequest(sort_key="name",
                                                                 sort_dir="desc"))]
    assert names == ["p3", "p2", "p1", "p0", "default"]
    ids.set_role(user.id, "p2", "member")
    mine = ids.projects(Principal(user.id, user.name, False, "p2", ""), PageRequest())
    assert [p["name"] for p in mine] == ["p2"]


def test_page_rows_batches_python_filters(store: Store) -> None:
    _containers(store, 600)
    with store.session() as s:
        rows, more = page_rows(s, select(Container), (Container.created_at, Container.id), False,
                               3, keep=lambda r: r.name.endswith("99"))
    assert [r.name for r in rows] == ["c099", "c199", "c299"] and more


def test_sort_defaults() -> None:
    sort = Sort(("created_at", "name"), "created_at", "desc")
    assert sort.choose(None) == ("created_at", True)
    assert sort.choose(PageRequest(sort_key="name")) == ("name", False)
    assert sort.choose(PageRequest(sort_dir="asc")) == ("created_at", False)

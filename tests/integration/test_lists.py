"""Lists of the native API against a real berthd: label selectors, pages (limit + marker,
X-Berth-Next-Marker), sorting, bad input, and an admin's all_projects beside a member's view."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from berth.client import APIError, Client
from tests.integration.daemon import Daemon, empty_project

pytestmark = pytest.mark.integration

N = 25
SUITE = "suite=lists"
OTHER = "lists-b"


@dataclass
class Env:
    d: Daemon
    admin: Client
    bob: Client  # a member of project OTHER only
    names: list[str]  # the N containers, oldest first


def get(client: Client, path: str, **params: Any) -> tuple[Any, str | None]:
    """A raw GET: the body and the next-page marker header."""
    resp = client.transport.open("GET", path, params)
    return json.loads(resp.read()), resp.getheader("X-Berth-Next-Marker")


def refused(client: Client, path: str, **params: Any) -> APIError:
    with pytest.raises(APIError) as err:
        client.transport.call("GET", path, params)
    return err.value


@pytest.fixture(scope="module")
def env(daemon: Daemon) -> Iterator[Env]:
    admin = daemon.client
    names = []
    for i in range(N):
        name = f"ls-{i:02d}"
        admin.containers.create({"image": "busybox", "name": name, "command": ["true"],
                                 "labels": {"suite": "lists", "idx": str(i),
                                            "tier": ("web", "db", "cache")[i % 3],
                                            "env": ("prod", "dev")[i % 2]}}, start=False)
        names.append(name)
    admin.projects.create(OTHER)
    admin.users.create("bob")
    admin.projects.set_member(OTHER, "bob", "member")
    token = Client(daemon.host, project=OTHER).tokens.create("lists", user="bob")["token"]
    bob = Client(daemon.host, token=token)
    yield Env(daemon, admin, bob, names)
    empty_project(bob)


def ours(env: Env, **params: Any) -> tuple[list[dict], str | None]:
    return get(env.admin, "/v1/containers", all="true", selector=SUITE, **params)


# -- selectors -----------------------------------------------------------------------------

@pytest.mark.parametrize(("selector", "expected"), [
    ("tier=web", [i for i in range(N) if i % 3 == 0]),
    ("tier==web", [i for i in range(N) if i % 3 == 0]),
    ("tier!=db", [i for i in range(N) if i % 3 != 1]),
    ("tier in (db,cache),env=prod", [i for i in range(N) if i % 3 and i % 2 == 0]),
    ("tier notin (web, db)", [i for i in range(N) if i % 3 == 2]),
    ("idx in (3,7,11),env notin (dev)", []),
    ("idx in (3,4,11)", [3, 4, 11]),
    ("idx,!nothing", list(range(N))),
    ("!idx", []),
    ("nothing!=x", list(range(N))),
])
def test_selectors_pick_containers(env: Env, selector: str, expected: list[int]) -> None:
    rows, _ = get(env.admin, "/v1/containers", all="true", limit=1000,
                  selector=f"{SUITE},{selector}")
    assert sorted(r["name"] for r in rows) == [env.names[i] for i in expected]


def test_selectors_through_the_sdk_and_beside_docker_filters(env: Env) -> None:
    web = env.admin.containers.list(all=True, selector=f"{SUITE},tier=web")
    assert {c["labels"]["tier"] for c in web} == {"web"} and len(web) == 9
    both = env.admin.containers.list(all=True, selector=SUITE,
                                     filters=["label=tier=web", "label=env=prod"])
    assert sorted(c["name"] for c in both) == [env.names[i] for i in range(0, N, 6)]
    named = env.admin.containers.list(all=True, filters=["name=ls-1"])
    assert sorted(c["name"] for c in named) == [f"ls-{i}" for i in range(10, 20)]
    assert env.admin.containers.list(selector=SUITE) == []  # created, not running: not live


@pytest.mark.parametrize(("selector", "words"), [
    ("tier=", None),  # fine: an empty value
    ("tier in ()", "position 9"),
    ("tier=web,", "position 9"),
    ("tier>1", "unsupported operator"),
    ("tier in (a", "expected ',' or ')'"),
    ("ti er=web", "position 3"),
    ("x=" + "a" * 300, "invalid label value"),
])
def test_bad_selectors_are_400s_naming_the_problem(env: Env, selector: str,
                                                   words: str | None) -> None:
    for path in ("/v1/containers", "/v1/images", "/v1/volumes"):
        if words is None:
            get(env.admin, path, selector=selector)
            continue
        err = refused(env.admin, path, selector=selector)
        assert err.status == 400 and "invalid selector" in err.message and words in err.message
    if words is not None:
        err = refused(env.admin, "/v1/containers", selector="a" * 5000)
        assert err.status == 400 and "selector" in err.message


# -- pages ---------------------------------------------------------------------------------

def test_pages_walk_the_list_once_newest_first(env: Env) -> None:
    pages, marker = [], None
    while True:
        rows, marker = ours(env, limit=10, **({"marker": marker} if marker else {}))
        pages.append([r["name"] for r in rows])
        if marker is None:
            break
        assert marker == rows[-1]["id"]
    assert [len(p) for p in pages] == [10, 10, 5]
    assert [n for p in pages for n in p] == list(reversed(env.names))
    whole, last = ours(env)  # the default page (100) holds them all
    assert [r["name"] for r in whole] == list(reversed(env.names)) and last is None


def test_sdk_pages_and_everything(env: Env) -> None:
    first = env.admin.containers.list(all=True, selector=SUITE, limit=20)
    assert len(first) == 20 and first.next_marker == first[-1]["id"]
    rest = env.admin.containers.list(all=True, selector=SUITE, limit=20,
                                     marker=first.next_marker)
    assert len(rest) == 5 and rest.next_marker is None
    assert len(env.admin.containers.list(all=True, selector=SUITE)) == N  # follows markers
    by_name = env.admin.containers.list(all=True, selector=SUITE, sort="name:desc", limit=3)
    assert [c["name"] for c in by_name] == ["ls-24", "ls-23", "ls-22"]


@pytest.mark.parametrize(("sort_key", "sort_dir", "key"), [
    ("name", "asc", lambda r: r["name"]),
    ("name", "desc", lambda r: r["name"]),
    ("created_at", "asc", lambda r: r["created"]),
    ("status", "asc", lambda r: r["state"]["status"]),
    ("id", "desc", lambda r: r["id"]),
])
def test_sorting_over_pages(env: Env, sort_key: str, sort_dir: str, key: Any) -> None:
    got, marker = [], None
    while True:
        rows, marker = ours(env, limit=7, sort_key=sort_key, sort_dir=sort_dir,
                            **({"marker": marker} if marker else {}))
        got += rows
        if marker is None:
            break
    assert len(got) == N and len({r["id"] for r in got}) == N
    assert [key(r) for r in got] == sorted((key(r) for r in got), reverse=sort_dir == "desc")


@pytest.mark.parametrize(("params", "words"), [
    ({"limit": 0}, "limit"),
    ({"limit": 1001}, "limit"),
    ({"limit": "ten"}, "limit"),
    ({"limit": -5}, "limit"),
    ({"marker": "no-such-container"}, "invalid marker"),
    ({"marker": ""}, "marker"),
    ({"sort_key": "spec"}, "sort_key"),
    ({"sort_key": "size"}, "sort_key"),  # images sort by size; containers do not
    ({"sort_dir": "up"}, "sort_dir"),
])
def test_bad_pages_are_400s(env: Env, params: dict[str, Any], words: str) -> None:
    err = refused(env.admin, "/v1/containers", all="true", **params)
    assert err.status == 400 and words in err.message


def test_actions_log_pages(env: Env) -> None:
    name = env.names[0]
    for i in range(5):
        name = env.admin.containers.rename(name, f"ls-renamed-{i}")["name"]
    acts, marker = get(env.admin, f"/v1/containers/{name}/actions", limit=4)
    assert [a["action"] for a in acts] == ["create"] + ["rename"] * 3
    assert marker == str(acts[-1]["id"])
    more, last = get(env.admin, f"/v1/containers/{name}/actions", limit=4, marker=marker)
    assert [a["action"] for a in more] == ["rename"] * 2 and last is None
    newest = env.admin.containers.actions(name, sort="id:desc", limit=1)
    assert newest[0]["params"]["to"] == name
    assert len(env.admin.containers.actions(name)) == 6
    err = refused(env.admin, f"/v1/containers/{name}/actions", marker="nope")
    assert err.status == 400
    env.admin.containers.rename(name, env.names[0])


def test_images_and_volumes_page_sort_and_select(env: Env) -> None:
    a = env.admin
    for i in range(5):
        a.volumes.create(f"lsv-{i}", labels={"suite": "lists", "n": str(i)})
    vols, marker = get(a, "/v1/volumes", limit=2, selector=SUITE)
    assert [v["name"] for v in vols] == ["lsv-0", "lsv-1"] and marker == "lsv-1"
    vols, marker = get(a, "/v1/volumes", limit=2, selector=SUITE, marker=marker)
    assert [v["name"] for v in vols] == ["lsv-2", "lsv-3"]
    newest = a.volumes.list(selector=f"{SUITE},n in (1,3)", sort="created_at:desc")
    assert [v["name"] for v in newest] == ["lsv-3", "lsv-1"]
    assert all(v["project_id"] == "default" for v in newest)
    assert refused(a, "/v1/volumes", marker="nope").status == 400
    assert refused(a, "/v1/volumes", sort_key="status").status == 400

    for i in range(3):
        a.images.tag("busybox", f"lists/img:{i}")
    images = a.images.list(sort="size:desc")
    assert images and all(img["project_id"] == "default" for img in images)
    assert [img["size"] for img in images] == sorted((i["size"] for i in images), reverse=True)
    assert a.images.list(selector="no-such-label=x") == []
    assert len(a.images.list(selector="!no-such-label")) == len(images)
    page = a.images.list(limit=1)
    assert len(page) == 1 and (page.next_marker is None) == (len(images) == 1)
    assert refused(a, "/v1/images", sort_key="name").status == 400
    assert refused(a, "/v1/images", marker="sha256:" + "0" * 64).status == 400
    for i in range(3):
        a.images.untag(f"lists/img:{i}")
    for i in range(5):
        a.volumes.remove(f"lsv-{i}")


def test_identity_lists_page(env: Env) -> None:
    a = env.admin
    for i in range(3):
        a.users.create(f"lists-u{i}")
    users, marker = get(a, "/v1/users", all_projects="true", limit=2)
    assert len(users) == 2 and marker == users[-1]["name"]
    everyone = a.users.list(all_projects=True)
    assert [u["name"] for u in everyone] == sorted(u["name"] for u in everyone)
    assert {f"lists-u{i}" for i in range(3)} <= {u["name"] for u in everyone}
    projects, marker = get(a, "/v1/projects", limit=1)
    assert [p["name"] for p in projects] == ["default"] and marker == "default"
    rest, _ = get(a, "/v1/projects", marker=marker)
    assert OTHER in [p["name"] for p in rest]
    for i in range(3):
        a.tokens.create(f"lists-t{i}")
    tokens = a.tokens.list(sort="created_at:desc", limit=3)
    assert [t["name"] for t in tokens] == ["lists-t2", "lists-t1", "lists-t0"]
    assert refused(a, "/v1/tokens", marker="0" * 16).status == 400
    assert refused(a, "/v1/users", sort_key="password").status == 400
    assert [p["name"] for p in env.bob.projects.list()] == [OTHER]


# -- all_projects ----------------------------------------------------------------------------

def test_all_projects_for_admins_only(env: Env) -> None:
    bob = env.bob
    bob.images.build_base("busybox")
    box = bob.containers.create({"image": "busybox", "name": "ls-00", "command": ["true"],
                                 "labels": {"suite": "lists", "tier": "web"}}, start=False)
    bob.volumes.create("lsv-b", labels={"suite": "lists"})

    # A member sees only their project, and may not ask for more.
    mine = bob.containers.list(all=True)
    assert [c["id"] for c in mine] == [box["id"]]
    for path in ("/v1/containers", "/v1/images", "/v1/volumes"):
        assert refused(bob, path, all_projects="true").status == 404
    assert [v["name"] for v in bob.volumes.list()] == ["lsv-b"]
    assert {img["project_id"] for img in bob.images.list()} == {OTHER}

    # The admin's own project stays its own; all_projects shows both, each with its project.
    a = env.admin
    assert box["id"] not in {c["id"] for c in a.containers.list(all=True)}
    both = a.containers.list(all=True, selector=f"{SUITE},tier=web", all_projects=True)
    assert {(c["name"], c["project_id"]) for c in both} >= {("ls-00", "default"),
                                                           ("ls-00", OTHER)}
    assert len(both) == 10
    vols = a.volumes.list(selector=SUITE, all_projects=True)
    assert [(v["project_id"], v["name"]) for v in vols] == [(OTHER, "lsv-b")]
    images = a.images.list(all_projects=True)
    assert {img["project_id"] for img in images} == {"default", OTHER}
    # Ids repeat across projects (the same busybox): the marker is then project/id.
    first, marker = get(a, "/v1/images", all_projects="true", limit=1)
    assert marker == f"{first[0]['project_id']}/{first[0]['id']}"
    rest, _ = get(a, "/v1/images", all_projects="true", marker=marker)
    assert len(first) + len(rest) == len(images)
    page, marker = get(a, "/v1/containers", all="true", all_projects="true", limit=N,
                       selector=SUITE)
    rest, last = get(a, "/v1/containers", all="true", all_projects="true", marker=marker,
                     selector=SUITE)
    assert len(page) + len(rest) == N + 1 and last is None

    bob.containers.remove(box["id"], force=True)
    bob.volumes.remove("lsv-b")

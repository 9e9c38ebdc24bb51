"""GET /v1/events against a real berthd: filtered by type, object and label selector, scoped to
the caller's project (an admin's all_projects sees every project), and the image and volume
events beside the containers' ones."""

from __future__ import annotations

import contextlib
import io
import json
import queue
import tarfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from berth.client import APIError, Client
from tests.integration.daemon import Daemon, empty_project, refused

pytestmark = pytest.mark.integration

OTHER = "events-b"


class Stream:
    """An open event stream; subscribed once the constructor returns."""

    def __init__(self, client: Client, **params: Any) -> None:
        self.resp = client.transport.open("GET", "/v1/events", params)
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        with contextlib.suppress(Exception):
            for line in self.resp:
                if line.startswith(b"data: "):
                    self.events.put(json.loads(line[6:]))

    def until(self, last: Callable[[dict[str, Any]], bool],
              timeout: float = 20.0) -> list[dict[str, Any]]:
        """Every event up to and including the first one ``last`` accepts."""
        seen, deadline = [], time.monotonic() + timeout
        while True:
            try:
                event = self.events.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no closing event within {timeout}s; saw {seen}") from None
            seen.append(event)
            if last(event):
                return seen

    def close(self) -> None:
        """End the stream now (closing the response would wait for the reader thread)."""
        self.resp.shutdown()


@dataclass
class Env:
    d: Daemon
    admin: Client
    bob: Client  # a member of OTHER


@pytest.fixture(scope="module")
def env(daemon: Daemon) -> Iterator[Env]:
    admin = daemon.client
    admin.projects.create(OTHER)
    admin.users.create("evbob")
    admin.projects.set_member(OTHER, "evbob", "member")
    token = Client(daemon.host, project=OTHER).tokens.create("ev", user="evbob")["token"]
    bob = Client(daemon.host, token=token)
    bob.images.build_base("busybox")
    yield Env(daemon, admin, bob)
    empty_project(bob)


def named(name: str, action: str) -> Callable[[dict[str, Any]], bool]:
    return lambda e: e.get("name") == name and e.get("action") == action


def test_object_filter_by_name_and_id(env: Env) -> None:
    a = env.admin
    box = a.containers.create({"image": "busybox", "name": "ev-obj", "command": ["true"]})
    by_name = Stream(a, object="ev-obj")
    by_id = Stream(a, object=box["id"][:12])
    a.containers.create({"image": "busybox", "name": "ev-noise", "command": ["true"]})
    a.containers.rename("ev-obj", "ev-obj2")
    a.containers.rename("ev-obj2", "ev-obj")
    for stream in (by_name, by_id):
        seen = stream.until(named("ev-obj", "rename"))
        assert {e["id"] for e in seen} == {box["id"]}  # not ev-noise's create
        assert seen[-1]["oldName"] == "ev-obj2"
        assert seen[-1]["image"] == seen[0]["image"] == box["image"]  # as docker's, named
    by_name.close()
    by_id.close()
    a.containers.remove("ev-obj", force=True)
    a.containers.remove("ev-noise", force=True)


def test_selector_filter_uses_the_objects_labels(env: Env) -> None:
    a = env.admin
    red = Stream(a, selector="team=red", type="container")
    not_red = Stream(a, selector="team!=red", type="container")
    a.containers.create({"image": "busybox", "name": "ev-blue", "command": ["true"],
                         "labels": {"team": "blue"}})
    a.containers.create({"image": "busybox", "name": "ev-red", "command": ["true"],
                         "labels": {"team": "red", "app": "x"}})
    a.containers.start("ev-red")  # start and die come from the agent, with labels too
    a.containers.wait("ev-red")
    a.containers.remove("ev-red")
    seen = red.until(named("ev-red", "destroy"))
    assert {e["name"] for e in seen} == {"ev-red"}
    assert [e["action"] for e in seen][:2] == ["create", "start"]
    assert "die" in [e["action"] for e in seen]
    assert all(e["labels"] == {"team": "red", "app": "x"} for e in seen)
    a.containers.remove("ev-blue")
    seen = not_red.until(named("ev-blue", "destroy"))
    assert "ev-red" not in {e["name"] for e in seen}
    red.close()
    not_red.close()


def test_volume_events(env: Env) -> None:
    a = env.admin
    stream = Stream(a, type="volume")
    a.volumes.create("ev-vol", labels={"k": "v"})
    a.volumes.remove("ev-vol")
    # an anonymous volume, made by a create and removed with its container
    a.containers.create({"image": "busybox", "name": "ev-anon", "command": ["true"],
                         "mounts": [{"type": "volume", "target": "/data"}]})
    a.containers.remove("ev-anon", volumes=True)
    seen = stream.until(lambda e: e["action"] == "destroy" and e["name"] != "ev-vol")
    assert [(e["action"], e["name"]) for e in seen[:2]] == [("create", "ev-vol"),
                                                            ("destroy", "ev-vol")]
    assert seen[0]["labels"] == {"k": "v"} and seen[0]["type"] == "volume"
    assert [e["action"] for e in seen[2:]] == ["create", "destroy"]
    assert seen[2]["name"] == seen[3]["name"]
    stream.close()


def test_image_events_tag_untag_delete_import(env: Env) -> None:
    a = env.admin
    stream = Stream(a, type="image")
    a.images.tag("busybox", "ev/img:1")
    a.images.untag("ev/img:1")
    a.images.tag("busybox", "ev/img:2")
    a.images.remove("ev/img:2")  # busybox keeps its other name: an untag
    archive = b"".join(a.images.save(["busybox"]))
    a.images.import_archive(io.BytesIO(archive))
    seen = stream.until(lambda e: e["action"] == "import")
    assert [(e["action"], e["name"]) for e in seen] == [
        ("tag", "ev/img:1"), ("untag", "ev/img:1"), ("tag", "ev/img:2"), ("untag", "ev/img:2"),
        ("import", "busybox:latest")]
    assert {e["id"] for e in seen} == {a.images.get("busybox")["id"]}
    assert all(e["project_id"] == "default" for e in seen)
    rootfs = io.BytesIO()
    with tarfile.open(fileobj=rootfs, mode="w") as tar:
        tar.addfile(tarfile.TarInfo("empty"))
    rootfs.seek(0)
    flat = a.images.import_tarball(rootfs, "ev/flat:1", format="rootfs")[0]
    seen = stream.until(lambda e: e["action"] == "import")
    assert [(e["action"], e["name"], e["id"]) for e in seen] == [
        ("import", "ev/flat:1", flat["id"])]

    # Deleting bob's only image: untag then delete, in bob's project only.
    bobs = Stream(env.bob, type="image")
    everyone = Stream(a, type="image", all_projects="true")
    bob_image = env.bob.images.get("busybox")["id"]
    env.bob.images.tag("busybox", "ev/gone:1")
    env.bob.images.remove(bob_image, force=True)
    for s in (bobs, everyone):
        seen = s.until(lambda e: e["action"] == "delete")
        assert [e["action"] for e in seen] == ["tag", "untag", "untag", "delete"]
        assert {e["project_id"] for e in seen} == {OTHER}
    env.bob.images.build_base("busybox")
    a.images.tag("busybox", "ev/closing:1")  # the admin's own stream saw nothing of bob's
    seen = stream.until(named("ev/closing:1", "tag"))
    assert [e["project_id"] for e in seen] == ["default"]
    a.images.untag("ev/closing:1")
    for s in (stream, bobs, everyone):
        s.close()


def test_streams_are_scoped_to_the_callers_project(env: Env) -> None:
    a, bob = env.admin, env.bob
    mine = Stream(a, type="container")
    bobs = Stream(bob)
    everyone = Stream(a, all_projects="true", type="container")
    bob.containers.create({"image": "busybox", "name": "ev-bob", "command": ["true"]})
    a.containers.create({"image": "busybox", "name": "ev-admin", "command": ["true"]})
    seen = mine.until(named("ev-admin", "create"))
    assert [e["name"] for e in seen] == ["ev-admin"]
    seen = everyone.until(named("ev-admin", "create"))
    assert {(e["name"], e["project_id"]) for e in seen} == {("ev-bob", OTHER),
                                                            ("ev-admin", "default")}
    bob.containers.rename("ev-bob", "ev-bob2")
    seen = bobs.until(named("ev-bob2", "rename"))
    assert {e["project_id"] for e in seen} == {OTHER}
    assert "ev-admin" not in {e["name"] for e in seen}
    a.containers.remove("ev-admin")
    bob.containers.remove("ev-bob2")
    for s in (mine, bobs, everyone):
        s.close()


@pytest.mark.parametrize(("params", "status", "words"), [
    ({"type": "plugin"}, 400, "invalid event type"),
    ({"type": ["container", "image", "volume", "network", "container"]}, 400, "type"),
    ({"selector": "a in ()"}, 400, "invalid selector"),
    ({"selector": "a=b,,"}, 400, "position 4"),
    ({"object": ""}, 400, "object"),
    ({"action": ""}, 400, "action"),
    ({"since": "yesterday-ish"}, 400, "invalid time"),
    ({"since": "1m", "until": "2m"}, 400, "before `until`"),
])
def test_bad_filters_are_refused_before_the_stream(env: Env, params: dict[str, Any],
                                                   status: int, words: str) -> None:
    with pytest.raises(APIError) as err:
        env.admin.transport.open("GET", "/v1/events", params)
    assert err.value.status == status and words in err.value.message


def test_members_cannot_watch_other_projects(env: Env) -> None:
    with pytest.raises(APIError) as err:
        env.bob.transport.open("GET", "/v1/events", {"all_projects": "true"})
    assert err.value.status == 404


def test_sdk_events_filters(env: Env) -> None:
    a = env.admin
    events = a.events(type=["container"], object="ev-sdk", selector="team=green")
    got: list[dict[str, Any]] = []
    a.containers.create({"image": "busybox", "name": "ev-sdk-other", "command": ["true"],
                         "labels": {"team": "green"}})
    a.containers.create({"image": "busybox", "name": "ev-sdk", "command": ["true"],
                         "labels": {"team": "green"}})
    reader = threading.Thread(target=lambda: got.append(next(events)), daemon=True)
    reader.start()  # after the creates: the stream has held them since events() returned
    reader.join(20)
    assert [(e["name"], e["action"]) for e in got] == [("ev-sdk", "create")]
    a.containers.remove("ev-sdk")
    a.containers.remove("ev-sdk-other")


def test_since_replays_until_ends_and_actions_filter(env: Env) -> None:
    """The native API's since/until and action filter, through the CLI as docker's events
    --since/--until/--filter/--format."""
    d = env.d
    d.cli("run", "--rm", "--name", "ev-past", "-l", "tier=db", "busybox", "sh", "-c", "exit 4",
          check=False)
    d.cli("run", "--rm", "--name", "ev-other", "busybox", "true")
    dies = d.cli("events", "--since", "5m", "--until", "0s", "--filter", "event=die",
                 "--format", "{{.Actor.Attributes.name}}:{{.exitCode}}", timeout=30).stdout
    assert dies.splitlines()[-2:] == ["ev-past:4", "ev-other:0"]
    past = d.cli("events", "--since", "5m", "--until", "0s", "--filter", "container=ev-past",
                 "--format", "json", timeout=30).stdout.splitlines()
    assert [json.loads(line)["action"] for line in past][-4:] == [
        "create", "start", "die", "destroy"]
    labelled = d.cli("events", "--since", "5m", "--until", "0s", "--filter", "label=tier=db",
                     "--filter", "event=start", "--format", "{{.Action}} {{.name}}",
                     timeout=30).stdout
    assert labelled.splitlines()[-1:] == ["start ev-past"]
    # without since, only what happens from now: until ends an empty stream at its time
    started = time.monotonic()
    assert d.cli("events", "--until", "1s", timeout=30).stdout == ""
    assert time.monotonic() - started < 20
    refused(d.cli("events", "--filter", "colour=red", check=False), "colour")


def test_pull_and_push_events(tmp_path: Any) -> None:
    from tests.integration.conftest import _finish, _require_host
    from tests.integration.daemon import make_dirs
    from tests.integration.registry import have_registry, start_registry

    _require_host()
    if not have_registry():
        pytest.skip("Debian's docker-registry is not installed (scripts/setup.sh installs it)")
    registry = start_registry(tmp_path / "registry", "open")
    policy = tmp_path / "policy.json"
    policy.write_text('{"default": [{"type": "insecureAcceptAnything"}]}')
    root, run = make_dirs()
    d = Daemon(root, run, args=["--insecure-registry", registry.host,
                                "--signature-policy", str(policy),
                                "--registries-d", str(tmp_path / "no-registries.d")])
    d.start()
    try:
        d.cli("image", "build-base", "busybox")
        ref = f"{registry.host}/ev/bb:1"
        stream = Stream(d.client, type="image", object=ref)
        d.cli("tag", "busybox", ref)
        d.cli("push", ref)
        d.cli("rmi", ref)
        d.cli("pull", ref)
        seen = stream.until(lambda e: e["action"] == "pull")
        assert [e["action"] for e in seen] == ["tag", "push", "untag", "pull"]
        assert seen[1]["digest"] == seen[3]["digest"]
        assert all(e["name"] == ref for e in seen)
        stream.close()
    finally:
        try:
            _finish(d)
        finally:
            registry.stop()

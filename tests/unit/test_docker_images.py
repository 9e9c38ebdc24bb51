"""The Docker API's image shapes and progress rendering (pure functions, no daemon)."""

from __future__ import annotations

import base64
import json

import pytest

from berth.api.docker import imageshapes as shapes
from berth.api.docker.imageprogress import PullLines, PushLines, human_size, progress_bar
from berth.api.progress import Finished
from berth.errors import InvalidArgument, NotFound
from berth.image.changes import parse_changes
from berth.image.reference import parse_reference
from berth.store.models import Image

ID = "sha256:" + "ab" * 32


def _image(**config: object) -> Image:
    cfg = {"architecture": "amd64", "os": "linux", "created": "2024-05-06T07:08:09.123456789Z",
           "config": {"Cmd": ["sh"], "Labels": {"a": "b"}},
           "rootfs": {"type": "layers", "diff_ids": ["sha256:" + "11" * 32]},
           "history": [{"created_by": "x", "comment": "hi"}], **config}
    return Image(project_id="p", id=ID, manifest_digest="sha256:" + "cd" * 32, config=cfg,
                 layers=[{"digest": "sha256:" + "22" * 32, "diff_id": "sha256:" + "11" * 32,
                          "size": 10, "media_type": "x"}],
                 size=1234, created_at=1.0, repo_digests=[], signatures=[])


def test_list_item_and_dangling_names() -> None:
    item = shapes.list_item(_image(), ["busybox:latest"])
    assert item["Id"] == ID and item["RepoTags"] == ["busybox:latest"]
    assert item["Created"] == 1714979289 and item["SharedSize"] == -1
    assert item["Labels"] == {"a": "b"} and item["RepoDigests"] == []
    dangling = shapes.list_item(_image(), [])
    assert dangling["RepoTags"] == ["<none>:<none>"]
    assert dangling["RepoDigests"] == ["<none>@<none>"]


def test_inspect_shape() -> None:
    out = shapes.inspect(_image(author="me"), ["x:1"])
    assert out["Created"] == "2024-05-06T07:08:09.123456Z"
    assert out["Config"]["Cmd"] == ["sh"] and out["Config"]["Env"] is None
    assert out["Config"]["WorkingDir"] == "" and out["Author"] == "me"
    assert out["Comment"] == "hi" and out["RootFS"]["Layers"] == ["sha256:" + "11" * 32]
    assert out["GraphDriver"]["Name"] == "overlay2"
    bad_time = shapes.inspect(_image(created="yesterday"), [])
    assert bad_time["Created"] == "1970-01-01T00:00:01Z"


def test_history_and_removal() -> None:
    rows = [{"id": ID, "created": "2024-05-06T07:08:09Z", "created_by": "c", "size": 3,
             "comment": ""}, {"id": None, "created": None, "created_by": "b", "size": 0}]
    out = shapes.history(rows, ["x:1"])
    assert out[0]["Id"] == ID and out[0]["Tags"] == ["x:1"] and out[0]["Created"] > 0
    assert out[1]["Id"] == "<missing>" and out[1]["Tags"] is None
    assert shapes.removal(["untagged: a:1", "deleted: " + ID]) == \
        [{"Untagged": "a:1"}, {"Deleted": ID}]


def _header(doc: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(doc).encode()).decode()


def test_registry_auth_header() -> None:
    creds = shapes.registry_auth(_header({"username": "u", "password": "p+/=",
                                          "serveraddress": "r:5000"}))
    assert creds is not None and (creds.username, creds.password) == ("u", "p+/=")
    assert "p+/=" not in repr(creds)
    legacy = shapes.registry_auth(_header({"auth": base64.b64encode(b"v:w:x").decode()}))
    assert legacy is not None and (legacy.username, legacy.password) == ("v", "w:x")
    unpadded = _header({"username": "a", "password": "b"}).rstrip("=")
    assert shapes.registry_auth(unpadded) is not None
    for empty in (None, "", "e30=", _header({}), _header({"serveraddress": "r"})):
        assert shapes.registry_auth(empty) is None
    for bad in ("%%%", base64.b64encode(b"[1]").decode(),
                _header({"identitytoken": "t"}), _header({"username": 5, "password": "x"})):
        with pytest.raises(InvalidArgument):
            shapes.registry_auth(bad)


def test_commit_config_becomes_changes() -> None:
    lines = shapes.config_changes({
        "Cmd": ["echo", "a b"], "Env": ["A=b c", "E="], "Labels": {"k": "v w"},
        "ExposedPorts": {"80/tcp": {}}, "Volumes": {"/data": {}}, "WorkingDir": "/w",
        "Hostname": "", "Tty": False, "User": "1000"})
    got = parse_changes(lines)
    assert got["Cmd"] == ["echo", "a b"] and got["Env"] == ["A=b c", "E="]
    assert got["Labels"] == {"k": "v w"} and got["ExposedPorts"] == {"80/tcp": {}}
    assert got["Volumes"] == {"/data": {}} and got["WorkingDir"] == "/w"
    assert got["User"] == "1000"
    for bad in ({"Hostname": "h"}, {"Env": ["NOEQUALS"]}, {"Cmd": [1]}, {"Labels": ["x"]}):
        with pytest.raises(InvalidArgument):
            shapes.config_changes(bad)


def test_progress_bar_and_sizes() -> None:
    assert human_size(999) == "999B" and human_size(1500) == "1.5kB"
    assert human_size(2_345_678) == "2.346MB"
    bar = progress_bar(50, 100)
    assert bar.startswith("[" + "=" * 25 + ">") and bar.endswith("50B/100B")
    assert progress_bar(100, 100).startswith("[" + "=" * 50 + ">]")
    assert progress_bar(7, 0) == "7B"


def test_pull_lines() -> None:
    ref = parse_reference("127.0.0.1:5000/team/app:v1")
    render = PullLines(ref, "127.0.0.1:5000/team/app:v1", before=None)
    assert render({"status": "resolved", "digest": "d"}) == \
        [{"status": "Pulling from team/app", "id": "v1"}]
    layer = {"id": "0123456789ab", "digest": "sha256:x", "current": 5, "total": 10}
    down = render({**layer, "status": "downloading"})[0]
    assert down["status"] == "Downloading" and down["progressDetail"] == \
        {"current": 5, "total": 10} and down["id"] == "0123456789ab"
    assert render({**layer, "status": "exists"})[0]["status"] == "Already exists"
    assert render({**layer, "status": "error"}) == []
    image = _image()
    done = render(Finished({"image": image, "digest": "sha256:m"}))
    assert done == [{"status": "Digest: sha256:m"}, {
        "status": "Status: Downloaded newer image for 127.0.0.1:5000/team/app:v1"}]
    # a layer downloaded is "Pull complete" when the pull ends (it is unpacked after)
    fresh = PullLines(ref, "x:1", before=None)
    assert fresh({**layer, "status": "done"})[0]["status"] == "Download complete"
    assert fresh(Finished({"image": image, "digest": "d"}))[0] == \
        {"status": "Pull complete", "progressDetail": {}, "id": "0123456789ab"}
    same = PullLines(ref, "x:1", before=ID)(Finished({"image": image, "digest": "d"}))
    assert same[1]["status"] == "Status: Image is up to date for x:1"
    err = render(NotFound("manifest unknown"))[0]
    assert err == {"errorDetail": {"message": "manifest unknown"}, "error": "manifest unknown"}


def test_push_lines() -> None:
    render = PushLines(parse_reference("busybox:latest"), {"sha256:config"})
    first = render({"id": "aaaaaaaaaaaa", "digest": "sha256:a", "status": "waiting",
                    "current": 0, "total": 3})
    assert first[0] == {"status": "The push refers to repository [docker.io/library/busybox]"}
    assert first[1]["status"] == "Preparing"
    assert render({"id": "cccccccccccc", "digest": "sha256:config", "status": "done"}) == []
    mounted = render({"id": "aaaaaaaaaaaa", "digest": "sha256:a", "status": "mounted",
                      "mounted_from": "team/other", "current": 3, "total": 3})
    assert mounted[0]["status"] == "Mounted from team/other"
    final = render({"status": "pushed", "tag": "latest", "digest": "sha256:m", "size": 9})
    assert final[0] == {"status": "latest: digest: sha256:m size: 9"}
    assert final[1]["aux"] == {"Tag": "latest", "Digest": "sha256:m", "Size": 9}
    assert render(Finished({})) == []

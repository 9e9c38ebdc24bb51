"""A reader's read-only POSTs are decided by route, never by the shape of a path."""

from __future__ import annotations

import pytest

from berth.client import APIError, Client
from tests.integration.daemon import Daemon

pytestmark = pytest.mark.integration


def test_a_reader_cannot_delete_an_image_named_like_a_read_only_route(daemon: Daemon) -> None:
    admin = daemon.client
    admin.projects.create("readers")
    admin.users.create("ray")
    admin.projects.set_member("readers", "ray", "reader")
    as_admin = Client(daemon.host, project="readers")
    as_admin.images.build_base("busybox", "team/verify")
    as_admin.images.tag("team/verify", "team/wait")
    token = as_admin.tokens.create("t", user="ray")["token"]
    ray = Client(daemon.host, token=token, project="readers")
    for name in ("team/verify", "team/wait"):
        with pytest.raises(APIError) as exc:
            ray.transport.call("DELETE", f"/v1/images/{name}")
        assert exc.value.status == 403, exc.value.message
    assert {"team/verify:latest", "team/wait:latest"} <= {
        t for img in as_admin.images.list() for t in img["tags"]}
    box = as_admin.containers.create({"image": "team/wait", "command": ["true"]}, start=True)
    assert ray.containers.wait(box["id"])["exit_code"] == 0  # waiting is reading: allowed
    with pytest.raises(APIError) as exc:
        ray.containers.remove(box["id"], force=True)
    assert exc.value.status == 403
    as_admin.containers.remove(box["id"], force=True)

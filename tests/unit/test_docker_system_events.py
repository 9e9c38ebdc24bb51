"""Berth's events in Docker's shape, Docker's event filters, and Docker's times."""

from __future__ import annotations

import asyncio

import pytest

from berth.api.docker.eventshape import DockerEventFilter, docker_event
from berth.errors import InvalidArgument
from berth.service.filters import parse_time
from berth.service.hub import RECENT_EVENTS, Hub

DIE = {"type": "container", "action": "die", "id": "abc123", "name": "web",
       "project_id": "p", "image": "busybox", "labels": {"tier": "front"}, "time": 1700.25,
       "exitCode": 3}


def test_a_container_event_has_dockers_fields() -> None:
    ev = docker_event(DIE)
    assert ev["Type"] == "container" and ev["Action"] == "die" and ev["scope"] == "local"
    assert ev["Actor"] == {"ID": "abc123", "Attributes": {
        "tier": "front", "name": "web", "image": "busybox", "exitCode": "3"}}
    assert (ev["status"], ev["id"], ev["from"]) == ("die", "abc123", "busybox")
    assert ev["time"] == 1700 and ev["timeNano"] == 1700_250_000_000


def test_volume_network_and_image_events() -> None:
    vol = docker_event({"type": "volume", "action": "create", "id": "v", "name": "v",
                        "time": 1.0})
    assert vol["Actor"] == {"ID": "v", "Attributes": {"driver": "local"}}
    assert "status" not in vol
    net = docker_event({"type": "network", "action": "connect", "id": "n1", "name": "net",
                        "driver": "bridge", "container": "c1", "time": 1.0})
    assert net["Actor"]["Attributes"] == {"name": "net", "type": "bridge", "container": "c1"}
    pull = docker_event({"type": "image", "action": "pull", "id": "sha256:1",
                         "name": "busybox:latest", "time": 1.0})
    assert pull["Actor"]["ID"] == "busybox:latest" and pull["id"] == "busybox:latest"
    tag = docker_event({"type": "image", "action": "tag", "id": "sha256:1", "name": "x:1",
                        "time": 1.0})
    assert tag["Actor"]["ID"] == "sha256:1"


@pytest.mark.parametrize(("filters", "matches"), [
    ({}, True),
    ({"type": ["container"]}, True), ({"type": ["volume"]}, False),
    ({"event": ["die"]}, True), ({"event": ["start"]}, False),
    ({"container": ["web"]}, True), ({"container": ["abc"]}, True),
    ({"container": ["other"]}, False),
    ({"image": ["busybox"]}, True), ({"image": ["busybox:latest"]}, False),
    ({"label": ["tier"]}, True), ({"label": ["tier=front"]}, True),
    ({"label": ["tier=back"]}, False),
    ({"volume": ["web"]}, True),  # as dockerd: the actor's name answers every name filter
    ({"network": ["zzz"]}, False),
])
def test_filters(filters: dict[str, list[str]], matches: bool) -> None:
    assert DockerEventFilter.parse(filters).matches(docker_event(DIE)) is matches


def test_unknown_filter_is_refused() -> None:
    with pytest.raises(InvalidArgument, match="invalid filter 'colour'"):
        DockerEventFilter.parse({"colour": ["red"]})


def test_docker_times() -> None:
    assert parse_time("1700000000.123456789") == pytest.approx(1700000000.123456789)
    assert parse_time("10m", now=1000.0) == 400.0
    assert parse_time("1h30m", now=10000.0) == 10000.0 - 5400
    assert parse_time("2024-01-01T00:00:00Z") == 1704067200.0
    with pytest.raises(InvalidArgument, match="invalid time"):
        parse_time("yesterday")


def test_hub_keeps_a_bounded_ring_of_recent_events() -> None:
    async def scenario() -> list[dict]:
        hub = Hub()
        for i in range(RECENT_EVENTS + 5):
            hub.publish({"n": i})
        await asyncio.sleep(0)
        return hub.recent()

    recent = asyncio.run(scenario())
    assert len(recent) == RECENT_EVENTS and recent[0] == {"n": 5}

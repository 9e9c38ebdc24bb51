"""Pure pieces of the Docker stream endpoints: framing, timestamps, params, stats."""

from __future__ import annotations

import pytest

from berth.api.docker.stats import rfc3339, stats_document, zero_stats
from berth.api.docker.streamio import (
    docker_timestamp,
    frame,
    parse_size,
    parse_tail,
)
from berth.errors import InvalidArgument
from berth.store.models import Container


def test_frame_header() -> None:
    assert frame(1, b"hi\n") == b"\x01\x00\x00\x00\x00\x00\x00\x03hi\n"
    assert frame(2, b"x" * 258)[:8] == b"\x02\x00\x00\x00\x00\x00\x01\x02"


@pytest.mark.parametrize(("conmon", "docker"), [
    ("2024-03-01T10:20:30.123456789+00:00", "2024-03-01T10:20:30.123456789Z"),
    ("2024-03-01T12:20:30.5+02:00", "2024-03-01T10:20:30.500000000Z"),
    ("2024-03-01T10:20:30Z", "2024-03-01T10:20:30.000000000Z"),
    ("2024-03-01T10:20:30-01:30", "2024-03-01T11:50:30.000000000Z"),
    ("garbage", "garbage"),
])
def test_docker_timestamp(conmon: str, docker: str) -> None:
    assert docker_timestamp(conmon) == docker


def test_tail_and_size() -> None:
    assert parse_tail(None) is None and parse_tail("all") is None and parse_tail("-1") is None
    assert parse_tail("0") == 0 and parse_tail("25") == 25
    with pytest.raises(InvalidArgument, match="tail"):
        parse_tail("ten")
    assert parse_size("24", "80") == (24, 80)
    for h, w in (("x", "1"), (None, "1"), ("-1", "5"), ("10000", "5")):
        with pytest.raises(InvalidArgument):
            parse_size(h, w)


def _row() -> Container:
    return Container(id="c" * 64, name="web", spec={})


def _raw(**over: object) -> dict[str, object]:
    raw: dict[str, object] = dict(
        cpu_usage_ns=5_000, system_cpu_ns=90_000, online_cpus=2, memory_usage=700,
        memory_limit=None, pids_current=3, pids_limit=None, io_read_bytes=10,
        io_write_bytes=20, read_at=1_700_000_000.25, cpu_user_ns=3_000, cpu_system_ns=2_000,
        percpu_ns=(2_000, 3_000), throttle_periods=0, throttled_periods=0, throttled_ns=0,
        memory_raw=1_000, memory_stat={"inactive_file": 300})
    raw.update(over)
    return raw


def test_stats_document() -> None:
    first = stats_document(_row(), _raw(), None)
    assert first["name"] == "/web" and first["id"] == "c" * 64
    assert first["read"] == "2023-11-14T22:13:20.250000000Z"
    assert first["preread"] == "0001-01-01T00:00:00Z"
    assert first["cpu_stats"]["cpu_usage"] == {"total_usage": 5_000, "usage_in_kernelmode": 2_000,
                                               "usage_in_usermode": 3_000,
                                               "percpu_usage": [2_000, 3_000]}
    assert first["memory_stats"]["usage"] == 1_000  # clients subtract inactive_file
    assert first["memory_stats"]["stats"] == {"inactive_file": 300}
    assert first["memory_stats"]["limit"] > 0  # the host's memory when there is no limit
    assert first["pids_stats"] == {"current": 3}
    ops = {e["op"]: e["value"] for e in first["blkio_stats"]["io_service_bytes_recursive"]}
    assert ops == {"read": 10, "write": 20, "total": 30}
    second = stats_document(_row(), _raw(cpu_usage_ns=9_000, memory_limit=4096, pids_limit=50,
                                         read_at=1_700_000_001.0), first)
    assert second["precpu_stats"] == first["cpu_stats"]
    assert second["preread"] == first["read"]
    assert second["memory_stats"]["limit"] == 4096 and second["pids_stats"]["limit"] == 50
    assert "networks" not in first  # none of its own (no network, or the host's): no key
    eth0 = {"rx_bytes": 1, "rx_packets": 2, "rx_errors": 0, "rx_dropped": 0, "tx_bytes": 3,
            "tx_packets": 4, "tx_errors": 0, "tx_dropped": 0}
    assert stats_document(_row(), _raw(networks={"eth0": eth0}), None)["networks"] == {
        "eth0": eth0}
    assert zero_stats(_row())["memory_stats"] == {}
    assert rfc3339(0.0) == "1970-01-01T00:00:00.000000000Z"

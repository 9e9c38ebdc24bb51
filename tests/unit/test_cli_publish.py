"""berth run's networking flags: -p as docker reads it, --network names, --ip, aliases."""

from __future__ import annotations

import argparse

import pytest

from berth.cli.convert import UsageError, network_settings, parse_publish


@pytest.mark.parametrize(("text", "want"), [
    ("80", (80, "tcp", "0.0.0.0", 0)),
    ("8080:80", (80, "tcp", "0.0.0.0", 8080)),
    ("127.0.0.1:8080:80/udp", (80, "udp", "127.0.0.1", 8080)),
    ("127.0.0.1::80", (80, "tcp", "127.0.0.1", 0)),
])
def test_publish(text: str, want: tuple[int, str, str, int]) -> None:
    p = parse_publish(text)
    assert (p["container_port"], p["proto"], p["host_ip"], p["host_port"]) == want


@pytest.mark.parametrize("text", ["", "a:b", "1:2:3:4", "x:80", "80:"])
def test_bad_publish(text: str) -> None:
    with pytest.raises(UsageError):
        parse_publish(text)


def _args(**kw: object) -> argparse.Namespace:
    base = {"network": "none", "network_alias": [], "ip": None, "publish": [],
            "publish_all": False}
    return argparse.Namespace(**{**base, **kw})


def test_network_settings() -> None:
    assert network_settings(_args()) == {"network": "none"}
    got = network_settings(_args(network="app", network_alias=["db"], ip="10.1.0.5",
                                 publish=["5432"], publish_all=True))
    assert got["networks"] == {"app": ["db"]} and got["ip_addresses"] == {"app": "10.1.0.5"}
    assert got["ports"][0]["container_port"] == 5432 and got["publish_all"]
    with pytest.raises(UsageError):
        network_settings(_args(network="host", ip="10.1.0.5"))

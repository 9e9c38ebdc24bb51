"""Rendering of Berth's nftables table (berth.network.nft) and interface-name helpers."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import replace
from ipaddress import IPv4Address, IPv4Network

import pytest

from berth.network import links
from berth.network.nft import BridgeNet, PortMap, Ruleset, ServiceVip, render

A = IPv4Address

NET_A = BridgeNet("bthaaaaaaaaaa", IPv4Network("10.250.1.0/24"), A("10.250.1.1"), False, "p1")
NET_B = BridgeNet("bthbbbbbbbbbb", IPv4Network("10.250.2.0/24"), A("10.250.2.1"), True, "p1")
NET_C = BridgeNet("bthcccccccccc", IPv4Network("10.250.3.0/24"), A("10.250.3.1"), False, "p2")


def _ruleset() -> Ruleset:
    return Ruleset(
        nets=[NET_A, NET_B, NET_C],
        ports=[
            PortMap(None, 8080, "tcp", A("10.250.1.2"), 80),
            PortMap(A("127.0.0.1"), 8081, "udp", A("10.250.1.2"), 53),
            PortMap(A("192.0.2.7"), 8082, "tcp", A("10.250.3.2"), 80),
        ],
        services=[
            ServiceVip(A("10.250.200.10"), "tcp", 80, 8080,
                       [A("10.250.1.4"), A("10.250.1.2"), A("10.250.1.3")],
                       [NET_A.bridge, NET_B.bridge]),
            ServiceVip(A("10.250.200.11"), "udp", 53, 5353, [A("10.250.1.2")], [NET_A.bridge]),
            ServiceVip(A("10.250.200.12"), "tcp", 80, 80, [], [NET_A.bridge]),
        ],
    )


def _chain(text: str, name: str) -> list[str]:
    """The rules of chain *name* (without its hook line), stripped."""
    lines = [ln.strip() for ln in text.splitlines()]
    start = lines.index(f"chain {name} {{")
    end = lines.index("}", start)
    return lines[start + 2:end]


def test_starts_with_the_atomic_replace_idiom() -> None:
    text = render(_ruleset())
    assert text.splitlines()[:3] == ["table ip berth", "delete table ip berth",
                                     "table ip berth {"]
    assert text.endswith("}\n")


def test_rendering_is_deterministic_and_order_independent() -> None:
    rs = _ruleset()
    shuffled = Ruleset(nets=list(reversed(rs.nets)), ports=list(reversed(rs.ports)),
                       services=[replace(s, backends=list(reversed(s.backends)),
                                         bridges=list(reversed(s.bridges)))
                                 for s in reversed(rs.services)])
    assert render(rs) == render(rs) == render(shuffled)


def test_empty_ruleset_has_every_chain_and_no_rules_that_match_anything() -> None:
    text = render(Ruleset())
    for chain in ("prerouting", "output", "postrouting", "forward", "input"):
        assert f"chain {chain} {{" in text
    assert "set bridges { type ifname; }" in text
    assert _chain(text, "prerouting") == [] and _chain(text, "postrouting") == []


def test_published_ports() -> None:
    text = render(_ruleset())
    pre, out = _chain(text, "prerouting"), _chain(text, "output")
    wildcard = "fib daddr type local tcp dport 8080 dnat to 10.250.1.2:80"
    specific = "ip daddr 192.0.2.7 tcp dport 8082 dnat to 10.250.3.2:80"
    loopback = "ip daddr 127.0.0.1 udp dport 8081 dnat to 10.250.1.2:53"
    assert wildcard in pre and wildcard in out
    assert specific in pre and specific in out
    assert loopback in out and loopback not in pre  # 127.0.0.1 only from the host itself
    assert out.index(specific) < out.index(wildcard)  # a specific address wins over "any"


def test_unspecified_host_ip_means_every_local_address() -> None:
    rs = Ruleset(nets=[NET_A], ports=[PortMap(A("0.0.0.0"), 9000, "udp", A("10.250.1.9"), 9)])
    assert "fib daddr type local udp dport 9000 dnat to 10.250.1.9:9" in render(rs)


def test_service_vip_load_balances_only_for_its_bridges() -> None:
    pre = _chain(render(_ruleset()), "prerouting")
    assert ('iifname { "bthaaaaaaaaaa", "bthbbbbbbbbbb" } ip daddr 10.250.200.10 tcp dport 80 '
            "dnat to numgen random mod 3 map "
            "{ 0 : 10.250.1.2, 1 : 10.250.1.3, 2 : 10.250.1.4 }:8080") in pre
    assert ('iifname "bthaaaaaaaaaa" ip daddr 10.250.200.11 udp dport 53 '
            "dnat to 10.250.1.2:5353") in pre
    assert not any("10.250.200.12" in r for r in pre)  # no backend: not DNATed ...
    text = render(_ruleset())
    assert "elements = { 10.250.200.10, 10.250.200.11, 10.250.200.12 }" in text
    assert "ip daddr @vips reject" in _chain(text, "forward")  # ... so rejected in forward


def test_egress_masquerade_hairpin_and_loopback() -> None:
    post = _chain(render(_ruleset()), "postrouting")
    assert "ip saddr 10.250.1.0/24 oifname != @bridges masquerade" in post
    assert "ip saddr 10.250.3.0/24 oifname != @bridges masquerade" in post
    assert not any(r.startswith("ip saddr 10.250.2.0/24") for r in post)  # internal: no egress
    for net in (NET_A, NET_B, NET_C):
        assert (f'oifname "{net.bridge}" ip saddr {net.subnet} ct status dnat masquerade'
                in post)
    assert "oifname @bridges ip saddr 127.0.0.0/8 masquerade" in post


def test_forward_isolation_order() -> None:
    fwd = _chain(render(_ruleset()), "forward")
    assert fwd[0] == "ct state established,related accept"
    b = NET_B.bridge
    internal_drops = [fwd.index(f'iifname "{b}" oifname != "{b}" drop'),
                      fwd.index(f'oifname "{b}" iifname != "{b}" drop')]
    dnat_accept = fwd.index("oifname @bridges ct status dnat accept")
    between = fwd.index("iifname @bridges oifname @bridges drop")
    egress = fwd.index("iifname @bridges accept")
    # Internal networks are closed even to DNAT; DNAT crosses bridges; other traffic does not.
    assert max(internal_drops) < dnat_accept < between < egress
    for net in (NET_A, NET_B, NET_C):
        assert fwd.index(f'iifname "{net.bridge}" oifname "{net.bridge}" accept') < between
    assert fwd[-1] == "oifname @bridges drop"


def test_input_lets_internal_networks_reach_only_dns_on_their_gateway() -> None:
    inp = _chain(render(_ruleset()), "input")
    b = NET_B.bridge
    assert inp == [f'iifname "{b}" ct state established,related accept',
                   f'iifname "{b}" ip daddr 10.250.2.1 meta l4proto {{ tcp, udp }} '
                   "th dport 53 accept",
                   f'iifname "{b}" drop']


@pytest.mark.parametrize("bad", [
    Ruleset(nets=[replace(NET_A, bridge='x" accept')]),
    Ruleset(nets=[replace(NET_A, bridge="a" * 16)]),
    Ruleset(nets=[NET_A, NET_A]),
    Ruleset(nets=[replace(NET_A, gateway=A("10.9.9.1"))]),
    Ruleset(ports=[PortMap(None, 0, "tcp", A("10.250.1.2"), 80)]),
    Ruleset(ports=[PortMap(None, 80, "tcp", A("10.250.1.2"), 65536)]),
    Ruleset(ports=[PortMap(None, 80, "sctp", A("10.250.1.2"), 80)]),  # type: ignore[arg-type]
    Ruleset(ports=[PortMap(None, 80, "tcp", A("10.250.1.2"), 80),
                   PortMap(A("0.0.0.0"), 80, "tcp", A("10.250.1.3"), 80)]),
    Ruleset(nets=[NET_A], services=[ServiceVip(A("10.250.1.200"), "tcp", 80, 80, [], [])]),
    Ruleset(nets=[NET_A], services=[ServiceVip(A("10.9.0.1"), "tcp", 80, 80, [], ["nope"])]),
    Ruleset(nets=[NET_A, NET_C], services=[
        ServiceVip(A("10.9.0.1"), "tcp", 80, 80, [], [NET_A.bridge, NET_C.bridge])]),
    Ruleset(services=[ServiceVip(A("10.9.0.1"), "tcp", 80, 80, [], []),
                      ServiceVip(A("10.9.0.1"), "tcp", 80, 81, [], [])]),
])
def test_invalid_rulesets_are_refused(bad: Ruleset) -> None:
    with pytest.raises(ValueError):
        render(bad)


def test_table_name_is_checked() -> None:
    assert render(Ruleset(), table="berth_test1").startswith("table ip berth_test1\n")
    with pytest.raises(ValueError):
        render(Ruleset(), table="x; flush ruleset")


def test_interface_names_are_short_deterministic_and_recognisable() -> None:
    bridge, veth = links.bridge_name("net-1"), links.veth_name("ctr-1", "net-1")
    assert bridge == links.bridge_name("net-1") != links.bridge_name("net-2")
    assert veth == links.veth_name("ctr-1", "net-1") != links.veth_name("ctr-1", "net-2")
    assert len(bridge) <= 15 and len(veth) <= 15
    assert bridge.startswith("bth") and veth.startswith("vb")
    assert links.owned(bridge) and links.owned(veth)
    assert not links.owned("vboxnet0") and not links.owned("eth0") and not links.owned("bth0")


def _nft_check(text: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["nft", "-c", "-f", "-"], input=text, capture_output=True, text=True,
                          check=False, timeout=30)


@pytest.mark.integration
@pytest.mark.parametrize("rs", [_ruleset(), Ruleset(), Ruleset(nets=[NET_B])],
                         ids=["full", "empty", "internal-only"])
def test_the_real_nft_accepts_the_rendered_table(rs: Ruleset) -> None:
    """nft -c validates against the kernel without changing anything; it needs CAP_NET_ADMIN."""
    if shutil.which("nft") is None:
        pytest.skip("nft is not installed (Debian package: nftables)")
    if os.geteuid() != 0:
        pytest.skip("nft -c needs CAP_NET_ADMIN (root)")
    done = _nft_check(render(rs, table="berth_unit_check"))
    assert done.returncode == 0, done.stderr

"""Berth's nftables rules: egress NAT, isolation, published ports and service VIPs.

The whole desired state is one :class:`Ruleset`; :func:`render` turns it into the text of one
table, ``table ip berth``, and :func:`apply` swaps that table in a single ``nft -f -``
transaction (the text first creates the table if missing, deletes it, then defines it again, so
the kernel sees either the old table or the new one, never a mix). Reapplying the same ruleset
is harmless, so the agent can simply render and apply after any change or restart.

What the rules do (``fib daddr type local`` = "addressed to this host"):

* nat prerouting: published ports addressed to this host (any local address, or the one
  ``host_ip``) are DNATed to their container; a service VIP is DNATed to one of its backends
  (``numgen random``) only when the packet comes in on one of that service's bridges.
* nat output: the same published-port DNAT for the host's own connections, including those to
  127.0.0.1 (the bridges get ``route_localnet=1`` from :mod:`berth.network.links`). VIPs are
  for containers only: the host's own connections to a VIP are not DNATed.
* nat postrouting: masquerade egress of non-internal subnets leaving through a non-Berth
  interface; masquerade DNATed traffic that goes back out the bridge it came from (hairpin:
  the backend must answer through the host, not straight to the client) and traffic from
  127.0.0.0/8 to a bridge.
* filter forward: established/related accepted; anything still addressed to a VIP (no backend,
  or another project's client) rejected; internal networks talk only within their bridge;
  same-bridge traffic accepted (bridged frames traverse these hooks when br_netfilter is on);
  DNATed traffic into a bridge accepted (published ports are public, like docker's); any other
  traffic between two Berth bridges dropped; non-internal bridges may go out; unsolicited
  traffic into a bridge dropped.
* filter input: a container on an internal network reaches the host only for DNS (udp/tcp 53)
  on its gateway, and replies to the host's own connections.

Other tables are never touched. nftables evaluates every base chain on a hook and a drop in any
of them is final, so another table's ``forward`` chain with policy drop (docker's iptables-nft
``ip filter FORWARD``) drops traffic this table accepts: :func:`foreign_forward_drops` reports
such chains so the caller can warn the operator, who decides (docker's DOCKER-USER chain, or
its ``"iptables": false``). Chains of the legacy (x_tables) iptables are not visible to nft.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Literal

from berth.errors import BerthError

Proto = Literal["tcp", "udp"]

FAMILY = "ip"
TABLE = "berth"
LOOPBACK = IPv4Network("127.0.0.0/8")
_IFNAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,15}$")
_TABLE_RE = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
_TIMEOUT = 30.0


class NftError(BerthError):
    """nft refused a ruleset (the message carries nft's own stderr)."""


@dataclass(frozen=True)
class BridgeNet:
    """One network's bridge. ``internal`` networks get no egress and no traffic to the host
    beyond DNS on their gateway."""

    bridge: str
    subnet: IPv4Network
    gateway: IPv4Address
    internal: bool
    project: str


@dataclass(frozen=True)
class PortMap:
    """A published port: ``-p [host_ip:]host_port:port[/proto]`` to the container at ``ip``.

    ``host_ip`` None (or 0.0.0.0) means every local address, 127.0.0.1 included; a loopback
    ``host_ip`` is reachable only from the host itself.
    """

    host_ip: IPv4Address | None
    host_port: int
    proto: Proto
    ip: IPv4Address
    port: int


@dataclass(frozen=True)
class ServiceVip:
    """A stable virtual IP load-balanced over ``backends``, reachable only from ``bridges``
    (which must all belong to one project). The VIP must lie outside every bridge subnet."""

    vip: IPv4Address
    proto: Proto
    port: int
    target_port: int
    backends: list[IPv4Address]
    bridges: list[str]


@dataclass(frozen=True)
class Ruleset:
    nets: list[BridgeNet] = field(default_factory=list)
    ports: list[PortMap] = field(default_factory=list)
    services: list[ServiceVip] = field(default_factory=list)


# ---------------------------------------------------------------------------------- validation


def _check_port(value: int, what: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        raise ValueError(f"{what} {value!r} is not a port (1-65535)")


def _check_proto(value: str) -> None:
    if value not in ("tcp", "udp"):
        raise ValueError(f"protocol {value!r} is not tcp or udp")


def _validate(rs: Ruleset) -> None:
    """Everything rendered into rule text is checked here: names, ports, protocols."""
    projects: dict[str, str] = {}
    for n in rs.nets:
        if not _IFNAME_RE.match(n.bridge):
            raise ValueError(f"bad bridge name {n.bridge!r}")
        if n.bridge in projects:
            raise ValueError(f"bridge {n.bridge} listed twice")
        if n.gateway not in n.subnet:
            raise ValueError(f"gateway {n.gateway} is outside {n.subnet}")
        projects[n.bridge] = n.project
    seen: set[tuple[IPv4Address | None, int, str]] = set()
    for p in rs.ports:
        _check_port(p.host_port, "host port")
        _check_port(p.port, "container port")
        _check_proto(p.proto)
        key = (_host_ip(p), p.host_port, p.proto)
        if key in seen:
            raise ValueError(f"{p.host_ip or '*'}:{p.host_port}/{p.proto} published twice")
        seen.add(key)
    vips: set[tuple[IPv4Address, int, str]] = set()
    for s in rs.services:
        _check_port(s.port, "service port")
        _check_port(s.target_port, "target port")
        _check_proto(s.proto)
        if (s.vip, s.port, s.proto) in vips:
            raise ValueError(f"service {s.vip}:{s.port}/{s.proto} listed twice")
        vips.add((s.vip, s.port, s.proto))
        if any(s.vip in n.subnet for n in rs.nets) or s.vip in LOOPBACK:
            raise ValueError(f"VIP {s.vip} lies inside a bridge subnet or loopback")
        owners = set()
        for b in s.bridges:
            if b not in projects:
                raise ValueError(f"service {s.vip}: unknown bridge {b!r}")
            owners.add(projects[b])
        if len(owners) > 1:
            raise ValueError(f"service {s.vip}: bridges of several projects {sorted(owners)}")


def _host_ip(p: PortMap) -> IPv4Address | None:
    return None if p.host_ip is None or p.host_ip.is_unspecified else p.host_ip


# ----------------------------------------------------------------------------------- rendering


def _q(name: str) -> str:
    return f'"{name}"'


def _ifnames(names: Iterable[str]) -> str:
    unique = sorted(set(names))
    return _q(unique[0]) if len(unique) == 1 else "{ " + ", ".join(map(_q, unique)) + " }"


def _elements(kind: str, values: list[str]) -> str:
    body = f"type {kind};"
    if values:
        body += " elements = { " + ", ".join(values) + " };"
    return body


def _port_rules(rs: Ruleset) -> tuple[list[str], list[str]]:
    """(prerouting, output) DNAT rules of published ports; specific host IPs first."""
    pre: list[str] = []
    out: list[str] = []
    ordered = sorted(rs.ports, key=lambda p: (_host_ip(p) is None, int(_host_ip(p) or 0),
                                              p.proto, p.host_port))
    for p in ordered:
        host_ip = _host_ip(p)
        match = f"{p.proto} dport {p.host_port} dnat to {p.ip}:{p.port}"
        if host_ip is None:
            pre.append(f"fib daddr type local {match}")
            out.append(f"fib daddr type local {match}")
        elif host_ip in LOOPBACK:
            out.append(f"ip daddr {host_ip} {match}")  # only the host can reach its loopback
        else:
            pre.append(f"ip daddr {host_ip} {match}")
            out.append(f"ip daddr {host_ip} {match}")
    return pre, out


def _service_rules(rs: Ruleset) -> list[str]:
    rules = []
    for s in sorted(rs.services, key=lambda s: (int(s.vip), s.proto, s.port)):
        backends = sorted(set(s.backends), key=int)
        if not s.bridges or not backends:
            continue  # left un-DNATed: the forward chain rejects it
        head = f"iifname {_ifnames(s.bridges)} ip daddr {s.vip} {s.proto} dport {s.port}"
        if len(backends) == 1:
            rules.append(f"{head} dnat to {backends[0]}:{s.target_port}")
        else:
            pairs = ", ".join(f"{i} : {b}" for i, b in enumerate(backends))
            rules.append(f"{head} dnat to numgen random mod {len(backends)} "
                         f"map {{ {pairs} }}:{s.target_port}")
    return rules


def _postrouting_rules(nets: list[BridgeNet]) -> list[str]:
    rules = []
    for n in nets:
        if not n.internal:
            rules.append(f"ip saddr {n.subnet} oifname != @bridges masquerade")
    for n in nets:
        rules.append(f"oifname {_q(n.bridge)} ip saddr {n.subnet} ct status dnat masquerade")
    if nets:
        rules.append(f"oifname @bridges ip saddr {LOOPBACK} masquerade")
    return rules


def _forward_rules(nets: list[BridgeNet]) -> list[str]:
    rules = ["ct state established,related accept", "ip daddr @vips reject"]
    for n in nets:
        if n.internal:
            rules.append(f"iifname {_q(n.bridge)} oifname != {_q(n.bridge)} drop")
            rules.append(f"oifname {_q(n.bridge)} iifname != {_q(n.bridge)} drop")
    for n in nets:
        rules.append(f"iifname {_q(n.bridge)} oifname {_q(n.bridge)} accept")
    rules += [
        "oifname @bridges ct status dnat accept",
        "iifname @bridges oifname @bridges drop",
        "iifname @bridges accept",
        "oifname @bridges drop",
    ]
    return rules


def _input_rules(nets: list[BridgeNet]) -> list[str]:
    rules = []
    for n in nets:
        if n.internal:
            b = _q(n.bridge)
            rules += [f"iifname {b} ct state established,related accept",
                      f"iifname {b} ip daddr {n.gateway} meta l4proto {{ tcp, udp }} "
                      "th dport 53 accept",
                      f"iifname {b} drop"]
    return rules


def _chain(name: str, hook: str, rules: list[str]) -> list[str]:
    return [f"\tchain {name} {{", f"\t\t{hook}", *(f"\t\t{r}" for r in rules), "\t}"]


def _check_table(table: str) -> None:
    if not _TABLE_RE.match(table):
        raise ValueError(f"bad table name {table!r}")


def render(rs: Ruleset, *, table: str = TABLE) -> str:
    """The text of ``table ip berth`` for *rs*, to feed to ``nft -f``. Deterministic: the same
    ruleset (in any order) gives the same text. Raises ValueError for an invalid ruleset.

    *table* exists for tests, which must not replace the table of a berthd on the same host."""
    _check_table(table)
    _validate(rs)
    nets = sorted(rs.nets, key=lambda n: n.bridge)
    pre_ports, out_ports = _port_rules(rs)
    vips = sorted({s.vip for s in rs.services}, key=int)
    lines = [
        f"table {FAMILY} {table}",
        f"delete table {FAMILY} {table}",
        f"table {FAMILY} {table} {{",
        "\tset bridges { " + _elements("ifname", [_q(n.bridge) for n in nets]) + " }",
        "\tset vips { " + _elements("ipv4_addr", [str(v) for v in vips]) + " }",
        *_chain("prerouting", "type nat hook prerouting priority dstnat; policy accept;",
                pre_ports + _service_rules(rs)),
        # "dstnat" is not accepted for the output hook by nft 1.0.6: -100 is its value.
        *_chain("output", "type nat hook output priority -100; policy accept;", out_ports),
        *_chain("postrouting", "type nat hook postrouting priority srcnat; policy accept;",
                _postrouting_rules(nets)),
        *_chain("forward", "type filter hook forward priority filter; policy accept;",
                _forward_rules(nets)),
        *_chain("input", "type filter hook input priority filter; policy accept;",
                _input_rules(nets)),
        "}",
    ]
    return "\n".join(lines) + "\n"


# -------------------------------------------------------------------------------- applying


def _nft() -> str:
    found = shutil.which("nft") or ("/usr/sbin/nft" if Path("/usr/sbin/nft").exists() else None)
    if found is None:
        raise NftError("nft is not installed (Debian package: nftables)")
    return found


def _run(args: list[str], text: str | None = None) -> str:
    try:
        done = subprocess.run([_nft(), *args], input=text, capture_output=True, text=True,
                              timeout=_TIMEOUT, check=False)
    except subprocess.TimeoutExpired as e:
        raise NftError(f"nft {' '.join(args)} did not finish in {_TIMEOUT:.0f}s") from e
    if done.returncode != 0:
        raise NftError(f"nft {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout


def apply(rs: Ruleset, *, check_only: bool = False, table: str = TABLE) -> None:
    """Replace ``table ip berth`` with *rs* in one transaction (``check_only``: nft -c, which
    validates against the kernel without changing anything; both need CAP_NET_ADMIN)."""
    _run(["-c", "-f", "-"] if check_only else ["-f", "-"], render(rs, table=table))


def clear(*, table: str = TABLE) -> None:
    """Delete ``table ip berth`` (idempotent: the first line creates it if it was missing)."""
    _check_table(table)
    _run(["-f", "-"], f"table {FAMILY} {table}\ndelete table {FAMILY} {table}\n")


def exists(*, table: str = TABLE) -> bool:
    """Whether ``table ip berth`` is present (for leak checks)."""
    _check_table(table)
    listing = json.loads(_run(["-j", "list", "tables"]) or "{}")
    return any(item.get("table", {}).get("family") == FAMILY
               and item.get("table", {}).get("name") == table
               for item in listing.get("nftables", []))


def foreign_forward_drops() -> list[str]:
    """Base chains of other tables on the forward hook with policy drop, e.g.
    ``ip filter FORWARD`` (docker through iptables-nft). Any of them drops routed container
    traffic whatever this table says; the caller should warn, not edit them."""
    listing = json.loads(_run(["-j", "list", "chains"]) or "{}")
    found = []
    for item in listing.get("nftables", []):
        chain = item.get("chain")
        # Berth's own chains have policy accept, so no table needs excluding.
        if chain and chain.get("hook") == "forward" and chain.get("policy") == "drop":
            found.append(f"{chain.get('family')} {chain.get('table')} {chain.get('name')}")
    return sorted(found)

"""Berth's host networking primitives on the real kernel: namespaces, bridges, veths, nftables.

The lab: project p1 has bridge A (backends a1-a3 and a client a4) and an internal bridge B (b1);
project p2 has bridge C (c1); a "world" bridge W that Berth does not manage stands for the
outside (w1). w1 has a route back to 10.250.0.0/16 through the host, so what it sees as the
source of a container's connection, and what does not get through, is decided by Berth's rules
rather than by a missing route. Every namespace runs a tiny TCP+UDP server (started with
``nsenter --net``) that answers "<its name> <the peer address it saw>". Names carry a random
suffix; the nft table is ``berth_t<suffix>`` so a berthd's own ``ip berth`` table on this host
is never touched.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from pathlib import Path

import pytest
from pyroute2 import IPRoute

from berth.network import links, netns, nft
from berth.network.nft import BridgeNet, PortMap, Ruleset, ServiceVip

pytestmark = pytest.mark.integration

PORT = 7000  # every lab server listens here, TCP and UDP
MTU = 1400

SERVER = r"""
import socket, sys, threading
name, port = sys.argv[1], int(sys.argv[2])
t = socket.socket()
t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
t.bind(("0.0.0.0", port))
t.listen(64)
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.bind(("0.0.0.0", port))
def udp():
    while True:
        data, peer = u.recvfrom(2048)
        u.sendto(f"{name} {peer[0]}".encode(), peer)
threading.Thread(target=udp, daemon=True).start()
print("ready", flush=True)
while True:
    c, peer = t.accept()
    c.sendall(f"{name} {peer[0]}".encode())
    c.close()
"""


def _require_host() -> None:
    if os.geteuid() != 0:
        pytest.skip("host networking tests need root (namespaces, netlink, nftables)")
    for tool in ("nft", "nsenter"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed")
    drops = nft.foreign_forward_drops()
    if drops:
        pytest.skip(f"forward chains with policy drop in other tables would drop the lab's "
                    f"routed traffic whatever Berth's table says: {drops}")


def tcp_ask(ip: IPv4Address | str, port: int, timeout: float = 3.0) -> str:
    with socket.create_connection((str(ip), port), timeout=timeout) as s:
        return s.recv(256).decode()


def udp_ask(ip: IPv4Address | str, port: int, timeout: float = 3.0) -> str:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.sendto(b"hi", (str(ip), port))
        return s.recvfrom(256)[0].decode()


def fails(fn: Callable[[], object]) -> bool:
    """True when *fn* raises a network error (refused, unreachable, timed out)."""
    try:
        fn()
    except OSError:
        return True
    return False


def _free_host_port() -> int:
    """A port nothing on the host listens on, so the lab's wildcard DNAT hijacks nobody."""
    while True:
        port = 30000 + secrets.randbelow(2000)
        with socket.socket() as s, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            try:
                s.bind(("0.0.0.0", port))
                u.bind(("0.0.0.0", port))
            except OSError:
                continue
            return port


def _free_subnet_base(count: int) -> int:
    """x such that 10.250.x.0/24 .. 10.250.(x+count-1).0/24 overlap no host address."""
    with IPRoute() as ipr:
        used = [IPv4Interface(f"{a.get('IFA_ADDRESS')}/{a['prefixlen']}").network
                for a in ipr.get_addr(family=socket.AF_INET)]
    while True:
        base = 20 + secrets.randbelow(200)
        nets = [IPv4Network(f"10.250.{base + i}.0/24") for i in range(count)]
        if not any(n.overlaps(u) for n in nets for u in used):
            return base


@dataclass
class Lab:
    """Everything one test run creates, so that teardown removes exactly that."""

    suffix: str = field(default_factory=lambda: secrets.token_hex(3))
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="berth-net-")))
    bridges: list[str] = field(default_factory=list)
    veths: list[str] = field(default_factory=list)
    namespaces: dict[str, Path] = field(default_factory=dict)
    addresses: dict[str, IPv4Address] = field(default_factory=dict)
    procs: list[subprocess.Popen[str]] = field(default_factory=list)

    @property
    def table(self) -> str:
        return f"berth_t{self.suffix}"

    def bridge(self, key: str, subnet: IPv4Network) -> str:
        name = f"bt{self.suffix}{key}"
        self.bridges.append(name)
        gateway = IPv4Interface(f"{subnet.network_address + 1}/{subnet.prefixlen}")
        links.ensure_bridge(name, gateway, MTU)
        links.ensure_bridge(name, gateway, MTU)  # idempotent
        return name

    def namespace(self, name: str, bridge: str, address: IPv4Interface,
                  gateway: IPv4Address | None) -> Path:
        path = self.root / "netns" / name
        self.namespaces[name] = path
        netns.create(path)
        netns.create(path)  # idempotent
        host_if = f"vt{self.suffix}{len(self.veths):02d}"
        self.veths.append(host_if)
        for _ in range(2):  # idempotent
            links.attach(bridge, path, host_if, "eth0", address, gateway, MTU)
        self.addresses[name] = address.ip
        self.serve(name)
        return path

    def serve(self, name: str) -> None:
        proc = subprocess.Popen(
            ["nsenter", f"--net={self.namespaces[name]}", sys.executable, "-c", SERVER, name,
             str(PORT)], stdout=subprocess.PIPE, text=True)
        self.procs.append(proc)
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"

    def run_in(self, name: str, fn: Callable[[], object]) -> object:
        return netns.run_in(self.namespaces[name], fn)

    def blocked(self, name: str, ip: IPv4Address, port: int,
                ask: Callable[..., str] = tcp_ask) -> bool:
        """True when a connection from namespace *name* to *ip*:*port* does not get through."""
        return bool(self.run_in(name, lambda: fails(lambda: ask(ip, port, timeout=1.5))))

    def teardown(self) -> None:
        for proc in self.procs:  # only the processes this lab started, by their own handle
            proc.kill()
            proc.wait(timeout=10)
            if proc.stdout is not None:
                proc.stdout.close()
        nft.clear(table=self.table)
        for veth in self.veths:
            links.detach(veth)
        for bridge in self.bridges:
            links.remove_bridge(bridge)
        for path in self.namespaces.values():
            netns.remove(path)

    def leftovers(self) -> list[str]:
        left = links.links(f"bt{self.suffix}") + links.links(f"vt{self.suffix}")
        if nft.exists(table=self.table):
            left.append(f"nft table ip {self.table}")
        mounts = Path("/proc/self/mountinfo").read_text()
        left += [f"mount {line.split()[4]}" for line in mounts.splitlines()
                 if str(self.root) in line]
        left += [f"file {p}" for p in self.namespaces.values() if p.exists()]
        return left

    def destroy(self) -> None:
        self.teardown()
        left = self.leftovers()
        if not left:
            shutil.rmtree(self.root, ignore_errors=True)
        assert not left, f"left behind: {left}"


@dataclass
class World:
    lab: Lab
    base: int
    vip: IPv4Address
    empty_vip: IPv4Address
    host_port: int

    def gw(self, i: int) -> IPv4Address:
        return IPv4Address(f"10.250.{self.base + i}.1")


def _route(dst: str, gateway: IPv4Address) -> None:
    with IPRoute() as ipr:
        ipr.route("replace", dst=dst, gateway=str(gateway))


def _subnet(base: int, i: int) -> IPv4Network:
    return IPv4Network(f"10.250.{base + i}.0/24")


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    _require_host()
    lab = Lab()
    try:
        base = _free_subnet_base(5)
        a, b, c, w = (lab.bridge(k, _subnet(base, i)) for i, k in enumerate("abcw"))

        def addr(i: int, host: int) -> IPv4Interface:
            return IPv4Interface(f"10.250.{base + i}.{host}/24")

        def gw(i: int) -> IPv4Address:
            return IPv4Address(f"10.250.{base + i}.1")

        for n in range(1, 5):
            lab.namespace(f"a{n}", a, addr(0, n + 1), gw(0))
        lab.namespace("b1", b, addr(1, 2), gw(1))
        lab.namespace("c1", c, addr(2, 2), gw(2))
        lab.namespace("w1", w, addr(3, 2), None)
        lab.run_in("w1", lambda: _route("10.250.0.0/16", gw(3)))
        vip, empty_vip = IPv4Address(f"10.250.{base + 4}.10"), IPv4Address(f"10.250.{base + 4}.11")
        host_port = _free_host_port()
        a1 = lab.addresses["a1"]
        rs = Ruleset(
            nets=[BridgeNet(a, _subnet(base, 0), gw(0), False, "p1"),
                  BridgeNet(b, _subnet(base, 1), gw(1), True, "p1"),
                  BridgeNet(c, _subnet(base, 2), gw(2), False, "p2")],
            ports=[PortMap(None, host_port, "tcp", a1, PORT),
                   PortMap(IPv4Address("127.0.0.1"), host_port, "udp", a1, PORT)],
            services=[ServiceVip(vip, "tcp", 80, PORT,
                                 [lab.addresses[n] for n in ("a1", "a2", "a3")], [a]),
                      ServiceVip(empty_vip, "tcp", 80, PORT, [], [a])],
        )
        nft.apply(rs, check_only=True, table=lab.table)
        nft.apply(rs, table=lab.table)
        nft.apply(rs, table=lab.table)  # reapplying is an atomic swap, not an error
        yield World(lab, base, vip, empty_vip, host_port)
    finally:
        lab.destroy()


def test_two_namespaces_on_one_bridge_reach_each_other(world: World) -> None:
    lab = world.lab
    assert lab.run_in("a1", lambda: tcp_ask(lab.addresses["a2"], PORT)) == \
        f"a2 {lab.addresses['a1']}"
    assert lab.run_in("a2", lambda: udp_ask(lab.addresses["a1"], PORT)) == \
        f"a1 {lab.addresses['a2']}"


def test_published_port_from_the_host(world: World) -> None:
    port = world.host_port
    for address in ("127.0.0.1", world.gw(0), world.gw(3)):
        assert tcp_ask(address, port).split()[0] == "a1", address
    assert udp_ask("127.0.0.1", port).split()[0] == "a1"  # -p 127.0.0.1:PORT:7000/udp
    # The loopback-only UDP port is not published on the host's other addresses.
    assert fails(lambda: udp_ask(world.gw(3), port, timeout=1.0))


def test_published_port_hairpin_and_from_other_networks(world: World) -> None:
    lab, port = world.lab, world.host_port
    # Same bridge through a host address: masqueraded, so a1 answers through the host.
    assert lab.run_in("a2", lambda: tcp_ask(world.gw(0), port)) == f"a1 {world.gw(0)}"
    assert lab.run_in("a1", lambda: tcp_ask(world.gw(0), port)) == f"a1 {world.gw(0)}"
    # Another project, and the outside: a published port is public; the source is kept.
    assert lab.run_in("c1", lambda: tcp_ask(world.gw(2), port)) == f"a1 {lab.addresses['c1']}"
    assert lab.run_in("w1", lambda: tcp_ask(world.gw(3), port)) == f"a1 {lab.addresses['w1']}"


def test_service_vip_balances_and_stays_in_its_project(world: World) -> None:
    lab = world.lab
    answers = lab.run_in("a4", lambda: [tcp_ask(world.vip, 80) for _ in range(30)])
    assert isinstance(answers, list)
    assert {a.split()[0] for a in answers} == {"a1", "a2", "a3"}
    assert lab.blocked("a4", world.empty_vip, 80)
    for other in ("c1", "b1"):  # another project's bridge; a bridge not in the service's list
        assert lab.blocked(other, world.vip, 80)


def test_bridges_are_isolated_from_each_other(world: World) -> None:
    lab = world.lab
    a1, b1, c1 = (lab.addresses[n] for n in ("a1", "b1", "c1"))
    assert tcp_ask(c1, PORT) == f"c1 {world.gw(2)}"  # reachable at all (from the host)
    assert lab.blocked("a1", c1, PORT)
    assert lab.blocked("c1", a1, PORT)
    assert lab.blocked("a1", b1, PORT)
    assert lab.blocked("b1", a1, PORT)


def test_egress_is_masqueraded_and_internal_networks_stay_inside(world: World) -> None:
    lab = world.lab
    w1 = lab.addresses["w1"]
    assert lab.run_in("a1", lambda: tcp_ask(w1, PORT)) == f"w1 {world.gw(3)}"
    assert lab.run_in("c1", lambda: udp_ask(w1, PORT)) == f"w1 {world.gw(3)}"
    assert lab.blocked("b1", w1, PORT)
    assert lab.blocked("b1", w1, PORT, udp_ask)


def test_the_outside_reaches_containers_only_through_published_ports(world: World) -> None:
    lab = world.lab
    assert lab.run_in("w1", lambda: tcp_ask(world.gw(3), world.host_port)).startswith("a1 ")
    for target in ("a1", "c1", "b1"):
        assert lab.blocked("w1", lab.addresses[target], PORT)


@contextlib.contextmanager
def _host_listener(address: IPv4Address, port: int, kind: int) -> Iterator[None]:
    """A host socket on *address*:*port* answering "host" (a stand-in for the DNS server)."""
    sock = socket.socket(socket.AF_INET, kind)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((str(address), port))
    except OSError as e:
        sock.close()
        pytest.skip(f"cannot bind {address}:{port} on the host: {e}")
    stop = threading.Event()

    def loop() -> None:
        sock.settimeout(0.2)
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                if kind == socket.SOCK_DGRAM:
                    _, peer = sock.recvfrom(512)
                    sock.sendto(b"host", peer)
                else:
                    conn, _ = sock.accept()
                    with conn:
                        conn.sendall(b"host")

    if kind == socket.SOCK_STREAM:
        sock.listen(8)
    t = threading.Thread(target=loop, daemon=True)
    t.start()
    try:
        yield
    finally:
        stop.set()
        t.join()
        sock.close()


def test_internal_network_reaches_dns_on_its_gateway_and_nothing_else_on_the_host(
        world: World) -> None:
    lab, gw_b = world.lab, world.gw(1)
    with _host_listener(gw_b, 53, socket.SOCK_DGRAM), \
            _host_listener(gw_b, 53, socket.SOCK_STREAM), \
            _host_listener(gw_b, PORT + 1, socket.SOCK_STREAM):
        assert lab.run_in("b1", lambda: udp_ask(gw_b, 53)) == "host"
        assert lab.run_in("b1", lambda: tcp_ask(gw_b, 53)) == "host"
        assert lab.blocked("b1", gw_b, PORT + 1)
        assert lab.run_in("a1", lambda: tcp_ask(gw_b, PORT + 1)) == "host"  # not internal


def test_attach_repairs_a_half_made_pair(world: World) -> None:
    lab = world.lab
    path, host_if = lab.namespaces["a4"], lab.veths[3]
    address = IPv4Interface(f"{lab.addresses['a4']}/24")
    links.detach(host_if)  # as if berthd died between deleting and re-creating the pair
    assert lab.blocked("a4", lab.addresses["a1"], PORT)
    links.attach(lab.bridges[0], path, host_if, "eth0", address, world.gw(0), MTU)
    assert lab.run_in("a4", lambda: tcp_ask(lab.addresses["a1"], PORT)).startswith("a1 ")
    # A pair made but not finished: host end down and out of the bridge, peer unaddressed.
    with IPRoute() as ipr:
        ipr.link("set", index=ipr.link_lookup(ifname=host_if)[0], master=0, state="down")
    lab.run_in("a4", _flush_eth0)
    assert lab.blocked("a4", lab.addresses["a1"], PORT)
    links.attach(lab.bridges[0], path, host_if, "eth0", address, world.gw(0), MTU)
    assert lab.run_in("a4", lambda: tcp_ask(lab.addresses["a1"], PORT)).startswith("a1 ")


def _flush_eth0() -> None:
    with IPRoute() as ipr:
        index = ipr.link_lookup(ifname="eth0")[0]
        ipr.flush_addr(index=index)
        ipr.link("set", index=index, state="down")


def test_teardown_leaves_nothing_behind() -> None:
    _require_host()
    lab = Lab()
    try:
        subnet = _subnet(_free_subnet_base(1), 0)
        bridge = lab.bridge("x", subnet)
        gateway = subnet.network_address + 1
        for n in (1, 2):
            lab.namespace(f"x{n}", bridge, IPv4Interface(f"{gateway + n}/24"), gateway)
        nft.apply(Ruleset(nets=[BridgeNet(bridge, subnet, gateway, False, "p")]),
                  table=lab.table)
        assert lab.run_in("x1", lambda: tcp_ask(gateway + 2, PORT)) == f"x2 {gateway + 1}"
        assert netns.is_netns(lab.namespaces["x1"])
        assert len(lab.leftovers()) == 8  # bridge, 2 veths, table, 2 mounts, 2 files
    finally:
        lab.teardown()
    assert lab.leftovers() == []
    assert not netns.is_netns(lab.namespaces["x1"])
    with IPRoute() as ipr:
        names = [str(link.get("IFLA_IFNAME")) for link in ipr.get_links()]
    assert not [n for n in names if lab.suffix in n]
    shutil.rmtree(lab.root)
    # Idempotent teardown: everything is already gone.
    lab.teardown()


def test_netns_create_reuses_a_leftover_file_and_remove_is_idempotent(tmp_path: Path) -> None:
    _require_host()
    path = tmp_path / "netns" / "n1"
    path.parent.mkdir()
    path.touch()  # as if berthd died between creating the file and mounting onto it
    assert not netns.is_netns(path)
    try:
        netns.create(path)
        assert netns.is_netns(path)
        inside = netns.run_in(path, lambda: Path("/proc/thread-self/ns/net").stat().st_ino)
        assert inside == path.stat().st_ino != Path("/proc/self/ns/net").stat().st_ino
        with IPRoute() as ipr:
            host_links = len(ipr.get_links())
        assert netns.run_in(path, _link_states) == [("lo", "up")]
        with IPRoute() as ipr:
            assert len(ipr.get_links()) == host_links  # this thread never left the host's
    finally:
        netns.remove(path)
        netns.remove(path)
    assert not path.exists() and str(tmp_path) not in Path("/proc/self/mountinfo").read_text()


def _link_states() -> list[tuple[str, str]]:
    with IPRoute() as ipr:
        return [(str(link.get("IFLA_IFNAME")), str(link.get("state"))) for link in ipr.get_links()]


def test_forward_drop_of_another_table_is_reported(tmp_path: Path) -> None:
    """Docker's iptables-nft layout, rebuilt in a scratch namespace (never on the host)."""
    _require_host()
    path = tmp_path / "scratch"
    netns.create(path)
    try:
        docker_like = ("table ip filter {\n chain FORWARD { type filter hook forward priority 0; "
                       "policy drop; }\n}\n")
        subprocess.run(["nsenter", f"--net={path}", "nft", "-f", "-"], input=docker_like,
                       text=True, check=True, timeout=30)
        # A child forked from the thread that joined the namespace runs nft in it, too.
        assert netns.run_in(path, nft.foreign_forward_drops) == ["ip filter FORWARD"]
    finally:
        netns.remove(path)

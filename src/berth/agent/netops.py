"""The host side of bridge networking, level-triggered from the store's endpoint rows.

* A container's network namespace is the runtime's (so the container's user namespace owns it:
  exec and sysfs work); between ``runc create`` and ``start``, ``plumb`` puts a veth per
  endpoint into it, on a bridge per network. It lives as long as the container's process:
  berthd may die meanwhile; at the next start it is made and plumbed again (same address,
  the store keeps it).
* ``sync`` renders the whole nftables table (egress NAT, isolation, published ports of running
  containers) from the store and swaps it in when it changed, removes bridges of networks that
  are gone, and refreshes the DNS responders: one listener on each bridge's gateway, answering
  the names of the containers on that network (and only to that network's subnet).

Everything is derived again from the store after a restart, so a kill -9 at any point is
repaired by the next sync.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from pathlib import Path

from sqlalchemy import select

from berth.errors import BerthError
from berth.network import dns, links, netns, nft
from berth.network.dnsserver import DnsBindError, DnsResponder
from berth.service import vips
from berth.service.endpoints import endpoints_of, mac_for
from berth.service.selectors import parse_selector
from berth.store.db import Store
from berth.store.models import Container, Endpoint, Network, Pod, PortBinding, Service

log = logging.getLogger("berth.agent.net")
RUNNING = ("running", "paused", "restarting")
SYNC_DELAY = 0.05  # coalesce the syncs a burst of changes asks for
Upstreams = dict[tuple[str, str], list[tuple[str, int]]]
# A pin is made between runc create and start, before the row says "running": the sweep
# leaves pins this young alone (a start takes well under this).
PIN_GRACE = 60.0


@dataclass
class NetPlan:
    """What a container's network namespace should hold (from its endpoint rows)."""

    nameservers: list[str] = field(default_factory=list)
    addresses: list[str] = field(default_factory=list)


def table_name(run_root: Path) -> str:
    """One table per daemon: the default run root owns ``berth``, test daemons their own."""
    if run_root == Path("/run/berth"):
        return "berth"
    return "berth_" + hashlib.sha256(str(run_root).encode()).hexdigest()[:10]


class NetOps:
    def __init__(self, store: Store, run_root: Path, host: str) -> None:
        self.store = store
        self.host = host
        self.dir = run_root / "netns"
        self.table = table_name(run_root)
        self._applied: str | None = None
        self._pending: asyncio.Task[None] | None = None
        self._dirty = False
        self._pinned_at: dict[str, float] = {}  # owner -> when plumbed (being started)
        self._dns: DnsResponder | None = None
        self._names: dict[str, dict[str, list[str]]] = {}  # network id -> name -> addresses
        # network id -> a client's address there -> every network its owner is on (that one
        # first): a container on several networks resolves the names of each
        self._peers: dict[str, dict[str, list[str]]] = {}
        self._upstreams: Upstreams = {}  # (network id, a client's address) -> its own DNS
        self._listening: dict[str, str] = {}  # network id -> gateway served
        self._lock = asyncio.Lock()
        self._replumb: set[tuple[str, str | None]] = set()  # (owner, network it left)
        # Told once the sync after their change has run (a connect answers only then).
        self._applied_waiters: list[concurrent.futures.Future[None]] = []
        # After a running owner's namespace followed a connect or disconnect: the /etc files
        # of the containers in that namespace follow too (set by the agent's ContainerOps).
        self.on_replumbed: Callable[[str], None] | None = None

    def bridge(self, network_id: str) -> str:
        """Per daemon (its table names it): two daemons on one host (tests do that) never
        share a bridge even when their stores hold the same network id."""
        return links.bridge_name(f"{self.table}/{network_id}")

    def netns_path(self, owner_id: str) -> Path:
        return self.dir / owner_id

    # -- one container ----------------------------------------------------------------------

    def plan(self, owner_id: str) -> NetPlan | None:
        """What the owner's /etc/hosts and resolv.conf say; None without endpoints."""
        with self.store.session() as s:
            eps = endpoints_of(s, owner_id)
        if not eps:
            return None
        return NetPlan(nameservers=[n.gateway for _, n in eps if n.gateway],
                       addresses=[e.address for e, _ in eps])

    def plumb(self, owner_id: str, pid: int) -> None:
        """Make the network namespace of process ``pid`` (the container's, made by the
        runtime so that the container's user namespace owns it) match the owner's endpoints:
        a bridge per network, a veth per endpoint (blocking: run off the loop)."""
        with self.store.session() as s:
            eps = endpoints_of(s, owner_id)
        path = self.netns_path(owner_id)
        self._pinned_at[owner_id] = time.monotonic()  # the sweep leaves a fresh pin alone
        netns.pin(f"/proc/{pid}/ns/net", path)
        for i, (ep, net) in enumerate(eps):
            assert net.subnet is not None and net.gateway is not None
            subnet = IPv4Network(net.subnet)
            self.mark_bridge(net.id)
            links.ensure_bridge(self.bridge(net.id),
                                IPv4Interface(f"{net.gateway}/{subnet.prefixlen}"), net.mtu)
            links.attach(self.bridge(net.id), path, links.veth_name(owner_id, net.id),
                         ep.ifname, IPv4Interface(f"{ep.address}/{subnet.prefixlen}"),
                         IPv4Address(net.gateway) if i == 0 else None, net.mtu,
                         mac=mac_for(ep.address))

    def unplug(self, owner_id: str, network_id: str) -> None:
        links.detach(links.veth_name(owner_id, network_id))

    def _replumb_one(self, owner_id: str, left: str | None) -> None:
        """A connect or disconnect while the owner runs: its namespace follows the rows."""
        try:
            if left is not None:
                self.unplug(owner_id, left)
            with self.store.session() as s:
                row = s.get(Container, owner_id)
                pid = row.pid if row is not None and row.status in RUNNING else 0
            if pid:
                self.plumb(owner_id, pid)
                if self.on_replumbed is not None:
                    self.on_replumbed(owner_id)
        except Exception:
            log.exception("network change of %s", owner_id[:12])

    def release(self, owner_id: str) -> None:
        """The owner stopped or is gone: unpin its namespace, so that it (and its veths) end
        with its process."""
        netns.remove(self.netns_path(owner_id))
        self._pinned_at.pop(owner_id, None)

    # -- the host as a whole ------------------------------------------------------------------

    def changed(self, owner_id: str | None, left: str | None,
                applied: concurrent.futures.Future[None] | None = None) -> None:
        """The hub's news: ``owner_id`` joined or ``left`` a network (its id) while running;
        ``applied`` is told once a sync that saw the change has run."""
        if owner_id is not None:
            self._replumb.add((owner_id, left))
        if applied is not None:
            self._applied_waiters.append(applied)
        self.request_sync()

    def request_sync(self) -> None:
        """Sync soon; calls in a burst coalesce into one, and a call made while a sync runs
        gets another one after it."""
        self._dirty = True
        if self._pending is None or self._pending.done():
            self._pending = asyncio.get_running_loop().create_task(self._sync_later())

    async def _sync_later(self) -> None:
        while self._dirty:
            await asyncio.sleep(SYNC_DELAY)
            self._dirty = False
            try:
                await self.sync()
            except Exception:  # the next change or sweep tries again
                log.exception("network sync failed")

    async def sync(self) -> None:
        async with self._lock:
            waiters, self._applied_waiters = self._applied_waiters, []
            try:
                await self._sync()
            finally:
                for waiter in waiters:  # a failure is logged; the change stays recorded
                    if not waiter.done():
                        waiter.set_result(None)

    async def _sync(self) -> None:
        """Replumb the owners that connected or disconnected, then the host's rules, names
        and DNS."""
        todo, self._replumb = self._replumb, set()
        for owner, left in todo:
            await asyncio.to_thread(self._replumb_one, owner, left)
        rules, names, nets, self._peers, self._upstreams = await asyncio.to_thread(
            self._read)
        text = nft.render(rules, table=self.table)
        if text != self._applied:
            await asyncio.to_thread(nft.apply, rules, table=self.table)
            self._applied = text
        self._names = names
        await asyncio.to_thread(self._collect_garbage, nets)
        await self._serve_dns(nets)

    def _read(self) -> tuple[nft.Ruleset, dict[str, dict[str, list[str]]], list[Network],
                             dict[str, dict[str, list[str]]], Upstreams]:
        with self.store.session() as s:
            nets = list(s.scalars(select(Network).where(Network.subnet.is_not(None))))
            eps = list(s.scalars(select(Endpoint)))
            containers = list(s.scalars(select(Container).where(Container.host == self.host)))
            bindings = list(s.scalars(select(PortBinding)))
            services = list(s.scalars(select(Service)))
            pods = list(s.scalars(select(Pod)))
        by_id = {c.id: c for c in containers}
        members: dict[str, list[Container]] = {}  # infra id -> the pod's members
        for c in containers:
            if (c.spec or {}).get("pod_infra"):
                members.setdefault(c.spec["pod_infra"], []).append(c)
        by_owner: dict[str, list[Endpoint]] = {}
        names: dict[str, dict[str, list[str]]] = {}
        running: set[str] = set()
        upstreams: Upstreams = {}
        for ep in eps:
            c = by_id.get(ep.owner_id)
            if c is None:
                continue  # another host's
            if (c.spec or {}).get("dns"):  # docker --dns: where its other names go
                upstreams[(ep.network_id, ep.address)] = [(ip, 53) for ip in c.spec["dns"]]
            by_owner.setdefault(c.id, []).append(ep)
            if c.status in RUNNING:
                running.add(c.id)
            table = names.setdefault(ep.network_id, {})
            # A pod's members answer at its address under their own names too.
            known = {n for m in members.get(c.id, []) for n in (m.name, m.id[:12], m.id)}
            for name in {c.name, c.id[:12], c.id, *(ep.aliases or []), *known,
                         (c.spec or {}).get("hostname") or c.id[:12]}:
                table.setdefault(name.lower(), []).append(ep.address)
        ports = []
        for b in bindings:
            owned = sorted(by_owner.get(b.owner_id, []), key=lambda e: e.ifname)
            if b.owner_id in running and owned:
                ports.append(nft.PortMap(host_ip=None if b.host_ip == "0.0.0.0"
                                         else IPv4Address(b.host_ip), host_port=b.host_port,
                                         proto=b.proto, ip=IPv4Address(owned[0].address),
                                         port=b.container_port))  # type: ignore[arg-type]
        bridges = [nft.BridgeNet(bridge=self.bridge(n.id), subnet=IPv4Network(n.subnet),
                                 gateway=IPv4Address(n.gateway), internal=n.internal,
                                 project=n.project_id) for n in nets]  # type: ignore[arg-type]
        vips = self._services(services, nets, containers, pods, eps, names)
        peers: dict[str, dict[str, list[str]]] = {}
        for owned in by_owner.values():
            for ep in owned:
                others = [e.network_id for e in owned if e.network_id != ep.network_id]
                peers.setdefault(ep.network_id, {})[ep.address] = [ep.network_id, *others]
        return (nft.Ruleset(nets=bridges, ports=ports, services=vips), names, nets, peers,
                upstreams)

    def _services(self, services: list[Service], nets: list[Network],
                  containers: list[Container], pods: list[Pod], eps: list[Endpoint],
                  names: dict[str, dict[str, list[str]]]) -> list[nft.ServiceVip]:
        """Each service's VIP on its project's bridges, over its ready backends; its name in
        the DNS of those networks."""
        addresses = vips.first_addresses(eps)
        out = []
        for svc in services:
            own = [n for n in nets if n.project_id == svc.project_id]
            for n in own:
                names.setdefault(n.id, {}).setdefault(svc.name.lower(), []).append(svc.vip)
            try:
                selector = parse_selector(svc.selector)
            except BerthError:  # stored parsed; never expected
                continue
            backends = [IPv4Address(b.address) for b in vips.select_backends(
                selector, svc.project_id, containers, pods, addresses)]
            for port in svc.ports:
                out.append(nft.ServiceVip(
                    vip=IPv4Address(svc.vip), proto=port["proto"], port=int(port["port"]),
                    target_port=int(port["target_port"]), backends=backends,
                    bridges=[self.bridge(n.id) for n in own]))
        return out

    def _collect_garbage(self, nets: list[Network]) -> None:
        """Bridges whose network is gone; pins of owners no longer running."""
        wanted = {self.bridge(n.id) for n in nets}
        for name in links.links(links.BRIDGE_PREFIX):
            if links.owned(name) and name not in wanted and self._ours(name):
                with contextlib.suppress(Exception):
                    links.remove_bridge(name)
                    (self.dir / f".bridge-{name}").unlink(missing_ok=True)
        if self.dir.exists():
            with self.store.session() as s:
                live = set(s.scalars(select(Container.id).where(
                    Container.host == self.host, Container.status.in_(RUNNING))))
            now = time.monotonic()
            for entry in self.dir.iterdir():
                fresh = now - self._pinned_at.get(entry.name, -PIN_GRACE) < PIN_GRACE
                if not entry.name.startswith(".") and entry.name not in live and not fresh:
                    with contextlib.suppress(Exception):
                        netns.remove(entry)

    def _ours(self, bridge: str) -> bool:
        """A bridge of this daemon's (its marker file): another daemon's are left alone."""
        return (self.dir / f".bridge-{bridge}").exists()

    def mark_bridge(self, network_id: str) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / f".bridge-{self.bridge(network_id)}").touch()

    # -- DNS ------------------------------------------------------------------------------

    async def _serve_dns(self, nets: list[Network]) -> None:
        if self._dns is None:
            try:
                text = Path("/etc/resolv.conf").read_text()
            except OSError:
                text = ""
            self._dns = DnsResponder(lambda _n, _t: None, dns.upstreams(text))
        present = set(await asyncio.to_thread(links.links, links.BRIDGE_PREFIX))
        wanted = {n.id: n for n in nets if self.bridge(n.id) in present}
        for nid, gateway in list(self._listening.items()):
            if nid not in wanted or wanted[nid].gateway != gateway:
                await self._dns.unlisten((gateway, 53))
                del self._listening[nid]
        for nid, net in wanted.items():
            if nid in self._listening:
                continue
            try:
                await self._dns.listen((str(net.gateway), 53), lookup=self._lookup([nid]),
                                       clients=[str(net.subnet)],
                                       per_client=self._client_lookup(nid),
                                       upstreams_for=self._client_upstreams(nid))
                self._listening[nid] = str(net.gateway)
            except DnsBindError as e:  # the bridge is not up yet: the next sync retries
                log.info("DNS on %s: %s", net.gateway, e)

    def _client_lookup(self, network_id: str) -> Callable[[str], dns.Lookup]:
        def for_client(address: str) -> dns.Lookup:
            return self._lookup(self._peers.get(network_id, {}).get(address) or [network_id])
        return for_client

    def _client_upstreams(self, network_id: str) -> Callable[[str], list[tuple[str, int]] | None]:
        return lambda address: self._upstreams.get((network_id, address))

    def _lookup(self, network_ids: list[str]) -> dns.Lookup:
        """Names on these networks; the first network's win when a name is on several."""
        def lookup(qname: str, qtype: str) -> dns.Answer | None:
            table = self._names.get(network_ids[0], {})
            if len(network_ids) > 1:  # a copy only for a container on several networks
                table = {}
                for nid in reversed(network_ids):
                    table.update(self._names.get(nid, {}))
            if qtype == "PTR":
                address = dns.reverse_address(qname)
                if address is None:
                    return None
                found = sorted(n for n, ips in table.items() if address in ips and "." not in n)
                return dns.Answer(names=tuple(found[:1])) if found else None
            ips = table.get(qname)
            return dns.Answer(addresses=tuple(ips)) if ips else None
        return lookup

    async def close(self) -> None:
        if self._dns is not None:
            await self._dns.stop()


def forget_host(run_root: Path) -> None:
    """Remove what a daemon made on the host for its networks: namespaces, bridges (its
    marker files name them), its nftables table. For a host (or a test) done with Berth;
    a running berthd never calls it (containers outlive it)."""
    ns_dir = run_root / "netns"
    if ns_dir.exists():
        for entry in ns_dir.iterdir():
            if entry.name.startswith(".bridge-"):
                with contextlib.suppress(Exception):
                    links.remove_bridge(entry.name.removeprefix(".bridge-"))
                entry.unlink(missing_ok=True)
            else:
                with contextlib.suppress(Exception):
                    netns.remove(entry)
    with contextlib.suppress(Exception):
        nft.clear(table=table_name(run_root))

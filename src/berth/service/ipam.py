"""Address management in the store: subnets for networks (host-wide, never overlapping),
addresses on a network (never handed out twice), host ports (never bound twice).

Every allocation runs inside the caller's transaction after ``lock`` (an UPDATE of the one
network_lock row), so two concurrent creates check and insert in turn; the unique indexes are
the last line of defence. Freed means the rows are gone: nothing else remembers an address.
"""

from __future__ import annotations

import errno
import ipaddress
import socket
from collections.abc import Callable, Iterable
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from berth.errors import Conflict, InvalidArgument
from berth.store.models import Endpoint, Network, NetworkLock, PortBinding, Service

# Where networks without a subnet of their own get one: /24s, clear of Docker's 172.17/12
# and podman's 10.88-10.89 defaults.
POOL = IPv4Network("10.210.0.0/15")
POOL_PREFIX = 24
# Services' virtual IPs: host-wide, outside every bridge subnet (nft refuses a VIP inside one).
SERVICE_RANGE = IPv4Network("10.212.0.0/16")
EPHEMERAL_PORTS = range(32768, 61000)  # Linux's default ip_local_port_range
ANY = "0.0.0.0"


def lock(s: Session) -> None:
    """Take the host-wide allocation lock for the rest of the transaction."""
    done = s.execute(update(NetworkLock).where(NetworkLock.id == 1)
                     .values(serial=NetworkLock.serial + 1))
    if done.rowcount == 0:  # type: ignore[attr-defined]
        s.add(NetworkLock(id=1, serial=1))
        s.flush()


def taken_subnets(s: Session) -> list[IPv4Network]:
    return [IPv4Network(v) for v in s.scalars(select(Network.subnet).where(
        Network.subnet.is_not(None)))]


def choose_subnet(s: Session, wanted: IPv4Network | None,
                  in_use: Iterable[IPv4Network] = ()) -> IPv4Network:
    """``wanted`` if nothing overlaps it, else the first free /24 of the pool. ``in_use``:
    other networks the host has (routes) that Berth's must not overlap either."""
    taken = taken_subnets(s) + list(in_use)
    if wanted is not None:
        if wanted.overlaps(SERVICE_RANGE):
            raise Conflict(f"subnet {wanted} overlaps {SERVICE_RANGE}, where Berth's "
                           "services get their virtual IPs")
        for other in taken:
            if wanted.overlaps(other):
                raise Conflict(f"subnet {wanted} overlaps {other}, which another network "
                               "uses on this host")
        return wanted
    for candidate in POOL.subnets(new_prefix=POOL_PREFIX):
        if not any(candidate.overlaps(other) for other in taken):
            return candidate
    raise Conflict(f"no free subnet left in Berth's pool {POOL}: remove unused networks or "
                   "give the network a subnet")


def host_routes(text: str | None = None) -> list[IPv4Network]:
    """The IPv4 networks this host routes (/proc/net/route; the default route left out): a
    new network's subnet must not shadow them (another daemon's bridge, the LAN)."""
    if text is None:
        try:
            text = Path("/proc/net/route").read_text()
        except OSError:
            return []
    out = []
    for line in text.splitlines()[1:]:
        cols = line.split()
        if len(cols) < 8:
            continue
        try:
            dest = IPv4Address(int(cols[1], 16).to_bytes(4, "little"))
            mask = IPv4Address(int(cols[7], 16).to_bytes(4, "little"))
            net = IPv4Network(f"{dest}/{mask}", strict=False)
        except ValueError:
            continue
        if net.prefixlen > 0:
            out.append(net)
    return out


def default_gateway(subnet: IPv4Network) -> IPv4Address:
    if subnet.num_addresses < 4:
        raise InvalidArgument(f"subnet {subnet} is too small: it needs room for a gateway "
                              "and at least one container (a /30 or larger)")
    return subnet.network_address + 1


def assignable(net: Network) -> tuple[IPv4Network, IPv4Network, IPv4Address]:
    """(subnet, range addresses come from, gateway) of a network made real."""
    assert net.subnet is not None and net.gateway is not None
    subnet = IPv4Network(net.subnet)
    pool = IPv4Network(net.ip_range) if net.ip_range else subnet
    return subnet, pool, IPv4Address(net.gateway)


def allocate_address(s: Session, net: Network, wanted: IPv4Address | None) -> IPv4Address:
    """A free address on the network: ``wanted`` (refused when outside the subnet, the
    gateway, or taken) or the lowest free one of its range."""
    subnet, pool, gateway = assignable(net)
    reserved = {subnet.network_address, subnet.broadcast_address, gateway}
    used = {IPv4Address(a) for a in s.scalars(select(Endpoint.address).where(
        Endpoint.network_id == net.id))}
    if wanted is not None:
        if wanted not in subnet:
            raise InvalidArgument(f"address {wanted} is not in network {net.name}'s subnet "
                                  f"{subnet}")
        if wanted in reserved:
            raise InvalidArgument(f"address {wanted} is reserved on network {net.name} (the "
                                  "network, broadcast or gateway address)")
        if wanted in used:
            raise Conflict(f"address {wanted} is already in use on network {net.name}")
        return wanted
    for address in pool.hosts() if pool.num_addresses > 2 else pool:
        if address not in used and address not in reserved and address in subnet:
            return address
    raise Conflict(f"no free address left on network {net.name} ({pool})")


def allocate_vip(s: Session, host_nets: Iterable[IPv4Network] = ()) -> IPv4Address:
    """The lowest free address of SERVICE_RANGE (none that a host route covers)."""
    used = {IPv4Address(v) for v in s.scalars(select(Service.vip))}
    routed = [n for n in host_nets if n.overlaps(SERVICE_RANGE)]
    for address in SERVICE_RANGE.hosts():
        if address not in used and not any(address in n for n in routed):
            return address
    raise Conflict(f"no free service address left in {SERVICE_RANGE}")


def free_owner(s: Session, owner_id: str) -> None:
    """Drop everything allocated to a container or pod: its addresses and host ports."""
    s.execute(delete(Endpoint).where(Endpoint.owner_id == owner_id))
    s.execute(delete(PortBinding).where(PortBinding.owner_id == owner_id))


PortCheck = Callable[[str, int, str], bool]


def bind_port(s: Session, host_ip: str, host_port: int, proto: str,
              available: PortCheck | None = None) -> int:
    """Reserve a host port (0: the first free ephemeral one). Refused when taken by another
    binding: the same address, or either side binding every address. ``available(ip, port,
    proto)`` may veto ports something outside Berth holds."""
    rows = s.execute(select(PortBinding.host_ip, PortBinding.host_port)
                     .where(PortBinding.proto == proto)).all()
    taken: dict[int, set[str]] = {}
    for ip, port in rows:
        taken.setdefault(port, set()).add(ip)

    def clashes(port: int) -> bool:
        ips = taken.get(port, set())
        return bool(ips) and (host_ip == ANY or ANY in ips or host_ip in ips)

    if host_port:
        if clashes(host_port):
            raise Conflict(f"host port {_where(host_ip, host_port, proto)} is already "
                           "published by another container")
        if available is not None and not available(host_ip, host_port, proto):
            raise Conflict(f"host port {_where(host_ip, host_port, proto)} is in use on "
                           "the host")
        return host_port
    for port in EPHEMERAL_PORTS:
        if not clashes(port) and (available is None or available(host_ip, port, proto)):
            return port
    raise Conflict("no free ephemeral host port left")


def host_port_free(host_ip: str, port: int, proto: str) -> bool:
    """Whether something on the host (outside Berth's rules) already holds the port: a
    trial bind, released at once."""
    kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
    with socket.socket(socket.AF_INET, kind) as sock:
        try:
            sock.bind((host_ip, port))
        except OSError as e:
            if e.errno == errno.EADDRNOTAVAIL:
                raise InvalidArgument(f"cannot publish on {host_ip}: no interface of this "
                                      "host has that address") from None
            return False
    return True


def _where(host_ip: str, port: int, proto: str) -> str:
    return f"{'' if host_ip == ANY else host_ip + ':'}{port}/{proto}"


def parse_ip(text: str, what: str) -> IPv4Address:
    try:
        return IPv4Address(text)
    except ValueError:
        raise InvalidArgument(f"{what}: {text!r} is not an IPv4 address") from None


def parse_subnet(text: str, what: str) -> IPv4Network:
    try:
        net = ipaddress.ip_network(text, strict=True)
    except ValueError as e:
        raise InvalidArgument(f"{what}: invalid subnet {text!r}: {e}") from None
    if not isinstance(net, IPv4Network):
        raise InvalidArgument(f"{what}: {text} is IPv6: Berth's bridge networks are IPv4")
    return net

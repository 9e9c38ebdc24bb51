"""Bridges and veth pairs for Berth's bridge networks, through netlink (pyroute2).

Every function converges the host towards one desired state and is safe to call again after a
crash at any point: a missing piece is created, a wrong one is corrected, a half-made veth pair
is deleted and made again. Nothing here shells out to ``ip``.

Names are derived from ids (:func:`bridge_name`, :func:`veth_name`) so that they are stable
across restarts and at most 15 characters (IFNAMSIZ - 1); :func:`owned` tells Berth's names from
anybody else's before garbage collection deletes anything.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from ipaddress import IPv4Address, IPv4Interface
from pathlib import Path
from typing import Any

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from berth.errors import BerthError
from berth.network import netns, sysctl

BRIDGE_PREFIX = "bth"
VETH_PREFIX = "vb"
_BRIDGE_RE = re.compile(r"^bth[0-9a-f]{10}$")
_VETH_RE = re.compile(r"^vb[0-9a-f]{12}$")
_IFNAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,15}$")
_MAC_RE = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")


class LinkError(BerthError):
    """A bridge or veth could not be set up (the message names the interface and the cause)."""


def bridge_name(network_id: str) -> str:
    """The host bridge of a network: ``bth`` + 10 hex digits of sha256(network id)."""
    return BRIDGE_PREFIX + hashlib.sha256(network_id.encode()).hexdigest()[:10]


def veth_name(container_id: str, network_id: str) -> str:
    """The host end of a container's veth on one network: ``vb`` + 12 hex digits."""
    digest = hashlib.sha256(f"{container_id}\0{network_id}".encode()).hexdigest()
    return VETH_PREFIX + digest[:12]


def owned(name: str) -> bool:
    """True for names :func:`bridge_name` or :func:`veth_name` can return (and no others)."""
    return bool(_BRIDGE_RE.match(name) or _VETH_RE.match(name))


def _check_name(name: str) -> None:
    if not _IFNAME_RE.match(name):
        raise LinkError(f"bad interface name {name!r} (1-15 of A-Z a-z 0-9 _ -)")


@contextmanager
def _rtnl(what: str) -> Iterator[IPRoute]:
    """An IPRoute socket in the calling thread's namespace; netlink errors become LinkError."""
    try:
        with IPRoute() as ipr:
            yield ipr
    except NetlinkError as e:
        raise LinkError(f"{what}: {os.strerror(e.code) if e.code else e}") from e


def _index(ipr: IPRoute, name: str) -> int | None:
    found = ipr.link_lookup(ifname=name)
    return found[0] if found else None


def _link(ipr: IPRoute, index: int) -> Any:
    return ipr.link("get", index=index)[0]


def _kind(link: Any) -> str | None:
    kind = link.get_nested("IFLA_LINKINFO", "IFLA_INFO_KIND")
    return str(kind) if kind is not None else None


def _delete(ipr: IPRoute, index: int) -> None:
    try:
        ipr.link("del", index=index)
    except NetlinkError as e:
        if e.code != errno.ENODEV:  # already gone (a peer deleted with its pair, say)
            raise


def _bridge_mac(name: str) -> str:
    """A fixed, locally administered MAC for a bridge.

    Left alone, a bridge takes the lowest MAC among its ports and changes it as containers come
    and go, so the gateway's MAC would change under the containers' ARP caches.
    """
    digest = hashlib.sha256(name.encode()).digest()
    return ":".join(f"{b:02x}" for b in (0x02, *digest[:5]))


def _ensure_address(ipr: IPRoute, index: int, want: IPv4Interface) -> None:
    """Exactly one IPv4 address on the link: *want* (stale ones from an older subnet go)."""
    have = {(a.get("IFA_ADDRESS"), a["prefixlen"])
            for a in ipr.get_addr(index=index, family=socket.AF_INET)}
    target = (str(want.ip), want.network.prefixlen)
    for address, prefixlen in have - {target}:
        ipr.addr("del", index=index, address=address, prefixlen=prefixlen)
    if target not in have:
        ipr.addr("add", index=index, address=target[0], prefixlen=target[1])


def ensure_bridge(name: str, gateway: IPv4Interface, mtu: int) -> None:
    """Create bridge *name* if missing; give it exactly the address *gateway*; set mtu; up.

    Also switches on IPv4 forwarding and route_localnet on the bridge (published ports reached
    at 127.0.0.1). Refuses if *name* exists and is not a bridge.
    """
    _check_name(name)
    with _rtnl(f"bridge {name}") as ipr:
        index = _index(ipr, name)
        if index is None:
            try:
                ipr.link("add", ifname=name, kind="bridge", mtu=mtu, address=_bridge_mac(name))
            except NetlinkError as e:
                if e.code != errno.EEXIST:
                    raise
            index = _index(ipr, name)
            if index is None:
                raise LinkError(f"bridge {name}: vanished right after creation")
        link = _link(ipr, index)
        if _kind(link) != "bridge":
            raise LinkError(f"{name} exists and is not a bridge (kind {_kind(link)})")
        if link.get("IFLA_MTU") != mtu:
            ipr.link("set", index=index, mtu=mtu)
        if link.get("IFLA_ADDRESS") != _bridge_mac(name):
            ipr.link("set", index=index, address=_bridge_mac(name))
        _ensure_address(ipr, index, gateway)
        ipr.link("set", index=index, state="up")
    sysctl.ensure_forwarding()
    sysctl.ensure_route_localnet(name)


def remove_bridge(name: str) -> None:
    """Delete bridge *name* (its ports are released, not deleted). Idempotent."""
    _check_name(name)
    with _rtnl(f"remove bridge {name}") as ipr:
        index = _index(ipr, name)
        if index is None:
            return
        if _kind(_link(ipr, index)) != "bridge":
            raise LinkError(f"{name} is not a bridge; not deleting it")
        _delete(ipr, index)


def _inner_state(inner_if: str) -> tuple[int, int | None] | None:
    """(index, peer index) of veth *inner_if* in the calling thread's namespace, if any."""
    with IPRoute() as ipr:
        index = _index(ipr, inner_if)
        if index is None:
            return None
        link = _link(ipr, index)
        peer = link.get("IFLA_LINK") if _kind(link) == "veth" else None
        return index, peer


def _delete_inner(inner_if: str) -> None:
    with IPRoute() as ipr:
        index = _index(ipr, inner_if)
        if index is not None:
            _delete(ipr, index)


def _configure_inner(inner_if: str, address: IPv4Interface, gateway: IPv4Address | None,
                     mtu: int, mac: str | None) -> None:
    """Runs inside the container's namespace: mtu, mac, address, up, default route."""
    with IPRoute() as ipr:
        index = _index(ipr, inner_if)
        if index is None:
            raise LinkError(f"{inner_if} missing in the namespace after creating it")
        link = _link(ipr, index)
        if mac is not None and link.get("IFLA_ADDRESS") != mac:
            ipr.link("set", index=index, state="down")
            ipr.link("set", index=index, address=mac)
        if link.get("IFLA_MTU") != mtu:
            ipr.link("set", index=index, mtu=mtu)
        _ensure_address(ipr, index, address)
        ipr.link("set", index=index, state="up")
        if gateway is not None:
            ipr.route("replace", dst="0.0.0.0/0", gateway=str(gateway), oif=index)


def attach(bridge: str, netns_path: Path, host_if: str, inner_if: str, address: IPv4Interface,
           gateway: IPv4Address | None, mtu: int, mac: str | None = None) -> None:
    """Connect the namespace at *netns_path* to *bridge* through a veth pair. Idempotent.

    The host end *host_if* is enslaved to the bridge and up; the peer is created directly inside
    the namespace under its final name *inner_if* (so it never clashes with a host interface of
    the same name, e.g. eth0), gets exactly *address*, *mtu*, *mac* (when given; else the
    kernel's random one) and is up. When *gateway* is given the namespace's default route goes
    through it; when it is None the default route is left alone (a container on two networks
    has one default route, set by the attach that passes a gateway).

    Repair after a crash: a pair whose two ends do not point at each other (host end alone,
    inner name held by another link) is deleted and made again.
    """
    for name in (bridge, host_if, inner_if):
        _check_name(name)
    if mac is not None and not _MAC_RE.match(mac):
        raise LinkError(f"bad MAC address {mac!r} (lower-case aa:bb:cc:dd:ee:ff)")
    if address.network.prefixlen >= 31:
        raise LinkError(f"address {address} leaves no room for a gateway")
    if not netns.is_netns(netns_path):
        raise LinkError(f"{netns_path} is not a network namespace")
    with _rtnl(f"attach {host_if} to {bridge}") as ipr:
        bridge_index = _index(ipr, bridge)
        if bridge_index is None:
            raise LinkError(f"bridge {bridge} does not exist")
        host_index = _index(ipr, host_if)
        inner = netns.run_in(netns_path, lambda: _inner_state(inner_if))
        if host_index is not None:
            host = _link(ipr, host_index)
            if _kind(host) != "veth":
                raise LinkError(f"{host_if} exists and is not a veth (kind {_kind(host)})")
            paired = (inner is not None
                      and inner[1] == host_index and host.get("IFLA_LINK") == inner[0])
            if not paired:
                _delete(ipr, host_index)
                host_index = None
        if host_index is None:
            if inner is not None:
                netns.run_in(netns_path, lambda: _delete_inner(inner_if))
            peer: dict[str, Any] = {"ifname": inner_if, "mtu": mtu}
            if mac is not None:
                peer["address"] = mac
            fd = os.open(netns_path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                ipr.link("add", ifname=host_if, kind="veth", mtu=mtu,
                         peer={**peer, "net_ns_fd": fd})
            finally:
                os.close(fd)
            host_index = _index(ipr, host_if)
            if host_index is None:
                raise LinkError(f"{host_if} vanished right after creation")
        ipr.link("set", index=host_index, master=bridge_index, mtu=mtu, state="up")
        # Hairpin: with br_netfilter on (bridge-nf-call-iptables=1, as on this kind of host),
        # a container's packet DNATed back to itself (its own published port through a host
        # address, or a VIP whose random pick is itself) is *bridged* back out of the port it
        # came in on, which a bridge only does in hairpin mode. Docker does the same without
        # its userland proxy.
        host = _link(ipr, host_index)
        if host.get_nested("IFLA_LINKINFO", "IFLA_INFO_SLAVE_DATA", "IFLA_BRPORT_MODE") != 1:
            ipr.brport("set", index=host_index, mode=1)
    try:
        netns.run_in(netns_path,
                     lambda: _configure_inner(inner_if, address, gateway, mtu, mac))
    except NetlinkError as e:
        raise LinkError(f"configure {inner_if} in {netns_path}: {os.strerror(e.code)}") from e


def detach(host_if: str) -> None:
    """Delete the veth pair whose host end is *host_if* (both ends go). Idempotent."""
    _check_name(host_if)
    with _rtnl(f"detach {host_if}") as ipr:
        index = _index(ipr, host_if)
        if index is not None:
            _delete(ipr, index)


def links(prefix: str) -> list[str]:
    """Sorted names of the host's links that start with *prefix* (for leak checks and GC).

    A prefix also matches foreign names (``vb`` matches ``vboxnet0``): filter with
    :func:`owned` before deleting anything.
    """
    with _rtnl("list links") as ipr:
        names = (str(link.get("IFLA_IFNAME")) for link in ipr.get_links())
        return sorted(n for n in names if n.startswith(prefix))

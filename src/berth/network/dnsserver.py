"""The DNS responder Berth runs for its bridge networks: UDP and TCP listeners in the daemon's
asyncio loop that answer from a Lookup (dns.py) and forward every other name to the host's
resolvers. No threads: everything runs in the loop that calls `DnsResponder.start()`.

One responder can serve many networks: each `listen()` binds one address (a network's gateway,
port 53) with its own lookup (that network's project's names) and the client subnets it answers.
Bounds: forwarded queries in flight (beyond them SERVFAIL at once), TCP connections (beyond them
closed at once), a TCP idle timeout, 65535-byte messages (the TCP length prefix), replies dropped
while the UDP socket's send buffer is full.
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import logging
import struct
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import partial

from berth.network.dns import Forward, Lookup, answer
from berth.network.dnsforward import FORWARD_TIMEOUT, MAX_FORWARDS, Address, Forwarder

ClientLookup = Callable[[str], Lookup]  # a client's address -> the lookup that answers it
ClientUpstreams = Callable[[str], Sequence[Address] | None]  # a client -> its own servers

log = logging.getLogger("berth.network")

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

MAX_CONNECTIONS = 128  # TCP connections per responder (all listeners); more are closed at once
IDLE_TIMEOUT = 10.0  # seconds a TCP client has to send its next complete query (or read a reply)

_HINTS = {
    errno.EADDRNOTAVAIL: "no interface has this address yet; retry once the bridge is up",
    errno.EADDRINUSE: "another server holds this port",
    errno.EACCES: "port 53 needs root or CAP_NET_BIND_SERVICE",
}


class DnsBindError(OSError):
    """A listen address cannot be bound (not on any interface yet, port taken, …). ``errno`` says
    which; EADDRNOTAVAIL means the address is not up yet and a retry later may succeed."""


@dataclass(eq=False)
class _Listener:
    address: Address
    lookup: Lookup | None
    clients: tuple[Network, ...] | None
    per_client: ClientLookup | None = None
    upstreams_for: ClientUpstreams | None = None
    udp: asyncio.DatagramTransport | None = None
    server: asyncio.Server | None = None
    connections: set[asyncio.Task[object]] = field(default_factory=set)
    paused: bool = False  # the UDP send buffer is full: replies are dropped until it drains
    closed: bool = False  # unlisten() began: no new connections, no more replies

    def allows(self, host: str) -> bool:
        if self.clients is None:
            return True
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(ip in net for net in self.clients)


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, responder: DnsResponder, listener: _Listener) -> None:
        self._responder = responder
        self._listener = listener

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self._responder._datagram(self._listener, data, addr)

    def error_received(self, exc: Exception) -> None:
        log.debug("dns: UDP error on %s: %r", self._listener.address, exc)

    def pause_writing(self) -> None:
        self._listener.paused = True

    def resume_writing(self) -> None:
        self._listener.paused = False


class DnsResponder:
    """Answers our names from a Lookup and forwards the rest to *upstreams* (see
    ``dns.upstreams()``), over UDP and TCP on each address given to `start()` or `listen()`.

    ``lookup`` is called for every query, so it can read the daemon's live view of names; it
    is also a plain attribute the daemon may replace at any time. A listener's own lookup (given
    to `listen()`) takes precedence over it. ``upstreams`` may be replaced too (resolv.conf
    changed). Never raises out of a query handler.
    """

    def __init__(
        self,
        lookup: Lookup,
        upstreams: Sequence[Address] = (),
        *,
        forward_timeout: float = FORWARD_TIMEOUT,
        max_forwards: int = MAX_FORWARDS,
        max_connections: int = MAX_CONNECTIONS,
        idle_timeout: float = IDLE_TIMEOUT,
    ) -> None:
        self.lookup = lookup
        self.max_connections = max_connections
        self.idle_timeout = idle_timeout
        self._forwarder = Forwarder(timeout=forward_timeout, max_in_flight=max_forwards)
        self.upstreams = list(upstreams)
        self._listeners: dict[Address, _Listener] = {}
        self._connections = 0

    @property
    def upstreams(self) -> list[Address]:
        return list(self._forwarder.servers)

    @upstreams.setter
    def upstreams(self, servers: Sequence[Address]) -> None:
        self._forwarder.servers = [_address(s) for s in servers]

    @property
    def addresses(self) -> list[Address]:
        """The addresses listened on, as bound (a port 0 replaced by the one chosen)."""
        return list(self._listeners)

    @property
    def in_flight(self) -> int:
        """Forwarded queries waiting for an upstream now."""
        return self._forwarder.in_flight

    async def start(self, addresses: Iterable[Address]) -> list[Address]:
        """Listen on every address, or on none: when one fails the others bound by this call are
        released and the DnsBindError is raised. Returns the addresses as bound."""
        bound: list[Address] = []
        fresh: list[Address] = []
        try:
            for address in addresses:
                new = _address(address) not in self._listeners
                bound.append(await self.listen(address))
                if new:
                    fresh.append(bound[-1])
        except BaseException:
            for address in fresh:
                await self.unlisten(address)
            raise
        return bound

    async def stop(self) -> None:
        """Close every listener and connection and cancel the forwards in flight."""
        for address in list(self._listeners):
            await self.unlisten(address)
        await self._forwarder.close()

    async def listen(
        self,
        address: Address,
        *,
        lookup: Lookup | None = None,
        clients: Iterable[str] | None = None,
        per_client: ClientLookup | None = None,
        upstreams_for: ClientUpstreams | None = None,
    ) -> Address:
        """Serve UDP and TCP on *address* (an IP literal and a port; port 0 picks a free one, the
        same for both) and return it as bound. *lookup* replaces the responder's lookup for this
        address (a network's own project view). *clients* (CIDRs, say the network's subnet)
        restricts who is answered; others are ignored, so a container of another network that
        reaches this gateway through the host learns nothing. Listening again on a bound address
        only replaces its lookup and clients. Raises DnsBindError when the address cannot be
        bound (EADDRNOTAVAIL: not up yet, retry later) and ValueError for a malformed one.
        *per_client* (client address -> its Lookup), when given, decides instead of *lookup*:
        a container on several networks resolves the names of all of them. *upstreams_for*
        (client address -> servers, or None for the responder's) says where a client's other
        names go: a container's own DNS servers."""
        host, port = _address(address)
        nets = None
        if clients is not None:  # "10.88.0.1/16" (a gateway's interface) means its subnet
            nets = tuple(ipaddress.ip_network(c, strict=False) for c in clients)
        listener = self._listeners.get((host, port)) if port else None
        if listener is not None:
            listener.lookup, listener.clients = lookup, nets
            listener.per_client, listener.upstreams_for = per_client, upstreams_for
            return listener.address
        listener = await self._bind(host, port, lookup, nets)
        listener.per_client, listener.upstreams_for = per_client, upstreams_for
        self._listeners[listener.address] = listener
        return listener.address

    async def unlisten(self, address: Address) -> None:
        """Stop serving *address* and close its TCP connections; nothing if it is not served."""
        listener = self._listeners.pop(_address(address), None)
        if listener is None:
            return
        listener.closed = True
        if listener.udp is not None:
            listener.udp.close()
        if listener.server is not None:
            listener.server.close()
        tasks = list(listener.connections)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if listener.server is not None:
            await listener.server.wait_closed()

    async def _bind(
        self, host: str, port: int, lookup: Lookup | None, clients: tuple[Network, ...] | None
    ) -> _Listener:
        loop = asyncio.get_running_loop()
        for _attempt in range(8 if port == 0 else 1):
            listener = _Listener((host, port), lookup, clients)
            try:
                udp, _ = await loop.create_datagram_endpoint(
                    partial(_Udp, self, listener), local_addr=(host, port)
                )
            except OSError as e:
                raise _bind_error(host, port, e) from e
            actual = udp.get_extra_info("sockname")[1]
            listener.address, listener.udp = (host, actual), udp
            try:
                listener.server = await asyncio.start_server(
                    partial(self._connection, listener), host, actual, reuse_address=True
                )
            except OSError as e:
                udp.close()
                if port == 0 and e.errno == errno.EADDRINUSE:
                    continue  # the UDP port chosen is taken for TCP: choose another
                raise _bind_error(host, actual, e) from e
            return listener
        raise DnsBindError(errno.EADDRINUSE, f"no free port for DNS on both UDP and TCP at {host}")

    def _lookup_for(self, listener: _Listener, client: str) -> Lookup:
        if listener.per_client is not None:
            return listener.per_client(client)
        return listener.lookup if listener.lookup is not None else self.lookup

    @staticmethod
    def _upstreams_for(listener: _Listener, client: str) -> Sequence[Address] | None:
        return listener.upstreams_for(client) if listener.upstreams_for is not None else None

    def _datagram(self, listener: _Listener, data: bytes, addr: tuple[str, int]) -> None:
        try:
            if not listener.allows(addr[0]):
                return
            result = answer(data, self._lookup_for(listener, addr[0]))
            if isinstance(result, Forward):
                task = self._forwarder.forward(result, self._listeners.keys(),
                                               self._upstreams_for(listener, addr[0]))
                if task is not None:
                    task.add_done_callback(partial(self._forwarded, listener, addr))
                    return
                result = result.failure()
            if result is not None:
                self._send(listener, result, addr)
        except Exception:
            log.exception("dns: failed handling a UDP query from %s", addr[0])

    def _forwarded(
        self, listener: _Listener, addr: tuple[str, int], task: asyncio.Task[bytes]
    ) -> None:
        if task.cancelled():
            return
        if task.exception() is not None:
            log.error("dns: forwarding failed", exc_info=task.exception())
            return
        self._send(listener, task.result(), addr)

    def _send(self, listener: _Listener, data: bytes, addr: tuple[str, int]) -> None:
        udp = listener.udp
        if udp is None or listener.closed or listener.paused or udp.is_closing():
            return  # gone (unlisten) or the send buffer is full: UDP may lose a reply
        udp.sendto(data, addr)

    async def _connection(
        self, listener: _Listener, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        peer = writer.get_extra_info("peername")
        if task is None or self._connections >= self.max_connections or not peer:
            writer.close()
            return
        if listener.closed or not listener.allows(peer[0]):
            writer.close()
            return
        self._connections += 1
        listener.connections.add(task)
        try:
            await self._serve(listener, reader, writer, peer[0])
        except (OSError, EOFError, TimeoutError):
            pass  # the client went away, sent half a message, or idled past the timeout
        except asyncio.CancelledError:
            pass  # unlisten(): end quietly (3.11's streams log a handler task that ends cancelled)
        except Exception:
            log.exception("dns: failed serving a TCP client %s", peer[0])
        finally:
            self._connections -= 1
            listener.connections.discard(task)
            writer.close()

    async def _serve(
        self,
        listener: _Listener,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        client: str,
    ) -> None:
        """Queries one after another on one connection, each with a 2-byte length prefix."""
        while True:
            async with asyncio.timeout(self.idle_timeout):
                (size,) = struct.unpack("!H", await reader.readexactly(2))
                wire = await reader.readexactly(size)
            result = answer(wire, self._lookup_for(listener, client), tcp=True)
            if isinstance(result, Forward):
                task = self._forwarder.forward(result, self._listeners.keys(),
                                               self._upstreams_for(listener, client))
                result = result.failure() if task is None else await task
            if result is None:
                return  # a scrap or a response: hang up
            writer.write(struct.pack("!H", len(result)) + result)
            async with asyncio.timeout(self.idle_timeout):
                await writer.drain()


def _address(address: Address) -> Address:
    host, port = address
    if not isinstance(port, int) or not 0 <= port <= 65535:
        raise ValueError(f"bad DNS port {port!r}")
    try:
        return str(ipaddress.ip_address(host)), port
    except ValueError:
        raise ValueError(f"DNS listens on an IP address, not {host!r}") from None


def _bind_error(host: str, port: int, e: OSError) -> DnsBindError:
    where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    hint = _HINTS.get(e.errno or 0)
    reason = f"{e.strerror or e}" + (f" ({hint})" if hint else "")
    return DnsBindError(e.errno or 0, f"cannot listen for DNS on {where}: {reason}")

"""The DNS responder on real loopback sockets: UDP and TCP answers, forwarding to a second
responder playing the host's resolver, dead upstreams, a flood, TCP bounds, and listeners added
and removed at runtime. The responders run in an asyncio loop on a thread of their own, as in
berthd; the tests query them with dnspython's blocking client. Loopback only, no root needed."""

from __future__ import annotations

import asyncio
import errno
import socket
import struct
import threading
import time
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

import dns.exception
import dns.flags
import dns.message
import dns.query
import dns.rcode
import pytest

from berth.network.dns import NXDOMAIN, Answer
from berth.network.dnsserver import DnsBindError, DnsResponder

pytestmark = pytest.mark.integration

T = TypeVar("T")
HOST = "127.0.83.1"  # loopback addresses of our own, away from 127.0.0.1 and 127.0.0.53
UPSTREAM_HOST = "127.0.83.2"
OTHER_HOST = "127.0.83.3"

OURS = {
    "web": Answer(("10.88.0.5",)),
    "svc": Answer(("10.96.0.10",)),
    "pair": Answer(("10.88.0.6", "10.88.0.7")),
    "gone": NXDOMAIN,
    "5.0.88.10.in-addr.arpa": Answer(names=("web.",)),
}
THEIRS = {
    "far.example": Answer(("192.0.2.10",)),
    "big.example": Answer(tuple(f"192.0.2.{i}" for i in range(1, 61))),
}


def table(names: dict[str, Answer]):
    def lookup(qname: str, qtype: str) -> Answer | None:
        return names.get(qname)

    return lookup


class Loop:
    """An asyncio loop on a thread, as uvicorn's loop is berthd's."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture
def loop() -> Iterator[Loop]:
    lp = Loop()
    try:
        yield lp
    finally:
        lp.close()


@pytest.fixture
def upstream(loop: Loop) -> Iterator[tuple[str, int]]:
    """A second responder on another loopback address playing the host's resolver."""
    responder = DnsResponder(table(THEIRS))
    (address,) = loop.run(responder.start([(UPSTREAM_HOST, 0)]))
    try:
        yield address
    finally:
        loop.run(responder.stop())


@pytest.fixture
def blackhole() -> Iterator[tuple[str, int]]:
    """An upstream that never answers: a UDP socket nobody reads (and no TCP listener)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((UPSTREAM_HOST, 0))
    try:
        yield sock.getsockname()
    finally:
        sock.close()


def start(loop: Loop, responder: DnsResponder, host: str = HOST) -> tuple[str, int]:
    (address,) = loop.run(responder.start([(host, 0)]))
    return address


def udp(address: tuple[str, int], name: str, rdtype: str = "A", timeout: float = 10, **kw):
    query = dns.message.make_query(name, rdtype, **kw)
    response = dns.query.udp(query, address[0], port=address[1], timeout=timeout)
    assert response.id == query.id  # dnspython checks it; said here because it is the contract
    return response


def tcp(address: tuple[str, int], name: str, rdtype: str = "A", timeout: float = 10):
    query = dns.message.make_query(name, rdtype)
    return dns.query.tcp(query, address[0], port=address[1], timeout=timeout)


def addresses(response: dns.message.Message) -> list[str]:
    return sorted(rd.to_text() for rrset in response.answer for rd in rrset)


def test_answers_over_udp_and_tcp(loop: Loop):
    responder = DnsResponder(table(OURS))
    address = start(loop, responder)
    try:
        for ask in (udp, tcp):
            assert addresses(ask(address, "web")) == ["10.88.0.5"]
            assert addresses(ask(address, "SVC.")) == ["10.96.0.10"]
            assert addresses(ask(address, "pair")) == ["10.88.0.6", "10.88.0.7"]
            assert addresses(ask(address, "5.0.88.10.in-addr.arpa", "PTR")) == ["web."]
            empty = ask(address, "web", "AAAA")
            assert empty.rcode() == dns.rcode.NOERROR and empty.answer == []
            assert ask(address, "gone").rcode() == dns.rcode.NXDOMAIN
        # no upstreams at all: names not ours fail, they do not hang
        assert udp(address, "far.example").rcode() == dns.rcode.SERVFAIL
    finally:
        loop.run(responder.stop())


def test_lookup_is_replaceable_while_serving(loop: Loop):
    responder = DnsResponder(table(OURS))
    address = start(loop, responder)
    try:
        assert addresses(udp(address, "web")) == ["10.88.0.5"]
        responder.lookup = table({"web": Answer(("10.88.0.50",))})
        assert addresses(udp(address, "web")) == ["10.88.0.50"]
    finally:
        loop.run(responder.stop())


def test_forwards_what_it_does_not_know(loop: Loop, upstream: tuple[str, int]):
    responder = DnsResponder(table(OURS), [upstream])
    address = start(loop, responder)
    try:
        for ask in (udp, tcp):
            assert addresses(ask(address, "far.example")) == ["192.0.2.10"]
            assert addresses(ask(address, "web")) == ["10.88.0.5"]  # ours, not asked upstream
        # upstream's answer is truncated over UDP: the forwarder asks again over TCP, and the
        # client gets all of it when it can take it ...
        assert len(udp(address, "big.example", use_edns=0, payload=1232).answer[0]) == 60
        assert len(tcp(address, "big.example").answer[0]) == 60
        # ... and a truncated one (TC) when it cannot: a 512-byte client asks again over TCP
        assert udp(address, "big.example").flags & dns.flags.TC
        query = dns.message.make_query("big.example", "A")
        response, used_tcp = dns.query.udp_with_fallback(query, address[0], 10, address[1])
        assert used_tcp and len(response.answer[0]) == 60
    finally:
        loop.run(responder.stop())


def test_dead_upstreams_give_servfail_and_the_next_one_is_tried(
    loop: Loop, upstream: tuple[str, int], blackhole: tuple[str, int]
):
    closed = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    closed.bind((UPSTREAM_HOST, 0))
    nobody = closed.getsockname()
    closed.close()  # a port nobody listens on
    responder = DnsResponder(table(OURS), [blackhole, nobody], forward_timeout=0.5)
    address = start(loop, responder)
    try:
        for ask in (udp, tcp):
            assert ask(address, "far.example", timeout=5).rcode() == dns.rcode.SERVFAIL
        responder.upstreams = [blackhole, nobody, upstream]
        assert addresses(udp(address, "far.example", timeout=5)) == ["192.0.2.10"]
        # our own address as an upstream (a resolv.conf pointing at us) is skipped, not looped
        responder.upstreams = [address]
        assert udp(address, "far.example", timeout=5).rcode() == dns.rcode.SERVFAIL
    finally:
        loop.run(responder.stop())


def test_a_flood_is_bounded_and_survived(loop: Loop, blackhole: tuple[str, int]):
    """1000 UDP queries as fast as one socket sends them: half ours, half forwarded to an
    upstream that never answers. At most max_forwards wait upstream; the others get SERVFAIL at
    once; our names keep being answered; nothing breaks."""
    responder = DnsResponder(table(OURS), [blackhole], forward_timeout=60, max_forwards=16)
    address = start(loop, responder)
    client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    client.settimeout(2)
    try:
        kinds: dict[int, str] = {}
        for qid in range(1000):
            name = "web" if qid % 2 else f"x{qid}.far.example"
            query = dns.message.make_query(name, "A")
            query.id = qid
            kinds[qid] = "ours" if qid % 2 else "forwarded"
            client.sendto(query.to_wire(), address)
        seen: dict[str, int] = {"ours": 0, "forwarded": 0}
        while True:
            try:
                wire = client.recv(65535)
            except TimeoutError:
                break
            response = dns.message.from_wire(wire)
            kind = kinds.pop(response.id)  # each id answered at most once
            seen[kind] += 1
            if kind == "ours":
                assert addresses(response) == ["10.88.0.5"]
            else:
                assert response.rcode() == dns.rcode.SERVFAIL
        assert seen["ours"] > 0 and seen["forwarded"] > 0
        # the forwards that got in still wait (60 s timeout): exactly the bound
        assert loop.run(_in_flight(responder)) == 16
        # a fresh forward is refused at once, ours still answered, over UDP and TCP
        assert udp(address, "late.far.example", timeout=5).rcode() == dns.rcode.SERVFAIL
        assert addresses(udp(address, "web")) == ["10.88.0.5"]
        assert addresses(tcp(address, "web")) == ["10.88.0.5"]
    finally:
        client.close()
        loop.run(responder.stop())  # cancels the waiting forwards
    assert loop.run(_in_flight(responder)) == 0


async def _in_flight(responder: DnsResponder) -> int:
    return responder.in_flight


def test_listen_and_unlisten_at_runtime(loop: Loop):
    responder = DnsResponder(table(OURS))
    first = start(loop, responder)
    try:
        other = {"web": Answer(("10.99.0.5",))}
        second = loop.run(responder.listen((OTHER_HOST, 0), lookup=table(other)))
        assert sorted(responder.addresses) == sorted([first, second])
        assert addresses(udp(second, "web")) == ["10.99.0.5"]  # its own network's view
        assert addresses(tcp(second, "web")) == ["10.99.0.5"]
        assert addresses(udp(first, "web")) == ["10.88.0.5"]
        # clients outside the listener's subnets are not answered at all
        loop.run(responder.listen(second, clients=["10.99.0.1/16"]))  # a gateway interface
        with pytest.raises(dns.exception.Timeout):
            udp(second, "web", timeout=0.5)
        with pytest.raises((ConnectionError, EOFError)):
            tcp(second, "web", timeout=2)
        loop.run(responder.listen(second, clients=["127.0.0.0/8"]))
        assert addresses(udp(second, "web")) == ["10.88.0.5"]  # lookup back to the default
        loop.run(responder.unlisten(second))
        loop.run(responder.unlisten(second))  # again: nothing to do
        assert responder.addresses == [first]
        with pytest.raises(dns.exception.Timeout):
            udp(second, "web", timeout=0.5)
        with pytest.raises(ConnectionRefusedError):
            tcp(second, "web", timeout=2)
        assert addresses(udp(first, "web")) == ["10.88.0.5"]
        # the same address again, on the same port
        assert loop.run(responder.listen(second)) == second
        assert addresses(tcp(second, "web")) == ["10.88.0.5"]
    finally:
        loop.run(responder.stop())
    assert responder.addresses == []


def test_binding_an_address_that_is_not_there_fails_clearly(loop: Loop):
    responder = DnsResponder(table(OURS))
    try:
        with pytest.raises(DnsBindError) as caught:
            loop.run(responder.listen(("192.0.2.1", 0)))  # TEST-NET-1: on no interface
        assert caught.value.errno == errno.EADDRNOTAVAIL
        assert "192.0.2.1" in str(caught.value) and "retry" in str(caught.value)
        # start() is all or nothing
        with pytest.raises(DnsBindError):
            loop.run(responder.start([(HOST, 0), ("192.0.2.1", 0)]))
        assert responder.addresses == []
        with pytest.raises(ValueError):
            loop.run(responder.listen(("localhost", 53)))
    finally:
        loop.run(responder.stop())


def test_tcp_connections_are_bounded_idle_ones_closed_and_pipelining_works(loop: Loop):
    responder = DnsResponder(table(OURS), max_connections=2, idle_timeout=2.0)
    address = start(loop, responder)
    held = [socket.create_connection(address, timeout=5) for _ in range(2)]
    try:
        time.sleep(0.2)  # let the loop accept both
        extra = socket.create_connection(address, timeout=5)
        assert extra.recv(1) == b""  # over the bound: closed at once
        extra.close()
        # two queries in one write, two answers in order
        queries = [dns.message.make_query(n, "A") for n in ("web", "svc")]
        wires = [q.to_wire() for q in queries]
        held[0].sendall(b"".join(struct.pack("!H", len(w)) + w for w in wires))
        for query, expected in zip(queries, (["10.88.0.5"], ["10.96.0.10"]), strict=True):
            (size,) = struct.unpack("!H", _read(held[0], 2))
            response = dns.message.from_wire(_read(held[0], size))
            assert response.id == query.id and addresses(response) == expected
        # a connection that sends nothing is closed after the idle timeout
        assert held[1].recv(1) == b""
    finally:
        for sock in held:
            sock.close()
        loop.run(responder.stop())


def _read(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        assert chunk, "connection closed early"
        data += chunk
    return data


def test_a_client_with_its_own_servers_is_forwarded_to_them(loop: Loop,
                                                            upstream: tuple[str, int]):
    """docker --dns on a network: the network's DNS sends that container's other names to
    its own servers, everyone else's to the responder's (here: none)."""
    responder = DnsResponder(table(OURS))
    try:
        address = loop.run(responder.listen(
            (HOST, 0), upstreams_for=lambda client: [upstream] if client == OTHER_HOST
            else None))
        for ask in (dns.query.udp, dns.query.tcp):
            query = dns.message.make_query("far.example", "A")
            own = ask(query, address[0], port=address[1], timeout=10, source=OTHER_HOST)
            assert addresses(own) == ["192.0.2.10"]
            other = ask(query, address[0], port=address[1], timeout=10, source=HOST)
            assert other.rcode() == dns.rcode.SERVFAIL
            # its own names it still answers itself
            mine = ask(dns.message.make_query("web", "A"), address[0], port=address[1],
                       timeout=10, source=OTHER_HOST)
            assert addresses(mine) == ["10.88.0.5"]
    finally:
        loop.run(responder.stop())

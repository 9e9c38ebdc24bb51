"""DNS for bridge networks, the pure part: one query in, one reply out, or "forward this".

A container resolves the names of its own project's containers, pods (and their aliases) and
services through a small responder Berth runs on its network's gateway; every other name goes to
the host's resolvers. This module decides which and builds the replies with dnspython, and reads
the host's resolvers from resolv.conf text. It does no I/O: dnsserver.py runs the listeners,
dnsforward.py asks upstream. `answer()` never raises: any bytes become a reply, a `Forward`, or
None (drop).

What is ours is decided by a `Lookup`, a callable the daemon supplies:
``lookup(qname, qtype) -> Answer | None``. *qname* is lowercase without the trailing dot
(``"web"``, ``"web.example.com"``, ``"5.0.88.10.in-addr.arpa"``), *qtype* is dnspython's type
mnemonic (``"A"``, ``"AAAA"``, ``"PTR"``, ``"MX"``, ``"TYPE65534"`` …). A search domain the
container's resolv.conf appends (``web.example.com`` for ``web``) is the lookup's concern: it
sees the name exactly as asked and strips whatever suffixes it wants to accept.
"""

from __future__ import annotations

import ipaddress
import logging
import struct
from collections.abc import Callable
from dataclasses import dataclass

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.reversename
import dns.rrset

log = logging.getLogger("berth.network")

# Our answers live 10 s in a client's cache. Containers come and go and their addresses are
# reused; a short TTL bounds how long a stale answer survives a replaced container, and costs
# little since the responder sits one bridge hop away (glibc and musl do not cache at all; this
# is for nscd, the JVM, nginx and other caching clients).
TTL = 10
# What we advertise and the most we send over UDP: the DNS flag day 2020 size, which never
# fragments. A larger answer goes out truncated (TC) and the client asks again over TCP.
UDP_PAYLOAD = 1232
MAX_MESSAGE = 65535
# Records per answer, whatever the lookup hands us (a service has one VIP, a name a few IPs).
MAX_RECORDS = 64
# Like glibc, which reads at most three nameservers (MAXNS) and ignores the rest.
MAX_UPSTREAMS = 3
MAX_RESOLV_CONF = 64 * 1024  # characters of resolv.conf read; the nameservers come first anyway

_HEADER = struct.Struct("!HHHHHH")


@dataclass(frozen=True)
class Answer:
    """What a lookup knows about one of our names.

    ``addresses`` become A (IPv4) and AAAA (IPv6) records, each query type taking its own family,
    so a name with only IPv4 addresses answers AAAA with NOERROR and no records. ``names`` become
    PTR records (for reverse names): at most MAX_RECORDS, duplicates dropped, in a new order
    each time (dnspython shuffles them, a round robin). ``exists=False`` answers NXDOMAIN: a name
    we own that is not there, which is never forwarded.
    """

    addresses: tuple[str, ...] = ()
    names: tuple[str, ...] = ()
    exists: bool = True


NXDOMAIN = Answer(exists=False)

Lookup = Callable[[str, str], Answer | None]
"""``(qname, qtype) -> Answer`` for our names, None for "not ours: forward upstream"."""


@dataclass(frozen=True)
class Forward:
    """A query that is not ours; the forwarder asks upstream and renders the reply with these."""

    query: dns.message.Message
    wire: bytes
    max_size: int

    def reply(self, response: dns.message.Message) -> bytes:
        """*response* (upstream's) as bytes for our client: its query id, its size limit."""
        try:
            response.id = self.query.id
            return response.to_wire(max_size=self.max_size, prefer_truncation=True)
        except Exception:  # an upstream reply dnspython parsed but cannot render
            log.debug("dns: cannot render an upstream reply", exc_info=True)
            return self.failure()

    def failure(self) -> bytes:
        """SERVFAIL for this query: no upstream answered, or too many are in flight."""
        return _error(self.query, dns.rcode.SERVFAIL, self.max_size)


def answer(wire: bytes, lookup: Lookup, *, tcp: bool = False) -> bytes | Forward | None:
    """Reply to one DNS message from a client: bytes to send, a Forward, or None to drop it.

    Malformed messages get FORMERR when their id can be read, responses and shorter scraps are
    dropped (answering them invites loops and reflection). Anything but one question of class
    IN with opcode QUERY gets the error a DNS server gives (FORMERR, NOTIMP, REFUSED, BADVERS).
    *tcp* lifts the size limit from the UDP one (512 without EDNS) to 65535.
    """
    try:
        return _answer(wire, lookup, tcp)
    except Exception:  # never out of the handler; _answer already guards the known failures
        log.exception("dns: unexpected failure answering a query")
        return _header_reply(wire, dns.rcode.SERVFAIL)


def reverse_address(qname: str) -> str | None:
    """The address a reverse name asks about (``"5.0.88.10.in-addr.arpa"`` → ``"10.88.0.5"``),
    or None when *qname* is not a complete IPv4 or IPv6 reverse name. For lookups."""
    try:
        name = dns.name.from_text(qname)
        return str(ipaddress.ip_address(dns.reversename.to_address(name)))
    except (dns.exception.DNSException, ValueError):
        return None


def upstreams(text: str) -> list[tuple[str, int]]:
    """The nameservers a resolv.conf *text* names, as (address, 53), in order, as glibc reads
    them: ``nameserver ADDR`` lines (IPv4, IPv6, IPv6 with a %zone), the first three only;
    comments (``#``, ``;``), options, search lines and unparsable addresses are skipped. No
    nameserver gives [] (glibc would try 127.0.0.1; the caller decides). Loopback servers such as
    systemd-resolved's 127.0.0.53 are kept: the responder runs in the host's network namespace.
    """
    found: list[tuple[str, int]] = []
    for line in text[:MAX_RESOLV_CONF].splitlines():
        words = line.split()
        if len(words) < 2 or words[0] != "nameserver":
            continue
        try:
            server = (str(ipaddress.ip_address(words[1])), 53)
        except ValueError:
            continue
        if server not in found:
            found.append(server)
        if len(found) == MAX_UPSTREAMS:
            break
    return found


def _answer(wire: bytes, lookup: Lookup, tcp: bool) -> bytes | Forward | None:
    if len(wire) < 3 or wire[2] & 0x80 or len(wire) > MAX_MESSAGE:
        return None  # no id and flags, or a response (QR): never answer those
    if (wire[2] >> 3) & 0xF != dns.opcode.QUERY:
        return _header_reply(wire, dns.rcode.NOTIMP)  # before parsing: UPDATE has other sections
    try:
        query = dns.message.from_wire(wire)
    except Exception:  # dnspython raises many kinds for hostile bytes; all mean FORMERR
        return _header_reply(wire, dns.rcode.FORMERR)
    max_size = _max_size(query, tcp)
    if query.edns > 0:
        return _error(query, dns.rcode.BADVERS, max_size)
    if len(query.question) != 1:
        return _error(query, dns.rcode.FORMERR, max_size)
    question = query.question[0]
    if question.rdclass != dns.rdataclass.IN:
        return _error(query, dns.rcode.REFUSED, max_size)
    qtype = question.rdtype
    if dns.rdatatype.is_metatype(qtype) and qtype != dns.rdatatype.ANY:
        return _error(query, dns.rcode.REFUSED, max_size)  # AXFR, IXFR, OPT, TSIG, MAILA …
    if question.name == dns.name.root:
        return Forward(query, wire, max_size)
    qname = question.name.to_text(omit_final_dot=True).lower()
    try:
        found = lookup(qname, dns.rdatatype.to_text(qtype))
        if found is None:
            return Forward(query, wire, max_size)
        response = _response(query, question.name, qtype, found)
    except Exception:  # a failing lookup or bad data from it: the daemon's bug, not the client's
        log.exception("dns: lookup of %s %s failed", qname, dns.rdatatype.to_text(qtype))
        return _error(query, dns.rcode.SERVFAIL, max_size)
    return response.to_wire(max_size=max_size, prefer_truncation=True)


def _response(
    query: dns.message.Message, name: dns.name.Name, qtype: int, found: Answer
) -> dns.message.Message:
    response = dns.message.make_response(query, our_payload=UDP_PAYLOAD)
    response.flags |= dns.flags.AA | dns.flags.RA
    if not found.exists:
        response.set_rcode(dns.rcode.NXDOMAIN)
        return response
    wanted: list[tuple[int, list[str]]] = []
    if qtype in (dns.rdatatype.A, dns.rdatatype.AAAA, dns.rdatatype.ANY):
        v4, v6 = _by_family(found.addresses)
        if qtype != dns.rdatatype.AAAA:
            wanted.append((dns.rdatatype.A, v4))
        if qtype != dns.rdatatype.A:
            wanted.append((dns.rdatatype.AAAA, v6))
    if qtype in (dns.rdatatype.PTR, dns.rdatatype.ANY):
        wanted.append((dns.rdatatype.PTR, [_absolute(n) for n in found.names]))
    room = MAX_RECORDS
    for rdtype, values in wanted:
        values = list(dict.fromkeys(values))[:room]  # no duplicates, order kept
        if not values:
            continue
        room -= len(values)
        rdatas = [dns.rdata.from_text(dns.rdataclass.IN, rdtype, v) for v in values]
        response.answer.append(dns.rrset.from_rdata_list(name, TTL, rdatas))
    return response


def _by_family(addresses: tuple[str, ...]) -> tuple[list[str], list[str]]:
    v4: list[str] = []
    v6: list[str] = []
    for text in addresses[: MAX_RECORDS * 2]:
        ip = ipaddress.ip_address(text)  # ValueError on bad data: SERVFAIL, logged
        (v4 if ip.version == 4 else v6).append(str(ip))
    return v4, v6


def _absolute(name: str) -> str:
    return name if name.endswith(".") else name + "."


def _max_size(query: dns.message.Message, tcp: bool) -> int:
    if tcp:
        return MAX_MESSAGE
    if query.edns < 0:
        return 512
    return max(512, min(query.payload, UDP_PAYLOAD))


def _error(query: dns.message.Message, rcode: dns.rcode.Rcode, max_size: int) -> bytes:
    response = dns.message.make_response(query, our_payload=UDP_PAYLOAD)
    response.flags |= dns.flags.RA
    response.set_rcode(rcode)
    if len(response.question) > 1:
        response.question = []  # echo one question at most
    return response.to_wire(max_size=max_size, prefer_truncation=True)


def _header_reply(wire: bytes, rcode: dns.rcode.Rcode) -> bytes | None:
    """A bare header answering *wire* (which dnspython could not read): its id, opcode and RD."""
    if len(wire) < 3 or wire[2] & 0x80:
        return None
    (qid,) = struct.unpack_from("!H", wire)
    flags = dns.flags.QR | (wire[2] << 8 & 0x7900) | dns.flags.RA | (int(rcode) & 0xF)
    return _HEADER.pack(qid, flags, 0, 0, 0, 0)

"""The DNS responder's pure core: answers for our names, errors for bad queries, forwarding
decisions, truncation, and reading the host's nameservers from resolv.conf."""

from __future__ import annotations

import struct

import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.reversename
import dns.rrset

from berth.network.dns import (
    MAX_RECORDS,
    NXDOMAIN,
    TTL,
    Answer,
    Forward,
    answer,
    reverse_address,
    upstreams,
)

NAMES = {
    "web": Answer(("10.88.0.5",)),
    "db": Answer(("10.88.0.6",)),
    "svc": Answer(("10.96.0.10",)),  # a service: one VIP
    "multi": Answer(("10.88.0.7", "10.88.0.8", "10.88.0.7")),
    "dual": Answer(("10.88.0.9", "fd00::9")),
    "gone": NXDOMAIN,
    "many": Answer(tuple(f"10.89.{i // 250}.{i % 250 + 1}" for i in range(500))),
}
REVERSE = {"5.0.88.10.in-addr.arpa": Answer(names=("web", "web.alias."))}


class Recorder:
    """A lookup over NAMES and REVERSE that remembers what it was asked."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, str]] = []

    def __call__(self, qname: str, qtype: str) -> Answer | None:
        self.asked.append((qname, qtype))
        if qtype == "PTR":
            return REVERSE.get(qname)
        return NAMES.get(qname)


def ask(
    name: str, rdtype: str = "A", *, tcp: bool = False, lookup=None, **kw
) -> dns.message.Message:
    query = dns.message.make_query(name, rdtype, **kw)
    reply = answer(query.to_wire(), lookup or Recorder(), tcp=tcp)
    assert isinstance(reply, bytes), reply
    response = dns.message.from_wire(reply)
    assert response.id == query.id
    return response


def addresses(response: dns.message.Message) -> list[str]:
    return [rd.to_text() for rrset in response.answer for rd in rrset]


def test_a_record_for_our_name():
    response = ask("web.")
    assert response.rcode() == dns.rcode.NOERROR
    assert response.flags & dns.flags.QR and response.flags & dns.flags.AA
    assert addresses(response) == ["10.88.0.5"]
    assert response.answer[0].ttl == TTL
    assert response.answer[0].rdtype == dns.rdatatype.A


def test_service_vip_and_several_addresses_deduplicated_in_order():
    assert addresses(ask("svc")) == ["10.96.0.10"]
    assert sorted(addresses(ask("multi"))) == ["10.88.0.7", "10.88.0.8"]  # shuffled per reply


def test_aaaa_and_other_types_of_our_names_are_empty_noerror():
    for rdtype in ("AAAA", "MX", "TXT", "SRV", "TYPE65280"):
        response = ask("web", rdtype)
        assert response.rcode() == dns.rcode.NOERROR, rdtype
        assert response.answer == [], rdtype
        assert response.flags & dns.flags.AA


def test_each_family_answers_its_own_type():
    assert addresses(ask("dual", "A")) == ["10.88.0.9"]
    assert addresses(ask("dual", "AAAA")) == ["fd00::9"]
    assert sorted(addresses(ask("dual", "ANY"))) == ["10.88.0.9", "fd00::9"]


def test_ptr_for_our_address():
    response = ask(dns.name.from_text("5.0.88.10.in-addr.arpa."), "PTR")
    assert sorted(addresses(response)) == ["web.", "web.alias."]
    assert response.answer[0].rdtype == dns.rdatatype.PTR


def test_nxdomain_when_the_lookup_says_so():
    response = ask("gone")
    assert response.rcode() == dns.rcode.NXDOMAIN
    assert response.answer == []


def test_names_match_case_insensitively_and_keep_the_askers_case():
    lookup = Recorder()
    response = ask("WeB.", lookup=lookup)
    assert lookup.asked == [("web", "A")]
    assert addresses(response) == ["10.88.0.5"]
    assert response.answer[0].name == dns.name.from_text("WeB.")
    assert response.answer[0].name.to_text() == "WeB."  # 0x20 clients compare it exactly


def test_the_lookup_sees_the_whole_name_with_any_search_domain():
    lookup = Recorder()
    reply = answer(dns.message.make_query("web.corp.example.", "A").to_wire(), lookup)
    assert lookup.asked == [("web.corp.example", "A")]
    assert isinstance(reply, Forward)  # not in NAMES: the lookup decides about suffixes


def test_unknown_names_are_forwarded_with_the_client_query():
    query = dns.message.make_query("example.org.", "A", use_edns=0, payload=1232)
    result = answer(query.to_wire(), Recorder())
    assert isinstance(result, Forward)
    assert result.query.id == query.id
    assert result.wire == query.to_wire()
    assert result.max_size == 1232
    # root queries are never ours
    assert isinstance(answer(dns.message.make_query(".", "NS").to_wire(), Recorder()), Forward)


def test_forward_reply_keeps_the_client_id_and_failure_is_servfail():
    query = dns.message.make_query("example.org.", "A")
    forward = answer(query.to_wire(), Recorder())
    assert isinstance(forward, Forward)
    upstream_query = dns.message.from_wire(query.to_wire())
    upstream_query.id = (query.id + 1) % 65536
    upstream = dns.message.make_response(upstream_query)
    upstream.answer.append(dns.rrset.from_text("example.org.", 300, "IN", "A", "192.0.2.1"))
    reply = dns.message.from_wire(forward.reply(upstream))
    assert reply.id == query.id
    assert addresses(reply) == ["192.0.2.1"]
    failure = dns.message.from_wire(forward.failure())
    assert failure.id == query.id
    assert failure.rcode() == dns.rcode.SERVFAIL


def test_forward_reply_truncates_to_what_the_client_takes_over_udp():
    query = dns.message.make_query("big.example.org.", "A")  # no EDNS: 512 bytes
    forward = answer(query.to_wire(), Recorder())
    assert isinstance(forward, Forward)
    upstream = dns.message.make_response(query)
    ips = [f"192.0.2.{i}" for i in range(1, 101)]
    upstream.answer.append(dns.rrset.from_text_list("big.example.org.", 300, "IN", "A", ips))
    wire = forward.reply(upstream)
    assert len(wire) <= 512
    assert dns.message.from_wire(wire).flags & dns.flags.TC


def test_ids_are_preserved():
    for qid in (0, 1, 0x1234, 0xFFFF):
        query = dns.message.make_query("web.", "A")
        query.id = qid
        for tcp in (False, True):
            reply = answer(query.to_wire(), Recorder(), tcp=tcp)
            assert isinstance(reply, bytes)
            assert dns.message.from_wire(reply).id == qid


def test_garbage_gets_formerr_when_the_id_can_be_read():
    for garbage in (
        b"\x12\x34\x01",
        b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00",  # a question promised, none there
        b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x3fabc",  # a label running off the end
        dns.message.make_query("web.", "A").to_wire()[:-1],  # cut short
        b"\x12\x34" + bytes(range(256)) * 4,
    ):
        garbage = b"\x12\x34" + garbage[2:]
        reply = answer(garbage, Recorder())
        assert isinstance(reply, bytes), garbage
        header = struct.unpack("!HHHHHH", reply[:12])
        assert header[0] == 0x1234
        assert header[1] & dns.flags.QR
        assert header[1] & 0xF == dns.rcode.FORMERR
        assert dns.message.from_wire(reply).rcode() == dns.rcode.FORMERR


def test_trailing_junk_and_tsig_without_a_key_are_formerr():
    wire = dns.message.make_query("web.", "A").to_wire() + b"junk"
    reply = answer(wire, Recorder())
    assert isinstance(reply, bytes)
    assert dns.message.from_wire(reply).rcode() == dns.rcode.FORMERR
    signed = dns.message.make_query("web.", "A")
    signed.use_tsig({dns.name.from_text("k."): b"secret"}, "k.")
    reply = answer(signed.to_wire(), Recorder())
    assert isinstance(reply, bytes)
    assert dns.message.from_wire(reply).rcode() == dns.rcode.FORMERR


def test_scraps_and_responses_are_dropped():
    assert answer(b"", Recorder()) is None
    assert answer(b"\x12", Recorder()) is None
    assert answer(b"\x12\x34", Recorder()) is None
    response = dns.message.make_response(dns.message.make_query("web.", "A"))
    assert answer(response.to_wire(), Recorder()) is None
    assert answer(b"\x12\x34\x80" + b"\xff" * 20, Recorder()) is None


def test_other_opcodes_get_notimp():
    for opcode in (dns.opcode.NOTIFY, dns.opcode.UPDATE, dns.opcode.STATUS, dns.opcode.IQUERY):
        query = dns.message.make_query("web.", "A")
        query.set_opcode(opcode)
        reply = answer(query.to_wire(), Recorder())
        assert isinstance(reply, bytes)
        response = dns.message.from_wire(reply)
        assert response.rcode() == dns.rcode.NOTIMP
        assert response.opcode() == opcode
        assert response.id == query.id


def test_not_exactly_one_question_is_formerr():
    lookup = Recorder()
    query = dns.message.make_query("web.", "A")
    query.question.append(dns.rrset.RRset(dns.name.from_text("db."), 1, 1))
    empty = dns.message.Message()
    for wire in (query.to_wire(), empty.to_wire()):
        reply = answer(wire, lookup)
        assert isinstance(reply, bytes)
        assert dns.message.from_wire(reply).rcode() == dns.rcode.FORMERR
    assert lookup.asked == []


def test_other_classes_zone_transfers_and_new_edns_are_refused():
    lookup = Recorder()
    chaos = dns.message.make_query("version.bind.", "TXT", rdclass=dns.rdataclass.CH)
    axfr = dns.message.make_query("web.", "AXFR")
    for query in (chaos, axfr):
        reply = answer(query.to_wire(), lookup)
        assert isinstance(reply, bytes)
        assert dns.message.from_wire(reply).rcode() == dns.rcode.REFUSED
    edns1 = dns.message.make_query("web.", "A", use_edns=1)
    reply = answer(edns1.to_wire(), lookup)
    assert isinstance(reply, bytes)
    assert dns.message.from_wire(reply).rcode() == dns.rcode.BADVERS
    assert lookup.asked == []


def test_large_answers_truncate_over_udp_and_are_bounded():
    udp = answer(dns.message.make_query("many.", "A").to_wire(), Recorder())
    assert isinstance(udp, bytes) and len(udp) <= 512
    assert dns.message.from_wire(udp).flags & dns.flags.TC
    small = dns.message.make_query("many.", "A", use_edns=0, payload=100)  # below 512 means 512
    reply = answer(small.to_wire(), Recorder())
    assert isinstance(reply, bytes) and len(reply) <= 512
    assert dns.message.from_wire(reply).flags & dns.flags.TC
    large = dns.message.make_query("many.", "A", use_edns=0, payload=65000)
    reply = answer(large.to_wire(), Recorder())
    assert isinstance(reply, bytes) and 512 < len(reply) <= 1232  # our UDP ceiling
    assert len(addresses(dns.message.from_wire(reply))) == MAX_RECORDS
    full = ask("many.", tcp=True)
    assert not full.flags & dns.flags.TC
    assert len(addresses(full)) == MAX_RECORDS


def test_a_failing_or_lying_lookup_gives_servfail():
    def broken(qname: str, qtype: str) -> Answer | None:
        raise RuntimeError("store gone")

    def lying(qname: str, qtype: str) -> Answer | None:
        return Answer(("not-an-ip",))

    for lookup in (broken, lying):
        assert ask("web.", lookup=lookup).rcode() == dns.rcode.SERVFAIL


def test_reverse_address():
    assert reverse_address("5.0.88.10.in-addr.arpa") == "10.88.0.5"
    v6 = dns.reversename.from_address("fd00::9").to_text(omit_final_dot=True)
    assert reverse_address(v6) == "fd00::9"
    for bad in ("0.88.10.in-addr.arpa", "web", "x.0.88.10.in-addr.arpa", ""):
        assert reverse_address(bad) is None


RESOLV_CONF = """\
# Generated by NetworkManager
search corp.example example.org
; another comment style
options edns0 trust-ad ndots:2
nameserver 127.0.0.53
nameserver   2001:db8::53   # trailing comment
#nameserver 192.0.2.99
nameserver not-an-address
nameserver 10.0.0.2
nameserver 10.0.0.3
nameserver 10.0.0.4
"""


def test_upstreams_reads_the_first_three_nameservers():
    assert upstreams(RESOLV_CONF) == [("127.0.0.53", 53), ("2001:db8::53", 53), ("10.0.0.2", 53)]


def test_upstreams_details():
    assert upstreams("") == []
    assert upstreams("search example.org\noptions ndots:5\n") == []
    assert upstreams("nameserver\nnameserver 10.0.0.1\n") == [("10.0.0.1", 53)]
    assert upstreams("nameserver 10.0.0.1\nnameserver 10.0.0.1\nnameserver fe80::1%eth0\n") == [
        ("10.0.0.1", 53),
        ("fe80::1%eth0", 53),
    ]
    assert upstreams("nameserver 2001:DB8:0:0::1\r\n") == [("2001:db8::1", 53)]
    assert upstreams("nameserver 10.0.0.1#53\n") == []  # glibc would not read it either

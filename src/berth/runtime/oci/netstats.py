"""A container's network counters, per interface, as its own network namespace counts them.

/proc/PID/net/dev shows the interfaces of PID's network namespace, so nothing needs to know
which veth is whose. Loopback is left out, as docker leaves it out; a container on the host's
network has no counters of its own (docker shows none).
"""

from __future__ import annotations

import os

MAX_INTERFACES = 64  # a container may make interfaces of its own in its namespace
_RX = ("rx_bytes", "rx_packets", "rx_errors", "rx_dropped")
_TX = ("tx_bytes", "tx_packets", "tx_errors", "tx_dropped")


def parse_net_dev(text: str) -> dict[str, dict[str, int]]:
    """/proc/net/dev: two header lines, then "name: 8 receive and 8 transmit counters"."""
    out: dict[str, dict[str, int]] = {}
    for line in text.splitlines()[2:]:
        name, sep, rest = line.partition(":")
        name = name.strip()
        fields = rest.split()
        if not sep or name == "lo" or len(fields) < 16 or not all(
                f.isdigit() for f in fields[:16]):
            continue
        values = [int(f) for f in fields[:16]]
        out[name] = {**dict(zip(_RX, values[0:4], strict=True)),
                     **dict(zip(_TX, values[8:12], strict=True))}
        if len(out) >= MAX_INTERFACES:
            break
    return out


def read_networks(pid: int) -> dict[str, dict[str, int]]:
    """The counters of the network namespace PID is in; none when that is the host's or the
    process is gone."""
    try:
        if os.stat(f"/proc/{pid}/ns/net").st_ino == os.stat("/proc/self/ns/net").st_ino:
            return {}
        with open(f"/proc/{pid}/net/dev", encoding="ascii", errors="replace") as f:
            return parse_net_dev(f.read(1 << 20))
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return {}

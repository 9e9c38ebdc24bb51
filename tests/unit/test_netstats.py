"""A container's network counters read from /proc/PID/net/dev."""

from __future__ import annotations

import os

from berth.runtime.oci import netstats

NET_DEV = (  # the kernel's layout, with its column padding cut
    "Inter-|   Receive                            |  Transmit\n"
    " face |bytes packets errs drop fifo frame compressed multicast|bytes packets errs drop"
    " fifo colls carrier compressed\n"
    "    lo: 840 10 0 0 0 0 0 0 840 10 0 0 0 0 0 0\n"
    "  eth0:    1630      19    1    2    0     0   0   0      852      10    3    4 0 0 0 0\n"
    " weird: not numbers at all\n")


def test_each_interface_but_loopback_with_docker_counter_names() -> None:
    assert netstats.parse_net_dev(NET_DEV) == {"eth0": {
        "rx_bytes": 1630, "rx_packets": 19, "rx_errors": 1, "rx_dropped": 2,
        "tx_bytes": 852, "tx_packets": 10, "tx_errors": 3, "tx_dropped": 4}}


def test_interfaces_are_bounded() -> None:
    lines = "".join(f"d{i}: {' '.join(['1'] * 16)}\n" for i in range(500))
    assert len(netstats.parse_net_dev("h\nh\n" + lines)) == netstats.MAX_INTERFACES


def test_the_hosts_own_namespace_and_a_gone_process_have_none() -> None:
    assert netstats.read_networks(os.getpid()) == {}
    assert netstats.read_networks(2**22 + 1) == {}  # above pid_max's ceiling: no such process

"""Bridge networking with real namespaces, veths, bridges and nftables, seen from inside busybox
containers (wget, nslookup) and from the host: addresses, names, published ports, isolation
between projects, connect/disconnect, bad input, a kill -9 of berthd, and nothing left behind.
"""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from berth.agent.netops import table_name
from berth.client import APIError, Client
from tests.integration.daemon import Daemon, refused
from tests.integration.dockertools import docker, docker_json

pytestmark = pytest.mark.integration
HTTPD = "echo {name} > /index.html; exec httpd -f -p {port} -h /"


def serve(d: Daemon, name: str, *args: str, port: int = 8080) -> str:
    """A busybox web server answering its own name (once it answers inside)."""
    cid = docker(d, "run", "-d", "--name", name, *args, "busybox", "sh", "-c",
                 HTTPD.format(name=name, port=port)).stdout.strip()
    deadline = time.monotonic() + 10
    while docker(d, "exec", cid, "wget", "-q", "-O-", f"http://127.0.0.1:{port}/",
                 check=False).returncode != 0:
        assert time.monotonic() < deadline, f"{name} never served"
        time.sleep(0.05)
    return cid


def fetch(d: Daemon, url: str, *args: str, timeout: int = 3) -> str:
    """wget from a throwaway container ("" when it cannot reach the URL)."""
    # busybox-static's wget -T crashes on this host: the timeout applet bounds it instead,
    # under a shell (as PID 1 wget would ignore the applet's SIGTERM)
    res = docker(d, "run", "--rm", *args, "busybox", "sh", "-c",
                 f"timeout {timeout} wget -q -O- {url}; exit $?", check=False)
    return res.stdout.strip() if res.returncode == 0 else ""


def host_fetch(url: str) -> str:
    deadline = time.monotonic() + 10
    while True:
        try:
            with urllib.request.urlopen(url, timeout=3) as resp:  # noqa: S310 - loopback
                return resp.read().decode().strip()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ip_of(d: Daemon, name: str, network: str) -> str:
    nets = docker_json(d, "inspect", name)[0]["NetworkSettings"]["Networks"]
    return str(nets[network]["IPAddress"])


def host_links() -> set[str]:
    out = subprocess.run(["ip", "-br", "link"], capture_output=True, text=True).stdout
    return {line.split()[0].split("@")[0] for line in out.splitlines() if line.strip()}


def test_addresses_names_and_published_ports(daemon: Daemon) -> None:
    d = daemon
    docker(d, "network", "create", "--subnet", "10.231.7.0/24", "web")
    port = free_port()
    try:
        serve(d, "front", "--network", "web", "--network-alias", "www", "-p", f"{port}:8080")
        serve(d, "back", "--network", "web", "--ip", "10.231.7.50")
        assert ip_of(d, "back", "web") == "10.231.7.50"
        front_ip = ip_of(d, "front", "web")
        assert front_ip.startswith("10.231.7.") and front_ip != "10.231.7.50"
        # by address, by name, by alias, from a container on the same network
        assert fetch(d, "http://10.231.7.50:8080/", "--network", "web") == "back"
        assert fetch(d, "http://back:8080/", "--network", "web") == "back"
        assert fetch(d, "http://www:8080/", "--network", "web") == "front"
        # the published port from the host (localhost and the bridge's gateway)
        assert host_fetch(f"http://127.0.0.1:{port}/") == "front"
        gateway = docker_json(d, "network", "inspect", "web")[0]["IPAM"]["Config"][0][
            "Gateway"]
        assert host_fetch(f"http://{gateway}:{port}/") == "front"
        # hairpin: a container on another network reaches it through the host's address
        assert fetch(d, f"http://{gateway}:{port}/") == "front"
        # inspect and ps show the binding; resolv.conf names the network's responder
        ports = docker_json(d, "inspect", "front")[0]["NetworkSettings"]["Ports"]
        assert ports["8080/tcp"] == [{"HostIp": "0.0.0.0", "HostPort": str(port)}]
        assert f"0.0.0.0:{port}->8080/tcp" in docker(d, "ps").stdout
        resolv = docker(d, "exec", "front", "cat", "/etc/resolv.conf").stdout
        assert f"nameserver {gateway}" in resolv
        # the responder answers our names; others go to the host's resolvers (no answer)
        res = docker(d, "run", "--rm", "--network", "web", "busybox", "nslookup", "back")
        assert "Address: 10.231.7.50" in res.stdout
        res = docker(d, "run", "--rm", "--network", "web", "busybox", "nslookup",
                     "no-such-name.invalid", check=False)
        assert "can't find no-such-name.invalid" in res.stdout + res.stderr
    finally:
        docker(d, "rm", "-f", "front", "back", check=False)
        docker(d, "network", "rm", "web", check=False)


def test_ephemeral_port_udp_and_host_port_conflicts(daemon: Daemon) -> None:
    d = daemon
    cid = serve(d, "eph", "-p", "127.0.0.1::8080", "-p", "5353/udp")
    try:
        ports = docker_json(d, "inspect", cid)[0]["NetworkSettings"]["Ports"]
        [binding] = ports["8080/tcp"]
        assert binding["HostIp"] == "127.0.0.1" and int(binding["HostPort"]) >= 32768
        assert int(ports["5353/udp"][0]["HostPort"]) >= 32768
        assert host_fetch(f"http://127.0.0.1:{binding['HostPort']}/") == "eph"
        # the same host port again: refused, naming it; nothing made
        taken = binding["HostPort"]
        res = docker(d, "run", "-d", "-p", f"127.0.0.1:{taken}:80", "busybox", "true",
                     check=False)
        assert res.returncode != 0 and f"{taken}/tcp is already published" in res.stderr
        # a port something else on the host holds
        with socket.socket() as holder:
            holder.bind(("127.0.0.1", 0))
            holder.listen()
            held = holder.getsockname()[1]
            res = docker(d, "create", "-p", f"127.0.0.1:{held}:80", "busybox", "true",
                         check=False)
            assert res.returncode != 0 and "in use on the host" in res.stderr
    finally:
        docker(d, "rm", "-f", cid, check=False)
    assert "eph" not in docker(d, "ps", "-a").stdout


def test_bad_network_input(daemon: Daemon) -> None:
    d = daemon
    docker(d, "network", "create", "--subnet", "10.232.0.0/24", "one")
    try:
        res = docker(d, "network", "create", "--subnet", "10.232.0.128/25", "two",
                     check=False)
        assert res.returncode != 0 and "overlaps" in res.stderr
        res = docker(d, "run", "--rm", "--network", "one", "--ip", "10.9.9.9", "busybox",
                     "true", check=False)
        assert res.returncode != 0 and "not in network one's subnet" in res.stderr
        box = docker(d, "run", "-d", "--network", "one", "--ip", "10.232.0.9", "busybox",
                     "sleep", "60").stdout.strip()
        res = docker(d, "run", "--rm", "--network", "one", "--ip", "10.232.0.9", "busybox",
                     "true", check=False)
        assert res.returncode != 0 and "already in use" in res.stderr
        res = docker(d, "run", "--rm", "--network", "one", "--ip", "10.232.0.1", "busybox",
                     "true", check=False)
        assert res.returncode != 0 and "reserved" in res.stderr
        docker(d, "rm", "-f", box)
    finally:
        docker(d, "network", "rm", "one", check=False)


def test_connect_and_disconnect_a_running_container(daemon: Daemon) -> None:
    d = daemon
    docker(d, "network", "create", "side")
    try:
        serve(d, "joiner")
        hostname = docker(d, "exec", "joiner", "hostname").stdout.strip()
        docker(d, "network", "connect", "--alias", "j2", "side", "joiner")
        side_ip = ip_of(d, "joiner", "side")
        assert side_ip in docker(d, "exec", "joiner", "ip", "-4", "addr").stdout
        assert fetch(d, "http://j2:8080/", "--network", "side") == "joiner"
        # /etc/hosts names the new address too (as Docker's), and loses it on disconnect
        own_line = f"{side_ip}\t{hostname}"
        wait_until(lambda: own_line in etc_file(d, "joiner", "hosts"), "the hosts line")
        docker(d, "network", "disconnect", "side", "joiner")
        deadline = time.monotonic() + 10
        while side_ip in docker(d, "exec", "joiner", "ip", "-4", "addr").stdout:
            assert time.monotonic() < deadline, "the interface stayed after disconnect"
            time.sleep(0.1)
        assert fetch(d, f"http://{side_ip}:8080/", "--network", "side", timeout=1) == ""
        wait_until(lambda: own_line not in etc_file(d, "joiner", "hosts"), "no hosts line")
        assert "127.0.0.1\tlocalhost" in etc_file(d, "joiner", "hosts")
    finally:
        docker(d, "rm", "-f", "joiner", check=False)
        docker(d, "network", "rm", "side", check=False)


def test_connect_and_disconnect_answer_once_the_host_has_followed(daemon: Daemon) -> None:
    """As docker's: when connect returns the interface is up in the container (its address
    in the kernel's table), and when disconnect returns it is gone; no polling needed."""
    d = daemon
    d.client.networks.create("at-once")
    try:
        d.cli("run", "-d", "--name", "at-once-box", "busybox", "sleep", "120")  # no network
        pid = d.inspect("at-once-box")["state"]["pid"]
        fib = Path(f"/proc/{pid}/net/fib_trie")
        for _ in range(3):
            d.client.networks.connect("at-once", "at-once-box")
            [member] = d.client.networks.get("at-once")["containers"]
            address = member["address"].split("/")[0]
            assert address in fib.read_text()  # read at once: within the agent's coalescing
            d.client.networks.disconnect("at-once", "at-once-box")
            assert address not in fib.read_text()
    finally:
        d.cli("rm", "-f", "at-once-box", check=False)
        d.client.networks.remove("at-once")


def test_a_container_without_a_network_gets_its_dns_when_connected(daemon: Daemon) -> None:
    d = daemon
    docker(d, "network", "create", "late")
    try:
        serve(d, "late-server", "--network", "late")
        d.cli("run", "-d", "--name", "late-client", "busybox", "sleep", "120")  # none
        d.cli("run", "-d", "--name", "late-edited", "busybox", "sh", "-c",
              "echo 'nameserver 9.9.9.9' > /etc/resolv.conf; exec sleep 120")
        gateway = json.loads(docker(d, "network", "inspect", "late").stdout)[0][
            "IPAM"]["Config"][0]["Gateway"]
        wait_until(lambda: "9.9.9.9" in etc_file(d, "late-edited", "resolv.conf"), "the edit")
        for name in ("late-client", "late-edited"):
            docker(d, "network", "connect", "late", name)
        wait_until(lambda: f"nameserver {gateway}" in etc_file(d, "late-client", "resolv.conf"),
                   "the network's nameserver")
        got = docker(d, "exec", "late-client", "sh", "-c",
                     "timeout 3 wget -q -O- http://late-server:8080/", check=False)
        assert got.stdout.strip() == "late-server", got
        # resolv.conf edited inside the container is the container's: left as it is
        wait_until(lambda: ip_of(d, "late-edited", "late") in etc_file(d, "late-edited",
                                                                        "hosts"), "hosts")
        assert etc_file(d, "late-edited", "resolv.conf") == "nameserver 9.9.9.9\n"
    finally:
        for name in ("late-server", "late-client", "late-edited"):
            docker(d, "rm", "-f", name, check=False)
        docker(d, "network", "rm", "late", check=False)


def etc_file(d: Daemon, name: str, file: str) -> str:
    return docker(d, "exec", name, "cat", f"/etc/{file}").stdout


def wait_until(check: Any, what: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def test_projects_cannot_reach_each_other(daemon: Daemon) -> None:
    d = daemon
    d.client.projects.create("net-other")
    other = Client(d.host, project="net-other")
    other.images.build_base("busybox")
    serve(d, "mine")
    mine_ip = ip_of(d, "mine", "bridge")
    theirs = other.containers.create({"image": "busybox", "name": "theirs",
                                      "networks": {"bridge": []},
                                      "command": ["sh", "-c", HTTPD.format(name="theirs",
                                                                           port=8080)]})
    try:
        other.containers.start(theirs["id"])
        pid = other.containers.get(theirs["id"])["state"]["pid"]
        their_ip = json.loads(subprocess.run(
            ["nsenter", f"--net=/proc/{pid}/ns/net", "ip", "-j", "-4", "addr", "show", "eth0"],
            capture_output=True, text=True, check=True).stdout)[0]["addr_info"][0]["local"]
        # the two default bridges are different subnets; neither reaches the other
        assert their_ip.rpartition(".")[0] != mine_ip.rpartition(".")[0]
        assert fetch(d, f"http://{their_ip}:8080/", timeout=1) == ""
        # and our names are not theirs: "theirs" does not resolve on our network
        res = docker(d, "run", "--rm", "busybox", "nslookup", "theirs", check=False)
        assert their_ip not in res.stdout
        assert fetch(d, f"http://{mine_ip}:8080/") == "mine"
    finally:
        docker(d, "rm", "-f", "mine", check=False)
        with contextlib.suppress(APIError):
            other.containers.remove(theirs["id"], force=True)


def nft_rules(table: str) -> str:
    return subprocess.run(["nft", "list", "table", "ip", table], capture_output=True,
                          text=True).stdout


def test_removing_everything_leaves_nothing(own_daemon: Daemon) -> None:
    d = own_daemon
    before = host_links()
    docker(d, "network", "create", "gone")
    cid = serve(d, "temp", "--network", "gone", "-p", f"{free_port()}:8080")
    # a pod with a member on the same network, and a service over both
    api = d.client.transport
    api.call("POST", "/v1/pods", {"start": True}, {"name": "gonepod", "labels": {"x": "y"},
                                                   "networks": {"gone": []},
                                                   "ports": [{"container_port": 81}]})
    api.call("POST", "/v1/containers", {"start": True, "wait": True},
             {"image": "busybox", "pod": "gonepod", "command": ["sleep", "300"]})
    vip = api.call("POST", "/v1/services", None,
                   {"name": "gonesvc", "selector": "x=y", "ports": [{"port": 80}]})["vip"]
    table = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True).stdout
    made = host_links() - before
    assert len([n for n in made if n.startswith("bth")]) == 1
    assert len([n for n in made if n.startswith("vb")]) == 2  # the container's, the pod's
    ours = table_name(d.run_root)
    d.wait_for(lambda: vip in nft_rules(ours), what="the service's rule")
    api.call("DELETE", "/v1/services/gonesvc")
    api.call("DELETE", "/v1/pods/gonepod", {"force": True})
    docker(d, "rm", "-f", cid)
    docker(d, "network", "rm", "gone")
    deadline = time.monotonic() + 10
    while host_links() - before:
        assert time.monotonic() < deadline, f"left behind: {host_links() - before}"
        time.sleep(0.1)
    # no service, DNAT or network rule is left in the daemon's table
    d.wait_for(lambda: not any(w in nft_rules(ours) for w in (vip, "dnat to", "masquerade")),
               what=f"an empty table, not {nft_rules(ours)}")
    assert not any(line.split()[4].startswith(str(d.run_root))
                   for line in Path("/proc/self/mountinfo").read_text().splitlines())
    assert f"ip {ours}" in table  # the daemon's table existed while the port was published


def test_kill_9_keeps_the_network_and_berthd_picks_it_up(own_daemon: Daemon) -> None:
    d = own_daemon
    port = free_port()
    serve(d, "survivor", "-p", f"{port}:8080")
    serve(d, "peer")
    assert fetch(d, "http://survivor:8080/") == "survivor"
    assert d.proc is not None
    d.proc.kill()
    d.proc.wait()
    # the daemon is gone: the container still answers on its published port
    assert host_fetch(f"http://127.0.0.1:{port}/") == "survivor"
    d.start()
    assert host_fetch(f"http://127.0.0.1:{port}/") == "survivor"
    deadline = time.monotonic() + 15
    while fetch(d, "http://survivor:8080/") != "survivor":  # DNS is served again
        assert time.monotonic() < deadline, "names did not resolve after the restart"
        time.sleep(0.2)
    docker(d, "rm", "-f", "survivor", "peer")


def test_berth_cli_networking(daemon: Daemon) -> None:
    d = daemon
    port = free_port()
    d.cli("run", "-d", "--name", "native", "--network", "bridge", "--network-alias", "nat",
          "-p", f"127.0.0.1:{port}:8080", "busybox", "sh", "-c",
          HTTPD.format(name="native", port=8080))
    try:
        assert host_fetch(f"http://127.0.0.1:{port}/") == "native"
        assert fetch(d, "http://nat:8080/") == "native"
        assert d.cli("port", "native").stdout == f"8080/tcp -> 127.0.0.1:{port}\n"
        assert d.cli("port", "native", "8080/tcp").stdout == f"127.0.0.1:{port}\n"
        refused(d.cli("port", "native", "8080/udp", check=False), "8080/udp")
        bad = d.cli("run", "--rm", "-p", "80", "busybox", "true", check=False)
        assert bad.returncode == 125 and "published ports need a network" in bad.stderr
        bad = d.cli("run", "--rm", "--network", "bridge", "-p", "1:2:3:4", "busybox", "true",
                    check=False)
        assert bad.returncode == 125 and "invalid -p" in bad.stderr
    finally:
        d.cli("rm", "-f", "native", check=False)


def test_an_internal_network_has_no_way_out(daemon: Daemon) -> None:
    """Peers on an internal network reach each other and its DNS, and nothing else: not the
    host, not another network; a container on an ordinary bridge reaches the host."""
    d = daemon
    docker(d, "network", "create", "--internal", "vault")
    with socket.socket() as listener:
        listener.bind(("0.0.0.0", 0))  # noqa: S104 - the host side the containers try
        listener.listen(8)
        port = listener.getsockname()[1]

        def answer() -> None:
            with contextlib.suppress(OSError):
                while True:
                    conn, _ = listener.accept()
                    with conn:
                        conn.sendall(b"host\n")

        import threading
        threading.Thread(target=answer, daemon=True).start()
        try:
            serve(d, "safe", "--network", "vault")
            serve(d, "unsafe")  # on the project's bridge, which then has its subnet
            gateway = docker_json(d, "network", "inspect", "vault")[0]["IPAM"]["Config"][0][
                "Gateway"]
            bridge_gw = docker_json(d, "network", "inspect", "bridge")[0]["IPAM"]["Config"][0][
                "Gateway"]
            assert fetch(d, "http://safe:8080/", "--network", "vault") == "safe"
            ask = f"timeout 2 nc {{ip}} {port} </dev/null; exit $?"
            for ip in (gateway, bridge_gw, "127.0.0.1"):
                res = docker(d, "run", "--rm", "--network", "vault", "busybox", "sh", "-c",
                             ask.format(ip=ip), check=False)
                assert "host" not in res.stdout, (ip, res.stdout)
            res = docker(d, "run", "--rm", "busybox", "sh", "-c", ask.format(ip=bridge_gw),
                         check=False)
            assert res.stdout.strip() == "host"
        finally:
            docker(d, "rm", "-f", "safe", "unsafe", check=False)
            docker(d, "network", "rm", "vault", check=False)


def test_a_container_on_two_networks_resolves_the_names_of_both(daemon: Daemon) -> None:
    d = daemon
    docker(d, "network", "create", "front")
    docker(d, "network", "create", "back")
    try:
        serve(d, "db", "--network", "back")
        serve(d, "both", "--network", "front")
        docker(d, "network", "connect", "back", "both")
        db_ip = ip_of(d, "db", "back")
        # asked through its first network's responder, it still finds the back network's db
        res = docker(d, "exec", "both", "nslookup", "db", check=False)
        assert f"Address: {db_ip}" in res.stdout, res.stdout
        assert docker(d, "exec", "both", "sh", "-c",
                      "timeout 3 wget -q -O- http://db:8080/; exit $?").stdout.strip() == "db"
        # one on the front network only does not learn the back network's names
        res = docker(d, "run", "--rm", "--network", "front", "busybox", "nslookup", "db",
                     check=False)
        assert db_ip not in res.stdout
    finally:
        docker(d, "rm", "-f", "db", "both", check=False)
        docker(d, "network", "rm", "front", "back", check=False)


def test_network_container_mode_shares_another_containers_network(daemon: Daemon) -> None:
    """docker run --network container:NAME: the same interfaces, localhost and hostname."""
    d = daemon
    serve(d, "host-side", "-p", f"{free_port()}:8080")
    try:
        address = ip_of(d, "host-side", "bridge")
        target = docker_json(d, "inspect", "host-side")[0]
        res = docker(d, "run", "--rm", "--network", "container:host-side", "busybox", "sh",
                     "-c", "wget -q -O- http://127.0.0.1:8080/; hostname; ip -4 addr")
        lines = res.stdout.splitlines()
        assert lines[0] == "host-side"  # its server, on the shared localhost
        assert lines[1] == target["Config"]["Hostname"]
        assert f"inet {address}/" in res.stdout
        assert d.cli("run", "--rm", "--network", "container:host-side", "busybox", "wget",
                     "-q", "-O-", "http://127.0.0.1:8080/").stdout.strip() == "host-side"
        sidecar = docker(d, "create", "--network", "container:host-side", "busybox", "sleep",
                         "60").stdout.strip()
        mode = docker_json(d, "inspect", sidecar)[0]["HostConfig"]["NetworkMode"]
        assert mode == f"container:{target['Id']}"
        # it must be running when the sharer starts
        docker(d, "stop", "-t", "1", "host-side")
        res = docker(d, "start", sidecar, check=False)
        assert res.returncode != 0 and "not running" in res.stderr
        res = docker(d, "run", "--rm", "--network", "container:nosuch", "busybox", "true",
                     check=False)
        assert res.returncode != 0 and "nosuch" in res.stderr
        docker(d, "rm", "-f", sidecar)
    finally:
        docker(d, "rm", "-f", "host-side", check=False)


def test_own_dns_servers_get_the_names_the_network_does_not_know(daemon: Daemon) -> None:
    """--dns on a network: names there still resolve (its DNS answers them), and the rest
    go to the container's own servers, not the host's."""
    from berth.network.dns import Answer
    from berth.network.dnsserver import DnsResponder
    from tests.integration.test_network_dns import Loop

    d = daemon
    loop = Loop()
    upstream = DnsResponder(lambda name, _t: Answer(("192.0.2.77",))
                            if name == "far.example" else None)
    try:
        try:
            loop.run(upstream.start([("127.0.83.9", 53)]))
        except OSError as e:
            pytest.skip(f"cannot listen on 127.0.83.9:53 for a stand-in DNS server: {e}")
        serve(d, "dns-near")
        d.cli("run", "-d", "--name", "dns-own", "--network", "bridge", "--dns", "127.0.83.9",
              "busybox", "sleep", "120")
        d.cli("run", "-d", "--name", "dns-plain", "--network", "bridge", "busybox", "sleep",
              "120")

        def lookup(box: str, name: str) -> str:
            return d.cli("exec", box, "sh", "-c", f"timeout 5 nslookup {name} || true").stdout

        wait_until(lambda: "192.0.2.77" in lookup("dns-own", "far.example"), "the forward")
        assert ip_of(d, "dns-near", "bridge") in lookup("dns-own", "dns-near")
        assert "192.0.2.77" not in lookup("dns-plain", "far.example")  # the host's resolvers
        # a pod's servers serve its members (which cannot have their own)
        d.cli("pod", "create", "--dns", "127.0.83.9", "--start", "dns-pod")
        d.cli("run", "-d", "--name", "dns-member", "--pod", "dns-pod", "busybox", "sleep", "120")
        wait_until(lambda: "192.0.2.77" in lookup("dns-member", "far.example"), "the pod's")
    finally:
        d.cli("pod", "rm", "-f", "dns-pod", check=False)
        for name in ("dns-near", "dns-own", "dns-plain"):
            docker(d, "rm", "-f", name, check=False)
        loop.run(upstream.stop())
        loop.close()

"""docker's --format on inspect and ps, and `stats` of every running container."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.integration.daemon import Daemon, refused

pytestmark = pytest.mark.integration


def test_inspect_format(daemon: Daemon) -> None:
    d = daemon
    d.cli("run", "-d", "--name", "fmt-web", "-l", "app=shop", "busybox", "sleep", "300")
    try:
        pid = d.inspect("fmt-web")["state"]["pid"]
        assert d.cli("inspect", "-f", "{{.State.Pid}}", "fmt-web").stdout == f"{pid}\n"
        assert d.cli("inspect", "--format", "{{json .Labels}}", "fmt-web").stdout == \
            '{"app":"shop"}\n'
        # Each object its line; a missing one is reported and fails the command.
        res = d.cli("inspect", "-f", "{{.Name}} {{.RestartCount}}", "fmt-web", "nosuch",
                    check=False)
        assert res.returncode == 1 and res.stdout == "fmt-web 0\n"
        assert "nosuch" in res.stderr
        refused(d.cli("inspect", "-f", "{{.Name", "fmt-web", check=False), "unclosed action")
        refused(d.cli("inspect", "-f", "{{nosuch .Name}}", "fmt-web", check=False),
                "'nosuch' is not defined")
        image = json.loads(d.cli("image", "inspect", "busybox").stdout)
        assert d.cli("image", "inspect", "-f", "{{.Id}}", "busybox").stdout == \
            f"{image['id']}\n"
        d.cli("volume", "create", "fmt-vol")
        assert d.cli("volume", "inspect", "-f", "{{.Name}}", "fmt-vol").stdout == "fmt-vol\n"
        d.cli("volume", "rm", "fmt-vol")
    finally:
        d.cli("rm", "-f", "fmt-web")


def test_ps_format_and_ports(daemon: Daemon) -> None:
    d = daemon
    d.cli("run", "-d", "--name", "fmt-ps", "--network", "bridge", "-p", "127.0.0.1::80",
          "-l", "tier=front", "busybox", "sleep", "300")
    try:
        only = ["--filter", "name=fmt-ps"]
        out = d.cli("ps", *only, "--format", "{{.Names}} {{.State}} {{.Labels}}").stdout
        assert out == "fmt-ps running tier=front\n"
        port = d.inspect("fmt-ps")["ports"][0]["host_port"]
        lines = d.cli("ps", *only, "--format", "table {{.ID}}\t{{.Names}}\t{{.Ports}}"
                      ).stdout.splitlines()
        assert lines[0].split() == ["CONTAINER", "ID", "NAMES", "PORTS"]
        assert lines[1].split()[1:] == ["fmt-ps", f"127.0.0.1:{port}->80/tcp"]
        # The default table shows the published ports too, as docker's does.
        assert f"127.0.0.1:{port}->80/tcp" in d.cli("ps", *only).stdout
    finally:
        d.cli("rm", "-f", "fmt-ps")


PING_GATEWAY = "ping -c 3 -W 1 $(ip route | awk '/default/ {print $3}'); sleep 300"


def test_stats_without_names_shows_every_running_container(daemon: Daemon) -> None:
    d = daemon
    d.cli("run", "-d", "--name", "st-up", "busybox", "sleep", "300")
    d.cli("create", "--name", "st-down", "busybox", "true")
    d.cli("run", "-d", "--name", "st-net", "--network", "bridge", "busybox", "sh", "-c",
          PING_GATEWAY)
    d.cli("run", "-d", "--name", "st-host", "--network", "host", "busybox", "sleep", "300")
    try:
        d.wait_for(lambda: d.client.containers.stats("st-net")["networks"].get(
            "eth0", {}).get("tx_packets", 0) >= 3, what="the pings counted")
        rows = {row["name"]: row for row in json.loads(
            d.cli("stats", "--no-stream", "-o", "json").stdout)}
        assert "st-up" in rows and "st-down" not in rows
        assert rows["st-net"]["id"] == d.inspect("st-net")["id"]
        assert rows["st-net"]["net_rx_bytes"] > 0 and rows["st-net"]["net_tx_bytes"] > 0
        assert rows["st-up"]["net_tx_bytes"] == 0  # loopback only: not counted, as docker
        assert d.client.containers.stats("st-host")["networks"] == {}  # the host's own
        table = d.cli("stats", "--no-stream", "st-net").stdout.splitlines()
        assert re.split(r"\s{2,}", table[0].strip()) == [
            "CONTAINER ID", "NAME", "CPU %", "MEM USAGE / LIMIT", "MEM %", "NET I/O",
            "BLOCK I/O", "PIDS"]
        line = d.cli("stats", "--no-stream", "--format", "{{.ID}} {{.NetIO}}", "st-net").stdout
        short, rx, slash, tx = line.split()
        assert short == rows["st-net"]["id"][:12] and slash == "/" and rx.endswith("B")
    finally:
        d.cli("rm", "-f", "st-up", "st-down", "st-net", "st-host")


def test_system_df(daemon: Daemon) -> None:
    d = daemon
    d.cli("run", "-d", "--name", "df-up", "-v", "df-vol:/data", "busybox", "sh", "-c",
          "head -c 100000 /dev/zero > /data/z; head -c 60000 /dev/zero > /f; sleep 300")
    d.cli("run", "--name", "df-down", "busybox", "sh", "-c", "head -c 30000 /dev/zero > /g")
    try:
        d.wait_for(lambda: d.cli("exec", "df-up", "ls", "/f", check=False).returncode == 0,
                   what="the files written")
        use = json.loads(d.cli("system", "df", "-v", "-o", "json").stdout)
        sizes = {c["name"]: c["size"] for c in use["containers"]}
        assert sizes["df-up"] >= 60000 and sizes["df-down"] >= 30000
        vol = next(v for v in use["volumes"] if v["name"] == "df-vol")
        assert vol["size"] >= 100000 and vol["containers"] == 1
        summary = use["summary"]
        # The stopped container's layer is what removing it would free; the running one's not.
        assert summary["containers"]["reclaimable"] >= 30000
        assert summary["containers"]["reclaimable"] < summary["containers"]["size"]
        assert summary["images"]["active"] >= 1
        table = d.cli("system", "df").stdout.splitlines()
        assert [line.split()[0] for line in table] == ["TYPE", "Images", "Containers", "Local",
                                                      "Build"]
        assert table[-1].split()[:3] == ["Build", "Cache", str(len(use["build_cache"]))]
    finally:
        d.cli("rm", "-f", "-v", "df-up", "df-down")
        d.cli("volume", "rm", "df-vol", check=False)


def test_ps_last_latest_and_no_trunc(daemon: Daemon) -> None:
    d = daemon
    d.cli("create", "--name", "ps-old", "busybox", "echo", "a long command line here")
    d.cli("run", "-d", "--name", "ps-new", "busybox", "sleep", "300")
    try:
        box = d.inspect("ps-new")
        assert d.cli("ps", "-l", "-q").stdout.split() == [box["id"][:12]]
        # -n looks at every state, newest first
        names = d.cli("ps", "-n", "2", "--format", "{{.Names}}").stdout.split()
        assert names == ["ps-new", "ps-old"]
        assert d.cli("ps", "-q", "--no-trunc", "--filter", "name=ps-new").stdout.split() == \
            [box["id"]]
        full = d.cli("ps", "-a", "--no-trunc", "--filter", "name=ps-old").stdout
        assert '"echo a long command line here"' in full
        short = d.cli("ps", "-a", "--filter", "name=ps-old").stdout
        assert "a long command line here" not in short
        as_json = json.loads(d.cli("ps", "--format", "json", "--filter", "name=ps-new").stdout)
        assert [c["name"] for c in as_json] == ["ps-new"]
    finally:
        d.cli("rm", "-f", "ps-old", "ps-new")


def test_ps_filters_exited_before_since_network_volume(daemon: Daemon, tmp_path: Path) -> None:
    """docker ps's other filters, on the native API (the Docker API's ps uses the same)."""
    d = daemon
    names = ["pf-zero", "pf-three", "pf-host", "pf-vol"]
    d.cli("run", "--name", "pf-zero", "busybox", "true")
    d.cli("run", "--name", "pf-three", "busybox", "sh", "-c", "exit 3", check=False)
    d.cli("run", "-d", "--name", "pf-host", "--network", "host", "busybox", "sleep", "300")
    d.cli("run", "-d", "--name", "pf-vol", "-v", "pf-data:/data", "-v", f"{tmp_path}:/in:ro",
          "busybox", "sleep", "300")

    def ps(*filters: str) -> list[str]:
        line = ["ps", "-a", "--format", "{{.Names}}"]
        for f in filters:
            line += ["--filter", f]
        return [n for n in d.cli(*line).stdout.split() if n.startswith("pf-")]

    try:
        assert ps("exited=3") == ["pf-three"]
        assert sorted(ps("exited=0", "exited=3")) == ["pf-three", "pf-zero"]
        assert ps("since=pf-three") == ["pf-vol", "pf-host"]
        assert ps("before=pf-three") == ["pf-zero"]
        assert ps("since=pf-zero", "before=pf-host") == ["pf-three"]
        assert ps("network=host") == ["pf-host"]
        assert "pf-host" not in ps("network=none") and "pf-zero" in ps("network=none")
        assert ps("volume=pf-data") == ["pf-vol"] and ps("volume=/in") == ["pf-vol"]
        assert ps("volume=/data", "status=running") == ["pf-vol"]
        refused(d.cli("ps", "--filter", "exited=x", check=False), "exited", "exit codes")
        refused(d.cli("ps", "--filter", "since=pf-nosuch", check=False), "pf-nosuch")
        refused(d.cli("ps", "--filter", "bogus=1", check=False), "bogus", "exited", "volume")
    finally:
        d.cli("rm", "-f", "-v", *names)


def test_listings_take_dockers_format(daemon: Daemon) -> None:
    """images, volume ls, network ls, stats, history and pod ls take --format as docker's
    (docker's field names, "table" with a header, \\t as a tab)."""
    d = daemon
    d.cli("volume", "create", "lf-vol", "--label", "team=a")
    d.cli("run", "-d", "--name", "lf-box", "busybox", "sleep", "300")
    try:
        images = d.cli("images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}").stdout
        busybox_id = d.client.images.get("busybox")["id"][7:19]
        assert f"busybox:latest {busybox_id}\n" in images
        table = d.cli("images", "--format", r"table {{.Repository}}\t{{.Size}}").stdout
        assert table.splitlines()[0].split() == ["REPOSITORY", "SIZE"]
        assert d.cli("volume", "ls", "--format", "{{.Name}} {{.Driver}} {{.Labels}}"
                     ).stdout.splitlines().count("lf-vol local team=a") == 1
        networks = d.cli("network", "ls", "--format", "{{.Name}}/{{.Driver}}").stdout.split()
        assert "host/host" in networks and "none/null" in networks
        stats = d.cli("stats", "--no-stream", "--format", "{{.Name}} {{.PIDs}}",
                      "lf-box").stdout
        assert stats == "lf-box 1\n"
        history = d.cli("history", "--format", "{{.ID}}|{{.Size}}", "busybox").stdout
        assert history.startswith(busybox_id + "|")
        assert d.cli("pod", "ls", "--format", "json").stdout.strip().startswith("[")
        refused(d.cli("images", "--format", "{{.Nope", check=False), "--format")
    finally:
        d.cli("rm", "-f", "lf-box")
        d.cli("volume", "rm", "lf-vol")


SIZE = re.compile(r"^(\S+) \(virtual (\S+)\)$")


def test_ps_and_inspect_show_what_a_container_takes_on_disk(daemon: Daemon) -> None:
    d = daemon
    d.cli("run", "--name", "fmt-size", "busybox", "sh", "-c", "head -c 3000000 /dev/zero > /big")
    try:
        shown = json.loads(d.cli("inspect", "-s", "fmt-size").stdout)
        image = json.loads(d.cli("image", "inspect", "busybox").stdout)
        assert 3_000_000 <= shown["size_rw"] < 3_200_000  # blocks, as du counts them
        assert shown["size_root_fs"] == shown["size_rw"] + image["size"]
        assert "size_rw" not in d.inspect("fmt-size")  # walked only when asked for
        only = ["-a", "--filter", "name=fmt-size"]
        header, row = d.cli("ps", "-s", *only).stdout.splitlines()
        assert header.split()[-1] == "SIZE"
        assert re.search(r"3(\.\d+)?MB \(virtual \d", row), row
        assert "SIZE" not in d.cli("ps", *only).stdout
        # A template that shows the size asks for it, as docker's.
        size = d.cli("ps", *only, "--format", "{{.Size}}").stdout.strip()
        assert SIZE.match(size) and size.startswith("3"), size
    finally:
        d.cli("rm", "-f", "fmt-size")


def test_inspect_finds_an_object_of_any_kind(daemon: Daemon) -> None:
    d = daemon
    d.cli("volume", "create", "fmt-any")
    d.cli("create", "--name", "fmt-any", "busybox", "true")
    try:
        image_id = json.loads(d.cli("image", "inspect", "busybox").stdout)["id"]
        assert d.cli("inspect", "-f", "{{.id}}", "busybox").stdout == f"{image_id}\n"
        assert d.cli("inspect", "-f", "{{.name}} {{.driver}}", "bridge").stdout == \
            "bridge bridge\n"
        # A container and a volume of one name: the container, unless --type says otherwise.
        assert d.cli("inspect", "-f", "{{.image}}", "fmt-any").stdout == "busybox\n"
        assert d.cli("inspect", "--type", "volume", "-f", "{{.name}} {{.driver}}",
                     "fmt-any").stdout == "fmt-any local\n"
        # One of each kind at once, in the order asked.
        both = json.loads(d.cli("inspect", "busybox", "bridge").stdout)
        assert [both[0]["id"], both[1]["name"]] == [image_id, "bridge"]
        res = d.cli("inspect", "fmt-any", "no-such-thing", "Not:A:Ref", check=False)
        assert res.returncode == 1 and "Traceback" not in res.stderr
        assert res.stderr.splitlines() == ["berth: no such object: no-such-thing",
                                           "berth: no such object: Not:A:Ref"]
        assert [o["name"] for o in json.loads(res.stdout)] == ["fmt-any"]
        res = d.cli("inspect", "--type", "image", "fmt-any", check=False)
        assert res.returncode == 1 and "fmt-any" in res.stderr and res.stdout == "[]\n"
        refused(d.cli("inspect", "--type", "plugin", "x", check=False), "--type", "plugin")
    finally:
        d.cli("rm", "-f", "fmt-any")
        d.cli("volume", "rm", "fmt-any")

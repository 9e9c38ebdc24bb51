"""`berth pod`, `berth service`, `berth network` and `run --pod`: their arguments as API
request fields (pure logic: no daemon)."""

from __future__ import annotations

import pytest

from berth.cli import convert
from berth.cli.completion import tables
from berth.cli.parser import build
from berth.cli.pod_commands import POD_COLUMNS, service_ports

LINES = [
    ["pod", "create", "p1", "-l", "a=b", "--network", "n1:x,y", "--ip", "n1=10.0.0.2", "-p",
     "8080:80", "--share", "ipc,pid", "--start"],
    ["pod", "ls", "--format", "json", "-q", "--selector", "app=web"],
    ["pod", "stop", "-t", "3", "a", "b"], ["pod", "rm", "-f", "a"], ["pod", "inspect", "a"],
    ["service", "create", "web", "--selector", "app=web", "-p", "80:8080", "-p", "53/udp"],
    ["service", "ls", "-q"], ["service", "rm", "web"],
    ["network", "create", "n1", "--subnet", "10.9.0.0/24", "-o", "mtu=1400", "--internal"],
    ["-o", "json", "network", "create", "n1"], ["network", "ls", "-f", "name=n"],
    ["network", "connect", "--alias", "a", "--ip", "10.9.0.5", "n1", "c1"],
    ["network", "disconnect", "n1", "c1"], ["network", "prune", "-f", "--filter", "label=x"],
    ["run", "--pod", "p1", "busybox", "true"], ["create", "--pod", "p1", "busybox"],
]


def args(*argv: str) -> object:
    return build(list(argv)).parse_args(list(argv))


@pytest.mark.parametrize("line", LINES, ids=lambda line: " ".join(line))
def test_lazy_parser_equals_full_parser(line: list[str]) -> None:
    assert vars(build(line).parse_args(line)) == vars(build().parse_args(line))


def test_pod_create_spec() -> None:
    spec = convert.pod_spec(args("pod", "create", "p1", "-l", "app=web", "--hostname", "h",
                                 "--network", "n1:x,y", "--network", "n2", "--ip",
                                 "n2=10.0.0.2", "-p", "127.0.0.1:8080:80/udp", "--share",
                                 "pid", "--share", "ipc", "--dns", "10.0.0.53",
                                 "--dns-search", "corp", "--dns-option", "ndots:2", "--start"))
    assert spec == {
        "labels": {"app": "web"}, "hostname": "h", "networks": {"n1": ["x", "y"], "n2": []},
        "ip_addresses": {"n2": "10.0.0.2"},
        "ports": [{"container_port": 80, "proto": "udp", "host_ip": "127.0.0.1",
                   "host_port": 8080}],
        "share": ["ipc", "pid"], "dns": ["10.0.0.53"], "dns_search": ["corp"],
        "dns_options": ["ndots:2"], "start": True}


def test_pod_create_defaults_are_the_apis() -> None:
    spec = convert.pod_spec(args("pod", "create", "p1"))
    # None: the SDK leaves the field out, so the API's defaults apply (bridge, share ipc)
    assert spec["networks"] is None and spec["share"] is None and spec["ports"] is None
    assert spec["dns"] is None
    assert spec["start"] is False


def test_pod_bare_ip_goes_to_its_one_network() -> None:
    assert convert.pod_addresses(["10.0.0.9"], {"n1": []}) == {"n1": "10.0.0.9"}
    assert convert.pod_addresses(["10.0.0.9"], {}) == {"bridge": "10.0.0.9"}
    with pytest.raises(convert.UsageError, match="NET=IP"):
        convert.pod_addresses(["10.0.0.9"], {"a": [], "b": []})
    with pytest.raises(convert.UsageError, match="two addresses"):
        convert.pod_addresses(["a=10.0.0.1", "a=10.0.0.2"], {"a": []})
    with pytest.raises(convert.UsageError):
        convert.pod_addresses(["a="], {"a": []})


def test_pod_networks_refuses() -> None:
    with pytest.raises(convert.UsageError, match="twice"):
        convert.pod_networks(["n1", "n1:x"])
    with pytest.raises(convert.UsageError, match="NET"):
        convert.pod_networks([":x"])


@pytest.mark.parametrize(("items", "want"), [
    (None, None), (["ipc,pid"], ["ipc", "pid"]), (["pid"], ["pid"]), (["none"], []),
    ([""], [])])
def test_share(items: list[str] | None, want: list[str] | None) -> None:
    assert convert.parse_share(items) == want


def test_run_pod() -> None:
    spec = convert.container_spec(args("run", "--pod", "p1", "busybox", "true"))
    assert spec["pod"] == "p1" and spec["network"] == "none" and "networks" not in spec
    assert "pod" not in convert.container_spec(args("run", "busybox"))


@pytest.mark.parametrize("flags", [["-p", "80"], ["--network", "n1"], ["-h", "x"], ["-P"],
                                   ["--ip", "10.0.0.2"], ["--network-alias", "a"]])
def test_run_pod_refuses_network_flags(flags: list[str]) -> None:
    with pytest.raises(convert.UsageError, match="--pod"):
        convert.container_spec(args("run", "--pod", "p1", *flags, "busybox"))


@pytest.mark.parametrize(("text", "want"), [
    ("80", (80, 80, "tcp")), ("80:8080", (80, 8080, "tcp")), ("53/udp", (53, 53, "udp")),
    ("443:8443/tcp", (443, 8443, "tcp"))])
def test_service_port(text: str, want: tuple[int, int, str]) -> None:
    p = convert.parse_service_port(text)
    assert (p["port"], p["target_port"], p["proto"]) == want


@pytest.mark.parametrize("text", ["", "x", "80:", ":80", "80/sctp", "80:x", "1:2:3"])
def test_bad_service_port(text: str) -> None:
    with pytest.raises(convert.UsageError, match="PORT"):
        convert.parse_service_port(text)


def test_service_create_needs_selector_and_port(capsys: pytest.CaptureFixture[str]) -> None:
    for line in (["service", "create", "web", "-p", "80"],
                 ["service", "create", "web", "--selector", "app=web"]):
        with pytest.raises(SystemExit) as exc:
            args(*line)
        assert exc.value.code == 125
    assert capsys.readouterr().err.count("\n") == 2  # one line each


def test_service_ports_column() -> None:
    svc = {"ports": [{"port": 80, "target_port": 8080, "proto": "tcp"},
                     {"port": 53, "target_port": 53, "proto": "udp"}]}
    assert service_ports(svc) == "80->8080/tcp, 53/udp"


def test_pod_columns() -> None:
    pod = {"id": "a" * 64, "name": "p1", "status": "Running", "created": None,
           "networks": {"bridge": {"address": "10.88.0.2"}},
           "containers": [{"infra": True}, {"infra": False}]}
    row = {title: get(pod) for title, get in POD_COLUMNS}
    assert row["ADDRESS"] == "10.88.0.2" and row["CONTAINERS"] == 1
    assert row["POD ID"] == "a" * 12


def test_network_create_spec() -> None:
    spec = convert.network_spec(args("network", "create", "n1", "--subnet", "10.9.0.0/24",
                                     "--gateway", "10.9.0.254", "--ip-range", "10.9.0.128/25",
                                     "--internal", "-l", "a=b", "-o", "mtu=1400", "-o", "x=y"))
    assert spec == {"driver": "bridge", "labels": {"a": "b"},
                    "options": {convert.MTU_OPTION: "1400", "x": "y"}, "internal": True,
                    "subnet": "10.9.0.0/24", "gateway": "10.9.0.254",
                    "ip_range": "10.9.0.128/25"}
    with pytest.raises(convert.UsageError, match="--subnet"):
        convert.network_spec(args("network", "create", "n1", "--gateway", "10.9.0.1"))


def test_mtu_option_matches_the_service() -> None:
    from berth.service.networks import MTU_OPTION

    assert convert.MTU_OPTION == MTU_OPTION


def test_completion_knows_the_new_commands() -> None:
    text = tables(build())
    for path in ('"pod") printf', '"service") printf', '"network") printf'):
        assert path in text
    assert "create ls inspect start stop restart rm" in text
    assert "create ls inspect rm connect disconnect prune" in text


def test_run_network_container_mode() -> None:
    args = build().parse_args(["run", "--network", "container:web", "busybox", "true"])
    spec = convert.container_spec(args)
    assert spec["network"] == "none" and spec["network_of"] == "web"
    assert "networks" not in spec

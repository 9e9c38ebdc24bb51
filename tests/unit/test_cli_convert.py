"""Docker-style command-line values turned into API fields."""

from __future__ import annotations

from pathlib import Path

import pytest

from berth.cli import convert
from berth.cli.parser import build


def spec(*argv: str) -> dict:
    return convert.container_spec(build().parse_args(["run", *argv]))


@pytest.mark.parametrize(("text", "value"), [
    ("64m", 64 * 1024**2), ("1g", 1024**3), ("512k", 512 * 1024), ("100", 100),
    ("1.5g", int(1.5 * 1024**3)), ("-1", -1), ("64MB", 64 * 1024**2)])
def test_parse_size(text: str, value: int) -> None:
    assert convert.parse_size(text, "memory") == value


@pytest.mark.parametrize("text", ["", "m", "12x", "-5", "1e9"])
def test_parse_size_refuses(text: str) -> None:
    with pytest.raises(convert.UsageError, match="memory"):
        convert.parse_size(text, "memory")


def test_volumes_binds_tmpfs_and_mounts() -> None:
    mounts = spec("-v", "data:/data", "-v", "/srv:/in:ro", "-v", "/anon", "--tmpfs",
                  "/t:size=1m,mode=700", "--mount", "type=bind,src=/etc,dst=/e,readonly",
                  "busybox")["mounts"]
    assert mounts == [
        {"type": "volume", "source": "data", "target": "/data", "readonly": False},
        {"type": "bind", "source": "/srv", "target": "/in", "readonly": True},
        {"type": "volume", "target": "/anon"},
        {"type": "bind", "source": "/etc", "target": "/e", "readonly": True},
        {"type": "tmpfs", "target": "/t", "tmpfs_size": 1024**2, "tmpfs_mode": 0o700},
    ]


def test_command_entrypoint_restart_and_limits() -> None:
    s = spec("--entrypoint", "", "--restart", "on-failure:3", "-m", "32m", "--cpus", "0.5",
             "--pids-limit", "10", "busybox", "sh", "-c", "echo hi")
    assert s["entrypoint"] == [] and s["command"] == ["sh", "-c", "echo hi"]
    assert s["restart_policy"] == {"name": "on-failure", "max_retries": 3}
    assert (s["memory"], s["cpus"], s["pids_limit"]) == (32 * 1024**2, 0.5, 10)
    assert "command" not in spec("busybox")  # the image's Cmd applies


def test_env_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = tmp_path / "app.env"
    env.write_text("# comment\n\nA=1\nB=two words\nFROM_SHELL\nUNSET_HERE\n")
    monkeypatch.setenv("FROM_SHELL", "yes")
    monkeypatch.delenv("UNSET_HERE", raising=False)
    s = spec("--env-file", str(env), "-e", "A=override", "busybox")
    assert s["env"] == ["A=1", "B=two words", "FROM_SHELL=yes", "A=override"]
    (tmp_path / "bad.env").write_text("not a key=x\n")
    with pytest.raises(convert.UsageError, match="bad.env:1"):
        spec("--env-file", str(tmp_path / "bad.env"), "busybox")
    with pytest.raises(convert.UsageError, match="cannot read env file"):
        spec("--env-file", str(tmp_path / "missing.env"), "busybox")


def test_label_file_and_expose(tmp_path: Path) -> None:
    labels = tmp_path / "labels"
    labels.write_text("# team labels\ntier=web\nowner=ops\nbare\n")
    s = spec("--label-file", str(labels), "-l", "owner=me", "--expose", "80",
             "--expose", "53-54/udp", "--expose", "80/tcp", "busybox")
    assert s["labels"] == {"tier": "web", "owner": "me", "bare": ""}  # -l wins over a file
    assert s["exposed_ports"] == ["80/tcp", "53/udp", "54/udp"]
    with pytest.raises(convert.UsageError, match="cannot read label file"):
        spec("--label-file", str(tmp_path / "missing"), "busybox")
    for bad in ("http", "0", "90-80", "70000", "80/sctp", "1-"):
        with pytest.raises(convert.UsageError, match="--expose"):
            spec("--expose", bad, "busybox")


@pytest.mark.parametrize(("argv", "cpus"), [
    (["--cpu-quota", "50000"], 0.5),
    (["--cpu-quota", "150000", "--cpu-period", "100000"], 1.5),
    (["--cpu-quota", "10000", "--cpu-period", "50000"], 0.2),
])
def test_cpu_quota_and_period_as_cpus(argv: list[str], cpus: float) -> None:
    assert spec(*argv, "busybox")["cpus"] == cpus
    line = ["update", *argv, "c"]
    assert convert.resources(build(line).parse_args(line))["cpus"] == cpus


@pytest.mark.parametrize(("argv", "words"), [
    (["--cpu-period", "50000"], "needs --cpu-quota"),
    (["--cpus", "1", "--cpu-quota", "50000"], "--cpus cannot go with"),
    (["--cpu-quota", "500"], "at least 1000"),
    (["--cpu-quota", "5000", "--cpu-period", "10"], "--cpu-period 10"),
])
def test_cpu_quota_refusals(argv: list[str], words: str) -> None:
    with pytest.raises(convert.UsageError, match=words):
        spec(*argv, "busybox")


def test_oom_score_adj_is_passed_as_given() -> None:
    assert spec("--oom-score-adj", "500", "busybox")["oom_score_adj"] == 500
    assert "oom_score_adj" not in spec("busybox")


def test_hosts_dns_ulimits_groups_and_init() -> None:
    got = spec("--add-host", "db:10.0.0.5", "--add-host", "v6=::1", "--dns", "10.0.0.53",
               "--dns-search", "corp", "--dns-option", "ndots:2", "--ulimit", "nofile=100:200",
               "--ulimit", "nproc=64", "--group-add", "audio", "--init", "busybox")
    assert got["extra_hosts"] == ["db:10.0.0.5", "v6:::1"]
    assert (got["dns"], got["dns_search"], got["dns_options"]) == (
        ["10.0.0.53"], ["corp"], ["ndots:2"])
    assert got["ulimits"] == [{"name": "nofile", "soft": 100, "hard": 200},
                              {"name": "nproc", "soft": 64, "hard": 64}]
    assert got["group_add"] == ["audio"] and got["init"] is True
    assert "ulimits" not in spec("busybox") and "init" not in spec("busybox")
    with pytest.raises(convert.UsageError, match="--ulimit"):
        spec("--ulimit", "nofile", "busybox")


def test_events_filters_as_the_apis_query() -> None:
    from berth.cli.commands import event_query

    query = event_query(["container=web", "event=die", "event=health_status",
                         "label=tier=db", "label=team", "type=image"], None)
    assert query == {"type": ["container", "image"], "object": ["web"],
                     "action": ["die", "health_status"], "selector": "tier=db,team"}
    assert event_query([], "volume") == {"type": ["volume"], "object": None, "action": None,
                                         "selector": None}
    for bad in ("colour=red", "event", "event="):
        with pytest.raises(convert.UsageError, match="--filter"):
            event_query([bad], None)


def test_event_action_filter_takes_dockers_health_status_prefix() -> None:
    from berth.service.context import Context
    from berth.service.events import event_filter

    ctx = Context(project_id="p", user="u", role="admin")
    wanted = event_filter(ctx, actions=["health_status", "die"])
    event = {"project_id": "p", "type": "container", "id": "c", "name": "n", "labels": {}}
    assert wanted.matches({**event, "action": "health_status: healthy"})
    assert wanted.matches({**event, "action": "die"})
    assert not wanted.matches({**event, "action": "start"})


@pytest.mark.parametrize("flags", [
    ["--security-opt", "no-new-privileges"], ["--ipc", "shareable"], ["--runtime", "runc"],
    ["--cgroupns", "private"], ["--userns", ""], ["--memory-swappiness", "-1"],
    ["--platform", "linux/arm64/v8"], ["--volume-driver", "local"], ["--isolation", "default"],
])
def test_dockers_options_naming_berths_own_behaviour_are_taken(flags: list[str]) -> None:
    args = build().parse_args(["run", *flags, "busybox"])
    assert convert.container_spec(args)["image"] == "busybox"


@pytest.mark.parametrize(("flags", "words"), [
    (["--userns", "host"], "--userns 'host'"),
    (["--pod", "p", "--ipc", "host"], "--ipc cannot go with --pod"),
    (["--runtime", "crun"], "--runtime 'crun'"), (["--cgroupns", "host"], "--cgroupns 'host'"),
    (["--security-opt", "seccomp=unconfined"], "--security-opt 'seccomp=unconfined'"),
    (["--security-opt", "no-new-privileges", "--security-opt", "apparmor=x"], "apparmor=x"),
    (["--device", "/dev/kvm:/dev/kvm:rw:x"], "--device"),
    (["--device", ":/dev/x"], "--device"),
    (["--memory-swappiness", "0"], "--memory-swappiness"),
    (["--oom-kill-disable"], "--oom-kill-disable"),
    (["--platform", "windows/amd64"], "Berth runs linux containers"),
])
def test_dockers_options_asking_for_more_are_refused_by_name(flags: list[str],
                                                             words: str) -> None:
    args = build().parse_args(["run", *flags, "busybox"])
    with pytest.raises(convert.UsageError, match=words.replace("(", r"\(")):
        convert.container_spec(args)


def test_namespace_modes_go_to_the_api() -> None:
    # --pid is not read as --pids-limit; the API checks the values
    args = build().parse_args(["run", "--pid", "container:web", "--ipc", "shareable", "--uts",
                               "host", "busybox"])
    spec = convert.container_spec(args)
    assert (spec["pid_mode"], spec["ipc_mode"], spec["uts_mode"]) == (
        "container:web", "shareable", "host")
    assert "pid_mode" not in convert.container_spec(build().parse_args(["run", "busybox"]))


def test_dockers_other_spellings_and_no_abbreviations() -> None:
    args = build().parse_args(["run", "--net", "n1", "--net-alias", "a", "-c", "512", "x"])
    assert (args.network, args.network_alias, args.cpu_shares) == ("n1", ["a"], 512)
    with pytest.raises(SystemExit):  # argparse would have read it as --pids-limit
        build().parse_args(["run", "--pids", "5", "x"])


@pytest.mark.parametrize(("flag", "want"), [
    ("/dev/fuse", {"path_on_host": "/dev/fuse", "path_in_container": None,
                   "permissions": "rwm"}),
    ("/dev/sdc:/dev/xvdc", {"path_on_host": "/dev/sdc", "path_in_container": "/dev/xvdc",
                            "permissions": "rwm"}),
    ("/dev/net/tun:rw", {"path_on_host": "/dev/net/tun", "path_in_container": None,
                         "permissions": "rw"}),
    ("/dev/sdc:/dev/xvdc:r", {"path_on_host": "/dev/sdc", "path_in_container": "/dev/xvdc",
                              "permissions": "r"}),
])
def test_device_flags_as_docker_reads_them(flag: str, want: dict[str, object]) -> None:
    args = build().parse_args(["run", "--device", flag, "busybox"])
    assert convert.container_spec(args)["devices"] == [want]

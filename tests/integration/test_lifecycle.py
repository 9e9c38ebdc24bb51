"""The container lifecycle through the real CLI, against a real berthd, runc and conmon."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.integration.daemon import Daemon, refused

pytestmark = pytest.mark.integration


def test_run_attached_prints_output_and_keeps_streams_apart(daemon: Daemon) -> None:
    res = daemon.cli("run", "--rm", "busybox", "sh", "-c", "echo to-out; echo to-err >&2")
    assert res.stdout == "to-out\n"
    assert res.stderr == "to-err\n"


def test_run_a_attaches_only_the_streams_named(daemon: Daemon) -> None:
    both = ["busybox", "sh", "-c", "echo to-out; echo to-err >&2; exit 3"]
    res = daemon.cli("run", "--rm", "-a", "stderr", *both, check=False)
    assert (res.returncode, res.stdout, res.stderr) == (3, "", "to-err\n")
    res = daemon.cli("run", "--rm", "-a", "STDOUT", *both, check=False)  # any case, as docker
    assert (res.returncode, res.stdout, res.stderr) == (3, "to-out\n", "")
    res = daemon.cli("run", "--rm", "-a", "stdout", "-a", "stderr", *both, check=False)
    assert (res.returncode, res.stdout, res.stderr) == (3, "to-out\n", "to-err\n")
    before = daemon.client.containers.list(all=True)
    refused(daemon.cli("run", "-a", "stdio", "busybox", "true", check=False),
            "invalid --attach stdio", "stdin, stdout and stderr")
    refused(daemon.cli("run", "-d", "-a", "stdout", "busybox", "true", check=False),
            "-a/--attach", "-d/--detach")
    assert daemon.client.containers.list(all=True) == before  # nothing was made


def test_run_i_a_sends_input_only_when_stdin_is_attached(daemon: Daemon) -> None:
    res = daemon.cli("run", "--rm", "-i", "-a", "stdin", "-a", "stdout", "busybox", "sh", "-c",
                     "cat; echo to-err >&2", input=b"typed\n", timeout=30)
    assert (res.stdout, res.stderr) == ("typed\n", "")
    # Without -i the container has no input to take, whatever -a says (as docker's).
    res = daemon.cli("run", "--rm", "-a", "stdin", "-a", "stdout", "busybox", "sh", "-c",
                     "cat; echo read-nothing", input=b"typed\n", timeout=30)
    assert res.stdout == "read-nothing\n"
    # -i with stdin left out: output shown, input kept from the container.
    res = daemon.cli("run", "--rm", "-i", "-a", "stdout", "busybox", "sh", "-c",
                     "read -t 1 line; echo got=$line", input=b"typed\n", timeout=30)
    assert res.stdout == "got=\n"


def test_run_attached_exits_with_the_container_code(daemon: Daemon) -> None:
    res = daemon.cli("run", "--rm", "busybox", "sh", "-c", "exit 42", check=False)
    assert res.returncode == 42


@pytest.mark.parametrize(("command", "code"), [("nosuchcommand", 127), ("/etc/passwd", 126)])
def test_run_of_a_command_that_cannot_run(daemon: Daemon, command: str, code: int) -> None:
    res = daemon.cli("run", "--rm", "busybox", command, check=False)
    assert res.returncode == code
    assert res.stderr.count("\n") == 1 and res.stderr.startswith("berth: ")
    assert command in res.stderr
    # --rm removes it even though it never ran
    assert not daemon.client.containers.list(all=True, filters=["ancestor=busybox"]) or all(
        c["config"].get("command") != [command]
        for c in daemon.client.containers.list(all=True))


def test_rm_flag_removes_the_container_after_exit(daemon: Daemon) -> None:
    daemon.cli("run", "--rm", "--name", "gone-after", "busybox", "true")
    res = daemon.cli("inspect", "--type", "container", "gone-after", check=False)
    assert res.returncode != 0 and "no such container" in res.stderr


@pytest.mark.parametrize("attach", [[], ["-i"]], ids=["streamed", "websocket"])
def test_run_rm_returns_only_once_the_container_is_gone(daemon: Daemon,
                                                         attach: list[str]) -> None:
    # As `docker run --rm`: asked at once (no CLI start-up in between), nothing is left and
    # the name is free for the next run.
    client = daemon.client
    for _ in range(3):
        res = daemon.cli("run", "--rm", *attach, "--name", "gone-at-once", "busybox", "echo",
                         "x", input=b"" if attach else None)
        assert res.stdout == "x\n"
        assert client.containers.list(all=True, filters=["name=gone-at-once"]) == []


def test_detached_run_then_logs_ps_inspect(daemon: Daemon) -> None:
    cid = daemon.cli("run", "-d", "--name", "lc-detached", "-l", "tier=web", "busybox", "sh",
                     "-c", "echo first; echo oops >&2; sleep 60").stdout.strip()
    assert len(cid) == 64
    daemon.wait_for(lambda: "first" in daemon.cli("logs", "lc-detached").stdout, what="output")
    logs = daemon.cli("logs", "lc-detached")
    assert logs.stdout == "first\n" and logs.stderr == "oops\n"
    stamped = daemon.cli("logs", "-t", "lc-detached").stdout
    assert stamped.split(" ", 1)[0].startswith(time.strftime("%Y-"))
    ps = daemon.cli("ps").stdout
    assert "lc-detached" in ps and cid[:12] in ps
    assert "lc-detached" in daemon.cli("ps", "--filter", "label=tier=web").stdout
    assert "lc-detached" not in daemon.cli("ps", "--filter", "label=tier=db").stdout
    assert "lc-detached" in daemon.cli("ps", "--filter", "name=lc-det").stdout
    assert "lc-detached" in daemon.cli("ps", "--filter", "status=running").stdout
    info = daemon.inspect("lc-detached")
    assert info["id"] == cid and info["state"]["running"] and info["state"]["pid"] > 0
    assert info["labels"] == {"tier": "web"}
    daemon.cli("rm", "-f", "lc-detached")


def test_logs_tail_and_since(daemon: Daemon) -> None:
    daemon.cli("run", "--name", "lc-tail", "busybox", "sh", "-c",
               "for i in 1 2 3 4 5; do echo line$i; done")
    assert daemon.cli("logs", "--tail", "2", "lc-tail").stdout == "line4\nline5\n"
    assert daemon.cli("logs", "--since", str(time.time() + 3600), "lc-tail").stdout == ""
    assert daemon.cli("logs", "--since", "0", "lc-tail").stdout.count("line") == 5
    daemon.cli("rm", "lc-tail")


def test_logs_follow_ends_when_the_container_exits(daemon: Daemon) -> None:
    daemon.cli("run", "-d", "--name", "lc-follow", "busybox", "sh", "-c",
               "echo a; sleep 1; echo b")
    res = daemon.cli("logs", "-f", "lc-follow", timeout=30)
    assert res.stdout == "a\nb\n"
    daemon.cli("rm", "lc-follow")


def test_image_config_env_workdir_user_hostname(daemon: Daemon) -> None:
    out = daemon.cli("run", "--rm", "-e", "GREETING=hi there", "-w", "/tmp", "-u", "1000:1000",
                     "-h", "boxhost", "busybox", "sh", "-c",
                     'echo "$GREETING"; pwd; id -u; id -g; hostname; echo $PATH').stdout
    lines = out.splitlines()
    assert lines[:5] == ["hi there", "/tmp", "1000", "1000", "boxhost"]
    assert "/bin" in lines[5]  # PATH from the image config


def test_user_by_name_and_entrypoint_override(daemon: Daemon) -> None:
    assert daemon.cli("run", "--rm", "-u", "user", "busybox", "id", "-un").stdout == "user\n"
    res = daemon.cli("run", "--rm", "--entrypoint", "echo", "busybox", "via", "entrypoint")
    assert res.stdout == "via entrypoint\n"


def test_runs_in_a_user_namespace_by_default(daemon: Daemon) -> None:
    uid_map = daemon.cli("run", "--rm", "busybox", "cat", "/proc/self/uid_map").stdout.split()
    assert uid_map[0] == "0" and uid_map[1] != "0"  # container root is not host root
    info = daemon.client.info()
    assert int(uid_map[1]) == info["userns_base"]


def test_stop_sends_sigterm_then_sigkill(daemon: Daemon) -> None:
    daemon.cli("run", "-d", "--name", "lc-graceful", "busybox", "sh", "-c",
               "trap 'echo got-term; exit 0' TERM; while true; do sleep 0.1; done")
    daemon.cli("stop", "lc-graceful")
    info = daemon.inspect("lc-graceful")
    assert info["state"]["status"] == "exited" and info["state"]["exit_code"] == 0
    assert "got-term" in daemon.cli("logs", "lc-graceful").stdout
    # sh as PID 1 ignores SIGTERM without a trap: stop must escalate to SIGKILL
    daemon.cli("run", "-d", "--name", "lc-stubborn", "busybox", "sleep", "600")
    daemon.cli("stop", "-t", "1", "lc-stubborn")
    assert daemon.inspect("lc-stubborn")["state"]["exit_code"] == 137
    # stopping a stopped container is not an error (as in docker)
    assert daemon.cli("stop", "lc-stubborn").returncode == 0
    daemon.cli("rm", "lc-graceful", "lc-stubborn")


def test_stop_and_restart_with_a_signal_of_their_own(daemon: Daemon) -> None:
    trap = "trap 'echo got-$0; exit 3' INT; trap 'echo got-term; exit 0' TERM; " \
           "while true; do sleep 0.1; done"
    daemon.cli("run", "-d", "--name", "lc-sig", "busybox", "sh", "-c", trap, "sig")
    daemon.cli("stop", "-s", "INT", "lc-sig")
    assert daemon.inspect("lc-sig")["state"]["exit_code"] == 3
    daemon.cli("start", "lc-sig")
    daemon.cli("restart", "--signal", "SIGINT", "lc-sig")
    assert daemon.cli("logs", "lc-sig").stdout.split() == ["got-sig", "got-sig"]
    assert daemon.inspect("lc-sig")["state"]["status"] == "running"
    res = daemon.cli("stop", "-s", "NOPE", "lc-sig", check=False)
    assert res.returncode != 0 and "NOPE" in res.stderr
    daemon.cli("rm", "-f", "lc-sig")


def test_kill_with_a_signal_and_wait(daemon: Daemon) -> None:
    daemon.cli("run", "-d", "--name", "lc-kill", "busybox", "sh", "-c",
               "trap 'echo usr1; exit 9' USR1; while true; do sleep 0.1; done")
    daemon.cli("kill", "-s", "USR1", "lc-kill")
    assert daemon.cli("wait", "lc-kill").stdout.strip() == "9"
    assert "usr1" in daemon.cli("logs", "lc-kill").stdout
    daemon.cli("rm", "lc-kill")


def test_restart_gives_a_new_process_and_keeps_the_filesystem(daemon: Daemon) -> None:
    daemon.cli("run", "-d", "--name", "lc-restart", "busybox", "sh", "-c",
               "echo run >> /state; sleep 600")
    first = daemon.inspect("lc-restart")["state"]["pid"]
    daemon.cli("restart", "-t", "0", "lc-restart")
    second = daemon.inspect("lc-restart")["state"]
    assert second["running"] and second["pid"] != first
    res = daemon.cli("exec", "lc-restart", "cat", "/state")
    assert res.stdout == "run\nrun\n"  # the writable layer survived the restart
    daemon.cli("stop", "-t", "0", "lc-restart")
    daemon.cli("start", "lc-restart")
    assert daemon.cli("exec", "lc-restart", "cat", "/state").stdout.count("run") == 3
    daemon.cli("rm", "-f", "lc-restart")


def test_create_then_start_attached(daemon: Daemon) -> None:
    cid = daemon.cli("create", "--name", "lc-created", "busybox", "echo", "made").stdout.strip()
    assert daemon.inspect(cid)["state"]["status"] == "created"
    assert daemon.cli("logs", "lc-created").stdout == ""  # never started: no output yet
    res = daemon.cli("start", "-a", "lc-created")
    assert res.stdout == "made\n" and res.returncode == 0
    daemon.cli("rm", "lc-created")


@pytest.mark.parametrize("log_opts", [[], ["--log-opt", "max-file=1"],
                                      ["--log-opt", "max-size=-1"]],
                         ids=["kept-files", "one-file", "unbounded"])
def test_start_attached_shows_this_runs_output_only(daemon: Daemon,
                                                    log_opts: list[str]) -> None:
    """docker's start -a and -ai: what this run writes, not what the runs before it wrote
    (which the log keeps); -i gives it our input."""
    daemon.cli("run", "--name", "lc-again", *log_opts, "busybox", "sh", "-c",
               "echo run $(cat /proc/uptime)")
    assert daemon.cli("start", "-a", "lc-again").stdout.count("run ") == 1
    assert daemon.cli("logs", "lc-again").stdout.count("run ") == 2
    daemon.cli("rm", "lc-again")
    daemon.cli("run", "-i", "--name", "lc-cat", *log_opts, "busybox", "cat",
               input=b"typed once\n")
    res = daemon.cli("start", "-ai", "lc-cat", input=b"typed again\n")
    assert (res.stdout, res.returncode) == ("typed again\n", 0)
    assert daemon.cli("logs", "lc-cat").stdout == "typed once\ntyped again\n"
    daemon.cli("rm", "lc-cat")


def test_pause_freezes_and_unpause_thaws(daemon: Daemon) -> None:
    daemon.cli("run", "-d", "--name", "lc-pause", "busybox", "sh", "-c",
               "while true; do date +%s%N >> /ticks; sleep 0.05; done")
    daemon.cli("pause", "lc-pause")
    assert daemon.inspect("lc-pause")["state"]["status"] == "paused"
    assert "Paused" in daemon.cli("ps").stdout
    res = daemon.cli("exec", "lc-pause", "true", check=False)
    assert res.returncode != 0 and "paused" in res.stderr
    daemon.cli("unpause", "lc-pause")
    assert daemon.inspect("lc-pause")["state"]["status"] == "running"
    before = int(daemon.cli("exec", "lc-pause", "wc", "-l", "/ticks").stdout.split()[0])
    daemon.wait_for(lambda: int(daemon.cli("exec", "lc-pause", "wc", "-l", "/ticks")
                                .stdout.split()[0]) > before, what="ticks after unpause")
    daemon.cli("rm", "-f", "lc-pause")


@pytest.mark.parametrize("verb", ["rm -f", "kill", "stop"])
def test_a_paused_container_can_be_killed_stopped_and_removed(daemon: Daemon, verb: str) -> None:
    # SIGKILL ends even a frozen process: the thaw that follows has nothing left to thaw
    # (it used to fail the action with "container ... is not running").
    daemon.cli("run", "-d", "--name", "lc-frozen", "busybox", "sleep", "3600")
    try:
        daemon.cli("pause", "lc-frozen")
        daemon.cli(*verb.split(), *(["-t", "1"] if verb == "stop" else []), "lc-frozen")
        if verb != "rm -f":  # answered once it has stopped (docker's kill and stop too)
            state = daemon.inspect("lc-frozen")["state"]
            assert (state["status"], state["exit_code"]) == ("exited", 137), state
    finally:
        daemon.cli("rm", "-f", "lc-frozen", check=False)


def test_a_signal_thaws_a_paused_container_and_says_so(daemon: Daemon) -> None:
    daemon.cli("run", "-d", "--name", "lc-thaw", "busybox", "sleep", "3600")
    daemon.cli("pause", "lc-thaw")
    daemon.cli("kill", "-s", "USR1", "lc-thaw")  # pid 1 has no handler: it ignores USR1
    state = daemon.inspect("lc-thaw")["state"]
    assert state["status"] == "running" and state["running"], state  # thawed, not "paused"
    assert daemon.cli("exec", "lc-thaw", "echo", "awake").stdout == "awake\n"
    # stop: SIGTERM (ignored too), then SIGKILL, which must not try to thaw it again
    daemon.cli("stop", "-t", "1", "lc-thaw")
    assert daemon.inspect("lc-thaw")["state"]["status"] == "exited"
    daemon.cli("rm", "lc-thaw")


def test_rename_and_name_conflicts(daemon: Daemon) -> None:
    daemon.cli("create", "--name", "lc-old", "busybox", "true")
    daemon.cli("create", "--name", "lc-taken", "busybox", "true")
    res = daemon.cli("rename", "lc-old", "lc-taken", check=False)
    assert res.returncode == 125 and "already in use" in res.stderr
    daemon.cli("rename", "lc-old", "lc-new")
    assert daemon.inspect("lc-new")["name"] == "lc-new"
    res = daemon.cli("create", "--name", "lc-new", "busybox", "true", check=False)
    assert res.returncode == 125 and "already in use" in res.stderr
    daemon.cli("rm", "lc-new", "lc-taken")


def test_rm_refuses_a_running_container_without_force(daemon: Daemon) -> None:
    daemon.cli("run", "-d", "--name", "lc-rm", "busybox", "sleep", "600")
    res = daemon.cli("rm", "lc-rm", check=False)
    assert res.returncode != 0 and "running" in res.stderr
    assert daemon.inspect("lc-rm")["state"]["running"]
    daemon.cli("rm", "-f", "lc-rm")
    assert daemon.cli("inspect", "lc-rm", check=False).returncode != 0


def test_exec_exit_codes_env_and_user(daemon: Daemon) -> None:
    daemon.cli("run", "-d", "--name", "lc-exec", "-e", "FROM_RUN=1", "busybox", "sleep", "600")
    res = daemon.cli("exec", "-e", "EXTRA=2", "-u", "1000", "-w", "/tmp", "lc-exec", "sh", "-c",
                     "echo $FROM_RUN$EXTRA; id -u; pwd; exit 3", check=False)
    assert res.returncode == 3
    assert res.stdout.splitlines() == ["12", "1000", "/tmp"]
    assert daemon.cli("exec", "lc-exec", "nosuch", check=False).returncode == 127
    daemon.cli("rm", "-f", "lc-exec")


def test_actions_log_records_each_operation(daemon: Daemon) -> None:
    daemon.cli("run", "-d", "--name", "lc-actions", "busybox", "sleep", "600")
    daemon.cli("stop", "-t", "0", "lc-actions")
    acts = json.loads(daemon.cli("actions", "-o", "json", "lc-actions").stdout)
    assert [a["action"] for a in acts] == ["create", "start", "stop"]
    assert all(a["state"] == "success" and a["finished_at"] for a in acts)
    assert len({a["request_id"] for a in acts}) == 2  # run = one request, stop another
    daemon.cli("rm", "lc-actions")


def test_events_stream_reports_lifecycle(daemon: Daemon) -> None:
    import threading

    seen: list[dict] = []
    stream = daemon.client.events(type="container")

    def collect() -> None:
        for event in stream:
            seen.append(event)
            if event["action"] == "destroy" and event["name"] == "lc-events":
                return

    # Subscribed once events() returns: what happens next is kept for the reader.
    daemon.cli("run", "--rm", "--name", "lc-events", "busybox", "true")
    reader = threading.Thread(target=collect, daemon=True)
    reader.start()
    reader.join(20)
    actions = [e["action"] for e in seen if e["name"] == "lc-events"]
    assert actions[:2] == ["create", "start"] and "die" in actions and actions[-1] == "destroy"


def test_forced_removal_reports_kill_die_destroy(daemon: Daemon) -> None:
    import threading

    daemon.cli("run", "-d", "--name", "lc-forced", "busybox", "sleep", "600")
    seen: list[dict] = []
    stream = daemon.client.events(type="container")

    def collect() -> None:
        for event in stream:
            if event["name"] == "lc-forced":
                seen.append(event)
                if event["action"] == "destroy":
                    return

    daemon.cli("rm", "-f", "lc-forced")
    reader = threading.Thread(target=collect, daemon=True)
    reader.start()
    reader.join(20)
    assert [e["action"] for e in seen] == ["kill", "die", "destroy"]
    assert seen[1]["exitCode"] == 137


def test_version_shows_the_client_and_the_daemon(daemon: Daemon) -> None:
    from berth import __version__

    text = daemon.cli("version").stdout
    assert text.startswith("Client:\n") and "\nServer:\n" in text
    both = json.loads(daemon.cli("version", "-o", "json").stdout)
    assert both["client"]["version"] == both["server"]["version"] == __version__
    info = daemon.client.info()
    assert both["server"]["runtime"] == info["runtime"] and both["server"]["store"] == "sqlite"


def test_container_prune_removes_stopped_containers_its_filters_pick(daemon: Daemon) -> None:
    d = daemon
    d.cli("run", "--name", "pr-exited", "busybox", "true")
    d.cli("run", "--name", "pr-kept", "-l", "keep=yes", "busybox", "true")
    d.cli("create", "--name", "pr-created", "busybox", "true")
    d.cli("run", "-d", "--name", "pr-running", "busybox", "sleep", "60")
    try:
        bad = d.cli("container", "prune", "--filter", "status=exited", check=False)
        assert bad.returncode == 125 and "status" in bad.stderr
        ids = {name: d.inspect(name)["id"] for name in ("pr-exited", "pr-created")}
        out = d.cli("container", "prune", "--filter", "label!=keep=yes").stdout
        assert sorted(out.splitlines()) == sorted(f"deleted: {i}" for i in ids.values())
        left = {c["name"] for c in d.client.containers.list(all=True)}
        assert {"pr-kept", "pr-running"} <= left and not left & set(ids)
        # until: only what was created before it (nothing here is a day old)
        assert d.client.containers.prune(["until=24h"]) == {"removed": []}
        kept = d.inspect("pr-kept")["id"]
        assert d.client.containers.prune() == {"removed": [kept]}
    finally:
        for name in ("pr-exited", "pr-kept", "pr-created", "pr-running"):
            d.cli("rm", "-f", name, check=False)


def test_extra_hosts_dns_settings_ulimits_and_groups(daemon: Daemon) -> None:
    out = daemon.cli(
        "run", "--rm", "--add-host", "db.internal:10.0.0.5", "--dns", "10.9.9.9",
        "--dns-search", "corp.example", "--dns-option", "ndots:2", "--ulimit", "nofile=256:512",
        "--ulimit", "nproc=64", "--ulimit", "core=0", "--group-add", "users",
        "--group-add", "4242", "-u", "user", "busybox", "sh", "-c",
        "cat /etc/hosts /etc/resolv.conf; echo ---; ulimit -n; ulimit -Hn; ulimit -u; "
        "ulimit -c; id -G").stdout
    files, _, limits = out.partition("---\n")
    assert "10.0.0.5\tdb.internal\n" in files and "127.0.0.1\tlocalhost" in files
    assert "nameserver 10.9.9.9\nsearch corp.example\noptions ndots:2\n" in files
    assert limits.split("\n")[:4] == ["256", "512", "64", "0"]
    assert set(limits.split("\n")[4].split()) == {"1000", "100", "4242"}
    # an exec as another user gets the container's --group-add too, as docker's does
    daemon.cli("run", "-d", "--name", "grouped", "--group-add", "4242", "busybox", "sleep", "60")
    try:
        assert "4242" in daemon.cli("exec", "-u", "nobody", "grouped", "id", "-G").stdout.split()
        assert "4242" in daemon.cli("exec", "grouped", "id", "-G").stdout.split()
    finally:
        daemon.cli("rm", "-f", "grouped", check=False)


def test_shm_size_and_sysctls_of_its_own_namespaces(daemon: Daemon) -> None:
    out = daemon.cli(
        "run", "--rm", "--shm-size", "256m", "--sysctl", "net.core.somaxconn=1234",
        "--sysctl", "net.ipv4.ip_unprivileged_port_start=0", "--sysctl", "kernel.shmmni=999",
        "busybox", "sh", "-c", "df -k /dev/shm | tail -1; cat /proc/sys/net/core/somaxconn "
        "/proc/sys/net/ipv4/ip_unprivileged_port_start /proc/sys/kernel/shmmni").stdout
    df, *values = out.split("\n")
    assert df.split()[1] == str(256 * 1024) and values[:3] == ["1234", "0", "999"]
    # the host's own values are untouched
    assert Path("/proc/sys/kernel/shmmni").read_text().strip() != "999"
    refused(daemon.cli("run", "--rm", "--sysctl", "vm.swappiness=1", "busybox", "true",
                       check=False), "vm.swappiness", "not allowed")
    refused(daemon.cli("run", "--rm", "--network", "host", "--sysctl",
                       "net.core.somaxconn=1", "busybox", "true", check=False),
            "shares that namespace")
    refused(daemon.cli("run", "--rm", "--shm-size", "lots", "busybox", "true", check=False),
            "--shm-size")


def test_bad_hosts_dns_ulimits_and_groups_are_refused(daemon: Daemon) -> None:
    for args, words in ((["--add-host", "db"], ["extra host", "NAME:IP"]),
                        (["--add-host", "db:nowhere"], ["'nowhere'"]),
                        (["--add-host", "gw:host-gateway"], ["host-gateway", "network"]),
                        (["--dns", "one"], ["DNS server 'one'"]),
                        (["--dns", "10.0.0.9", "--network", "container:nobody"],
                         ["dns", "that network's owner"]),
                        (["--ulimit", "bogus=1"], ["unknown ulimit 'bogus'"]),
                        (["--ulimit", "nofile=9:3"], ["soft limit 9", "hard limit 3"]),
                        (["--ulimit", "nofile"], ["--ulimit"]),
                        (["--group-add", "no such"], ["invalid group"])):
        refused(daemon.cli("run", "--rm", *args, "busybox", "true", check=False), *words)
    # in a user namespace (the default) a hard limit cannot go above the daemon's own
    for limit in ("nofile=1099511627776", "memlock=-1"):
        res = daemon.cli("run", "--rm", "--ulimit", limit, "busybox", "true", check=False)
        assert res.returncode == 125 and "above this host's" in res.stderr, res
    assert daemon.cli("run", "--rm", "--ulimit", "core=-1", "busybox", "sh", "-c",
                      "ulimit -c").stdout == "unlimited\n"
    # a group the image does not have: refused at start, nothing left running
    res = daemon.cli("run", "--rm", "--group-add", "nosuch", "busybox", "true", check=False)
    assert res.returncode != 0 and "unable to find group nosuch" in res.stderr, res


def test_system_prune_removes_what_nothing_uses(own_daemon: Daemon) -> None:
    d = own_daemon
    d.cli("volume", "create", "sp-unused")
    d.cli("network", "create", "sp-net")
    dead = d.cli("run", "-d", "--name", "sp-dead", "busybox", "true").stdout.strip()
    d.wait_for(lambda: d.inspect("sp-dead")["state"]["status"] == "exited", what="exited")
    d.cli("run", "-d", "--name", "sp-live", "-v", "sp-used:/data", "busybox", "sleep", "60")
    out = d.cli("system", "prune").stdout  # volumes only when asked
    assert f"Deleted containers:\n{dead}\n" in out and "Deleted networks:\nsp-net\n" in out
    assert "volumes" not in out and "Total reclaimed space:" in out
    out = d.cli("system", "prune", "--volumes").stdout
    assert "Deleted volumes:\nsp-unused\n" in out and "containers" not in out
    assert {c["name"] for c in d.client.containers.list(all=True)} == {"sp-live"}
    assert [v["name"] for v in d.client.volumes.list()] == ["sp-used"]
    assert any(i for i in d.client.images.list())  # busybox: in use, and not dangling
    d.cli("rm", "-f", "sp-live")


def test_exec_detached_returns_while_the_command_runs_on(daemon: Daemon) -> None:
    d = daemon
    d.cli("run", "-d", "--name", "lc-execd", "busybox", "sleep", "300")
    try:
        # Without detaching, this would wait for /tmp/go, which comes only afterwards.
        res = d.cli("exec", "-d", "lc-execd", "sh", "-c",
                    "echo noise; while [ ! -f /tmp/go ]; do sleep 0.05; done; "
                    "echo done > /tmp/marker", timeout=60)
        assert res.returncode == 0 and res.stdout == "" and res.stderr == ""
        assert "sleep 0.05" in d.cli("top", "lc-execd").stdout or \
            "/tmp/go" in d.cli("top", "lc-execd").stdout
        d.cli("exec", "lc-execd", "touch", "/tmp/go")
        d.wait_for(lambda: d.cli("exec", "lc-execd", "cat", "/tmp/marker",
                                 check=False).stdout == "done\n", what="the detached command")
        assert "noise" not in d.cli("logs", "lc-execd").stdout
        refused_res = d.cli("exec", "-d", "nosuch", "true", check=False)
        assert refused_res.returncode != 0 and "nosuch" in refused_res.stderr
    finally:
        d.cli("rm", "-f", "lc-execd")


def test_dotted_hostname_label_file_and_expose(daemon: Daemon, tmp_path: Path) -> None:
    labels = tmp_path / "labels"
    labels.write_text("# ours\ntier=web\nbare\n")
    name = "lc-fqdn"
    try:
        res = daemon.cli("run", "--name", name, "-h", "web.example.com", "--label-file",
                         str(labels), "--expose", "8080", "--expose", "53/udp", "busybox",
                         "sh", "-c", "hostname; grep web /etc/hosts")
        assert res.stdout == "web.example.com\n127.0.1.1\tweb.example.com web\n"
        box = daemon.inspect(name)
        assert box["labels"] == {"tier": "web", "bare": ""}
        assert box["config"]["exposed_ports"] == ["8080/tcp", "53/udp"]
        refused(daemon.cli("run", "--rm", "-h", "web..example", "busybox", "true",
                           check=False), "invalid hostname")
    finally:
        daemon.cli("rm", "-f", name, check=False)


def test_cidfile(daemon: Daemon, tmp_path: Path) -> None:
    """docker's --cidfile: the id is written for run (attached or not) and create; a file
    that is there is refused; a create that fails leaves no file behind."""
    attached, detached, created = (tmp_path / n for n in ("attached", "detached", "created"))
    names = ["cid-attached", "cid-detached", "cid-created"]
    try:
        daemon.cli("run", "--name", names[0], "--cidfile", str(attached), "busybox", "true")
        daemon.cli("run", "-d", "--name", names[1], "--cidfile", str(detached), "busybox",
                   "sleep", "60")
        out = daemon.cli("create", "--name", names[2], "--cidfile", str(created), "busybox")
        for path, name in zip((attached, detached, created), names, strict=True):
            assert path.read_text() == daemon.inspect(name)["id"]
        assert created.read_text() == out.stdout.strip()
        refused(daemon.cli("run", "--rm", "--cidfile", str(attached), "busybox", "true",
                           check=False), "exists")
        failed = tmp_path / "failed"
        refused(daemon.cli("run", "--rm", "--pull", "never", "--cidfile", str(failed),
                           "no-such-image-here", "true", check=False), "no such image")
        assert not failed.exists()
        refused(daemon.cli("create", "--cidfile", str(tmp_path / "no" / "dir"), "busybox",
                           check=False), "cannot write the container ID file")
    finally:
        daemon.cli("rm", "-f", *names, check=False)


def test_monitors_keep_none_of_berthds_environment(daemon: Daemon) -> None:
    """conmon lives as long as its container: it holds PATH and a locale, not berthd's
    environment (which may carry a store URL's password)."""
    d = daemon
    d.cli("run", "-d", "--name", "env-probe", "busybox", "sleep", "600")
    try:
        cid = d.inspect("env-probe")["id"]
        monitor = int((d.run_root / "containers" / cid / "conmon.pid").read_text())
        environ = Path(f"/proc/{monitor}/environ").read_bytes().split(b"\0")
        assert {e.split(b"=", 1)[0] for e in environ if e} == {b"PATH", b"LANG", b"_OCI_SYNCPIPE"}
        # what the container sees is its own, as ever
        env = d.cli("exec", "env-probe", "env").stdout.split()
        assert "HOSTNAME=" + cid[:12] in env and not [e for e in env if e.startswith("LANG=")]
    finally:
        d.cli("rm", "-f", "env-probe")

"""The tenancy commands end to end: root (the admin on the unix socket) makes projects, users
and tokens; then each user acts with its own token, and is held to its project and role."""

from __future__ import annotations

import json
import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests.integration.daemon import BIN, Daemon, refused

pytestmark = pytest.mark.integration


@dataclass
class Team:
    daemon: Daemon
    ann: str  # member of alpha
    rita: str  # reader in alpha
    config: Path  # BERTH_CONFIG for these tests

    def berth(self, *args: str, token: str | None = None, env: dict[str, str] | None = None,
              input: str | None = None) -> subprocess.CompletedProcess[str]:
        """`berth` with nothing from this shell's BERTH_* but the daemon's socket."""
        base = {k: v for k, v in os.environ.items() if not k.startswith("BERTH_")}
        base.update(BERTH_HOST=self.daemon.host, BERTH_CONFIG=str(self.config))
        line = [str(BIN / "berth"), *(["--token", token] if token else []), *args]
        return subprocess.run(line, env={**base, **(env or {})}, capture_output=True,
                              text=True, timeout=120, input=input)

    def ok(self, *args: str, **kw: object) -> str:
        res = self.berth(*args, **kw)  # type: ignore[arg-type]
        assert res.returncode == 0, f"berth {' '.join(args)}: {res.stderr}"
        return res.stdout


@pytest.fixture(scope="module")
def team(daemon: Daemon) -> Team:
    """As root on the unix socket (the admin): two projects, three users, two tokens."""
    t = Team(daemon, "", "", daemon.root.parent / "berth-config.json")
    for project in ("alpha", "beta"):
        assert t.ok("project", "create", project) == f"{project}\n"
    for user in ("ann", "rita", "bob"):
        t.ok("user", "create", user)
    t.ok("project", "member", "set", "alpha", "ann", "member")
    t.ok("project", "member", "set", "alpha", "rita", "reader")
    t.ok("project", "member", "set", "beta", "bob", "admin")
    t.ann = t.ok("--project", "alpha", "token", "create", "--user", "ann", "ann-cli").strip()
    t.rita = t.ok("--project", "alpha", "token", "create", "--user", "rita", "rita").strip()
    # busybox into alpha: images are the project's own.
    archive = daemon.root.parent / "busybox.tar"
    daemon.cli("save", "-o", str(archive), "busybox")
    t.ok("load", "-q", "-i", str(archive), token=t.ann)
    return t


def test_member_creates_a_container_in_its_project(team: Team) -> None:
    box = team.ok("create", "--name", "ann-box", "busybox", "true", token=team.ann).strip()
    try:
        mine = json.loads(team.ok("ps", "-a", "-o", "json", token=team.ann))
        assert [c["name"] for c in mine] == ["ann-box"]
        # Not in the admin's default project.
        default = json.loads(team.daemon.cli("ps", "-a", "-o", "json").stdout)
        assert box not in {c["id"] for c in default}
        me = json.loads(team.ok("whoami", "-o", "json", token=team.ann))
        assert (me["user"], me["project"], me["role"]) == ("ann", "alpha", "member")
    finally:
        team.berth("rm", "-f", "ann-box", token=team.ann)


def test_a_project_one_is_not_in_is_an_error(team: Team) -> None:
    refused(team.berth("--project", "beta", "ps", token=team.ann), "no such project: beta")
    refused(team.berth("ps", token=team.ann, env={"BERTH_PROJECT": "beta"}), "no such project")
    res = team.berth("project", "inspect", "beta", token=team.ann)  # docker's inspect: 1, []
    assert (res.returncode, res.stdout, res.stderr) == (1, "[]\n", "berth: no such project: beta\n")


def test_reader_reads_but_cannot_create(team: Team) -> None:
    assert json.loads(team.ok("ps", "-a", "-o", "json", token=team.rita)) == []
    refused(team.berth("create", "busybox", "true", token=team.rita), "reader")
    refused(team.berth("volume", "create", "v", token=team.rita), "reader")


def test_token_is_shown_once_and_revoked_is_401(team: Team) -> None:
    res = team.berth("token", "create", "short-lived", token=team.ann)
    assert res.returncode == 0, res.stderr
    secret = res.stdout.strip()
    assert secret.startswith("berth_") and res.stdout.count("\n") == 1
    assert "shown only now" in res.stderr
    listed = team.ok("token", "ls", "-o", "json", token=team.ann)
    assert secret not in listed and secret not in team.ok("token", "ls", token=team.ann)
    token_id = next(t["id"] for t in json.loads(listed) if t["name"] == "short-lived")
    assert json.loads(team.ok("whoami", "-o", "json", token=secret))["user"] == "ann"
    assert team.ok("token", "revoke", token_id, token=team.ann) == f"{token_id}\n"
    refused(team.berth("whoami", token=secret), "invalid, expired or revoked token")
    states = {t["id"]: t["revoked"] for t in json.loads(
        team.ok("token", "ls", "-o", "json", token=team.ann))}
    assert states[token_id] is True


def test_someone_elses_token_cannot_be_revoked(team: Team) -> None:
    rita_tokens = json.loads(team.ok("token", "ls", "-o", "json", token=team.rita))
    res = team.berth("token", "revoke", rita_tokens[0]["id"], token=team.ann)
    assert res.returncode == 1 and "no such token" in res.stderr
    assert team.ok("whoami", token=team.rita)


def test_expired_token_is_refused(team: Team) -> None:
    res = team.berth("token", "create", "--expires-in", "2s", "brief", "-o", "json",
                     token=team.ann)
    made = json.loads(res.stdout)
    assert made["expires_at"] - made["created_at"] == pytest.approx(2, abs=0.5)
    time.sleep(max(0.0, made["expires_at"] - time.time()) + 0.3)
    refused(team.berth("whoami", token=made["token"]), "invalid, expired or revoked token")
    refused(team.berth("token", "create", "--expires-in", "soon", "x", token=team.ann),
            "invalid duration")


def test_unknown_token_and_no_token(team: Team) -> None:
    refused(team.berth("ps", token="berth_0123456789abcdef_" + "A" * 43),
            "invalid, expired or revoked token")
    refused(team.berth("ps", token="nonsense"), "malformed token")


def test_environment_and_contexts(team: Team, tmp_path: Path) -> None:
    me = json.loads(team.ok("whoami", "-o", "json", env={"BERTH_TOKEN": team.ann}))
    assert me["user"] == "ann"
    cfg = {"BERTH_CONFIG": str(tmp_path / "config.json")}
    team.ok("context", "create", "ann", "--host", team.daemon.host, "--token-stdin",
            "--project", "alpha", env=cfg, input=team.ann + "\n")
    team.ok("context", "create", "rita", "--host", team.daemon.host, "--token", team.rita,
            env=cfg)
    listing = team.ok("context", "ls", env=cfg) + team.ok("context", "inspect", "ann", env=cfg)
    assert team.ann not in listing and team.rita not in listing
    assert json.loads(team.ok("--context", "rita", "whoami", "-o", "json", env=cfg))[
        "user"] == "rita"
    team.ok("context", "use", "ann", env=cfg)
    assert json.loads(team.ok("whoami", "-o", "json", env=cfg))["user"] == "ann"
    # A flag still beats the context; BERTH_CONTEXT picks another one.
    assert json.loads(team.ok("whoami", "-o", "json", token=team.rita, env=cfg))["user"] == \
        "rita"
    assert json.loads(team.ok("whoami", "-o", "json", env={**cfg, "BERTH_CONTEXT": "rita"}))[
        "user"] == "rita"


def test_admin_manages_projects_users_and_grants(team: Team) -> None:
    team.ok("project", "create", "gamma")
    out = team.ok("project", "grant", "gamma", "privileged", "devices")
    assert out == "gamma: devices, privileged\n"
    team.ok("project", "ungrant", "gamma", "devices")
    assert json.loads(team.ok("project", "inspect", "gamma", "-o", "json"))["grants"] == [
        "privileged"]
    refused(team.berth("project", "grant", "gamma", "nonsense"), "unknown grant")
    team.ok("user", "create", "--admin", "root2")
    everyone = json.loads(team.ok("user", "ls", "--all-projects", "-o", "json"))
    assert {"ann", "rita", "bob", "root2"} <= {u["name"] for u in everyone}
    assert next(u for u in everyone if u["name"] == "root2")["is_admin"] is True
    team.ok("project", "member", "set", "gamma", "ann", "reader")
    members = json.loads(team.ok("project", "member", "ls", "gamma", "-o", "json"))
    assert members == [{"user": "ann", "role": "reader"}]
    team.ok("project", "member", "rm", "gamma", "ann")
    assert team.ok("project", "rm", "gamma") == "gamma\n"
    assert "gamma" not in team.ok("project", "ls", "-q").split()
    # Not for members.
    refused(team.berth("project", "create", "delta", token=team.ann), "admins")
    refused(team.berth("user", "create", "eve", token=team.ann), "admins")


@pytest.mark.parametrize("command", [
    ["project", "ls"], ["project", "inspect", "alpha"], ["project", "member", "ls", "alpha"],
    ["user", "ls"], ["token", "ls"], ["whoami"], ["quota"], ["context", "ls"],
    ["context", "inspect"],
])
def test_every_command_speaks_table_json_and_yaml(team: Team, command: list[str]) -> None:
    res = team.berth(*command, "-o", "json", token=team.ann)
    assert res.returncode == 0, res.stderr
    as_json = json.loads(res.stdout)
    assert yaml.safe_load(team.ok(*command, "-o", "yaml", token=team.ann)) == as_json
    table = team.ok(*command, token=team.ann)
    assert table.strip() and team.ann not in table


def test_quota_set_and_show(team: Team) -> None:
    res = team.berth("--project", "beta", "quota", "set", "containers=7", "memory=1g")
    assert res.returncode == 0, res.stderr
    table = team.ok("--project", "beta", "quota")
    rows = {line.split()[0]: line.split() for line in table.splitlines()[1:]}
    assert rows["containers"][-1] == "7" and rows["memory"][-1] in ("1.07GB", "1GB")
    shown = json.loads(team.ok("--project", "beta", "quota", "-o", "json"))
    assert shown["containers"]["limit"] == 7 and shown["memory"]["limit"] == 1 << 30
    refused(team.berth("quota", "set", "containers=1", token=team.ann), "admins")
    refused(team.berth("quota", "set", "containers"), "RESOURCE=LIMIT")

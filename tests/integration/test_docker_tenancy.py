"""The Docker API per project: a token in the docker CLI's HttpHeaders (or docker-py's headers)
picks the user and project; another project's objects do not exist for it; without
credentials (root-as-admin turned off) nothing is answered but the version handshake."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from berth.client import Client
from tests.integration.conftest import _finish, _require_host
from tests.integration.daemon import Daemon, make_dirs
from tests.integration.dockertools import docker, dockerpy

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def strict() -> Iterator[Daemon]:
    """A berthd where root on the socket is nobody special: every call needs a token."""
    _require_host()
    root, run = make_dirs()
    d = Daemon(root, run, args=["--no-local-root-admin"])
    d.start()
    try:
        yield d
    finally:
        d.args.clear()  # the teardown's clean-up runs as the local admin again
        d.stop()
        d.start()
        _finish(d)


def _member(d: Daemon, project: str) -> str:
    """A project with busybox, a member user in it, and that user's token."""
    token = (d.root / "admin-token").read_text().strip()
    admin = Client(d.host, token=token)
    admin.projects.create(project)
    in_project = Client(d.host, token=token, project=project)
    in_project.images.build_base("busybox")
    admin.users.create(f"{project}-user")
    admin.projects.set_member(project, f"{project}-user", "member")
    return in_project.tokens.create("docker", user=f"{project}-user")["token"]


def _config(tmp: Path, token: str) -> Path:
    """A docker CLI config dir whose HttpHeaders carry the token on every request."""
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "config.json").write_text(json.dumps(
        {"HttpHeaders": {"Authorization": f"Bearer {token}"}}))
    return tmp


def test_without_credentials_only_the_handshake_answers(strict: Daemon) -> None:
    res = docker(strict, "ps", check=False)
    assert res.returncode != 0
    assert "authentication required" in res.stderr
    assert docker(strict, "version", "--format", "{{.Server.APIVersion}}").stdout.strip() \
        == "1.41"


def test_a_token_acts_in_its_project_only(strict: Daemon, tmp_path: Path) -> None:
    alpha = _config(tmp_path / "alpha", _member(strict, "dk-alpha"))
    beta = _config(tmp_path / "beta", _member(strict, "dk-beta"))
    cid = docker(strict, "run", "-d", "--name", "mine", "busybox", "sleep", "300",
                 config=alpha).stdout.strip()
    try:
        assert docker(strict, "ps", "-q", "--no-trunc", config=alpha).stdout.split() == [cid]
        assert docker(strict, "ps", "-aq", config=beta).stdout.strip() == ""
        # Another project's container is a 404 by name, id and id prefix, like one that
        # never existed; and the same name is free in the other project.
        for ref in ("mine", cid, cid[:12]):
            res = docker(strict, "inspect", ref, config=beta, check=False)
            assert res.returncode != 0 and "No such" in res.stderr, res.stderr
            # (the CLI's rm -f exits 0 on "no such container", as against dockerd)
            gone = docker(strict, "rm", "-f", ref, config=beta, check=False)
            assert "No such container" in gone.stderr, gone.stderr
        other = docker(strict, "run", "-d", "--name", "mine", "busybox", "sleep", "300",
                       config=beta).stdout.strip()
        assert other != cid
        docker(strict, "rm", "-f", other, config=beta)
        # docker-py with the token in its headers sees the same
        client = dockerpy(strict)
        client.api.headers["Authorization"] = "Bearer " + json.loads(
            (beta / "config.json").read_text())["HttpHeaders"]["Authorization"][7:]
        assert client.containers.list(all=True) == []
        client.close()
    finally:
        docker(strict, "rm", "-f", cid, config=alpha, check=False)


def test_a_bad_token_is_refused(strict: Daemon, tmp_path: Path) -> None:
    bad = _config(tmp_path / "bad", "berth_nope_nope")
    res = docker(strict, "ps", config=bad, check=False)
    assert res.returncode != 0
    assert "token" in res.stderr.lower(), res.stderr

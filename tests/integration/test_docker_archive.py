"""A container's files through the Docker API: `docker cp` both ways (running and stopped
containers, volumes, stdin/stdout tars, symlinks), docker-py's put/get_archive, `docker export`,
`docker diff`, and hostile archives and paths that must never reach the host's files."""

from __future__ import annotations

import base64
import io
import json
import os
import secrets
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.daemon import Daemon
from tests.integration.dockertools import docker, docker_cli, docker_env, dockerpy

pytestmark = pytest.mark.integration


def dockerb(d: Daemon, *args: str, input: bytes | None = None,
            check: bool = True) -> subprocess.CompletedProcess[bytes]:
    """The docker CLI with binary stdin/stdout (tars)."""
    res = subprocess.run([docker_cli(), *args], env=docker_env(d), input=input,
                         capture_output=True, timeout=120)
    if check and res.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} -> {res.returncode}\n"
                             f"stderr: {res.stderr.decode(errors='replace')}")
    return res


def sh(d: Daemon, name: str, script: str) -> str:
    """Run a shell script in a running container (the native CLI's exec)."""
    return d.cli("exec", name, "sh", "-c", script).stdout


@pytest.fixture
def running(daemon: Daemon) -> Iterator[str]:
    name = f"cp-run-{secrets.token_hex(3)}"
    docker(daemon, "run", "-d", "--name", name, "busybox", "sleep", "300")
    yield name
    docker(daemon, "rm", "-f", name, check=False)


@pytest.fixture
def stopped(daemon: Daemon) -> Iterator[str]:
    """A container that ran (it wrote /ran) and exited."""
    name = f"cp-stop-{secrets.token_hex(3)}"
    docker(daemon, "run", "--name", name, "busybox", "sh", "-c", "echo was here > /ran")
    yield name
    docker(daemon, "rm", "-f", name, check=False)


def make_tar(entries: list[tuple[str, bytes | None, dict]]) -> bytes:
    """(name, data or None for a dir, extra TarInfo fields) -> a tar."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, data, extra in entries:
            info = tarfile.TarInfo(name)
            info.mode = 0o755 if data is None else 0o644
            info.type = tarfile.DIRTYPE if data is None else tarfile.REGTYPE
            for key, value in extra.items():
                setattr(info, key, value)
            if info.type == tarfile.REGTYPE and data is not None:
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
            else:
                tf.addfile(info)
    return buf.getvalue()


def tar_members(data: bytes) -> dict[str, tuple[tarfile.TarInfo, bytes | None]]:
    out = {}
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tf:
        for m in tf:
            content = tf.extractfile(m).read() if m.isreg() else None  # type: ignore[union-attr]
            out[m.name.rstrip("/")] = (m, content)
    return out


# -- docker cp host -> container -------------------------------------------------------------

def test_cp_file_and_directory_into_a_running_container(daemon: Daemon, running: str,
                                                        tmp_path: Path) -> None:
    src = tmp_path / "hello.txt"
    src.write_text("hello from the host\n")
    docker(daemon, "cp", str(src), f"{running}:/tmp/")
    docker(daemon, "cp", str(src), f"{running}:/renamed.txt")
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "sub" / "deep.txt").write_text("deep\n")
    (tree / "top.txt").write_text("top\n")
    os.symlink("sub/deep.txt", tree / "link")
    docker(daemon, "cp", str(tree), f"{running}:/opt")  # /opt missing: becomes the copy
    docker(daemon, "cp", str(tree), f"{running}:/etc")  # an existing dir: lands inside
    out = sh(daemon, running, "cat /tmp/hello.txt /renamed.txt /opt/top.txt /opt/sub/deep.txt "
             "/etc/tree/top.txt; readlink /opt/link; cat /opt/link; stat -c '%u:%g' "
             "/tmp/hello.txt /opt/sub/deep.txt")
    assert out.splitlines() == ["hello from the host", "hello from the host", "top", "deep",
                                "top", "sub/deep.txt", "deep", "0:0", "0:0"]


def test_cp_into_a_stopped_container_then_start_it(daemon: Daemon, stopped: str,
                                                   tmp_path: Path) -> None:
    src = tmp_path / "cfg"
    src.write_text("copied while stopped\n")
    docker(daemon, "cp", str(src), f"{stopped}:/etc/cfg")
    assert docker(daemon, "start", "-a", stopped).returncode == 0  # it still runs
    out = docker(daemon, "cp", f"{stopped}:/etc/cfg", "-")
    assert "copied while stopped" in out.stdout


def test_cp_into_a_created_container(daemon: Daemon, tmp_path: Path) -> None:
    """docker create; docker cp; docker start (as testcontainers does)."""
    name = f"cp-new-{secrets.token_hex(3)}"
    docker(daemon, "create", "--name", name, "busybox", "cat", "/app/msg")
    try:
        (tmp_path / "msg").write_text("put before the first start\n")
        docker(daemon, "cp", str(tmp_path / "msg"), f"{name}:/tmp/")
        docker(daemon, "exec", name, "true", check=False)  # not running: refused, no matter
        tar = make_tar([("app", None, {}), ("app/msg", b"from a tar\n", {})])
        dockerb(daemon, "cp", "-", f"{name}:/", input=tar)
        docker(daemon, "start", "-a", name)
        logs = docker(daemon, "logs", name).stdout
        assert logs == "from a tar\n"
        assert b"put before the first start" in dockerb(daemon, "cp", f"{name}:/tmp/msg",
                                                        "-").stdout
    finally:
        docker(daemon, "rm", "-f", name, check=False)


def test_cp_into_a_volume_of_a_running_container(daemon: Daemon, tmp_path: Path) -> None:
    name, vol = f"cp-vol-{secrets.token_hex(3)}", f"cpvol-{secrets.token_hex(3)}"
    docker(daemon, "run", "-d", "--name", name, "-v", f"{vol}:/data", "busybox", "sleep", "300")
    try:
        (tmp_path / "in-volume").write_text("kept by the volume\n")
        docker(daemon, "cp", str(tmp_path / "in-volume"), f"{name}:/data/")
        docker(daemon, "rm", "-f", name)
        # A new container on the same volume sees the file: it went to the volume.
        out = docker(daemon, "run", "--rm", "-v", f"{vol}:/v", "busybox", "cat",
                     "/v/in-volume").stdout
        assert out == "kept by the volume\n"
    finally:
        docker(daemon, "rm", "-f", name, check=False)
        docker(daemon, "volume", "rm", vol, check=False)


def test_cp_from_stdin_tar(daemon: Daemon, running: str) -> None:
    tar = make_tar([("dir", None, {}), ("dir/a.txt", b"A\n", {"uid": 1234, "gid": 4321})])
    dockerb(daemon, "cp", "-", f"{running}:/tmp", input=tar)
    assert sh(daemon, running, "cat /tmp/dir/a.txt; stat -c %u:%g /tmp/dir/a.txt") == \
        "A\n0:0\n"
    sh(daemon, running, "mkdir /srv")
    dockerb(daemon, "cp", "-a", "-", f"{running}:/srv", input=tar)
    assert sh(daemon, running, "stat -c %u:%g /srv/dir/a.txt") == "1234:4321\n"


def test_cp_into_missing_or_non_directory_targets(daemon: Daemon, running: str,
                                                  tmp_path: Path) -> None:
    tar = make_tar([("x", b"x", {})])
    api = dockerpy(daemon).api
    import docker as docker_sdk

    with pytest.raises(docker_sdk.errors.NotFound) as e:
        api.put_archive(running, "/no/such/dir", tar)
    assert "Could not find the file /no/such/dir" in e.value.explanation
    with pytest.raises(docker_sdk.errors.APIError) as e2:
        api.put_archive(running, "/etc/passwd", tar)
    assert e2.value.status_code == 400 and "not a directory" in e2.value.explanation
    with pytest.raises(docker_sdk.errors.NotFound):
        api.put_archive("no-such-container", "/tmp", tar)
    res = docker(daemon, "cp", "-", f"{running}:/tmp", check=False, input="not a tar at all")
    assert res.returncode != 0


# -- docker cp container -> host -------------------------------------------------------------

@pytest.mark.parametrize("state", ["running", "stopped"])
def test_cp_out_of_a_container(daemon: Daemon, state: str, request: pytest.FixtureRequest,
                               tmp_path: Path) -> None:
    name = request.getfixturevalue(state)
    docker(daemon, "cp", f"{name}:/etc/passwd", str(tmp_path / "passwd"))
    assert (tmp_path / "passwd").read_text().startswith("root:")
    docker(daemon, "cp", f"{name}:/etc", str(tmp_path / "etc"))
    assert (tmp_path / "etc" / "passwd").is_file() and (tmp_path / "etc" / "group").is_file()
    out = dockerb(daemon, "cp", f"{name}:/bin/sh", "-").stdout
    members = tar_members(out)
    assert list(members) == ["sh"] and members["sh"][0].issym() or \
        members["sh"][0].islnk() or members["sh"][0].isreg()
    if state == "stopped":
        docker(daemon, "cp", f"{name}:/ran", str(tmp_path / "ran"))
        assert (tmp_path / "ran").read_text() == "was here\n"


def test_cp_symlinks_as_docker_does(daemon: Daemon, running: str, tmp_path: Path) -> None:
    sh(daemon, running, "mkdir -p /d && echo target > /d/t && ln -s /d/t /abs && "
       "ln -s d /dirlink")
    docker(daemon, "cp", f"{running}:/abs", str(tmp_path / "plain"))
    assert (tmp_path / "plain").is_symlink() and os.readlink(tmp_path / "plain") == "/d/t"
    docker(daemon, "cp", "-L", f"{running}:/abs", str(tmp_path / "followed"))
    assert not (tmp_path / "followed").is_symlink()
    assert (tmp_path / "followed").read_text() == "target\n"
    docker(daemon, "cp", f"{running}:/dirlink/.", str(tmp_path / "contents"))
    assert (tmp_path / "contents" / "t").read_text() == "target\n"


def test_cp_missing_path_is_a_404(daemon: Daemon, running: str, tmp_path: Path) -> None:
    res = docker(daemon, "cp", f"{running}:/no/such", str(tmp_path / "x"), check=False)
    # The CLI asks HEAD first; a 404 there is its "No such container:path".
    assert res.returncode != 0 and "No such container:path" in res.stderr
    import docker as docker_sdk

    with pytest.raises(docker_sdk.errors.NotFound) as e:
        dockerpy(daemon).api.get_archive(running, "/no/such")
    assert e.value.explanation == f"Could not find the file /no/such in container {running}"


# -- docker-py ---------------------------------------------------------------------------

def test_dockerpy_put_and_get_archive(daemon: Daemon, running: str) -> None:
    client = dockerpy(daemon)
    box = client.containers.get(running)
    data = b"#!/bin/sh\necho ok\n"
    tar = make_tar([("bin2", None, {"mode": 0o750}),
                    ("bin2/tool", data, {"mode": 0o4755, "mtime": 1_600_000_000})])
    assert box.put_archive("/usr", tar) is True
    chunks, stat = box.get_archive("/usr/bin2/tool")
    assert stat["name"] == "tool" and stat["size"] == len(data)
    assert stat["mode"] == 0o755 | (1 << 23)  # Go's os.ModeSetuid
    assert stat["mtime"].startswith("2020-09-13T12:26:40") and stat["linkTarget"] == ""
    members = tar_members(b"".join(chunks))
    assert members["tool"][1] == data and members["tool"][0].mode == 0o4755
    _chunks, dstat = box.get_archive("/usr/bin2")
    assert dstat["mode"] == 0o750 | (1 << 31)  # os.ModeDir
    got = tar_members(b"".join(_chunks))
    assert sorted(got) == ["bin2", "bin2/tool"]
    sh(daemon, running, "ln -s /usr/bin2/tool /toollink")
    _c, lstat = box.get_archive("/toollink")
    assert lstat["linkTarget"] == "/usr/bin2/tool" and lstat["mode"] & (1 << 27)
    head = client.api.head(client.api._url("/containers/{0}/archive", running),
                           params={"path": "/usr/bin2/tool"})
    assert head.status_code == 200
    assert json.loads(base64.b64decode(head.headers["X-Docker-Container-Path-Stat"])) == stat


# -- export and diff ---------------------------------------------------------------------------

def test_export_running_and_stopped(daemon: Daemon, running: str, stopped: str) -> None:
    for name in (running, stopped):
        out = dockerb(daemon, "export", name).stdout
        members = tar_members(out)
        assert "bin/busybox" in members
        busybox = members["bin/busybox"][0]
        assert (busybox.uid, busybox.gid) == (0, 0)  # as the container sees it
        assert not any(n.startswith(("proc/", "sys/")) for n in members)
    assert "ran" in tar_members(dockerb(daemon, "export", stopped).stdout)
    # `docker export c | tar t` lists it too.
    listing = subprocess.run(f"{docker_cli()} export {running} | tar t", shell=True,
                             env=docker_env(daemon), capture_output=True, text=True, check=True)
    assert "bin/busybox" in listing.stdout.split()


def test_diff(daemon: Daemon, running: str) -> None:
    sh(daemon, running, "touch /new; rm /etc/passwd; mkdir -p /made/deeper")
    lines = docker(daemon, "diff", running).stdout.splitlines()
    assert "A /new" in lines and "D /etc/passwd" in lines and "C /etc" in lines
    assert "A /made" in lines and "A /made/deeper" in lines
    assert not any(line.endswith(" /bin") for line in lines)
    fresh = f"cp-diff-{secrets.token_hex(3)}"
    docker(daemon, "create", "--name", fresh, "busybox")
    try:
        assert docker(daemon, "diff", fresh).stdout == ""
    finally:
        docker(daemon, "rm", fresh)


# -- hostile input ---------------------------------------------------------------------------

def _put(daemon: Daemon, name: str, path: str, tar: bytes) -> tuple[int, str]:
    api = dockerpy(daemon).api
    res = api._put(api._url("/containers/{0}/archive", name), params={"path": path}, data=tar)
    return res.status_code, res.text


def test_hostile_tars_are_refused_and_write_nothing(daemon: Daemon, running: str,
                                                    tmp_path: Path) -> None:
    host_victim = tmp_path / "victim"
    host_victim.write_text("host content\n")
    sh(daemon, running, f"mkdir -p {tmp_path} && ln -s {tmp_path} /hostdir && "
       "ln -s /etc /etclink")
    cases = {
        "dotdot": make_tar([("ok-1", b"x", {}), ("../../escape", b"x", {})]),
        "absolute": make_tar([("ok-2", b"x", {}), (f"{host_victim}", b"pwned", {})]),
        "through own symlink": make_tar([
            ("ok-3", b"x", {}), ("esc", None, {"type": tarfile.SYMTYPE, "linkname": str(tmp_path)}),
            ("esc/victim", b"pwned", {})]),
        "device": make_tar([("ok-4", b"x", {}),
                            ("null", None, {"type": tarfile.CHRTYPE, "devmajor": 1,
                                            "devminor": 3})]),
        "hard link out": make_tar([("ok-5", b"x", {}), ("hl", None, {
            "type": tarfile.LNKTYPE, "linkname": "../../etc/passwd"})]),
    }
    for what, tar in cases.items():
        status, text = _put(daemon, running, "/tmp", tar)
        assert status == 400, (what, status, text)
        assert "refused archive" in json.loads(text)["message"], (what, text)
    # Nothing was written, not even the entries before the hostile one.
    assert sh(daemon, running, "ls /tmp/ok-1 /tmp/ok-2 /tmp/ok-3 /tmp/ok-4 /tmp/ok-5 "
              "/tmp/esc /escape 2>&1 | grep -c 'No such file'") == "7\n"
    # A symlink already in the container, pointing at a host path: the tar writes through it
    # only inside the container (the host's file is untouched), or is refused.
    status, _ = _put(daemon, running, "/", make_tar([("hostdir/victim", b"pwned", {})]))
    assert status in (200, 400)
    status, _ = _put(daemon, running, "/hostdir", make_tar([("victim", b"pwned", {})]))
    assert status == 200  # resolved inside the container: its own /tmp/... dir
    assert host_victim.read_text() == "host content\n"
    assert sh(daemon, running, f"cat {tmp_path}/victim") == "pwned"
    status, _ = _put(daemon, running, "/etclink", make_tar([("hostname-copy", b"c", {})]))
    assert status == 200 and not Path("/etc/hostname-copy").exists()
    assert sh(daemon, running, "cat /etc/hostname-copy") == "c"


def test_get_never_reads_host_files(daemon: Daemon, running: str, tmp_path: Path) -> None:
    secret = tmp_path / f"host-only-{secrets.token_hex(4)}"
    secret.write_text("host secret\n")
    sh(daemon, running, f"ln -s {secret} /sneaky && ln -s {tmp_path} /sneakydir && "
       "ln -s ../../../../../../.. /up")
    docker(daemon, "cp", f"{running}:/sneaky", str(tmp_path / "copy"))
    assert os.readlink(tmp_path / "copy") == str(secret)  # the link itself, as data
    res = docker(daemon, "cp", "-L", f"{running}:/sneaky", str(tmp_path / "copy2"),
                 check=False)
    assert res.returncode != 0 and "No such container:path" in res.stderr  # not on host
    res = dockerb(daemon, "cp", f"{running}:/sneakydir/{secret.name}", "-", check=False)
    assert res.returncode != 0 and b"host secret" not in res.stdout
    out = dockerb(daemon, "cp", f"{running}:/up/etc/hostname", "-").stdout
    # "/up" climbs to the container's root, not the host's: its own /etc/hostname.
    assert tar_members(out)["hostname"][1] == sh(daemon, running, "cat /etc/hostname").encode()


def test_kernel_filesystems_are_never_read_or_written(daemon: Daemon, running: str) -> None:
    """/proc, /sys and cgroups in a running container are the kernel's: listed, never read
    (Berth reads as the host's root) and never written."""
    api = dockerpy(daemon).api
    chunks, _ = api.get_archive(running, "/proc")
    assert list(tar_members(b"".join(chunks))) == ["proc"]
    chunks, _ = api.get_archive(running, "/proc/1/")
    assert list(tar_members(b"".join(chunks))) == ["1"]
    chunks, stat = api.get_archive(running, "/proc/version")
    assert tar_members(b"".join(chunks))["version"][1] == b""
    status, text = _put(daemon, running, "/proc", make_tar([("x", b"x", {})]))
    assert status == 400 and "kernel filesystem" in text
    status, text = _put(daemon, running, "/", make_tar([("sys/fs/cgroup/evil", None, {})]))
    assert status == 400 and "kernel filesystem" in text


def test_native_api(daemon: Daemon, running: str) -> None:
    """The same operations on the native API (/v1/containers/{ref}/...)."""
    t = daemon.client.transport
    tar = make_tar([("native", None, {}), ("native/f", b"native\n", {"uid": 7, "gid": 8})])
    resp = t.open("PUT", f"/v1/containers/{running}/archive",
                  {"path": "/tmp", "copy_uid_gid": "true"}, raw=tar)
    assert resp.status == 204
    resp.read()
    assert sh(daemon, running, "cat /tmp/native/f; stat -c %u:%g /tmp/native/f") == \
        "native\n7:8\n"
    stat = t.call("GET", f"/v1/containers/{running}/stat", {"path": "/tmp/native/f"})
    assert stat["name"] == "f" and stat["size"] == 7
    resp = t.open("GET", f"/v1/containers/{running}/archive", {"path": "/tmp/native"})
    assert json.loads(base64.b64decode(resp.getheader("X-Berth-Path-Stat")))["name"] == \
        "native"
    assert tar_members(resp.read())["native/f"][1] == b"native\n"
    changes = t.call("GET", f"/v1/containers/{running}/changes")
    assert {"path": "/tmp/native/f", "kind": "added"} in changes
    resp = t.open("GET", f"/v1/containers/{running}/export")
    assert "tmp/native/f" in tar_members(resp.read())
    from berth.client import APIError

    with pytest.raises(APIError) as e:
        t.call("GET", f"/v1/containers/{running}/stat", {"path": "/nope"})
    assert e.value.status == 404


def test_no_overwrite_dir_non_dir_and_hostile_into_a_stopped_container(daemon: Daemon,
                                                                       stopped: str) -> None:
    api = dockerpy(daemon).api

    def put(tar: bytes, **params: str) -> tuple[int, str]:
        res = api._put(api._url("/containers/{0}/archive", stopped),
                       params={"path": "/", **params}, data=tar)
        return res.status_code, res.text

    status, text = put(make_tar([("etc", b"a file", {})]), noOverwriteDirNonDir="1")
    assert status == 400 and "cannot overwrite a directory with a non-directory" in text
    status, text = put(make_tar([("ran", None, {})]), noOverwriteDirNonDir="true")
    assert status == 400 and "cannot overwrite a non-directory with a directory" in text
    status, text = put(make_tar([("fine", b"ok", {}), ("../../../../outside", b"x", {})]))
    assert status == 400 and "refused archive" in text
    # Without noOverwriteDirNonDir a file replaces a file; the container still starts.
    status, _ = put(make_tar([("ran", b"replaced\n", {})]))
    assert status == 200
    assert dockerb(daemon, "cp", f"{stopped}:/ran", "-").stdout.count(b"replaced") == 1
    assert docker(daemon, "cp", f"{stopped}:/fine", "-", check=False).returncode != 0
    docker(daemon, "start", "-a", stopped)

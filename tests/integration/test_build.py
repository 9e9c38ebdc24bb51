"""Dockerfile builds through the native API / SDK: each instruction's effect checked in a
container run from the result."""

from __future__ import annotations

import io
import subprocess
import tarfile
from pathlib import Path
from typing import Any

import pytest

from berth.client import APIError
from tests.integration.daemon import BIN, Daemon

pytestmark = pytest.mark.integration


def write(ctx: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        p = ctx / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return ctx


def build(d: Daemon, ctx: Path, **kw: Any) -> tuple[str, str]:
    lines = list(d.client.builds.build(str(ctx), **kw))
    text = "".join(e.get("stream", "") for e in lines)
    assert lines[-1]["status"] == "done", lines[-1]
    return lines[-1]["id"], text


def run(d: Daemon, img: str, *cmd: str) -> str:
    return d.cli("run", "--rm", img, *cmd).stdout


def build_containers(d: Daemon) -> list[str]:
    out = d.cli("ps", "-a", "--output", "json").stdout
    return [line for line in out.splitlines() if "berth-build" in line]


def test_run_env_workdir_user_cmd(daemon: Daemon, tmp_path: Path) -> None:
    ctx = write(tmp_path, {"Dockerfile": (
        "FROM busybox\n"
        "ENV GREETING=hello\n"
        "WORKDIR /app/sub\n"
        "RUN echo \"$GREETING from run\" > made.txt && rm /bin/vi\n"
        "LABEL org.test=yes\n"
        "EXPOSE 8080/tcp\n"
        "VOLUME /data\n"
        "STOPSIGNAL SIGTERM\n"
        "USER nobody\n"
        "CMD [\"cat\", \"made.txt\"]\n")})
    image_id, text = build(daemon, ctx, tags=["built:one"])
    assert "Step 1/10 : FROM busybox" in text
    assert run(daemon, "built:one").strip() == "hello from run"
    assert run(daemon, "built:one", "pwd").strip() == "/app/sub"
    assert run(daemon, "built:one", "id", "-un").strip() == "nobody"
    # a file of the base removed in a RUN is absent (a whiteout in the layer)
    assert "gone" in run(daemon, "built:one", "sh", "-c", "test -e /bin/vi || echo gone")
    cfg = daemon.client.images.get("built:one")
    text_cfg = str(cfg)
    for want in ("org.test", "8080/tcp", "/data", "SIGTERM"):
        assert want in text_cfg, want
    assert build_containers(daemon) == []


def test_failing_run_names_line_and_leaves_nothing(daemon: Daemon, tmp_path: Path) -> None:
    ctx = write(tmp_path, {"Dockerfile": "FROM busybox\nRUN true\nRUN false\n"})
    with pytest.raises(APIError) as err:
        build(daemon, ctx, no_cache=True)
    assert "line 3" in err.value.message
    assert "The command '/bin/sh -c false' returned a non-zero code: 1" in err.value.message
    assert build_containers(daemon) == []


def test_cache_hit_and_miss(daemon: Daemon, tmp_path: Path) -> None:
    ctx = write(tmp_path, {"Dockerfile": "FROM busybox\nCOPY a.txt /a.txt\nRUN cat /a.txt\n",
                           "a.txt": "one\n"})
    first, text = build(daemon, ctx)
    again, text2 = build(daemon, ctx)
    assert again == first
    assert text2.count("Using cache") == 2
    (ctx / "a.txt").write_text("two\n")
    changed, text3 = build(daemon, ctx, tags=["cache:t"])
    assert changed != first and "Using cache" not in text3
    assert run(daemon, "cache:t", "cat", "/a.txt") == "two\n"
    _, text4 = build(daemon, ctx, no_cache=True)
    assert "Using cache" not in text4


def test_copy_chown_from_stage_target_args(daemon: Daemon, tmp_path: Path) -> None:
    ctx = write(tmp_path, {
        "Dockerfile": (
            "ARG BASE=busybox\n"
            "FROM $BASE AS first\n"
            "ARG WHO=default\n"
            "RUN echo $WHO > /who\n"
            "FROM busybox AS second\n"
            "COPY --from=first /who /copied/who\n"
            "COPY --chown=nobody:nogroup dir/ /dest/\n"
            "ADD archive.tar /unpacked/\n"
            "FROM busybox AS third\n"
            "RUN false\n"),
        "dir/f.txt": "in dir\n", "ignored.txt": "no\n", ".dockerignore": "ignored.txt\n"})
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        data = b"from the archive\n"
        info = tarfile.TarInfo("inner/x.txt")
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))
    (ctx / "archive.tar").write_bytes(buf.getvalue())
    build(daemon, ctx, tags=["multi:t"], target="second", build_args={"WHO": "arg-value"})
    assert run(daemon, "multi:t", "cat", "/copied/who") == "arg-value\n"
    assert run(daemon, "multi:t", "cat", "/dest/f.txt") == "in dir\n"
    assert run(daemon, "multi:t", "stat", "-c", "%U", "/dest/f.txt").strip() == "nobody"
    assert run(daemon, "multi:t", "cat", "/unpacked/inner/x.txt") == "from the archive\n"


def test_bad_input(daemon: Daemon, tmp_path: Path) -> None:
    cases = {
        "unknown": ("FROM busybox\nFROBNICATE x\n", "line 2"),
        "parent": ("FROM busybox\nCOPY ../x /x\n", "outside the build context"),
        "link": ("FROM busybox\nCOPY link/passwd /x\n", "outside the build context"),
        "stage": ("FROM busybox\nCOPY --from=nostage /x /x\n", "line 2"),
        "url": ("FROM busybox\nADD http://example.com/x /x\n", "network"),
    }
    for name, (dockerfile, words) in cases.items():
        ctx = tmp_path / name
        ctx.mkdir()
        write(ctx, {"Dockerfile": dockerfile})
        (ctx / "link").symlink_to("/etc")
        with pytest.raises(APIError) as err:
            build(daemon, ctx)
        assert words in err.value.message, (name, err.value.message)
        assert 400 <= err.value.status < 500, (name, err.value.status)


def test_cli_build(daemon: Daemon, tmp_path: Path) -> None:
    ctx = write(tmp_path, {"Dockerfile": "FROM busybox\nARG V=dflt\nRUN echo $V > /v\n"})
    res = daemon.cli("build", "-t", "clibuilt:1", str(ctx))
    assert "Step 3/3 : RUN echo $V > /v" in res.stdout
    assert "Successfully tagged clibuilt:1" in res.stdout
    assert run(daemon, "clibuilt:1", "cat", "/v") == "dflt\n"
    daemon.cli("build", "-t", "clibuilt:2", "--build-arg", "V=given", str(ctx))
    assert run(daemon, "clibuilt:2", "cat", "/v") == "given\n"
    (ctx / "Dockerfile").write_text("FROM busybox\nRUN exit 3\n")
    bad = daemon.cli("build", str(ctx), check=False)
    assert bad.returncode != 0
    assert "line 2" in bad.stderr and "returned a non-zero code: 3" in bad.stderr
    assert build_containers(daemon) == []


def test_cli_build_dockerfile_and_context_from_stdin(daemon: Daemon, tmp_path: Path) -> None:
    """docker build's -f - (the Dockerfile from stdin), - (stdin: a Dockerfile alone, or a
    context archive) and -f outside the context. The Dockerfile sent along never shows in
    COPY, and the context's own .dockerignore still holds."""
    d = daemon
    ctx = write(tmp_path / "ctx", {"data.txt": "data\n", "secret.txt": "no\n",
                                   ".dockerignore": "secret.txt\n"})
    copy_all = "FROM busybox\nCOPY . /ctx/\nCMD ls -A /ctx\n"
    d.cli("build", "-t", "from-stdin", "-f", "-", str(ctx), input=copy_all.encode())
    assert run(d, "from-stdin").split() == [".dockerignore", "data.txt"]
    outside = write(tmp_path, {"Other.Dockerfile": copy_all}) / "Other.Dockerfile"
    d.cli("build", "-t", "outside", "-f", str(outside), str(ctx))
    assert run(d, "outside").split() == [".dockerignore", "data.txt"]
    d.cli("build", "-t", "alone", "-", input=b"FROM busybox\nRUN echo alone > /a\n")
    assert run(d, "alone", "cat", "/a") == "alone\n"
    (ctx / "Dockerfile").write_text("FROM busybox\nCOPY data.txt /d\n")
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w:gz") as tf:
        tf.add(ctx / "data.txt", "data.txt")
        tf.add(ctx / "Dockerfile", "Dockerfile")
    subprocess.run([str(BIN / "berth"), "build", "-t", "archive", "-"], env=d.env,
                   input=archive.getvalue(), capture_output=True, check=True)
    assert run(d, "archive", "cat", "/d") == "data\n"
    res = d.cli("build", "-f", "-", "-", input=b"FROM busybox\n", check=False)
    assert res.returncode == 125 and "stdin cannot hold both" in res.stderr


def test_shell_entrypoint_healthcheck_onbuild_copy_from_image(daemon: Daemon,
                                                            tmp_path: Path) -> None:
    parent = write(tmp_path / "parent", {"Dockerfile": (
        "FROM busybox\n"
        "ONBUILD RUN echo triggered > /onbuild\n"
        "HEALTHCHECK --interval=5s --timeout=2s --retries=4 CMD test -f /onbuild\n"
        "SHELL [\"/bin/sh\", \"-e\", \"-c\"]\n"
        "ENTRYPOINT [\"/bin/echo\", \"entry:\"]\n")})
    build(daemon, parent, tags=["parent:1"])
    cfg = daemon.client.images.get("parent:1")["config"]
    assert cfg["OnBuild"] == ["RUN echo triggered > /onbuild"]
    assert cfg["Healthcheck"]["Test"] == ["CMD-SHELL", "test -f /onbuild"]
    assert cfg["Healthcheck"]["Interval"] == 5_000_000_000
    assert cfg["Healthcheck"]["Retries"] == 4
    assert cfg["Shell"] == ["/bin/sh", "-e", "-c"]
    assert run(daemon, "parent:1", "hi") == "entry: hi\n"
    assert not (tmp_path / "parent" / "onbuild").exists()

    child = write(tmp_path / "child", {
        "Dockerfile": ("FROM parent:1\n"
                       "COPY --from=parent:1 /bin/busybox /copied-busybox\n"
                       "COPY . /ctx/\n"
                       "RUN rm /etc/group\n"
                       "ENTRYPOINT []\n"),
        "kept.txt": "k\n", "skip.log": "no\n", "sub/also.log": "no\n",
        ".dockerignore": "*.log\n**/*.log\nDockerfile\n"})
    _, text = build(daemon, child, tags=["child:1"])
    assert "Executing 1 build trigger" in text
    assert run(daemon, "child:1", "cat", "/onbuild") == "triggered\n"
    assert run(daemon, "child:1", "ls", "-a", "/ctx").split() == \
        [".", "..", ".dockerignore", "kept.txt", "sub"]
    assert run(daemon, "child:1", "ls", "/ctx/sub") == ""
    assert run(daemon, "child:1", "sh", "-c", "test -x /copied-busybox && echo ok") == "ok\n"
    # the deleted file is a whiteout in the RUN layer: gone in the image
    assert run(daemon, "child:1", "sh", "-c", "test -e /etc/group || echo gone") == "gone\n"
    # triggers run once: the child does not carry them on
    assert not daemon.client.images.get("child:1")["config"].get("OnBuild")


def test_from_scratch_from_digest_and_cache_per_project(daemon: Daemon, tmp_path: Path) -> None:
    from berth.client import Client

    digest = daemon.client.images.get("busybox")["manifest_digest"]
    ctx = write(tmp_path / "a", {"Dockerfile": f"FROM busybox@{digest}\nRUN echo d > /d\n",
                                 "only.txt": "alone\n"})
    first, _ = build(daemon, ctx, tags=["bydigest:1"])
    assert run(daemon, "bydigest:1", "cat", "/d") == "d\n"
    scratch = write(tmp_path / "s", {"Dockerfile": "FROM scratch\nCOPY only.txt /\n",
                                     "only.txt": "alone\n"})
    build(daemon, scratch, tags=["fromscratch:1"])
    img = daemon.client.images.get("fromscratch:1")
    assert len(img["layers"]) == 1
    # another project builds the same Dockerfile: its own cache, nothing of ours reused
    daemon.client.projects.create("other-builds")
    other = Client(daemon.host, project="other-builds")
    other.images.build_base("busybox")
    lines = list(other.builds.build(str(ctx)))
    assert lines[-1]["status"] == "done"
    assert not any("Using cache" in e.get("stream", "") for e in lines)
    again = list(other.builds.build(str(ctx)))
    assert any("Using cache" in e.get("stream", "") for e in again)
    for cid in [c["id"] for c in other.containers.list(all=True)]:
        other.containers.remove(cid, force=True)

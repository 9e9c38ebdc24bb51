"""Interactive sessions through a real pseudo-terminal: `run -it`, detach keys, `exec -it`,
`exec -i` with piped stdin, and a non-interactive exec's streams and exit code."""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.daemon import BIN, Daemon, refused
from tests.integration.terminal import Terminal

pytestmark = pytest.mark.integration

PROMPT_TIMEOUT = 10.0


def PtySession(daemon: Daemon, *args: str) -> Terminal:  # noqa: N802
    """`berth ARGS` on a terminal."""
    return Terminal([str(BIN / "berth"), *args], daemon.env, timeout=PROMPT_TIMEOUT)


@contextlib.contextmanager
def pty_session(daemon: Daemon, *args: str) -> Iterator[Terminal]:
    session = PtySession(daemon, *args)
    try:
        yield session
    finally:
        session.close()


def _status(daemon: Daemon, name: str) -> str:
    return daemon.inspect(name)["state"]["status"]


def _running(daemon: Daemon, name: str) -> dict[str, Any] | None:
    info = daemon.inspect(name)
    return info if info["state"]["status"] == "running" else None


BANNER = b"built-in commands."  # the last line busybox sh prints before its first prompt


def test_run_it_shows_the_prompt(daemon: Daemon) -> None:
    """The prompt has no newline after it: it must still reach the terminal at once."""
    name = "it-prompt"
    try:
        with pty_session(daemon, "run", "-it", "--name", name, "busybox", "sh") as s:
            s.read_until(BANNER)
            s.read_until(b"/ # ", timeout=10)
    finally:
        daemon.cli("rm", "-f", name, check=False)


def test_run_it_shell_through_a_pty(daemon: Daemon) -> None:
    name = "it-shell"
    try:
        with pty_session(daemon, "run", "-it", "--name", name, "busybox", "sh") as s:
            s.read_until(BANNER)
            s.send(b"echo $((6*7))\r")
            s.read_until(b"42")
            assert daemon.inspect(name)["config"]["tty"] is True
            s.send(b"exit 5\r")
            assert s.wait() == 5, s.seen
        info = daemon.inspect(name)
        assert info["state"]["status"] == "exited"
        assert info["state"]["exit_code"] == 5
    finally:
        daemon.cli("rm", "-f", name, check=False)


def run_shell_then_detach(daemon: Daemon, name: str) -> None:
    """`run -it` a shell, then ctrl-p ctrl-q: the CLI leaves with 0, the shell runs on."""
    with pty_session(daemon, "run", "-it", "--name", name, "busybox", "sh") as s:
        s.read_until(BANNER)
        s.send(b"\x10\x11")
        assert s.wait(timeout=30) == 0, s.seen


def test_run_it_detach_keys_leave_container_running(daemon: Daemon) -> None:
    name = "it-detach"
    try:
        run_shell_then_detach(daemon, name)
        assert _status(daemon, name) == "running"
        # Still a live shell: exec into it works.
        assert daemon.cli("exec", name, "echo", "alive").stdout == "alive\n"
    finally:
        daemon.cli("rm", "-f", name, check=False)


def test_exec_it_with_a_tty(daemon: Daemon) -> None:
    name = "it-exec-tty"
    try:
        daemon.cli("run", "-d", "--name", name, "busybox", "sleep", "100")
        daemon.wait_for(lambda: _running(daemon, name), timeout=20, what="running")
        with pty_session(daemon, "exec", "-it", name, "sh") as s:
            s.read_until(b"# ")
            s.send(b"tty\r")
            s.read_until(b"/dev/pts/")
            s.read_until(b"# ")
            s.send(b"exit 3\r")
            assert s.wait() == 3, s.seen
        assert _status(daemon, name) == "running"
    finally:
        daemon.cli("rm", "-f", name, check=False)


def test_exec_without_tty_has_no_terminal(daemon: Daemon) -> None:
    name = "it-exec-notty"
    try:
        daemon.cli("run", "-d", "--name", name, "busybox", "sleep", "100")
        daemon.wait_for(lambda: _running(daemon, name), timeout=20, what="running")
        res = daemon.cli("exec", name, "tty", check=False)
        assert res.returncode != 0
        assert "/dev/pts/" not in res.stdout
    finally:
        daemon.cli("rm", "-f", name, check=False)


def test_exec_i_pipes_stdin(daemon: Daemon) -> None:
    name = "it-exec-stdin"
    try:
        daemon.cli("run", "-d", "--name", name, "busybox", "sleep", "100")
        daemon.wait_for(lambda: _running(daemon, name), timeout=20, what="running")
        data = "".join(f"line {i} of the data\n" for i in range(2000))
        res = daemon.cli("exec", "-i", name, "cat", input=data.encode(), timeout=30)
        assert res.returncode == 0, res
        assert res.stdout == data
        counted = daemon.cli("exec", "-i", name, "wc", "-l", input=data.encode(), timeout=30)
        assert counted.stdout.strip() == "2000"
    finally:
        daemon.cli("rm", "-f", name, check=False)


def test_run_i_with_piped_stdin_ends_with_its_input(daemon: Daemon) -> None:
    """As `echo hi | docker run -i IMAGE cat`: the end of the input closes the container's
    stdin, so cat ends and run returns its exit code; a plain `create -i` keeps stdin open."""
    data = "".join(f"line {i}\n" for i in range(500))
    res = daemon.cli("run", "--rm", "-i", "busybox", "sh", "-c", "cat; exit 3",
                     input=data.encode(), check=False, timeout=30)
    assert res.returncode == 3, res
    assert res.stdout == data
    name = "it-create-i"
    try:
        daemon.cli("create", "-i", "--name", name, "busybox", "cat")
        assert daemon.inspect(name)["config"]["stdin_once"] is False
    finally:
        daemon.cli("rm", "-f", name, check=False)


def test_exec_streams_and_exit_code(daemon: Daemon) -> None:
    name = "it-exec-streams"
    try:
        daemon.cli("run", "-d", "--name", name, "busybox", "sleep", "100")
        daemon.wait_for(lambda: _running(daemon, name), timeout=20, what="running")
        # A command that reads none of its input still ends with its own code.
        res = daemon.cli("exec", "-i", name, "sh", "-c", "exit 6", input=b"x" * 4_000_000,
                         check=False, timeout=30)
        assert res.returncode == 6, res
        res = daemon.cli("exec", name, "sh", "-c", "echo out; echo err >&2; exit 4",
                         check=False)
        assert res.returncode == 4, res
        assert res.stdout == "out\n"
        assert res.stderr == "err\n"
    finally:
        daemon.cli("rm", "-f", name, check=False)


def test_exec_env_file_and_privileged_refused(daemon: Daemon, tmp_path: Path) -> None:
    name = "it-exec-env"
    env_file = tmp_path / "exec.env"
    env_file.write_text("# settings\nFROM_FILE=one\nBOTH=file\n\nFROM_HERE\n")
    try:
        daemon.cli("run", "-d", "--name", name, "busybox", "sleep", "100")
        daemon.wait_for(lambda: _running(daemon, name), timeout=20, what="running")
        res = daemon.cli("exec", "--env-file", str(env_file), "-e", "BOTH=flag", name,
                         "sh", "-c", 'echo "$FROM_FILE $BOTH $FROM_HERE"')
        assert res.stdout == "one flag \n"  # -e wins; a bare name unset here is dropped
        refused(daemon.cli("exec", "--env-file", str(tmp_path / "none"), name, "true",
                           check=False), "none")
        refused(daemon.cli("exec", "--privileged", name, "true", check=False),
                "--privileged", "not supported")
    finally:
        daemon.cli("rm", "-f", name, check=False)


def test_attach_to_a_detached_shell_then_its_exit_code(daemon: Daemon) -> None:
    name = "it-attach"
    try:
        run_shell_then_detach(daemon, name)
        with pty_session(daemon, "attach", name) as s:
            s.send(b"echo $((6*9))\r")
            s.read_until(b"54")
            s.send(b"\x10\x11")  # detach again: it keeps running
            assert s.wait(timeout=30) == 0, s.seen
        assert _status(daemon, name) == "running"
        with pty_session(daemon, "attach", name) as s:
            s.send(b"exit 7\r")
            assert s.wait() == 7, s.seen
        assert daemon.inspect(name)["state"]["exit_code"] == 7
    finally:
        daemon.cli("rm", "-f", name, check=False)


def test_attach_without_a_tty_streams_output_and_refuses_a_stopped_container(
        daemon: Daemon) -> None:
    name = "attach-out"
    try:
        daemon.cli("run", "-d", "--name", name, "busybox", "sh", "-c",
                   "echo before; i=0; while [ ! -e /stop ]; do echo tick$i; i=$((i+1)); "
                   "sleep 0.2; done; echo oops >&2; exit 3")
        daemon.wait_for(lambda: "tick1" in daemon.cli("logs", name).stdout, what="ticks")
        proc = subprocess.Popen([str(BIN / "berth"), "attach", name], env=daemon.env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            assert proc.stdout is not None
            first = proc.stdout.readline()  # output from now on, as docker attach
            assert first.startswith("tick") and first not in ("tick0\n", "tick1\n"), first
            daemon.cli("exec", name, "touch", "/stop")
            out, err = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        assert proc.returncode == 3, (out, err)
        assert "before" not in out and all(line.startswith("tick") for line in out.split())
        assert err == "oops\n"
        refused(daemon.cli("attach", name, check=False), name, "start it first")
    finally:
        daemon.cli("rm", "-f", name, check=False)


def test_detach_keys_typed_one_at_a_time_reach_nothing(daemon: Daemon) -> None:
    """A person types ctrl-p, then ctrl-q: the container must not get the ctrl-p."""
    name = "it-split-keys"
    script = "stty raw -echo; echo ready; dd bs=1 count=1 2>/dev/null | od -An -c; exec sleep 99"
    try:
        with pty_session(daemon, "run", "-it", "--name", name, "busybox", "sh", "-c",
                         script) as s:
            s.read_until(b"ready")
            s.send(b"\x10")
            time.sleep(0.3)
            s.send(b"\x11")
            assert s.wait(timeout=30) == 0, s.seen
        with pty_session(daemon, "attach", name) as s:
            s.send(b"z")  # the first byte the container reads: od shows it as "   z"
            s.read_until(b"   z")
        logs = daemon.cli("logs", name).stdout
        assert "z" in logs and "020" not in logs, logs
    finally:
        daemon.cli("rm", "-f", name, check=False)


def test_run_it_with_other_detach_keys(daemon: Daemon) -> None:
    """--detach-keys ctrl-x,x: ctrl-p ctrl-q now reach the container; ctrl-x x detaches."""
    name = "it-keys"
    script = "stty raw -echo; echo ready; dd bs=1 count=2 2>/dev/null | od -An -c; exec sleep 99"
    try:
        with pty_session(daemon, "run", "-it", "--detach-keys", "ctrl-x,x", "--name", name,
                         "busybox", "sh", "-c", script) as s:
            s.read_until(b"ready")
            s.send(b"\x10\x11")
            s.read_until(b"020 021")  # od's octal for the two control characters
            s.send(b"\x18x")
            assert s.wait(timeout=30) == 0, s.seen
        assert _status(daemon, name) == "running"
    finally:
        daemon.cli("rm", "-f", name, check=False)


def test_bad_detach_keys_are_refused_before_a_container_is_made(daemon: Daemon) -> None:
    before = daemon.cli("ps", "-aq").stdout
    for command in (["run", "-it", "--detach-keys", "meta-x", "busybox", "sh"],
                    ["exec", "-it", "--detach-keys", "ctrl-", "nosuch", "sh"],
                    ["attach", "--detach-keys", "ab,c", "nosuch"]):
        res = daemon.cli(*command, check=False)
        assert res.returncode == 125, res
        assert res.stderr.startswith("berth: --detach-keys: Invalid detach keys"), res.stderr
        assert res.stderr.count("\n") == 1, res.stderr
    assert daemon.cli("ps", "-aq").stdout == before


def test_exec_it_detach_keys_leave_the_command_running(daemon: Daemon) -> None:
    """As docker exec: the detach keys end the session, not the command."""
    name = "it-exec-detach"
    try:
        daemon.cli("run", "-d", "--name", name, "busybox", "sleep", "100")
        daemon.wait_for(lambda: _running(daemon, name), timeout=20, what="running")
        with pty_session(daemon, "exec", "-it", name, "sh", "-c",
                         "echo ready; exec watch -n 0.1 echo still-here") as s:
            s.read_until(b"still-here")
            s.send(b"\x10\x11")
            assert s.wait(timeout=30) == 0, s.seen
        # It runs on, its output drained by the daemon, until the container stops.
        time.sleep(1)
        assert "watch" in daemon.cli("top", name).stdout
    finally:
        daemon.cli("rm", "-f", name, check=False)


def test_exec_ends_when_its_client_goes_and_never_piles_up_output(daemon: Daemon) -> None:
    """A client that stops reading holds the command back (berthd keeps no backlog); a
    client that goes away ends its command."""
    name = "exec-gone"
    assert daemon.proc is not None
    status = Path(f"/proc/{daemon.proc.pid}/status")

    def rss_mib() -> float:
        line = next(x for x in status.read_text().splitlines() if x.startswith("VmRSS:"))
        return int(line.split()[1]) / 1024

    try:
        daemon.cli("run", "-d", "--name", name, "busybox", "sleep", "300")
        daemon.wait_for(lambda: _running(daemon, name), timeout=20, what="running")
        before = rss_mib()
        # stdout is a pipe nobody reads: `yes` writes ~1 GB/s while it may.
        proc = subprocess.Popen([str(BIN / "berth"), "exec", name, "yes"], env=daemon.env,
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        try:
            daemon.wait_for(lambda: "yes" in daemon.cli("top", name).stdout, what="yes runs")
            time.sleep(3)
            grown = rss_mib() - before
            assert grown < 64, f"berthd grew {grown:.0f} MiB behind a client that reads nothing"
        finally:
            proc.kill()
            proc.wait()
        daemon.wait_for(lambda: "yes" not in daemon.cli("top", name).stdout, timeout=20,
                        what="the exec to end with its client")
    finally:
        daemon.cli("rm", "-f", name, check=False)

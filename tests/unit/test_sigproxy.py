"""--sig-proxy: which signals pass to the container, in what order, and what happens to a
signal that arrived before the container was known."""

from __future__ import annotations

import os
import signal
import threading
from types import FrameType

import pytest

from berth.cli.parser import build
from berth.cli.sigproxy import SignalProxy, forwarded, signal_name


class Recorder:
    """Stands in for the API's kill: what was sent, to whom."""

    def __init__(self, expected: int) -> None:
        self.sent: list[tuple[str, str]] = []
        self.done = threading.Event()
        self.expected = expected

    def __call__(self, container: str, name: str) -> None:
        self.sent.append((container, name))
        if len(self.sent) >= self.expected:
            self.done.set()


def test_the_clients_own_and_job_control_signals_stay_with_the_client() -> None:
    passed = forwarded()
    for kept in (signal.SIGCHLD, signal.SIGPIPE, signal.SIGURG, signal.SIGWINCH,
                 signal.SIGTSTP, signal.SIGTTIN, signal.SIGTTOU, signal.SIGKILL,
                 signal.SIGSTOP):
        assert kept not in passed
    for sent in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT,
                 signal.SIGUSR1, signal.SIGUSR2, signal.SIGRTMIN):
        assert sent in passed


def test_names_are_the_apis() -> None:
    assert signal_name(signal.SIGTERM) == "SIGTERM"
    assert signal_name(signal.SIGRTMIN + 2) == str(signal.SIGRTMIN + 2)


def test_signals_go_to_the_container_in_order() -> None:
    kill = Recorder(expected=3)
    with SignalProxy(kill, "c1"):
        for sig in (signal.SIGUSR1, signal.SIGUSR2, signal.SIGTERM):
            os.kill(os.getpid(), sig)  # our own process: the proxy must take it, not die
        assert kill.done.wait(5)
    assert kill.sent == [("c1", "SIGUSR1"), ("c1", "SIGUSR2"), ("c1", "SIGTERM")]


def test_a_signal_before_the_container_is_known_is_held_for_it() -> None:
    kill = Recorder(expected=1)
    with SignalProxy(kill) as proxy:
        os.kill(os.getpid(), signal.SIGINT)
        assert not kill.done.wait(0.2)  # nothing to send it to yet
        proxy.target("c2")
        assert kill.done.wait(5)
    assert kill.sent == [("c2", "SIGINT")]


def test_handlers_are_restored_and_a_signal_with_no_container_is_ours_again() -> None:
    got: list[int] = []

    def mine(signum: int, _frame: FrameType | None) -> None:
        got.append(signum)

    saved = signal.signal(signal.SIGUSR1, mine)
    try:
        kill = Recorder(expected=1)
        with SignalProxy(kill):  # the container never came (say, create was refused)
            os.kill(os.getpid(), signal.SIGUSR1)
            assert got == []
        assert got == [signal.SIGUSR1] and kill.sent == []
        assert signal.getsignal(signal.SIGUSR1) is mine
    finally:
        signal.signal(signal.SIGUSR1, saved)


def test_a_signal_during_a_send_waits_for_it() -> None:
    """The handler sends in the main thread; one that comes mid-send is sent after it."""
    sent: list[str] = []

    def kill(_container: str, name: str) -> None:
        if not sent:
            os.kill(os.getpid(), signal.SIGUSR2)  # arrives while this send is under way
        sent.append(name)

    with SignalProxy(kill, "c4"):
        os.kill(os.getpid(), signal.SIGUSR1)
    assert sent == ["SIGUSR1", "SIGUSR2"]


def test_a_failed_send_is_dropped_and_later_ones_still_go() -> None:
    sent: list[str] = []
    done = threading.Event()

    def kill(_container: str, name: str) -> None:
        sent.append(name)
        if name == "SIGUSR1":
            raise RuntimeError("the container exited meanwhile")
        done.set()

    with SignalProxy(kill, "c3"):
        os.kill(os.getpid(), signal.SIGUSR1)
        os.kill(os.getpid(), signal.SIGUSR2)
        assert done.wait(5)
    assert sent == ["SIGUSR1", "SIGUSR2"]


@pytest.mark.parametrize(("line", "value"), [
    (["run", "busybox"], True),
    (["run", "--sig-proxy=false", "busybox"], False),
    (["run", "--sig-proxy=0", "busybox"], False),
    (["run", "--sig-proxy=FALSE", "busybox"], False),
    (["run", "--sig-proxy", "busybox"], True),  # alone: true, and the image is still the image
    (["run", "--sig-proxy=t", "busybox"], True),
    (["start", "-a", "--sig-proxy=f", "c"], False),
    (["attach", "--sig-proxy", "web"], True),
])
def test_sig_proxy_flag_reads_as_dockers(line: list[str], value: bool) -> None:
    args = build(line).parse_args(line)
    assert args.sig_proxy is value
    if line[0] == "run":
        assert args.image == "busybox"


def test_sig_proxy_flag_refuses_other_words(capsys: pytest.CaptureFixture[str]) -> None:
    line = ["run", "--sig-proxy=maybe", "busybox"]
    with pytest.raises(SystemExit) as exc:
        build(line).parse_args(line)
    err = capsys.readouterr().err
    assert exc.value.code == 125 and "expected true or false, got 'maybe'" in err

"""Property tests of the CLI's reading of what a person types: every option of run, create,
update, pod create and network create, given any value, makes a request or is refused in one
line (UsageError, or the parser's exit 125), never a traceback."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from berth.cli import convert
from berth.cli.parser import build
from berth.cli.pod_commands import COMMANDS as POD_COMMANDS  # noqa: F401 (loads the module)

# Values near what each option reads (sizes, ports, key=value lists, paths with colons),
# and anything at all.
PIECES = ["", ":", "::", ",", "=", "/", "-", "0", "1", "9" * 30, "²", "٣", "1.5", "-1", "k",
          "m", "g", "size=", "mode=", "0o7", "9z", "rw", "ro", "tcp", "udp", "/dev/vda",
          "/x", "80", "8080-8090", "127.0.0.1", "::1", "[", "]", "always", "on-failure",
          "host", "none", "bridge", "container:x", "nofile=1:2", "a=b", "\x00", "é", "\n"]
VALUES = st.one_of(st.text(max_size=24),
                   st.lists(st.sampled_from(PIECES), max_size=6).map("".join))


def value_flags(command: str) -> list[str]:
    """The options of a command that take one value."""
    parser = build([command])
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    found = []
    for action in sub.choices[command]._actions:
        if action.option_strings and action.nargs is None and action.type is None and \
                isinstance(action, argparse._StoreAction | argparse._AppendAction):
            found.append(max(action.option_strings, key=len))
    return found


def refused_or_made(argv: list[str], make: Callable[[argparse.Namespace], Any]) -> None:
    try:
        args = build(argv).parse_args(argv)
    except SystemExit as e:  # the parser's one-line refusal
        assert e.code == 125
        return
    try:
        made = make(args)
    except convert.UsageError as e:
        assert str(e) and "\n" not in str(e).strip(), str(e)
        return
    json.dumps(made)  # a request body


RUN_FLAGS = value_flags("run")


def test_the_fuzzed_options_are_many() -> None:
    assert len(RUN_FLAGS) > 40 and "--mount" in RUN_FLAGS and "--tmpfs" in RUN_FLAGS


@given(st.sampled_from(RUN_FLAGS), VALUES)
@example("--mount", "type=tmpfs,dst=/x,tmpfs-mode=9z")
@example("--tmpfs", "/x:mode=zz")
@example("--mount", "type=tmpfs,dst=/x,tmpfs-mode=")
@example("--publish", "²0")  # isdigit() but not int()
@example("--expose", "٣²")
@example("--ulimit", "nofile=1:2²")
@example("--restart", "on-failure:²")
@example("--env-file", "x\x00")  # open() refuses a NUL with ValueError
@example("--label-file", "x\x00")
@example("--label", "--")  # argparse stored a list for "--label=--"
@example("--volume", "--")
@example("--log-opt", "\n=1")  # echoed as typed: two lines
def test_run_options(flag: str, value: str) -> None:
    refused_or_made(["run", f"{flag}={value}", "busybox"], convert.container_spec)


@given(st.lists(st.tuples(st.sampled_from(RUN_FLAGS), VALUES), min_size=2, max_size=4))
def test_run_options_together(pairs: list[tuple[str, str]]) -> None:
    argv = ["run", *(f"{flag}={value}" for flag, value in pairs), "busybox"]
    refused_or_made(argv, convert.container_spec)


@given(st.sampled_from(value_flags("update")), VALUES)
def test_update_options(flag: str, value: str) -> None:
    def changes(args: argparse.Namespace) -> dict[str, Any]:
        out = convert.resources(args)
        if args.restart:
            out["restart_policy"] = convert.restart_policy(args.restart)
        return out

    refused_or_made(["update", f"{flag}={value}", "c1"], changes)


@pytest.mark.parametrize("command, make", [
    (["network", "create"], convert.network_spec),
    (["pod", "create"], convert.pod_spec),
])
@given(data=st.data())
def test_group_create_options(command: list[str], make: Callable[..., Any],
                              data: st.DataObject) -> None:
    parser = build(command)
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    group = sub.choices[command[0]]
    create = next(a for a in group._actions
                  if isinstance(a, argparse._SubParsersAction)).choices[command[1]]
    flags = [max(a.option_strings, key=len) for a in create._actions
             if a.option_strings and a.nargs is None and a.type is None
             and isinstance(a, argparse._StoreAction | argparse._AppendAction)]
    flag, value = data.draw(st.sampled_from(flags)), data.draw(VALUES)
    refused_or_made([*command, f"{flag}={value}", "n1"], make)


def test_a_bug_of_ours_is_still_one_line(monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    """The net under the fuzzed code: whatever escapes a command is one line and exit 125."""
    from berth.cli import main

    def broken(_args: argparse.Namespace) -> dict[str, Any]:
        raise ValueError("something\nwe did not foresee")

    monkeypatch.setattr(convert, "container_spec", broken)
    monkeypatch.delenv("BERTH_DEBUG", raising=False)
    with pytest.raises(SystemExit) as ended:
        main.main(["run", "busybox"])
    assert ended.value.code == 125
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "internal error" in err
    assert "ValueError: something we did not foresee" in err
    monkeypatch.setenv("BERTH_DEBUG", "1")
    with pytest.raises(ValueError, match="foresee"):
        main.main(["run", "busybox"])

"""`berth cp` argument rules (as docker's) and the parsing of cp, export, diff, port, attach,
container prune and system prune."""

from __future__ import annotations

import pytest

from berth.cli.convert import UsageError
from berth.cli.file_commands import split_cp_arg
from berth.cli.parser import build


@pytest.mark.parametrize(("arg", "expected"), [
    ("box:/etc/hosts", ("box", "/etc/hosts")),
    ("box:relative", ("box", "relative")),
    ("/abs/with:colon", (None, "/abs/with:colon")),
    ("./local:colon", (None, "./local:colon")),
    ("plain", (None, "plain")),
    ("-", (None, "-")),
])
def test_split_cp_arg(arg: str, expected: tuple[str | None, str]) -> None:
    assert split_cp_arg(arg) == expected


@pytest.mark.parametrize(("arg", "word"), [(":/etc", "no container"), ("box:", "no path")])
def test_split_cp_arg_refuses_half_a_reference(arg: str, word: str) -> None:
    with pytest.raises(UsageError, match=word):
        split_cp_arg(arg)


def test_file_commands_parse() -> None:
    args = build().parse_args(["cp", "-a", "-L", "box:/x", "."])
    assert (args.archive, args.follow_link, args.src, args.dest) == (True, True, "box:/x", ".")
    args = build().parse_args(["export", "-o", "fs.tar", "box"])
    assert (args.file, args.container) == ("fs.tar", "box")
    args = build().parse_args(["port", "box", "80/udp"])
    assert (args.container, args.port) == ("box", "80/udp")
    assert build().parse_args(["diff", "-o", "json", "box"]).output == "json"
    args = build().parse_args(["attach", "--no-stdin", "box"])
    assert (args.no_stdin, args.container) == (True, "box")


def test_system_and_container_prune_parse() -> None:
    args = build().parse_args(["system", "prune", "-a", "--volumes", "-f"])
    assert (args.cmd, args.system_cmd, args.all, args.volumes) == ("system", "prune", True, True)
    args = build().parse_args(["container", "prune", "--filter", "until=24h"])
    assert (args.container_cmd, args.filter) == ("prune", ["until=24h"])

"""The CLI parser builds only the named command's arguments, with the same result."""

from __future__ import annotations

import pytest

from berth.cli.parser import COMMAND_HELP, _selected, build, expand_aliases

LINES = [
    ["run", "--rm", "-it", "-e", "A=1", "-v", "d:/d", "--restart", "always", "busybox", "sh"],
    ["-H", "unix:///x.sock", "run", "-d", "busybox", "sleep", "1"],
    ["-o", "json", "ps", "-a", "--filter", "status=exited"],
    ["create", "--name", "x", "busybox"],
    ["stop", "-t", "3", "a", "b"], ["kill", "-s", "HUP", "a"], ["rm", "-fv", "a"],
    ["logs", "-f", "--tail", "5", "a"], ["exec", "-it", "a", "sh", "-c", "ls -l"],
    ["image", "import", "-"], ["image", "rm", "-f", "x"], ["volume", "create", "v"],
    ["update", "--memory", "64m", "a"], ["inspect", "a", "-o", "yaml"], ["info"], ["images"],
    ["version"], ["run", "--sig-proxy=false", "busybox", "true"],
    ["start", "-a", "--sig-proxy=0", "a"], ["attach", "--sig-proxy", "a"],
]


@pytest.mark.parametrize("line", LINES, ids=lambda line: " ".join(line))
def test_lazy_parser_equals_full_parser(line: list[str]) -> None:
    assert vars(build(line).parse_args(line)) == vars(build().parse_args(line))


def test_selected_command_skips_global_options() -> None:
    assert _selected(["-H", "unix:///run", "-o", "json", "ps"]) == "ps"
    assert _selected(["--version"]) is None
    assert _selected(["nosuch", "x"]) is None  # unknown: build all, argparse explains


def test_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build(["--help"]).parse_args(["--help"])
    out = capsys.readouterr().out
    assert all(name in out for name in COMMAND_HELP)


def test_unknown_command_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        build(["nosuch"]).parse_args(["nosuch"])
    err = capsys.readouterr().err
    assert exc.value.code == 125 and "invalid choice" in err and err.count("\n") == 1


def test_bad_flag_is_one_line_and_125(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        build(["run", "--bogus", "busybox"]).parse_args(["run", "--bogus", "busybox"])
    err = capsys.readouterr().err
    assert exc.value.code == 125 and err.startswith("berth: ") and "--bogus" in err
    assert err.count("\n") == 1


@pytest.mark.parametrize(("line", "meant"), [
    (["container", "ls", "-a"], ["ps", "-a"]),
    (["-H", "unix:///x", "container", "list", "-q"], ["-H", "unix:///x", "ps", "-q"]),
    (["container", "-o", "json", "ls"], ["ps", "-o", "json"]),
    (["container", "remove", "-f", "a"], ["rm", "-f", "a"]),
    (["container", "run", "--rm", "busybox", "ls", "list"], ["run", "--rm", "busybox", "ls",
                                                              "list"]),
    (["container", "prune", "-f"], ["container", "prune", "-f"]),
    (["image", "list", "-q"], ["image", "ls", "-q"]),
    (["image", "remove", "x"], ["image", "rm", "x"]),
    (["image", "build", "-t", "x", "."], ["build", "-t", "x", "."]),
    (["volume", "list"], ["volume", "ls"]), (["network", "remove", "n"], ["network", "rm", "n"]),
    (["system", "info"], ["info"]), (["system", "events", "--since", "1m"],
                                     ["events", "--since", "1m"]),
    (["system", "df"], ["system", "df"]),
    (["run", "busybox", "container", "ls"], ["run", "busybox", "container", "ls"]),
    (["ps", "list"], ["ps", "list"]),
])
def test_docker_spellings_are_expanded(line: list[str], meant: list[str]) -> None:
    assert expand_aliases(line) == meant


def test_container_verbs_parse_as_the_top_level_command() -> None:
    from berth.cli.parser import CONTAINER_VERBS

    for verb, command in CONTAINER_VERBS.items():
        assert command in COMMAND_HELP, verb
    # `container --help` and completion list each verb with its command's own arguments.
    args = build(["container"]).parse_args(["container", "-o", "json", "ls", "-a"])
    assert (args.container_cmd, args.all, args.output) == ("ls", True, "json")
    full = vars(build().parse_args(["ps", "-a", "-o", "json"]))
    assert {k: v for k, v in vars(args).items() if k not in ("cmd", "container_cmd")} == \
        {k: v for k, v in full.items() if k != "cmd"}


def test_main_runs_container_verb_as_its_command(monkeypatch: pytest.MonkeyPatch) -> None:
    from berth.cli import commands, main

    seen: list[str] = []
    monkeypatch.setattr(main, "_client", lambda args: None)
    monkeypatch.setattr(commands, "dispatch", lambda client, args: seen.append(args.cmd) or 0)
    for line in (["container", "ls"], ["container", "-o", "json", "ls"],
                 ["container", "remove", "x"]):
        with pytest.raises(SystemExit) as exc:
            main.main(line)
        assert exc.value.code == 0
    assert seen == ["ps", "ps", "rm"]


@pytest.mark.parametrize(("words", "ps", "output"), [
    (["aux"], ["aux"], "table"),
    (["-o", "pid,args"], ["-o", "pid,args"], "table"),
    (["-o", "json"], [], "json"),
    (["aux", "--output", "yaml"], ["aux"], "yaml"),
    (["--output=json", "-o", "pid"], ["-o", "pid"], "json"),
])
def test_top_words_go_to_ps_but_our_output_option(words: list[str], ps: list[str],
                                                   output: str) -> None:
    from berth.cli.commands import _take_output_option

    args = build(["top"]).parse_args(["top", "box", *words])
    assert args.ps_args == words
    assert _take_output_option(args, args.ps_args) == ps
    assert args.output == output

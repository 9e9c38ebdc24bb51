"""The CLI parser builds only the named command's arguments, with the same result."""

from __future__ import annotations

import pytest

from berth.cli.parser import COMMAND_HELP, _selected, build

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

"""--format: Go's text/template as docker users write it, over Berth's JSON."""

from __future__ import annotations

import pytest

from berth.cli.convert import UsageError
from berth.cli.template import render, render_rows

DATA = {
    "id": "abc123", "name": "web", "restart_count": 2,
    "state": {"status": "running", "pid": 42, "running": True, "exit_code": None},
    "labels": {"app": "shop", "tier": "front"},
    "networks": {"back": {"address": "10.0.1.2"}, "bridge": {"address": "10.0.0.2"}},
    "config": {"cmd": ["sleep", "60"], "env": []},
}


@pytest.mark.parametrize(("template", "out"), [
    ("{{.State.Pid}}", "42"),
    ("{{.state.pid}}", "42"),
    ("{{.RestartCount}}", "2"),  # docker's spelling finds Berth's restart_count
    ("{{.ID}} {{.Name}}", "abc123 web"),
    ("{{.State.Running}}", "true"),
    ("{{.State.ExitCode}}", "<no value>"),
    ("{{.Nope}}", "<no value>"),
    ("{{json .Labels}}", '{"app":"shop","tier":"front"}'),
    ("{{.Labels | json}}", '{"app":"shop","tier":"front"}'),
    ("{{.Labels}}", "map[app:shop tier:front]"),
    ("{{.Config.Cmd}}", "[sleep 60]"),
    ("{{index .Labels \"app\"}}", "shop"),
    ("{{index .Config.Cmd 1}}", "60"),
    ("{{join .Config.Cmd \",\"}}", "sleep,60"),
    ("{{len .Networks}}", "2"),
    ("{{range .Networks}}{{.Address}} {{end}}", "10.0.1.2 10.0.0.2 "),
    ("{{range .Config.Env}}x{{else}}none{{end}}", "none"),
    ("{{if .State.Running}}up{{else}}down{{end}}", "up"),
    ("{{if .Config.Env}}some{{else}}empty{{end}}", "empty"),
    ("{{.Name | upper}}", "WEB"),
    ("{{printf \"%s:%d\" .Name .RestartCount}}", "web:2"),
    ("a\n  {{- .Name -}}  \nb", "awebb"),
    ("{{`raw`}} {{\"q\\\"s\"}}", 'raw q"s'),
    ("plain text", "plain text"),
])
def test_render(template: str, out: str) -> None:
    assert render(template, DATA) == out


@pytest.mark.parametrize(("template", "words"), [
    ("{{.Name", "unclosed action"),
    ("{{range .Labels}}", "without {{end}}"),
    ("{{end}}", "{{end}} without"),
    ("{{else}}", "{{else}} outside"),
    ("{{nosuch .Name}}", "'nosuch' is not defined"),
    ("{{.State.Pid.More}}", "cannot take field More of 42"),
    ("{{range .Name}}{{end}}", "cannot range over web"),
    ("{{index .Labels 3 4}}", "cannot index"),
    ("{{.Name .Name}}", "only a function takes arguments"),
    ("{{ ! }}", "cannot read '!'"),
])
def test_bad_templates(template: str, words: str) -> None:
    with pytest.raises(UsageError) as err:
        render(template, DATA)
    assert words in str(err.value)


def test_rows_and_tables() -> None:
    rows = [{"ID": "abc", "Names": "web", "labels": {"a": "1"}},
            {"ID": "defghi", "Names": "db", "labels": {}}]
    assert render_rows("{{.ID}}:{{.Names}}", rows, {}) == "abc:web\ndefghi:db\n"
    table = render_rows("table {{.ID}}\t{{.Names}}\t{{.Other}}", rows,
                        {"id": "CONTAINER ID", "names": "NAMES"})
    assert table.splitlines() == [
        "CONTAINER ID   NAMES   OTHER",
        "abc            web     <no value>",
        "defghi         db      <no value>",
    ]
    assert render_rows("{{len .labels}}", rows, {}) == "1\n0\n"
    # as a shell's quotes leave them: backslash-t and backslash-n, which docker reads as such
    spelled = render_rows(r"table {{.ID}}\t{{.Names}}", rows, {"id": "CONTAINER ID"})
    assert spelled.splitlines()[1] == "abc            web"
    assert render_rows(r"{{.ID}}\t{{.Names}}\n", rows[:1], {}) == "abc\tweb\n\n"

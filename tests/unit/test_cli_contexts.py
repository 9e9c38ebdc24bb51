"""Named contexts: where they are stored, how they are written, and which setting wins."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from berth.cli import contexts
from berth.cli.convert import UsageError
from berth.cli.main import main
from berth.cli.parser import build

FLAGS_NONE = dict.fromkeys(contexts.SETTINGS)


def _config(tmp_path: Path, current: str | None = "prod") -> dict[str, str]:
    path = tmp_path / "config.json"
    contexts.save(str(path), {"current": current, "contexts": {
        "prod": {"host": "tcp://prod:2376", "token": "berth_prod", "project": "web",
                 "tls_ca": "/etc/prod-ca.pem"},
        "dev": {"host": "unix:///run/dev.sock", "token": "berth_dev"}}})
    return {"BERTH_CONFIG": str(path)}


def _berth(*args: str) -> int:
    with pytest.raises(SystemExit) as exc:
        main(list(args))
    return exc.value.code or 0


# -- precedence -------------------------------------------------------------------------------

def test_defaults_without_anything(tmp_path: Path) -> None:
    env = {"BERTH_CONFIG": str(tmp_path / "missing.json")}
    assert contexts.resolve(FLAGS_NONE, None, env) == FLAGS_NONE  # the SDK's defaults


def test_current_context_fills_in(tmp_path: Path) -> None:
    got = contexts.resolve(FLAGS_NONE, None, _config(tmp_path))
    assert got == {"host": "tcp://prod:2376", "token": "berth_prod", "project": "web",
                   "tls_ca": "/etc/prod-ca.pem", "tls_cert": None, "tls_key": None}


def test_flags_beat_env_beat_context(tmp_path: Path) -> None:
    env = {**_config(tmp_path), "BERTH_PROJECT": "from-env", "BERTH_TOKEN": "berth_env"}
    got = contexts.resolve({**FLAGS_NONE, "token": "berth_flag"}, None, env)
    assert got["token"] == "berth_flag"  # flag over env and context
    assert got["project"] == "from-env"  # env over context
    assert got["host"] == "tcp://prod:2376"  # context over default


def test_explicit_context_beats_current(tmp_path: Path) -> None:
    env = _config(tmp_path)
    assert contexts.resolve(FLAGS_NONE, "dev", env)["token"] == "berth_dev"
    assert contexts.resolve(FLAGS_NONE, None, {**env, "BERTH_CONTEXT": "dev"})["token"] == \
        "berth_dev"
    # --context over BERTH_CONTEXT; "default" is no context at all.
    assert contexts.resolve(FLAGS_NONE, "prod", {**env, "BERTH_CONTEXT": "dev"})["token"] == \
        "berth_prod"
    assert contexts.resolve(FLAGS_NONE, "default", env) == FLAGS_NONE


def test_current_context_credentials_stay_with_its_host(tmp_path: Path) -> None:
    """--host or BERTH_HOST naming another daemon leaves the current context out: its token
    must not be sent elsewhere. A context asked for by name still applies."""
    env = _config(tmp_path)
    for flags, e in (({**FLAGS_NONE, "host": "tcp://other:1"}, env),
                     (FLAGS_NONE, {**env, "BERTH_HOST": "unix:///other.sock"})):
        got = contexts.resolve(flags, None, e)
        assert got["token"] is None and got["project"] is None and got["tls_ca"] is None
    same = contexts.resolve({**FLAGS_NONE, "host": "tcp://prod:2376"}, None, env)
    assert same["token"] == "berth_prod"
    named = contexts.resolve({**FLAGS_NONE, "host": "tcp://other:1"}, "prod", env)
    assert (named["host"], named["token"]) == ("tcp://other:1", "berth_prod")


def test_unknown_context_is_a_usage_error(tmp_path: Path) -> None:
    env = _config(tmp_path, current="gone")
    with pytest.raises(UsageError, match="no such context: gone"):
        contexts.resolve(FLAGS_NONE, None, env)
    with pytest.raises(UsageError, match="no such context: nope"):
        contexts.resolve(FLAGS_NONE, "nope", env)


def test_config_path_default_and_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", "/home/u")
    assert contexts.config_path({}) == "/home/u/.config/berth/config.json"
    assert contexts.config_path({"BERTH_CONFIG": "/x.json"}) == "/x.json"


# -- storage ----------------------------------------------------------------------------------

def test_saved_0600_atomically_in_a_private_folder(tmp_path: Path) -> None:
    path = tmp_path / "new" / "config.json"
    contexts.save(str(path), {"current": None, "contexts": {"a": {"host": "unix:///a"}}})
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    contexts.save(str(path), {"current": "a", "contexts": {"a": {"host": "unix:///a"}}})
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert os.listdir(path.parent) == ["config.json"]  # no temporary file left
    assert contexts.load(str(path))["current"] == "a"


def test_a_broken_file_is_one_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text("{not json")
    with pytest.raises(UsageError, match="cannot read the contexts"):
        contexts.load(str(path))
    assert contexts.load(str(tmp_path / "missing.json")) == {"current": None, "contexts": {}}


# -- berth context … --------------------------------------------------------------------------

@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "cfg" / "config.json"
    monkeypatch.setenv("BERTH_CONFIG", str(path))
    for var in ("BERTH_HOST", "BERTH_TOKEN", "BERTH_PROJECT", "BERTH_CONTEXT"):
        monkeypatch.delenv(var, raising=False)
    return path


def test_context_commands(config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                          capsys: pytest.CaptureFixture[str]) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("x")
    monkeypatch.chdir(tmp_path)
    assert _berth("context", "create", "prod", "--host", "tcp://prod:2376", "--token",
                  "berth_secret_value", "--project", "web", "--tls-ca", "ca.pem") == 0
    saved = json.loads(config.read_text())["contexts"]["prod"]
    assert saved["tls_ca"] == str(ca)  # absolute: it works from any directory
    assert _berth("context", "use", "prod") == 0
    capsys.readouterr()
    for fmt in ("table", "json", "yaml"):
        assert _berth("context", "ls", "-o", fmt) == 0
        assert _berth("context", "inspect", "prod", "-o", fmt) == 0
    out = capsys.readouterr().out
    assert "berth_secret_value" not in out
    assert "prod *" in out and "set" in out
    rows = json.loads(_json(capsys, "context", "ls", "-o", "json"))
    assert [(r["name"], r["current"], r["token"]) for r in rows] == [
        ("default", False, "-"), ("prod", True, "set")]
    # The same name again: refused unless --force.
    assert _berth("context", "create", "prod", "--host", "unix:///x") == 125
    assert "exists" in capsys.readouterr().err
    # The current one is removed only with --force; then "default" is current.
    assert _berth("context", "rm", "prod") == 1
    assert _berth("context", "rm", "-f", "prod") == 0
    capsys.readouterr()
    assert _berth("context", "show") == 0
    assert capsys.readouterr().out == "default\n"


def _json(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    capsys.readouterr()
    assert _berth(*args) == 0
    return capsys.readouterr().out


def test_context_create_refusals(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for args, words in ((["bad/name", "--host", "unix:///x"], "invalid context name"),
                        (["default", "--host", "unix:///x"], "invalid context name"),
                        (["a", "--host", "ftp://x"], "invalid host"),
                        (["a", "--host", "tcp://x:1", "--tls-ca", "/nonexistent"], "no such file"),
                        (["a", "--host", "tcp://x:1", "--tls-key", "/etc/hostname"],
                         "--tls-key needs --tls-cert")):
        assert _berth("context", "create", *args) == 125
        err = capsys.readouterr().err
        assert words in err and err.count("\n") == 1, err
    assert not config.exists()


def test_token_from_stdin(config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    monkeypatch.setattr(sys, "stdin", io.StringIO("berth_from_stdin\n"))
    assert _berth("context", "create", "s", "--host", "unix:///x", "--token-stdin") == 0
    assert json.loads(config.read_text())["contexts"]["s"]["token"] == "berth_from_stdin"


def test_global_flags_do_not_leak_into_context_create(config: Path) -> None:
    line = ["--token", "berth_global", "context", "create", "c", "--host", "unix:///x"]
    args = build(line).parse_args(line)
    assert args.token == "berth_global" and args.ctx_token is None


# -- completion -------------------------------------------------------------------------------

@pytest.mark.parametrize("shell", ["bash", "zsh"])
def test_completion_script_parses(shell: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert _berth("completion", shell) == 0
    script = capsys.readouterr().out
    for word in ("context", "project", "--tls-ca", "table json yaml", "reader member admin"):
        assert word in script
    checker = {"bash": ["bash", "-n"], "zsh": ["zsh", "-n"]}[shell]
    try:
        subprocess.run([*checker], input=script, text=True, check=True)
    except FileNotFoundError:
        pytest.skip(f"{shell} is not installed")


def test_bash_completion_answers(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _berth("completion", "bash") == 0
    script = tmp_path / "c.bash"
    script.write_text(capsys.readouterr().out)
    probe = (f"source {script}\n"
             't() { COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]}-1)); _berth; '
             'echo "${COMPREPLY[*]}"; }\n'
             't berth proj\nt berth -o ""\nt berth -H unix:///x project member ""\n'
             't berth project member set p u ""\n')
    out = subprocess.run(["bash", "-c", probe], capture_output=True, text=True,
                         check=True).stdout.splitlines()
    assert out == ["project", "table json yaml", "set rm ls", "reader member admin"]

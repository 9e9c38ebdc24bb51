"""The CLI's start-up is part of every `berth run`: its run path must stay free of heavy
imports. This checks which modules load, not how long they take."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ["typing", "fastapi", "starlette", "pydantic", "sqlalchemy", "httpx", "websockets",
         "rich", "yaml", "uvicorn", "berth.store", "berth.runtime", "berth.agent",
         "shutil", "datetime",  # argparse's help formatter and `ps` columns would load these
         "berth.detachkeys"]  # only for --detach-keys


def test_run_path_imports_nothing_heavy() -> None:
    probe = (
        "import sys, json\n"
        "from berth.cli import main, commands, convert, output\n"
        "from berth.cli.parser import build\n"
        "args = build(['run', '--rm', 'busybox', 'true']).parse_args(['run', '--rm', 'busybox',"
        " 'true'])\n"
        "convert.container_spec(args)\n"
        "commands._detach_keys(args)\n"
        f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True).stdout
    assert json.loads(out) == []


def _entry(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    """The console script's function in a child: it leaves through os._exit."""
    code = f"import sys; sys.argv = ['berth', *{list(args)!r}]; " \
           "from berth.cli.main import entry; entry()"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          input=stdin, env={"BERTH_HOST": "unix:///nonexistent/berth.sock",
                                            "PATH": "/usr/bin:/bin"})


def test_entry_flushes_output_and_keeps_exit_codes() -> None:
    version = _entry("--version")
    assert version.returncode == 0 and version.stdout.startswith("berth ")
    helped = _entry("--help")  # long output, buffered in a pipe: all of it must arrive
    assert helped.returncode == 0 and "completion" in helped.stdout
    assert helped.stdout.endswith("\n")
    refused = _entry("ps", "--bogus")
    assert refused.returncode == 125
    assert refused.stderr.count("\n") == 1 and "--bogus" in refused.stderr
    unreachable = _entry("ps")
    assert unreachable.returncode == 125 and "cannot reach berthd" in unreachable.stderr


def test_version_without_a_daemon_shows_the_client_and_one_error_line() -> None:
    res = _entry("version")
    assert res.returncode == 125
    assert res.stdout.startswith("Client:\n") and "python:" in res.stdout
    assert "Server:" not in res.stdout
    assert res.stderr.count("\n") == 1 and "cannot reach berthd" in res.stderr

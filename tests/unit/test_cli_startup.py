"""The CLI's start-up is part of every `berth run`: its run path must stay free of heavy
imports. This checks which modules load, not how long they take."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ["typing", "fastapi", "starlette", "pydantic", "sqlalchemy", "httpx", "websockets",
         "rich", "yaml", "uvicorn", "berth.store", "berth.runtime", "berth.agent"]


def test_run_path_imports_nothing_heavy() -> None:
    probe = (
        "import sys, json\n"
        "from berth.cli import main, commands, convert, output\n"
        "from berth.cli.parser import build\n"
        "args = build(['run', '--rm', 'busybox', 'true']).parse_args(['run', '--rm', 'busybox',"
        " 'true'])\n"
        "convert.container_spec(args)\n"
        f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True).stdout
    assert json.loads(out) == []

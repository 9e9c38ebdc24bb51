"""`berth`: the command line, built only on the SDK (berth.client).

Exit codes follow docker's: an attached run exits with the container's code; 125 when Berth
refused or failed, 126 when the command cannot be invoked, 127 when it is not found. Every
refusal is one line on stderr.
"""

from __future__ import annotations

import os
import sys

from berth.cli.convert import UsageError

TYPE_CHECKING = False  # importing typing costs ~10 ms of CLI start-up; annotations are strings
if TYPE_CHECKING:
    from typing import Any

REFUSED = 125


def main(argv: list[str] | None = None) -> None:
    from berth.cli.parser import build

    line = sys.argv[1:] if argv is None else argv
    args = build(line).parse_args(line)
    if args.version:
        from berth import __version__

        print(f"berth {__version__}")
        return
    if not args.cmd:
        build().print_help()
        sys.exit(0)
    from berth.cli import commands
    from berth.client import APIError, Client

    try:
        client = Client(args.host)
        code = commands.dispatch(client, args)
    except APIError as e:
        _fail(e.message, e.body.get("exit_code") if e.body else None)
    except UsageError as e:
        _fail(str(e))
    except KeyboardInterrupt:
        code = 130
    except BrokenPipeError:
        # Output went to a pager or `head` that stopped reading: not an error.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = 0
    sys.exit(code or 0)


def _fail(message: str, exit_code: Any = None) -> None:
    sys.stderr.write(f"berth: {message}\n")
    sys.exit(exit_code if isinstance(exit_code, int) and exit_code in (126, 127) else REFUSED)


if __name__ == "__main__":
    main()

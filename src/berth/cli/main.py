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
    from berth.cli.parser import build, expand_aliases

    line = expand_aliases(sys.argv[1:] if argv is None else argv)
    # Without a command every sub-parser is built (for help and errors): not for --version.
    args = build(["version"] if line == ["--version"] else line).parse_args(line)
    if args.version:
        from berth import __version__

        print(f"berth {__version__}")
        return
    if not args.cmd:
        build().print_help()
        sys.exit(0)
    from berth.client import APIError
    from berth.client.wire import ProtocolError

    try:
        if args.cmd in LOCAL:  # no daemon involved
            code = _local(args)
        else:
            client = _client(args)
            if args.cmd in IDENTITY:
                from berth.cli.identity_commands import COMMANDS

                code = COMMANDS[args.cmd](client, args)
            else:
                from berth.cli import commands

                code = commands.dispatch(client, args)
    except APIError as e:
        _fail(e.message, e.body.get("exit_code") if e.body else None)
    except UsageError as e:
        _fail(str(e))
    except ProtocolError as e:  # berthd's answer broke off (it stopped, or failed mid-stream)
        _fail(f"the answer from berthd broke off: {e}")
    except KeyboardInterrupt:
        code = 130
    except BrokenPipeError:
        # Output went to a pager or `head` that stopped reading: not an error.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = 0
    except Exception as e:  # a bug of ours: still one line, as every refusal
        if os.environ.get("BERTH_DEBUG"):  # the traceback, for whoever fixes it
            raise
        detail = " ".join(str(e).split())
        _fail(f"internal error (a bug: please report it; BERTH_DEBUG=1 shows where): "
              f"{type(e).__name__}: {detail}")
    sys.exit(code or 0)


def entry() -> None:
    """The `berth` console script: main(), then leave without the interpreter's teardown,
    which spends milliseconds of every `berth run` freeing modules for nothing."""
    try:
        main()
        code: Any = 0
    except SystemExit as e:
        code = e.code
    if not isinstance(code, int):  # sys.exit("text") prints the text and fails
        if code is not None:
            sys.stderr.write(f"{code}\n")
        code = 0 if code is None else 1
    import contextlib  # loaded already by then

    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(BrokenPipeError, ValueError):  # reader gone, stream closed
            stream.flush()
    os._exit(code & 0xFF)


LOCAL = ("context", "completion")
IDENTITY = ("project", "user", "token", "whoami", "quota")


def _local(args: Any) -> int:
    if args.cmd == "context":
        from berth.cli.contexts import cmd_context

        return cmd_context(args)
    from berth.cli.completion import cmd_completion

    return cmd_completion(args)


def _client(args: Any) -> Any:
    """The SDK client, its settings from flags > environment > context > defaults."""
    from berth.cli.contexts import resolve
    from berth.client import Client

    settings = resolve({"host": args.host, "token": args.token, "project": args.project,
                        "tls_ca": args.tls_ca, "tls_cert": args.tls_cert,
                        "tls_key": args.tls_key}, args.context)
    try:
        return Client(**settings)
    except ValueError as e:  # a host or TLS file that cannot be used
        raise UsageError(str(e)) from None


def _fail(message: str, exit_code: Any = None) -> None:
    sys.stderr.write(f"berth: {message}\n")
    sys.exit(exit_code if isinstance(exit_code, int) and exit_code in (126, 127) else REFUSED)


if __name__ == "__main__":
    entry()

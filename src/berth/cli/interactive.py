"""Interactive sessions (`run -it`, `exec -it`, `exec -i`) over the API's websockets."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import threading
from collections.abc import Callable, Collection, Iterator
from typing import Any

from berth.client import APIError, Client

DEFAULT_KEYS = b"\x10\x11"  # ctrl-p ctrl-q, as in docker
ALL_OUTPUTS = frozenset({1, 2})  # the output streams' numbers: stdout, stderr


@contextlib.contextmanager
def _raw_terminal(enabled: bool) -> Iterator[None]:
    if not enabled or not os.isatty(sys.stdin.fileno()):
        yield
        return
    import termios
    import tty

    fd = sys.stdin.fileno()
    saved = termios.tcgetattr(fd)
    tty.setraw(fd, termios.TCSANOW)  # (the default, TCSAFLUSH, drops what was typed ahead)
    try:
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def _send_size(ws: Any) -> None:
    try:  # (os's, not shutil's: importing shutil costs ~2 ms of every session's start)
        size = os.get_terminal_size(sys.stdout.fileno())
    except OSError:
        return
    with contextlib.suppress(Exception):
        ws.send(json.dumps({"resize": [size.lines, size.columns]}))


def _pump_stdin(ws: Any, keys: bytes, detached: threading.Event) -> None:
    """Our input to the session until it ends, or until the detach keys are typed (they are
    not sent; the server is told, and the session closes)."""
    from berth.detachkeys import DetachScanner

    fd = sys.stdin.fileno()
    scanner = DetachScanner(keys)  # holds back what may be the start of the keys
    try:
        while True:
            data = os.read(fd, 4096)
            if not data:
                if held := scanner.flush():
                    ws.send(b"\x00" + held)
                ws.send(json.dumps({"close_stdin": True}))
                return
            data, found = scanner.feed(data)
            if data:
                ws.send(b"\x00" + data)
            if found:
                detached.set()
                ws.send(json.dumps({"detach": True}))  # an exec runs on without us
                ws.close()
                return
    except Exception:  # the session ended under us
        return


def _session(ws: Any, tty: bool, stdin: bool, keys: bytes | None,
             outputs: Collection[int] = ALL_OUTPUTS) -> int:
    """keys: the detach keys (None: ctrl-p ctrl-q); outputs: the streams shown."""
    if keys is None:
        keys = DEFAULT_KEYS
    detached = threading.Event()
    out, err = sys.stdout.buffer, sys.stderr.buffer
    with _raw_terminal(tty and stdin):
        if tty:
            _send_size(ws)
            if os.isatty(sys.stdout.fileno()):
                # from a thread: the handler may interrupt this one in the middle of a send
                signal.signal(signal.SIGWINCH, lambda *_: threading.Thread(
                    target=_send_size, args=(ws,), daemon=True).start())
        if stdin:
            threading.Thread(target=_pump_stdin, args=(ws, keys, detached),
                             daemon=True).start()
        code = None
        try:
            for msg in ws:
                if isinstance(msg, bytes):
                    if not msg or msg[0] not in outputs:
                        continue
                    target = err if msg[:1] == b"\x02" else out
                    target.write(msg[1:])
                    target.flush()
                    continue
                ctl = json.loads(msg)
                if "error" in ctl:
                    sys.stderr.write(f"berth: {ctl['error']}\r\n" if tty else
                                     f"berth: {ctl['error']}\n")
                if "exit_code" in ctl:
                    code = int(ctl["exit_code"])
        except Exception:
            if not detached.is_set():
                raise
    if detached.is_set():
        sys.stderr.write("\nberth: detached (it keeps running)\n")
        return 0
    if code is None:
        sys.stderr.write("berth: the session ended before an exit code arrived\n")
        return 125
    return code


def run_interactive(client: Client, box: dict[str, Any], tty: bool,
                    keys: bytes | None = None, *, stdin: bool = True,
                    outputs: Collection[int] = ALL_OUTPUTS) -> int:
    """Attach to a created container, start it, stream until it exits (or the detach keys).
    stdin=False or outputs (1 stdout, 2 stderr) leave streams out, as `run -a` asks."""
    ws = client.containers.attach_session(box["id"], start=True, logs=True)
    try:
        return _session(ws, tty, stdin=stdin and bool(box["config"].get("stdin_open")),
                        keys=keys, outputs=outputs)
    finally:
        ws.close()


def attach(client: Client, ref: str, no_stdin: bool,
           signals_to: Callable[[dict[str, Any]], Any], keys: bytes | None = None) -> int:
    """`berth attach`: a running container's output from now on, and our input to it when it
    keeps stdin open, until it exits (its code is ours) or the detach keys are typed.
    signals_to(container): a context that passes our signals on while attached."""
    box = client.containers.get(ref)
    status = box["state"]["status"]
    if status not in ("running", "paused", "restarting"):
        raise APIError(409, f"cannot attach to {box['name']}: it is {status}; start it first")
    ws = client.containers.attach_session(box["id"], start=False, logs=False)
    stdin = bool(box["config"].get("stdin_open")) and not no_stdin
    try:
        with signals_to(box):
            return _session(ws, bool(box["config"].get("tty")), stdin, keys)
    finally:
        ws.close()


def run_exec(client: Client, container: str, command: list[str], *, tty: bool, stdin: bool,
             env: list[str], workdir: str, user: str, detach: bool = False,
             keys: bytes | None = None) -> int:
    """detach: start the command and return at once (exec -d); keys: typed in the session,
    they leave the command running without us."""
    if detach:
        tty = stdin = False
    ws = client.containers.exec_session(container, command, tty=tty, stdin=stdin, env=env,
                                        workdir=workdir, user=user, detach=detach)
    try:
        return _session(ws, tty, stdin, keys)
    finally:
        ws.close()

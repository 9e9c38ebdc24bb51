"""Showing objects: a table for people, JSON or YAML for scripts."""

from __future__ import annotations

import json
import os
import sys
import time

TYPE_CHECKING = False  # importing typing costs ~10 ms of CLI start-up; annotations are strings
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from typing import Any, BinaryIO


def emit(data: Any, fmt: str, columns: list[tuple[str, Any]] | None = None) -> None:
    """Print data (an object or a list) as a table (with columns) or as JSON/YAML."""
    if fmt == "json":
        sys.stdout.write(json.dumps(data, indent=2) + "\n")
        return
    if isinstance(data, list):
        data = list(data)  # an SDK page is a list subclass, which yaml will not write
    if fmt == "yaml":
        import yaml

        sys.stdout.write(yaml.safe_dump(data, sort_keys=False))
        return
    if columns is None:
        sys.stdout.write(json.dumps(data, indent=2) + "\n")
        return
    rows = data if isinstance(data, list) else [data]
    table(columns, rows)


OUTPUT_KINDS = ("table", "json", "yaml")


def labels_text(labels: dict[str, str] | None) -> str:
    """Labels as docker's listings' {{.Labels}} show them: k=v,k2=v2."""
    return ",".join(f"{k}={v}" for k, v in sorted((labels or {}).items()))


def output_kind(args: Any) -> str:
    """table, json or yaml (from --format, else -o), or "template" for a Go template."""
    template = getattr(args, "format", None)
    if template is None:
        return getattr(args, "output", None) or "table"
    return template if template in OUTPUT_KINDS else "template"


def emit_rows(rows: list[Any], args: Any, columns: list[tuple[str, Any]],
              fields: Callable[[Any], dict[str, Any]] | None = None,
              titles: dict[str, str] | None = None) -> None:
    """A listing as -o asks, or docker's --format: a Go template rendered for each row as
    ``fields`` shapes it (docker's field names beside Berth's), "table TEMPLATE" with a header
    (``titles``: field -> column title); --format table|json|yaml is -o's setting."""
    kind = output_kind(args)
    if kind != "template":
        emit(rows, kind, columns)
        return
    from berth.cli.template import render_rows

    shaped = [fields(row) if fields else row for row in rows]
    sys.stdout.write(render_rows(args.format, shaped, titles or {}))


def inspect_each(names: list[str], get: Callable[[str], Any], fmt: str,
                 template: str | None = None) -> int:
    """Show every object found (JSON unless YAML is asked for, or a line of ``template``
    each, docker's --format); report the missing ones on stderr and exit 1."""
    from berth.client import APIError

    found, failed = [], 0
    for name in names:
        try:
            found.append(get(name))
        except APIError as e:
            sys.stderr.write(f"berth: {e.message}\n")
            failed = 1
    if template is not None:
        from berth.cli.template import render

        sys.stdout.write("".join(render(template, obj) + "\n" for obj in found))
        return failed
    emit(found[0] if len(found) == 1 and len(names) == 1 else found,
         "json" if fmt == "table" else fmt)
    return failed


def table(columns: list[tuple[str, Any]], rows: list[Any]) -> None:
    """Plain aligned columns, like docker's (no colours: scripts grep this output too)."""
    cells = [[title for title, _ in columns]]
    for row in rows:
        cells.append([str(get(row)) for _, get in columns])
    widths = [max(len(r[i]) for r in cells) for i in range(len(columns))]
    for r in cells:
        line = "   ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
        sys.stdout.write(line + "\n")


def ago(iso: str | None) -> str:
    if not iso:
        return ""
    from datetime import datetime  # ~2 ms to import: only listings need it

    then = datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()
    secs = max(0, time.time() - then)
    for unit, size in (("days", 86400), ("hours", 3600), ("minutes", 60)):
        if secs >= size:
            n = int(secs // size)
            return f"{n} {unit[:-1] if n == 1 else unit} ago"
    return "seconds ago" if secs >= 2 else "just now"


def status_text(c: dict[str, Any]) -> str:
    st = c["state"]
    status = st["status"]
    if status == "running":
        up = f"Up since {ago(st['started_at'])}".replace("since ", "").replace(" ago", "")
        return up + health_suffix(st.get("health"))
    if status == "paused":
        return "Up (Paused)"
    if status == "exited":
        return f"Exited ({st['exit_code']}) {ago(st['finished_at'])}"
    return status.capitalize()


def health_suffix(health: dict[str, Any] | None) -> str:
    """As docker ps: " (healthy)", " (unhealthy)", " (health: starting)"; "" without a check."""
    status = (health or {}).get("status")
    if not status:
        return ""
    return f" (health: {status})" if status == "starting" else f" ({status})"


def human_size(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.3g}{unit}" if unit != "B" else f"{int(n)}B"
        n /= 1000
    return f"{n}"


def each(names: list[str], fn: Any) -> int:
    """Docker's multi-target behaviour: do each, print its name, report failures, exit 1."""
    from berth.client import APIError

    failed = 0
    for name in names:
        try:
            fn(name)
            print(name)
        except APIError as e:
            if e.status == 304:  # already in the asked state: done, as docker says
                print(name)
                continue
            sys.stderr.write(f"berth: {e.message}\n")
            failed = 1
    return failed


def write_chunks(chunks: Iterable[bytes], out: BinaryIO) -> None:
    for chunk in chunks:
        out.write(chunk)
    out.flush()


def write_archive(chunks: Iterable[bytes], file: str | None) -> None:
    """An archive to ``file``, or to standard output (the caller has refused a terminal).
    Written beside the file first: an interrupted one never sits under the real name."""
    from berth.cli.convert import UsageError

    if file is None:
        write_chunks(chunks, sys.stdout.buffer)
        return
    partial = f"{file}.berth-partial"
    try:
        with open(partial, "wb") as f:
            write_chunks(chunks, f)
        os.replace(partial, file)
    except OSError as e:
        raise UsageError(f"cannot write {file}: {e.strerror}") from None
    finally:
        if os.path.exists(partial):
            os.unlink(partial)

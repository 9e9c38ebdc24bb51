"""`--format`: the part of Go's text/template that docker users write, over Berth's JSON.

    {{.State.Pid}}  {{json .Config.Labels}}  {{range .Networks}}{{.Address}} {{end}}
    {{if .State.Running}}up{{else}}down{{end}}  {{index .Labels "app"}}  {{.Name | upper}}

Fields match keys without regard to case or underscores (``.RestartCount`` is
``restart_count``), so docker's spelling works where Berth has the same field. Functions:
json, index, join, len, lower, upper, title, print, printf. Values print as Go prints them
(``true``, ``[a b]``, ``map[k:v]``, ``<no value>``). Anything else is a UsageError.
"""

from __future__ import annotations

import json
import re

from berth.cli.convert import UsageError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

_ACTION = re.compile(r"\{\{(-\s)?(.*?)(\s-)?\}\}", re.DOTALL)
_TOKEN = re.compile(r'\s*(?:("(?:[^"\\]|\\.)*")|(`[^`]*`)|(-?\d+(?:\.\d+)?)|(\|)|'
                    r'(\.[A-Za-z0-9_.]*)|([A-Za-z_][A-Za-z0-9_]*))')
NO_VALUE = "<no value>"


def render(template: str, data: Any) -> str:
    return "".join(_run(_parse(template), data))


def render_rows(template: str, rows: list[Any], titles: dict[str, str]) -> str:
    """A listing's --format: a line per row. "table TEMPLATE" adds a header of column
    titles (``titles``: field -> title; others show their name in capitals) and aligns the
    tab-separated columns, as docker does. As docker's, a listing's template may spell a tab
    and a newline as the two characters \\t and \\n (what a shell's quotes leave)."""
    template = template.replace("\\t", "\t").replace("\\n", "\n")
    if not template.startswith("table"):
        return "".join(render(template, row) + "\n" for row in rows)
    body = _parse(template[len("table"):].lstrip())
    header = "".join(_run(body, Titles(titles)))
    lines = [header, *("".join(_run(body, row)) for row in rows)]
    cells = [line.split("\t") for line in lines]
    width = max(len(c) for c in cells)
    widths = [max(len(c[i]) for c in cells if i < len(c)) for i in range(width)]
    return "".join("   ".join(cell.ljust(widths[i]) for i, cell in enumerate(c)).rstrip()
                   + "\n" for c in cells)


class Titles(dict):  # type: ignore[type-arg]
    """What a "table" format's header is rendered with: every field is its title."""

    def title(self, name: str) -> str:
        return str(self.get(_key(name), name.upper()))


# -- parsing: text and actions into a tree of nodes ---------------------------------------

class _Node:
    def __init__(self, kind: str, arg: Any = None) -> None:
        self.kind = kind  # "text" | "print" | "range" | "if"
        self.arg = arg  # the text, or the pipeline
        self.body: list[_Node] = []
        self.orelse: list[_Node] = []


def _parse(template: str) -> list[_Node]:
    root: list[_Node] = []
    stack: list[tuple[_Node | None, list[_Node]]] = [(None, root)]
    pos = 0
    pending_trim = False
    for m in _ACTION.finditer(template):
        text = template[pos:m.start()]
        if pending_trim:
            text = text.lstrip()
        if m.group(1):
            text = text.rstrip()
        if text:
            stack[-1][1].append(_Node("text", text))
        pos, pending_trim = m.end(), bool(m.group(3))
        words = m.group(2).strip()
        keyword = words.split(None, 1)[0] if words else ""
        if keyword in ("range", "if"):
            node = _Node(keyword, _pipeline(words[len(keyword):], template))
            stack[-1][1].append(node)
            stack.append((node, node.body))
        elif keyword == "else":
            node = stack[-1][0]
            if node is None or stack[-1][1] is node.orelse:
                raise _bad(template, "{{else}} outside of {{if}} or {{range}}")
            stack[-1] = (node, node.orelse)
        elif keyword == "end":
            if len(stack) == 1:
                raise _bad(template, "{{end}} without {{if}} or {{range}}")
            stack.pop()
        else:
            stack[-1][1].append(_Node("print", _pipeline(words, template)))
    if len(stack) > 1:
        raise _bad(template, "{{if}} or {{range}} without {{end}}")
    text = template[pos:]
    if "{{" in text:
        raise _bad(template, "unclosed action")
    if text and not (pending_trim and not text.strip()):
        stack[-1][1].append(_Node("text", text.lstrip() if pending_trim else text))
    return root


def _pipeline(source: str, template: str) -> list[list[Any]]:
    """Commands separated by "|"; each a list of operands (("field", path), ("lit", v),
    ("func", name))."""
    commands: list[list[Any]] = [[]]
    pos = 0
    source = source.rstrip()
    while pos < len(source):
        m = _TOKEN.match(source, pos)
        if not m or m.end() == pos:
            raise _bad(template, f"cannot read {source[pos:].strip()!r}")
        pos = m.end()
        string, raw, number, pipe, field, name = m.groups()
        if pipe:
            commands.append([])
        elif string:
            commands[-1].append(("lit", json.loads(string)))
        elif raw:
            commands[-1].append(("lit", raw[1:-1]))
        elif number:
            commands[-1].append(("lit", float(number) if "." in number else int(number)))
        elif field is not None:
            commands[-1].append(("field", [p for p in field.split(".") if p]))
        elif name in ("true", "false"):
            commands[-1].append(("lit", name == "true"))
        elif name in FUNCTIONS:
            commands[-1].append(("func", name))
        else:
            raise _bad(template, f"function {name!r} is not defined")
    if not all(commands):
        raise _bad(template, "an empty command")
    return commands


def _bad(template: str, why: str) -> UsageError:
    return UsageError(f"invalid --format {template!r}: {why}")


# -- running -------------------------------------------------------------------------------

def _run(nodes: list[_Node], dot: Any) -> list[str]:
    out: list[str] = []
    for node in nodes:
        if node.kind == "text":
            out.append(node.arg)
        elif node.kind == "print":
            out.append(show(_evaluate(node.arg, dot)))
        elif node.kind == "if":
            out += _run(node.body if _truthy(_evaluate(node.arg, dot)) else node.orelse, dot)
        else:  # range
            value = _evaluate(node.arg, dot)
            items = [value[k] for k in sorted(value)] if isinstance(value, dict) else \
                list(value) if isinstance(value, list) else None
            if items is None and value is not None:
                raise UsageError(f"--format: cannot range over {show(value)}")
            for item in items or []:
                out += _run(node.body, item)
            if not items:
                out += _run(node.orelse, dot)
    return out


def _evaluate(pipeline: list[list[Any]], dot: Any) -> Any:
    result: Any = None
    for i, command in enumerate(pipeline):
        args = [_operand(op, dot) for op in command[1:]] if command[0][0] == "func" else []
        if i > 0:
            args.append(result)
        if command[0][0] == "func":
            result = FUNCTIONS[command[0][1]](*args)
        elif len(command) > 1 or (i > 0 and command):
            raise UsageError("--format: only a function takes arguments")
        else:
            result = _operand(command[0], dot)
    return result


def _operand(op: tuple[str, Any], dot: Any) -> Any:
    kind, value = op
    if kind == "lit":
        return value
    if kind == "func":
        return FUNCTIONS[value]()
    for name in value:
        dot = _field(dot, name)
    return dot


def _key(name: str) -> str:
    return name.replace("_", "").lower()


def _field(value: Any, name: str) -> Any:
    if isinstance(value, Titles):
        return value.title(name)
    if not isinstance(value, dict):
        raise UsageError(f"--format: cannot take field {name} of {show(value)}")
    if name in value:
        return value[name]
    for key, item in value.items():
        if _key(key) == _key(name):
            return item
    return None  # Go prints a missing map key as <no value>


def _truthy(value: Any) -> bool:
    return value not in (None, False, 0, "", [], {})


def show(value: Any) -> str:
    """A value as Go's fmt prints it with %v."""
    if value is None:
        return NO_VALUE
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, list):
        return "[" + " ".join(show(v) for v in value) + "]"
    if isinstance(value, dict):
        return "map[" + " ".join(f"{k}:{show(value[k])}" for k in sorted(value)) + "]"
    return str(value)


def _index(value: Any, *keys: Any) -> Any:
    for key in keys:
        if isinstance(value, dict):
            value = value.get(key)
        elif isinstance(value, list) and isinstance(key, int) and -1 < key < len(value):
            value = value[key]
        else:
            raise UsageError(f"--format: cannot index {show(value)} with {show(key)}")
    return value


def _join(items: Any, sep: str) -> str:
    if not isinstance(items, list):
        raise UsageError(f"--format: join needs a list, not {show(items)}")
    return sep.join(show(i) for i in items)


def _printf(fmt: str, *args: Any) -> str:
    spec = re.sub(r"%v", "%s", fmt)
    try:
        return spec % tuple(show(a) if isinstance(a, list | dict | bool) or a is None else a
                            for a in args)
    except (TypeError, ValueError) as e:
        raise UsageError(f"--format: printf {fmt!r}: {e}") from None


def _len(value: Any) -> int:
    if not isinstance(value, list | dict | str):
        raise UsageError(f"--format: len of {show(value)}")
    return len(value)


# Arguments come first, the piped value last (Go's rule): {{.Labels | json}}.
FUNCTIONS: dict[str, Callable[..., Any]] = {
    "json": lambda v: json.dumps(v, separators=(",", ":")),
    "index": _index,
    "join": lambda *a: _join(a[0], a[1]) if not isinstance(a[0], str) else _join(a[1], a[0]),
    "len": _len,
    "lower": lambda v: show(v).lower(),
    "upper": lambda v: show(v).upper(),
    "title": lambda v: show(v).title(),
    "print": lambda *a: "".join(show(v) for v in a),
    "printf": _printf,
}

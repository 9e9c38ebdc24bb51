"""Parse a Dockerfile into the model the builder executes (no I/O, no expansion).

Follows Docker's parser (legacy builder and the BuildKit frontend agree on these):

* parser directives (``# escape=`` with ``\\`` or a backtick, ``# syntax=``/``# check=``
  ignored) only at the very top; the first other line (a blank one included) ends them,
  and an unknown directive is an ordinary comment;
* ``#`` lines are comments, also inside a continuation; the escape character at the end
  of a line (trailing blanks allowed) continues it; blank continuation lines are skipped;
* instructions are case-insensitive; ``--name=value`` flags come before the arguments;
* the JSON (exec) form is used when the arguments are a valid JSON array of strings,
  otherwise the text is the shell form (as Docker does, silently);
* variables are NOT expanded here: the builder does it (expand.py) with ARG/ENV values.

Refused: unknown instructions, anything but ARG before the first FROM, BuildKit-only flags
(``RUN --mount/--network/--security``, ``COPY --parents/--exclude``, ``ADD --checksum/
--keep-git-dir``) and heredocs (``<<EOF``), with a DockerfileError naming the line.
"""

from __future__ import annotations

import dataclasses
import difflib
import re

from berth import jsontext
from berth.build.model import Dockerfile, DockerfileError, Instruction, Stage
from berth.units import INT64_MAX

INSTRUCTIONS = frozenset({
    "ADD", "ARG", "CMD", "COPY", "ENTRYPOINT", "ENV", "EXPOSE", "FROM", "HEALTHCHECK", "LABEL",
    "MAINTAINER", "ONBUILD", "RUN", "SHELL", "STOPSIGNAL", "USER", "VOLUME", "WORKDIR",
})  # fmt: skip
_DIRECTIVE = re.compile(r"^#[ \t]*([A-Za-z][A-Za-z0-9]*)[ \t]*=[ \t]*(.+?)[ \t]*$")
_KNOWN_DIRECTIVES = frozenset({"escape", "syntax", "check"})
_STAGE_NAME = re.compile(r"^[a-z][a-z0-9\-_.]*$")
# "<<EOF", "<<-EOF", "<<'EOF'" after a blank (so "1<<2" arithmetic and "<<<" do not count).
_HEREDOC = re.compile(r"(?:^|\s)<<-?[\"']?[A-Za-z_][A-Za-z0-9_]*[\"']?(?:\s|$)")

_STR, _BOOL = "string", "bool"
_FLAGS: dict[str, dict[str, str]] = {
    "FROM": {"platform": _STR},
    "COPY": {"from": _STR, "chown": _STR, "chmod": _STR, "link": _BOOL},
    "ADD": {"chown": _STR, "chmod": _STR, "link": _BOOL},
    "HEALTHCHECK": {
        "interval": _STR,
        "timeout": _STR,
        "start-period": _STR,
        "start-interval": _STR,
        "retries": _STR,
    },
}
_BUILDKIT_ONLY: dict[str, frozenset[str]] = {
    "RUN": frozenset({"mount", "network", "security"}),
    "COPY": frozenset({"parents", "exclude"}),
    "ADD": frozenset({"checksum", "keep-git-dir", "exclude"}),
}
_NOT_ONBUILD = frozenset({"ONBUILD", "FROM", "MAINTAINER"})
_DURATION = re.compile(r"(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_UNIT_NS = {"ns": 1, "us": 10**3, "µs": 10**3, "μs": 10**3, "ms": 10**6, "s": 10**9,
            "m": 60 * 10**9, "h": 3600 * 10**9}  # fmt: skip
_MAX_NS = INT64_MAX  # Go's durations are int64 nanoseconds
_MAX_DIGITS = 30  # beyond _MAX_NS in any unit; keeps int() of hostile text cheap
_RETRIES = re.compile(r"[0-9]{1,9}")


def parse(text: str) -> Dockerfile:
    """Parse Dockerfile text; raises DockerfileError("Dockerfile line N: ...")."""
    lines = [raw.rstrip("\r") for raw in text.removeprefix("\ufeff").split("\n")]
    escape = _directives(lines)
    global_args: list[Instruction] = []
    stages: list[Stage] = []
    current: list[Instruction] = []
    names: dict[str, int] = {}
    seen_any = False
    for lineno, line in _logical_lines(lines, escape):
        seen_any = True
        instr = _instruction(lineno, line, escape)
        if instr.keyword == "FROM":
            if stages:
                stages[-1] = _with_instructions(stages[-1], current)
            current = []
            stage = _stage(instr, len(stages))
            if stage.name is not None:
                if stage.name in names:
                    raise DockerfileError(
                        lineno,
                        f"duplicate stage name {stage.name!r} (first used on line "
                        f"{names[stage.name]})",
                    )
                names[stage.name] = lineno
            stages.append(stage)
        elif not stages:
            if instr.keyword != "ARG":
                raise DockerfileError(
                    lineno, f"{instr.keyword} before the first FROM (only ARG may come first)"
                )
            global_args.append(instr)
        else:
            current.append(instr)
    if not seen_any:
        raise DockerfileError(0, "the Dockerfile has no instructions")
    if not stages:
        raise DockerfileError(0, "the Dockerfile has no FROM instruction")
    stages[-1] = _with_instructions(stages[-1], current)
    return Dockerfile(stages=tuple(stages), global_args=tuple(global_args), escape=escape)


def parse_duration(text: str) -> int:
    """A Go duration ("30s", "1m30s", "1.5h", "0") in nanoseconds; ValueError if invalid or
    out of Go's range (an int64 of nanoseconds, about 292 years)."""
    if text == "0":
        return 0
    if not text:
        raise ValueError("invalid duration ''")
    pos, total = 0, 0
    while pos < len(text):
        m = _DURATION.match(text, pos)
        if not m:
            raise ValueError(f"invalid duration {text!r}")
        whole, _, frac = m.group(1).partition(".")
        whole, frac = whole.lstrip("0"), frac[:_MAX_DIGITS]
        if len(whole) > _MAX_DIGITS:
            raise ValueError(f"invalid duration {text!r}: out of range")
        # Exact integers: a float overflows to inf on long digit strings.
        unit = _UNIT_NS[m.group(2)]
        total += int(whole or "0") * unit + int(frac or "0") * unit // 10 ** len(frac)
        if total > _MAX_NS:
            raise ValueError(f"invalid duration {text!r}: out of range")
        pos = m.end()
    return total


def _directives(lines: list[str]) -> str:
    escape = "\\"
    seen: set[str] = set()
    for lineno, raw in enumerate(lines, start=1):
        m = _DIRECTIVE.match(raw.lstrip(" \t"))
        if not m or m.group(1).lower() not in _KNOWN_DIRECTIVES:
            break  # the first non-directive line (blank, comment, instruction) ends them
        key, value = m.group(1).lower(), m.group(2)
        if key in seen:
            raise DockerfileError(lineno, f"only one {key} parser directive can be used")
        seen.add(key)
        if key == "escape":
            if value not in ("\\", "`"):
                raise DockerfileError(
                    lineno, f"invalid escape token {value!r} does not match ` or \\"
                )
            escape = value
    return escape


def _logical_lines(lines: list[str], escape: str) -> list[tuple[int, str]]:
    """Join continuations and drop comments: [(first line number, joined text)]."""
    cont_re = re.compile(re.escape(escape) + r"[ \t]*$")
    out: list[tuple[int, str]] = []
    i = 0
    while i < len(lines):
        start, raw = i + 1, lines[i].lstrip(" \t")
        i += 1
        if not raw.strip() or raw.startswith("#"):
            continue
        text, more = cont_re.subn("", raw)
        while more and i < len(lines):
            raw = lines[i]
            i += 1
            stripped = raw.strip()
            # A comment or a blank line inside a continuation is skipped, not an end.
            if not stripped or stripped.startswith("#"):
                continue
            part, more = cont_re.subn("", raw)
            text += part
        if text.strip():
            out.append((start, text.strip()))
    return out


def _instruction(lineno: int, line: str, escape: str) -> Instruction:
    parts = line.split(None, 1)
    keyword = parts[0].upper()
    rest = parts[1] if len(parts) > 1 else ""
    if keyword not in INSTRUCTIONS:
        hint = difflib.get_close_matches(keyword, sorted(INSTRUCTIONS), n=1)
        extra = f" (did you mean {hint[0]}?)" if hint else ""
        raise DockerfileError(lineno, f"unknown instruction: {parts[0].upper()}{extra}")
    if keyword in ("RUN", "COPY", "ADD") and _HEREDOC.search(rest):
        raise DockerfileError(lineno, f"heredocs (<<EOF) in {keyword} are not supported")
    words, rest = _extract_flags(lineno, rest)
    flags = _parse_flags(lineno, keyword, words)
    return _dispatch(lineno, keyword, rest.strip(), flags, line, escape)


def _dispatch(
    lineno: int, kw: str, rest: str, flags: dict[str, str], line: str, escape: str
) -> Instruction:
    def make(args: list[str], json_form: bool = False, inner: Instruction | None = None
             ) -> Instruction:  # fmt: skip
        return Instruction(kw, tuple(args), json_form, flags, lineno, line, inner)

    def need(args: list[str], minimum: int, what: str = "at least one argument") -> None:
        if len(args) < minimum:
            raise DockerfileError(lineno, f"{kw} requires {what}")

    if kw in ("RUN", "CMD", "ENTRYPOINT"):
        args, is_json = _maybe_json(rest)
        if not is_json or kw == "RUN":
            need(args, 1)
        return make(args, is_json)
    if kw == "SHELL":
        args, is_json = _maybe_json(rest)
        if not is_json:
            raise DockerfileError(lineno, "SHELL requires the arguments to be in JSON form")
        need(args, 1)
        return make(args, True)
    if kw in ("COPY", "ADD"):
        args, is_json = _maybe_json_list(rest)
        if len(args) == 1:
            raise DockerfileError(
                lineno,
                f"{kw} requires at least two arguments, but only one was provided. "
                "Destination could not be determined.",
            )
        need(args, 2, "at least two arguments (sources and a destination)")
        return make(args, is_json)
    if kw in ("ENV", "LABEL"):
        return make(_name_values(lineno, kw, rest, escape))
    if kw == "ARG":
        args = _words(rest, escape)
        need(args, 1, "an argument: ARG name[=default]")
        return make(args)
    if kw in ("FROM", "EXPOSE"):
        args = rest.split()
        need(args, 1)
        return make(args)
    if kw == "VOLUME":
        args, is_json = _maybe_json_list(rest)
        need(args, 1)
        if any(not a.strip() for a in args):
            raise DockerfileError(lineno, "VOLUME specified can not be an empty string")
        return make(args, is_json)
    if kw in ("WORKDIR", "USER", "STOPSIGNAL", "MAINTAINER"):
        need([rest] if rest else [], 1, "exactly one argument")
        return make([rest])
    if kw == "HEALTHCHECK":
        return _healthcheck(lineno, rest, flags, line)
    # ONBUILD: the trigger is parsed (and checked) now, kept as written for the image.
    need([rest] if rest else [], 1, "at least one argument")
    trigger = rest.split(None, 1)[0].upper()
    if trigger in _NOT_ONBUILD:
        raise DockerfileError(lineno, f"{trigger} isn't allowed as an ONBUILD trigger")
    inner = _instruction(lineno, rest, escape)
    return make([inner.original], inner=inner)


def _healthcheck(lineno: int, rest: str, flags: dict[str, str], line: str) -> Instruction:
    """``HEALTHCHECK NONE``: args ("NONE",), shell form. ``HEALTHCHECK [opts] CMD x``: args
    as for CMD (the JSON list, or one item: the command text), "CMD" itself dropped."""
    kind, _, cmd = rest.partition(" ") if rest else ("", "", "")
    kind, cmd = kind.upper(), cmd.strip()
    if kind == "NONE":
        if cmd or flags:
            raise DockerfileError(lineno, "HEALTHCHECK NONE takes no arguments")
        args, is_json = ["NONE"], False
    elif kind == "CMD":
        argv, is_json = _maybe_json(cmd)
        if not argv:
            raise DockerfileError(lineno, "HEALTHCHECK CMD requires a command")
        args = argv
    elif not kind:
        raise DockerfileError(lineno, "HEALTHCHECK requires an argument (CMD or NONE)")
    else:
        raise DockerfileError(lineno, f"unknown type {kind!r} in HEALTHCHECK (try CMD)")
    for name, value in flags.items():
        if name == "retries":
            # ASCII digits only ("²".isdigit() is true), bounded so int() stays cheap.
            if not _RETRIES.fullmatch(value):
                raise DockerfileError(lineno, f"--retries must be a number >= 0: {value!r}")
            continue
        try:
            ns = parse_duration(value)
        except ValueError as exc:
            raise DockerfileError(lineno, f"--{name}: {exc}") from None
        if 0 < ns < 10**6:
            raise DockerfileError(lineno, f"--{name} {value!r} cannot be less than 1ms")
    return Instruction("HEALTHCHECK", tuple(args), is_json, flags, lineno, line)


def _stage(instr: Instruction, index: int) -> Stage:
    args = instr.args
    name: str | None = None
    if len(args) == 3 and args[1].lower() == "as":
        name = args[2].lower()
        if not _STAGE_NAME.match(name):
            raise DockerfileError(
                instr.line,
                f"invalid name for build stage: {args[2]!r}, name can't start with a number "
                "or contain symbols",
            )
    elif len(args) != 1:
        raise DockerfileError(instr.line, "FROM requires either one or three arguments: "
                              "FROM image [AS name]")  # fmt: skip
    return Stage(
        index=index,
        base=args[0],
        name=name,
        platform=instr.flags.get("platform"),
        line=instr.line,
        original=instr.original,
    )


def _with_instructions(stage: Stage, instructions: list[Instruction]) -> Stage:
    return dataclasses.replace(stage, instructions=tuple(instructions))


def _extract_flags(lineno: int, rest: str) -> tuple[list[str], str]:
    """Leading ``--flag[=value]`` words (quotes removed) and the text after them; a lone
    ``--`` ends the flags."""
    flags: list[str] = []
    pos, n = 0, len(rest)
    while True:
        while pos < n and rest[pos].isspace():
            pos += 1
        if not rest.startswith("--", pos):
            return flags, rest[pos:]
        word, quote = "", ""
        while pos < n:
            ch = rest[pos]
            pos += 1
            if quote:
                if ch == quote:
                    quote = ""
                    continue
            elif ch.isspace():
                break
            elif ch in "'\"":
                quote = ch
                continue
            if ch == "\\" and pos < n:
                ch = rest[pos]
                pos += 1
            word += ch
        if quote:
            raise DockerfileError(lineno, "unmatched quote in a flag")
        if word == "--":
            return flags, rest[pos:]
        flags.append(word)


def _parse_flags(lineno: int, kw: str, words: list[str]) -> dict[str, str]:
    known = _FLAGS.get(kw, {})
    flags: dict[str, str] = {}
    for word in words:
        name, has_value, value = word[2:].partition("=")
        if name in _BUILDKIT_ONLY.get(kw, ()):
            raise DockerfileError(
                lineno,
                f"{kw} --{name} is a BuildKit feature Berth's builder does not support",
            )
        kind = known.get(name)
        if kind is None:
            raise DockerfileError(lineno, f"unknown flag for {kw}: --{name}")
        if name in flags:
            raise DockerfileError(lineno, f"duplicate flag specified: --{name}")
        if kind == _BOOL:
            if has_value and value.lower() not in ("true", "false"):
                raise DockerfileError(lineno, f"--{name} takes true or false, not {value!r}")
            value = value.lower() if has_value else "true"
        elif not has_value:
            raise DockerfileError(lineno, f"missing a value on flag: --{name}")
        flags[name] = value
    return flags


def _maybe_json(rest: str) -> tuple[list[str], bool]:
    """A JSON array of strings (exec form), else the whole text as one shell-form item."""
    if rest.startswith("["):
        try:
            value = jsontext.loads(rest)
        except ValueError:
            value = None
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return value, True
    return ([rest] if rest else []), False


def _maybe_json_list(rest: str) -> tuple[list[str], bool]:
    """JSON array, else whitespace-separated words (no quote handling, as Docker)."""
    args, is_json = _maybe_json(rest)
    return (args, True) if is_json else (rest.split(), False)


def _words(rest: str, escape: str) -> list[str]:
    """Split on blanks outside quotes, keeping quotes and escapes in the words (they are
    removed when the builder expands each word)."""
    words: list[str] = []
    word, quote, in_word = "", "", False
    i, n = 0, len(rest)
    while i < n:
        ch = rest[i]
        i += 1
        if ch.isspace() and not quote:
            if in_word:
                words.append(word)
                word, in_word = "", False
            continue
        in_word = True
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
        if ch == escape:  # the escaped character neither splits nor quotes
            if i >= n:
                continue  # a lone escape at the end is dropped
            word += ch
            ch = rest[i]
            i += 1
        word += ch
    if in_word:
        words.append(word)
    return words


def _name_values(lineno: int, kw: str, rest: str, escape: str) -> list[str]:
    """ENV/LABEL: ``k=v k2="v 2"`` items, or the legacy ``k value with spaces`` as "k=...".
    """
    words = _words(rest, escape)
    if not words:
        raise DockerfileError(lineno, f"{kw} requires at least one argument")
    if "=" not in words[0]:
        legacy = rest.split(None, 1)
        if len(legacy) < 2:
            raise DockerfileError(lineno, f"{kw} must have two arguments: {kw} name value")
        return [f"{legacy[0]}={legacy[1]}"]
    for word in words:
        if "=" not in word:
            raise DockerfileError(
                lineno, f"syntax error - can't find = in {word!r}. Must be of the form: name=value"
            )
    return words

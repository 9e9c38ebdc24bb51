"""Property tests (hypothesis) for hostile requests: Dockerfiles, .dockerignore, variable
expansion, Docker API bodies and queries, sizes and log options.

The contract: a hostile input gives a well-formed result or a BerthError (InvalidArgument)
whose message names the problem, never a stray KeyError/TypeError/OverflowError (a 500),
and never a super-linear blow-up. BERTH_FUZZ=1 runs many more random examples.
"""

from __future__ import annotations

import base64
import copy
import json
import posixpath
import re
import time
from typing import Any

import pytest
from hypothesis import assume, example, given
from hypothesis import strategies as st

from berth import logopts
from berth.api.docker import translate
from berth.api.docker.mounts import parse_bind, parse_tmpfs
from berth.build import expand, meta
from berth.build.dockerfile import INSTRUCTIONS, parse, parse_duration
from berth.build.ignore import DockerIgnore
from berth.build.model import DockerfileError
from berth.errors import BerthError, InvalidArgument
from berth.service.specs import ContainerCreate, ContainerUpdate
from berth.units import bytes_of

# -- shared strategies -----------------------------------------------------------------------

HOSTILE_SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(), st.sampled_from([2**63, -(2**63) - 1, 10**400,
                                                              -1, 0, 1]),
    st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([1e300, 1.5, -0.0]),
    st.text(max_size=12), st.sampled_from(["", " ", "\x00", "é", "²", "١٢", "1e400", "-1"]),
)
HOSTILE = st.recursive(
    HOSTILE_SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(st.text(max_size=6), inner, max_size=3)),
    max_leaves=6,
)


def _message_ok(exc: BerthError) -> None:
    assert isinstance(exc.message, str) and exc.message.strip()


# -- Dockerfile parser ------------------------------------------------------------------------

_WORDS = st.sampled_from([
    "a", "b", "$A", "${A}", "${A:-x}", "${A:+y}", '"q s"', "'s q'", "\\", "`", "=", "x=y",
    "k=\"v w\"", "[", "]", '["a","b"]', '["a", 1]', "[]", "--from=s", "--chown=1:2",
    "--chmod=755", "--link", "--link=maybe", "--interval=5s", "--retries=3", "--retries=-1",
    "--timeout=1ns", "--start-period=" + "9" * 400 + "s", "--mount=type=cache", "--", "AS",
    "as", "s1", "CMD", "NONE", "<<EOF", "80", "80/udp", "1-3", "99999", "0-65536", "#", "\t",
    "\x00", "\ufeff", "é", "1.5h", "--platform=linux/amd64", "--x=1", '--from="a b"', "'",
])
_KEYWORDS = st.one_of(st.sampled_from(sorted(INSTRUCTIONS)), st.sampled_from(
    ["from", "Run", "ONBUILD RUN", "ONBUILD ONBUILD", "ONBUILD FROM", "FORM", "X", "#", ""]))
_LINE = st.builds(lambda kw, words, end: " ".join([kw, *words]) + end, _KEYWORDS,
                  st.lists(_WORDS, max_size=5),
                  st.sampled_from(["", "", " \\", "\\", "`", "\r", " "]))
_PRELUDE = st.sampled_from(["", "# escape=`\n", "# escape=\\\n", "# syntax=x\n", "\ufeff",
                            "# escape=x\n", "# escape=`\n# escape=`\n", "ARG V=1\n"])
DOCKERFILES = st.one_of(
    st.builds(lambda pre, first, lines: pre + first + "\n" + "\n".join(lines),
              _PRELUDE, st.sampled_from(["FROM a", "FROM a AS s1", "from ${B:-x} as 1s",
                                         "FROM --platform=$P a", "FROM", "RUN x"]),
              st.lists(_LINE, max_size=8)),
    st.text(max_size=200),
)


def _check_dockerfile(text: str) -> None:
    try:
        df = parse(text)
    except DockerfileError as exc:
        _message_ok(exc)
        assert exc.line == 0 or exc.message.startswith(f"Dockerfile line {exc.line}: ")
        assert 0 <= exc.line <= text.count("\n") + 1
        return
    assert df.stages and df.escape in ("\\", "`")
    for stage in df.stages:
        for inst in stage.instructions:
            assert inst.keyword in INSTRUCTIONS and inst.keyword != "FROM"
            assert 1 <= inst.line <= text.count("\n") + 1


@given(DOCKERFILES)
@example("FROM a\nHEALTHCHECK --interval=" + "9" * 400 + "s CMD x")
@example("FROM a\nONBUILD HEALTHCHECK --retries=" + "9" * 5000 + " CMD x")
def test_dockerfile_parse_contract(text: str) -> None:
    """parse() returns a Dockerfile or a DockerfileError whose message names the line."""
    _check_dockerfile(text)


@given(DOCKERFILES, st.dictionaries(st.sampled_from(["A", "B", "P"]),
                                    st.sampled_from(["", "x", "80", "a b", "*", "1-2"])))
@example("FROM a\nEXPOSE 99999", {})
@example("FROM a\nEXPOSE 9-1", {})
@example("FROM a\nEXPOSE 0", {})
def test_meta_apply_contract(text: str, env: dict[str, str]) -> None:
    """Every metadata instruction of a parsed Dockerfile applies or raises a BerthError;
    exposed ports are real port numbers."""
    try:
        df = parse(text)
    except DockerfileError:
        return
    for stage in df.stages:
        cfg: dict[str, Any] = {}
        for inst in stage.instructions:
            if inst.keyword not in meta.META:
                continue
            try:
                cfg = meta.apply(inst, cfg, dict(env), df.escape)
            except BerthError as exc:
                _message_ok(exc)
                continue
            for port in cfg.get("ExposedPorts") or {}:
                number, _, proto = port.partition("/")
                assert 0 <= int(number) <= 65535 and proto in ("tcp", "udp", "sctp")
            hc = cfg.get("Healthcheck") or {}
            assert all(isinstance(hc.get(k, 0), int) and hc.get(k, 0) >= 0
                       for k in ("Interval", "Timeout", "StartPeriod", "Retries"))


@pytest.mark.parametrize("text", [
    "FROM a\n" + "RUN " + "x" * 500_000,
    "FROM a\n" + "RUN a \\\n" * 20_000 + "b",
    "FROM a\n" + "# c\n" * 50_000 + "RUN x",
    "FROM a\nENV " + "a=b " * 50_000,
    "FROM a\nLABEL " + '"' * 100_001,
    "FROM a\nCOPY " + "--chown=1 " * 20_000 + "a b",
])
def test_dockerfile_large_inputs_are_fast(text: str) -> None:
    start = time.monotonic()
    _check_dockerfile(text)
    assert time.monotonic() - start < 5


@given(st.text(alphabet="0123456789.nsuµmh-e+ ", max_size=20))
@example("9" * 400 + "h")
@example("1" + "0" * 30 + "h")
def test_parse_duration_contract(text: str) -> None:
    """A Go duration in ns (an int that fits Docker's int64) or a ValueError (callers turn
    it into a DockerfileError naming the line)."""
    try:
        ns = parse_duration(text)
    except ValueError:
        return
    assert isinstance(ns, int) and 0 <= ns < 2**63


# -- variable expansion -----------------------------------------------------------------------

_EXP_ALPHABET = "$${}:-+?#%/\\'\" abAB*_1"
_ENV = st.dictionaries(st.sampled_from(["A", "B", "a", "_", "1"]),
                       st.text(alphabet="ab*/ $\\'", max_size=6), max_size=3)


@given(st.text(alphabet=_EXP_ALPHABET, max_size=30), _ENV, st.sampled_from(["\\", "`"]))
def test_expand_contract(text: str, env: dict[str, str], escape: str) -> None:
    """Expansion returns text (and words) or a DockerfileError naming the line."""
    for fn in (expand.expand_word, expand.expand_words):
        try:
            out = fn(text, env, escape, 7)
        except DockerfileError as exc:
            assert exc.message.startswith("Dockerfile line 7: ")
            continue
        assert isinstance(out, str | list)


@given(st.text().filter(lambda t: not set(t) & set("$\\'\"`")), _ENV)
def test_expand_plain_text_is_unchanged(text: str, env: dict[str, str]) -> None:
    assert expand.expand_word(text, env) == text
    assert expand.expand_words(text, env) == text.split()


def _naive_glob(pattern: str) -> re.Pattern[str]:
    """The obvious (backtracking) translation: the oracle for small inputs."""
    out, i = [], 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            i += 1
            out.append(re.escape(pattern[i]))
        else:
            out.append({"*": ".*", "?": "."}.get(ch) or re.escape(ch))
        i += 1
    return re.compile("".join(out), re.DOTALL)


def _naive_trim(value: str, op: str, pattern: str) -> str:
    regex = _naive_glob(pattern)
    greedy = op in ("##", "%%")
    cuts = range(len(value) + 1)
    for cut in (reversed(cuts) if greedy == op.startswith("#") else cuts):
        part = value[:cut] if op.startswith("#") else value[cut:]
        if regex.fullmatch(part):
            return value[cut:] if op.startswith("#") else value[:cut]
    return value


# A trailing escape would eat the closing brace: not a pattern these tests can write.
_PAT = st.text(alphabet="ab*?\\/", max_size=8).filter(lambda p: not p.endswith("\\"))


@given(st.text(alphabet="ab/*?", max_size=12), st.sampled_from(["#", "##", "%", "%%"]), _PAT)
@example("aab", "#", "*a")
@example("abab", "%%", "b*")
def test_expand_trim_matches_shell(value: str, op: str, pattern: str) -> None:
    """${A#pat} and friends remove the shortest/longest matching prefix/suffix."""
    got = expand.expand_word("${A" + op + pattern + "}", {"A": value})
    assert got == _naive_trim(value, op, pattern)


@given(st.text(alphabet="ab/*?", max_size=12), st.sampled_from(["/", "//"]),
       _PAT.filter(lambda p: p and "/" not in p), st.text(alphabet="xy", max_size=3))
def test_expand_replace_matches_regex(value: str, op: str, pattern: str, rep: str) -> None:
    """${A/pat/rep} replaces the first (// every) leftmost-longest match, like Docker."""
    got = expand.expand_word("${A" + op + pattern + "/" + rep + "}", {"A": value})
    want = _naive_glob(pattern).sub(lambda _m: rep, value, count=0 if op == "//" else 1)
    assert got == want


@pytest.mark.parametrize("text, env", [
    ("${A//?/$A}", {"A": "a" * 3000}),  # a square per line: a hostile ENV chain explodes
    ("$A" * 2000, {"A": "a" * 3000}),
    ("${A#*a*a*a*a*a*a*a*b}", {"A": "a" * 5000}),
    ("${A%%*a*a*a*a*a*a*b}", {"A": "a" * 5000}),
    ("${A//a*a*a*a*a*a*a*b/x}", {"A": "a" * 5000}),
    ("${A/a*b/x}", {"A": "a" * 200_000}),
    ("x${A}y", {"A": "a" * 500_000}),
])
def test_expand_is_bounded(text: str, env: dict[str, str]) -> None:
    """Hostile expansions finish fast, with a bounded result or a DockerfileError."""
    start = time.monotonic()
    try:
        out = expand.expand_word(text, env, line=3)
        words = expand.expand_words(text, env, line=3)
    except DockerfileError as exc:
        assert "Dockerfile line 3: " in exc.message
    else:
        assert len(out) <= expand.MAX_EXPANSION and sum(map(len, words)) <= len(out)
    assert time.monotonic() - start < 3


def test_env_doubling_is_refused() -> None:
    """ENV A=$A$A forty times would need 2**40 bytes: refused once over the limit."""
    env = {"A": "ab"}
    with pytest.raises(DockerfileError, match="line 9"):
        for _ in range(40):
            env["A"] = expand.expand_word("$A$A", env, line=9)


# -- .dockerignore ----------------------------------------------------------------------------

_IGN_LINE = st.text(alphabet="ab*?[]!^-\\/. #", max_size=10)
_IGN_PATH = st.text(alphabet="ab./*[\\", max_size=14)


def _serialise(pattern: Any) -> str:
    """A parsed pattern as a .dockerignore line: what a clean pattern starts or ends with
    that a line would lose ("!", "#", blanks) is escaped."""
    text = pattern.text
    if text[:1] in ("!", "#") or text[:1].isspace():
        text = "\\" + text
    if text[-1:].isspace():
        text = text[:-1] + "\\" + text[-1]
    return ("!" if pattern.exception else "") + text


@given(st.lists(_IGN_LINE, max_size=5), st.lists(_IGN_PATH, max_size=5))
@example(["a/../!"], [])
@example(["a/../#b"], ["#b"])
@example(["a/.. /b"], [" /b"])
@example(["[", "!a"], ["a"])
@example(["a/[/]b"], ["a/b"])
@example(["\\"], ["\\"])
def test_dockerignore_contract(lines: list[str], paths: list[str]) -> None:
    """Parsing refuses a bad pattern with InvalidArgument naming the line; matching an
    accepted list never raises; and the cleaned patterns, written back out, match alike."""
    try:
        ign = DockerIgnore.from_text("\n".join(lines))
    except InvalidArgument as exc:
        assert ".dockerignore line " in exc.message
        return
    again = DockerIgnore.from_text("\n".join(map(_serialise, ign._patterns)))
    for path in paths:
        answer = ign.excluded(path)
        assert isinstance(answer, bool) and answer == again.excluded(path)
        assert isinstance(ign.may_contain_included(path), bool)


def _naive_translate(pattern: str) -> str:
    """The regex translation of ignore.py before the backtracking-safe matcher, the oracle."""
    out, i, n, in_class = ["^"], 0, len(pattern), False
    while i < n:
        ch = pattern[i]
        i += 1
        if in_class:
            if ch == "]":
                in_class = False
                out.append(ch)
            elif ch == "\\" and i < n:
                out.append(re.escape(pattern[i]))
                i += 1
            else:
                out.append(re.escape(ch) if ch in "[&~|\\" else ch)
        elif ch == "[":
            in_class = True
            out.append(ch)
        elif ch == "*":
            if i < n and pattern[i] == "*":
                i += 1
                if i < n and pattern[i] == "/":
                    i += 1
                out.append(".*" if i >= n else "(.*/)?")
            else:
                out.append("[^/]*")
        elif ch == "?":
            out.append("[^/]")
        elif ch == "\\":
            out.append(re.escape(pattern[i]) if i < n else r"\\")
            i += 1 if i < n else 0
        else:
            out.append(re.escape(ch))
    return "".join(out) + "$"


@given(st.text(alphabet="ab*?/[]^\\", min_size=1, max_size=10),
       st.text(alphabet="ab/", max_size=10))
@example("*a*a*b", "aab")
@example("**/a**/b", "a/xb")
def test_dockerignore_matcher_agrees_with_regex(pattern: str, path: str) -> None:
    """Whatever engine ignore.py uses, a pattern means what Docker's regex means."""
    try:
        regex = re.compile(_naive_translate(pattern), re.DOTALL)
        ign = DockerIgnore.from_text(pattern)
    except (re.error, InvalidArgument):
        return
    assume(len(ign._patterns) == 1 and ign._patterns[0].text == pattern)
    assert ign._patterns[0].fullmatch(path) == bool(regex.fullmatch(path))
    rel = path.lstrip("/")
    clean = posixpath.normpath(rel) if rel else "."  # what excluded() matches
    dirs = clean.split("/")
    want = clean != "." and any(regex.fullmatch("/".join(dirs[:i]))
                                for i in range(1, len(dirs) + 1))
    assert ign.excluded(path) == want


@pytest.mark.parametrize("pattern, path", [
    ("*a*a*a*a*a*a*a*b", "a" * 250),
    ("**a**a**a**a**a**b", "a" * 4000),
    ("**/a**/a**/a**/a**/b", "a/" * 2000),
    ("[a]*[a]*[a]*[a]*[a]*[a]*[a]*b", "a" * 250),
    ("?*?*?*?*?*?*?*?*b", "a" * 250),
    ("*" * 5000 + "b", "a" * 4000),
])
def test_dockerignore_no_catastrophic_backtracking(pattern: str, path: str) -> None:
    ign = DockerIgnore.from_text(pattern + "\n!x\n")
    start = time.monotonic()
    assert not ign.excluded(path)
    ign.may_contain_included(path)
    assert time.monotonic() - start < 2


# -- Docker API: container create / update ----------------------------------------------------

BASE_BODY: dict[str, Any] = {
    "Hostname": "web", "User": "1000:1000", "AttachStdin": False, "AttachStdout": True,
    "AttachStderr": True, "Tty": True, "OpenStdin": True, "StdinOnce": False,
    "Env": ["A=1", "B=two"], "Cmd": ["sh", "-c", "sleep 5"], "Image": "busybox:latest",
    "Volumes": {"/data": {}}, "WorkingDir": "/srv", "Entrypoint": None,
    "Labels": {"com.example": "x"}, "ExposedPorts": {"80/tcp": {}},
    "StopSignal": "SIGTERM", "StopTimeout": 10,
    "Healthcheck": {"Test": ["CMD", "true"], "Interval": 5_000_000_000,
                    "Timeout": 1_000_000_000, "StartPeriod": 0, "Retries": 3},
    "HostConfig": {
        "Binds": ["/srv/a:/a:ro", "vol:/b"],
        "Mounts": [{"Type": "volume", "Source": "v2", "Target": "/c", "ReadOnly": False},
                   {"Type": "tmpfs", "Target": "/t", "TmpfsOptions": {"SizeBytes": 65536}}],
        "Tmpfs": {"/run": "rw,size=64m,mode=1777"},
        "PortBindings": {"80/tcp": [{"HostIp": "", "HostPort": "8080"}]},
        "RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 3},
        "Memory": 64 << 20, "MemorySwap": 128 << 20, "NanoCpus": 500_000_000,
        "CpuShares": 512, "PidsLimit": 100,
        "Ulimits": [{"Name": "nofile", "Soft": 1024, "Hard": 2048}],
        "LogConfig": {"Type": "json-file", "Config": {"max-size": "10m", "max-file": "3"}},
        "ExtraHosts": ["db:10.0.0.2"], "Dns": [], "CapAdd": ["NET_ADMIN"],
        "CapDrop": ["MKNOD"], "SecurityOpt": None, "Sysctls": {"net.ipv4.ip_forward": "1"},
        "NetworkMode": "mynet", "ShmSize": 64 << 20, "MemorySwappiness": -1,
        "ReadonlyRootfs": False, "AutoRemove": False, "Init": True, "GroupAdd": ["10"],
        "OomScoreAdj": 0, "ConsoleSize": [24, 80],
    },
    "NetworkingConfig": {"EndpointsConfig": {"mynet": {
        "Aliases": ["web"], "IPAMConfig": {"IPv4Address": "10.1.0.5"}}}},
}
UPDATE_BODY: dict[str, Any] = {
    "Memory": 64 << 20, "MemorySwap": 128 << 20, "CpuQuota": 50_000, "CpuPeriod": 100_000,
    "CpuShares": 512, "PidsLimit": 100, "RestartPolicy": {"Name": "always"},
    "MemorySwappiness": None, "CpusetCpus": "0-1", "CpusetMems": "", "MemoryReservation": 0,
}


def _paths(doc: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every key/index path in a JSON document (the root excluded)."""
    out = []
    if isinstance(doc, dict):
        items: Any = doc.items()
    elif isinstance(doc, list):
        items = enumerate(doc)
    else:
        return out
    for key, value in items:
        out.append((*prefix, key))
        out.extend(_paths(value, (*prefix, key)))
    return out


@st.composite
def mutated(draw: st.DrawFn, base: dict[str, Any]) -> dict[str, Any]:
    """A valid body with a few hostile edits: retyped values, dropped or unknown keys."""
    body = copy.deepcopy(base)
    for _ in range(draw(st.integers(0, 3))):
        paths = _paths(body)
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = body
        for key in path[:-1]:
            parent = parent[key]
        action = draw(st.sampled_from(["retype", "retype", "drop", "add"]))
        if action == "retype":
            parent[path[-1]] = draw(HOSTILE)
        elif action == "drop":
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[draw(st.text(max_size=8))] = draw(HOSTILE)
    return body


def _translate(fn: Any, body: Any, model: type) -> None:
    try:
        result = fn(body)
    except InvalidArgument as exc:
        _message_ok(exc)
        return
    assert isinstance(result, model)


def test_base_bodies_are_valid() -> None:
    """The strategies start from bodies Berth accepts (so mutations reach deep)."""
    req = translate.container_create(copy.deepcopy(BASE_BODY))
    assert req.memory == 64 << 20 and req.networks == {"mynet": ["web"]}
    assert len(req.mounts) == 6 and req.ports[0].host_port == 8080
    assert translate.container_update(copy.deepcopy(UPDATE_BODY)).cpus == 0.5


_HUGE = 10**400


@given(mutated(BASE_BODY))
@example({"Image": "a", "HostConfig": {"NanoCpus": _HUGE}})
@example({"Image": "a", "HostConfig": {"CpuQuota": _HUGE}})
@example({"Image": "a", "HostConfig": {"CpuQuota": 1, "CpuPeriod": _HUGE}})
@example({"Image": "a", "HostConfig": {"Memory": 1e300}})
@example({"Image": "a", "Healthcheck": {"Interval": _HUGE}})
@example({"Image": "a", "HostConfig": {"PortBindings": {"80/tcp": 5}}})
@example({"Image": "a", "HostConfig": {"PortBindings": {"²/tcp": None}}})
@example({"Image": "a", "HostConfig": {"PortBindings": {"80": [{"HostPort": "²"}]}}})
@example({"Image": "a", "HostConfig": {"LogConfig": {"Config": {"max-file": "²"}}}})
@example({"Image": "a", "HostConfig": {"LogConfig": {"Config": {"max-size": "9" * 400}}}})
@example({"Image": "a", "HostConfig": {"Tmpfs": {"/t": "size=" + "9" * 400}}})
@example({"Image": "a", "NetworkingConfig": {"EndpointsConfig": {"bridge": {
    "IPAMConfig": {"IPv4Address": 5}}}}})
def test_container_create_contract(body: dict[str, Any]) -> None:
    _translate(translate.container_create, body, ContainerCreate)


@given(st.one_of(mutated(UPDATE_BODY), HOSTILE))
@example({"NanoCpus": _HUGE})
@example({"CpuQuota": 10**309, "CpuPeriod": 1})
def test_container_update_contract(body: Any) -> None:
    _translate(translate.container_update, body, ContainerUpdate)


@given(HOSTILE)
def test_container_create_any_json(body: Any) -> None:
    _translate(translate.container_create, body, ContainerCreate)


@given(st.text(alphabet="/ab:,romwZz", max_size=20))
@example(",:/a")
def test_parse_bind_contract(text: str) -> None:
    try:
        parse_bind(text, "HostConfig.Binds[0]")
    except InvalidArgument as exc:
        assert "HostConfig.Binds[0]" in exc.message


@given(st.text(alphabet="/t", min_size=1, max_size=4),
       st.lists(st.sampled_from(["size=", "mode=", "ro", "rw", "exec", "noexec", "nosuid",
                                 "1777", "64m", "9" * 30, "-1", "0x1", "²", " ", "=", "x"]),
                max_size=6).map("".join))
def test_parse_tmpfs_contract(target: str, options: str) -> None:
    try:
        mount = parse_tmpfs(target, options)
    except InvalidArgument as exc:
        assert "HostConfig.Tmpfs" in exc.message
        return
    assert mount.tmpfs_size is None or mount.tmpfs_size > 0


# -- sizes and log options --------------------------------------------------------------------

_SIZE_TEXT = st.one_of(
    st.text(alphabet="0123456789.-+ekmgtpbiKMGB \t", max_size=12),
    st.sampled_from(["10m", "1.5GiB", "-1", "1e400", "", " 1 k", "9" * 400, "1" * 30 + "p",
                     "١٢", "²", "0.0000001k", ".5m", "5.m"]),
)


@given(_SIZE_TEXT)
def test_bytes_of_contract(text: str) -> None:
    """A size is a non-negative int, or None when the text is not a size."""
    size = bytes_of(text)
    assert size is None or (isinstance(size, int) and size >= 0)


@given(st.integers(0, 2**62), st.sampled_from(["", "b", "k", "m", "g", "t", "p"]))
def test_bytes_of_round_trip(n: int, unit: str) -> None:
    """What docker would send for n of a unit reads back as exactly n of it (no float
    rounding), or None past int64."""
    scale = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40,
             "p": 1 << 50}[unit]
    want = n * scale if n * scale < 2**63 else None
    assert bytes_of(f"{n}{unit}") == want
    if unit:
        assert bytes_of(f" {n} {unit.upper()}iB ") == want


@given(st.dictionaries(st.sampled_from(["max-size", "max-file", "mode", ""]),
                       st.one_of(_SIZE_TEXT, HOSTILE_SCALARS), max_size=3))
@example({"max-file": "²"})
@example({"max-size": "9" * 400})
def test_log_options_contract(opts: dict[str, Any]) -> None:
    """from_docker refuses with LogOptError naming the key (callers word it), else the
    values are in range."""
    try:
        out = logopts.from_docker(opts)
    except logopts.LogOptError as exc:
        assert exc.key in opts and str(exc).startswith(f"{exc.key}: ")
        return
    assert out.get("max_size", -1) >= -1 and out.get("max_files", 0) >= 0


# -- JSON query options -----------------------------------------------------------------------


@given(st.one_of(st.text(max_size=30), HOSTILE.map(json.dumps)))
def test_build_json_map_contract(text: str) -> None:
    from berth.api.docker.routes.build import json_map

    try:
        out = json_map(text, "buildargs")
    except InvalidArgument as exc:
        assert "buildargs" in exc.message
        return
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in out.items())


@given(st.one_of(st.text(max_size=30), HOSTILE.map(json.dumps)))
@example('{"label": {"a": [1]}}')
@example('{"label": {"a": {"b": 1}}}')
def test_parse_filters_contract(text: str) -> None:
    from berth.api.docker.routes.common import parse_filters

    try:
        out = parse_filters(text)
    except InvalidArgument as exc:
        _message_ok(exc)
        return
    assert all(isinstance(v, list) for v in out.values())


# Text from outside that json.loads would recurse into until RecursionError (a 500).
_DEEP_JSON = "[" * 100_000


def test_build_json_map_deep_nesting() -> None:
    from berth.api.docker.routes.build import json_map

    with pytest.raises(InvalidArgument, match="nested too deeply"):
        json_map(_DEEP_JSON, "buildargs")


def test_parse_filters_deep_nesting() -> None:
    from berth.api.docker.routes.common import parse_filters

    with pytest.raises(InvalidArgument, match="nested too deeply"):
        parse_filters(_DEEP_JSON)


def test_exec_form_deep_nesting_is_shell_form() -> None:
    # "CMD [[[..." is not a JSON array of strings: Docker takes such text as shell form.
    doc = parse(f"FROM scratch\nCMD {_DEEP_JSON}\n")
    assert doc.stages[0].instructions[-1].json_form is False


def test_registry_auth_header_deep_nesting() -> None:
    from berth.api.docker.imageshapes import _decode_header

    header = base64.urlsafe_b64encode(b"[" * 20_000).decode()  # within the size limit
    with pytest.raises(InvalidArgument, match="base64url-encoded JSON"):
        _decode_header(header, "X-Registry-Auth")


@pytest.mark.parametrize("body", [
    {"Name": "n", "ConfigFrom": "x"},
    {"Name": "n", "IPAM": {"Config": 5}},
])
def test_network_create_wrong_types(body: dict[str, Any]) -> None:
    from berth.api.docker.routes.networks import _create_request

    with pytest.raises(InvalidArgument, match="expected"):
        _create_request(body)


@given(st.one_of(st.text(max_size=40), st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda kids: st.lists(kids, max_size=3) | st.dictionaries(
        st.sampled_from(["resize", "close_stdin", "detach", "x"]), kids, max_size=3),
    max_leaves=8).map(json.dumps)))
@example(_DEEP_JSON)
@example('{"resize": [24, 80]}')
def test_control_message_contract(text: str) -> None:
    from berth.api.routes.streams import control_message

    ctl, size = control_message(text)
    assert isinstance(ctl, dict)
    if size is not None:
        assert ctl["resize"] == list(size) and all(0 < n < 1 << 16 for n in size)


def test_commit_change_deep_nesting_is_shell_form() -> None:
    from berth.image.changes import parse_changes

    deep = "[" * 50_000  # within a change's 64 KiB, far beyond json's recursion
    changes = parse_changes(["CMD " + deep])  # not an exec-form array: shell form
    assert changes["Cmd"] == ["/bin/sh", "-c", deep]

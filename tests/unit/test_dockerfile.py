"""The Dockerfile parser: Docker's syntax rules and errors that name the line."""

from __future__ import annotations

import pytest

from berth.build.dockerfile import parse, parse_duration
from berth.build.model import DockerfileError, Instruction


def _error(text: str) -> DockerfileError:
    with pytest.raises(DockerfileError) as info:
        parse(text)
    return info.value


MULTI_STAGE = """\
# syntax=docker/dockerfile:1
ARG GO_VERSION=1.22
ARG BASE

FROM --platform=$BUILDPLATFORM golang:${GO_VERSION} AS Build
WORKDIR /src
COPY --chown=1000:1000 --chmod=0755 go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 \\
    # a comment inside the continuation
    go build -o /out/app \\

    ./cmd/app

FROM busybox
COPY --from=build /out/app /usr/local/bin/app
ENTRYPOINT ["/usr/local/bin/app"]
CMD ["--help"]
"""


def test_multi_stage() -> None:
    df = parse(MULTI_STAGE)
    assert [a.args for a in df.global_args] == [("GO_VERSION=1.22",), ("BASE",)]
    assert len(df.stages) == 2
    build, final = df.stages
    assert (build.index, build.base, build.name, build.platform, build.line) == (
        0, "golang:${GO_VERSION}", "build", "$BUILDPLATFORM", 5,
    )  # fmt: skip
    assert build.original == "FROM --platform=$BUILDPLATFORM golang:${GO_VERSION} AS Build"
    assert [i.keyword for i in build.instructions] == ["WORKDIR", "COPY", "RUN", "COPY", "RUN"]
    copy = build.instructions[1]
    assert copy.flags == {"chown": "1000:1000", "chmod": "0755"}
    assert copy.args == ("go.mod", "go.sum", "./")
    run = build.instructions[4]
    assert run.line == 10
    assert run.args == ("CGO_ENABLED=0     go build -o /out/app     ./cmd/app",)
    assert run.original == "RUN CGO_ENABLED=0     go build -o /out/app     ./cmd/app"
    assert not run.json_form
    assert (final.name, final.base, final.line) == (None, "busybox", 16)
    assert final.instructions[0].flags == {"from": "build"}
    assert final.instructions[1] == Instruction(
        "ENTRYPOINT", ("/usr/local/bin/app",), True, {}, 18, 'ENTRYPOINT ["/usr/local/bin/app"]'
    )
    assert final.instructions[2].args == ("--help",)


def test_case_insensitive_and_whitespace() -> None:
    df = parse("  from busybox as Base\n\trun   echo hi  \r\ncmd echo done\n")
    stage = df.stages[0]
    assert stage.name == "base"
    assert [(i.keyword, i.args, i.original) for i in stage.instructions] == [
        ("RUN", ("echo hi",), "run   echo hi"),
        ("CMD", ("echo done",), "cmd echo done"),
    ]


def test_escape_directive_backtick() -> None:
    text = (
        "# escape=`\n"
        "\n"
        "FROM mcr.microsoft.com/windows/servercore\n"
        "COPY testfile.txt c:\\\n"
        "RUN dir c:\\ `\n"
        "    && echo done\n"
    )
    df = parse(text)
    assert df.escape == "`"
    copy, run = df.stages[0].instructions
    assert copy.args == ("testfile.txt", "c:\\")  # a trailing backslash is no continuation
    assert run.args == ("dir c:\\     && echo done",)
    assert run.line == 5


def test_backslash_continuation_trailing_blank_and_comments() -> None:
    text = "FROM a\nRUN echo one \\  \n# gone\n  # gone too\n\n    two\nUSER x\n"
    stage = parse(text).stages[0]
    assert stage.instructions[0].args == ("echo one     two",)
    assert (stage.instructions[1].keyword, stage.instructions[1].line) == ("USER", 7)


def test_continuation_at_end_of_file() -> None:
    assert parse("FROM a\nRUN echo \\\n").stages[0].instructions[0].args == ("echo",)


def test_directives_only_at_top() -> None:
    # After a comment, "# escape=`" is a comment: backslash stays the escape.
    df = parse("# hello\n# escape=`\nFROM a\n")
    assert df.escape == "\\"
    # A blank line ends the directives too.
    assert parse("\n# escape=`\nFROM a\n").escape == "\\"
    # An unknown directive is a comment and ends them.
    assert parse("# foo=bar\n# escape=`\nFROM a\n").escape == "\\"
    assert parse("#escape = `\n# syntax=docker/dockerfile:1\nFROM a\n").escape == "`"


def test_directive_errors() -> None:
    err = _error("# escape=`\n# escape=\\\nFROM a\n")
    assert err.line == 2 and "only one escape" in str(err)
    err = _error("# escape=x\nFROM a\n")
    assert err.line == 1 and "invalid escape token" in str(err)


def test_json_and_shell_forms() -> None:
    text = """FROM a
CMD ["echo", "a b"]
CMD ["echo" "a"]
CMD [1, 2]
CMD []
RUN [ "sh", "-c", "echo \\"x\\"" ]
ENTRYPOINT echo [not json
"""
    cmds = parse(text).stages[0].instructions
    assert (cmds[0].args, cmds[0].json_form) == (("echo", "a b"), True)
    assert (cmds[1].args, cmds[1].json_form) == (('["echo" "a"]',), False)
    assert (cmds[2].args, cmds[2].json_form) == (("[1, 2]",), False)
    assert (cmds[3].args, cmds[3].json_form) == ((), True)
    assert (cmds[4].args, cmds[4].json_form) == (("sh", "-c", 'echo "x"'), True)
    assert (cmds[5].args, cmds[5].json_form) == (("echo [not json",), False)


def test_env_label_arg() -> None:
    text = """ARG A
ARG B=1 C="two words"
FROM a
ENV k=v k2="v 2" k3=a\\ b
ENV legacy value with  spaces
LABEL "com.example.vendor"="ACME" version=1.0
LABEL legacy "quoted value"
ENV PATH=/x:$PATH
"""
    df = parse(text)
    assert [a.args for a in df.global_args] == [("A",), ("B=1", 'C="two words"')]
    env, legacy, label, legacy_label, path = df.stages[0].instructions
    assert env.args == ("k=v", 'k2="v 2"', "k3=a\\ b")
    assert legacy.args == ("legacy=value with  spaces",)
    assert label.args == ('"com.example.vendor"="ACME"', "version=1.0")
    assert legacy_label.args == ('legacy="quoted value"',)
    assert path.args == ("PATH=/x:$PATH",)


def test_env_errors() -> None:
    err = _error("FROM a\nENV k=v novalue\n")
    assert err.line == 2 and "can't find =" in str(err)
    assert _error("FROM a\nENV onlykey\n").line == 2
    assert _error("FROM a\n\nLABEL\n").line == 3
    assert "ARG" in str(_error("FROM a\nARG\n"))


def test_copy_add_forms() -> None:
    text = """FROM a
COPY ["with space.txt", "/dest dir/"]
ADD a.tar.gz b c /d/
COPY --link --from=0 /x /y
ADD --chmod=644 f /f
"""
    c1, a1, c2, a2 = parse(text).stages[0].instructions
    assert (c1.args, c1.json_form) == (("with space.txt", "/dest dir/"), True)
    assert a1.args == ("a.tar.gz", "b", "c", "/d/")
    assert c2.flags == {"link": "true", "from": "0"}
    assert a2.flags == {"chmod": "644"}


def test_copy_one_argument() -> None:
    err = _error("FROM a\nRUN x\nCOPY onlyone\n")
    assert err.line == 3
    assert "COPY requires at least two arguments" in str(err)
    assert _error('FROM a\nADD ["x"]\n').line == 2


def test_from_forms_and_errors() -> None:
    df = parse("FROM scratch\nFROM busybox@sha256:" + "a" * 64 + " AS b.2-x_y\n")
    assert df.stages[0].base == "scratch"
    assert df.stages[1].name == "b.2-x_y"
    assert _error("FROM a b\n").line == 1
    assert _error("FROM\n").line == 1
    assert "invalid name" in str(_error("FROM a AS 1st\n"))
    err = _error("FROM a AS x\nRUN y\nFROM b as X\n")
    assert err.line == 3 and "duplicate stage name 'x'" in str(err)


def test_flag_rules() -> None:
    assert "BuildKit" in str(_error("FROM a\nRUN --mount=type=cache,target=/c make\n"))
    assert _error("FROM a\n\nRUN --network=none x\n").line == 3
    assert "--security" in str(_error("FROM a\nRUN --security=insecure x\n"))
    assert "BuildKit" in str(_error("FROM a\nCOPY --parents a b\n"))
    assert "unknown flag" in str(_error("FROM a\nCOPY --bogus=1 a b\n"))
    assert "unknown flag" in str(_error("FROM a\nCMD --help\n"))  # as Docker: flags first
    assert "duplicate flag" in str(_error("FROM a\nCOPY --from=a --from=b x y\n"))
    assert "missing a value" in str(_error("FROM a\nCOPY --from x y\n"))
    assert "true or false" in str(_error("FROM a\nCOPY --link=maybe x y\n"))
    assert "unknown flag" in str(_error("FROM a\nADD --from=x a b\n"))
    stage = parse('FROM a\nCOPY --chown="1:2" -- --weird /d\n').stages[0]
    assert stage.instructions[0].flags == {"chown": "1:2"}
    assert stage.instructions[0].args == ("--weird", "/d")


def test_healthcheck() -> None:
    text = """FROM a
HEALTHCHECK NONE
HEALTHCHECK --interval=5s --timeout=3s --start-period=1m30s --retries=3 CMD curl -f http://x/
healthcheck cmd ["/bin/check", "--quick"]
"""
    none, shell, exe = parse(text).stages[0].instructions
    assert (none.args, none.json_form, none.flags) == (("NONE",), False, {})
    assert (shell.args, shell.json_form) == (("curl -f http://x/",), False)
    assert shell.flags == {"interval": "5s", "timeout": "3s", "start-period": "1m30s",
                           "retries": "3"}  # fmt: skip
    assert (exe.args, exe.json_form) == (("/bin/check", "--quick"), True)


def test_healthcheck_errors() -> None:
    assert "no arguments" in str(_error("FROM a\nHEALTHCHECK NONE extra\n"))
    assert "try CMD" in str(_error("FROM a\nHEALTHCHECK curl x\n"))
    assert _error("FROM a\nHEALTHCHECK\n").line == 2
    assert "requires a command" in str(_error("FROM a\nHEALTHCHECK CMD\n"))
    assert "invalid duration" in str(_error("FROM a\nHEALTHCHECK --interval=5 CMD x\n"))
    assert "1ms" in str(_error("FROM a\nHEALTHCHECK --timeout=10us CMD x\n"))
    assert "retries" in str(_error("FROM a\nHEALTHCHECK --retries=-1 CMD x\n"))
    assert "unknown flag" in str(_error("FROM a\nHEALTHCHECK --every=1s CMD x\n"))


def test_parse_duration() -> None:
    assert parse_duration("0") == 0
    assert parse_duration("1m30s") == 90 * 10**9
    assert parse_duration("1.5h") == 5400 * 10**9
    assert parse_duration("250ms") == 250 * 10**6
    for bad in ("", "5", "s", "1x", "1s 2s"):
        with pytest.raises(ValueError):
            parse_duration(bad)


def test_onbuild() -> None:
    stage = parse("FROM a\nONBUILD  run echo hi\nONBUILD COPY --chown=1 . /app\n").stages[0]
    run, copy = stage.instructions
    assert run.keyword == "ONBUILD" and run.args == ("run echo hi",)
    assert run.inner == Instruction("RUN", ("echo hi",), False, {}, 2, "run echo hi")
    assert copy.inner is not None and copy.inner.flags == {"chown": "1"}
    for bad in ("ONBUILD", "FROM", "MAINTAINER"):
        err = _error(f"FROM a\nRUN x\nONBUILD {bad.lower()} x\n")
        assert err.line == 3 and f"{bad} isn't allowed" in str(err)
    assert "unknown instruction: NOPE" in str(_error("FROM a\nONBUILD nope\n"))
    assert _error("FROM a\nONBUILD\n").line == 2


def test_simple_instructions() -> None:
    text = """FROM a
MAINTAINER Jane <jane@example.com>
EXPOSE 80 443/tcp 53/udp
VOLUME ["/data", "/logs"]
VOLUME /a /b
STOPSIGNAL SIGTERM
SHELL ["powershell", "-Command"]
WORKDIR /my dir
USER app:app
"""
    got = [(i.keyword, i.args, i.json_form) for i in parse(text).stages[0].instructions]
    assert got == [
        ("MAINTAINER", ("Jane <jane@example.com>",), False),
        ("EXPOSE", ("80", "443/tcp", "53/udp"), False),
        ("VOLUME", ("/data", "/logs"), True),
        ("VOLUME", ("/a", "/b"), False),
        ("STOPSIGNAL", ("SIGTERM",), False),
        ("SHELL", ("powershell", "-Command"), True),
        ("WORKDIR", ("/my dir",), False),
        ("USER", ("app:app",), False),
    ]


@pytest.mark.parametrize(
    ("text", "line", "needle"),
    [
        ("FROM a\nRUN\n", 2, "RUN requires at least one argument"),
        ("FROM a\nRUN []\n", 2, "RUN requires"),
        ("FROM a\nCMD\n", 2, "CMD requires"),
        ("FROM a\nSHELL /bin/bash -c\n", 2, "JSON form"),
        ("FROM a\nSHELL []\n", 2, "SHELL requires"),
        ("FROM a\nEXPOSE\n", 2, "EXPOSE requires"),
        ("FROM a\nVOLUME [\"\"]\n", 2, "empty string"),
        ("FROM a\nWORKDIR\n", 2, "exactly one argument"),
        ("FROM a\n\n\nUSER \\\n\n", 4, "USER requires"),
    ],
)
def test_missing_arguments(text: str, line: int, needle: str) -> None:
    err = _error(text)
    assert err.line == line and needle in str(err)


def test_unknown_instruction() -> None:
    err = _error("FROM a\nRUN x \\\n  y\nFOO bar\n")
    assert err.line == 4
    assert "unknown instruction: FOO" in str(err)
    assert str(err).startswith("Dockerfile line 4: ")
    assert "did you mean COPY" in str(_error("FROM a\ncopu a b\n"))


def test_before_first_from() -> None:
    err = _error("# comment\nARG X=1\nRUN echo\nFROM a\n")
    assert err.line == 3 and "before the first FROM" in str(err)


def test_heredoc_refused() -> None:
    text = "FROM a\nRUN <<EOF\necho hi\nEOF\n"
    err = _error(text)
    assert err.line == 2 and "heredoc" in str(err)
    assert "heredoc" in str(_error("FROM a\nCOPY <<-'EOT' /f\nx\nEOT\n"))
    # Not heredocs: a here-string and a shift.
    stage = parse("FROM a\nRUN cat <<< hi && echo $((1<<FOO))\n").stages[0]
    assert stage.instructions[0].args == ("cat <<< hi && echo $((1<<FOO))",)


def test_empty_and_no_from() -> None:
    for text in ("", "\n\n", "# only a comment\n", "# escape=`\n"):
        err = _error(text)
        assert err.line == 0 and str(err) == "the Dockerfile has no instructions"
    assert "no FROM" in str(_error("ARG A=1\n"))


def test_bom_and_crlf() -> None:
    df = parse("\ufeff# escape=`\r\nFROM a\r\nRUN x `\r\n  y\r\n")
    assert df.escape == "`"
    assert df.stages[0].instructions[0].args == ("x   y",)


def test_error_is_invalid_argument() -> None:
    from berth.errors import InvalidArgument

    assert isinstance(_error("BOGUS\n"), InvalidArgument)

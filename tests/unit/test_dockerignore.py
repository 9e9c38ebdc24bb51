""".dockerignore matching with Docker's rules."""

from __future__ import annotations

import pytest

from berth.build.ignore import DockerIgnore
from berth.errors import InvalidArgument


def _ign(text: str) -> DockerIgnore:
    return DockerIgnore.from_text(text)


def test_empty_and_comments() -> None:
    ign = _ign("\n# a comment\n   \n")
    assert ign.empty
    assert not ign.excluded("anything")
    assert not ign.may_contain_included("anything")


def test_star_does_not_cross_slash() -> None:
    ign = _ign("*.log\n")
    assert ign.excluded("a.log")
    assert not ign.excluded("sub/a.log")
    assert not ign.excluded("a.log.txt")


def test_double_star() -> None:
    ign = _ign("**/tmp\n**/*.pyc\n")
    assert ign.excluded("tmp", is_dir=True)
    assert ign.excluded("a/b/tmp", is_dir=True)
    assert ign.excluded("a/b/tmp/file")  # through the parent
    assert ign.excluded("x.pyc") and ign.excluded("p/q/x.pyc")
    assert not ign.excluded("tmpfile")
    ign = _ign("docs/**\n")
    assert ign.excluded("docs/a/b.md")
    assert not ign.excluded("docs", is_dir=True)  # as Docker: only what is below
    assert _ign("**\n").excluded("anything/at/all")
    assert _ign("a/**/b\n").excluded("a/b") and _ign("a/**/b\n").excluded("a/x/y/b")


def test_exceptions_last_match_wins() -> None:
    ign = _ign("*.log\n!keep.log\n")
    assert ign.excluded("a.log")
    assert not ign.excluded("keep.log")
    ign = _ign("!keep.log\n*.log\n")
    assert ign.excluded("keep.log")


def test_directory_pattern_and_cleaning() -> None:
    ign = _ign("dir/\n/abs\n./rel/./x\nx//y/../z\n")
    assert ign.excluded("dir", is_dir=True)
    assert ign.excluded("dir/sub/file")
    assert ign.excluded("dir")  # the trailing "/" is cleaned away, as in Docker
    assert ign.excluded("abs") and ign.excluded("abs/f")
    assert not ign.excluded("sub/abs")
    assert ign.excluded("rel/x")
    assert ign.excluded("x/z") and not ign.excluded("x/y")


def test_relpath_normalised() -> None:
    ign = _ign("a/b\n")
    assert ign.excluded("./a/b") and ign.excluded("/a/b/") and ign.excluded("a//b")
    assert not ign.excluded(".") and not ign.excluded("")


def test_question_mark_and_classes() -> None:
    ign = _ign("file?.txt\n[a-c].md\n[^x]y\n\\*star\n")
    assert ign.excluded("file1.txt") and not ign.excluded("file10.txt")
    assert not ign.excluded("file/.txt")
    assert ign.excluded("b.md") and not ign.excluded("d.md") and not ign.excluded("-.md")
    assert ign.excluded("ay") and not ign.excluded("xy")
    assert ign.excluded("*star") and not ign.excluded("astar")


def test_dots_are_literal() -> None:
    ign = _ign(".git\n.env*\n")
    assert ign.excluded(".git/HEAD")
    assert ign.excluded(".env.local")
    assert not ign.excluded("agit")


def test_reinclude_below_excluded_dir() -> None:
    ign = _ign("build\n!build/keep.txt\n")
    assert ign.excluded("build", is_dir=True)
    assert ign.excluded("build/other")
    assert not ign.excluded("build/keep.txt")
    assert ign.may_contain_included("build")
    assert not ign.may_contain_included("other")
    assert not ign.may_contain_included("build/sub")  # keep.txt is not below build/sub


def test_may_contain_included_wildcards() -> None:
    ign = _ign("*\n!**/keep\n!src/*/main.go\n")
    assert ign.may_contain_included("anything/deep")  # "**" could match below
    ign = _ign("*\n!src/*/main.go\n")
    assert ign.may_contain_included("src")
    assert ign.may_contain_included("src/pkg")
    assert not ign.may_contain_included("vendor")
    assert ign.excluded("src/pkg/other.go")
    assert not ign.excluded("src/pkg/main.go")


def test_may_contain_included_without_exceptions() -> None:
    ign = _ign("node_modules\n")
    assert ign.excluded("node_modules", is_dir=True)
    assert not ign.may_contain_included("node_modules")


def test_exception_of_parent_reincludes_contents() -> None:
    ign = _ign("*\n!app\n")
    assert ign.excluded("README.md")
    assert not ign.excluded("app/main.py")
    assert not ign.excluded("app", is_dir=True)


def test_dockerfile_and_dockerignore_are_just_patterns() -> None:
    # The class answers honestly; the walker re-adds these two files.
    ign = _ign("Dockerfile\n.dockerignore\n")
    assert ign.excluded("Dockerfile") and ign.excluded(".dockerignore")


def test_bad_patterns() -> None:
    with pytest.raises(InvalidArgument, match="line 2"):
        _ign("ok\n[unclosed\n")
    with pytest.raises(InvalidArgument, match="line 1"):
        _ign("!\n")


def test_whitespace_and_bom() -> None:
    ign = _ign("\ufeff  *.tmp  \n! keep.tmp\n")
    assert ign.excluded("a.tmp") and not ign.excluded("keep.tmp")

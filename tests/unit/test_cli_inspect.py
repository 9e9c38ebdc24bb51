"""`berth inspect` looks for a name among the kinds in turn (pure logic, fake getters)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from berth.cli.commands import first_found
from berth.cli.parser import build
from berth.client import APIError


def _answer(status: int | None, value: Any = None) -> Callable[[str], Any]:
    def get(name: str) -> Any:
        if status is not None:
            raise APIError(status, f"{status} for {name}")
        return value

    return get


def test_the_first_kind_that_knows_the_name_answers() -> None:
    asked: list[str] = []

    def container(name: str) -> Any:
        asked.append("container")
        raise APIError(404, "no such container")

    assert first_found([container, _answer(None, "image"), _answer(None, "net")], "x") == \
        "image"
    assert asked == ["container"]


def test_a_name_a_kind_refuses_is_looked_for_in_the_next() -> None:
    assert first_found([_answer(400), _answer(None, "volume")], "Bad:Ref:x") == "volume"


def test_nothing_found_is_no_such_object() -> None:
    with pytest.raises(APIError) as info:
        first_found([_answer(404), _answer(400)], "ghost")
    assert (info.value.status, info.value.message) == (404, "no such object: ghost")


def test_other_errors_are_not_taken_for_absence() -> None:
    with pytest.raises(APIError) as info:
        first_found([_answer(403), _answer(None, "never asked")], "x")
    assert info.value.status == 403


def test_run_attach_and_inspect_options_parse() -> None:
    args = build().parse_args(["run", "-a", "stdout", "-a", "STDERR", "busybox"])
    assert args.attach == ["stdout", "STDERR"]
    args = build().parse_args(["inspect", "--type", "volume", "-s", "a", "b"])
    assert (args.type, args.size, args.objects) == ("volume", True, ["a", "b"])

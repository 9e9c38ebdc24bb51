"""A project's trust policy may not name key files on the daemon's host, however deep."""

from __future__ import annotations

import sys

import pytest

from berth.errors import InvalidArgument
from berth.service.trust import _refuse_key_files


def _nested(depth: int, leaf: object) -> object:
    doc: object = leaf
    for _ in range(depth):
        doc = [doc]
    return doc


def test_a_key_path_is_refused_with_the_path_to_it() -> None:
    doc = {"transports": {"docker": {"reg/x": [{"type": "signedBy", "keyPaths": ["/a"]}]}}}
    expected = r"^policy\.transports\.docker\.reg/x\[0\]\.keyPaths:"
    with pytest.raises(InvalidArgument, match=expected):
        _refuse_key_files(doc)


def test_nesting_deeper_than_the_stack_is_walked_not_recursed() -> None:
    depth = sys.getrecursionlimit() * 2
    with pytest.raises(InvalidArgument, match=rf"^policy(\[0\]){{{depth}}}\.keyPath:"):
        _refuse_key_files(_nested(depth, {"keyPath": "/etc/shadow"}))
    _refuse_key_files(_nested(depth, {"keyData": "AAAA"}))  # inline keys pass

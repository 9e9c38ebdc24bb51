"""WWW-Authenticate parsing: the challenge decides where credentials go, so it is strict."""

from __future__ import annotations

import pytest

from berth.image.registry.challenge import ChallengeError, parse_challenges


def test_bearer_with_realm_service_scope() -> None:
    [ch] = parse_challenges(['Bearer realm="https://auth.example.com/token",'
                             'service="registry.example.com",scope="repository:a/b:pull,push"'])
    assert ch.scheme == "bearer"
    assert ch.realm == "https://auth.example.com/token"
    assert ch.service == "registry.example.com"
    assert ch.scopes == ["repository:a/b:pull,push"]


def test_basic_and_case_and_spaces() -> None:
    [ch] = parse_challenges(['BASIC  Realm = "Registry Realm"'])
    assert ch.scheme == "basic"
    assert ch.realm == "Registry Realm"


def test_several_challenges_in_one_and_many_headers() -> None:
    chs = parse_challenges(['Negotiate, Basic realm="r", Bearer realm="https://t/x",'
                            'service=svc', 'Bearer realm="https://other"'])
    assert [c.scheme for c in chs] == ["negotiate", "basic", "bearer", "bearer"]
    assert chs[2].params == {"realm": "https://t/x", "service": "svc"}


def test_escapes_and_error_param() -> None:
    [ch] = parse_challenges([r'Bearer realm="a\"b",error="insufficient_scope",'
                             'scope="repository:x:pull repository:y:pull"'])
    assert ch.realm == 'a"b'
    assert ch.params["error"] == "insufficient_scope"
    assert ch.scopes == ["repository:x:pull", "repository:y:pull"]


@pytest.mark.parametrize("header", [
    'Bearer realm="unterminated',
    'Bearer realm="x" service="y"',
    'Bearer realm="x",realm="y"',
    '"quoted-scheme" realm=x',
    'Bearer realm="a\x01b"',
    "Negotiate abc==",
    "Bearer " + ",".join(f"p{i}=v" for i in range(40)),
    "Basic realm=x, " * 2000,
])
def test_malformed_is_refused(header: str) -> None:
    with pytest.raises(ChallengeError):
        parse_challenges([header])


def test_empty_header_has_no_challenges() -> None:
    assert parse_challenges([]) == []
    assert parse_challenges([" , "]) == []

"""Location handling and small helpers of the registry client (pure)."""

from __future__ import annotations

import pytest

from berth.errors import InvalidArgument, UpstreamFailure
from berth.image.registry.client import _next_link, check_reference, check_repo
from berth.image.registry.config import Credentials, RegistryConfig, api_host
from berth.image.registry.httputil import add_query, clean_text, origin_of, resolve_location


def test_resolve_location_relative_and_absolute() -> None:
    base = "https://r.example.com/v2/a/blobs/uploads/"
    assert resolve_location(base, "/v2/a/blobs/uploads/u1?_state=x", "w") == \
        "https://r.example.com/v2/a/blobs/uploads/u1?_state=x"
    assert resolve_location(base, "https://s3.example.com/b?sig=1", "w") == \
        "https://s3.example.com/b?sig=1"


@pytest.mark.parametrize("loc", [None, "", "ftp://x/y", "https://user:pw@h/x", "/a b",
                                 "/a\r\nX-Evil: 1", "javascript:alert(1)"])
def test_bad_locations_are_refused(loc: str | None) -> None:
    with pytest.raises(UpstreamFailure):
        resolve_location("https://r/v2/", loc, "w")


def test_add_query_keeps_upload_state() -> None:
    assert add_query("http://h/v2/u?_state=abc", digest="sha256:1") == \
        "http://h/v2/u?_state=abc&digest=sha256%3A1"
    assert add_query("http://h/v2/u", digest="d") == "http://h/v2/u?digest=d"


def test_origin_and_hosts() -> None:
    assert origin_of("HTTPS://R.example.com:5000/v2/") == "https://r.example.com:5000"
    assert api_host("docker.io") == "registry-1.docker.io"
    assert api_host("127.0.0.1:5000") == "127.0.0.1:5000"
    cfg = RegistryConfig(insecure=frozenset({"127.0.0.1:5000"}))
    assert cfg.scheme_for("127.0.0.1:5000") == "http"
    assert cfg.scheme_for("127.0.0.1:5001") == "https"


def test_credentials_repr_hides_password() -> None:
    assert "s3cret" not in repr(Credentials("u", "s3cret"))


def test_next_link() -> None:
    assert _next_link('</v2/a/tags/list?n=2&last=b>; rel="next"') == "/v2/a/tags/list?n=2&last=b"
    assert _next_link(None) is None
    assert _next_link('</x>; rel="prev"') is None


@pytest.mark.parametrize("repo", ["A/b", "../x", "a//b", "a/b/", "a?b", "", "a" * 300])
def test_bad_repo_names(repo: str) -> None:
    with pytest.raises(InvalidArgument):
        check_repo(repo)


@pytest.mark.parametrize("ref", ["../latest", "a/b", "sha256:abc", ".hidden", "x" * 200])
def test_bad_references(ref: str) -> None:
    with pytest.raises(InvalidArgument):
        check_reference(ref)


def test_clean_text() -> None:
    assert clean_text("a\nb\x00c") == "a?b?c"
    assert clean_text("x" * 300).endswith("...")

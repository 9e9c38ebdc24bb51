import pytest

from berth.errors import InvalidArgument
from berth.image.reference import Reference, normalize_tag_reference, parse_reference, validate_tag

DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    ("text", "registry", "repository", "tag", "digest"),
    [
        ("busybox", None, "library/busybox", None, None),
        ("busybox:1.36", None, "library/busybox", "1.36", None),
        ("docker.io/library/busybox:latest", None, "library/busybox", "latest", None),
        ("index.docker.io/user/app", None, "user/app", None, None),
        ("user/app:v1", None, "user/app", "v1", None),
        ("localhost/app", "localhost", "app", None, None),
        ("localhost:5000/a/b:1.0", "localhost:5000", "a/b", "1.0", None),
        ("quay.io/org/my_app-x__y.z", "quay.io", "org/my_app-x__y.z", None, None),
        (f"busybox@{DIGEST}", None, "library/busybox", None, DIGEST),
        (f"reg.example:443/x:t@{DIGEST}", "reg.example:443", "x", "t", DIGEST),
        ("[::1]:5000/app", "[::1]:5000", "app", None, None),
        ("a---b", None, "library/a---b", None, None),
    ],
)
def test_parse_valid(text, registry, repository, tag, digest):
    assert parse_reference(text) == Reference(registry, repository, tag, digest)


@pytest.mark.parametrize(
    "text",
    [
        "", "Busybox", "user/App", "busybox:", "busybox:-tag", ":tag", "/busybox", "busybox/",
        "a//b", "a..b", "_a", "a_", "a___b", "busybox@sha256:abc", f"busybox@md5:{'a' * 32}",
        "bus box", "busybox:" + "t" * 129, "x" * 256, "a:b:c", "busybox\x00",
        f"busybox@{DIGEST.upper()}",
    ],
)
def test_parse_invalid(text):
    with pytest.raises(InvalidArgument, match="invalid reference format"):
        parse_reference(text)


def test_uppercase_message_names_lowercase():
    with pytest.raises(InvalidArgument, match="lowercase"):
        parse_reference("Busybox")


def test_familiar_and_default_tag():
    assert parse_reference("docker.io/library/busybox").with_default_tag().familiar() == (
        "busybox:latest")
    assert parse_reference("user/app").familiar() == "user/app"
    assert parse_reference("localhost:5000/app:2").familiar() == "localhost:5000/app:2"
    ref = parse_reference(f"busybox@{DIGEST}")
    assert ref.with_default_tag() is ref  # a digest pins the image: no tag added
    assert ref.familiar() == f"busybox@{DIGEST}"
    assert str(parse_reference("busybox:1")) == "docker.io/library/busybox:1"


def test_normalize_tag_reference():
    assert normalize_tag_reference("docker.io/library/alpine") == "alpine:latest"
    assert normalize_tag_reference("example.com/a/b:c") == "example.com/a/b:c"
    with pytest.raises(InvalidArgument):
        normalize_tag_reference(f"a@{DIGEST}")


def test_validate_tag():
    assert validate_tag("v1.2_3-x") == "v1.2_3-x"
    for bad in ("", ".x", "-x", "a/b", "a:b", "t" * 129):
        with pytest.raises(InvalidArgument):
            validate_tag(bad)


def test_registry_domain_is_case_insensitive():
    ref = parse_reference("REG.Example.COM:5000/team/app:v1")
    assert ref.registry == "reg.example.com:5000"
    assert str(ref) == str(parse_reference("reg.example.com:5000/team/app:v1"))
    assert parse_reference("Docker.IO/busybox").registry is None  # Docker Hub, in any case

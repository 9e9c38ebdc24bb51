"""The pure parts of Docker's POST /build: unfinished context tars, X-Registry-Config,
JSON query options and the rendering of the build's stream."""

from __future__ import annotations

import base64
import io
import json
import tarfile

import pytest

from berth.api.docker.imageshapes import registry_config
from berth.api.docker.routes.build import BuildLines, json_map
from berth.api.progress import Finished
from berth.build.runstep import StepFailed
from berth.errors import InvalidArgument, UnsafeContent
from berth.service.fsextract import check_archive


def unfinished_tar() -> bytes:
    """As the docker CLI sends a context when -f names a Dockerfile outside it: the last
    member unpadded, no end-of-archive blocks."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tf:
        for name, data in (("a.txt", b"abc"), (".dockerignore", b"x" * 47)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    whole = buf.getvalue()
    return whole[:512 + 512 + 512 + 47]


def test_unfinished_tar_accepted_only_when_asked() -> None:
    body = unfinished_tar()
    assert check_archive(io.BytesIO(body), end_optional=True) == 2
    with pytest.raises(UnsafeContent):
        check_archive(io.BytesIO(body))


def test_missing_data_is_not_made_up_from_zeros() -> None:
    body = unfinished_tar()[:-5]
    with pytest.raises(UnsafeContent, match="cut short"):
        check_archive(io.BytesIO(body), end_optional=True)


def _b64(doc: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(doc).encode()).decode()


def test_registry_config() -> None:
    header = _b64({
        "https://index.docker.io/v1/": {"username": "hub", "password": "p1"},
        "127.0.0.1:5000": {"auth": base64.b64encode(b"me:secret").decode()},
        "empty.example": {}})
    creds = registry_config(header)
    assert sorted(creds) == ["127.0.0.1:5000", "docker.io"]
    assert (creds["127.0.0.1:5000"].username, creds["127.0.0.1:5000"].password) == \
        ("me", "secret")
    assert registry_config("e30=") == {} and registry_config(None) == {}
    for bad in ("!!!", _b64([1]), _b64({"r": "not an object"})):
        with pytest.raises(InvalidArgument, match="X-Registry-Config"):
            registry_config(bad)


def test_json_map() -> None:
    assert json_map('{"A": "1", "B": null}', "buildargs") == {"A": "1"}
    assert json_map(None, "labels") == {}
    for bad in ("[1]", "{", '{"A": 1}'):
        with pytest.raises(InvalidArgument, match="buildargs"):
            json_map(bad, "buildargs")


def test_build_lines() -> None:
    loud, quiet = BuildLines(False), BuildLines(True)
    step = {"stream": "Step 1/2 : FROM busybox\n"}
    assert loud(step) == [step] and quiet(step) == []
    aux = {"aux": {"ID": "sha256:ab"}}
    assert quiet(aux) == [aux]
    assert loud(Finished(id="sha256:ab")) == []
    assert quiet(Finished(id="sha256:ab")) == [{"stream": "sha256:ab\n"}]
    [err] = loud(StepFailed("line 3: The command 'exit 7' returned a non-zero code: 7", 7))
    assert err["errorDetail"] == {"message": err["error"], "code": 7}

import pytest

from berth.errors import InvalidArgument
from berth.image.runconfig import (
    combine_command,
    image_env,
    image_exposed_ports,
    image_labels,
    image_stop_signal,
    image_user,
    image_volumes,
    image_workdir,
    merge_env,
)


def cfg(**inner):
    return {"architecture": "amd64", "os": "linux", "config": inner,
            "rootfs": {"type": "layers", "diff_ids": []}}


IMG = cfg(Entrypoint=["/entry.sh"], Cmd=["serve", "--port", "80"])


@pytest.mark.parametrize(
    ("entrypoint", "cmd", "expected"),
    [
        (None, None, ["/entry.sh", "serve", "--port", "80"]),
        (None, ["run"], ["/entry.sh", "run"]),
        (None, [], ["/entry.sh", "serve", "--port", "80"]),  # empty cmd inherits, as Docker
        (["/bin/sh", "-c"], None, ["/bin/sh", "-c"]),  # explicit entrypoint drops image Cmd
        (["/bin/sh", "-c"], ["echo hi"], ["/bin/sh", "-c", "echo hi"]),
        ([""], None, ["serve", "--port", "80"]),  # cleared entrypoint keeps image Cmd
        ([], ["ls"], ["ls"]),
    ],
)
def test_combine_command(entrypoint, cmd, expected):
    assert combine_command(IMG, entrypoint, cmd) == expected


def test_combine_command_accepts_inner_config():
    assert combine_command({"Cmd": ["sh"]}, None, None) == ["sh"]


def test_no_command():
    with pytest.raises(InvalidArgument, match="no command specified"):
        combine_command(cfg(), None, None)
    with pytest.raises(InvalidArgument, match="no command specified"):
        combine_command(cfg(Entrypoint=["x"]), [], None)  # cleared, and no Cmd to fall back on
    with pytest.raises(InvalidArgument, match="no command specified"):
        combine_command({"config": None, "rootfs": {}}, None, [])


def test_merge_env():
    image = ["PATH=/bin", "A=1", "B=2"]
    assert merge_env(image, ["B=3", "C=4", "A=0"]) == ["PATH=/bin", "A=0", "B=3", "C=4"]
    assert merge_env(image, ["A"]) == ["PATH=/bin", "B=2"]  # bare key unsets
    assert merge_env(image, ["C=1", "C=2"]) == ["PATH=/bin", "A=1", "B=2", "C=2"]
    assert merge_env([], ["X=a=b"]) == ["X=a=b"]
    assert image == ["PATH=/bin", "A=1", "B=2"]  # input untouched
    with pytest.raises(InvalidArgument):
        merge_env(image, ["=x"])


def test_image_fields():
    c = cfg(Env=["A=1"], WorkingDir="app/../srv", User="1000:1000", Labels={"a": "b"},
            StopSignal="SIGQUIT", ExposedPorts={"80/tcp": {}, "53/udp": {}, "8080": {}},
            Volumes={"/data": {}, "/cache": {}})
    assert image_env(c) == ["A=1"]
    assert image_workdir(c) == "/srv"
    assert image_user(c) == "1000:1000"
    assert image_labels(c) == {"a": "b"}
    assert image_stop_signal(c) == "SIGQUIT"
    assert image_exposed_ports(c) == ["53/udp", "80/tcp", "8080/tcp"]
    assert image_volumes(c) == ["/cache", "/data"]


def test_image_fields_defaults():
    c = cfg()
    assert image_workdir(c) == "/"
    assert image_user(c) == ""
    assert image_labels(c) == {}
    assert image_stop_signal(c) is None
    assert image_exposed_ports(c) == []
    assert image_volumes(c) == []
    assert image_env({"config": None}) == []

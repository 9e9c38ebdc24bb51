"""A local volume's driver options (volume/options.py): what each asks the host to mount,
and what is refused."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from berth.errors import InvalidArgument
from berth.runtime.base import IdMapping
from berth.volume.options import (
    MS_BIND,
    MS_NODEV,
    MS_NOEXEC,
    MS_NOSUID,
    MS_RDONLY,
    MS_REC,
    HostMount,
    plan,
)

IDMAP = IdMapping(host_base=1_000_000_000)


def test_plain_volumes_mount_nothing() -> None:
    assert plan({}, IDMAP) is None


def test_tmpfs_options_become_mount_data_with_the_projects_ids() -> None:
    m = plan({"type": "tmpfs", "device": "tmpfs", "o": "size=64m,mode=1770,uid=1000,noexec"},
             IDMAP)
    assert m == HostMount("tmpfs", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
                          f"size={64 << 20},mode=1770,uid={IDMAP.host_base + 1000},"
                          f"gid={IDMAP.host_base}", False)
    # without uid/gid the volume's root is the container's root; without a user namespace
    # the ids are the host's
    assert plan({"type": "tmpfs"}, IDMAP).data == f"uid={IDMAP.host_base},gid={IDMAP.host_base}"
    assert plan({"type": "tmpfs", "o": "uid=5,ro"}, None).data == "uid=5"
    assert plan({"type": "tmpfs", "o": "ro"}, None).flags & MS_RDONLY


def test_bind_options() -> None:
    assert plan({"type": "none", "o": "bind", "device": "/srv/data"}, IDMAP) == \
        HostMount("bind", "/srv/data", MS_BIND, "", False)
    m = plan({"type": "none", "o": "rbind,ro", "device": "/srv"}, IDMAP)
    assert m.flags == MS_BIND | MS_REC and m.readonly
    assert HostMount.from_dict(m.as_dict()) == m


@pytest.mark.parametrize("options, words", [
    ({"type": "nfs", "o": "addr=10.0.0.1", "device": ":/export"}, "type 'nfs'"),
    ({"type": "ext4", "device": "/dev/vda"}, "type 'ext4'"),
    ({"o": "size=1m"}, "no type"),
    ({"type": "tmpfs", "size": "1m"}, "option 'size'"),
    ({"type": "tmpfs", "o": "size=0"}, "positive number"),
    ({"type": "tmpfs", "o": "size=１m"}, "positive number"),  # a fullwidth digit
    ({"type": "tmpfs", "o": "mode=0x1ff"}, "octal mode"),
    ({"type": "tmpfs", "o": "uid=65536"}, "ids 0 to 65535"),
    ({"type": "tmpfs", "o": "uid=-1"}, "numeric id"),
    ({"type": "tmpfs", "o": "uid=1,uid=2"}, "at most once"),
    ({"type": "tmpfs", "o": "suid"}, "o='suid'"),
    ({"type": "tmpfs", "o": "huge=always"}, "o='huge=always'"),
    ({"type": "none", "o": "bind,bind", "device": "/x"}, "o=bind"),
    ({"type": "none", "o": "bind,shared", "device": "/x"}, "o=bind"),
    ({"type": "none", "device": "/x"}, "o=bind"),
    ({"type": "none", "o": "bind", "device": "x"}, "absolute host path"),
    ({"type": "none", "o": "bind", "device": "/x\x00y"}, "absolute host path"),
])
def test_refused(options: dict[str, str], words: str) -> None:
    with pytest.raises(InvalidArgument) as refused:
        plan(options, IDMAP)
    assert words in refused.value.message


@given(st.dictionaries(st.sampled_from(["type", "device", "o", "x"]),
                       st.one_of(st.sampled_from(["tmpfs", "none", "bind", "bind,ro"]),
                                 st.text(max_size=40)), max_size=4),
       st.lists(st.sampled_from(["size=1m", "uid=7", "gid=70000", "mode=755", "uid=0",
                                 "nr_inodes=10k", "noexec", "ro", "uid=4294967295", ",",
                                 "gid=1", "mode=", "uid=99999999999"]), max_size=6))
def test_a_tmpfs_never_leaves_the_projects_ids(options: dict[str, str],
                                               words: list[str]) -> None:
    """Whatever is asked: a clear refusal, or a mount whose owner is one of the project's
    ids (a tenant cannot hand a tmpfs to a host user, or to another project)."""
    if words:
        options = {**options, "o": ",".join(words)}
    try:
        m = plan(options, IDMAP)
    except InvalidArgument:
        return
    if m is None or m.fstype != "tmpfs":
        return
    pairs = dict(item.partition("=")[::2] for item in m.data.split(",") if item)
    for key in ("uid", "gid"):
        assert IDMAP.host_base <= int(pairs[key]) < IDMAP.host_base + IDMAP.size
    assert set(pairs) <= {"size", "mode", "uid", "gid", "nr_inodes"}

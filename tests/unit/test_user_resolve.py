"""Resolving spec.user against a rootfs's /etc/passwd and /etc/group."""

from __future__ import annotations

from pathlib import Path

import pytest

from berth.errors import InvalidArgument
from berth.runtime.oci.user import (
    ResolvedUser,
    parse_group,
    parse_passwd,
    resolve_groups,
    resolve_user,
)

PASSWD = b"""root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
# a comment
broken line
app:x:1000:1000:App,,,:/home/app:/bin/sh
nohome:x:1001:1001::
"""
GROUP = b"""root:x:0:
wheel:x:10:root,app
staff:x:50:app, daemon
app:x:1000:
bad:x:notanumber:app
"""


@pytest.fixture()
def rootfs(tmp_path: Path) -> Path:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "passwd").write_bytes(PASSWD)
    (tmp_path / "etc" / "group").write_bytes(GROUP)
    return tmp_path


def test_parsers_skip_malformed_lines() -> None:
    users = parse_passwd(PASSWD)
    assert [u.name for u in users] == ["root", "daemon", "app", "nohome"]
    assert users[3].home == "/"
    groups = parse_group(GROUP)
    assert [g.name for g in groups] == ["root", "wheel", "staff", "app"]
    assert groups[2].members == ("app", "daemon")


def test_empty_is_image_root(rootfs: Path) -> None:
    assert resolve_user(rootfs, "") == ResolvedUser(0, 0, [10], "/root")


def test_by_name_with_supplementary_groups(rootfs: Path) -> None:
    assert resolve_user(rootfs, "app") == ResolvedUser(1000, 1000, [10, 50], "/home/app")
    assert resolve_user(rootfs, "daemon") == ResolvedUser(1, 1, [50], "/usr/sbin")


def test_numeric_with_and_without_entry(rootfs: Path) -> None:
    assert resolve_user(rootfs, "1000") == ResolvedUser(1000, 1000, [10, 50], "/home/app")
    assert resolve_user(rootfs, "4242") == ResolvedUser(4242, 0, [], "/")


def test_explicit_group(rootfs: Path) -> None:
    assert resolve_user(rootfs, "app:staff") == ResolvedUser(1000, 50, [], "/home/app")
    assert resolve_user(rootfs, "4242:4343") == ResolvedUser(4242, 4343, [], "/")
    assert resolve_user(rootfs, "root:1000").gid == 1000
    with pytest.raises(InvalidArgument, match="unable to find group nosuch"):
        resolve_user(rootfs, "app:nosuch")


def test_unknown_user(rootfs: Path) -> None:
    with pytest.raises(InvalidArgument) as exc:
        resolve_user(rootfs, "ghost")
    assert exc.value.message == "unable to find user ghost: no matching entries in passwd file"
    with pytest.raises(InvalidArgument):
        resolve_user(rootfs, ":50")
    with pytest.raises(InvalidArgument):
        resolve_user(rootfs, "99999999999")


def test_without_etc_files(tmp_path: Path) -> None:
    assert resolve_user(tmp_path, "") == ResolvedUser(0, 0, [], "/")
    assert resolve_user(tmp_path, "12:34") == ResolvedUser(12, 34, [], "/")
    with pytest.raises(InvalidArgument):
        resolve_user(tmp_path, "app")


def test_passwd_symlink_cannot_escape_rootfs(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "passwd").write_bytes(b"evil:x:0:0::/:/bin/sh\n")
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "passwd").symlink_to("../../outside/passwd")
    # "../.." stops at the rootfs, so the link resolves to <root>/outside/passwd: absent.
    with pytest.raises(InvalidArgument):
        resolve_user(root, "evil")


def test_group_add_by_name_or_number(rootfs: Path) -> None:
    assert resolve_groups(rootfs, []) == []
    assert resolve_groups(rootfs, ["wheel", "4242"]) == [10, 4242]
    with pytest.raises(InvalidArgument, match="unable to find group nosuch"):
        resolve_groups(rootfs, ["nosuch"])

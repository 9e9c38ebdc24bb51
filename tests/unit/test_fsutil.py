import os
from pathlib import Path

import pytest

from berth.errors import UnsafeContent
from berth.fsutil import read_file_in_root, relative_in_root, resolve_in_root


@pytest.fixture()
def root(tmp_path: Path) -> Path:
    r = tmp_path / "root"
    (r / "etc").mkdir(parents=True)
    (r / "etc" / "passwd").write_text("root:x:0:0::/root:/bin/sh\n")
    (r / "usr" / "lib").mkdir(parents=True)
    os.symlink("/etc", r / "abs_etc")  # absolute: re-rooted
    os.symlink("../../etc", r / "usr" / "rel_etc")  # relative, climbs to /etc
    os.symlink("../../../../../../../..", r / "usr" / "up")  # climbs far above root
    os.symlink("/", r / "slash")
    os.symlink("loop2", r / "loop1")
    os.symlink("loop1", r / "loop2")
    os.symlink("/etc/passwd", r / "etc" / "pw_link")
    os.symlink("/usr/lib", r / "lib")
    (tmp_path / "outside").write_text("secret")
    return r


def test_resolve_plain_and_dotdot(root: Path):
    assert resolve_in_root(root, "/etc/passwd") == root / "etc/passwd"
    assert resolve_in_root(root, "../../../etc/passwd") == root / "etc/passwd"
    assert resolve_in_root(root, "/") == root
    assert resolve_in_root(root, "usr/./lib/..//lib") == root / "usr/lib"


def test_resolve_symlinks_are_rerooted(root: Path):
    assert resolve_in_root(root, "/abs_etc/passwd") == root / "etc/passwd"
    assert resolve_in_root(root, "/usr/rel_etc/passwd") == root / "etc/passwd"
    assert resolve_in_root(root, "/usr/up/outside") == root / "outside"
    assert resolve_in_root(root, "/slash/../../outside") == root / "outside"
    assert resolve_in_root(root, "/lib/x") == root / "usr/lib/x"


def test_resolve_follow_final(root: Path):
    assert resolve_in_root(root, "/etc/pw_link") == root / "etc/passwd"
    assert resolve_in_root(root, "/etc/pw_link", follow_final=False) == root / "etc/pw_link"
    assert resolve_in_root(root, "/abs_etc/pw_link", follow_final=False) == root / "etc/pw_link"


def test_resolve_missing_components_are_lexical(root: Path):
    assert resolve_in_root(root, "/nope/a/../b") == root / "nope/b"


def test_resolve_loop_and_nul(root: Path):
    with pytest.raises(UnsafeContent, match="too many levels"):
        resolve_in_root(root, "/loop1")
    with pytest.raises(UnsafeContent):
        resolve_in_root(root, "/etc/pass\x00wd")


def test_result_always_under_root(root: Path):
    for p in ("/usr/up", "/slash", "..", "/usr/rel_etc/../../..", "/abs_etc/../.."):
        resolved = resolve_in_root(root, p)
        assert resolved == root or root in resolved.parents


def test_read_file_in_root(root: Path):
    assert read_file_in_root(root, "/etc/passwd").startswith(b"root:")
    assert read_file_in_root(root, "/abs_etc/pw_link").startswith(b"root:")
    assert read_file_in_root(root, "/etc/group") is None
    assert read_file_in_root(root, "/nope/group") is None
    assert read_file_in_root(root, "/etc/passwd/x") is None
    # A link that climbs out still lands inside the root, where there is no such file.
    assert read_file_in_root(root, "/usr/up/outside") is None


def test_read_file_refuses_non_regular_and_big(root: Path):
    with pytest.raises(UnsafeContent, match="not a regular file"):
        read_file_in_root(root, "/etc")
    with pytest.raises(UnsafeContent):
        read_file_in_root(root, "/")
    os.mkfifo(root / "etc" / "fifo")
    with pytest.raises(UnsafeContent, match="not a regular file"):
        read_file_in_root(root, "/etc/fifo")
    (root / "etc" / "big").write_bytes(b"x" * 100)
    with pytest.raises(UnsafeContent, match="larger"):
        read_file_in_root(root, "/etc/big", max_bytes=10)
    assert read_file_in_root(root, "/etc/big", max_bytes=100) == b"x" * 100


def test_escape_refuses_instead_of_clamping(tmp_path: Path) -> None:
    """A build context has no "/": ".." above it and absolute links are refused."""
    (tmp_path / "d").mkdir()
    (tmp_path / "abs").symlink_to("/etc")
    (tmp_path / "d" / "up").symlink_to("../../x")

    def escape(how: str) -> ValueError:
        return ValueError(how)

    assert relative_in_root(tmp_path, "d/../d/f", True, escape) == ["d", "f"]
    for path, how in (("../x", "'..'"), ("abs/passwd", "abs -> /etc"), ("d/up", "'..'")):
        with pytest.raises(ValueError, match=how):
            relative_in_root(tmp_path, path, True, escape)
        relative_in_root(tmp_path, path, True)  # clamped at the root without escape

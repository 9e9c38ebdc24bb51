"""A running container's /etc/hosts and resolv.conf when its networks change."""

from __future__ import annotations

from pathlib import Path

import pytest

from berth.runtime.base import DnsSettings
from berth.runtime.oci import rootfs


def test_refresh_hosts_swaps_own_addresses_and_keeps_other_lines() -> None:
    start = rootfs.hosts_file("box", ["10.0.0.2"]) + "192.168.9.9\tdb.example\n"
    joined = rootfs.refresh_hosts(start, "box", ["10.0.0.2", "10.1.0.2"])
    assert joined.splitlines()[:2] == ["10.1.0.2\tbox", "10.0.0.2\tbox"]
    assert "192.168.9.9\tdb.example" in joined and "127.0.0.1\tlocalhost" in joined
    left = rootfs.refresh_hosts(joined, "box", ["10.1.0.2"])
    assert "10.0.0.2\tbox" not in left and "10.1.0.2\tbox" in left
    alone = rootfs.refresh_hosts(left, "box", [])
    assert "10.1.0.2" not in alone and alone.endswith("127.0.1.1\tbox\n")
    assert rootfs.refresh_hosts(alone, "box", ["10.2.0.2"]).count("127.0.1.1") == 0
    assert rootfs.refresh_hosts(start, "box", ["10.0.0.2"]) == start


def test_a_dotted_hostname_is_named_whole_and_short(tmp_path: Path) -> None:
    """As docker: "web.example.com web", so both the full and the short name resolve."""
    assert rootfs.hosts_names("web") == "web"
    assert rootfs.hosts_names("web.example.com") == "web.example.com web"
    rootfs.write_etc_files(tmp_path, "web.example.com", False, ["10.0.0.2"], ["10.0.0.1"])
    assert (tmp_path / "hosts").read_text().startswith("10.0.0.2\tweb.example.com web\n")
    assert (tmp_path / "hostname").read_text() == "web.example.com\n"
    rootfs.update_network_files(tmp_path, "web.example.com", ["10.1.0.2"], ["10.1.0.1"])
    hosts = (tmp_path / "hosts").read_text()
    assert "10.1.0.2\tweb.example.com web" in hosts and "10.0.0.2" not in hosts


def test_update_network_files_writes_in_place_and_keeps_an_edited_resolv_conf(
        tmp_path: Path) -> None:
    rootfs.write_etc_files(tmp_path, "box", False, ["10.0.0.2"], ["10.0.0.1"])
    hosts_inode = (tmp_path / "hosts").stat().st_ino
    rootfs.update_network_files(tmp_path, "box", ["10.0.0.2", "10.1.0.2"],
                                ["10.0.0.1", "10.1.0.1"])
    assert (tmp_path / "hosts").stat().st_ino == hosts_inode  # a bind mount sees it
    assert "10.1.0.2\tbox" in (tmp_path / "hosts").read_text()
    resolv = (tmp_path / "resolv.conf").read_text()
    assert "nameserver 10.0.0.1\nnameserver 10.1.0.1\n" in resolv
    (tmp_path / "resolv.conf").write_text("nameserver 9.9.9.9\n")  # the container's own
    rootfs.update_network_files(tmp_path, "box", ["10.0.0.2"], ["10.0.0.1"])
    assert (tmp_path / "resolv.conf").read_text() == "nameserver 9.9.9.9\n"
    assert "10.1.0.2" not in (tmp_path / "hosts").read_text()


def test_extra_hosts_and_own_dns_settings(tmp_path: Path) -> None:
    dns = DnsSettings(servers=("10.9.9.9",), search=("corp.example",), options=("ndots:2",))
    rootfs.write_etc_files(tmp_path, "box", False, extra_hosts=[("10.0.0.5", "db")], dns=dns)
    hosts = (tmp_path / "hosts").read_text()
    assert hosts.endswith("10.0.0.5\tdb\n") and "127.0.1.1\tbox" in hosts
    assert (tmp_path / "resolv.conf").read_text() == (
        "nameserver 10.9.9.9\nsearch corp.example\noptions ndots:2\n")
    # on a network its DNS stays the nameserver (it forwards the rest to 10.9.9.9)
    rootfs.write_etc_files(tmp_path, "box", False, ["10.1.0.2"], ["10.1.0.1"], dns=dns)
    assert (tmp_path / "resolv.conf").read_text() == (
        "nameserver 10.1.0.1\nsearch corp.example\noptions ndots:2\n")
    # a network change keeps the extra lines and the container's own DNS settings
    rootfs.write_etc_files(tmp_path, "box", False, ["10.1.0.2"], ["10.1.0.1"],
                           extra_hosts=[("10.0.0.5", "db")], dns=dns)
    rootfs.update_network_files(tmp_path, "box", ["10.1.0.2", "10.2.0.2"],
                                ["10.1.0.1", "10.2.0.1"], dns)
    assert "10.0.0.5\tdb" in (tmp_path / "hosts").read_text()
    assert (tmp_path / "resolv.conf").read_text() == (
        "nameserver 10.1.0.1\nnameserver 10.2.0.1\nsearch corp.example\noptions ndots:2\n")
    none = DnsSettings(search=(".",))
    rootfs.write_etc_files(tmp_path, "box", False, dns=none)
    assert "search" not in (tmp_path / "resolv.conf").read_text()


def test_a_kill_between_write_and_truncate_leaves_valid_files(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """berthd killed mid-rewrite: the shorter new text is whole, padded with blank lines,
    never followed by a tail of the old text."""
    rootfs.write_etc_files(tmp_path, "box", False, ["10.0.0.2", "10.1.0.2"],
                           ["10.0.0.1", "10.1.0.1"])
    before = (tmp_path / "hosts").read_text()

    def killed(fd: int, length: int) -> None:
        raise SystemExit("killed before the truncate")

    monkeypatch.setattr(rootfs.os, "ftruncate", killed)
    with pytest.raises(SystemExit):
        rootfs.update_network_files(tmp_path, "box", ["10.0.0.2"], ["10.0.0.1"])
    hosts = (tmp_path / "hosts").read_text()
    expected = rootfs.refresh_hosts(before, "box", ["10.0.0.2"])
    assert len(hosts) == len(before) and hosts.startswith(expected)
    assert hosts[len(expected):].strip("\n") == ""


def test_resolv_conf_padded_by_a_kill_is_still_berths(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rootfs.write_etc_files(tmp_path, "box", False, ["10.0.0.2", "10.1.0.2"],
                           ["10.0.0.1", "10.1.0.1"])
    real = rootfs.os.ftruncate
    calls = []

    def killed_at_the_second(fd: int, length: int) -> None:
        calls.append(fd)
        if len(calls) == 2:  # hosts' truncate passes, resolv.conf's does not
            raise SystemExit("killed")
        real(fd, length)

    monkeypatch.setattr(rootfs.os, "ftruncate", killed_at_the_second)
    with pytest.raises(SystemExit):
        rootfs.update_network_files(tmp_path, "box", ["10.0.0.2"], ["10.0.0.1"])
    assert (tmp_path / "resolv.conf").read_text().startswith("nameserver 10.0.0.1\n")
    monkeypatch.undo()
    rootfs.update_network_files(tmp_path, "box", ["10.0.0.2", "10.3.0.2"],
                                ["10.0.0.1", "10.3.0.1"])
    assert "nameserver 10.3.0.1" in (tmp_path / "resolv.conf").read_text()

"""A size-limited log in several files: linking each current file before the monitor
replaces it, dropping the oldest, and reading (and following) across the files."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from berth.runtime.oci import logfiles
from berth.runtime.oci.logs import read_log_files

T = "2024-01-01T00:00:00.000000000Z"


def _line(text: str) -> bytes:
    return f"{T} stdout F {text}\n".encode()


def _rotate(log: Path, text: str) -> None:
    """What conmon does at its size limit: a new file renamed over the old path."""
    tmp = log.with_name(log.name + ".tmp")
    tmp.write_bytes(_line(text))
    os.rename(tmp, log)


def _texts(log: Path) -> list[bytes]:
    return [r.data for r in read_log_files(logfiles.files_in_order(log))]


def test_linked_files_survive_rotation_and_the_oldest_are_dropped(tmp_path: Path) -> None:
    log = tmp_path / "ctr.log"
    log.write_bytes(_line("one"))
    logfiles.link_current(log, 3)
    logfiles.link_current(log, 3)  # idempotent: the same file is not linked twice
    assert [p.name for p in logfiles.kept(log)] == ["ctr.log.1"]
    for text in ("two", "three", "four"):
        _rotate(log, text)
        logfiles.link_current(log, 3)
    # Three files: the current one and the two before it; "one" was the oldest beyond.
    assert [p.name for p in logfiles.kept(log)] == ["ctr.log.2", "ctr.log.3", "ctr.log.4"]
    assert _texts(log) == [b"two\n", b"three\n", b"four\n"]


def test_an_unlinked_current_file_is_read_last(tmp_path: Path) -> None:
    log = tmp_path / "ctr.log"
    log.write_bytes(_line("old"))
    logfiles.link_current(log, 2)
    _rotate(log, "new")  # not linked yet (berthd was down)
    assert logfiles.files_in_order(log) == [tmp_path / "ctr.log.1", log]
    assert _texts(log) == [b"old\n", b"new\n"]


def test_a_new_monitor_begins_a_new_file(tmp_path: Path) -> None:
    log = tmp_path / "ctr.log"
    log.write_bytes(_line("first run"))
    logfiles.begin_new_file(log, 4096, 3)  # kept, and the path freed for the new one
    assert not log.exists() and _texts(log) == [b"first run\n"]
    one = tmp_path / "one" / "ctr.log"
    one.parent.mkdir()
    one.write_bytes(_line("small"))
    logfiles.begin_new_file(one, 4096, 1)  # one file below its limit: appended to
    assert one.exists()
    one.write_bytes(b"x" * 4096)
    logfiles.begin_new_file(one, 4096, 1)  # at its limit: conmon would drop it anyway
    assert not one.exists()
    unlimited = tmp_path / "u.log"
    unlimited.write_bytes(b"x" * 8192)
    logfiles.begin_new_file(unlimited, None, 1)
    assert unlimited.stat().st_size == 8192


def test_keep_file_round_trip(tmp_path: Path) -> None:
    assert logfiles.read_keep_file(tmp_path) is None
    logfiles.write_keep_file(tmp_path, 8192, 4)
    assert logfiles.read_keep_file(tmp_path) == (8192, 4)
    logfiles.write_keep_file(tmp_path, 8192, 1)  # one file: conmon alone bounds it
    assert not (tmp_path / logfiles.KEEP_FILE).exists()
    (tmp_path / logfiles.KEEP_FILE).write_text("garbage\n")
    assert logfiles.read_keep_file(tmp_path) is None


def test_the_keeper_links_each_new_file_as_it_appears(tmp_path: Path) -> None:
    log = tmp_path / "ctr.log"
    log.write_bytes(_line("a"))
    keeper = logfiles.LogKeeper("ctr.log", lambda d: False)
    keeper.keep(tmp_path, 1 << 20, 10)
    for text in "bcd":
        _rotate(log, text)
        deadline = time.monotonic() + 5
        while len(logfiles.kept(log)) < ord(text) - ord("a") + 1:
            assert time.monotonic() < deadline, "the keeper did not link the new file"
            time.sleep(0.005)
    assert _texts(log) == [b"a\n", b"b\n", b"c\n", b"d\n"]


def _wait(predicate: object, what: str) -> None:
    deadline = time.monotonic() + 5
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, what
        time.sleep(0.005)


def test_the_keeper_rotates_a_full_file_without_losing_any(tmp_path: Path) -> None:
    """A file at the limit is kept and the monitor asked for a new one; asked once per file."""
    log = tmp_path / "ctr.log"
    log.write_bytes(_line("first"))
    asked: list[Path] = []

    def reopen(directory: Path) -> bool:  # what conmon does on its control fifo
        _rotate(directory / "ctr.log", f"file {len(asked) + 2}")
        asked.append(directory)  # after: the test writes on once it sees this
        return True

    keeper = logfiles.LogKeeper("ctr.log", reopen)
    keeper.keep(tmp_path, 256, 3)
    time.sleep(3 * logfiles.CHECK_INTERVAL)
    assert asked == []  # below the limit
    with log.open("ab") as f:
        f.write(_line("x" * 300))  # past it
    _wait(lambda: len(asked) == 1, "no rotation at the limit")
    _wait(lambda: len(logfiles.kept(log)) == 2, "the new file was not linked")
    assert _texts(log) == [b"first\n", b"x" * 300 + b"\n", b"file 2\n"]
    time.sleep(3 * logfiles.CHECK_INTERVAL)
    assert len(asked) == 1  # the new file is below the limit
    for n in range(3):  # fill three more: the oldest go, the order stays
        with log.open("ab") as f:
            f.write(_line("y" * 300))
        _wait(lambda n=n: len(asked) == n + 2, "no rotation")
    _wait(lambda: [p.name for p in logfiles.kept(log)] == ["ctr.log.3", "ctr.log.4",
                                                           "ctr.log.5"], "not linked")
    assert _texts(log)[-1] == b"file 5\n"


def test_a_follower_goes_on_into_the_next_file(tmp_path: Path) -> None:
    log = tmp_path / "ctr.log"
    log.write_bytes(_line("before"))
    alive = threading.Event()
    alive.set()

    def writer() -> None:
        time.sleep(0.05)
        with log.open("ab") as f:
            f.write(_line("end of the first file"))
        _rotate(log, "in the second file")
        time.sleep(0.05)
        with log.open("ab") as f:
            f.write(_line("last"))
        alive.clear()

    thread = threading.Thread(target=writer)
    thread.start()
    records = list(read_log_files([log], follow=True, alive=alive.is_set, poll=0.01))
    thread.join()
    assert [r.data for r in records] == [b"before\n", b"end of the first file\n",
                                         b"in the second file\n", b"last\n"]


def test_a_forgotten_directory_is_no_longer_watched(tmp_path: Path) -> None:
    log = tmp_path / "ctr.log"
    log.write_bytes(_line("a"))
    keeper = logfiles.LogKeeper("ctr.log", lambda d: False)
    keeper.keep(tmp_path, 1 << 20, 5)
    keeper.forget(tmp_path)
    _rotate(log, "b")
    time.sleep(3 * logfiles.CHECK_INTERVAL)
    assert [p.name for p in logfiles.kept(log)] == ["ctr.log.1"]  # "b" was not linked
    keeper.keep(tmp_path, 1 << 20, 5)  # started again: watched again
    assert len(logfiles.kept(log)) == 2


def _linked_log(tmp_path: Path, text: str) -> Path:
    """A log's first file, linked as the keeper links it."""
    log = tmp_path / "ctr.log"
    log.write_bytes(_line(text))
    logfiles.link_current(log, 5)
    return log


def _rotate_linked(log: Path, text: str) -> None:
    _rotate(log, text)
    logfiles.link_current(log, 5)


def _follow(log: Path, alive: threading.Event, from_end: bool = False) -> Iterator[bytes]:
    alive.set()
    records = read_log_files(logfiles.files_in_order(log), follow=True, alive=alive.is_set,
                             poll=0.01, newer=lambda inode: logfiles.newer_files(log, inode),
                             from_end=from_end)
    return (r.data for r in records)


def test_a_follower_that_missed_two_new_files_reads_both_in_order(tmp_path: Path) -> None:
    log = _linked_log(tmp_path, "a")
    alive = threading.Event()
    follower = _follow(log, alive)
    assert next(follower) == b"a\n"
    for text in ("b", "c"):  # both while the follower is not looking
        _rotate_linked(log, text)
    assert next(follower) == b"b\n"
    assert next(follower) == b"c\n"
    with log.open("ab") as f:
        f.write(_line("d"))
    assert next(follower) == b"d\n"
    alive.clear()
    assert list(follower) == []


def test_a_follower_behind_when_the_writer_exits_still_reads_the_newer_files(
        tmp_path: Path) -> None:
    log = _linked_log(tmp_path, "a")
    alive = threading.Event()
    follower = _follow(log, alive)
    assert next(follower) == b"a\n"
    _rotate_linked(log, "b")
    alive.clear()
    assert list(follower) == [b"b\n"]


def test_newer_files_are_those_linked_after_the_given_one(tmp_path: Path) -> None:
    log = _linked_log(tmp_path, "a")
    first = os.stat(log).st_ino
    _rotate_linked(log, "b")
    assert [p.name for p in logfiles.newer_files(log, first)] == ["ctr.log.2"]
    assert logfiles.newer_files(log, os.stat(log).st_ino) == []
    assert logfiles.newer_files(log, 1) == []  # not linked: nothing known after it


def test_a_reader_from_the_end_sees_only_what_comes_after(tmp_path: Path) -> None:
    log = _linked_log(tmp_path, "an earlier run")
    alive = threading.Event()
    reader = _follow(log, alive, from_end=True)
    with log.open("ab") as f:  # written after the reader was made: seen
        f.write(_line("now"))
    _rotate_linked(log, "the next file")
    alive.clear()
    assert list(reader) == [b"now\n", b"the next file\n"]

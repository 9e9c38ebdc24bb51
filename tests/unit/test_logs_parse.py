"""conmon k8s-file log parsing and following."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from berth.runtime.base import LogRecord
from berth.runtime.oci.logs import parse_line, parse_lines, read_log_file

T1 = "2026-01-02T03:04:05.123456789+00:00"
T2 = "2026-01-02T03:04:06.000000001+00:00"


def test_parse_line() -> None:
    line = parse_line(f"{T1} stdout F hello world".encode())
    assert line is not None
    assert (line.time, line.stream, line.partial, line.data) == (T1, "stdout", False,
                                                                b"hello world")
    empty = parse_line(f"{T1} stderr F".encode())
    assert empty is not None and empty.data == b""
    tagged = parse_line(f"{T1} stdout P:extra part".encode())
    assert tagged is not None and tagged.partial and tagged.data == b"part"
    assert parse_line(f"{T1} stdout F  two  spaces ".encode()).data == b" two  spaces "
    assert parse_line(b"garbage") is None
    assert parse_line(f"{T1} stdin F x".encode()) is None
    assert parse_line(f"{T1} stdout Q x".encode()) is None


def test_full_lines_get_their_newline_and_streams_stay_apart() -> None:
    records = list(parse_lines([f"{T1} stdout F out".encode(),
                                f"{T2} stderr F err".encode(), b"junk"]))
    assert records == [LogRecord(T1, "stdout", b"out\n"), LogRecord(T2, "stderr", b"err\n")]


def test_partials_join_per_stream_with_first_time() -> None:
    lines = [f"{T1} stdout P ab".encode(), f"{T2} stdout P cd".encode(),
             f"{T2} stdout F ef".encode(), f"{T2} stdout P tail-without-newline".encode()]
    assert list(parse_lines(lines)) == [
        LogRecord(T1, "stdout", b"abcdef\n"),
        LogRecord(T2, "stdout", b"tail-without-newline"),
    ]


def test_a_line_of_the_other_stream_releases_a_partial_in_order() -> None:
    """Output keeps the order it was written in: "ab" came before the stderr line."""
    lines = [f"{T1} stdout P ab".encode(), f"{T1} stderr F e1".encode(),
             f"{T2} stdout F cd".encode()]
    assert list(parse_lines(lines)) == [
        LogRecord(T1, "stdout", b"ab"),
        LogRecord(T1, "stderr", b"e1\n"),
        LogRecord(T2, "stdout", b"cd\n"),
    ]


def test_read_file_without_follow(tmp_path: Path) -> None:
    log = tmp_path / "ctr.log"
    log.write_bytes(f"{T1} stdout F a\n{T1} stdout F b\n".encode())
    assert [r.data for r in read_log_file(log)] == [b"a\n", b"b\n"]
    assert list(read_log_file(tmp_path / "missing.log")) == []


def test_follow_until_writer_exits_and_file_drained(tmp_path: Path) -> None:
    log = tmp_path / "ctr.log"
    log.write_bytes(f"{T1} stdout F first\n".encode())
    alive = threading.Event()
    alive.set()

    def writer() -> None:
        for i in range(3):
            time.sleep(0.05)
            with log.open("ab") as f:
                f.write(f"{T2} stdout P p{i}".encode())  # a line written in two pieces
                f.flush()
                time.sleep(0.02)
                f.write(b"\n")
        with log.open("ab") as f:
            f.write(f"{T2} stderr F last\n".encode())
        alive.clear()  # the monitor exits right after its last write

    thread = threading.Thread(target=writer)
    thread.start()
    records = list(read_log_file(log, follow=True, alive=alive.is_set, poll=0.01))
    thread.join()
    # A follower gets each partial piece as soon as it is there, in order, never held back
    # for a newline that may never come; the bytes are the same as when joined.
    assert records[0] == LogRecord(T1, "stdout", b"first\n")
    assert records[-1] == LogRecord(T2, "stderr", b"last\n")
    assert b"".join(r.data for r in records[1:-1]) == b"p0p1p2"
    assert all(r.stream == "stdout" for r in records[1:-1])


def test_follow_passes_a_partial_line_on_while_the_writer_lives(tmp_path: Path) -> None:
    """A shell prompt has no newline: a follower must see it without waiting for one."""
    log = tmp_path / "ctr.log"
    log.write_bytes(f"{T1} stdout P / # \n".encode())  # conmon ends every record
    alive = threading.Event()
    alive.set()
    follower = read_log_file(log, follow=True, alive=alive.is_set, poll=0.01)
    assert next(follower) == LogRecord(T1, "stdout", b"/ # ")  # would block if held back
    alive.clear()
    assert list(follower) == []

"""`top` with ps options: the host's ps output cut to the container's processes."""

from __future__ import annotations

import pytest

from berth.agent.hostops import split_ps_args
from berth.errors import InvalidArgument
from berth.runtime.oci.top import parse_ps

AUX = """\
USER         PID %CPU %MEM    VSZ   RSS TTY      STAT START   TIME COMMAND
root           1  0.0  0.0 168000 12000 ?        Ss   07:00   0:01 /sbin/init splash
1000000+    7590  1.3  0.0   2268  1376 ?        Ss   07:27   0:00 sleep 2000
1000000+    7600  0.0  0.0   2268  1380 ?        S    07:27   0:00 sh -c  echo  a  b
"""


def test_rows_are_the_containers_only_and_the_last_column_keeps_its_spaces() -> None:
    titles, rows = parse_ps(AUX, {7590, 7600})
    assert titles[:2] == ["USER", "PID"] and titles[-1] == "COMMAND"
    assert [row[1] for row in rows] == ["7590", "7600"]
    assert rows[1][-1] == "sh -c  echo  a  b"  # one field, its spacing as ps printed it
    assert all(len(row) == len(titles) for row in rows)


def test_no_pid_column_is_refused() -> None:
    with pytest.raises(InvalidArgument, match="PID column"):
        parse_ps("COMMAND\nsleep 1\n", {1})
    with pytest.raises(InvalidArgument, match="PID column"):
        parse_ps("", {1})


def test_ps_args_are_words_with_bounds() -> None:
    assert split_ps_args(None) is None and split_ps_args("  ") is None
    assert split_ps_args("-o pid,args  aux") == ["-o", "pid,args", "aux"]
    with pytest.raises(InvalidArgument, match="at most"):
        split_ps_args("x " * 40)
    with pytest.raises(InvalidArgument, match="not a ps option"):
        split_ps_args("a" * 300)

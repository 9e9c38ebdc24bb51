"""Writers of content vs collections (pure: threads and a condition)."""

from __future__ import annotations

import threading

from berth.service.guard import ContentGuard


def test_collecting_now_only_when_no_writer_is_at_work() -> None:
    guard = ContentGuard()
    with guard.using(), guard.collecting_now() as alone:
        assert alone is False  # a pull is writing: leave it to the next collection
    with guard.collecting_now() as alone:
        assert alone is True
        entered = threading.Event()

        def write() -> None:
            with guard.using():
                entered.set()

        writer = threading.Thread(target=write)
        writer.start()
        assert not entered.wait(0.2)  # writers wait while it collects
    writer.join(5)
    assert entered.is_set()
    with guard.collecting_now() as alone:  # and it was given back
        assert alone is True

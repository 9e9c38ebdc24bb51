"""The hub hands calls from worker threads over to its event loop."""

from __future__ import annotations

import asyncio
import threading

from berth.service.hub import Hub


def test_publish_and_kick_from_a_worker_thread_arrive_in_the_loop() -> None:
    async def scenario() -> tuple[dict, list[tuple[str, bool]]]:
        hub = Hub()
        loop = asyncio.get_running_loop()
        kicked: list[tuple[str, bool]] = []

        def kick(cid: str) -> None:
            kicked.append((cid, asyncio.get_running_loop() is loop))

        hub.attach_agent(kick)
        queue = hub.subscribe()
        worker = threading.Thread(target=lambda: (hub.publish({"action": "rename"}),
                                                  hub.kick_agent("abc")))
        worker.start()
        worker.join()
        event = await asyncio.wait_for(queue.get(), 5)
        await asyncio.sleep(0)
        return event, kicked

    event, kicked = asyncio.run(scenario())
    assert event == {"action": "rename"}
    assert kicked == [("abc", True)]  # ran on the loop, not on the worker thread


def test_wait_until_wakes_on_change() -> None:
    async def scenario() -> str | None:
        hub = Hub()
        box: list[str] = []

        async def later() -> None:
            await asyncio.sleep(0.05)
            box.append("done")
            await hub.changed()

        task = asyncio.create_task(later())
        result = await hub.wait_until(lambda: box[0] if box else None, timeout=5)
        await task
        return result

    assert asyncio.run(scenario()) == "done"

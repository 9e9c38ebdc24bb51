"""Removing a container's row ends the actions still queued for it (nobody waits forever)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from berth.agent.ops import ContainerOps
from berth.service.hub import Hub
from berth.store.db import DEFAULT_PROJECT, Store
from berth.store.models import Action, Container


def _action(cid: str, verb: str) -> Action:
    return Action(project_id=DEFAULT_PROJECT, container_id=cid, action=verb, params={},
                  request_id="r", user="u", state="pending", message="", error_status=0,
                  result={}, started_at=time.time())


def test_queued_actions_end_when_the_row_goes(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'berth.db'}")
    cid = "c" * 64
    with store.session() as s:
        s.add(Container(id=cid, project_id=DEFAULT_PROJECT, name="gone", host="h",
                        image_id="sha256:" + "0" * 64, image_ref="x", spec={}, labels={},
                        created_at=time.time(), desired="removed", status="exited",
                        exit_code=3))
        s.add_all([_action(cid, "remove"), _action(cid, "stop")])

    async def remove() -> None:
        ops = ContainerOps(store, Hub(), None, None, None, tmp_path)  # type: ignore[arg-type]
        with store.session() as s:
            row = s.get(Container, cid)
        await ops.delete_row(row)

    asyncio.run(remove())
    with store.session() as s:
        acts = {a.action: a for a in s.query(Action).all()}
        assert s.get(Container, cid) is None
    assert acts["remove"].state == "success" and acts["remove"].result["exit_code"] == 3
    assert acts["stop"].state == "error" and acts["stop"].error_status == 404
    assert all(a.finished_at for a in acts.values())
    store.close()

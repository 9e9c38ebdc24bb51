"""Docker's stats document (GET /containers/{id}/stats) from a host's cgroup reading.

Clients compute CPU % from two samples (cpu_stats minus precpu_stats, against the host's CPU
time) and memory use as usage minus inactive page cache (from memory_stats.stats), so the raw
numbers are passed on as the kernel gives them.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Any

from berth.store.models import Container

ZERO_TIME = "0001-01-01T00:00:00Z"


def rfc3339(ts: float) -> str:
    moment = datetime.fromtimestamp(ts, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond:06d}000Z"


def host_memory() -> int:
    """dockerd reports the host's memory as the limit of a container without one."""
    return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def _cpu(raw: dict[str, Any]) -> dict[str, Any]:
    usage: dict[str, Any] = {"total_usage": raw["cpu_usage_ns"],
                             "usage_in_kernelmode": raw.get("cpu_system_ns", 0),
                             "usage_in_usermode": raw.get("cpu_user_ns", 0)}
    if raw.get("percpu_ns"):
        usage["percpu_usage"] = list(raw["percpu_ns"])
    return {"cpu_usage": usage, "system_cpu_usage": raw["system_cpu_ns"],
            "online_cpus": raw["online_cpus"],
            "throttling_data": {"periods": raw.get("throttle_periods", 0),
                                "throttled_periods": raw.get("throttled_periods", 0),
                                "throttled_time": raw.get("throttled_ns", 0)}}


def _empty_cpu() -> dict[str, Any]:
    return {"cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0, "usage_in_usermode": 0},
            "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0}}


def _blkio(read: int, write: int) -> dict[str, Any]:
    # The host reading is a total over devices; it is given as one entry per operation.
    entries = [{"major": 0, "minor": 0, "op": "read", "value": read},
               {"major": 0, "minor": 0, "op": "write", "value": write},
               {"major": 0, "minor": 0, "op": "total", "value": read + write}]
    return {"io_service_bytes_recursive": entries, "io_serviced_recursive": None,
            "io_queue_recursive": None, "io_service_time_recursive": None,
            "io_wait_time_recursive": None, "io_merged_recursive": None,
            "io_time_recursive": None, "sectors_recursive": None}


def stats_document(row: Container, raw: dict[str, Any],
                   previous: dict[str, Any] | None) -> dict[str, Any]:
    """One sample; ``previous`` (the document before it) fills precpu_stats and preread."""
    pids: dict[str, Any] = {"current": raw["pids_current"]}
    if raw.get("pids_limit") is not None:
        pids["limit"] = raw["pids_limit"]
    usage = raw.get("memory_raw") or raw["memory_usage"]
    return {
        "read": rfc3339(raw["read_at"]),
        "preread": previous["read"] if previous else ZERO_TIME,
        "pids_stats": pids,
        "blkio_stats": _blkio(raw["io_read_bytes"], raw["io_write_bytes"]),
        "num_procs": 0,
        "storage_stats": {},
        "cpu_stats": _cpu(raw),
        "precpu_stats": previous["cpu_stats"] if previous else _empty_cpu(),
        "memory_stats": {"usage": usage, "stats": dict(raw.get("memory_stat") or {}),
                         "limit": raw.get("memory_limit") or host_memory()},
        "name": "/" + row.name,
        "id": row.id,
        **({"networks": raw["networks"]} if raw.get("networks") else {}),
    }


def zero_stats(row: Container) -> dict[str, Any]:
    """What dockerd answers for a container that is not running."""
    return {"read": ZERO_TIME, "preread": ZERO_TIME, "pids_stats": {},
            "blkio_stats": {k: None for k in _blkio(0, 0)}, "num_procs": 0,
            "storage_stats": {}, "cpu_stats": _empty_cpu(), "precpu_stats": _empty_cpu(),
            "memory_stats": {}, "name": "/" + row.name, "id": row.id}

"""Pure rules the agent applies: restart policies, back-off, exit codes of failed starts."""

from __future__ import annotations

from typing import Any

from berth.store.models import Container

BACKOFF_FIRST, BACKOFF_MAX, BACKOFF_RESET_AFTER = 0.1, 60.0, 10.0
REFUSED, CANNOT_INVOKE, NOT_FOUND = 125, 126, 127


def should_restart(row: Container) -> bool:
    """Docker's restart policies, for a container that exited on its own."""
    policy = row.spec.get("restart_policy") or {}
    name, retries = policy.get("name", "no"), int(policy.get("max_retries") or 0)
    if name in ("always", "unless-stopped"):
        return True
    if name == "on-failure":
        return row.exit_code not in (0, None) and (retries == 0 or row.restart_count < retries)
    return False


def backoff(row: Container) -> float:
    """Docker's rule: 100 ms doubling on each quick failure, back to 100 ms after 10 s up."""
    ran = (row.finished_at or 0) - (row.started_at or 0)
    if ran >= BACKOFF_RESET_AFTER:
        return BACKOFF_FIRST
    return min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** min(row.restart_count, 10))


def start_failure_code(message: str) -> int:
    """The exit code docker gives a start that failed: 127 when the command is not found,
    126 when it cannot be executed, 125 for anything else (a mount, a limit, the runtime).
    Only runc's own `exec:` errors speak of the command."""
    text = message.lower()
    if "exec:" not in text and "executable file not found" not in text:
        return REFUSED
    if "not found" in text or "no such file" in text:
        return NOT_FOUND
    if "permission denied" in text or "exec format error" in text or "is a directory" in text:
        return CANNOT_INVOKE
    return REFUSED


def last_exit(row: Container) -> dict[str, Any]:
    return {"exit_code": row.exit_code, "oom_killed": row.oom_killed, "error": row.error}

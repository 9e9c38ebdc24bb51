"""The native API under a full store: list and get latency with 10,000 containers, then load.

Starts a private berthd in temp dirs, stops it, fills its store directly (SQLAlchemy, through
berth.store) with N container rows that are not running -- desired "stopped", status "exited",
no runtime state, restart policy "no", so the agent's adoption sweep records nothing and
launches nothing -- spread over four projects (40/30/20/10 %) with a few labels, and makes a
member token for one of them. Then starts berthd again, waits until it is idle (the agent has
looked at every row once), and measures over its unix socket with httpx, one request at a time:

  list          GET /v1/containers?all=true&limit=50   (first page; root on the socket = admin)
  list member   the same with a member's token, in a project of 30 % of the rows
  list select.  the same (admin) with ?selector=tier=web   (informative)
  list all-proj the same (admin) with ?all_projects=true   (informative: every project's rows)
  get           GET /v1/containers/{id} of random ids (admin, then member)

then C concurrent clients (asyncio, one httpx.AsyncClient and connection each, half of them
with the member's token) for S seconds, each looping over 1 list-first-page : 4 gets. Any
non-2xx answer or exception is an error. Targets (issue 4): list p50 < 50 ms, get p99 < 10 ms,
no errors under load; throughput is printed. Latencies are client wall-clock around each
request (http round trip over the socket included); the client runs on the same machine.

Usage: bench_api.py [--rows N] [--duration S] [--clients C] [--list-requests N]
                    [--get-requests N] [--keep]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import socket
import sqlite3
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any

import httpx
from benchlib import Berth, OwnDaemon, require_root

LIST_TARGET_P50 = 0.050
GET_TARGET_P99 = 0.010
PAGE = 50
PROJECTS = (("default", 0.4), ("bench-a", 0.3), ("bench-b", 0.2), ("bench-c", 0.1))
MEMBER_PROJECT = "bench-a"
TIERS = ("web", "db", "cache", "batch")
LIST_PATH = f"/v1/containers?all=true&limit={PAGE}"
REQUEST_TIMEOUT = 60.0


# --- the store ----------------------------------------------------------------------------


def fill_store(root: Path, rows: int) -> tuple[dict[str, list[str]], str]:
    """Container rows straight into the (stopped) daemon's store; returns each project's ids
    and a member token for MEMBER_PROJECT."""
    from sqlalchemy import insert

    from berth.service.identity import IdentityService
    from berth.service.specs import ContainerCreate
    from berth.store.db import Store
    from berth.store.models import Container

    store = Store(f"sqlite:///{root / 'berth.db'}")
    try:
        identity = IdentityService(store)
        for project, _ in PROJECTS:
            if project != "default":
                identity.create_project(project)
        user = identity.create_user("bench-member")
        identity.set_role(user["id"], MEMBER_PROJECT, "member")
        token = identity.create_token(user["id"], MEMBER_PROJECT, "bench")["token"]

        host = socket.gethostname()  # berthd's own host name: these are its rows
        image_id = "sha256:" + "ab" * 32
        now = time.time()
        ids: dict[str, list[str]] = {p: [] for p, _ in PROJECTS}
        batch: list[dict[str, Any]] = []
        bounds, acc = [], 0.0
        for project, share in PROJECTS:
            acc += share
            bounds.append((round(acc * rows), project))
        for i in range(rows):
            project = next(p for limit, p in bounds if i < limit)
            labels = {"app": f"app{i % 25}", "tier": TIERS[i % len(TIERS)], "bench": "api"}
            spec = ContainerCreate(
                image="busybox:latest", name=f"bench-{i:06d}",
                command=["sh", "-c", f"echo hello {i}; sleep 1"], labels=labels,
                env=["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                     f"BENCH_INDEX={i}"],
            ).model_dump(mode="json")
            created = now - (rows - i) * 0.5  # distinct, increasing creation times
            cid = os.urandom(32).hex()
            ids[project].append(cid)
            batch.append(dict(
                id=cid, project_id=project, name=f"bench-{i:06d}", host=host,
                image_id=image_id, image_ref="busybox:latest", spec=spec, labels=labels,
                created_at=created, desired="stopped", status="exited", pid=0, exit_code=0,
                oom_killed=False, error="", started_at=created + 0.1,
                finished_at=created + 1.2, restart_count=0, restart_after=None,
                stopped_by_user=True,
            ))
            if len(batch) == 1000:
                with store.session() as s:
                    s.execute(insert(Container), batch)
                batch = []
        if batch:
            with store.session() as s:
                s.execute(insert(Container), batch)
    finally:
        store.close()
    return ids, token


# --- the daemon ---------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_idle(pid: int, timeout: float = 600) -> float:
    """Seconds until the process uses under 5 % of a CPU over two 0.5 s windows in a row."""
    start = time.monotonic()
    quiet = 0
    last = cpu_seconds(pid)
    while time.monotonic() - start < timeout:
        time.sleep(0.5)
        now = cpu_seconds(pid)
        quiet = quiet + 1 if now - last < 0.025 else 0
        last = now
        if quiet >= 2:
            return time.monotonic() - start - 1.0
    raise SystemExit(f"bench: error: berthd still busy after {timeout:.0f} s")


# --- measuring ----------------------------------------------------------------------------


def pct(samples: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


@dataclass
class Result:
    name: str
    samples: list[float] = field(default_factory=list)
    errors: int = 0
    target: str = ""  # "p50<50" / "p99<10"
    first_error: str = ""

    def verdict(self) -> str:
        if not self.target or not self.samples:
            return "-"
        which, limit = self.target.split("<")
        value = pct(self.samples, float(which[1:])) * 1000
        return "PASS" if value < float(limit) and not self.errors else "MISS"


def check_list(resp: httpx.Response) -> None:
    resp.raise_for_status()
    items = resp.json()
    if len(items) != PAGE or "x-berth-next-marker" not in resp.headers:
        raise RuntimeError(f"list gave {len(items)} items and no next marker")


def check_get(cid: str) -> Callable[[httpx.Response], None]:
    def check(resp: httpx.Response) -> None:
        resp.raise_for_status()
        if resp.json()["id"] != cid:
            raise RuntimeError(f"get {cid[:12]} answered another container")
    return check


def sequential(client: httpx.Client, result: Result, requests: list[tuple[str, Any]]) -> Result:
    for path, check in requests[:10]:  # warm-up (connection, caches)
        check(client.get(path))
    for path, check in requests:
        t0 = time.perf_counter()
        try:
            resp = client.get(path)
            elapsed = time.perf_counter() - t0
            check(resp)
            result.samples.append(elapsed)
        except Exception as e:  # counted, not fatal: the table says how many
            result.errors += 1
            result.first_error = result.first_error or f"{type(e).__name__}: {e}"
    return result


@dataclass
class Load:
    lists: list[float] = field(default_factory=list)
    gets: list[float] = field(default_factory=list)
    errors: int = 0
    error_kinds: dict[str, int] = field(default_factory=dict)
    elapsed: float = 0.0


async def load(sock: str, clients: int, duration: float, ids: dict[str, list[str]],
               token: str) -> Load:
    out = Load()
    admin_ids = ids["default"]
    member_ids = ids[MEMBER_PROJECT]
    deadline = float("inf")  # set when every client is connected and ready
    ready = asyncio.Event()

    async def client(n: int) -> None:
        member = n % 2 == 1
        headers = {"Authorization": f"Bearer {token}"} if member else {}
        pool = member_ids if member else admin_ids
        rng = random.Random(n)
        transport = httpx.AsyncHTTPTransport(uds=sock)
        async with httpx.AsyncClient(transport=transport, base_url="http://berth",
                                     headers=headers, timeout=REQUEST_TIMEOUT) as c:
            await ready.wait()
            i = n  # stagger the mix between clients
            while time.perf_counter() < deadline:
                is_list = i % 5 == 0
                i += 1
                cid = rng.choice(pool)
                t0 = time.perf_counter()
                try:
                    resp = await c.get(LIST_PATH if is_list else f"/v1/containers/{cid}")
                    elapsed = time.perf_counter() - t0
                    if resp.status_code // 100 != 2:
                        raise RuntimeError(f"HTTP {resp.status_code}")
                    (out.lists if is_list else out.gets).append(elapsed)
                except Exception as e:
                    out.errors += 1
                    kind = f"{type(e).__name__}: {str(e)[:80]}"
                    out.error_kinds[kind] = out.error_kinds.get(kind, 0) + 1

    tasks = [asyncio.create_task(client(n)) for n in range(clients)]
    await asyncio.sleep(0)
    start = time.perf_counter()
    deadline = start + duration
    ready.set()
    await asyncio.gather(*tasks)
    out.elapsed = time.perf_counter() - start
    return out


# --- output -------------------------------------------------------------------------------


def machine() -> str:
    model = ""
    try:
        with open("/proc/cpuinfo") as f:
            model = next((line.split(":", 1)[1].strip() for line in f
                          if line.startswith("model name")), "")
    except OSError:
        pass
    vers = ", ".join(f"{m} {version(m)}" for m in
                     ("berth", "fastapi", "starlette", "uvicorn", "sqlalchemy", "httpx"))
    return (f"machine: {os.cpu_count()} cores ({model or platform.machine()}), "
            f"Linux {platform.release()}\nversions: Python {platform.python_version()}, "
            f"SQLite {sqlite3.sqlite_version}, {vers}")


def table(results: list[Result]) -> None:
    print(f"{'request':<28} {'n':>5} {'err':>4} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} "
          f"{'max ms':>8} {'target':>9} {'result':>6}")
    for r in results:
        if not r.samples:
            print(f"{r.name:<28} {0:>5} {r.errors:>4}  {r.first_error}")
            continue
        ms = [pct(r.samples, p) * 1000 for p in (50, 90, 99, 100)]
        target = f"{r.target} ms" if r.target else "-"
        print(f"{r.name:<28} {len(r.samples):>5} {r.errors:>4} {ms[0]:>8.1f} {ms[1]:>8.1f} "
              f"{ms[2]:>8.1f} {ms[3]:>8.1f} {target:>9} {r.verdict():>6}")
        if r.first_error:
            print(f"  first error: {r.first_error}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=10_000, help="container rows in the store")
    parser.add_argument("--duration", type=float, default=30.0,
                        help="seconds of concurrent load")
    parser.add_argument("--clients", type=int, default=200, help="concurrent clients")
    parser.add_argument("--list-requests", type=int, default=200,
                        help="sequential list requests per identity")
    parser.add_argument("--get-requests", type=int, default=1000,
                        help="sequential get requests per identity")
    parser.add_argument("--keep", action="store_true",
                        help="leave berthd running and its dirs in place (until Enter)")
    args = parser.parse_args()
    if args.rows < 10 * PAGE:
        parser.error(f"--rows must be at least {10 * PAGE}")
    require_root()
    print(machine())

    daemon = OwnDaemon()
    berth = Berth(daemon.host)
    try:
        daemon.start(berth)
        daemon.stop()  # the schema and the admin exist now; fill the store while it is down
        t0 = time.perf_counter()
        ids, token = fill_store(daemon.root, args.rows)
        fill = time.perf_counter() - t0
        t0 = time.perf_counter()
        daemon.start(berth, timeout=120)
        answered = time.perf_counter() - t0
        idle = wait_idle(daemon.pid)
        print(f"store: {args.rows} container rows (exited, not running) in "
              f"{len(PROJECTS)} projects ({', '.join(f'{p} {len(v)}' for p, v in ids.items())})"
              f", written in {fill:.1f} s")
        print(f"berthd restart with them: answers after {answered:.1f} s, idle (the agent "
              f"looked at every row) {idle:.1f} s later; RSS {rss_mib(daemon.pid):.0f} MiB")

        sock = daemon.host.removeprefix("unix://")
        results = measure_sequential(sock, ids, token, args)
        print()
        table(results)

        print(f"\nbench: {args.clients} concurrent clients for {args.duration:.0f} s "
              "(1 list : 4 gets, half of them with the member's token)", file=sys.stderr)
        cpu0, own0 = cpu_seconds(daemon.pid), time.process_time()
        out = asyncio.run(load(sock, args.clients, args.duration, ids, token))
        cpu, own = cpu_seconds(daemon.pid) - cpu0, time.process_time() - own0
        total = len(out.lists) + len(out.gets)
        print(f"\nload: {args.clients} clients x {out.elapsed:.1f} s: {total} requests, "
              f"{total / out.elapsed:.0f} requests/s ({len(out.lists) / out.elapsed:.0f} "
              f"lists/s, {len(out.gets) / out.elapsed:.0f} gets/s), {out.errors} errors; "
              f"CPU: berthd {cpu / out.elapsed * 100:.0f} %, this client "
              f"{own / out.elapsed * 100:.0f} % of one core; "
              f"berthd RSS {rss_mib(daemon.pid):.0f} MiB")
        table([Result("list under load", out.lists), Result("get under load", out.gets)])
        for kind, count in sorted(out.error_kinds.items(), key=lambda kv: -kv[1])[:5]:
            print(f"  {count} x {kind}")

        verdicts = {
            "list p50 < 50 ms": all(r.verdict() == "PASS" for r in results
                                    if r.target.startswith("p50")),
            "get p99 < 10 ms": all(r.verdict() == "PASS" for r in results
                                   if r.target.startswith("p99")),
            f"{args.clients} clients x {args.duration:.0f} s, no errors":
                out.errors == 0 and total > 0,
        }
        print("\ntargets: " + "; ".join(f"{k}: {'PASS' if v else 'MISS'}"
                                        for k, v in verdicts.items()))
        if args.keep:
            print(f"bench: berthd pid {daemon.pid} on {daemon.host}; member token {token}; "
                  "press Enter to clean up", file=sys.stderr)
            input()
        if not all(verdicts.values()):
            raise SystemExit(1)
    finally:
        daemon.cleanup()


def rss_mib(pid: int) -> float:
    from benchlib import rss_kib

    return rss_kib(pid) / 1024


def measure_sequential(sock: str, ids: dict[str, list[str]], token: str,
                       args: argparse.Namespace) -> list[Result]:
    rng = random.Random(4)
    member_headers = {"Authorization": f"Bearer {token}"}
    lists = [(LIST_PATH, check_list)] * args.list_requests

    def gets(project: str) -> list[tuple[str, Any]]:
        chosen = [rng.choice(ids[project]) for _ in range(args.get_requests)]
        return [(f"/v1/containers/{cid}", check_get(cid)) for cid in chosen]

    def client(headers: dict[str, str] | None = None) -> httpx.Client:
        return httpx.Client(transport=httpx.HTTPTransport(uds=sock), base_url="http://berth",
                            headers=headers, timeout=REQUEST_TIMEOUT)

    results = []
    print("bench: sequential requests (one connection each)", file=sys.stderr)
    with client() as admin, client(member_headers) as member:
        results.append(sequential(admin, Result("list (admin, unix socket)", target="p50<50"),
                                  lists))
        results.append(sequential(member, Result("list (member token)", target="p50<50"),
                                  lists))
        results.append(sequential(admin, Result("list ?selector=tier=web"),
                                  [(LIST_PATH + "&selector=tier%3Dweb", check_list)]
                                  * args.list_requests))
        results.append(sequential(admin, Result("list ?all_projects=true"),
                                  [(LIST_PATH + "&all_projects=true", check_list)]
                                  * args.list_requests))
        results.append(sequential(admin, Result("get (admin, unix socket)", target="p99<10"),
                                  gets("default")))
        results.append(sequential(member, Result("get (member token)", target="p99<10"),
                                  gets(MEMBER_PROJECT)))
    return results


if __name__ == "__main__":
    main()

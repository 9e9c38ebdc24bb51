"""What bridge networking adds to `docker run --rm busybox true` against Berth's Docker socket.

Three ways to start the same container, interleaved round-robin (the order rotates each round)
so drift affects all of them alike; times are the docker CLI process's wall-clock, CLI start-up
included:

  none         docker run --rm --network none busybox true      (loopback only)
  bridge       docker run --rm busybox true                     (the project's bridge network:
                                                                 a veth, an address, nft sync)
  bridge+port  docker run --rm -p PORT:80 busybox true          (the same plus a DNAT rule)

The same host port serves every bridge+port round: --rm frees it, and before each round the
benchmark waits (untimed) until the daemon's nftables table no longer mentions it and it can be
bound on the host.

The issue's target: networking adds at most 50% to start time, i.e. the bridge+port median is
at most 1.5x the none median (printed as PASS/FAIL, never asserted).

The comparison: a private dockerd WITH its bridge and iptables. Such a dockerd must never run in
the host's network namespace: it would add its iptables(-nft) chains and set the host's FORWARD
policy to DROP, and nftables evaluates every base chain, so that drop would also cut off Berth's
bridges on this host. So it runs in a network namespace of its own (`unshare --net`): its
docker0, veths, NAT rules, FORWARD policy and docker-proxy live and die there, and the CLI still
reaches it through its unix socket. The host's nftables tables, ip_forward and links are
compared before and after; without unshare the dockerd contender is skipped, with the reason.

Usage: bench_net.py [--rounds N] [--docker PATH] [--port N] [--no-dockerd]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

from bench_docker import timed
from bench_run import _as_image_root, build_rootfs, percentile, short
from benchlib import Berth, OwnDaemon, PrivateDockerd, remove_tree, require_root

from berth.agent.netops import forget_host, table_name
from berth.network import links, nft

TARGET = 1.5  # bridge+port median at most this multiple of the --network none median
MODES = ("none", "bridge", "bridge+port")
DOCKERD_BIP = "10.251.0.1/24"  # clear of Berth's pool (10.210.0.0/15); and in its own netns


def run_argv(docker: str, mode: str, port: int) -> list[str]:
    if mode == "none":
        return [docker, "run", "--rm", "--network", "none", "busybox", "true"]
    if mode == "bridge":
        return [docker, "run", "--rm", "busybox", "true"]
    return [docker, "run", "--rm", "-p", f"{port}:80", "busybox", "true"]


# --- the host port ---------------------------------------------------------------------------


def bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("0.0.0.0", port))
        except OSError:
            return False
    return True


def nft_mentions(port: int, table: str | None = None) -> bool:
    """Whether a DNAT of tcp dport `port` is in `table` (None: anywhere in the ruleset)."""
    argv = ["nft", "list", "ruleset"] if table is None else ["nft", "list", "table", "ip", table]
    proc = subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        return False  # the table is not there (yet): nothing of ours mentions the port
    return re.search(rf"\bdport {port}\b", proc.stdout) is not None


def pick_port() -> int:
    """A host port nobody listens on and no nftables rule on the host maps."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("0.0.0.0", 0))
            port = int(s.getsockname()[1])
        if not nft_mentions(port):
            return port
    raise RuntimeError("no free host port found")


def wait_port_freed(port: int, table: str, timeout: float = 15) -> float:
    """Wait (untimed) until the daemon's table no longer maps `port` and the host can bind it;
    returns how long that took."""
    start = time.monotonic()
    while nft_mentions(port, table) or not bindable(port):
        if time.monotonic() - start > timeout:
            raise RuntimeError(f"host port {port} still in use {timeout:.0f} s after docker run"
                               " --rm returned")
        time.sleep(0.02)
    return time.monotonic() - start


# --- the host's network state (what a bridged dockerd must not change) -----------------------


def host_net_state() -> dict[str, str]:
    """nftables tables other than Berth's (with their rules), ip_forward, and the names of the
    links that are not Berth's (bth*/vb* come and go with the concurrently running tests)."""
    state: dict[str, str] = {}
    listing = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True)
    for line in sorted(listing.stdout.splitlines()):
        parts = line.split()
        if len(parts) == 3 and not parts[2].startswith("berth"):
            rules = subprocess.run(["nft", "list", "table", parts[1], parts[2]],
                                   capture_output=True, text=True).stdout
            state[f"nft table {parts[1]} {parts[2]}"] = rules
    state["ip_forward"] = Path("/proc/sys/net/ipv4/ip_forward").read_text().strip()
    names = [n for n in os.listdir("/sys/class/net") if not links.owned(n)]
    state["links"] = " ".join(sorted(names))
    return state


def state_diff(before: dict[str, str], after: dict[str, str]) -> list[str]:
    return [key for key in sorted(set(before) | set(after)) if before.get(key) != after.get(key)]


class NetnsDockerd(PrivateDockerd):
    """PrivateDockerd with its default bridge and iptables rules, run by `unshare --net` (which
    execs dockerd: the pid we track is dockerd's) in a network namespace of its own, so its
    bridge, rules and FORWARD policy never touch the host's. Stopped by the pid we started."""

    def command(self) -> list[str]:
        return [shutil.which("unshare") or "unshare", "--net", "--", "dockerd",
                "--data-root", str(self.dir / "data"), "--exec-root", str(self.dir / "exec"),
                "-H", f"unix://{self.socket}", "--pidfile", str(self.dir / "dockerd.pid"),
                "--bip", DOCKERD_BIP, "--ip6tables=false", "--containerd-namespace",
                "berth-bench-net", "--log-level", "error", *self.extra_args]

    def start(self, timeout: float = 60) -> bool:
        return shutil.which("unshare") is not None and super().start(timeout)

    def in_own_netns(self) -> bool:
        if self.proc is None or self.proc.poll() is not None:
            return False
        try:
            return os.readlink(f"/proc/{self.proc.pid}/ns/net") != os.readlink(
                "/proc/self/ns/net")
        except OSError:
            return False

    def log_tail(self) -> str:
        try:
            return short((self.dir / "dockerd.log").read_text(errors="replace"), 400)
        except OSError:
            return ""


# --- setup and teardown ----------------------------------------------------------------------


def remove_all(docker: str, env: dict[str, str]) -> None:
    """Best effort: containers a failed round may have left (none, normally)."""
    with contextlib.suppress(Exception):
        ids = subprocess.run([docker, "ps", "-aq"], env=env, capture_output=True, text=True,
                             timeout=30).stdout.split()
        if ids:
            subprocess.run([docker, "rm", "-f", *ids], env=env, capture_output=True, timeout=60)


def berth_links(daemon: OwnDaemon) -> set[str]:
    """The bridge and veth names this daemon can have made: the bridges from its marker files,
    a veth per (container ever created, network) from its store."""
    names: set[str] = set()
    ns_dir = daemon.run_root / "netns"
    if ns_dir.exists():
        names |= {p.name.removeprefix(".bridge-") for p in ns_dir.iterdir()
                  if p.name.startswith(".bridge-")}
    db_path = daemon.root / "berth.db"
    if db_path.exists():
        db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
        try:
            cids = {r[0] for r in db.execute(
                "SELECT DISTINCT container_id FROM actions WHERE container_id != ''")}
            nids = {r[0] for r in db.execute("SELECT id FROM networks")}
        finally:
            db.close()
        names |= {links.veth_name(c, n) for c in cids for n in nids}
    return names


def teardown_berth(daemon: OwnDaemon, docker: str, env: dict[str, str] | None) -> list[str]:
    """Stop our berthd, remove what it made for its networks (as the tests' destroy() does),
    delete its directories; returns what is still on the host."""
    if env is not None and daemon.proc is not None and daemon.proc.poll() is None:
        remove_all(docker, env)
    daemon.stop()
    ours = berth_links(daemon)
    table = table_name(daemon.run_root)
    forget_host(daemon.run_root)  # bridges and the nft table outlive a daemon
    daemon.cleanup()
    present = set(os.listdir("/sys/class/net"))
    left = [f"link {n}" for n in sorted(ours & present)]
    with contextlib.suppress(Exception):
        if nft.exists(table=table):
            left.append(f"nft table ip {table}")
    return left


def import_busybox(docker: str, env: dict[str, str], work: Path) -> None:
    rootfs = work / "rootfs"
    build_rootfs(rootfs)
    tar_path = work / "rootfs.tar"
    with tarfile.open(tar_path, "w") as tar:
        tar.add(rootfs, arcname=".", filter=_as_image_root)
    subprocess.run([docker, "import", str(tar_path), "busybox:latest"], env=env, check=True,
                   capture_output=True)


def start_dockerd(docker: str, base: dict[str, str], work: Path,
                  before: dict[str, str]) -> tuple[NetnsDockerd | None, dict[str, str] | None]:
    """The bridged dockerd in its own network namespace, or (None, None) with a printed
    reason. `before` is the host's network state to hold it to."""
    if not shutil.which("dockerd"):
        print("note: dockerd is not installed (Debian's docker.io); no dockerd -p contender")
        return None, None
    if not shutil.which("unshare"):
        print("note: no dockerd -p contender: a dockerd with its bridge and iptables in the "
              "host's network namespace would add its chains and set the host's FORWARD policy "
              "to DROP, which cuts off Berth's own bridges here; and unshare (util-linux), "
              "needed to give it a network namespace of its own, is not installed")
        return None, None
    dockerd = NetnsDockerd()
    print("bench: starting a private dockerd with its bridge and iptables, in a network "
          "namespace of its own (unshare --net)", file=sys.stderr)
    if not dockerd.start():
        print(f"note: the bridged private dockerd did not start; no dockerd -p contender "
              f"({dockerd.log_tail()})")
        dockerd.cleanup()
        return None, None
    if not dockerd.in_own_netns():
        print("note: the private dockerd is not in a network namespace of its own; stopped it "
              "at once, no dockerd -p contender (it must not change the host's firewall)")
        dockerd.cleanup()
        return None, None
    env = {**base, "DOCKER_HOST": f"unix://{dockerd.socket}"}
    import_busybox(docker, env, work)
    changed = state_diff(before, host_net_state())
    if changed:
        print(f"warning: the host's network state changed while the private dockerd started "
              f"({', '.join(changed)}); stopped it, no dockerd -p contender")
        dockerd.cleanup()
        return None, None
    return dockerd, env


# --- the report ------------------------------------------------------------------------------


def report(samples: dict[tuple[str, str], list[float]], rounds: int, port: int,
           freed: list[float]) -> None:
    med = {key: statistics.median(s) for key, s in samples.items() if s}
    print()
    print(f"docker run --rm busybox true, {rounds} interleaved rounds "
          f"(wall-clock of the docker CLI; bridge+port publishes {port}:80)")
    print(f"{'server':<8} {'network':<12} {'median ms':>10} {'p90 ms':>9} {'vs none':>8}")
    for (server, mode), s in samples.items():
        if not s:
            continue
        none = med.get((server, "none"))
        ratio = f"{med[(server, mode)] / none:.2f}x" if none else "-"
        print(f"{server:<8} {mode:<12} {med[(server, mode)] * 1000:>10.1f} "
              f"{percentile(s, 0.9) * 1000:>9.1f} {ratio:>8}")
    if freed:
        print(f"(untimed: the port was free again {statistics.median(freed) * 1000:.0f} ms "
              f"median, {max(freed) * 1000:.0f} ms max after each --rm returned)")
    none = med[("berth", "none")]
    bridge = med[("berth", "bridge")] / none
    port_ratio = med[("berth", "bridge+port")] / none
    print(f"berth ratios: bridge/none = {bridge:.2f}x, bridge+port/none = {port_ratio:.2f}x")
    print(f"target: networking adds at most 50% to start time (berth bridge+port <= "
          f"{TARGET}x none): {'PASS' if port_ratio <= TARGET else 'FAIL'} "
          f"(+{(port_ratio - 1) * 100:.0f}%)")
    if ("dockerd", "bridge+port") in med:
        d_port = med[("dockerd", "bridge+port")]
        print(f"dockerd -p: median {d_port * 1000:.1f} ms, {d_port / med[('dockerd', 'none')]:.2f}x"
              f" its --network none; berth bridge+port / dockerd -p = "
              f"{med[('berth', 'bridge+port')] / d_port:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=20, help="timed rounds (default 20)")
    parser.add_argument("--docker", default="/usr/bin/docker" if os.path.exists(
        "/usr/bin/docker") else (shutil.which("docker") or "docker"), help="the docker CLI")
    parser.add_argument("--port", type=int, default=0,
                        help="host port for -p (default: a free one)")
    parser.add_argument("--no-dockerd", action="store_true",
                        help="skip the bridged private dockerd contender")
    args = parser.parse_args()
    require_root()

    work = Path(tempfile.mkdtemp(prefix="berth-bench-net-", dir="/var/tmp"))
    daemon = OwnDaemon()
    dockerd: NetnsDockerd | None = None
    envs: dict[str, dict[str, str]] = {}
    base = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
    base["DOCKER_CONFIG"] = str(work / "docker-config")
    before = host_net_state()
    samples: dict[tuple[str, str], list[float]] = {}
    freed: list[float] = []
    port = args.port or pick_port()
    left: list[str] = []
    try:
        berth = Berth(daemon.host)
        daemon.start(berth)
        berth.ensure_busybox()
        envs["berth"] = {**base, "DOCKER_HOST": f"unix://{daemon.run_root / 'docker.sock'}"}
        if args.no_dockerd:
            print("note: --no-dockerd: no dockerd -p contender")
        else:
            dockerd, env = start_dockerd(args.docker, base, work, before)
            if env is not None:
                envs["dockerd"] = env
        tables = {"berth": table_name(daemon.run_root)}

        def once(server: str, mode: str) -> float:
            took = timed(run_argv(args.docker, mode, port), envs[server])
            if mode == "bridge+port" and server in tables:
                freed.append(wait_port_freed(port, tables[server]))
            elif mode == "bridge+port":  # dockerd's docker-proxy is in its own netns
                time.sleep(0.05)
            return took

        contenders = [(server, mode) for server in envs for mode in MODES]
        for server, mode in contenders:  # warm-up: the bridge, caches, lazy imports
            once(server, mode)
        freed.clear()
        samples = {c: [] for c in contenders}
        for i in range(args.rounds):
            shift = i % len(contenders)
            for server, mode in contenders[shift:] + contenders[:shift]:
                samples[(server, mode)].append(once(server, mode))
    finally:
        left = teardown_berth(daemon, args.docker, envs.get("berth"))
        if dockerd is not None:
            if "dockerd" in envs:
                remove_all(args.docker, envs["dockerd"])
            dockerd.cleanup()
        remove_tree(work)
        changed = state_diff(before, host_net_state())
        if changed:
            print(f"warning: the host's network state differs from before the run: "
                  f"{', '.join(changed)}")
        if left:
            print(f"warning: left on the host after teardown: {', '.join(left)}")
        elif not changed:
            print("bench: teardown: berthd stopped, its bridges, veths and nft table removed; "
                  "the host's network state is as before", file=sys.stderr)

    report(samples, args.rounds, port, freed)


if __name__ == "__main__":
    main()

"""Time `docker run --rm busybox true` with the docker CLI against Berth's Docker socket and
against dockerd, interleaved round-robin so drift affects both alike.

The same docker client binary talks to both; both run busybox `true` from an image holding the
host's busybox-static, with --network none (Berth's bridge networking is not there yet, and the
private dockerd runs without a bridge). Times are subprocess wall-clock, CLI start-up included.

Usage: bench_docker.py [--rounds N] [--docker PATH]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

from bench_run import _as_image_root, build_rootfs, percentile
from benchlib import Berth, OwnDaemon, PrivateDockerd, remove_tree, require_root

TARGET = 0.6  # Berth's median at most this fraction of dockerd's


def timed(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    proc = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, capture_output=True,
                          timeout=120)
    took = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {proc.returncode}: "
                           f"{(proc.stderr or proc.stdout).decode(errors='replace')[-400:]}")
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=20, help="timed rounds (default 20)")
    parser.add_argument("--docker", default="/usr/bin/docker" if os.path.exists(
        "/usr/bin/docker") else (shutil.which("docker") or "docker"), help="the docker CLI")
    args = parser.parse_args()
    require_root()

    work = Path(tempfile.mkdtemp(prefix="berth-bench-docker-", dir="/var/tmp"))
    daemon = OwnDaemon()
    dockerd: PrivateDockerd | None = None
    envs: dict[str, dict[str, str]] = {}
    base = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
    base["DOCKER_CONFIG"] = str(work / "docker-config")
    try:
        berth = Berth(daemon.host)
        daemon.start(berth)
        berth.ensure_busybox()
        envs["berth"] = {**base, "DOCKER_HOST": f"unix://{daemon.run_root / 'docker.sock'}"}
        if shutil.which("dockerd"):
            dockerd = PrivateDockerd()
            print("bench: starting a private dockerd (no bridge, no iptables)", file=sys.stderr)
            if dockerd.start():
                env = {**base, "DOCKER_HOST": f"unix://{dockerd.socket}"}
                rootfs = work / "rootfs"
                build_rootfs(rootfs)
                tar_path = work / "rootfs.tar"
                with tarfile.open(tar_path, "w") as tar:
                    tar.add(rootfs, arcname=".", filter=_as_image_root)
                subprocess.run([args.docker, "import", str(tar_path), "busybox:latest"],
                               env=env, check=True, capture_output=True)
                envs["dockerd"] = env
            else:
                print("note: the private dockerd did not start; measuring Berth alone")
        else:
            print("note: dockerd is not installed (Debian's docker.io); measuring Berth alone")

        argv = [args.docker, "run", "--rm", "--network", "none", "busybox", "true"]
        for env in envs.values():  # warm-up: first runs pay for caches and lazy imports
            timed(argv, env)
        samples: dict[str, list[float]] = {name: [] for name in envs}
        for _ in range(args.rounds):
            for name, env in envs.items():
                samples[name].append(timed(argv, env))
    finally:
        daemon.cleanup()
        if dockerd is not None:
            dockerd.cleanup()
        remove_tree(work)

    medians = {name: statistics.median(s) for name, s in samples.items()}
    print()
    print(f"docker run --rm busybox true, {args.rounds} interleaved rounds")
    print(f"{'server':<10} {'median ms':>10} {'p90 ms':>9} {'ratio to dockerd':>17}")
    for name, s in samples.items():
        ratio = f"{medians[name] / medians['dockerd']:.2f}x" if "dockerd" in medians else "-"
        print(f"{name:<10} {medians[name] * 1000:>10.1f} {percentile(s, 0.9) * 1000:>9.1f} "
              f"{ratio:>17}")
    if "dockerd" in medians:
        r = medians["berth"] / medians["dockerd"]
        print(f"target: berth <= {TARGET}x dockerd: {'PASS' if r <= TARGET else 'FAIL'} "
              f"(berth = {r:.2f}x dockerd)")


if __name__ == "__main__":
    main()

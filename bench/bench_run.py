"""Time `berth run --rm busybox true` end to end against raw runc, crun, docker and podman.

Every candidate runs the same thing: busybox `true` in a rootfs made of /bin/busybox and its
applet links, as root in a user namespace mapped to host uid/gid 100000 (Berth's default).
Times are subprocess wall-clock (time.perf_counter around the whole command, CLI start-up
included). The candidates are interleaved round-robin so drift affects all of them alike.

  runc-dir      runc run of a bundle whose root is a plain directory
  runc-overlay  per run: mkdir upper/work, mount overlayfs over the rootfs, runc run,
                umount, delete the upper dir -- what a container engine has to do
  runc-berthcfg runc-overlay with the config.json Berth itself writes for this container
                (its seccomp profile, capabilities, rlimits, masked paths, /etc binds): the
                runtime's share of Berth's time, with the same security settings
  crun-overlay  the same as runc-overlay with crun
  berth         berth run --rm busybox true (CLI -> berthd -> conmon -> runtime)
  docker        docker run --rm of the rootfs imported with `docker import`
  podman        podman run --rm of the rootfs imported with `podman import`

Usage: bench_run.py [--rounds N] [--only runc,berth] [--host URL | --own-daemon]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from benchlib import (
    DEFAULT_HOST,
    Berth,
    OwnDaemon,
    PrivateDockerd,
    mount_overlay,
    remove_tree,
    require_root,
    umount,
)

USERNS_HOST_ID = 100000
USERNS_SIZE = 65536
IMAGE_TAG = "berth-bench-busybox:latest"
ALL_CANDIDATES = ["berth", "runc-dir", "runc-overlay", "runc-berthcfg", "crun-overlay", "docker",
                  "podman"]
# --only accepts these shorthands too
GROUPS = {"runc": ["runc-dir", "runc-overlay", "runc-berthcfg"], "crun": ["crun-overlay"]}


@dataclass
class Candidate:
    name: str
    once: Callable[[], None]  # one timed run; raises on failure
    cleanup: Callable[[], None] = lambda: None
    samples: list[float] = field(default_factory=list)
    error: str | None = None


def run_quiet(argv: list[str], timeout: float = 60) -> None:
    proc = subprocess.run(
        argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout
    )
    if proc.returncode != 0:
        out = (proc.stderr or proc.stdout).decode(errors="replace").strip()
        raise RuntimeError(f"{' '.join(argv[:4])}... exited {proc.returncode}: {out[-400:]}")


# --- the rootfs and the OCI bundle --------------------------------------------------------


def build_rootfs(rootfs: Path) -> None:
    """/bin/busybox plus a symlink per applet, owned by the user-namespace root."""
    busybox = shutil.which("busybox") or "/bin/busybox"
    for d in ("bin", "dev", "proc", "sys", "tmp", "etc", "root", "run"):
        (rootfs / d).mkdir(parents=True, exist_ok=True)
    shutil.copy2(busybox, rootfs / "bin" / "busybox")
    applets = subprocess.run(
        [busybox, "--list"], capture_output=True, text=True, check=True
    ).stdout.split()
    for applet in applets:
        link = rootfs / "bin" / applet
        if applet != "busybox" and not link.exists():
            link.symlink_to("busybox")
    (rootfs / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (rootfs / "etc" / "group").write_text("root:x:0:\n")
    (rootfs / "tmp").chmod(0o1777)
    for dirpath, dirnames, filenames in os.walk(rootfs):
        for name in [*dirnames, *filenames]:
            os.lchown(os.path.join(dirpath, name), USERNS_HOST_ID, USERNS_HOST_ID)
    os.lchown(rootfs, USERNS_HOST_ID, USERNS_HOST_ID)


def write_config(bundle: Path, runtime: str, root_path: str) -> None:
    """`runc spec`, then: run `true`, no terminal, rw root, a user namespace at 100000."""
    bundle.mkdir(parents=True, exist_ok=True)
    config = bundle / "config.json"
    config.unlink(missing_ok=True)
    subprocess.run([runtime, "spec"], cwd=bundle, check=True, capture_output=True)
    spec = json.loads(config.read_text())
    spec["process"]["terminal"] = False
    spec["process"]["args"] = ["/bin/true"]
    spec["root"] = {"path": root_path, "readonly": False}
    spec["hostname"] = "bench"
    linux = spec["linux"]
    namespaces = [n for n in linux["namespaces"] if n["type"] != "user"]
    namespaces.append({"type": "user"})
    if not any(n["type"] == "cgroup" for n in namespaces):
        namespaces.append({"type": "cgroup"})
    linux["namespaces"] = namespaces
    mapping = [{"containerID": 0, "hostID": USERNS_HOST_ID, "size": USERNS_SIZE}]
    linux["uidMappings"] = mapping
    linux["gidMappings"] = mapping
    # In a user namespace the gid=5 option of devpts must exist in the mapping (it does), and
    # mqueue/cgroup mounts are fine with their own ipc/cgroup namespaces.
    config.write_text(json.dumps(spec, indent=2))


class RuntimeBench:
    """One runtime (runc or crun) on a plain-dir bundle and on a per-run overlay bundle."""

    def __init__(self, runtime: str, work: Path, rootfs: Path) -> None:
        self.runtime = runtime
        self.work = work
        self.rootfs = rootfs
        self.state = work / f"{runtime}-state"
        self.state.mkdir(exist_ok=True)
        self.dir_bundle = work / f"{runtime}-dir-bundle"
        write_config(self.dir_bundle, runtime, str(rootfs))
        self.ovl_bundle = work / f"{runtime}-overlay-bundle"
        write_config(self.ovl_bundle, runtime, "rootfs")
        self.count = 0

    def _run(self, bundle: Path) -> None:
        self.count += 1
        cid = f"bench-{self.runtime}-{os.getpid()}-{self.count}"
        run_quiet([self.runtime, "--root", str(self.state), "run", "--bundle", str(bundle), cid])

    def run_dir(self) -> None:
        self._run(self.dir_bundle)

    def run_overlay(self, bundle: Path | None = None) -> None:
        bundle = bundle or self.ovl_bundle
        layer = bundle / "layer"
        upper, workdir, merged = layer / "upper", layer / "work", bundle / "rootfs"
        upper.mkdir(parents=True)
        workdir.mkdir()
        merged.mkdir(exist_ok=True)
        os.chown(upper, USERNS_HOST_ID, USERNS_HOST_ID)
        mount_overlay(self.rootfs, upper, workdir, merged)
        try:
            self._run(bundle)
        finally:
            umount(merged)
            shutil.rmtree(layer)


def berth_config_bundle(berth: Berth, daemon: OwnDaemon, bundle: Path) -> None:
    """A bundle with the config.json Berth wrote for a busybox container of its own, made to
    run /bin/true on the bench's rootfs and id mapping (which cost the same as Berth's)."""
    cid = berth.run("run", "-d", "busybox", "sleep", "60").strip()
    try:
        ctr = daemon.root / "containers" / cid
        spec = json.loads((ctr / "config.json").read_text())
        bundle.mkdir(parents=True, exist_ok=True)
        for mount in spec["mounts"]:  # /etc/hosts and co. live in the container's dir
            source = Path(mount.get("source", ""))
            if source.parent == ctr and source.is_file():
                shutil.copy2(source, bundle / source.name)
                mount["source"] = str(bundle / source.name)
    finally:
        berth.run("rm", "-f", cid)
    spec["process"]["args"] = ["/bin/true"]
    spec["process"]["terminal"] = False
    spec["root"] = {"path": "rootfs", "readonly": False}
    mapping = [{"containerID": 0, "hostID": USERNS_HOST_ID, "size": USERNS_SIZE}]
    spec["linux"]["uidMappings"] = spec["linux"]["gidMappings"] = mapping
    spec["linux"].pop("cgroupsPath", None)  # runc then names the cgroup after each run's id
    (bundle / "config.json").write_text(json.dumps(spec))


# --- docker / podman ----------------------------------------------------------------------


def _as_image_root(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    return info


def docker_answers() -> bool:
    return subprocess.run(["docker", "info"], capture_output=True).returncode == 0


def engine_candidate(engine: str, rootfs_tar: Path) -> Candidate | None:
    exe = shutil.which(engine)
    if exe is None:
        print(f"note: {engine} is not installed; skipping it")
        return None
    info = subprocess.run([exe, "info"], capture_output=True, text=True, timeout=30)
    if info.returncode != 0:
        print(f"note: {engine} is installed but not usable (is its daemon running?); skipping")
        return None
    try:
        run_quiet([exe, "import", str(rootfs_tar), IMAGE_TAG], timeout=120)
    except RuntimeError as e:
        print(f"note: {engine} import failed ({e}); skipping")
        return None
    # Same user-namespace mapping as the others where the engine supports it per container.
    # podman: runc as Berth uses (Debian's podman picks crun, which fails on hybrid cgroups),
    # and rlimits within the host's hard limits (its defaults need CAP_SYS_RESOURCE).
    userns = ["--runtime", "runc", "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024",
              "--uidmap", f"0:{USERNS_HOST_ID}:{USERNS_SIZE}",
              "--gidmap", f"0:{USERNS_HOST_ID}:{USERNS_SIZE}"] if engine == "podman" else []
    if engine == "docker":
        print("note: docker runs without a user namespace (userns-remap is daemon-wide), "
              "which makes its containers slightly cheaper to start than the others'")
    argv = [exe, "run", "--rm", "--network", "none", *userns, IMAGE_TAG, "/bin/true"]
    return Candidate(
        engine,
        once=lambda: run_quiet(argv),
        cleanup=lambda: subprocess.run([exe, "rmi", "-f", IMAGE_TAG], capture_output=True),
    )


# --- main ---------------------------------------------------------------------------------


def parse_only(values: list[str] | None) -> list[str]:
    if not values:
        return list(ALL_CANDIDATES)
    chosen: list[str] = []
    for value in values:
        for name in value.split(","):
            name = name.strip()
            names = GROUPS.get(name, [name])
            for n in names:
                if n not in ALL_CANDIDATES:
                    raise SystemExit(f"unknown candidate {n!r}; choose from "
                                     f"{', '.join([*ALL_CANDIDATES, *GROUPS])}")
                if n not in chosen:
                    chosen.append(n)
    return chosen


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    k = (len(ordered) - 1) * q
    lo = int(k)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def short(text: str, limit: int = 90) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else "..." + text[-limit:]


def report(candidates: list[Candidate]) -> None:
    medians = {c.name: statistics.median(c.samples) for c in candidates if c.samples}
    berth = medians.get("berth")
    print()
    print(f"{'candidate':<14} {'runs':>5} {'median ms':>10} {'p90 ms':>9} {'ratio to berth':>15}")
    for c in candidates:
        if not c.samples:
            print(f"{c.name:<14} {'-':>5} {'-':>10} {'-':>9} {'-':>15}  "
                  f"failed: {short(c.error or '')}")
            continue
        med = medians[c.name]
        ratio = f"{med / berth:.2f}x" if berth else "-"
        note = f"  (stopped: {short(c.error)})" if c.error else ""
        print(f"{c.name:<14} {len(c.samples):>5} {med * 1000:>10.1f} "
              f"{percentile(c.samples, 0.9) * 1000:>9.1f} {ratio:>15}{note}")
    print()

    def verdict(other: str, limit: float) -> str:
        if berth is None or other not in medians:
            return "n/a (not measured)"
        r = berth / medians[other]
        return f"{'PASS' if r <= limit else 'FAIL'} (berth = {r:.2f}x {other})"

    print(f"targets: berth <= 0.5x docker: {verdict('docker', 0.5)}; "
          f"berth <= 2x runc: {verdict('runc-overlay', 2.0)}")
    if berth and "runc-berthcfg" in medians:
        print(f"runc with Berth's own config takes {medians['runc-berthcfg'] * 1000:.1f} ms: "
              f"berth = {berth / medians['runc-berthcfg']:.2f}x that")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=20, help="timed rounds (default 20)")
    parser.add_argument("--only", action="append", metavar="NAMES",
                        help="comma-separated candidates: "
                             + ", ".join([*ALL_CANDIDATES, *GROUPS]))
    parser.add_argument("--host", default=os.environ.get("BERTH_HOST", DEFAULT_HOST),
                        help="berthd to use with --no-own-daemon")
    parser.add_argument("--own-daemon", action=argparse.BooleanOptionalAction, default=True,
                        help="start a berthd in temp dirs (default) instead of using --host")
    parser.add_argument("--keep", action="store_true", help="keep the work dir")
    args = parser.parse_args()
    require_root()
    wanted = parse_only(args.only)

    work = Path(tempfile.mkdtemp(prefix="berth-bench-run-", dir="/var/tmp"))
    work.chmod(0o711)  # the user-namespace root (uid 100000) must be able to traverse it
    candidates: list[Candidate] = []
    daemon: OwnDaemon | None = None
    dockerd: PrivateDockerd | None = None
    try:
        rootfs = work / "rootfs"
        build_rootfs(rootfs)
        benches: dict[str, RuntimeBench] = {}
        for runtime in ("runc", "crun"):
            names = [n for n in wanted if n.startswith(runtime + "-")]
            if not names:
                continue
            if shutil.which(runtime) is None:
                print(f"note: {runtime} is not installed; skipping {', '.join(names)}")
                continue
            rb = benches[runtime] = RuntimeBench(runtime, work, rootfs)
            if f"{runtime}-dir" in names:
                candidates.append(Candidate(f"{runtime}-dir", rb.run_dir))
            if f"{runtime}-overlay" in names:
                candidates.append(Candidate(f"{runtime}-overlay", rb.run_overlay))
        if "berth" in wanted:
            os.environ.pop("BERTH_HOST", None)
            host = args.host
            if args.own_daemon:
                daemon = OwnDaemon()
                host = daemon.host
                os.environ["BERTH_HOST"] = host
            berth = Berth(host)
            if daemon is not None:
                daemon.start(berth)
            elif not berth.answers():
                raise SystemExit(f"bench: no berthd answering on {host} (start one or use "
                                 "--own-daemon)")
            berth.ensure_busybox()
            argv = berth.argv("run", "--rm", "busybox", "true")
            candidates.insert(0, Candidate("berth", lambda: run_quiet(argv)))
        if "runc-berthcfg" in wanted:
            if daemon is None or "runc" not in benches:
                print("note: runc-berthcfg needs runc and the berth candidate on an own berthd "
                      "(to read the config it writes); skipping it")
            else:
                bundle = work / "runc-berthcfg-bundle"
                berth_config_bundle(berth, daemon, bundle)
                candidates.append(Candidate("runc-berthcfg",
                                            partial(benches["runc"].run_overlay, bundle)))
        engines = [e for e in ("docker", "podman") if e in wanted]
        if "docker" in engines and shutil.which("dockerd") and not docker_answers():
            dockerd = PrivateDockerd()
            print("bench: starting a private dockerd (no bridge, no iptables)", file=sys.stderr)
            if not dockerd.start():
                print("note: the private dockerd did not start; skipping docker")
        if engines:
            tar_path = work / "rootfs.tar"
            with tarfile.open(tar_path, "w") as tar:
                # An image is owned by its own root: the engines do their own id shifting.
                tar.add(rootfs, arcname=".", filter=_as_image_root)
            for engine in engines:
                c = engine_candidate(engine, tar_path)
                if c is not None:
                    candidates.append(c)
        if not candidates:
            raise SystemExit("bench: nothing to measure")

        print(f"bench: warm-up, then {args.rounds} rounds of: "
              f"{', '.join(c.name for c in candidates)}", file=sys.stderr)
        for c in candidates:  # warm-up, untimed; drops candidates that do not work at all
            try:
                c.once()
            except Exception as e:  # noqa: BLE001 - report any failure, keep the others going
                c.error = str(e)
                print(f"bench: {c.name} failed in warm-up: {e}", file=sys.stderr)
        for _ in range(args.rounds):
            for c in candidates:
                if c.error:
                    continue
                t0 = time.perf_counter()
                try:
                    c.once()
                except Exception as e:  # noqa: BLE001
                    c.error = str(e)
                    print(f"bench: {c.name} failed: {e}", file=sys.stderr)
                    continue
                c.samples.append(time.perf_counter() - t0)
        report(candidates)
    finally:
        for c in candidates:
            c.cleanup()
        if daemon is not None:
            daemon.cleanup()
        if dockerd is not None:
            dockerd.cleanup()
        if args.keep:
            print(f"bench: work dir kept at {work}", file=sys.stderr)
        else:
            remove_tree(work)


if __name__ == "__main__":
    main()

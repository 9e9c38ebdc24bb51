"""Time building a small Dockerfile: `berth build` against the docker CLI on Berth's Docker
socket, on a private dockerd, and podman; cold (no cache) and fully cached rebuilds.

The Dockerfile has FROM busybox and 10 steps (ENV, WORKDIR, 3 RUN that really start
containers, COPY of context files, LABEL, EXPOSE, USER, CMD); the context is a temp dir with a
few small files (and a .dockerignore). Every engine builds FROM the same busybox layer, made
here from the host's busybox-static (berth.image.base, as `berth image build-base` does):
nothing is pulled.

  berth         `berth build` CLI against a private berthd in temp dirs
  berth-docker  `DOCKER_BUILDKIT=0 docker build` against that berthd's Docker API socket
                (skipped, with the daemon's answer, if it refuses POST /build)
  docker        `DOCKER_BUILDKIT=0 docker build --network none` against a private dockerd (no
                bridge, no iptables); busybox loaded with `docker load` from a docker-archive
  podman        `podman build --network none --pull=never` with its own --root/--runroot in
                temp dirs; busybox loaded with `podman load` from the same docker-archive

Phases, each interleaved round-robin (A B C D, A B C D, ...) so drift affects all alike:
  cold    `build --no-cache` (every step runs again), after one untimed warm-up build
  cached  the same Dockerfile and context again, after one untimed build that fills the cache
Times are subprocess wall-clock around the whole CLI process. The build output is checked:
no "Using cache" in a cold build, and the number of cached steps is shown for the rebuilds.

Usage: bench_build.py [--rounds N] [--cached-rounds N] [--only berth,docker,...]
                      [--host URL | --own-daemon] [--docker PATH] [--keep]
"""

from __future__ import annotations

import argparse
import hashlib
import io
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
from pathlib import Path

from bench_run import percentile, short
from benchlib import DEFAULT_HOST, Berth, OwnDaemon, PrivateDockerd, remove_tree, require_root

from berth.image.archive import host_arch
from berth.image.base import PATH_ENV, _applets, _check_static, build_layer

ALL_CONTENDERS = ["berth", "berth-docker", "docker", "podman"]
TAG = "berth-bench-build:latest"
BASE = "busybox:latest"
TARGET_CACHED_S = 0.5  # the target: a fully cached rebuild under 0.5 s

DOCKERFILE = """\
FROM busybox
ENV APP_HOME=/app GREETING="hello from the build benchmark"
WORKDIR /app
RUN echo "$GREETING" > greeting.txt && mkdir -p data
COPY config.ini notes.txt payload.bin ./
RUN for i in $(seq 1 50); do echo "row $i" > data/tmp-$i; done \\
    && rm data/tmp-* && echo kept > data/kept && rm payload.bin
RUN cat config.ini greeting.txt > combined.txt && wc -c combined.txt && rm notes.txt
LABEL org.example.bench="build" org.example.version="1"
EXPOSE 8080/tcp
USER 1000:1000
CMD ["cat", "/app/combined.txt"]
"""
STEPS = sum(1 for line in DOCKERFILE.splitlines() if line[:1].isalpha()) - 1  # after FROM
RUNS = DOCKERFILE.count("\nRUN ")


def write_context(ctx: Path) -> int:
    """The Dockerfile and a few small files; returns how many files the context has."""
    ctx.mkdir(parents=True)
    (ctx / "Dockerfile").write_text(DOCKERFILE)
    (ctx / ".dockerignore").write_text("*.log\n")
    (ctx / "debug.log").write_text("left out by .dockerignore\n")
    (ctx / "config.ini").write_text("[app]\nname = bench\nport = 8080\n")
    (ctx / "notes.txt").write_text("".join(f"note {i}\n" for i in range(200)))
    (ctx / "payload.bin").write_bytes(hashlib.sha256(b"berth").digest() * 256)  # 8 KiB
    return sum(1 for p in ctx.iterdir() if p.is_file())


def busybox_archive(path: Path) -> None:
    """A docker-archive (`docker save` layout) of busybox:latest: the layer Berth's own
    build-base makes from the host's busybox-static, and the same Env and Cmd."""
    busybox = Path(shutil.which("busybox") or "/bin/busybox").resolve()
    layer = build_layer(_check_static(busybox), _applets(busybox))
    diff_hex = hashlib.sha256(layer).hexdigest()
    config = {
        "architecture": host_arch(),
        "os": "linux",
        "created": "1970-01-01T00:00:00Z",
        "config": {"Env": [PATH_ENV], "Cmd": ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": [f"sha256:{diff_hex}"]},
        "history": [{"created": "1970-01-01T00:00:00Z",
                     "created_by": "berth bench: busybox from the host's busybox-static"}],
    }
    config_bytes = json.dumps(config, separators=(",", ":"), sort_keys=True).encode()
    config_hex = hashlib.sha256(config_bytes).hexdigest()
    manifest = [{"Config": f"{config_hex}.json", "RepoTags": [BASE],
                 "Layers": [f"{diff_hex}/layer.tar"]}]
    members = {
        f"{diff_hex}/layer.tar": layer,
        f"{config_hex}.json": config_bytes,
        "manifest.json": json.dumps(manifest).encode(),
        "repositories": json.dumps({"busybox": {"latest": diff_hex}}).encode(),
    }
    with tarfile.open(path, "w") as tar:
        dir_info = tarfile.TarInfo(diff_hex)
        dir_info.type, dir_info.mode = tarfile.DIRTYPE, 0o755
        tar.addfile(dir_info)
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))


# --- contenders ---------------------------------------------------------------------------


@dataclass
class Contender:
    name: str
    argv: Callable[[bool], list[str]]  # no_cache -> the build command
    env: dict[str, str] | None = None
    cold: list[float] = field(default_factory=list)
    cached: list[float] = field(default_factory=list)
    hits: dict[str, int] = field(default_factory=dict)  # phase -> "Using cache" in last output
    error: str | None = None
    skipped: str | None = None  # why it was not measured at all


def build_once(c: Contender, no_cache: bool) -> tuple[float, str]:
    """One build: wall-clock seconds and the combined output; raises on failure."""
    argv = c.argv(no_cache)
    start = time.perf_counter()
    proc = subprocess.run(argv, env=c.env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, timeout=600)
    took = time.perf_counter() - start
    out = proc.stdout.decode(errors="replace")
    if proc.returncode != 0:
        raise RuntimeError(f"exited {proc.returncode}: {first_error_line(out)}")
    return took, out


def first_error_line(output: str) -> str:
    """The line that says what went wrong (not the CLI's progress lines before it)."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    for line in lines:
        if "error" in line.lower() or "not supported" in line.lower():
            return line
    return lines[-1] if lines else "no output"


def cache_hits(output: str) -> int:
    return output.count("Using cache")


def run_quiet(argv: list[str], env: dict[str, str] | None = None, timeout: float = 300) -> str:
    proc = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:6])}... exited {proc.returncode}: "
                           f"{first_error_line(proc.stderr or proc.stdout)}")
    return proc.stdout


def docker_build_argv(docker: str, ctx: Path, network: bool) -> Callable[[bool], list[str]]:
    net = ["--network", "none"] if network else []
    return lambda no_cache: [docker, "build", "-t", TAG, *net,
                             *(["--no-cache"] if no_cache else []), str(ctx)]


def podman_contender(work: Path, ctx: Path, archive: Path) -> Contender:
    exe = shutil.which("podman")
    if exe is None:
        return Contender("podman", lambda _: [], skipped="podman is not installed")
    top = work / "podman"
    # runc as Berth uses (Debian's podman picks crun, which fails on hybrid cgroups), cgroupfs
    # (no systemd here), rlimits within the host's hard limits (its defaults need
    # CAP_SYS_RESOURCE), no network and never a pull.
    base = [exe, "--root", str(top / "root"), "--runroot", str(top / "run"),
            "--storage-driver", "overlay", "--events-backend", "none",
            "--cgroup-manager", "cgroupfs", "--runtime", "runc"]
    build = [*base, "build", "--pull=never", "--network", "none", "--ulimit",
             "nofile=1024:1024", "--ulimit", "nproc=1024:1024", "-t", TAG]
    c = Contender("podman", lambda no_cache: [*build, *(["--no-cache"] if no_cache else []),
                                              str(ctx)])
    try:
        print(f"version: {run_quiet([exe, '--version']).strip()}")
        run_quiet([*base, "load", "-i", str(archive)])
    except (RuntimeError, subprocess.TimeoutExpired) as e:
        c.skipped = f"podman load failed: {short(str(e))}"
    return c


def podman_cleanup(work: Path) -> None:
    top = work / "podman"
    exe = shutil.which("podman")
    if exe is not None and top.exists():  # then remove_tree unmounts whatever podman left
        subprocess.run([exe, "--root", str(top / "root"), "--runroot", str(top / "run"),
                        "--storage-driver", "overlay", "--events-backend", "none",
                        "rmi", "-af"], capture_output=True, timeout=120)
    remove_tree(top)


# --- measuring ----------------------------------------------------------------------------


def phase(contenders: list[Contender], rounds: int, no_cache: bool) -> None:
    name = "cold" if no_cache else "cached"
    live = [c for c in contenders if not c.skipped and not c.error]
    print(f"bench: {name}: one untimed build each, then {rounds} rounds of: "
          f"{', '.join(c.name for c in live)}", file=sys.stderr)
    for c in live:  # warm-up (cold) / fill the cache (cached); drops what does not work
        try:
            _, out = build_once(c, no_cache)
        except (RuntimeError, subprocess.TimeoutExpired) as e:
            fail(c, str(e), untimed=True)
            continue
        if no_cache and cache_hits(out):
            print(f"note: {c.name}: --no-cache build still used the cache "
                  f"({cache_hits(out)} steps)")
    for _ in range(rounds):
        for c in contenders:
            if c.skipped or c.error:
                continue
            try:
                took, out = build_once(c, no_cache)
            except (RuntimeError, subprocess.TimeoutExpired) as e:
                fail(c, str(e), untimed=False)
                continue
            (c.cold if no_cache else c.cached).append(took)
            c.hits[name] = cache_hits(out)


def fail(c: Contender, error: str, untimed: bool) -> None:
    if c.name == "berth-docker" and untimed and not c.cold:
        # Berth's POST /build is new (or not there yet): a skip, not a failure.
        c.skipped = error.split(": ", 1)[-1]
        print(f"berth-docker: skipped ({c.skipped})")
        return
    c.error = error
    print(f"bench: {c.name} failed: {error}", file=sys.stderr)


def report(contenders: list[Contender], rounds: int, cached_rounds: int, files: int) -> None:
    print()
    print(f"build of FROM busybox + {STEPS} steps ({RUNS} RUN), context of {files} small files; "
          f"cold: {rounds} rounds --no-cache, cached: {cached_rounds} rounds; wall-clock s")
    print(f"{'contender':<13} {'cold med':>9} {'p90':>7} {'cached med':>11} {'p90':>7} "
          f"{'cached steps':>13}")
    med: dict[str, dict[str, float]] = {"cold": {}, "cached": {}}
    for c in contenders:
        if c.skipped:
            print(f"{c.name:<13} skipped ({short(c.skipped)})")
            continue
        cells = []
        for ph, samples in (("cold", c.cold), ("cached", c.cached)):
            if samples:
                med[ph][c.name] = statistics.median(samples)
                cells.append((f"{med[ph][c.name]:.3f}", f"{percentile(samples, 0.9):.3f}"))
            else:
                cells.append(("-", "-"))
        hits = f"{c.hits['cached']}/{STEPS}" if "cached" in c.hits else "-"
        note = f"  (failed: {short(c.error)})" if c.error else ""
        print(f"{c.name:<13} {cells[0][0]:>9} {cells[0][1]:>7} {cells[1][0]:>11} "
              f"{cells[1][1]:>7} {hits:>13}{note}")
    print()
    for a, b in (("berth", "docker"), ("berth", "podman"), ("berth-docker", "docker")):
        parts = [f"{ph} {med[ph][a] / med[ph][b]:.2f}x" for ph in ("cold", "cached")
                 if a in med[ph] and b in med[ph]]
        if parts or a == "berth":
            print(f"ratio {a}/{b}: {', '.join(parts) if parts else 'n/a (not measured)'}")
    berth = med["cached"].get("berth")
    if berth is None:
        print(f"target: cached rebuild under {TARGET_CACHED_S} s: n/a (berth not measured)")
    else:
        verdict = "PASS" if berth < TARGET_CACHED_S else "FAIL"
        print(f"target: cached rebuild under {TARGET_CACHED_S} s: {verdict} "
              f"(berth median {berth:.3f} s)")


# --- main ---------------------------------------------------------------------------------


def parse_only(values: list[str] | None) -> list[str]:
    if not values:
        return list(ALL_CONTENDERS)
    chosen: list[str] = []
    for value in values:
        for name in (n.strip() for n in value.split(",")):
            if name not in ALL_CONTENDERS:
                raise SystemExit(f"unknown contender {name!r}; choose from "
                                 f"{', '.join(ALL_CONTENDERS)}")
            if name not in chosen:
                chosen.append(name)
    return chosen


def docker_socket_of(host: str) -> Path | None:
    """Berth's Docker API socket next to its native one (RUN_ROOT/docker.sock)."""
    if not host.startswith("unix://"):
        return None
    return Path(host[len("unix://"):]).parent / "docker.sock"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="timed cold rounds (default 5)")
    parser.add_argument("--cached-rounds", type=int, default=10,
                        help="timed cached-rebuild rounds (default 10)")
    parser.add_argument("--only", action="append", metavar="NAMES",
                        help="comma-separated contenders: " + ", ".join(ALL_CONTENDERS))
    parser.add_argument("--host", default=os.environ.get("BERTH_HOST", DEFAULT_HOST),
                        help="berthd to use with --no-own-daemon")
    parser.add_argument("--own-daemon", action=argparse.BooleanOptionalAction, default=True,
                        help="start a berthd in temp dirs (default) instead of using --host")
    parser.add_argument("--docker", default="/usr/bin/docker" if os.path.exists(
        "/usr/bin/docker") else (shutil.which("docker") or "docker"), help="the docker CLI")
    parser.add_argument("--keep", action="store_true", help="keep the work dir")
    args = parser.parse_args()
    require_root()
    wanted = parse_only(args.only)
    os.environ.pop("BERTH_HOST", None)

    work = Path(tempfile.mkdtemp(prefix="berth-bench-build-", dir="/var/tmp"))
    work.chmod(0o711)
    ctx = work / "context"
    files = write_context(ctx)
    archive = work / "busybox-docker-archive.tar"
    busybox_archive(archive)
    # The docker CLI: no user config, no DOCKER_* from the caller; the legacy builder.
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
    base_env["DOCKER_CONFIG"] = str(work / "docker-config")
    base_env["DOCKER_BUILDKIT"] = "0"
    have_docker_cli = shutil.which(args.docker) is not None

    daemon: OwnDaemon | None = None
    berth: Berth | None = None
    dockerd: PrivateDockerd | None = None
    contenders: list[Contender] = []
    try:
        if "berth" in wanted or "berth-docker" in wanted:
            host = args.host
            if args.own_daemon:
                daemon = OwnDaemon()
                host = daemon.host
            berth = Berth(host)
            if daemon is not None:
                daemon.start(berth)
            elif not berth.answers():
                raise SystemExit(f"bench: no berthd answering on {host} (start one or use "
                                 "--own-daemon)")
            print(f"version: {berth.run('--version').strip()}")
            berth.ensure_busybox()
            if "berth" in wanted:
                b = berth
                contenders.append(Contender("berth", lambda no_cache: b.argv(
                    "build", "-t", TAG, *(["--no-cache"] if no_cache else []), str(ctx))))
        if "berth-docker" in wanted:
            assert berth is not None
            sock = docker_socket_of(berth.host)
            c = Contender("berth-docker", docker_build_argv(args.docker, ctx, network=False),
                          env={**base_env, "DOCKER_HOST": f"unix://{sock}"})
            if not have_docker_cli:
                c.skipped = f"the docker CLI ({args.docker}) is not installed"
            elif sock is None or not sock.exists():
                c.skipped = f"Berth's Docker API socket is not there ({sock})"
            contenders.append(c)
        if "docker" in wanted:
            c = Contender("docker", docker_build_argv(args.docker, ctx, network=True))
            if not have_docker_cli or shutil.which("dockerd") is None:
                c.skipped = "docker is not installed (the CLI and dockerd: Debian's docker.io)"
            else:
                dockerd = PrivateDockerd()
                print("bench: starting a private dockerd (no bridge, no iptables)",
                      file=sys.stderr)
                if not dockerd.start():
                    c.skipped = f"the private dockerd did not start (log in {dockerd.dir})"
                else:
                    os.environ.pop("DOCKER_HOST", None)  # PrivateDockerd.start sets it
                    c.env = {**base_env, "DOCKER_HOST": f"unix://{dockerd.socket}"}
                    fmt = "client {{.Client.Version}}, server {{.Server.Version}}"
                    try:
                        print("version: docker " + run_quiet(
                            [args.docker, "version", "--format", fmt], env=c.env).strip())
                        run_quiet([args.docker, "load", "-i", str(archive)], env=c.env)
                    except (RuntimeError, subprocess.TimeoutExpired) as e:
                        c.skipped = f"docker load failed: {short(str(e))}"
            contenders.append(c)
        if "podman" in wanted:
            contenders.append(podman_contender(work, ctx, archive))
        for c in contenders:
            if c.skipped:
                print(f"{c.name}: skipped ({c.skipped})")
        if all(c.skipped for c in contenders):
            raise SystemExit("bench: nothing to measure")

        phase(contenders, args.rounds, no_cache=True)
        phase(contenders, args.cached_rounds, no_cache=False)
        report(contenders, args.rounds, args.cached_rounds, files)
    finally:
        if daemon is None and berth is not None:  # an external berthd: take our tag back
            berth.run("rmi", TAG, check=False)
        if daemon is not None:
            daemon.cleanup()
        if dockerd is not None:
            dockerd.cleanup()
        if "podman" in wanted:
            podman_cleanup(work)
        if args.keep:
            print(f"bench: work dir kept at {work}", file=sys.stderr)
        else:
            remove_tree(work)


if __name__ == "__main__":
    main()

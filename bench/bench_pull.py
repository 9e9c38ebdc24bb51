"""Pull a ~300 MB, 6-layer image from a loopback registry into a cold store: Berth against
skopeo, docker and podman; then Berth's layer unpack against `umoci unpack`.

The image is built here, once per run (no network): six gzip layers of files of varied sizes,
most of them incompressible (random bytes) and the rest text, so gzip has real work on both
sides. It goes into Debian's docker-registry on a loopback port through `skopeo copy
--preserve-digests` from an OCI layout, and its digest is checked against the one built.

Pull contenders, each into a cold store every round (nothing of the image cached):

  berth   `berth pull` against a fresh berthd (--insecure-registry HOST) in temp dirs, warmed
          up by pulling a tiny image first; downloads and verifies the blobs and records the
          image. Its layers unpack in the background after the pull returns; the extra row
          berth-ready is the time until they are all unpacked (what docker and podman wait
          for), measured from the same start.
  skopeo  `skopeo copy docker://... oci:DIR:TAG` (download only: writes the gzip blobs, no
          unpack)
  docker  `docker pull` on a private dockerd (then `docker rmi`); downloads and unpacks
  podman  `podman pull` with its own --root/--runroot in temp dirs; downloads and unpacks

Unpack contenders (the same layers, already on local disk, into an empty dir each round):

  berth-unpack    berth.image.layers.LayerStore.ensure per layer, 4 threads as berthd does
  berth-unpack-1  the same, one layer after the other
  umoci           `umoci unpack --image LAYOUT:TAG BUNDLE` (one rootfs, layers applied in
                  order; umoci also writes an mtree manifest of the result)

Rounds are interleaved, each starting one later (A B C D, B C D A, ...); times are wall-clock
around the whole command, CLI start-up included; the page cache is flushed to disk (sync)
before each timed run.

Usage: bench_pull.py [--rounds N] [--only berth,skopeo,...] [--size-mb N] [--profile]
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import math
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from benchlib import Berth, OwnDaemon, PrivateDockerd, remove_tree, require_root, venv_bin

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # for tests.integration

from berth.image.blobs import BlobStore  # noqa: E402
from berth.image.layers import LayerStore  # noqa: E402
from berth.image.types import LayerRef  # noqa: E402
from tests.integration.registry import (  # noqa: E402
    OCI_LAYER_GZIP,
    OCI_MANIFEST,
    REGISTRY_BIN,
    BuiltImage,
    LayerFiles,
    Registry,
    build_image,
    skopeo_copy,
    start_registry,
    three_layer_image,
    write_oci_layout,
)

PULL_CANDIDATES = ["berth", "skopeo", "docker", "podman"]
UNPACK_CANDIDATES = ["berth-unpack", "berth-unpack-1", "umoci"]
GROUPS = {"pull": PULL_CANDIDATES, "unpack": UNPACK_CANDIDATES}
REPO, TAG, TINY = "bench/big", "1", "bench/tiny"
LAYERS = 6
MB = 1_000_000
_WORD_TEXT = ("the of and to in is that for it as with was on be by this are from or an at "
         "config value return error path file data image layer bytes index manifest digest "
         "registry container runtime kernel mount socket thread lock buffer stream json yaml "
         "def class import self none true false if else for while try except raise")
WORDS = _WORD_TEXT.split()


@dataclass
class Candidate:
    """One contender: prepare (untimed), once (timed), reset (untimed) per round."""

    name: str
    does: str
    once: Callable[[], None]
    prepare: Callable[[], None] = lambda: None
    reset: Callable[[], None] = lambda: None
    close: Callable[[], None] = lambda: None
    samples: list[float] = field(default_factory=list)
    error: str | None = None


def run_out(argv: list[str], timeout: float = 600, env: dict[str, str] | None = None) -> str:
    """Run a command quietly; its stdout+stderr, or RuntimeError with the tail of it."""
    proc = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=timeout, env=env)
    if proc.returncode != 0:
        out = (proc.stderr or proc.stdout).strip()
        raise RuntimeError(f"{' '.join(argv[:4])}... exited {proc.returncode}: {out[-400:]}")
    return proc.stdout + proc.stderr


def version(argv: list[str]) -> str:
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"unavailable ({e})"
    return " ".join((proc.stdout or proc.stderr).split()) or f"exit {proc.returncode}"


# --- the image ----------------------------------------------------------------------------


def _log_uniform(rng: random.Random, lo: int, hi: int) -> int:
    return int(math.exp(rng.uniform(math.log(lo), math.log(hi))))


def layer_files(rng: random.Random, index: int, target: int, corpus: bytes) -> LayerFiles:
    """Files for one layer whose gzip is about ``target`` bytes: ~80% of it random bytes in
    files of 32 KiB-8 MiB, the rest text (compresses ~4:1) in 1000 small files of 100 B-16 KiB
    and bigger ones of 16 KiB-1 MiB."""
    files: LayerFiles = {f"layer{index}/README": b"bench layer %d\n" % index}

    def text(n: int) -> bytes:
        start = rng.randrange(len(corpus) - n)
        return corpus[start:start + n]

    k = 0
    for _ in range(1000):
        files[f"layer{index}/s{k % 40:02d}/f{k}.txt"] = text(_log_uniform(rng, 100, 16 << 10))
        k += 1
    text_left = int(target * 0.2 * 4) - sum(len(v) for v in files.values()  # type: ignore[arg-type]
                                            if isinstance(v, bytes))
    while text_left > 0:
        n = min(text_left, _log_uniform(rng, 16 << 10, 1 << 20))
        files[f"layer{index}/t{k % 20:02d}/f{k}.txt"] = text(n)
        text_left -= n
        k += 1
    random_left = int(target * 0.8)
    while random_left > 0:
        n = min(random_left, _log_uniform(rng, 32 << 10, 8 << 20))
        files[f"layer{index}/b{k % 10:02d}/f{k}.bin"] = rng.randbytes(n)
        random_left -= n
        k += 1
    return files


def make_image(size_mb: int, seed: int = 1) -> tuple[BuiltImage, int]:
    """The benchmark image (LAYERS gzip layers totalling about ``size_mb`` MB compressed) and
    its number of files."""
    rng = random.Random(seed)
    corpus = "\n".join(" ".join(rng.choices(WORDS, k=rng.randint(3, 14)))
                       for _ in range(60_000)).encode()
    target = size_mb * MB // LAYERS
    layers = [layer_files(rng, i, target, corpus) for i in range(LAYERS)]
    return build_image(layers, label="berth-bench-pull"), sum(len(f) for f in layers)


def unpacked_size(img: BuiltImage) -> int:
    return sum(len(gzip.decompress(blob)) for blob, _ in img.layers)


def registry_digest(reg: Registry, repo: str, tag: str) -> str:
    """The digest the registry serves for repo:tag (an OCI manifest)."""
    req = urllib.request.Request(f"{reg.url}/v2/{repo}/manifests/{tag}", method="HEAD",
                                 headers={"Accept": OCI_MANIFEST})
    with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310 - loopback http
        return str(resp.headers["Docker-Content-Digest"])


def push_image(work: Path, reg: Registry, img: BuiltImage, repo: str) -> Path:
    """Write ``img`` as an OCI layout and skopeo-copy it to ``reg``; check the digest."""
    layout = work / f"layout-{repo.replace('/', '-')}"
    write_oci_layout(layout, TAG, [img])
    skopeo_copy(layout, TAG, reg, f"{repo}:{TAG}")
    served = registry_digest(reg, repo, TAG)
    if served != img.manifest_digest:
        raise SystemExit(f"bench: the registry serves {repo}:{TAG} as {served}, "
                         f"built as {img.manifest_digest}")
    return layout


def expect_digest(output: str, digest: str, who: str) -> None:
    if digest not in output:
        raise RuntimeError(f"{who} did not report digest {digest}: {output.strip()[-300:]}")


# --- pull contenders ----------------------------------------------------------------------


class BerthPull:
    """`berth pull` against a fresh berthd per round (a cold --root). The pull returns once
    the blobs are verified and the image recorded; the layers unpack in the background after
    it, so each round also waits for them and keeps that time (``ready``) apart."""

    def __init__(self, reg: Registry, ref: str, digest: str, diff_ids: list[str]) -> None:
        self.reg, self.ref, self.digest, self.diff_ids = reg, ref, digest, diff_ids
        self.daemon: OwnDaemon | None = None
        self.started = 0.0
        self.ready = Candidate("berth-ready", "pull, then its layers unpacked (run-ready)",
                               lambda: None)

    def prepare(self) -> None:
        self.daemon = OwnDaemon(["--insecure-registry", self.reg.host])
        self.daemon.start(self.berth())
        self.berth().run("pull", "-q", f"{self.reg.host}/{TINY}:{TAG}", timeout=120)  # warm-up
        self.wait_unpacked(self.daemon.root, [])

    def berth(self) -> Berth:
        assert self.daemon is not None
        return Berth(self.daemon.host)

    def once(self) -> None:
        self.started = time.perf_counter()
        expect_digest(run_out(self.berth().argv("pull", self.ref)), self.digest, "berth pull")

    def reset(self) -> None:
        if self.daemon is not None:
            if self.started:
                self.wait_unpacked(self.daemon.root, self.diff_ids)
                self.ready.samples.append(time.perf_counter() - self.started)
                self.started = 0.0
            self.daemon.cleanup()
            self.daemon = None

    @staticmethod
    def wait_unpacked(root: Path, diff_ids: list[str], timeout: float = 600) -> None:
        """Until every layer is complete under root/layers and no unpack is in progress."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            keys = [k for k in (root / "layers").glob("*") if k.is_dir()]
            busy = any(any(k.glob(".tmp-*")) for k in keys)
            if not busy and all(any((k / d[7:]).is_dir() for k in keys) for d in diff_ids):
                return
            time.sleep(0.01)
        raise RuntimeError(f"berth: layers not unpacked {timeout:.0f} s after the pull")


def skopeo_candidate(work: Path, ref: str, digest: str) -> Candidate:
    dest = work / "skopeo-oci"

    def once() -> None:
        run_out(["skopeo", "copy", "--src-tls-verify=false", f"docker://{ref}",
                 f"oci:{dest}:{TAG}"])
        expect_digest((dest / "index.json").read_text(), digest, "skopeo copy")

    return Candidate("skopeo", "download only, no unpack", once,
                     reset=lambda: remove_tree(dest))


def docker_candidate(reg: Registry, ref: str, digest: str) -> Candidate | None:
    if shutil.which("docker") is None or shutil.which("dockerd") is None:
        print("note: docker: not installed; skipping it")
        return None
    dockerd = PrivateDockerd(["--insecure-registry", reg.host])
    print("bench: starting a private dockerd (no bridge, no iptables)", file=sys.stderr)
    if not dockerd.start():
        print(f"note: docker: the private dockerd did not start (log in {dockerd.dir}); "
              "skipping it")
        dockerd.cleanup()
        return None
    fmt = "client {{.Client.Version}}, server {{.Server.Version}}"
    print(f"version: docker {version(['docker', 'version', '--format', fmt])}")

    def reset() -> None:
        subprocess.run(["docker", "rmi", "-f", ref], capture_output=True)
        subprocess.run(["docker", "image", "prune", "-af"], capture_output=True)

    return Candidate("docker", "download + unpack (overlay2)",
                     lambda: expect_digest(run_out(["docker", "pull", ref]), digest,
                                           "docker pull"),
                     reset=reset, close=dockerd.cleanup)


def podman_candidate(work: Path, ref: str, config_digest: str) -> Candidate | None:
    if shutil.which("podman") is None:
        print("note: podman: not installed; skipping it")
        return None
    print(f"version: {version(['podman', '--version'])}")
    top = work / "podman"
    base = ["podman", "--root", str(top / "root"), "--runroot", str(top / "run"),
            "--storage-driver", "overlay", "--events-backend", "none"]

    def once() -> None:
        out = run_out([*base, "pull", "--tls-verify=false", ref])
        expect_digest(out, config_digest[7:], "podman pull")

    def reset() -> None:
        subprocess.run([*base, "rmi", "-af"], capture_output=True)
        remove_tree(top)

    return Candidate("podman", "download + unpack (overlay)", once, reset=reset)


# --- unpack contenders --------------------------------------------------------------------


def unpack_candidates(work: Path, img: BuiltImage, layout: Path,
                      wanted: list[str]) -> list[Candidate]:
    """Berth's LayerStore and umoci over the same local layers, into a fresh dir each round."""
    blobs = BlobStore(work / "unpack-blobs")
    for digest, _ in img.blobs().items():
        os.link(layout / "blobs" / "sha256" / digest[7:], blobs.path(digest))
    refs = [LayerRef("sha256:" + hashlib.sha256(blob).hexdigest(), diff_id, len(blob),
                     OCI_LAYER_GZIP) for blob, diff_id in img.layers]
    out = work / "unpack-out"
    out_reset = lambda: remove_tree(out)  # noqa: E731

    def berth_unpack(threads: int) -> Callable[[], None]:
        def once() -> None:
            store = LayerStore(out, blobs)
            with ThreadPoolExecutor(max_workers=threads) as pool:
                for future in [pool.submit(store.ensure, la, None) for la in refs]:
                    future.result()
        return once

    found: list[Candidate] = []
    if "berth-unpack" in wanted:
        found.append(Candidate("berth-unpack", "LayerStore.ensure, 4 threads",
                               berth_unpack(min(4, len(refs))), reset=out_reset))
    if "berth-unpack-1" in wanted:
        found.append(Candidate("berth-unpack-1", "LayerStore.ensure, 1 thread",
                               berth_unpack(1), reset=out_reset))
    if "umoci" in wanted:
        if shutil.which("umoci") is None:
            print("note: umoci: not installed; skipping it")
        else:
            print(f"version: {version(['umoci', '--version'])}")
            found.append(Candidate(
                "umoci", "umoci unpack (one rootfs + mtree)",
                lambda: run_out(["umoci", "unpack", "--image", f"{layout}:{TAG}", str(out)]),
                reset=out_reset))
    return found


# --- running and reporting ----------------------------------------------------------------


def run_rounds(candidates: list[Candidate], rounds: int, label: str) -> None:
    """Interleaved rounds; a candidate that fails once is dropped with its error kept."""
    print(f"bench: {label}: {rounds} rounds of {', '.join(c.name for c in candidates)}",
          file=sys.stderr)
    for n in range(rounds):
        # Each round starts one later, so no contender always follows the same one: a pull
        # that unpacks 486 MB leaves the disk busy for whoever comes next.
        shift = n % len(candidates)
        for c in candidates[shift:] + candidates[:shift]:
            if c.error:
                continue
            try:
                c.prepare()
                os.sync()
                t0 = time.perf_counter()
                c.once()
                c.samples.append(time.perf_counter() - t0)
            except (Exception, SystemExit) as e:  # noqa: BLE001 - benchlib.die() included:
                c.error = str(e) or type(e).__name__  # report it, keep the others going
                print(f"bench: {c.name} failed: {c.error}", file=sys.stderr)
            finally:
                try:
                    c.reset()
                except Exception as e:  # noqa: BLE001
                    print(f"bench: {c.name}: cleanup failed: {e}", file=sys.stderr)
        done = ", ".join(f"{c.name} {c.samples[-1]:.2f}s" for c in candidates
                         if c.samples and len(c.samples) == n + 1)
        print(f"bench: round {n + 1}/{rounds}: {done}", file=sys.stderr)


def short(text: str, limit: int = 80) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else "..." + text[-limit:]


def table(candidates: list[Candidate], base: str, size: int, size_label: str) -> dict[str, float]:
    """Print medians, MB/s of ``size`` bytes and the ratio to ``base``; return the medians."""
    medians = {c.name: statistics.median(c.samples) for c in candidates if c.samples}
    ref = medians.get(base)
    print(f"{'contender':<15} {'runs':>4} {'median s':>9} {'min s':>7} "
          f"{size_label:>11} {'x ' + base:>11}  what it does")
    for c in candidates:
        if not c.samples:
            print(f"{c.name:<15} {'-':>4} {'-':>9} {'-':>7} {'-':>11} {'-':>11}  "
                  f"failed: {short(c.error or '')}")
            continue
        med = medians[c.name]
        ratio = f"{med / ref:.2f}" if ref else "-"
        note = f" (stopped: {short(c.error, 40)})" if c.error else ""
        print(f"{c.name:<15} {len(c.samples):>4} {med:>9.2f} {min(c.samples):>7.2f} "
              f"{size / MB / med:>11.1f} {ratio:>11}  {c.does}{note}")
    return medians


def berth_phases(reg: Registry, ref: str, diff_ids: list[str], profile: bool,
                 work: Path) -> None:
    """One more cold pull through the SDK, timing the phases from the progress events
    (optionally under py-spy)."""
    from berth.client import Client

    puller = BerthPull(reg, ref, "", diff_ids)
    puller.prepare()
    spy: subprocess.Popen[bytes] | None = None
    raw = work / "py-spy.txt"
    try:
        assert puller.daemon is not None
        if profile:
            spy = subprocess.Popen([venv_bin("py-spy"), "record", "-p", str(puller.daemon.pid),
                                    "-r", "200", "-f", "raw", "-o", str(raw), "--threads"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(1.0)
        os.sync()
        t0 = time.perf_counter()
        events = [(time.perf_counter() - t0, e)
                  for e in Client(puller.daemon.host).images.pull(ref)]
        total = time.perf_counter() - t0
        stop_profiler(spy)  # the pull only, not the unpack after it
        spy = None
        puller.wait_unpacked(puller.daemon.root, puller.diff_ids)
        unpacked = time.perf_counter() - t0
    finally:
        stop_profiler(spy)
        puller.reset()

    def first(status: str) -> float | None:
        return next((t for t, e in events if e.get("status") == status and e.get("id")), None)

    def last(status: str) -> float | None:
        ts = [t for t, e in events if e.get("status") == status and e.get("id")]
        return ts[-1] if ts else None

    resolved = next((t for t, e in events if e.get("status") == "resolved"), 0.0)
    dl0, dl1 = first("downloading"), last("done")
    print(f"berth pull phases (one more cold pull via the SDK, {total:.2f} s in all): "
          f"to manifest resolved {resolved:.2f} s", end="")
    if dl0 is not None and dl1 is not None:
        print(f"; downloads {dl0:.2f}-{dl1:.2f} s ({dl1 - dl0:.2f} s)", end="")
    print(f"; after the last download {total - (dl1 or 0.0):.2f} s; layers unpacked "
          f"{unpacked:.2f} s after the start")
    if profile and raw.exists():
        summarize_profile(raw)


def stop_profiler(spy: subprocess.Popen[bytes] | None) -> None:
    if spy is None:
        return
    spy.send_signal(signal.SIGINT)
    try:
        spy.wait(timeout=60)
    except subprocess.TimeoutExpired:
        spy.kill()
        spy.wait()


def summarize_profile(raw: Path, top: int = 12) -> None:
    """Self time per function (leaf frames) of berthd's busy threads, from py-spy's raw
    output."""
    leaves: Counter[str] = Counter()
    total = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = stack.split(";")
        leaf = frames[-1]
        if any(idle in leaf for idle in ("select (", "wait (", "_worker (", "poll (",
                                         "accept (", "_recv_into", "epoll")):
            continue  # idle threads
        func, _, where = leaf.rpartition(" (")
        leaves[f"{func or leaf} ({where.rstrip(')').rsplit('/', 1)[-1]})"] += int(count)
        total += int(count)
    print(f"py-spy, berthd busy samples ({total}), top self time:")
    for name, n in leaves.most_common(top):
        print(f"  {100 * n / max(total, 1):5.1f}%  {name}")


def parse_only(values: list[str] | None) -> list[str]:
    everything = PULL_CANDIDATES + UNPACK_CANDIDATES
    if not values:
        return everything
    chosen: list[str] = []
    for value in values:
        for name in (n.strip() for n in value.split(",")):
            for n in GROUPS.get(name, [name]):
                if n not in everything:
                    raise SystemExit(f"unknown contender {n!r}; choose from "
                                     f"{', '.join([*everything, *GROUPS])}")
                if n not in chosen:
                    chosen.append(n)
    return chosen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds (default 5)")
    parser.add_argument("--only", action="append", metavar="NAMES",
                        help="comma-separated contenders: "
                             + ", ".join([*PULL_CANDIDATES, *UNPACK_CANDIDATES, *GROUPS]))
    parser.add_argument("--size-mb", type=int, default=300,
                        help="compressed image size in MB (default 300)")
    parser.add_argument("--profile", action="store_true",
                        help="run the extra phase-timing pull of berth under py-spy")
    parser.add_argument("--keep", action="store_true", help="keep the work dir")
    args = parser.parse_args()
    require_root()
    wanted = parse_only(args.only)
    for tool in ("skopeo", REGISTRY_BIN):
        if shutil.which(tool) is None:
            raise SystemExit(f"bench: {tool} is needed to serve the image; run scripts/setup.sh")
    os.environ.pop("BERTH_HOST", None)

    work = Path(tempfile.mkdtemp(prefix="berth-bench-pull-", dir="/var/tmp"))
    work.chmod(0o711)
    reg: Registry | None = None
    pulls: list[Candidate] = []
    unpacks: list[Candidate] = []
    try:
        print(f"version: {version([venv_bin('berth'), '--version'])}; python "
              f"{sys.version.split()[0]}; {version(['skopeo', '--version'])}; "
              f"{version([REGISTRY_BIN, '--version'])}")
        t0 = time.perf_counter()
        img, files = make_image(args.size_mb)
        compressed = sum(len(blob) for blob, _ in img.layers)
        plain = unpacked_size(img)
        print(f"image: {len(img.layers)} layers, {files} files, "
              f"{compressed / MB:.1f} MB compressed, {plain / MB:.1f} MB as tar "
              f"(built in {time.perf_counter() - t0:.1f} s)")
        reg = start_registry(work / "registry", "open")
        ref = f"{reg.host}/{REPO}:{TAG}"
        layout = push_image(work, reg, img, REPO)
        push_image(work, reg, three_layer_image("tiny"), TINY)
        print(f"image: {ref} = {img.manifest_digest} (config {img.config_digest[:19]}...)")

        bp: BerthPull | None = None
        if "berth" in wanted:
            bp = BerthPull(reg, ref, img.manifest_digest, [d for _, d in img.layers])
            pulls.append(Candidate("berth", "download + verify + record (unpack after)",
                                   bp.once, prepare=bp.prepare, reset=bp.reset))
        if "skopeo" in wanted:
            pulls.append(skopeo_candidate(work, ref, img.manifest_digest))
        if "docker" in wanted and (c := docker_candidate(reg, ref, img.manifest_digest)):
            pulls.append(c)
        if "podman" in wanted and (c := podman_candidate(work, ref, img.config_digest)):
            pulls.append(c)
        unpacks = unpack_candidates(work, img, layout, wanted)

        if pulls:
            run_rounds(pulls, args.rounds, "pull")
        if unpacks:
            run_rounds(unpacks, args.rounds, "unpack")

        if pulls:
            print(f"\npull into a cold store, {args.rounds} rounds interleaved "
                  f"({compressed / MB:.1f} MB compressed; MB/s of compressed bytes):")
            shown = [*pulls, bp.ready] if bp is not None and bp.ready.samples else pulls
            medians = table(shown, "berth", compressed, "MB/s")
            verdict(pulls, medians)
        if unpacks:
            print(f"\nunpack of the same {len(img.layers)} layers from local disk "
                  f"({plain / MB:.1f} MB of tar; MB/s of uncompressed bytes):")
            table(unpacks, "umoci", plain, "MB/s tar")
        if "berth" in wanted:
            print()
            berth_phases(reg, ref, [d for _, d in img.layers], args.profile, work)
    finally:
        for c in [*pulls, *unpacks]:
            try:
                c.reset()
                c.close()
            except Exception as e:  # noqa: BLE001
                print(f"bench: {c.name}: cleanup failed: {e}", file=sys.stderr)
        if reg is not None:
            reg.stop()
        if args.keep:
            print(f"bench: work dir kept at {work}", file=sys.stderr)
        else:
            remove_tree(work)


def verdict(pulls: list[Candidate], medians: dict[str, float]) -> None:
    berth = medians.get("berth")
    others = {c.name: medians[c.name] for c in pulls if c.name != "berth" and c.samples}
    if berth is None or not others:
        print("target (berth faster than the fastest other): n/a (not measured)")
        return
    best = min(others, key=others.__getitem__)
    ok = berth < others[best]
    print(f"target: berth faster than the fastest other ({best}, {others[best]:.2f} s): "
          f"{'MET' if ok else 'NOT MET'} (berth = {berth / others[best]:.2f}x {best})")
    unpacking = {n: t for n, t in others.items() if n != "skopeo"}
    ready = medians.get("berth-ready")
    if unpacking and ready is not None:
        best_u = min(unpacking, key=unpacking.__getitem__)
        print(f"        until unpacked, against those whose pull unpacks ({best_u}, "
              f"{unpacking[best_u]:.2f} s): berth-ready = {ready / unpacking[best_u]:.2f}x "
              f"{best_u}")


if __name__ == "__main__":
    main()

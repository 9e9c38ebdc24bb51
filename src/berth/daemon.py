"""berthd: the api and the agent of one host, in one process, on the embedded store.

Stopping berthd (SIGTERM, or kill -9) never stops containers: each runs under its own conmon.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fcntl
import logging
import os
import socket
import sys
import tempfile
from pathlib import Path

from berth import __version__
from berth.paths import DEFAULT_ROOT, DEFAULT_RUN_ROOT, HostPaths

log = logging.getLogger("berth")
DEFAULT_USERNS_BASE = 1_000_000_000  # far above any uid a distribution hands out
DEFAULT_POLICY = Path("/etc/berth/policy.json")
DEFAULT_REGISTRIES_D = Path("/etc/berth/registries.d")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="berthd", description="The Berth daemon (api + agent).")
    p.add_argument("--root", type=Path, default=DEFAULT_ROOT, help="persistent state")
    p.add_argument("--run-root", type=Path, default=DEFAULT_RUN_ROOT,
                   help="runtime state on a tmpfs (sockets, monitors)")
    p.add_argument("--store", default=None, help="store URL (default: SQLite in --root)")
    p.add_argument("--role", choices=["all"], default="all",
                   help="all: api and agent in one process (api/agent split comes with clusters)")
    p.add_argument("--socket", type=Path, default=None,
                   help="unix socket of the native API (default: RUN_ROOT/berth.sock)")
    p.add_argument("--runtime", default=None, help="OCI runtime binary (default: runc)")
    p.add_argument("--userns-base", type=int, default=DEFAULT_USERNS_BASE,
                   help="first host uid of container user namespaces (0 disables them)")
    p.add_argument("--insecure-registry", action="append", default=[], metavar="HOST[:PORT]",
                   help="speak plain HTTP to this registry (repeatable)")
    p.add_argument("--signature-policy", type=Path, default=DEFAULT_POLICY,
                   help="the host's containers-policy.json(5) (missing: accept anything)")
    p.add_argument("--registries-d", type=Path, default=DEFAULT_REGISTRIES_D,
                   help="containers-registries.d(5) directory: where signatures live")
    p.add_argument("--gpg-home", type=Path, default=None,
                   help="GnuPG home with the keys `push --sign-by` signs with")
    p.add_argument("--no-local-root-admin", dest="local_root_admin", action="store_false",
                   help="root on the unix socket needs a token like anyone else")
    p.add_argument("--log-level", default="info")
    p.add_argument("--version", action="version", version=f"berthd {__version__}")
    return p.parse_args(argv)


def _lock_root(paths: HostPaths) -> int:
    fd = os.open(paths.root / "berthd.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        sys.exit(f"berthd: another berthd is already using {paths.root}")
    return fd


def _fresh_boot(paths: HostPaths) -> bool:
    """The run-root is a tmpfs: a missing marker means the host rebooted since we last ran."""
    marker = paths.run_root / "booted"
    fresh = not marker.exists()
    marker.touch()
    return fresh


async def serve(args: argparse.Namespace) -> None:
    import uvicorn

    from berth.agent.agent import Agent
    from berth.agent.hostops import HostOps
    from berth.api.app import create_app
    from berth.api.deps import Services
    from berth.api.peercred import PeerCredProtocol, PeerCredWebSocketProtocol
    from berth.image.blobs import BlobStore
    from berth.image.layers import LayerStore
    from berth.runtime.base import IdMapping
    from berth.runtime.oci import OciBackend
    from berth.service.commits import CommitService
    from berth.service.containers import ContainerService
    from berth.service.credentials import CredentialService
    from berth.service.hub import Hub
    from berth.service.identity import IdentityService
    from berth.service.images import ImageService
    from berth.service.registry import RegistryService
    from berth.service.trust import TrustService
    from berth.service.volumes import VolumeService
    from berth.store.db import Store

    paths = HostPaths(args.root.resolve(), args.run_root.resolve())
    paths.create()
    lock = _lock_root(paths)
    # Scratch files (gpg homes, spools) stay inside Berth's own directories.
    tempfile.tempdir = str(paths.tmp)
    fresh = _fresh_boot(paths)
    host = socket.gethostname()
    idmap = IdMapping(args.userns_base) if args.userns_base else None
    store = Store(args.store or f"sqlite:///{paths.store_file}")
    hub = Hub()
    identity = IdentityService(store)
    written = identity.bootstrap(paths.root / "admin-token")
    if written:
        log.warning("first start: the admin's API token is in %s (shown nowhere else)", written)
    backend = OciBackend(paths, args.runtime)
    blobs = BlobStore(paths.blobs)
    blobs.cleanup_tmp()  # an import or pull killed mid-way leaves only temp files
    layers = LayerStore(paths.layers, blobs)
    images = ImageService(store, blobs, layers)
    credentials = CredentialService(store, paths.root / "credentials.key")
    trust = TrustService(store, blobs, args.signature_policy, args.registries_d, args.gpg_home,
                         default_lookaside=paths.root / "signatures")
    registry = RegistryService(images, layers, credentials, trust, idmap,
                               insecure=frozenset(args.insecure_registry))
    volumes = VolumeService(store, paths.volumes, host, paths.root, idmap)
    containers = ContainerService(store, hub, host, backend.capabilities, images, volumes,
                                  admit=trust.admit)
    agent = Agent(store, hub, backend, layers, host, idmap, paths.volumes, fresh_boot=fresh)
    hub.attach_agent(agent.kick)
    info = {"version": __version__, "host": host, "runtime": backend.name,
            "capabilities": sorted(backend.capabilities), "root": str(paths.root),
            "run_root": str(paths.run_root), "store": store.url.split("://")[0],
            "userns_base": args.userns_base, "pid": os.getpid(), "tmp": str(paths.tmp)}
    hostops = HostOps(backend)
    services = Services(containers=containers, images=images, volumes=volumes, hub=hub,
                        hostops=hostops, agent=agent, host=host, info=info,
                        commits=CommitService(containers, images, hostops, blobs, idmap),
                        registry=registry, credentials=credentials, trust=trust,
                        identity=identity, local_root_admin=args.local_root_admin)
    sock = args.socket or paths.socket
    with contextlib.suppress(FileNotFoundError):
        sock.unlink()
    config = uvicorn.Config(create_app(services), uds=str(sock), log_level="warning",
                            http=PeerCredProtocol, ws=PeerCredWebSocketProtocol,
                            lifespan="off", access_log=False, ws_max_size=1 << 20)
    server = uvicorn.Server(config)
    agent_task = asyncio.create_task(agent.run())
    serve_task = asyncio.create_task(server.serve())
    while not server.started and not serve_task.done():
        await asyncio.sleep(0.01)
    if server.started:
        os.chmod(sock, 0o660)
        log.info("berthd %s listening on %s (root %s)", __version__, sock, paths.root)
    done, _ = await asyncio.wait({agent_task, serve_task}, return_when=asyncio.FIRST_COMPLETED)
    agent.stop()
    agent_task.cancel()
    server.should_exit = True
    for task in done:
        if task.exception() is not None:
            raise task.exception()  # type: ignore[misc]
    with contextlib.suppress(asyncio.CancelledError):
        await serve_task
    store.close()
    os.close(lock)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # One line per registry request is noise at info level (and URLs carry upload states).
    logging.getLogger("httpx").setLevel(max(logging.WARNING, logging.getLogger().level))
    if os.geteuid() != 0:
        sys.exit("berthd: must run as root (it creates namespaces, mounts and cgroups)")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args))


if __name__ == "__main__":
    main()

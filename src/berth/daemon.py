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
from typing import TYPE_CHECKING, Any

from berth import __version__
from berth.paths import DEFAULT_ROOT, DEFAULT_RUN_ROOT, HostPaths
from berth.runtime.base import LogLimits
from berth.service.specs import DEFAULT_LOG_LIMITS, MAX_LOG_FILES, MIN_LOG_SIZE
from berth.units import bytes_of

if TYPE_CHECKING:
    import uvicorn

log = logging.getLogger("berth")
DEFAULT_USERNS_BASE = 1_000_000_000  # far above any uid a distribution hands out
DEFAULT_POLICY = Path("/etc/berth/policy.json")
DEFAULT_REGISTRIES_D = Path("/etc/berth/registries.d")


def _log_size(text: str) -> int | None:
    if text.strip() == "-1":
        return None
    size = bytes_of(text)
    if size is None or size < MIN_LOG_SIZE:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a size of at least {MIN_LOG_SIZE} bytes (e.g. 20m), or -1")
    return size


def _log_files(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= MAX_LOG_FILES:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number from 1 to {MAX_LOG_FILES}")
    return int(text)


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
    p.add_argument("--docker-socket", default=None, metavar="PATH",
                   help="unix socket of the Docker Engine API (default: RUN_ROOT/docker.sock; "
                        "'none' serves no Docker API)")
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
    p.add_argument("--listen", metavar="tcp://HOST:PORT",
                   help="serve the API on TCP too (with TLS: --tls-cert and --tls-key)")
    p.add_argument("--tls-cert", type=Path, metavar="FILE", help="the server's certificate (PEM)")
    p.add_argument("--tls-key", type=Path, metavar="FILE",
                   help="its private key (PEM; default: in --tls-cert)")
    p.add_argument("--tls-client-ca", type=Path, metavar="FILE",
                   help="accept client certificates this CA signed; the subject CN is the user")
    p.add_argument("--insecure-tcp", action="store_true",
                   help="allow --listen without TLS (loopback addresses only)")
    p.add_argument("--log-level", default="info")
    p.add_argument("--log-max-size", type=_log_size, metavar="SIZE",
                   default=DEFAULT_LOG_LIMITS.max_size,
                   help="containers' default log size limit, per file (default 20m; "
                        "-1: none)")
    p.add_argument("--log-max-files", type=_log_files, metavar="N",
                   default=DEFAULT_LOG_LIMITS.max_files,
                   help="containers' default number of log files kept (default 5)")
    p.add_argument("--version", action="version", version=f"berthd {__version__}")
    return p.parse_args(argv)


def tcp_listener(args: argparse.Namespace) -> tuple[str, int] | None:
    """(host, port) of --listen, checked with its TLS options; exits with one line if wrong."""
    if args.listen is None:
        if args.tls_cert or args.tls_key or args.tls_client_ca or args.insecure_tcp:
            sys.exit("berthd: --tls-cert, --tls-key, --tls-client-ca and --insecure-tcp go "
                     "with --listen tcp://HOST:PORT")
        return None
    from urllib.parse import urlsplit

    parts = urlsplit(args.listen)
    try:
        host, port = parts.hostname, parts.port
    except ValueError:
        host = port = None
    if parts.scheme != "tcp" or not host or port is None or parts.path not in ("", "/"):
        sys.exit(f"berthd: --listen {args.listen}: use tcp://HOST:PORT")
    if (args.tls_key or args.tls_client_ca) and not args.tls_cert:
        sys.exit("berthd: --tls-key and --tls-client-ca need --tls-cert")
    if args.tls_cert and args.insecure_tcp:
        sys.exit("berthd: --insecure-tcp and --tls-cert contradict each other: choose one")
    if not args.tls_cert:
        if not args.insecure_tcp:
            sys.exit(f"berthd: refusing to serve {args.listen} without TLS: give --tls-cert "
                     "and --tls-key (or --insecure-tcp, on a loopback address only)")
        if not _loopback(host):
            sys.exit(f"berthd: --insecure-tcp serves loopback addresses only, not {host}: "
                     "anyone on the network could use the API; give --tls-cert and --tls-key")
        return host, port
    import ssl

    try:  # here, not in the server: a bad file is one line, before anything starts
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(args.tls_cert, args.tls_key)
        if args.tls_client_ca:
            ctx.load_verify_locations(args.tls_client_ca)
    except (OSError, ssl.SSLError) as e:
        sys.exit(f"berthd: cannot use the TLS certificate, key or client CA: {e}")
    return host, port


def _loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _keeps_room_for_root(path: Path) -> bool:
    """Whether the file system keeps blocks only root may use. Container root is an
    unprivileged host user, so berthd can still write its store when containers fill it."""
    st = os.statvfs(path)
    return st.f_bfree > st.f_bavail


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
    from berth.agent.netops import NetOps
    from berth.api.app import create_app
    from berth.api.deps import Services
    from berth.api.peercred import PeerCredProtocol, PeerCredWebSocketProtocol
    from berth.image.blobs import BlobStore
    from berth.image.layers import LayerStore
    from berth.runtime.oci import OciBackend
    from berth.service.builds import BuildService
    from berth.service.commits import CommitService
    from berth.service.containerfs import ContainerFiles
    from berth.service.containers import ContainerService
    from berth.service.credentials import CredentialService
    from berth.service.hub import Hub
    from berth.service.identity import IdentityService
    from berth.service.idmaps import IdMaps
    from berth.service.images import ImageService
    from berth.service.networks import NetworkService
    from berth.service.pods import PodService
    from berth.service.pulls import PullService
    from berth.service.quotas import QuotaService
    from berth.service.registry import RegistryService
    from berth.service.trust import TrustService
    from berth.service.vips import VipServices
    from berth.service.volumes import VolumeService
    from berth.store.db import Store

    paths = HostPaths(args.root.resolve(), args.run_root.resolve())
    paths.create()
    lock = _lock_root(paths)
    tcp_sock = _bind(args) if args.listen else None
    # Scratch files (gpg homes, spools) stay inside Berth's own directories.
    tempfile.tempdir = str(paths.tmp)
    fresh = _fresh_boot(paths)
    host = socket.gethostname()
    store = Store(args.store or f"sqlite:///{paths.store_file}")
    idmaps = IdMaps(store, args.userns_base)  # each project its own range; base 0: none
    hub = Hub()
    identity = IdentityService(store)
    written = identity.bootstrap(paths.root / "admin-token")
    if written:
        log.warning("first start: the admin's API token is in %s (shown nowhere else)", written)
    if not _keeps_room_for_root(paths.root):
        log.warning("the file system of %s keeps no blocks for root (tmpfs or XFS, say): a "
                    "container that fills it leaves berthd no room to record what happens "
                    "either (ext4 keeps 5%% for root, which container root is not)", paths.root)
    backend = OciBackend(paths, args.runtime)
    blobs = BlobStore(paths.blobs)
    blobs.cleanup_tmp()  # an import or pull killed mid-way leaves only temp files
    layers = LayerStore(paths.layers, blobs)
    quotas = QuotaService(store, paths.volumes, backend.changes_dir)
    images = ImageService(store, blobs, layers, quotas=quotas)
    credentials = CredentialService(store, paths.root / "credentials.key")
    trust = TrustService(store, blobs, args.signature_policy, args.registries_d, args.gpg_home,
                         default_lookaside=paths.root / "signatures")
    registry = RegistryService(images, layers, credentials, trust, idmaps,
                               insecure=frozenset(args.insecure_registry))
    volumes = VolumeService(store, paths.volumes, host, paths.root, idmaps, quotas=quotas)
    networks = NetworkService(store)
    vips = VipServices(store)
    images.hub = volumes.hub = networks.hub = vips.hub = hub  # events go out on the stream
    containers = ContainerService(store, hub, host, backend.capabilities, images, volumes,
                                  admit=trust.admit, quotas=quotas,
                                  log_defaults=LogLimits(args.log_max_size,
                                                         args.log_max_files))
    agent = Agent(store, hub, backend, layers, host, idmaps, paths.volumes, fresh_boot=fresh,
                  net=NetOps(store, paths.run_root, host))
    hub.attach_agent(agent.kick)
    if agent.ops.net is not None:
        hub.attach_network(agent.ops.net.changed)
    info = {"version": __version__, "host": host, "runtime": backend.name,
            "capabilities": sorted(backend.capabilities), "root": str(paths.root),
            "run_root": str(paths.run_root), "store": store.url.split("://")[0],
            "userns_base": args.userns_base, "pid": os.getpid(), "tmp": str(paths.tmp)}
    hostops = HostOps(backend)
    pulls = PullService(store, hub, registry)
    if pulls.recover():
        log.warning("pulls interrupted by the last stop were marked failed")
    services = Services(containers=containers, images=images, volumes=volumes, hub=hub,
                        hostops=hostops, agent=agent, host=host, info=info,
                        commits=CommitService(containers, images, hostops, blobs, idmaps),
                        registry=registry, credentials=credentials, trust=trust,
                        identity=identity, pulls=pulls, local_root_admin=args.local_root_admin,
                        quotas=quotas, idmaps=idmaps, networks=networks,
                        files=ContainerFiles(containers, hostops, idmaps),
                        builds=BuildService(store, containers, images, registry, hostops,
                                            blobs, layers, idmaps, paths),
                        pods=PodService(containers, images), vips=vips)
    sock = args.socket or paths.socket
    with contextlib.suppress(FileNotFoundError):
        sock.unlink()
    app = create_app(services)
    config = uvicorn.Config(app, uds=str(sock), log_level="warning",
                            http=PeerCredProtocol, ws=PeerCredWebSocketProtocol,
                            lifespan="off", access_log=False, ws_max_size=1 << 20)
    server = uvicorn.Server(config)
    agent_task = asyncio.create_task(agent.run())
    serve_task = asyncio.create_task(server.serve())
    docker = _docker_server(args, paths, services)
    docker_task = asyncio.create_task(docker.serve()) if docker else None
    tcp = _tcp_server(args, app) if tcp_sock else None
    tcp_task = asyncio.create_task(tcp.serve(sockets=[tcp_sock])) if tcp and tcp_sock else None
    while not server.started and not serve_task.done():
        await asyncio.sleep(0.01)
    if server.started:
        os.chmod(sock, 0o660)
        log.info("berthd %s listening on %s (root %s)", __version__, sock, paths.root)
    while tcp and tcp_task and not tcp.started and not tcp_task.done():
        await asyncio.sleep(0.01)
    if tcp and tcp.started:
        log.info("listening on %s (%s)", args.listen, "insecure: no TLS" if args.insecure_tcp
                 else "TLS, client certificates" if args.tls_client_ca else "TLS")
    while docker and docker_task and not docker.started and not docker_task.done():
        await asyncio.sleep(0.01)
    if docker and docker.started:
        os.chmod(docker.config.uds, 0o660)  # type: ignore[arg-type]
        log.info("Docker Engine API on %s", docker.config.uds)
    extra = [t for t in (tcp_task, docker_task) if t is not None]
    tasks = {agent_task, serve_task, *extra}
    done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    agent.stop()
    agent_task.cancel()
    registry.close()
    for srv in (server, tcp, docker):
        if srv is not None:
            srv.should_exit = True
    for task in done:
        if task.exception() is not None:
            raise task.exception()  # type: ignore[misc]
    for task in (serve_task, tcp_task, docker_task):
        if task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await task
    store.close()
    os.close(lock)


def _bind(args: argparse.Namespace) -> socket.socket:
    """The --listen socket, bound before anything serves: a busy port is one line."""
    host, port = tcp_listener(args)  # type: ignore[misc]
    try:
        family, kind, proto, _, addr = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(addr)
    except OSError as e:
        sys.exit(f"berthd: cannot listen on {args.listen}: {e.strerror or e}")
    sock.set_inheritable(False)
    return sock


def _quiet_server(config: uvicorn.Config) -> uvicorn.Server:
    """A uvicorn server that leaves SIGTERM/SIGINT to the native API's unix socket server:
    it stops when told."""
    import uvicorn

    class Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self):  # type: ignore[no-untyped-def]
            yield

    return Server(config)


def _docker_server(args: argparse.Namespace, paths: HostPaths,
                   services: Any) -> uvicorn.Server | None:
    """The Docker Engine API on its own unix socket, in the same loop."""
    if args.docker_socket == "none":
        return None
    import uvicorn

    from berth.api.docker.app import HEADERS, create_docker_app
    from berth.api.docker.hijack import DockerProtocol
    from berth.api.peercred import PeerCredWebSocketProtocol

    sock = Path(args.docker_socket) if args.docker_socket else paths.docker_socket
    with contextlib.suppress(FileNotFoundError):
        sock.unlink()
    config = uvicorn.Config(create_docker_app(services), uds=str(sock), log_level="warning",
                            http=DockerProtocol, ws=PeerCredWebSocketProtocol, lifespan="off",
                            access_log=False, ws_max_size=1 << 20, server_header=False,
                            date_header=True, headers=[(k.decode(), v.decode())
                                                       for k, v in HEADERS])
    return _quiet_server(config)


def _tcp_server(args: argparse.Namespace, app: Any) -> uvicorn.Server:
    """The same app on TCP, in the same loop (TLS unless --insecure-tcp on loopback)."""
    import ssl

    import uvicorn

    from berth.api.tlspeer import TlsPeerProtocol, TlsPeerWebSocketProtocol

    tls = {} if args.tls_cert is None else {
        "ssl_certfile": str(args.tls_cert),
        "ssl_keyfile": str(args.tls_key) if args.tls_key else None,
        "ssl_ca_certs": str(args.tls_client_ca) if args.tls_client_ca else None,
        # Optional: a client may use a token instead; one it sends must verify.
        "ssl_cert_reqs": ssl.CERT_OPTIONAL if args.tls_client_ca else ssl.CERT_NONE}
    config = uvicorn.Config(app, log_level="warning", http=TlsPeerProtocol,
                            ws=TlsPeerWebSocketProtocol, lifespan="off", access_log=False,
                            ws_max_size=1 << 20, **tls)
    return _quiet_server(config)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # One line per registry request is noise at info level (and URLs carry upload states).
    logging.getLogger("httpx").setLevel(max(logging.WARNING, logging.getLogger().level))
    if os.geteuid() != 0:
        sys.exit("berthd: must run as root (it creates namespaces, mounts and cgroups)")
    tcp_listener(args)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args))


if __name__ == "__main__":
    main()

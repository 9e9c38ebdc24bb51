"""A real registry for the tests: Debian's ``docker-registry`` on a loopback port.

Three modes: ``open`` (no auth), ``basic`` (an htpasswd file, bcrypt) and ``token`` (the
distribution token flow, with a small token issuer served from a thread on another loopback
port). The issuer signs ES256 JWTs whose header ``kid`` is the libtrust key id of its key, which
is how distribution 2.8 finds the key among the certificates in ``rootcertbundle``.

    with start_registry(tmp_path, "token") as reg:
        reg.host, reg.username, reg.password, reg.access_log()
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import gzip
import hashlib
import io
import ipaddress
import json
import re
import secrets
import shutil
import socket
import ssl
import subprocess
import sys
import tarfile
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

from berth.image.blobs import BlobStore
from berth.image.reference import parse_reference
from berth.image.registry import Credentials, RegistryConfig, push
from berth.image.types import ImageManifest, LayerRef

REGISTRY_BIN = "/usr/bin/docker-registry"
SERVICE = "berth-test-registry"
ISSUER = "berth-test-issuer"
START_TIMEOUT = 15.0
_ACCESS = re.compile(r'"([A-Z]+ \S+ HTTP/1\.[01])" (\d{3}) ')


def free_port() -> int:
    """A port nobody listens on right now (tiny race: the registry binds it a moment later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def libtrust_key_id(public_key: ec.EllipticCurvePublicKey) -> str:
    """docker/libtrust's key id: base32 of the first 240 bits of sha256(SPKI DER), in 4-char
    groups joined by ':'. distribution matches a token's ``kid`` against it."""
    der = public_key.public_bytes(serialization.Encoding.DER,
                                  serialization.PublicFormat.SubjectPublicKeyInfo)
    text = base64.b32encode(hashlib.sha256(der).digest()[:30]).decode().rstrip("=")
    return ":".join(text[i:i + 4] for i in range(0, len(text), 4))


def make_tls_cert(workdir: Path, ip: str = "127.0.0.1") -> tuple[Path, Path]:
    """A self-signed certificate (also its own CA) for ``ip``: (cert.pem, key.pem); clients
    trust it by using cert.pem as their CA bundle."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, ip)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(
                ipaddress.ip_address(ip))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = workdir / "tls-cert.pem", workdir / "tls-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


class QuietHTTPServer(ThreadingHTTPServer):
    """Clients here hang up mid-request on purpose (timeouts, faults): no traceback for that."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class LoopbackServer:
    """A stdlib HTTP server on a free loopback port, served from a daemon thread."""

    def __init__(self, handler: type[BaseHTTPRequestHandler],
                 tls: tuple[Path, Path] | None = None) -> None:
        self._server = QuietHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        if tls is not None:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(str(tls[0]), str(tls[1]))
            self._server.socket = ctx.wrap_socket(self._server.socket, server_side=True)
        self.host = f"127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,),
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


class TokenIssuer:
    """The token endpoint: checks basic credentials, grants only the allowed actions."""

    def __init__(self, workdir: Path, users: dict[str, str],
                 grants: dict[str, dict[str, set[str]]], ttl: int = 300,
                 token_field: str = "token") -> None:
        self.users = users
        self.token_field = token_field  # "token" or "access_token": clients must take both
        self.grants = grants  # user -> repository ("*" for any) -> allowed actions
        self.ttl = ttl
        self.requests: list[dict[str, Any]] = []  # what each token request asked and got
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.kid = libtrust_key_id(self.key.public_key())
        self.cert_path = workdir / "token-ca.pem"
        self.cert_path.write_bytes(self._self_signed_cert())
        self._server = LoopbackServer(self._handler_class())
        self.realm = f"http://{self._server.host}/token"

    def stop(self) -> None:
        self._server.stop()

    def _self_signed_cert(self) -> bytes:
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, ISSUER)])
        now = datetime.datetime.now(datetime.UTC)
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(days=1))
                .not_valid_after(now + datetime.timedelta(days=30))
                .sign(self.key, hashes.SHA256()))
        return cert.public_bytes(serialization.Encoding.PEM)

    def allowed(self, user: str | None, repo: str, wanted: list[str]) -> list[str]:
        """The subset of ``wanted`` actions ``user`` may do on ``repo``."""
        if user is None:
            return []
        rules = self.grants.get(user, {})
        ok = rules.get(repo, set()) | rules.get("*", set())
        return [a for a in wanted if a in ok]

    def issue(self, user: str | None, scopes: list[str]) -> str:
        access = []
        for scope in scopes:
            parts = scope.split(":")
            if len(parts) != 3 or parts[0] != "repository":
                continue
            actions = self.allowed(user, parts[1], parts[2].split(","))
            if actions:
                access.append({"type": "repository", "name": parts[1], "actions": actions})
        now = int(time.time())
        header = {"typ": "JWT", "alg": "ES256", "kid": self.kid}
        claims = {"iss": ISSUER, "sub": user or "", "aud": SERVICE, "exp": now + self.ttl,
                  "nbf": now - 5, "iat": now, "jti": secrets.token_hex(8), "access": access}
        signing_input = (_b64url(json.dumps(header).encode()) + "."
                         + _b64url(json.dumps(claims).encode()))
        der = self.key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der)
        return signing_input + "." + _b64url(r.to_bytes(32, "big") + s.to_bytes(32, "big"))

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                url = urllib.parse.urlsplit(self.path)
                query = urllib.parse.parse_qs(url.query)
                user = issuer._check_basic(self.headers.get("Authorization"))
                record = {"path": url.path, "query": query, "user": user,
                          "authorization": self.headers.get("Authorization")}
                issuer.requests.append(record)
                if url.path != "/token" or user == "":
                    self.send_response(401)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                token = issuer.issue(user, query.get("scope", []))
                body = json.dumps({issuer.token_field: token, "expires_in": issuer.ttl,
                                   "issued_at": datetime.datetime.now(
                                       datetime.UTC).isoformat()}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        return Handler

    def _check_basic(self, header: str | None) -> str | None:
        """None: anonymous; "": wrong credentials; else the user name."""
        if not header:
            return None
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "basic":
            return ""
        try:
            user, _, password = base64.b64decode(value).decode().partition(":")
        except ValueError:
            return ""
        good = self.users.get(user)
        if good is None or not secrets.compare_digest(good, password):
            return ""
        return user


@dataclass
class Registry:
    """A running docker-registry on 127.0.0.1:<port>."""

    host: str
    mode: str
    workdir: Path
    proc: subprocess.Popen[bytes]
    username: str | None = None
    password: str | None = None
    issuer: TokenIssuer | None = None
    users: dict[str, str] = field(default_factory=dict)
    ca_cert: Path | None = None  # set when the registry serves HTTPS (tls=True)

    @property
    def url(self) -> str:
        return f"{'https' if self.ca_cert else 'http'}://{self.host}"

    def client_config(self, **kw: Any) -> RegistryConfig:
        """A RegistryConfig that reaches this registry: plain HTTP allowed for it (and for the
        token issuer), or its CA trusted when it serves HTTPS. ``kw`` overrides fields."""
        insecure = set() if self.ca_cert else {self.host}
        if self.issuer is not None:
            insecure.add(urllib.parse.urlsplit(self.issuer.realm).netloc)
        kw.setdefault("insecure", frozenset(insecure))
        kw.setdefault("ca_bundle", self.ca_cert)
        return RegistryConfig(**kw)

    def credentials_for(self, host: str) -> Credentials | None:
        """The credential lookup a daemon would do: this registry's login, for its host only."""
        if host != self.host or self.username is None:
            return None
        return Credentials(self.username, self.password or "")

    @property
    def storage(self) -> Path:
        return self.workdir / "storage"

    def log_text(self) -> str:
        """Everything the registry logged (its access log lines included)."""
        return (self.workdir / "registry.log").read_text(errors="replace")

    def access_log(self) -> list[tuple[str, int]]:
        """(request line, status) of each access-log entry, e.g.
        ('POST /v2/a/blobs/uploads/?mount=sha256:..&from=b HTTP/1.1', 201).

        The registry writes a line just after sending its answer, so this first waits (up to
        a second) for the log to stop growing: a request the caller saw answered is listed."""
        log = self.workdir / "registry.log"
        size, deadline = -1, time.monotonic() + 1.0
        while time.monotonic() < deadline:
            now = log.stat().st_size
            if now == size:
                break
            size = now
            time.sleep(0.05)
        out = []
        for line in self.log_text().splitlines():
            m = _ACCESS.search(line)
            if m and not line.startswith("time="):
                out.append((m.group(1), int(m.group(2))))
        return out

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        if self.issuer is not None:
            self.issuer.stop()
            self.issuer = None

    def __enter__(self) -> Registry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _htpasswd_line(user: str, password: str) -> str:
    out = subprocess.run(["htpasswd", "-Bbn", user, password], check=True,
                         capture_output=True, text=True).stdout
    return out.strip() + "\n"


def start_registry(workdir: Path, mode: str = "open", *, username: str = "berth",
                   password: str | None = None, users: dict[str, str] | None = None,
                   grants: dict[str, dict[str, set[str]]] | None = None,
                   token_ttl: int = 300, token_field: str = "token",
                   tls: bool = False) -> Registry:
    """Start a registry in ``workdir`` (config, storage, log) and wait until it answers.

    ``users`` adds accounts beside ``username``; ``grants`` (token mode) maps a user to
    repository -> allowed actions, "*" matching any repository; by default every user may pull
    and push everything. ``tls`` serves HTTPS with a self-signed certificate
    (``Registry.ca_cert``); otherwise the registry speaks plain HTTP.
    """
    if mode not in ("open", "basic", "token"):
        raise ValueError(f"unknown registry mode {mode!r}")
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    password = password or secrets.token_urlsafe(12)
    accounts = {username: password, **(users or {})}
    port = free_port()
    config: dict[str, Any] = {
        "version": 0.1,
        "log": {"level": "info", "formatter": "text", "accesslog": {"disabled": False}},
        "storage": {"filesystem": {"rootdirectory": str(workdir / "storage")},
                    "delete": {"enabled": True}, "maintenance": {
                        "uploadpurging": {"enabled": False}}},
        "http": {"addr": f"127.0.0.1:{port}", "secret": secrets.token_hex(16),
                 "headers": {"X-Content-Type-Options": ["nosniff"]}},
        "health": {"storagedriver": {"enabled": False}},
    }
    issuer = None
    if mode == "basic":
        htpasswd = workdir / "htpasswd"
        htpasswd.write_text("".join(_htpasswd_line(u, p) for u, p in accounts.items()))
        config["auth"] = {"htpasswd": {"realm": "berth-test", "path": str(htpasswd)}}
    elif mode == "token":
        if grants is None:
            grants = {u: {"*": {"pull", "push"}} for u in accounts}
        issuer = TokenIssuer(workdir, accounts, grants, ttl=token_ttl, token_field=token_field)
        config["auth"] = {"token": {"realm": issuer.realm, "service": SERVICE,
                                    "issuer": ISSUER, "rootcertbundle": str(issuer.cert_path)}}
    ca_cert = None
    if tls:
        ca_cert, tls_key = make_tls_cert(workdir)
        config["http"]["tls"] = {"certificate": str(ca_cert), "key": str(tls_key)}
    config_path = workdir / "config.yml"
    for _ in range(3):  # another process may take the free port before the registry binds it
        config_path.write_text(json.dumps(config, indent=1))  # YAML is a superset of JSON
        log = open(workdir / "registry.log", "ab")  # noqa: SIM115 - handed to the child
        try:
            proc = subprocess.Popen([REGISTRY_BIN, "serve", str(config_path)], stdout=log,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        finally:
            log.close()
        reg = Registry(host=config["http"]["addr"], mode=mode, workdir=workdir, proc=proc,
                       username=None if mode == "open" else username,
                       password=None if mode == "open" else password, issuer=issuer,
                       users=accounts, ca_cert=ca_cert)
        try:
            _wait_ready(reg)
            return reg
        except RuntimeError:
            if reg.proc.poll() is None or "address already in use" not in reg.log_text():
                reg.stop()
                raise
            config["http"]["addr"] = f"127.0.0.1:{free_port()}"
        except BaseException:
            reg.stop()
            raise
    reg.stop()
    raise RuntimeError("docker-registry could not bind a free port")


def _wait_ready(reg: Registry) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    verify: ssl.SSLContext | bool = True
    if reg.ca_cert is not None:
        verify = ssl.create_default_context(cafile=str(reg.ca_cert))
    while time.monotonic() < deadline:
        if reg.proc.poll() is not None:
            raise RuntimeError(f"docker-registry exited ({reg.proc.returncode}):\n"
                               + reg.log_text()[-2000:])
        with contextlib.suppress(httpx.TransportError):
            httpx.get(f"{reg.url}/v2/", timeout=1.0, verify=verify)
            return
        time.sleep(0.05)
    raise RuntimeError("docker-registry did not answer in time:\n" + reg.log_text()[-2000:])


def have_registry() -> bool:
    return Path(REGISTRY_BIN).exists() and shutil.which("htpasswd") is not None


# --- test images -----------------------------------------------------------------------------

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


LayerFiles = dict[str, bytes | tuple[bytes, int] | None]


def make_layer(files: LayerFiles) -> tuple[bytes, str]:
    """A gzip'd layer tar (deterministic) and its diff_id; a None value is a whiteout
    (``dir/.wh.name``) deleting that path from the layers below, a (bytes, mode) pair a file
    with that mode (else 0644)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        dirs = sorted({str(Path(p).parent) for p in files} - {"."})
        for d in dirs:
            info = tarfile.TarInfo(d)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, 0
            tar.addfile(info)
        for path, entry in sorted(files.items()):
            content, mode = entry if isinstance(entry, tuple) else (entry, 0o644)
            if content is None:
                p = Path(path)
                name = str(p.parent / f".wh.{p.name}") if str(p.parent) != "." else f".wh.{p}"
                content = b""
            else:
                name = path
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(content), mode, 0
            tar.addfile(info, io.BytesIO(content))
    tar_bytes = raw.getvalue()
    blob = gzip.compress(tar_bytes, mtime=0)
    return blob, _digest(tar_bytes)


@dataclass
class BuiltImage:
    """An image made in memory: its blobs and its manifest bytes (OCI)."""

    config: bytes
    layers: list[tuple[bytes, str]]  # (gzip blob, diff_id)
    manifest: bytes
    arch: str = "amd64"

    @property
    def config_digest(self) -> str:
        return _digest(self.config)

    @property
    def manifest_digest(self) -> str:
        return _digest(self.manifest)

    def blobs(self) -> dict[str, bytes]:
        out = {_digest(b): b for b, _ in self.layers}
        out[self.config_digest] = self.config
        return out

    def layer_digests(self) -> list[str]:
        return [_digest(b) for b, _ in self.layers]


def build_image(layer_files: list[LayerFiles], arch: str = "amd64", label: str = "",
                claimed_diff_ids: list[str] | None = None) -> BuiltImage:
    """``claimed_diff_ids``: what the config says instead of the layers' true diff_ids."""
    layers = [make_layer(files) for files in layer_files]
    config = json.dumps({
        "architecture": arch, "os": "linux",
        "config": {"Cmd": ["/bin/sh"], "Labels": {"test": label} if label else {}},
        "rootfs": {"type": "layers",
                   "diff_ids": claimed_diff_ids or [d for _, d in layers]},
        "history": [{"created_by": f"layer {i}"} for i in range(len(layers))],
    }, sort_keys=True).encode()
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": _digest(config), "size": len(config)},
        "layers": [{"mediaType": OCI_LAYER_GZIP, "digest": _digest(b), "size": len(b)}
                   for b, _ in layers],
    }, indent=2).encode()
    return BuiltImage(config, layers, manifest, arch)


def three_layer_image(label: str = "", arch: str = "amd64", size: int = 50_000) -> BuiltImage:
    """Three gzip layers; the top one deletes a file of the first with a whiteout."""
    noise = secrets.token_bytes(size)  # incompressible, so blobs have real sizes
    return build_image([
        {"etc/hello": b"hello\n", "etc/doomed": b"bye\n", "data/a.bin": noise},
        {"usr/bin/tool": b"#!/bin/sh\necho tool " + label.encode() + b"\n"},
        {"etc/doomed": None, "data/b.bin": noise[::-1]},
    ], arch=arch, label=label)


def index_bytes(images: list[BuiltImage]) -> bytes:
    return json.dumps({
        "schemaVersion": 2, "mediaType": OCI_INDEX,
        "manifests": [{"mediaType": OCI_MANIFEST, "digest": img.manifest_digest,
                       "size": len(img.manifest),
                       "platform": {"os": "linux", "architecture": img.arch}}
                      for img in images],
    }).encode()


def write_oci_layout(directory: Path, tag: str, images: list[BuiltImage]) -> str:
    """An OCI image layout holding ``images`` under ``tag`` (an index if there are several);
    returns the digest the tag names."""
    blob_dir = directory / "blobs" / "sha256"
    blob_dir.mkdir(parents=True, exist_ok=True)
    (directory / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    for img in images:
        for digest, data in [*img.blobs().items(), (img.manifest_digest, img.manifest)]:
            (blob_dir / digest[7:]).write_bytes(data)
    if len(images) == 1:
        top, media_type, size = images[0].manifest_digest, OCI_MANIFEST, len(images[0].manifest)
    else:
        idx = index_bytes(images)
        top, media_type, size = _digest(idx), OCI_INDEX, len(idx)
        (blob_dir / top[7:]).write_bytes(idx)
    (directory / "index.json").write_text(json.dumps({
        "schemaVersion": 2, "manifests": [{
            "mediaType": media_type, "digest": top, "size": size,
            "annotations": {"org.opencontainers.image.ref.name": tag}}]}))
    return top


def skopeo_copy(layout: Path, tag: str, reg: Registry, dest: str) -> None:
    """``skopeo copy --all`` from an OCI layout to ``reg``/``dest`` (digests preserved)."""
    cmd = ["skopeo", "copy", "--all", "--preserve-digests", "--dest-tls-verify=false",
           f"oci:{layout}:{tag}", f"docker://{reg.host}/{dest}"]
    if reg.username:
        cmd[2:2] = ["--dest-creds", f"{reg.username}:{reg.password}"]
    subprocess.run(cmd, check=True, capture_output=True, timeout=60,
                   env={"PATH": "/usr/bin:/bin", "HOME": str(layout)})


def store_image(blobs: BlobStore, img: BuiltImage) -> ImageManifest:
    """Put ``img``'s blobs into a local store and describe it as push() wants it."""
    for digest, data in img.blobs().items():
        blobs.put_bytes(data, digest)
    layers = [LayerRef(_digest(blob), diff_id, len(blob), OCI_LAYER_GZIP)
              for blob, diff_id in img.layers]
    return ImageManifest(id=img.config_digest, manifest_digest=img.manifest_digest,
                         config=json.loads(img.config), layers=layers)


def push_built(reg: Registry, workdir: Path, name: str, img: BuiltImage, **kw: Any) -> str:
    """Push ``img`` to ``reg`` as ``name`` ("repo:tag") with Berth's own push(); returns the
    manifest digest. ``kw`` goes to push() (progress, mount_from, ...)."""
    src = BlobStore(Path(workdir) / ("src-" + name.replace("/", "_").replace(":", "_")))
    return push(parse_reference(f"{reg.host}/{name}"), store_image(src, img), img.manifest,
                OCI_MANIFEST, src, config=reg.client_config(),
                credentials_for=reg.credentials_for, **kw)

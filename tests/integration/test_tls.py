"""berthd on TCP with TLS beside its unix socket: server certificate, tokens over TLS, client
certificates mapped to users by their subject CN, and what it refuses."""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.integration.conftest import _finish, _require_host
from tests.integration.daemon import BIN, Daemon, destroy, make_dirs, refused

pytestmark = pytest.mark.integration


# -- a CA and its certificates, made here -------------------------------------------------------

@dataclass
class Issuer:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey
    path: Path  # the CA certificate's PEM file


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _write(path: Path, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> None:
    path.with_suffix(".pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file = path.with_suffix(".key")
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_file.chmod(0o600)


def make_ca(folder: Path, cn: str) -> Issuer:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(_name(cn))
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True,
                                         crl_sign=True, content_commitment=False,
                                         key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, encipher_only=False,
                                         decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                           critical=False)
            .sign(key, hashes.SHA256()))
    path = folder / cn
    _write(path, cert, key)
    return Issuer(cert, key, path.with_suffix(".pem"))


def issue(ca: Issuer, folder: Path, cn: str, server: bool = False) -> tuple[Path, Path]:
    """A leaf certificate: for a server on 127.0.0.1/localhost, or a client named cn."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    builder = (x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(ca.cert.subject)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5))
               .not_valid_after(now + datetime.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                   ca.key.public_key()), critical=False)
               .add_extension(x509.ExtendedKeyUsage(
                   [ExtendedKeyUsageOID.SERVER_AUTH if server
                    else ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False))
    if server:
        builder = builder.add_extension(x509.SubjectAlternativeName(
            [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False)
    path = folder / f"{cn}-{'server' if server else 'client'}-{ca.cert.serial_number % 997}"
    _write(path, builder.sign(ca.key, hashes.SHA256()), key)
    return path.with_suffix(".pem"), path.with_suffix(".key")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise AssertionError(f"nothing listens on 127.0.0.1:{port}")


# -- the daemon -------------------------------------------------------------------------------

@dataclass
class Tls:
    daemon: Daemon
    host: str  # tcp://127.0.0.1:PORT
    ca: Path
    alice: tuple[Path, Path]  # client certificate of user alice, from the trusted CA
    rogue: tuple[Path, Path]  # "alice" too, from a CA berthd does not trust
    rogue_ca: Path
    admin_token: str
    folder: Path

    def berth(self, *args: str, env: dict[str, str] | None = None
              ) -> subprocess.CompletedProcess[str]:
        base = {k: v for k, v in os.environ.items() if not k.startswith("BERTH_")}
        base["BERTH_CONFIG"] = str(self.folder / "no-config.json")
        return subprocess.run([str(BIN / "berth"), *args], env={**base, **(env or {})},
                              capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def tls() -> Iterator[Tls]:
    _require_host()
    root, run = make_dirs()
    folder = root.parent / "pki"
    folder.mkdir()
    ca, rogue_ca = make_ca(folder, "berth-test-ca"), make_ca(folder, "rogue-ca")
    server = issue(ca, folder, "berthd", server=True)
    port = free_port()
    d = Daemon(root, run, args=["--listen", f"tcp://127.0.0.1:{port}", "--tls-cert",
                                str(server[0]), "--tls-key", str(server[1]),
                                "--tls-client-ca", str(ca.path)])
    d.start()
    try:
        wait_port(port)
        d.cli("image", "build-base", "busybox")
        d.cli("project", "create", "team")
        d.cli("user", "create", "alice")
        d.cli("project", "member", "set", "team", "alice", "member")
        yield Tls(d, f"tcp://127.0.0.1:{port}", ca.path, issue(ca, folder, "alice"),
                  issue(rogue_ca, folder, "alice"), rogue_ca.path,
                  (root / "admin-token").read_text().strip(), folder)
    finally:
        _finish(d)


def test_token_over_tls(tls: Tls) -> None:
    res = tls.berth("--host", tls.host, "--tls-ca", str(tls.ca), "--token", tls.admin_token,
                    "whoami", "-o", "json")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["user"] == "admin"
    # The same from the environment.
    res = tls.berth("info", "-o", "json", env={
        "BERTH_HOST": tls.host, "BERTH_TLS_CA": str(tls.ca), "BERTH_TOKEN": tls.admin_token})
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["version"]


def test_no_credentials_over_tcp_is_401(tls: Tls) -> None:
    # No token, no client certificate: TCP has no peer uid to map to the admin.
    refused(tls.berth("--host", tls.host, "--tls-ca", str(tls.ca), "ps"),
             "authentication required")


def test_client_certificate_is_its_user(tls: Tls) -> None:
    cert, key = tls.alice
    tls_args = ["--host", tls.host, "--tls-ca", str(tls.ca), "--tls-cert", str(cert),
                "--tls-key", str(key)]
    res = tls.berth(*tls_args, "whoami", "-o", "json")
    assert res.returncode == 0, res.stderr
    me = json.loads(res.stdout)
    # Its first (only) project, where it is a member.
    assert (me["user"], me["project"], me["role"]) == ("alice", "team", "member")
    # Another project: as if it did not exist.
    refused(tls.berth(*tls_args, "--project", "default", "ps"), "no such project")
    # The BERTH_TLS_* variables do the same as the flags.
    res = tls.berth("whoami", "-o", "json", env={
        "BERTH_HOST": tls.host, "BERTH_TLS_CA": str(tls.ca), "BERTH_TLS_CERT": str(cert),
        "BERTH_TLS_KEY": str(key)})
    assert res.returncode == 0 and json.loads(res.stdout)["user"] == "alice", res.stderr


def test_container_and_exec_over_tls(tls: Tls) -> None:
    """Plain requests over HTTPS, and exec's websocket over wss, as a certificate's user."""
    cert, key = tls.alice
    tls_args = ["--host", tls.host, "--tls-ca", str(tls.ca), "--tls-cert", str(cert),
                "--tls-key", str(key)]
    # The image lives in the default project: bring it to alice's over TLS too.
    archive = tls.folder / "busybox.tar"
    tls.daemon.cli("save", "-o", str(archive), "busybox")
    assert tls.berth(*tls_args, "load", "-q", "-i", str(archive)).returncode == 0
    res = tls.berth(*tls_args, "run", "-d", "--name", "over-tls", "busybox", "sleep", "60")
    assert res.returncode == 0, res.stderr
    try:
        res = tls.berth(*tls_args, "exec", "over-tls", "echo", "hello over wss")
        assert (res.returncode, res.stdout) == (0, "hello over wss\n"), res.stderr
        actions = json.loads(tls.berth(*tls_args, "actions", "over-tls", "-o", "json").stdout)
        assert {a["user"] for a in actions} == {"alice"}
    finally:
        tls.berth(*tls_args, "rm", "-f", "over-tls")


def test_untrusted_client_certificate_is_refused(tls: Tls) -> None:
    cert, key = tls.rogue  # says "alice", signed by a CA berthd does not know
    res = tls.berth("--host", tls.host, "--tls-ca", str(tls.ca), "--tls-cert", str(cert),
                    "--tls-key", str(key), "whoami")
    refused(res, "cannot talk to berthd", "client certificate")
    assert "alice" not in res.stdout


def test_server_not_signed_by_the_given_ca_is_refused(tls: Tls) -> None:
    refused(tls.berth("--host", tls.host, "--tls-ca", str(tls.rogue_ca), "--token",
                       tls.admin_token, "whoami"), "CERTIFICATE_VERIFY_FAILED")


def test_plain_http_to_the_tls_port_fails(tls: Tls) -> None:
    refused(tls.berth("--host", tls.host, "--token", tls.admin_token, "whoami"),
             "cannot talk to berthd", "TLS port?")


def _berthd(*args: str) -> subprocess.CompletedProcess[str]:
    root, run = make_dirs()
    try:
        return subprocess.run([str(BIN / "berthd"), "--root", str(root), "--run-root", str(run),
                               *args], capture_output=True, text=True, timeout=60)
    finally:
        shutil.rmtree(root.parent, ignore_errors=True)


@pytest.mark.parametrize("args, words", [
    (["--listen", "tcp://127.0.0.1:1"], "without TLS"),
    (["--listen", "tcp://0.0.0.0:1", "--insecure-tcp"], "loopback"),
    (["--listen", "http://127.0.0.1:1", "--insecure-tcp"], "tcp://HOST:PORT"),
    (["--tls-cert", "/nonexistent"], "--listen"),
    (["--listen", "tcp://127.0.0.1:1", "--tls-cert", "/nonexistent"], "cannot use"),
])
def test_berthd_refuses_tcp_without_tls(args: list[str], words: str) -> None:
    _require_host()
    res = _berthd(*args)
    assert res.returncode != 0
    assert words in res.stderr and "Traceback" not in res.stderr, res.stderr


def test_insecure_tcp_on_loopback_is_plain_http() -> None:
    _require_host()
    root, run = make_dirs()
    port = free_port()
    d = Daemon(root, run, args=["--listen", f"tcp://127.0.0.1:{port}", "--insecure-tcp"])
    d.start()
    try:
        wait_port(port)
        token = (root / "admin-token").read_text().strip()
        env = {**{k: v for k, v in os.environ.items() if not k.startswith("BERTH_")},
               "BERTH_CONFIG": str(root.parent / "none.json")}
        res = subprocess.run([str(BIN / "berth"), "--host", f"tcp://127.0.0.1:{port}",
                              "--token", token, "whoami", "-o", "json"], env=env,
                             capture_output=True, text=True, timeout=60)
        assert res.returncode == 0 and json.loads(res.stdout)["user"] == "admin", res.stderr
    finally:
        d.stop()
        destroy(d)


def test_berthd_busy_port_is_refused() -> None:
    _require_host()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        res = _berthd("--listen", f"tcp://127.0.0.1:{taken.getsockname()[1]}", "--insecure-tcp")
    assert res.returncode == 1 and "Traceback" not in res.stderr
    assert res.stderr.strip().splitlines()[-1].startswith("berthd: cannot listen on tcp://")

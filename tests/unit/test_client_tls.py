"""How the SDK's transport picks plain HTTP or TLS, and what it refuses before connecting."""

from __future__ import annotations

import socket
import ssl
from pathlib import Path

import pytest

from berth.client.transport import Transport
from tests.integration.test_tls import make_ca


@pytest.fixture
def ca(tmp_path: Path) -> str:
    return str(make_ca(tmp_path, "unit-ca").path)


def test_tcp_is_plain_http_without_tls_options() -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        t = Transport(f"tcp://127.0.0.1:{port}", token="berth_x")  # loopback: --insecure-tcp
        assert t.ssl_context is None
        with t.connect() as sock:
            assert not isinstance(sock, ssl.SSLSocket)


def test_tls_options_or_https_make_it_https(ca: str) -> None:
    for t in (Transport("https://example.test:2376"),
              Transport("tcp://example.test:2376", tls_ca=ca)):
        assert t.ssl_context is not None and t.ssl_context.check_hostname
        assert t.ssl_context.verify_mode == ssl.CERT_REQUIRED


def test_no_token_in_the_clear_beyond_loopback() -> None:
    with pytest.raises(ValueError, match="in the clear"):
        Transport("tcp://10.1.2.3:2375", token="berth_x")
    with pytest.raises(ValueError, match="in the clear"):
        Transport("http://berth.example:80", token="berth_x")
    Transport("tcp://[::1]:2375", token="berth_x")
    Transport("tcp://localhost:2375", token="berth_x")
    Transport("tcp://10.1.2.3:2375")  # no token: nothing to leak


def test_unusable_tls_settings_are_refused(ca: str) -> None:
    with pytest.raises(ValueError, match="cannot use TLS files"):
        Transport("tcp://h:1", tls_ca="/nonexistent/ca.pem")
    with pytest.raises(ValueError, match="needs its certificate"):
        Transport("https://h:1", tls_key="/etc/hostname")
    with pytest.raises(ValueError, match="TLS options need"):
        Transport("http://h:1", tls_ca=ca)
    Transport("unix:///run/berth.sock", tls_ca="/nonexistent")  # a socket ignores them

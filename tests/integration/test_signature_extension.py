"""Simple signatures kept by the registry itself: the X-Registry-Supports-Signatures API
extension that OpenShift's registry offers and containers/image (skopeo, podman) uses whenever a
registry advertises it.

skopeo signs into the registry and berthd accepts the image under a signedBy policy; berthd
signs into the registry and skopeo's own policy check accepts it. Debian's docker-registry lacks
the extension, so a front (tests/integration/proxy.py) adds it: it sends the header on /v2/,
keeps the signature lists in memory, and forwards everything else to the real registry.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.gpghome import GpgHome
from tests.integration.conftest import _finish, _require_host
from tests.integration.daemon import Daemon, registry_daemon
from tests.integration.proxy import Fault, FaultProxy
from tests.integration.registry import (
    REGISTRY_BIN,
    Registry,
    build_image,
    start_registry,
    write_oci_layout,
)

pytestmark = [pytest.mark.integration, pytest.mark.skipif(
    not all(shutil.which(t) for t in ("gpg", "skopeo")) or not Path(REGISTRY_BIN).exists(),
    reason="needs gpg, skopeo and Debian's docker-registry (scripts/setup.sh installs them)")]
BUSYBOX = Path("/bin/busybox").read_bytes()
_SIGNATURES = re.compile(r"/extensions/v2/(.+)/signatures/(sha256:[0-9a-f]{64})")


class SignatureExtension:
    """The extension's two calls over in-memory lists, checking what writers send as
    OpenShift's registry does. ``served`` replaces every list answer (for hostile tests)."""

    def __init__(self) -> None:
        self.lists: dict[tuple[str, str], list[dict[str, object]]] = {}
        self.served: bytes | None = None
        self._lock = threading.Lock()

    def __call__(self, method: str, path: str, body: bytes) -> Fault | None:
        bare = path.split("?")[0]
        if bare == "/v2/":
            return Fault(rewrite=lambda h: [*h, ("X-Registry-Supports-Signatures", "1")])
        m = _SIGNATURES.fullmatch(bare)
        if m is None:
            return None
        repo, digest = m.groups()
        with self._lock:
            if method == "GET":
                body = self.served if self.served is not None else json.dumps(
                    {"signatures": self.lists.get((repo, digest), [])}).encode()
                return Fault(status=200, body=body,
                             headers={"Content-Type": "application/json"})
            if method != "PUT":
                return Fault(status=405)
            sig = json.loads(body)
            if sig.get("schemaVersion") != 2 or sig.get("type") != "atomic" or \
                    not str(sig.get("name", "")).startswith(digest + "@") or \
                    not sig.get("content"):
                return Fault(status=400, body=b'{"errors": [{"message": "bad signature"}]}')
            self.lists.setdefault((repo, digest), []).append(sig)
            return Fault(status=201)

    def count(self, repo: str, digest: str) -> int:
        with self._lock:
            return len(self.lists.get((repo, digest), []))


@dataclass
class Env:
    daemon: Daemon
    registry: Registry
    front: FaultProxy
    ext: SignatureExtension
    gpg: GpgHome
    signer: str
    stranger: str
    policy: Path
    work: Path

    def ref(self, name: str) -> str:
        return f"{self.front.host}/{name}"

    def pubkey(self, fpr: str) -> Path:
        path = self.work / f"{fpr}.gpg"
        path.write_bytes(self.gpg.export(fpr))
        return path

    def trust_only(self, fpr: str) -> None:
        """The host policy: images under <front>/ext must be signed by ``fpr``."""
        doc = {"default": [{"type": "insecureAcceptAnything"}], "transports": {"docker": {
            self.ref("ext"): [{"type": "signedBy", "keyType": "GPGKeys",
                               "keyPath": str(self.pubkey(fpr))}]}}}
        tmp = self.policy.with_suffix(".new")
        tmp.write_text(json.dumps(doc))
        os.replace(tmp, self.policy)

    def skopeo(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        empty = self.work / "empty-registries.d"  # no lookaside: the registry is the store
        empty.mkdir(exist_ok=True)
        res = subprocess.run(["skopeo", "--registries.d", str(empty), *args],
                             capture_output=True, text=True, timeout=120,
                             env={"PATH": "/usr/bin:/bin", "HOME": str(self.work),
                                  "GNUPGHOME": str(self.gpg.path)})
        if check and res.returncode != 0:
            raise AssertionError(f"skopeo {' '.join(args)}: {res.stderr}")
        return res


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    _require_host()
    work = tmp_path_factory.mktemp("sigext")
    registry = start_registry(work / "registry", "open")
    ext = SignatureExtension()
    front = FaultProxy(registry.host, responders=[ext])
    gpg = GpgHome()
    signer = gpg.gen_key("Berth Extension Signer <ext@example.com>")
    stranger = gpg.gen_key("Someone Else <else@example.com>")
    d, policy = registry_daemon(work, front.host, gpg.path)
    try:
        yield Env(d, registry, front, ext, gpg, signer, stranger, policy, work)
    finally:
        try:
            _finish(d)
        finally:
            front.stop()
            registry.stop()
            gpg.close()


def _lookaside_files(d: Daemon) -> list[Path]:
    return list((d.root / "signatures").rglob("signature-*"))


def test_skopeo_signs_into_the_registry_and_berth_accepts_it(env: Env) -> None:
    d, ref = env.daemon, env.ref("ext/from-skopeo:1")
    layout = env.work / "layout"
    image = build_image([{"bin/busybox": (BUSYBOX, 0o755), "etc/hello": b"signed\n"}],
                        label="ext")
    write_oci_layout(layout, "v1", [image])
    env.skopeo("--insecure-policy", "copy", "--dest-tls-verify=false", "--sign-by",
               env.signer, f"oci:{layout}:v1", f"docker://{ref}")
    digest = image.manifest_digest
    assert env.ext.count("ext/from-skopeo", digest) == 1, "skopeo did not use the extension"
    env.trust_only(env.signer)
    d.cli("pull", ref)
    assert _lookaside_files(d) == []
    assert "1 signature" in d.cli("image", "verify", ref).stdout
    assert d.cli("run", "--rm", ref, "/bin/busybox", "cat", "/etc/hello").stdout == "signed\n"
    # the same signature does not satisfy a policy that trusts another key
    env.trust_only(env.stranger)
    d.cli("rmi", ref)
    res = d.cli("pull", ref, check=False)
    assert res.returncode == 125 and "signature" in res.stderr.lower(), res.stderr
    assert d.cli("images", "-q", "-f", f"reference={ref}").stdout == ""


def test_berth_signs_into_the_registry_and_skopeo_accepts_it(env: Env) -> None:
    d = env.daemon
    signed, unsigned = env.ref("ext/from-berth:1"), env.ref("ext/unsigned:1")
    d.cli("tag", "busybox", signed)
    d.cli("tag", "busybox", unsigned)
    out = d.cli("push", "--sign-by", env.signer, signed).stdout
    d.cli("push", unsigned)
    inspected = json.loads(d.cli("image", "inspect", signed).stdout)
    digest = next(rd.split("@")[1] for rd in inspected["repo_digests"]
                  if rd.startswith(env.ref("ext/from-berth@")))
    assert env.ext.count("ext/from-berth", digest) == 1, out
    assert _lookaside_files(d) == [], "the signature went to the lookaside, not the registry"
    policy = env.work / "skopeo-policy.json"
    policy.write_text(json.dumps({"default": [{"type": "signedBy", "keyType": "GPGKeys",
                                               "keyPath": str(env.pubkey(env.signer))}]}))
    for ref, ok in ((signed, True), (unsigned, False)):
        res = env.skopeo("--policy", str(policy), "copy", "--remove-signatures",
                         "--src-tls-verify=false", f"docker://{ref}",
                         f"oci:{env.work / 'skopeo-out'}:x", check=False)
        assert (res.returncode == 0) == ok, res.stderr
        assert ok or "signature" in res.stderr, res.stderr
    # berthd reads back what it wrote, and another key's signature is added beside it (the
    # same key again within a second can give the very same bytes, which are not added twice)
    env.trust_only(env.signer)
    assert "1 signature" in d.cli("image", "verify", signed).stdout
    d.cli("image", "sign", "--sign-by", env.stranger, signed)
    assert env.ext.count("ext/from-berth", digest) == 2
    assert "2 signature" in d.cli("image", "verify", signed).stdout
    res = d.cli("image", "verify", unsigned, check=False)
    assert res.returncode == 125 and "signature" in res.stderr.lower()
    env.trust_only(env.stranger)  # the added signature is the one that counts now
    assert "2 signature" in d.cli("image", "verify", signed).stdout
    res = d.cli("image", "verify", unsigned, check=False)
    assert res.returncode == 125 and "signature" in res.stderr.lower()


@pytest.mark.parametrize("served, reason", [
    (b"<html>not json</html>", "not JSON"),
    (b'{"signatures": {"a": 1}}', "expected"),
    (b'{"signatures": [{"schemaVersion": 2, "type": "atomic", "name": "x", '
     b'"content": "%%% not base64"}]}', "not base64"),
    (b'{"signatures": [7]}', "not an object"),
])
def test_a_hostile_signature_list_is_refused_with_its_reason(env: Env, served: bytes,
                                                             reason: str) -> None:
    d, ref = env.daemon, env.ref("ext/hostile:1")
    d.cli("tag", "busybox", ref)
    d.cli("push", ref)
    env.trust_only(env.signer)
    env.ext.served = served
    try:
        res = d.cli("pull", ref, check=False)
    finally:
        env.ext.served = None
    assert res.returncode == 125 and reason in res.stderr, res.stderr
    assert env.front.host in res.stderr  # names the registry that sent it
    assert len(res.stderr.strip().splitlines()) == 1

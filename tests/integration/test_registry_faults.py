"""The registry client against a real registry behind a fault-injecting proxy.

Every fault must end in a clear error (or a recovery), with nothing committed to the blob store
under a digest that was not verified and no temp files left behind.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from berth.errors import NotFound, UnsafeContent, UpstreamFailure
from berth.image.blobs import BlobStore
from berth.image.reference import parse_reference
from berth.image.registry import Credentials, RegistryClient, RegistryConfig, pull, push
from berth.image.registry.inflight import in_flight
from tests.integration.proxy import Fault, FaultProxy, Rule
from tests.integration.registry import (
    OCI_INDEX,
    OCI_MANIFEST,
    BuiltImage,
    Registry,
    have_registry,
    make_tls_cert,
    push_built,
    start_registry,
    store_image,
    three_layer_image,
)

pytestmark = pytest.mark.skipif(not have_registry(), reason="docker-registry not installed")


# --- fixtures --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def reg(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    with start_registry(tmp_path_factory.mktemp("reg-open"), "open") as r:
        yield r


@pytest.fixture(scope="module")
def img(reg: Registry, tmp_path_factory: pytest.TempPathFactory) -> BuiltImage:
    image = three_layer_image("faults", size=300_000)
    push_built(reg, tmp_path_factory.mktemp("src"), "fault/app:1", image)
    return image


@pytest.fixture
def proxy(reg: Registry) -> Iterator[FaultProxy]:
    with FaultProxy(reg.host) as p:
        yield p


def cfg(host: str, **kw: Any) -> RegistryConfig:
    return RegistryConfig(insecure=frozenset({host}), backoff=0.01, **kw)


def pull_via(p: FaultProxy, blobs: BlobStore, name: str = "fault/app:1", **kw: Any) -> Any:
    return pull(parse_reference(f"{p.host}/{name}"), blobs, config=cfg(p.host), **kw)


def blob_rule(digest: str, make: Callable[[int], Fault | None], method: str = "GET") -> Rule:
    def rule(m: str, path: str, n: int) -> Fault | None:
        return make(n) if m == method and path.endswith(f"/blobs/{digest}") else None
    return rule


def assert_clean(blobs: BlobStore, *absent: str) -> None:
    """No listed digest in the store, nothing in its temp area, no download in flight."""
    for digest in absent:
        assert not blobs.has(digest)
    assert list(blobs.tmp_dir.iterdir()) == []
    assert in_flight() == 0


def assert_complete(blobs: BlobStore, image: BuiltImage) -> None:
    for digest, data in image.blobs().items():
        assert blobs.path(digest).read_bytes() == data
    assert_clean(blobs)


# --- downloads -------------------------------------------------------------------------------

def test_dropped_connection_resumes_with_range(proxy: FaultProxy, img: BuiltImage,
                                               tmp_path: Path) -> None:
    layer = img.layer_digests()[0]
    half = len(img.blobs()[layer]) // 2
    proxy.rules.append(blob_rule(layer, lambda n: Fault(cut_after=half) if n == 1 else None))
    blobs = BlobStore(tmp_path)
    pull_via(proxy, blobs)
    assert_complete(blobs, img)
    gets = proxy.seen("GET", f"/blobs/{layer}")
    assert len(gets) == 2 and "Range" not in gets[0]
    assert gets[1]["Range"] == f"bytes={half}-"


def test_range_ignoring_server_restarts_from_zero(proxy: FaultProxy, img: BuiltImage,
                                                  tmp_path: Path) -> None:
    layer = img.layer_digests()[1]
    size = len(img.blobs()[layer])
    proxy.rules.append(blob_rule(layer, lambda n: Fault(
        strip_range=True, cut_after=size // 3 if n == 1 else None)))
    blobs = BlobStore(tmp_path)
    pull_via(proxy, blobs)
    assert_complete(blobs, img)
    assert [h.get("Range") for h in proxy.seen("GET", f"/blobs/{layer}")] == \
        [None, f"bytes={size // 3}-"]


def test_drops_every_time_give_up(proxy: FaultProxy, img: BuiltImage, tmp_path: Path) -> None:
    layer = img.layer_digests()[2]
    proxy.rules.append(blob_rule(layer, lambda n: Fault(cut_after=1000, strip_range=True)))
    blobs = BlobStore(tmp_path)
    with pytest.raises(UpstreamFailure, match=rf"{proxy.host}/fault/app@{layer}.*4 times"):
        pull_via(proxy, blobs)
    assert_clean(blobs, layer, img.config_digest, img.manifest_digest)


@pytest.mark.parametrize("fault,words", [
    (Fault(mutate=lambda b: b[:-1] + bytes([b[-1] ^ 1])), "the content has digest"),
    (Fault(mutate=lambda b: b + b"extra"), "sends \\d+ bytes but the manifest says"),
    (Fault(mutate=lambda b: b + b"extra", no_length=True), "more bytes than the"),
    (Fault(mutate=lambda b: b[:-100]), "sends \\d+ bytes but the manifest says"),
])
def test_bad_blob_content_is_refused(proxy: FaultProxy, img: BuiltImage, tmp_path: Path,
                                     fault: Fault, words: str) -> None:
    layer = img.layer_digests()[0]
    proxy.rules.append(blob_rule(layer, lambda n: fault))
    blobs = BlobStore(tmp_path)
    with pytest.raises(UnsafeContent, match=words) as exc:
        pull_via(proxy, blobs)
    assert layer in str(exc.value) and "fault/app" in str(exc.value)
    assert_clean(blobs, layer, img.config_digest, img.manifest_digest)


def test_short_close_delimited_body_fails_cleanly(proxy: FaultProxy, img: BuiltImage,
                                                  tmp_path: Path) -> None:
    layer = img.layer_digests()[0]
    proxy.rules.append(blob_rule(layer, lambda n: Fault(mutate=lambda b: b[:-100],
                                                        no_length=True)))
    blobs = BlobStore(tmp_path)
    with pytest.raises((UnsafeContent, UpstreamFailure), match=layer):
        pull_via(proxy, blobs)
    assert_clean(blobs, layer, img.config_digest, img.manifest_digest)


def test_server_errors_are_retried(proxy: FaultProxy, img: BuiltImage, tmp_path: Path) -> None:
    layer = img.layer_digests()[0]
    proxy.rules.append(blob_rule(layer, lambda n: Fault(status=503) if n <= 2 else None))
    proxy.rules.append(lambda m, p, n: Fault(status=500) if "/manifests/" in p and n == 1
                       else None)
    blobs = BlobStore(tmp_path)
    pull_via(proxy, blobs)
    assert_complete(blobs, img)
    assert len(proxy.seen("GET", f"/blobs/{layer}")) == 3


def test_persistent_server_errors_fail_clearly(proxy: FaultProxy, img: BuiltImage,
                                               tmp_path: Path) -> None:
    layer = img.layer_digests()[1]
    proxy.rules.append(blob_rule(layer, lambda n: Fault(status=503)))
    blobs = BlobStore(tmp_path)
    with pytest.raises(UpstreamFailure, match=rf"registry {proxy.host} failed.*HTTP 503"):
        pull_via(proxy, blobs)
    assert len(proxy.seen("GET", f"/blobs/{layer}")) == 4
    assert_clean(blobs, layer, img.config_digest, img.manifest_digest)


def test_concurrent_pulls_share_one_download(proxy: FaultProxy, img: BuiltImage,
                                             tmp_path: Path) -> None:
    proxy.rules.append(lambda m, p, n: Fault(delay=0.4) if "/blobs/" in p else None)
    blobs = BlobStore(tmp_path)
    events: list[list[dict[str, Any]]] = [[], [], []]
    errors: list[BaseException] = []

    def one(i: int) -> None:
        try:
            pull_via(proxy, blobs, progress=events[i].append)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    assert_complete(blobs, img)
    for layer in img.layer_digests():
        assert len(proxy.seen("GET", f"/blobs/{layer}")) == 1
    for evs in events:  # every pull hears about every layer until it is done
        assert {e["digest"] for e in evs if e["status"] == "done"} == set(img.layer_digests())


def test_killed_pull_leaves_only_temp_files(proxy: FaultProxy, img: BuiltImage,
                                            tmp_path: Path) -> None:
    layer = img.layer_digests()[0]
    proxy.rules.append(blob_rule(layer, lambda n: Fault(cut_after=100_000, stall=30)))
    blobs = BlobStore(tmp_path / "store")
    code = ("import sys; from pathlib import Path; from berth.image.blobs import BlobStore;"
            "from berth.image.reference import parse_reference;"
            "from berth.image.registry import RegistryConfig, pull;"
            f"pull(parse_reference('{proxy.host}/fault/app:1'), BlobStore(Path(sys.argv[1])),"
            f"config=RegistryConfig(insecure=frozenset({{'{proxy.host}'}})))")
    child = subprocess.Popen([sys.executable, "-c", code, str(blobs.root)],
                             env={**os.environ, "PYTHONPATH": "src"})
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            # well short of the 100,000 bytes sent: the writer's buffer may hold the rest
            partial = [p for p in blobs.tmp_dir.iterdir() if p.stat().st_size >= 50_000]
            if partial:
                break
            time.sleep(0.02)
        else:
            pytest.fail("the pull never got half way")
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(10)
    assert not blobs.has(layer)
    assert not blobs.has(img.manifest_digest) and not blobs.has(img.config_digest)
    blobs.cleanup_tmp()
    assert list(blobs.tmp_dir.iterdir()) == []


# --- manifests -------------------------------------------------------------------------------

def manifest_reply(doc: dict[str, Any] | bytes, media_type: str = OCI_MANIFEST, **kw: Any
                   ) -> Rule:
    body = doc if isinstance(doc, bytes) else json.dumps(doc).encode()

    def rule(m: str, path: str, n: int) -> Fault | None:
        if m == "GET" and path.endswith("/manifests/evil"):
            return Fault(status=200, body=body, headers={"Content-Type": media_type}, **kw)
        return None
    return rule


@pytest.mark.parametrize("no_length", [False, True])
def test_oversized_manifest(proxy: FaultProxy, tmp_path: Path, no_length: bool) -> None:
    proxy.rules.append(manifest_reply(b" " * (5 << 20), no_length=no_length))
    blobs = BlobStore(tmp_path)
    with pytest.raises(UnsafeContent, match="manifest .*fault/app:evil.* limit of 4194304"):
        pull_via(proxy, blobs, "fault/app:evil")
    assert list(blobs.iter_digests()) == []


@pytest.mark.parametrize("layer_extra,words", [
    ({"urls": ["http://elsewhere.invalid/layer.tgz"]}, "external 'urls'"),
    ({"mediaType": "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
      "urls": ["http://elsewhere.invalid/x"]}, "external 'urls'"),
    ({"mediaType": "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"}, "foreign"),
])
def test_foreign_layers_are_refused(proxy: FaultProxy, img: BuiltImage, tmp_path: Path,
                                    layer_extra: dict[str, Any], words: str) -> None:
    doc = json.loads(img.manifest)
    doc["layers"][1].update(layer_extra)
    proxy.rules.append(manifest_reply(doc))
    blobs = BlobStore(tmp_path)
    with pytest.raises(UnsafeContent, match=words):
        pull_via(proxy, blobs, "fault/app:evil")
    assert list(blobs.iter_digests()) == []
    assert not any(h for m, p, h in proxy.requests if "/blobs/" in p)


def test_manifest_with_wrong_digest_by_digest(proxy: FaultProxy, img: BuiltImage,
                                              tmp_path: Path) -> None:
    proxy.rules.append(lambda m, p, n: Fault(mutate=lambda b: b + b"\n")
                       if "/manifests/" in p else None)
    blobs = BlobStore(tmp_path)
    with pytest.raises(UnsafeContent, match=f"{img.manifest_digest}: the registry sent"):
        pull_via(proxy, blobs, f"fault/app@{img.manifest_digest}")
    assert list(blobs.iter_digests()) == []


def test_config_with_wrong_digest(proxy: FaultProxy, img: BuiltImage, tmp_path: Path) -> None:
    proxy.rules.append(blob_rule(img.config_digest,
                                 lambda n: Fault(mutate=lambda b: b.replace(b"linux", b"Linux"))))
    blobs = BlobStore(tmp_path)
    with pytest.raises(UnsafeContent, match="does not match its digest"):
        pull_via(proxy, blobs)
    assert list(blobs.iter_digests()) == []


def test_deeply_nested_index(reg: Registry, img: BuiltImage, tmp_path: Path) -> None:
    """Real nested indexes pushed to the registry: each names the one below for linux/amd64."""
    with RegistryClient(reg.host, cfg(reg.host)) as client:
        data, size, media_type = img.manifest, len(img.manifest), OCI_MANIFEST
        digest = client.put_manifest("fault/app", "1", data, OCI_MANIFEST)
        for level in range(5):
            data = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [{
                "mediaType": media_type, "digest": digest, "size": size,
                "platform": {"os": "linux", "architecture": "amd64"}}]}).encode()
            digest = client.put_manifest("fault/app", f"nested{level}", data, OCI_INDEX)
            size, media_type = len(data), OCI_INDEX
    blobs = BlobStore(tmp_path)
    ok = pull(parse_reference(f"{reg.host}/fault/app:nested1"), blobs, config=cfg(reg.host),
              platform=("linux", "amd64", None))
    assert ok.image.id == img.config_digest
    fresh = BlobStore(tmp_path / "fresh")
    with pytest.raises(UnsafeContent, match="nested more than 3 deep"):
        pull(parse_reference(f"{reg.host}/fault/app:nested4"), fresh, config=cfg(reg.host),
             platform=("linux", "amd64", None))
    assert list(fresh.iter_digests()) == []


def test_missing_manifest_is_not_found(proxy: FaultProxy, tmp_path: Path) -> None:
    with pytest.raises(NotFound, match=f"{proxy.host}.*fault/app:missing"):
        pull_via(proxy, BlobStore(tmp_path), "fault/app:missing")


# --- redirects and credentials ---------------------------------------------------------------

@pytest.mark.parametrize("mode", ["basic", "token"])
def test_redirect_to_another_host_drops_authorization(mode: str, tmp_path: Path) -> None:
    image = three_layer_image("redirect")
    with start_registry(tmp_path / "reg", mode) as auth_reg, \
            FaultProxy(None) as storage, FaultProxy(auth_reg.host) as front:
        push_built(auth_reg, tmp_path / "src", "private/app:1", image)
        blobs_by_path = {f"/storage/{d[7:]}": data for d, data in image.blobs().items()}
        storage.rules.append(lambda m, p, n: Fault(status=200, body=blobs_by_path[p])
                             if p in blobs_by_path else Fault(status=404))
        front.rules.append(lambda m, p, n: Fault(status=307, headers={
            "Location": f"http://{storage.host}/storage/{p.rsplit(':', 1)[1]}"})
            if m == "GET" and "/blobs/sha256:" in p else None)
        creds = Credentials(auth_reg.username or "", auth_reg.password or "")
        blobs = BlobStore(tmp_path / "dst")
        pull(parse_reference(f"{front.host}/private/app:1"), blobs, config=cfg(front.host),
             credentials_for=lambda h: creds if h == front.host else None)
        assert_complete(blobs, image)
        assert len(storage.requests) == 4  # three layers and the config
        assert all("Authorization" not in h for _, _, h in storage.requests)
        assert all("Authorization" in h for h in front.seen("GET", "/blobs/"))


def test_https_redirect_to_plain_http_is_refused(tmp_path: Path) -> None:
    cert, key = make_tls_cert(tmp_path)
    with FaultProxy(None) as plain, FaultProxy(None, tls=(cert, key)) as secure:
        secure.rules.append(lambda m, p, n: Fault(status=302, headers={
            "Location": f"http://{plain.host}/v2/x/manifests/1"}))
        with pytest.raises(UpstreamFailure, match="redirect from HTTPS to plain HTTP"):
            pull(parse_reference(f"{secure.host}/x:1"), BlobStore(tmp_path / "b"),
                 config=RegistryConfig(ca_bundle=cert, backoff=0.01))
        assert len(secure.requests) == 1 and plain.requests == []


def test_too_many_redirects(proxy: FaultProxy, tmp_path: Path) -> None:
    proxy.rules.append(lambda m, p, n: Fault(status=307, headers={"Location": p}))
    with pytest.raises(UpstreamFailure, match="more than 5 redirects"):
        pull_via(proxy, BlobStore(tmp_path))


# --- push ------------------------------------------------------------------------------------

def location_rule(change: Callable[[str], str]) -> Rule:
    """Rewrite the Location of upload-session answers."""
    def rewrite(headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
        return [(k, change(v) if k.lower() == "location" else v) for k, v in headers]

    def rule(m: str, path: str, n: int) -> Fault | None:
        return Fault(rewrite=rewrite) if "/blobs/uploads/" in path else None
    return rule


def push_via(p: FaultProxy, image: BuiltImage, tmp_path: Path, name: str) -> str:
    src = BlobStore(tmp_path / "src")
    return push(parse_reference(f"{p.host}/{name}"), store_image(src, image), image.manifest,
                OCI_MANIFEST, src, config=cfg(p.host))


def test_push_follows_relative_upload_locations(proxy: FaultProxy, tmp_path: Path) -> None:
    image = three_layer_image("relative")
    proxy.rules.append(location_rule(lambda v: "/" + v.split("/", 3)[3]))
    assert push_via(proxy, image, tmp_path, "rel/app:1") == image.manifest_digest
    assert proxy.seen("PUT", "/v2/rel/app/blobs/uploads/")
    blobs = BlobStore(tmp_path / "dst")
    pull_via(proxy, blobs, "rel/app:1")
    assert_complete(blobs, image)


def test_push_refuses_upload_location_on_another_host(proxy: FaultProxy,
                                                      tmp_path: Path) -> None:
    with FaultProxy(None) as elsewhere:
        proxy.rules.append(location_rule(
            lambda v: f"http://{elsewhere.host}/" + v.split("/", 3)[3]))
        with pytest.raises(UpstreamFailure, match="points to another host"):
            push_via(proxy, three_layer_image("foreign"), tmp_path, "far/app:1")
        assert elsewhere.requests == []


def test_push_retries_a_failed_upload(proxy: FaultProxy, tmp_path: Path) -> None:
    image = three_layer_image("retry-push")
    proxy.rules.append(lambda m, p, n: Fault(status=503)
                       if m == "POST" and "/blobs/uploads/" in p and n == 1 else None)
    assert push_via(proxy, image, tmp_path, "retry/app:1") == image.manifest_digest


def test_manifest_read_dropped_then_retried(proxy: FaultProxy, img: BuiltImage,
                                            tmp_path: Path) -> None:
    proxy.rules.append(lambda m, p, n: Fault(cut_after=50)
                       if "/manifests/" in p and n == 1 else None)
    blobs = BlobStore(tmp_path)
    assert pull_via(proxy, blobs).image.manifest_digest == img.manifest_digest
    assert len(proxy.seen("GET", "/manifests/1")) == 2

"""The registry client against real registries (Debian's docker-registry) in all auth modes."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from berth.errors import NotFound, Unauthorized, UnsafeContent, UpstreamFailure
from berth.image.blobs import BlobStore
from berth.image.reference import parse_reference
from berth.image.registry import Credentials, RegistryClient, RegistryConfig, pull, push
from berth.image.registry.inflight import in_flight
from tests.integration.registry import (
    OCI_INDEX,
    OCI_MANIFEST,
    BuiltImage,
    Registry,
    have_registry,
    index_bytes,
    push_built,
    skopeo_copy,
    start_registry,
    store_image,
    three_layer_image,
    write_oci_layout,
)

pytestmark = pytest.mark.skipif(not have_registry(), reason="docker-registry not installed")


@pytest.fixture(scope="module", params=["open", "basic", "token"])
def reg(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
        ) -> Iterator[Registry]:
    mode = request.param
    grants = {"berth": {"*": {"pull", "push"}}, "reader": {"shared/app": {"pull"}}}
    with start_registry(tmp_path_factory.mktemp(f"reg-{mode}"), mode,
                        users={"reader": "reader-pass-9"}, grants=grants) as r:
        yield r


def config_for(reg: Registry, **kw: Any) -> RegistryConfig:
    return RegistryConfig(insecure=frozenset({reg.host}), backoff=0.01, **kw)


def creds_for(reg: Registry, user: str | None = None, password: str | None = None
              ) -> Callable[[str], Credentials | None]:
    """Credentials for exactly this registry host, as the daemon's lookup works."""
    def lookup(host: str) -> Credentials | None:
        if host != reg.host or reg.username is None:
            return None
        return Credentials(user or reg.username, password or reg.password or "")
    return lookup


def wait_until(check: Callable[[], bool], timeout: float = 5.0) -> bool:
    """The registry writes an access-log line just after answering: poll for it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.02)
    return check()


def push_image(reg: Registry, tmp: Path, name: str, img: BuiltImage, **kw: Any) -> str:
    return push_built(reg, tmp, name, img, **kw)


def assert_pulled(blobs: BlobStore, img: BuiltImage) -> None:
    for digest, data in img.blobs().items():
        assert blobs.path(digest).read_bytes() == data
    assert blobs.path(img.manifest_digest).read_bytes() == img.manifest
    assert list(blobs.tmp_dir.iterdir()) == []


def test_push_then_pull_by_tag_and_by_digest(reg: Registry, tmp_path: Path) -> None:
    img = three_layer_image("roundtrip")
    events: list[dict[str, Any]] = []
    digest = push_image(reg, tmp_path, "team/app:v1", img, progress=events.append)
    assert digest == img.manifest_digest
    assert {e["status"] for e in events} >= {"waiting", "pushing", "done"}

    blobs = BlobStore(tmp_path / "dst")
    events = []
    pulled = pull(parse_reference(f"{reg.host}/team/app:v1"), blobs, config=config_for(reg),
                  credentials_for=creds_for(reg), progress=events.append)
    assert pulled.image.id == img.config_digest
    assert pulled.image.manifest_digest == pulled.repo_digest == img.manifest_digest
    assert pulled.manifest_bytes == img.manifest and pulled.media_type == OCI_MANIFEST
    assert [la.digest for la in pulled.image.layers] == img.layer_digests()
    assert [la.diff_id for la in pulled.image.layers] == [d for _, d in img.layers]
    assert pulled.image.config == json.loads(img.config)
    assert_pulled(blobs, img)
    done = {e["digest"] for e in events if e["status"] == "done"}
    assert done == set(img.layer_digests())
    assert all(e["total"] > 0 and len(e["id"]) == 12 for e in events)

    again: list[dict[str, Any]] = []
    by_digest = pull(parse_reference(f"{reg.host}/team/app@{img.manifest_digest}"), blobs,
                     config=config_for(reg), credentials_for=creds_for(reg),
                     progress=again.append)
    assert by_digest.image == pulled.image
    assert {e["status"] for e in again} == {"waiting", "exists"}


def test_skopeo_pushed_image_pulls_back(reg: Registry, tmp_path: Path) -> None:
    img = three_layer_image("skopeo")
    top = write_oci_layout(tmp_path / "layout", "v2", [img])
    skopeo_copy(tmp_path / "layout", "v2", reg, "skopeo/app:v2")
    blobs = BlobStore(tmp_path / "dst")
    pulled = pull(parse_reference(f"{reg.host}/skopeo/app:v2"), blobs, config=config_for(reg),
                  credentials_for=creds_for(reg))
    assert pulled.repo_digest == top == img.manifest_digest
    assert_pulled(blobs, img)


def test_index_picks_the_platform(reg: Registry, tmp_path: Path) -> None:
    amd, arm = three_layer_image("amd", "amd64"), three_layer_image("arm", "arm64")
    top = write_oci_layout(tmp_path / "layout", "multi", [amd, arm])
    skopeo_copy(tmp_path / "layout", "multi", reg, "multi/app:1")
    ref = parse_reference(f"{reg.host}/multi/app:1")
    blobs = BlobStore(tmp_path / "dst")
    pulled = pull(ref, blobs, config=config_for(reg), credentials_for=creds_for(reg),
                  platform=("linux", "arm64", None))
    assert pulled.image.id == arm.config_digest
    assert pulled.image.manifest_digest == arm.manifest_digest
    assert pulled.repo_digest == top  # as docker reports RepoDigests: the index
    assert blobs.path(top).read_bytes() == index_bytes([amd, arm])
    assert_pulled(blobs, arm)
    assert not blobs.has(amd.config_digest)
    amd_pull = pull(ref, blobs, config=config_for(reg), credentials_for=creds_for(reg),
                    platform=("linux", "amd64", None))
    assert amd_pull.image.id == amd.config_digest and amd_pull.repo_digest == top
    with pytest.raises(NotFound, match=r"available: linux/amd64, linux/arm64") as exc:
        pull(ref, blobs, config=config_for(reg), credentials_for=creds_for(reg),
             platform=("linux", "s390x", None))
    assert "multi/app" in str(exc.value) and "linux/s390x" in str(exc.value)


@pytest.mark.parametrize("reg", ["basic", "token"], indirect=True)  # open takes no password
def test_wrong_password_is_unauthorized_without_the_password(reg: Registry,
                                                              tmp_path: Path) -> None:
    push_image(reg, tmp_path, "private/app:1", three_layer_image("private"))
    secret = "Wr0ng-Secret-Pa55"
    ref = parse_reference(f"{reg.host}/private/app:1")
    blobs = BlobStore(tmp_path / "dst")
    with pytest.raises(Unauthorized) as exc:
        pull(ref, blobs, config=config_for(reg),
             credentials_for=creds_for(reg, password=secret))
    assert secret not in str(exc.value) and reg.password not in str(exc.value)
    assert reg.host in str(exc.value) and "'berth'" in str(exc.value)
    with pytest.raises(Unauthorized, match="requires a login"):
        pull(ref, blobs, config=config_for(reg))
    assert list(blobs.iter_digests()) == [] and list(blobs.tmp_dir.iterdir()) == []


@pytest.mark.parametrize("reg", ["token"], indirect=True)  # scopes: a token-mode feature
def test_token_grants_only_allowed_scopes(reg: Registry, tmp_path: Path) -> None:
    img = three_layer_image("shared")
    push_image(reg, tmp_path, "shared/app:1", img)
    reader = creds_for(reg, "reader", "reader-pass-9")
    blobs = BlobStore(tmp_path / "dst")
    assert reg.issuer is not None
    before = len(reg.issuer.requests)
    pull(parse_reference(f"{reg.host}/shared/app:1"), blobs, config=config_for(reg),
         credentials_for=reader)
    assert_pulled(blobs, img)
    assert len(reg.issuer.requests) == before + 1  # one token, cached for all five GETs
    with pytest.raises(Unauthorized, match="insufficient scope|refused"):
        push(parse_reference(f"{reg.host}/shared/app:2"), store_image(blobs, img),
             img.manifest, OCI_MANIFEST, blobs, config=config_for(reg), credentials_for=reader)
    with pytest.raises(Unauthorized, match="'reader'"):
        pull(parse_reference(f"{reg.host}/team/other:1"), blobs, config=config_for(reg),
             credentials_for=reader)
    asked = [q.get("scope") for q in (r["query"] for r in reg.issuer.requests)]
    assert ["repository:shared/app:pull"] in asked
    assert all(r["authorization"] is None or r["user"] for r in reg.issuer.requests
               if r["user"] != "")


def test_cross_repository_mount(reg: Registry, tmp_path: Path) -> None:
    img = three_layer_image("mount")
    push_image(reg, tmp_path, "mnt/source:1", img)
    events: list[dict[str, Any]] = []
    digest = push_image(reg, tmp_path, "mnt/dest:1", img, mount_from=["mnt/source"],
                        progress=events.append)
    assert digest == img.manifest_digest
    mounted = {e["digest"] for e in events if e["status"] == "mounted"}
    assert mounted == set(img.blobs())
    assert wait_until(lambda: sum(
        1 for line, status in reg.access_log()
        if "mount=" in line and "from=mnt/source" in line and status == 201) == 4)
    blobs = BlobStore(tmp_path / "dst")
    pull(parse_reference(f"{reg.host}/mnt/dest:1"), blobs, config=config_for(reg),
         credentials_for=creds_for(reg))
    assert_pulled(blobs, img)


def test_chunked_upload(reg: Registry, tmp_path: Path) -> None:
    img = three_layer_image("chunky", size=120_000)
    src = BlobStore(tmp_path / "src")
    push(parse_reference(f"{reg.host}/chunky/app:1"), store_image(src, img), img.manifest,
         OCI_MANIFEST, src, config=config_for(reg, chunk_size=50_000),
         credentials_for=creds_for(reg))
    assert wait_until(lambda: any(line.startswith("PATCH /v2/chunky/app/blobs/uploads/")
                                  for line, _ in reg.access_log()))
    blobs = BlobStore(tmp_path / "dst")
    pull(parse_reference(f"{reg.host}/chunky/app:1"), blobs, config=config_for(reg),
         credentials_for=creds_for(reg))
    assert_pulled(blobs, img)


def test_client_calls_for_signatures(reg: Registry, tmp_path: Path) -> None:
    img = three_layer_image("sig")
    digest = push_image(reg, tmp_path, "signed/app:1", img)
    sig_tag = digest.replace(":", "-") + ".sig"
    with RegistryClient(reg.host, config_for(reg), creds_for(reg)) as client:
        assert client.put_manifest("signed/app", sig_tag, img.manifest, OCI_MANIFEST) == digest
        assert sorted(client.list_tags("signed/app")) == sorted(["1", sig_tag])
        info = client.head_manifest("signed/app", "1")
        assert info is not None and info.digest == digest
        assert not client.manifest_exists("signed/app", "nope")
        data, media_type, got = client.get_manifest("signed/app", sig_tag)
        assert (data, media_type, got) == (img.manifest, OCI_MANIFEST, digest)
        assert client.get_blob_bytes("signed/app", img.config_digest, 1 << 20) == img.config
        with pytest.raises(UnsafeContent, match="limit of 10"):
            client.get_blob_bytes("signed/app", img.config_digest, 10)
        with pytest.raises(NotFound, match=rf"{reg.host}.*signed/app:nope"):
            client.get_manifest("signed/app", "nope")
        with pytest.raises(NotFound):
            client.list_tags("no/such-repo")


def test_pull_of_missing_image_names_registry_and_repo(reg: Registry, tmp_path: Path) -> None:
    with pytest.raises(NotFound) as exc:
        pull(parse_reference(f"{reg.host}/ghost/app:1"), BlobStore(tmp_path / "b"),
             config=config_for(reg), credentials_for=creds_for(reg))
    assert reg.host in str(exc.value) and "ghost/app" in str(exc.value)


def test_concurrent_pulls_in_one_process(reg: Registry, tmp_path: Path) -> None:
    """Both pulls succeed into one store and nothing is left in flight (the GET counting
    proof of sharing is in test_registry_faults, where a slow proxy forces the overlap)."""
    img = three_layer_image("together", size=400_000)
    push_image(reg, tmp_path, "together/app:1", img)
    blobs = BlobStore(tmp_path / "dst")
    errors: list[BaseException] = []

    def one() -> None:
        try:
            pull(parse_reference(f"{reg.host}/together/app:1"), blobs,
                 config=config_for(reg), credentials_for=creds_for(reg))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=one) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    assert_pulled(blobs, img)
    assert in_flight() == 0


def test_pushed_index_by_client(reg: Registry, tmp_path: Path) -> None:
    """put_manifest takes any bytes verbatim: an index pushed by hand pulls by platform."""
    amd, arm = three_layer_image("i-amd", "amd64"), three_layer_image("i-arm", "arm64")
    push_image(reg, tmp_path, "byhand/app:amd", amd)
    push_image(reg, tmp_path, "byhand/app:arm", arm)
    idx = index_bytes([amd, arm])
    with RegistryClient(reg.host, config_for(reg), creds_for(reg)) as client:
        top = client.put_manifest("byhand/app", "1", idx, OCI_INDEX)
    pulled = pull(parse_reference(f"{reg.host}/byhand/app:1"), BlobStore(tmp_path / "d"),
                  config=config_for(reg), credentials_for=creds_for(reg),
                  platform=("linux", "amd64", None))
    assert pulled.repo_digest == top and pulled.image.id == amd.config_digest


def test_tls_registry_and_token_realm_over_http(tmp_path: Path) -> None:
    """A registry on HTTPS: trusted through ca_bundle; a plain-HTTP token realm named by it is
    refused unless that realm host is explicitly listed as insecure."""
    img = three_layer_image("tls")
    with start_registry(tmp_path / "reg", "token", tls=True,
                        token_field="access_token") as tls_reg:
        assert tls_reg.url.startswith("https://")
        push_built(tls_reg, tmp_path, "secure/app:1", img)
        ref = parse_reference(f"{tls_reg.host}/secure/app:1")
        blobs = BlobStore(tmp_path / "dst")
        pull(ref, blobs, config=tls_reg.client_config(), credentials_for=tls_reg.credentials_for)
        assert_pulled(blobs, img)
        with pytest.raises(UpstreamFailure, match="plain HTTP token realm"):
            pull(ref, blobs, config=RegistryConfig(ca_bundle=tls_reg.ca_cert),
                 credentials_for=tls_reg.credentials_for)
        with pytest.raises(UpstreamFailure, match=f"cannot reach registry {tls_reg.host}"):
            pull(ref, blobs, config=RegistryConfig(backoff=0.01),
                 credentials_for=tls_reg.credentials_for)

"""berthd against real registries: login, pull, push, signatures and the policy, crashes.

The registry is Debian's docker-registry on a loopback port (tests/integration/registry.py);
berthd speaks plain HTTP to it because it is listed with --insecure-registry.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from berth.client import APIError, Client
from tests.gpghome import GpgHome
from tests.integration.conftest import _finish, _require_host
from tests.integration.daemon import BIN, Daemon, registry_daemon
from tests.integration.registry import (
    Registry,
    build_image,
    have_registry,
    index_bytes,
    push_built,
    start_registry,
    write_oci_layout,
)

pytestmark = pytest.mark.integration
BUSYBOX = Path("/bin/busybox").read_bytes()


@dataclass
class Env:
    daemon: Daemon
    registry: Registry
    policy: Path
    gpg: GpgHome
    signer: str  # fingerprint of the key berthd signs with
    work: Path

    def set_policy(self, doc: dict) -> None:
        tmp = self.policy.with_suffix(".new")
        tmp.write_text(json.dumps(doc))
        os.replace(tmp, self.policy)

    def ref(self, name: str) -> str:
        return f"{self.registry.host}/{name}"


def runnable_image(label: str, arch: str = "amd64", noise: int = 20_000) -> object:
    """Three layers with busybox; the third deletes /etc/doomed with a whiteout."""
    return build_image([
        {"bin/busybox": (BUSYBOX, 0o755), "etc/hello": f"hello {label}\n".encode(),
         "etc/doomed": b"bye\n"},
        {"data/noise": os.urandom(noise)},
        {"etc/doomed": None},
    ], arch=arch, label=label)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    _require_host()
    if not have_registry():
        pytest.skip("Debian's docker-registry is not installed (scripts/setup.sh installs it)")
    work = tmp_path_factory.mktemp("regd")
    registry = start_registry(work / "registry", "basic")
    gpg = GpgHome()
    signer = gpg.gen_key("Berth Test Signer <signer@example.com>")
    d, policy = registry_daemon(work, registry.host, gpg.path)
    d.cli("login", "-u", registry.username, "--password-stdin", registry.host,
          input=(registry.password + "\n").encode())
    try:
        yield Env(d, registry, policy, gpg, signer, work)
    finally:
        try:
            _finish(d)
        finally:
            registry.stop()
            gpg.close()


def test_login_is_checked_kept_sealed_and_never_shown(env: Env) -> None:
    d = env.daemon
    res = d.cli("login", "-u", env.registry.username, "--password-stdin", env.registry.host,
                input=b"wrong-password-xyzzy\n", check=False)
    assert res.returncode == 125 and "xyzzy" not in res.stderr + res.stdout
    logins = d.client.registries.list()
    assert [x["registry"] for x in logins] == [env.registry.host]
    assert "password" not in json.dumps(logins).lower()
    db = (d.root / "berth.db").read_bytes()
    assert env.registry.password.encode() not in db  # sealed at rest
    assert d.cli("logout", "never.example.com", check=False).returncode == 125


def test_push_then_pull_and_run(env: Env) -> None:
    d = env.daemon
    name = env.ref("team/bb:1")
    d.cli("tag", "busybox", name)
    out = d.cli("push", name)
    digest = out.stdout.split("digest: ")[1].strip()
    d.cli("rmi", name)
    d.cli("pull", name)
    info = json.loads(d.cli("image", "inspect", name).stdout)
    assert f"{env.registry.host}/team/bb@{digest}" in info["repo_digests"]
    assert d.cli("run", "--rm", name, "echo", "from the registry").stdout == \
        "from the registry\n"
    res = d.cli("pull", env.ref("team/bb:nope"), check=False)
    assert res.returncode == 125 and "not found" in res.stderr
    res = d.cli("pull", "127.0.0.1:1/x:1", check=False)
    assert res.returncode == 125 and "127.0.0.1:1" in res.stderr


def test_run_pulls_a_missing_image_unless_told_not_to(env: Env) -> None:
    d = env.daemon
    push_built(env.registry, env.work, "autopull:1", runnable_image("auto"))
    res = d.cli("run", "--rm", "--pull", "never", env.ref("autopull:1"), "/bin/busybox",
                "true", check=False)
    assert res.returncode == 125 and "no such image" in res.stderr
    res = d.cli("run", "--rm", env.ref("autopull:1"), "/bin/busybox", "cat", "/etc/hello")
    assert res.stdout == "hello auto\n" and "Complete" in res.stderr  # pull progress


def test_pull_multi_layer_image_with_whiteouts_through_an_index(env: Env) -> None:
    d = env.daemon
    amd, arm = runnable_image("amd"), runnable_image("arm", arch="arm64")
    for img in (amd, arm):
        push_built(env.registry, env.work, f"multi:{img.arch}", img)
    # an index naming both, pushed by hand through the registry API
    import httpx

    idx = index_bytes([amd, arm])
    resp = httpx.put(f"http://{env.registry.host}/v2/multi/manifests/both", content=idx,
                     headers={"Content-Type": "application/vnd.oci.image.index.v1+json"},
                     auth=(env.registry.username, env.registry.password))
    assert resp.status_code == 201, resp.text
    d.cli("pull", env.ref("multi:both"))
    out = d.cli("run", "--rm", env.ref("multi:both"), "/bin/busybox", "sh", "-c",
                "cat /etc/hello; ls /etc/doomed 2>&1 || true").stdout
    assert out.startswith("hello amd\n") and "No such file" in out
    info = json.loads(d.cli("image", "inspect", env.ref("multi:both")).stdout)
    assert info["repo_digests"] == [
        f"{env.registry.host}/multi@sha256:{hashlib.sha256(idx).hexdigest()}"]
    d.cli("pull", "--platform", "linux/arm64", env.ref("multi:both"))
    assert json.loads(d.cli("image", "inspect", env.ref("multi:both")).stdout)[
        "architecture"] == "arm64"
    res = d.cli("pull", "--platform", "linux/s390x", env.ref("multi:both"), check=False)
    assert res.returncode == 125 and "linux/arm64" in res.stderr  # lists what exists
    # run's --platform picks what it pulls; -q pulls without a word
    res = d.cli("run", "--rm", "-q", "--pull", "always", "--platform", "linux/amd64",
                env.ref("multi:both"), "/bin/busybox", "cat", "/etc/hello")
    assert (res.stdout, res.stderr) == ("hello amd\n", "")


def test_concurrent_pulls_download_each_blob_once(env: Env) -> None:
    d = env.daemon
    img = runnable_image("shared", noise=2_000_000)
    push_built(env.registry, env.work, "shared:1", img)
    before = len(env.registry.access_log())
    procs = [subprocess.Popen([str(BIN / "berth"), "pull", "-q", env.ref("shared:1")],
                              env=d.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for _ in range(4)]
    results = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), results
    gets = [line for line, status in env.registry.access_log()[before:]
            if line.startswith("GET") and "/blobs/" in line and status in (200, 206)]
    unique, shared_whiteout = img.layer_digests()[:2], img.layer_digests()[2]
    for digest in unique:
        assert sum(digest in line for line in gets) == 1, gets
    assert sum(shared_whiteout in line for line in gets) <= 1  # earlier tests may have it


def test_signed_by_policy_accepts_signed_and_refuses_unsigned(env: Env) -> None:
    d = env.daemon
    pub = env.work / "signer.gpg"
    pub.write_bytes(env.gpg.export(env.signer))
    signed, unsigned = env.ref("trusted/app:1"), env.ref("trusted/other:1")
    d.cli("tag", "busybox", signed)
    d.cli("tag", "busybox", unsigned)
    d.cli("push", "--sign-by", env.signer, signed)
    d.cli("push", unsigned)
    sigs = list((d.root / "signatures").rglob("signature-1"))
    assert sigs, "push --sign-by stored no signature"
    # skopeo's own policy check accepts what berthd signed (and refuses the unsigned one)
    regd = env.work / "skopeo-registries.d"
    regd.mkdir(exist_ok=True)
    (regd / "berth.yaml").write_text(
        f"default-docker:\n  lookaside: file://{d.root / 'signatures'}\n")
    skopeo_policy = env.work / "skopeo-policy.json"
    skopeo_policy.write_text(json.dumps({"default": [{"type": "signedBy", "keyType": "GPGKeys",
                                                      "keyPath": str(pub)}]}))
    for ref, ok in ((signed, True), (unsigned, False)):
        res = subprocess.run(["skopeo", "--policy", str(skopeo_policy), "--registries.d",
                              str(regd), "copy", "--remove-signatures",
                              "--src-tls-verify=false", "--src-creds",
                              f"{env.registry.username}:{env.registry.password}",
                              f"docker://{ref}", f"oci:{env.work / 'skopeo-check'}:x"],
                             capture_output=True, text=True, timeout=120,
                             env={"PATH": "/usr/bin:/bin", "HOME": str(env.work)})
        assert (res.returncode == 0) == ok, res.stderr
    env.set_policy({"default": [{"type": "insecureAcceptAnything"}], "transports": {"docker": {
        f"{env.registry.host}/trusted": [{"type": "signedBy", "keyType": "GPGKeys",
                                          "keyPath": str(pub)}]}}})
    try:
        d.cli("rmi", signed)
        d.cli("rmi", unsigned)
        d.cli("pull", signed)
        assert "1 signature" in d.cli("image", "verify", signed).stdout
        res = d.cli("pull", unsigned, check=False)
        assert res.returncode == 125 and "signature" in res.stderr
        assert d.cli("images", "-q", "-f", f"reference={unsigned}").stdout == ""
        d.cli("run", "--rm", signed, "true")
        # the policy is checked again at every create, on the kept signatures
        env.set_policy({"default": [{"type": "insecureAcceptAnything"}], "transports": {
            "docker": {f"{env.registry.host}/trusted": [{"type": "reject"}]}}})
        res = d.cli("run", "--rm", signed, "true", check=False)
        assert res.returncode == 125 and "reject" in res.stderr.lower()
    finally:
        env.set_policy({"default": [{"type": "insecureAcceptAnything"}]})
    d.cli("run", "--rm", signed, "true")


def test_sigstore_signatures_in_the_registry(env: Env) -> None:
    d = env.daemon
    key = ec.generate_private_key(ec.SECP256R1())
    key_file = env.work / "cosign.key"
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    pub = key.public_key().public_bytes(serialization.Encoding.PEM,
                                        serialization.PublicFormat.SubjectPublicKeyInfo)
    name = env.ref("cosigned/app:1")
    d.cli("tag", "busybox", name)
    d.cli("push", "--sign-by-sigstore-key", str(key_file), name)
    d.cli("tag", "busybox", env.ref("cosigned/plain:1"))
    d.cli("push", env.ref("cosigned/plain:1"))
    env.set_policy({"default": [{"type": "insecureAcceptAnything"}], "transports": {"docker": {
        f"{env.registry.host}/cosigned": [{"type": "sigstoreSigned",
                                           "keyData": base64.b64encode(pub).decode()}]}}})
    try:
        assert "accepted" in d.cli("image", "verify", name).stdout
        d.cli("rmi", name)
        d.cli("pull", name)
        res = d.cli("image", "verify", env.ref("cosigned/plain:1"), check=False)
        assert res.returncode == 125 and "signature" in res.stderr
    finally:
        env.set_policy({"default": [{"type": "insecureAcceptAnything"}]})


def test_a_project_policy_can_only_add_requirements(env: Env) -> None:
    d = env.daemon
    name = env.ref("proj/app:1")
    d.cli("tag", "busybox", name)
    d.cli("push", name)
    strict = env.work / "project.json"
    strict.write_text(json.dumps({"default": [{"type": "insecureAcceptAnything"}],
                                  "transports": {"docker": {
                                      f"{env.registry.host}/proj": [{"type": "reject"}]}}}))
    d.cli("image", "policy", "--set", str(strict))
    try:
        res = d.cli("pull", name, check=False)
        assert res.returncode == 125 and "project" in res.stderr
    finally:
        d.cli("image", "policy", "--unset")
    d.cli("pull", name)
    bad = env.work / "bad.json"
    bad.write_text(json.dumps({"default": [{"type": "signedBy", "keyType": "GPGKeys",
                                            "keyPath": "/etc/shadow"}]}))
    res = d.cli("image", "policy", "--set", str(bad), check=False)
    assert res.returncode == 125 and "keyData" in res.stderr
    dup = env.work / "dup.json"
    dup.write_text('{"default": [{"type": "reject"}], "default": []}')
    res = d.cli("image", "policy", "--set", str(dup), check=False)
    assert res.returncode == 125 and "default" in res.stderr


def test_skopeo_reads_what_berth_pushes(env: Env) -> None:
    d = env.daemon
    name = env.ref("interop/bb:1")
    d.cli("tag", "busybox", name)
    digest = d.cli("push", name).stdout.split("digest: ")[1].strip()
    out = env.work / "skopeo-out"
    subprocess.run(["skopeo", "copy", "--preserve-digests", "--src-tls-verify=false",
                    "--src-creds",
                    f"{env.registry.username}:{env.registry.password}",
                    f"docker://{name}", f"oci:{out}:x"], check=True, capture_output=True,
                   timeout=120, env={"PATH": "/usr/bin:/bin", "HOME": str(env.work)})
    index = json.loads((out / "index.json").read_text())
    assert index["manifests"][0]["digest"] == digest


def test_berth_pulls_what_skopeo_signed_and_pushed(env: Env, tmp_path: Path) -> None:
    """skopeo copy --sign-by writes a GPG signature to a lookaside dir; berthd reads that dir
    (its default lookaside) and accepts the image under a signedBy policy."""
    d = env.daemon
    layout = tmp_path / "layout"
    write_oci_layout(layout, "v1", [runnable_image("from-skopeo")])
    regd = tmp_path / "registries.d"
    regd.mkdir()
    (regd / "berth.yaml").write_text(
        f"default-docker:\n  lookaside-staging: file://{d.root / 'signatures'}\n")
    name, unsigned = env.ref("skopeo/signed:1"), env.ref("elsewhere/unsigned:1")
    for dest, sign in ((name, ["--sign-by", env.signer]), (unsigned, [])):
        subprocess.run(["skopeo", "--insecure-policy", "--registries.d", str(regd), "copy",
                        "--dest-tls-verify=false", "--dest-creds",
                        f"{env.registry.username}:{env.registry.password}", *sign,
                        f"oci:{layout}:v1", f"docker://{dest}"],
                       check=True, capture_output=True, timeout=120,
                       env={"PATH": "/usr/bin:/bin", "GNUPGHOME": str(env.gpg.path),
                            "HOME": str(tmp_path)})
    pub = tmp_path / "signer.gpg"
    pub.write_bytes(env.gpg.export(env.signer))
    env.set_policy({"default": [{"type": "reject"}], "transports": {"docker": {
        f"{env.registry.host}/skopeo": [{"type": "signedBy", "keyType": "GPGKeys",
                                         "keyPath": str(pub)}]}}})
    try:
        d.cli("pull", name)
        assert d.cli("run", "--rm", name, "/bin/busybox", "cat", "/etc/hello").stdout == \
            "hello from-skopeo\n"
        res = d.cli("pull", unsigned, check=False)  # the policy's default: reject
        assert res.returncode == 125 and "reject" in res.stderr.lower()
    finally:
        env.set_policy({"default": [{"type": "insecureAcceptAnything"}]})


def test_kill9_during_a_pull_leaves_nothing_half_stored(env: Env) -> None:
    d = env.daemon
    img = runnable_image("big", noise=60_000_000)
    push_built(env.registry, env.work, "big:1", img)
    puller = subprocess.Popen([str(BIN / "berth"), "pull", env.ref("big:1")], env=d.env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    partial = d.root / "blobs" / "tmp"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not any(partial.glob("*")):
        time.sleep(0.01)
    d.kill9()
    puller.communicate(timeout=30)
    for blob in (d.root / "blobs" / "sha256").iterdir():  # every stored blob is whole
        assert hashlib.sha256(blob.read_bytes()).hexdigest() == blob.name
    d.start()
    assert not any(partial.glob("*")), "temp files survived a restart"
    db = sqlite3.connect(d.root / "berth.db")
    try:  # the pull's action says it was cut short, rather than "running" forever
        states = db.execute("SELECT state, message FROM actions WHERE kind = 'image' AND "
                            "target = ?", (env.ref("big:1"),)).fetchall()
    finally:
        db.close()
    assert states and all(st == "error" and "interrupted" in msg for st, msg in states)
    d.cli("pull", env.ref("big:1"))
    assert d.cli("run", "--rm", env.ref("big:1"), "/bin/busybox", "cat", "/etc/hello") \
        .stdout == "hello big\n"


def test_pull_progress_is_streamed(env: Env) -> None:
    img = runnable_image("progress", noise=1_000_000)
    push_built(env.registry, env.work, "progress:1", img)
    events = list(env.daemon.client.images.pull(env.ref("progress:1")))
    statuses = {e.get("status") for e in events}
    assert {"resolved", "done"} <= statuses
    layer_events = [e for e in events if e.get("digest") in img.layer_digests()]
    assert layer_events and all("total" in e for e in layer_events)
    assert events[-1]["image"]["id"] == img.config_digest


def test_a_pull_is_an_action_to_poll_or_wait_on(env: Env) -> None:
    d = env.daemon
    push_built(env.registry, env.work, "async:1", runnable_image("async"))
    act = d.client.images.start_pull(env.ref("async:1"))
    assert act["kind"] == "image" and act["target"] == env.ref("async:1")
    done = d.client.action(act["id"], wait=True)
    assert done["state"] == "success" and done["result"]["image_id"].startswith("sha256:")
    bad = d.client.images.start_pull(env.ref("async:nope"))
    failed = d.client.action(bad["id"], wait=True)  # reading it works; its state tells
    assert failed["state"] == "error" and failed["error_status"] == 404
    assert "not found" in failed["message"]
    with pytest.raises(APIError) as exc:  # waiting through the pull request itself: its status
        d.client.transport.call("POST", "/v1/images/pull", {"wait": True},
                                body={"reference": env.ref("async:nope")})
    assert exc.value.status == 404


def test_only_admins_sign_with_the_hosts_keys(env: Env) -> None:
    d, admin = env.daemon, env.daemon.client
    admin.projects.create("signers")
    admin.users.create("mallory")
    admin.projects.set_member("signers", "mallory", "member")
    token = Client(d.host, project="signers").tokens.create("t", user="mallory")["token"]
    member = Client(d.host, token=token, project="signers")
    member.images.build_base("busybox", env.ref("signers/bb:1"))
    with pytest.raises(APIError) as exc:
        list(member.images.push(env.ref("signers/bb:1"), sign_by_sigstore_key="/etc/shadow"))
    assert exc.value.status == 403 and "admins" in exc.value.message
    with pytest.raises(APIError) as exc:
        member.images.sign(env.ref("signers/bb:1"), sign_by=env.signer)
    assert exc.value.status == 403


def test_a_create_that_pulls_answers_with_the_pull_action(env: Env) -> None:
    d = env.daemon
    push_built(env.registry, env.work, "cpull:1", runnable_image("cpull"))
    spec = {"image": env.ref("cpull:1"), "pull": "missing", "command": ["/bin/busybox", "true"]}
    answer = d.client.transport.call("POST", "/v1/containers", body=spec)
    act = answer["action"]
    assert act["kind"] == "image" and act["action"] == "pull"
    done = d.client.action(act["id"], wait=True)
    assert done["state"] == "success", done
    box = d.client.containers.get(done["result"]["container_id"])
    assert box["image"] == env.ref("cpull:1")
    # waiting: one call, the container in the answer (the image is there now: no pull)
    made = d.client.transport.call("POST", "/v1/containers", {"wait": True}, body=spec)
    assert made["container"]["id"] != box["id"]
    with pytest.raises(APIError) as exc:
        d.client.transport.call("POST", "/v1/containers", {"wait": True},
                                body={**spec, "image": env.ref("cpull:nope")})
    assert exc.value.status == 404 and "pulling" in exc.value.message
    for ref in (box["id"], made["container"]["id"]):
        d.client.containers.remove(ref, force=True)


def _layer_temps(d: Daemon) -> list[Path]:
    return [p for key in (d.root / "layers").iterdir() if key.is_dir()
            for p in key.glob(".tmp-*")]


def test_kill9_while_a_pulled_image_unpacks_then_run(env: Env) -> None:
    """The pull returns once its blobs are verified and recorded; the layers unpack after it.
    A kill -9 in the middle of that leaves no layer marked complete, and the first run
    unpacks what is missing."""
    d = env.daemon
    many = {f"many/d{i % 50}/f{i}": b"x" * 64 for i in range(6000)}
    img = build_image([{"bin/busybox": (BUSYBOX, 0o755), "etc/hello": b"hello late\n"},
                       many], label="late")
    push_built(env.registry, env.work, "late:1", img)
    d.cli("pull", env.ref("late:1"))
    deadline = time.monotonic() + 30
    while not _layer_temps(d) and time.monotonic() < deadline:
        time.sleep(0.002)
    assert _layer_temps(d), "no layer was being unpacked after the pull returned"
    d.kill9()
    d.start()
    assert not _layer_temps(d), "a half-unpacked layer survived a restart"
    assert d.cli("run", "--rm", env.ref("late:1"), "/bin/busybox", "sh", "-c",
                 "cat /etc/hello; ls /many/d7 | wc -l").stdout == "hello late\n120\n"


def test_a_layer_that_is_not_its_diff_id_fails_the_create_not_the_pull(env: Env) -> None:
    """Blobs are checked against their digests during the pull; each layer's uncompressed
    content against the config's diff_id when it is unpacked. A lie there refuses the
    container, names the layer, and leaves no container and no layer behind."""
    d = env.daemon
    honest = build_image([{"bin/busybox": (BUSYBOX, 0o755)}, {"etc/x": b"x\n"}])
    wrong = "sha256:" + "ab" * 32
    liar = build_image([{"bin/busybox": (BUSYBOX, 0o755)}, {"etc/x": b"x\n"}], label="liar",
                       claimed_diff_ids=[honest.layers[0][1], wrong])
    push_built(env.registry, env.work, "liar:1", liar)
    before = d.cli("ps", "-aq").stdout
    d.cli("pull", env.ref("liar:1"))
    res = d.cli("run", "--rm", env.ref("liar:1"), "/bin/busybox", "true", check=False)
    assert res.returncode == 125 and "diff_id mismatch" in res.stderr, res.stderr
    assert liar.layer_digests()[1] in res.stderr
    assert d.cli("ps", "-aq").stdout == before
    assert not list((d.root / "layers").glob(f"*/{wrong[7:]}"))
    deadline = time.monotonic() + 10
    while _layer_temps(d) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _layer_temps(d)
    d.cli("rmi", env.ref("liar:1"))

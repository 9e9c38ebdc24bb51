"""The signature policy in force: the host's policy.json plus each project's stricter one.

Every pull is checked before a layer is downloaded; the signatures that were checked are kept
(in the blob store, listed on the image) so that every container create re-checks them against
the policy in force then, without the network. A project's policy can only add requirements:
an image must satisfy the host's policy and the project's.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from berth.errors import InvalidArgument, PolicyDenied
from berth.image.blobs import BlobStore
from berth.image.reference import Reference, parse_reference
from berth.image.signature import (
    Policy,
    RegistriesConfig,
    SigstoreSig,
    StaticSignatures,
    check_image,
    load_policy,
    load_registries_dir,
    parse_policy,
    read_signatures,
)
from berth.image.signature.strictjson import load_strict
from berth.service.context import Context
from berth.store.db import Store
from berth.store.models import Image, Project

log = logging.getLogger("berth.trust")
ACCEPT_ANYTHING = b'{"default": [{"type": "insecureAcceptAnything"}]}'
MAX_POLICY = 1 << 20
_KEY_FILES = {"keyPath", "keyPaths"}


def _refuse_key_files(doc: Any) -> None:
    """A project's policy must carry its keys inline: a key path would let a project member
    make the daemon read any file on its host. Iterative, and a node's path is a link to its
    parent's, spelled out only for the error: the strict reader admits nesting deeper than a
    request's remaining stack, and a path string per node would be quadratic in depth."""
    Where = tuple[Any, str] | None  # (parent's Where, this step) -- a linked list
    stack: list[tuple[Any, Where]] = [(doc, None)]
    while stack:
        node, where = stack.pop()
        if isinstance(node, dict):
            for key, value in node.items():
                if key in _KEY_FILES:
                    raise InvalidArgument(f"{_spell(where)}.{key}: a project's policy must "
                                          "give keys as keyData (base64), not as files on the "
                                          "daemon's host")
                if isinstance(value, dict | list):
                    stack.append((value, (where, f".{key}")))
        elif isinstance(node, list):
            stack.extend((item, (where, f"[{i}]")) for i, item in enumerate(node)
                         if isinstance(item, dict | list))


def _spell(where: Any) -> str:
    steps: list[str] = []
    while where is not None:
        where, step = where
        steps.append(step)
    return "policy" + "".join(reversed(steps))


@dataclass
class FetchedSignatures:
    """A SignatureSource reading signatures lazily (only the kinds the policy asks for) and
    remembering what it read, so the image can keep them."""

    simple_fetch: Callable[[], list[bytes]]
    sigstore_fetch: Callable[[], list[SigstoreSig]]
    simple: list[bytes] | None = None
    sigstore: list[SigstoreSig] | None = None

    def simple_signatures(self) -> list[bytes]:
        if self.simple is None:
            self.simple = list(self.simple_fetch())
        return self.simple

    def sigstore_signatures(self) -> list[SigstoreSig]:
        if self.sigstore is None:
            self.sigstore = list(self.sigstore_fetch())
        return self.sigstore


class TrustService:
    def __init__(self, store: Store, blobs: BlobStore, policy_path: Path | None,
                 registries_d: Path | None, gpg_home: Path | None,
                 default_lookaside: Path | None = None) -> None:
        self.store = store
        self.blobs = blobs
        self.policy_path = policy_path
        self.registries_d = registries_d
        self.gpg_home = gpg_home
        # Where signatures go (and are read from) when registries.d names no lookaside.
        self.default_lookaside = default_lookaside
        self._host: tuple[tuple[float, int] | None, Policy] | None = None

    # -- policies -------------------------------------------------------------------------

    def host_policy(self) -> Policy:
        """The host's policy file, re-read when it changes; none at all accepts anything
        (as a fresh containers-policy.json does)."""
        path = self.policy_path
        try:
            st = os.stat(path) if path else None
            stamp = (st.st_mtime, st.st_size) if st else None
        except FileNotFoundError:
            stamp = None
        if self._host is None or self._host[0] != stamp:
            if stamp is None or path is None:
                policy = parse_policy(ACCEPT_ANYTHING, origin="the default host policy")
            else:
                policy = load_policy(path, origin=f"the host policy {path}")
            self._host = (stamp, policy)
        return self._host[1]

    def project_policy(self, ctx: Context) -> Policy | None:
        text = self._project_policy_text(ctx)
        if text is None:
            return None
        return parse_policy(text.encode(), origin=f"project {ctx.project_id}'s policy")

    def policies(self, ctx: Context) -> list[Policy]:
        project = self.project_policy(ctx)
        return [self.host_policy()] + ([project] if project else [])

    def _project_policy_text(self, ctx: Context) -> str | None:
        with self.store.session() as s:
            project = s.get(Project, ctx.project_id)
        return None if project is None else project.signature_policy

    def set_project_policy(self, ctx: Context, data: bytes | None) -> None:
        text = None
        if data is not None:
            doc = load_strict(data, "policy", MAX_POLICY)
            _refuse_key_files(doc)
            parse_policy(data, origin="policy")  # every other rule of the spec
            text = data.decode()
        with self.store.session() as s:
            s.get(Project, ctx.project_id).signature_policy = text

    def describe(self, ctx: Context) -> dict[str, Any]:
        host: Any = None
        if self.policy_path and self.policy_path.is_file():
            try:
                host = json.loads(self.policy_path.read_bytes()[:MAX_POLICY])
            except ValueError:
                host = "unreadable"
        text = self._project_policy_text(ctx)
        return {"host_policy_path": str(self.policy_path) if self.policy_path else None,
                "host": host if host is not None else json.loads(ACCEPT_ANYTHING),
                "project": json.loads(text) if text else None}

    # -- where signatures live ------------------------------------------------------------

    def registries(self) -> RegistriesConfig:
        if self.registries_d and self.registries_d.is_dir():
            return load_registries_dir(self.registries_d)
        return RegistriesConfig()

    def lookaside(self, ref: Reference, write: bool = False) -> str | None:
        base = self.registries().lookaside_base(ref, write=write)
        if base is None and self.default_lookaside is not None:
            base = self.default_lookaside.as_uri()
        return base

    def simple_fetcher(self, ref: Reference, digest: str) -> Callable[[], list[bytes]]:
        def fetch() -> list[bytes]:
            base = self.lookaside(ref)
            return [] if base is None else read_signatures(base, ref, digest)

        return fetch

    # -- checks ---------------------------------------------------------------------------

    def check(self, ctx: Context, ref: Reference, manifest: bytes, digest: str,
              source: FetchedSignatures | StaticSignatures) -> None:
        check_image(self.policies(ctx), ref, manifest, digest, source)

    def keep(self, source: FetchedSignatures) -> list[dict[str, Any]]:
        """Store the signatures that were read, for the image record."""
        out: list[dict[str, Any]] = []
        for sig in source.simple or []:
            out.append({"kind": "simple", "blob": self.blobs.put_bytes(sig)[0]})
        for sig in source.sigstore or []:
            out.append({"kind": "sigstore", "blob": self.blobs.put_bytes(sig.payload)[0],
                        "signature": sig.signature_b64})
        return out

    def stored(self, image: Image) -> StaticSignatures:
        sigs = StaticSignatures()
        for rec in image.signatures or []:
            data = self.blobs.read_bytes(rec["blob"])
            if rec["kind"] == "simple":
                sigs.simple.append(data)
            elif rec["kind"] == "sigstore":
                sigs.sigstore.append(SigstoreSig(data, rec["signature"]))
        return sigs

    def admit(self, ctx: Context, image: Image) -> None:
        """At create: a pulled image must still satisfy the policy in force now, on the
        signatures it was pulled with. Built and imported images are the host's own."""
        if not image.source or not image.source_digest:
            return
        ref, digest = parse_reference(image.source), image.source_digest
        try:
            manifest = self.blobs.read_bytes(digest)
        except Exception as exc:  # noqa: BLE001 - a missing blob is a refusal, not a 500
            raise PolicyDenied(f"image {image.source}: its manifest is gone ({exc}); pull "
                               "it again") from None
        self.check(ctx, ref, manifest, digest, self.stored(image))

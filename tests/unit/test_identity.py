"""Identity: tokens are checked by hash, shown once; projects get distinct uid slots."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from berth.errors import Conflict, InvalidArgument, Unauthorized
from berth.service.identity import IdentityService
from berth.store.db import DEFAULT_PROJECT, Store


@pytest.fixture
def identity(tmp_path: Path) -> IdentityService:
    return IdentityService(Store(f"sqlite:///{tmp_path / 'berth.db'}"))


def test_concurrent_project_creates_get_distinct_slots(identity: IdentityService) -> None:
    errors: list[BaseException] = []

    def make(i: int) -> None:
        try:
            identity.create_project(f"p{i}")
        except BaseException as e:  # noqa: BLE001 - collected for the assertion
            errors.append(e)

    threads = [threading.Thread(target=make, args=(i,)) for i in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    slots = [identity.project(f"p{i}")["userns_slot"] for i in range(10)]
    assert sorted(slots) == list(range(1, 11))
    with pytest.raises(Conflict):
        identity.create_project("p1")


def test_tokens_hashed_shown_once_revocable_and_expiring(identity: IdentityService,
                                                         tmp_path: Path) -> None:
    path = identity.bootstrap(tmp_path / "admin-token")
    assert path is not None and identity.bootstrap(tmp_path / "again") is None
    secret = Path(path).read_text().strip()
    assert identity.authenticate(secret).is_admin
    user = identity.create_user("alice")
    identity.set_role(user["id"], DEFAULT_PROJECT, "reader")
    made = identity.create_token(user["id"], DEFAULT_PROJECT, "ci")
    assert made["token"].startswith("berth_") and "token" not in identity.tokens(
        user["id"], None)[0]
    who = identity.authenticate(made["token"])
    assert who.user == "alice" and not who.is_admin
    assert identity.context(who, None, None).role == "reader"
    tampered = made["token"][:-2] + ("AA" if not made["token"].endswith("AA") else "BB")
    for bad in (tampered, "berth_0000000000000000_" + "x" * 43, "nonsense"):
        with pytest.raises(Unauthorized):
            identity.authenticate(bad)
    identity.revoke(made["id"])
    with pytest.raises(Unauthorized, match="revoked"):
        identity.authenticate(made["token"])
    with pytest.raises(InvalidArgument):
        identity.create_token(user["id"], DEFAULT_PROJECT, "x", expires_in=-1)
    with pytest.raises(InvalidArgument):
        identity.create_project("../etc")

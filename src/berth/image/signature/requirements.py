"""Policy requirement objects (containers-policy.json(5)) and their strict parsing.

Key material named by a requirement is read when the policy is parsed, so a policy with a
missing or unreadable key is refused up front instead of denying every pull later.
"""

from __future__ import annotations

import base64
import binascii
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes

from berth.errors import InvalidArgument

from .common import MAX_KEY_FILE
from .identity import MatchRepoDigestOrExact, SignedIdentity, parse_signed_identity
from .sigstore import load_public_key
from .strictjson import expect_object, expect_str, kind_of


class Requirement:
    """One entry of a policy's requirement list; all entries must be satisfied."""

    type_name = ""


@dataclass(frozen=True)
class InsecureAcceptAnything(Requirement):
    type_name = "insecureAcceptAnything"


@dataclass(frozen=True)
class Reject(Requirement):
    type_name = "reject"


@dataclass(frozen=True)
class SignedBy(Requirement):
    """A "simple signing" (GPG) signature by one of the keys in ``keyrings``."""

    type_name = "signedBy"
    keyrings: tuple[bytes, ...]  # each a GPG keyring (binary or armored), imported as given
    signed_identity: SignedIdentity
    key_source: str  # where the keys came from, for messages


@dataclass(frozen=True)
class SigstoreSigned(Requirement):
    """A cosign key-based signature by one of ``public_keys``."""

    type_name = "sigstoreSigned"
    public_keys: tuple[PublicKeyTypes, ...]
    signed_identity: SignedIdentity
    key_source: str


_UNSUPPORTED_SIGSTORE = ("fulcio", "rekorPublicKeyPath", "rekorPublicKeyPaths",
                         "rekorPublicKeyData", "rekorPublicKeyDatas", "pki")


def _read_key_file(value: Any, where: str, base_dir: Path | None) -> tuple[bytes, str]:
    text = expect_str(value, where)
    path = Path(text)
    if not path.is_absolute():
        if base_dir is None:
            raise InvalidArgument(f"{where}: key path must be absolute: {text!r}")
        path = Path(base_dir) / path
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        with os.fdopen(fd, "rb") as f:
            data = f.read(MAX_KEY_FILE + 1)
    except OSError as e:
        raise InvalidArgument(f"{where}: cannot read key file {str(path)!r}: "
                              f"{e.strerror or e}") from None
    except ValueError as e:  # a NUL byte or a lone surrogate: no such path can exist
        raise InvalidArgument(f"{where}: invalid key path {str(path)!r}: {e}") from None
    if len(data) > MAX_KEY_FILE:
        raise InvalidArgument(f"{where}: key file {str(path)!r} is larger than "
                              f"{MAX_KEY_FILE} bytes")
    if not data:
        raise InvalidArgument(f"{where}: key file {str(path)!r} is empty")
    return data, str(path)


def _decode_key_data(value: Any, where: str) -> bytes:
    text = expect_str(value, where)
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidArgument(f"{where}: not valid base64") from None
    if not data:
        raise InvalidArgument(f"{where}: decodes to nothing")
    if len(data) > MAX_KEY_FILE:
        raise InvalidArgument(f"{where}: key data is larger than {MAX_KEY_FILE} bytes")
    return data


def _string_list(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise InvalidArgument(f"{where}: expected an array of strings, got {kind_of(value)}")
    if not value:
        raise InvalidArgument(f"{where}: must not be empty")
    return value


def _load_keys(obj: dict[str, Any], where: str, base_dir: Path | None,
               choices: tuple[str, ...]) -> tuple[list[bytes], str]:
    """Read whichever one of the key fields in ``choices`` is present."""
    given = [k for k in choices if k in obj]
    if len(given) != 1:
        names = ", ".join(choices[:-1]) + " or " + choices[-1]
        what = "none" if not given else " and ".join(given)
        raise InvalidArgument(f"{where}: exactly one of {names} is required (got {what})")
    field = given[0]
    if field == "keyPath":
        data, path = _read_key_file(obj[field], f"{where}.keyPath", base_dir)
        return [data], path
    if field == "keyPaths":
        items = _string_list(obj[field], f"{where}.keyPaths")
        loaded = [_read_key_file(v, f"{where}.keyPaths[{i}]", base_dir)
                  for i, v in enumerate(items)]
        return [d for d, _ in loaded], ", ".join(p for _, p in loaded)
    if field == "keyData":
        return [_decode_key_data(obj[field], f"{where}.keyData")], "keyData"
    items = _string_list(obj[field], f"{where}.{field}")
    return ([_decode_key_data(v, f"{where}.{field}[{i}]") for i, v in enumerate(items)],
            field)


def _identity(obj: dict[str, Any], where: str) -> SignedIdentity:
    if "signedIdentity" not in obj:
        return MatchRepoDigestOrExact()
    return parse_signed_identity(obj["signedIdentity"], f"{where}.signedIdentity")


def _signed_by(obj: dict[str, Any], where: str, base_dir: Path | None) -> SignedBy:
    expect_object(obj, where, required={"type", "keyType"},
                  optional={"keyPath", "keyPaths", "keyData", "signedIdentity"})
    key_type = expect_str(obj["keyType"], f"{where}.keyType")
    if key_type != "GPGKeys":
        raise InvalidArgument(f"{where}.keyType: unsupported key type {key_type!r} "
                              "(only \"GPGKeys\" is supported)")
    keys, source = _load_keys(obj, where, base_dir, ("keyPath", "keyPaths", "keyData"))
    return SignedBy(tuple(keys), _identity(obj, where), source)


def _sigstore_signed(obj: dict[str, Any], where: str, base_dir: Path | None) -> SigstoreSigned:
    for key in _UNSUPPORTED_SIGSTORE:
        if key in obj:
            raise InvalidArgument(f"{where}.{key}: not supported by Berth: only key-based "
                                  "sigstore verification (keyPath/keyData) is implemented")
    expect_object(obj, where, required={"type"},
                  optional={"keyPath", "keyPaths", "keyData", "keyDatas", "signedIdentity"})
    keys, source = _load_keys(obj, where, base_dir,
                              ("keyPath", "keyPaths", "keyData", "keyDatas"))
    public_keys = []
    for i, pem in enumerate(keys):
        try:
            public_keys.append(load_public_key(pem))
        except ValueError as e:
            raise InvalidArgument(f"{where}: key {i + 1} from {source}: {e}") from None
    return SigstoreSigned(tuple(public_keys), _identity(obj, where), source)


def parse_requirement(value: Any, where: str, base_dir: Path | None) -> Requirement:
    """Parse one requirement object; ``where`` is its path in the policy, for messages."""
    if not isinstance(value, dict):
        raise InvalidArgument(f"{where}: expected a requirement object, got {kind_of(value)}")
    if "type" not in value:
        raise InvalidArgument(f"{where}: missing field 'type'")
    kind = expect_str(value["type"], f"{where}.type")
    if kind == "insecureAcceptAnything":
        expect_object(value, where, required={"type"})
        return InsecureAcceptAnything()
    if kind == "reject":
        expect_object(value, where, required={"type"})
        return Reject()
    if kind == "signedBy":
        return _signed_by(value, where, base_dir)
    if kind == "sigstoreSigned":
        return _sigstore_signed(value, where, base_dir)
    raise InvalidArgument(f"{where}.type: unknown requirement type {kind!r}")


def parse_requirements(value: Any, where: str, base_dir: Path | None) -> list[Requirement]:
    """Parse a non-empty requirement list."""
    if not isinstance(value, list):
        raise InvalidArgument(f"{where}: expected an array of requirements, "
                              f"got {kind_of(value)}")
    if not value:
        raise InvalidArgument(f"{where}: must not be empty (use "
                              "[{\"type\": \"insecureAcceptAnything\"}] to accept anything)")
    return [parse_requirement(v, f"{where}[{i}]", base_dir) for i, v in enumerate(value)]

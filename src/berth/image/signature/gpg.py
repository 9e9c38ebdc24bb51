"""The real ``gpg`` binary, driven through ``--status-fd`` in a private, throw-away home.

Verification imports only the policy's trusted keys into a fresh GNUPGHOME (no agent, no
dirmngr, no key fetching), so a signature can only verify against those keys. A signature is
authenticated from gpg's machine-readable status lines — exactly one GOODSIG and VALIDSIG from a
trusted primary key, no EXPKEYSIG/EXPSIG/REVKEYSIG — before its content is ever read.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from berth.errors import BerthError, InvalidArgument, Unsupported

from .common import MAX_SIGNATURE_SIZE, SignatureRejected

GPG = "gpg"
TIMEOUT = 30.0
_FPR = re.compile(r"[0-9A-F]{40}|[0-9A-F]{64}")
_BAD_STATUS = {"BEGIN_DECRYPTION", "DECRYPTION_FAILED", "ENC_TO", "NODATA", "BADMDC",
               "DECRYPTION_INFO"}
_ERRSIG_NO_PUBKEY = "9"


@dataclass(frozen=True)
class GpgVerification:
    plaintext: bytes
    fingerprint: str  # the signing key's primary fingerprint


def _env(home: str) -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C", "HOME": home,
            "GNUPGHOME": home}


def _run(home: str, args: list[str], data: bytes | None,
         timeout: float = TIMEOUT) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run([GPG, "--homedir", home, "--batch", "--no-tty", *args],
                              input=data if data is not None else b"", capture_output=True,
                              timeout=timeout, env=_env(home), check=False)
    except FileNotFoundError:
        raise Unsupported("gpg is not installed on this host: GPG signatures cannot be "
                          "checked or created") from None
    except subprocess.TimeoutExpired:
        raise BerthError(f"gpg did not finish within {timeout:.0f}s") from None


def parse_status(stdout: bytes) -> list[tuple[str, list[str]]]:
    """gpg's ``[GNUPG:] KEYWORD args...`` lines as (keyword, args)."""
    out = []
    for raw in stdout.decode("utf-8", "replace").splitlines():
        if raw.startswith("[GNUPG:] "):
            parts = raw[9:].split(" ")
            out.append((parts[0], parts[1:]))
    return out


def _last_error(stderr: bytes) -> str:
    """gpg's last complaint, printable and short (it may quote untrusted input)."""
    lines = [line for line in stderr.decode("utf-8", "replace").splitlines() if line.strip()]
    text = lines[-1].removeprefix("gpg: ") if lines else "no message"
    return "".join(c if c.isprintable() else "?" for c in text)[:200]


def _judge(proc: subprocess.CompletedProcess[bytes], trusted: frozenset[str]) -> str:
    """The fingerprint of the one good signature, or SignatureRejected with the reason."""
    status = parse_status(proc.stdout)
    keywords = [k for k, _ in status]
    for keyword, reason in (("EXPKEYSIG", "key expired"), ("REVKEYSIG", "key revoked"),
                            ("EXPSIG", "signature expired"),
                            ("BADSIG", "invalid signature (does not match its content)")):
        if keyword in keywords:
            raise SignatureRejected(reason)
    for keyword, args in status:
        if keyword == "ERRSIG":
            if len(args) > 5 and args[5] == _ERRSIG_NO_PUBKEY:
                raise SignatureRejected(f"no signature from a trusted key (signed by unknown "
                                        f"key {args[0]})")
            raise SignatureRejected("signature could not be checked")
    if proc.returncode != 0 or "FAILURE" in keywords:  # e.g. --max-output exceeded
        raise SignatureRejected(f"gpg refused the signature: {_last_error(proc.stderr)}")
    if _BAD_STATUS.intersection(keywords) or "NEWSIG" not in keywords:
        raise SignatureRejected("not an OpenPGP signed message")
    if keywords.count("NEWSIG") != 1 or keywords.count("PLAINTEXT") != 1:
        raise SignatureRejected("expected exactly one signature over one payload")
    if keywords.count("GOODSIG") != 1 or keywords.count("VALIDSIG") != 1:
        raise SignatureRejected("signature was not verified")
    args = next(a for k, a in status if k == "VALIDSIG")
    if len(args) < 9 or args[8] != "00":  # a binary document signature, as skopeo makes
        raise SignatureRejected("unexpected OpenPGP signature class")
    primary = args[9] if len(args) >= 10 else args[0]
    if primary not in trusted:
        raise SignatureRejected("no signature from a trusted key")
    return primary


class GpgKeyring:
    """A private GNUPGHOME holding only trusted public keys; close() removes it."""

    def __init__(self, keyrings: Sequence[bytes]) -> None:
        self.home = tempfile.mkdtemp(prefix="berth-gpg-")
        self._count = 0
        try:
            for data in keyrings:
                _run(self.home, ["--no-autostart", "--disable-dirmngr", "--import"], data)
            self.fingerprints = self._list_primary_fingerprints()
        except BaseException:
            self.close()
            raise

    def _list_primary_fingerprints(self) -> frozenset[str]:
        proc = _run(self.home, ["--no-autostart", "--with-colons", "--fixed-list-mode",
                                "--list-keys"], None)
        fprs, after_pub = set(), False
        for line in proc.stdout.decode("utf-8", "replace").splitlines():
            fields = line.split(":")
            if fields[0] == "pub":
                after_pub = True
            elif fields[0] == "fpr" and after_pub and len(fields) > 9:
                fprs.add(fields[9])
                after_pub = False
            elif fields[0] == "sub":
                after_pub = False
        return frozenset(fprs)

    def verify(self, signature: bytes) -> GpgVerification:
        """Authenticate ``signature`` (a signed OpenPGP message) and return its content."""
        if not self.fingerprints:
            raise SignatureRejected("the policy's keyring holds no usable public key")
        if len(signature) > MAX_SIGNATURE_SIZE:
            raise SignatureRejected(f"signature larger than {MAX_SIGNATURE_SIZE} bytes")
        self._count += 1
        out = Path(self.home) / f"payload-{self._count}"
        try:
            proc = _run(self.home, ["--no-autostart", "--disable-dirmngr",
                                    "--no-auto-key-retrieve", "--trust-model", "always",
                                    "--max-output", str(MAX_SIGNATURE_SIZE), "--status-fd", "1",
                                    "--output", str(out), "--decrypt"], signature)
            fingerprint = _judge(proc, self.fingerprints)
            with open(out, "rb") as f:
                plaintext = f.read(MAX_SIGNATURE_SIZE + 1)
            if len(plaintext) > MAX_SIGNATURE_SIZE:
                raise SignatureRejected("signature payload is too large")
            return GpgVerification(plaintext, fingerprint)
        finally:
            out.unlink(missing_ok=True)

    def close(self) -> None:
        shutil.rmtree(self.home, ignore_errors=True)

    def __enter__(self) -> GpgKeyring:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def gpg_sign(data: bytes, fingerprint: str, gnupg_home: Path | str, *,
             passphrase_file: Path | str | None = None, timeout: float = TIMEOUT) -> bytes:
    """A binary signed OpenPGP message (``gpg --sign``, not detached) of ``data``."""
    fpr = fingerprint.upper()
    if not _FPR.fullmatch(fpr):
        raise InvalidArgument(f"signing key must be a full fingerprint, got {fingerprint!r}")
    home = str(gnupg_home)
    with tempfile.TemporaryDirectory(prefix="berth-sign-") as tmp:
        out = Path(tmp) / "signature"
        args = ["--status-fd", "1", "--disable-dirmngr", "--local-user", fpr,
                "--output", str(out)]
        if passphrase_file is not None:
            args += ["--pinentry-mode", "loopback", "--passphrase-file", str(passphrase_file)]
        proc = _run(home, [*args, "--sign"], data, timeout)
        created = [a for k, a in parse_status(proc.stdout) if k == "SIG_CREATED"]
        if proc.returncode != 0 or len(created) != 1 or not out.exists():
            raise BerthError(f"gpg could not sign with key {fpr}: {_last_error(proc.stderr)}")
        return out.read_bytes()

"""A throw-away GnuPG home for tests that sign or verify with real gpg."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path


class GpgHome:
    """A throw-away GNUPGHOME (short path: gpg-agent's socket lives in it)."""

    def __init__(self) -> None:
        self.path = Path(tempfile.mkdtemp(prefix="bsg-", dir="/tmp"))

    def run(self, *args: str, data: bytes = b"", faked_time: str | None = None,
            check: bool = True) -> subprocess.CompletedProcess[bytes]:
        cmd = ["gpg", "--homedir", str(self.path), "--batch", "--no-tty"]
        if faked_time:
            cmd += ["--faked-system-time", faked_time]
        return subprocess.run([*cmd, *args], input=data, capture_output=True, timeout=60,
                              check=check)

    def gen_key(self, uid: str, *, expire: str = "1y", faked_time: str | None = None) -> str:
        out = self.run("--status-fd", "1", "--pinentry-mode", "loopback", "--passphrase", "",
                       "--quick-gen-key",
                       uid, "ed25519", "sign", expire, faked_time=faked_time).stdout.decode()
        return next(line.split()[3] for line in out.splitlines() if " KEY_CREATED " in line)

    def add_signing_subkey(self, fpr: str) -> None:
        self.run("--pinentry-mode", "loopback", "--passphrase", "", "--quick-add-key", fpr,
                 "ed25519", "sign", "1y")

    def export(self, fpr: str) -> bytes:
        return self.run("--export", fpr).stdout

    def sign(self, data: bytes, *fprs: str, mode: str = "--sign",
             faked_time: str | None = None) -> bytes:
        users = [arg for fpr in fprs for arg in ("--local-user", fpr)]
        return self.run(*users, mode, "--output", "-", data=data, faked_time=faked_time).stdout

    def revoke(self, fpr: str) -> None:
        cert = (self.path / "openpgp-revocs.d" / f"{fpr}.rev").read_text()
        self.run("--import", data=cert.replace(":-----BEGIN", "-----BEGIN").encode())

    def close(self) -> None:
        subprocess.run(["gpgconf", "--homedir", str(self.path), "--kill", "gpg-agent"],
                       capture_output=True, timeout=30, check=False)
        shutil.rmtree(self.path, ignore_errors=True)

"""The container's root filesystem (an overlay over the image layers) and its /etc files."""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import hashlib
import os
import re
from pathlib import Path

from berth.errors import RuntimeFailure
from berth.runtime.base import DnsSettings

MNT_DETACH = 2
MS_NOSUID, MS_NODEV, MS_NOEXEC = 2, 4, 8
NO_DNS = DnsSettings()
RESOLV_SUM = "resolv.conf.sha256"  # what Berth last wrote there: an edit since is kept
_libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)


def _check(rc: int, what: str) -> None:
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def overlay_options(layers: list[Path], upper: Path, work: Path, empty_lower: Path) -> str:
    """spec.layers is lowest first; overlayfs wants the topmost lower dir first."""
    lowers = [str(p) for p in reversed(layers)] or [str(empty_lower)]
    for path in [*lowers, str(upper), str(work)]:
        if any(c in path for c in ",:\\"):
            raise RuntimeFailure(f"layer path not usable in overlay options: {path}")
    return f"lowerdir={':'.join(lowers)},upperdir={upper},workdir={work}"


def mount_overlay(target: Path, options: str) -> None:
    if len(options) >= 4096:  # mount(2) copies at most one page of options
        raise RuntimeFailure("too many image layers for one overlay mount")
    rc = _libc.mount(b"overlay", os.fsencode(target), b"overlay", 0, options.encode())
    try:
        _check(rc, f"mount overlay on {target}")
    except OSError as e:
        raise RuntimeFailure(str(e)) from e


def mount_shm(target: Path, size: int, owner: int) -> None:
    """A /dev/shm kept on the host (others join it): a tmpfs like the private one, its root
    the container root's."""
    if mounted_at(target):  # a re-adopted or re-made container's, already there
        return
    options = f"mode=1777,size={size},uid={owner},gid={owner}"
    rc = _libc.mount(b"shm", os.fsencode(target), b"tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
                     options.encode())
    try:
        _check(rc, f"mount /dev/shm's tmpfs on {target}")
    except OSError as e:
        raise RuntimeFailure(str(e)) from e


def mount_points(mountinfo: str | None = None) -> set[str]:
    if mountinfo is None:
        mountinfo = Path("/proc/self/mountinfo").read_text()
    # Field 5 is the mount point, with spaces etc. octal-escaped.
    return {_unescape(fields[4]) for fields in map(str.split, mountinfo.splitlines())
            if len(fields) > 4}


def mounted_at(target: Path, mountinfo: str | None = None) -> bool:
    return str(target) in mount_points(mountinfo)


def _unescape(field: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as \ooo (octal).
    if "\\" not in field:
        return field
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def unmount(target: Path) -> None:
    """Unmount every mount stacked on target; lazily when it is still busy."""
    for _ in range(16):
        if not mounted_at(target):
            return
        if _libc.umount2(os.fsencode(target), 0) == 0:
            continue
        err = ctypes.get_errno()
        if err == errno.EBUSY:
            _check(_libc.umount2(os.fsencode(target), MNT_DETACH), f"umount {target}")
        elif err in (errno.EINVAL, errno.ENOENT):
            return
        else:
            raise RuntimeFailure(f"umount {target}: {os.strerror(err)}")


def hosts_names(hostname: str, domainname: str = "") -> str:
    """The names /etc/hosts gives the container's own address, as Docker writes them: its
    name (with its domain name: hostname -d reads it there), then the first label alone
    when the name is dotted (web.example.com web)."""
    full = f"{hostname}.{domainname}" if domainname else hostname
    return " ".join(dict.fromkeys([full, hostname, hostname.partition(".")[0]]))


def hosts_file(names: str, addresses: list[str] | None = None) -> str:
    """names: the container's own (hosts_names)."""
    own = "".join(f"{a}\t{names}\n" for a in addresses or [])
    return own + ("127.0.0.1\tlocalhost\n"
            "::1\tlocalhost ip6-localhost ip6-loopback\n"
            "fe00::0\tip6-localnet\n"
            "ff00::0\tip6-mcastprefix\n"
            "ff02::1\tip6-allnodes\n"
            "ff02::2\tip6-allrouters\n"
            + ("" if addresses else f"127.0.1.1\t{names}\n"))


def resolv_conf(host_text: str, host_network: bool) -> str:
    """The host's resolv.conf; without the host's network a loopback resolver is unreachable,
    so such nameserver lines are dropped (Docker does the same)."""
    if host_network:
        return host_text
    lines = [line for line in host_text.splitlines()
             if not (line.split()[:1] == ["nameserver"] and _is_loopback(line.split()[1:2]))]
    return "\n".join(lines) + "\n"


def _is_loopback(addr: list[str]) -> bool:
    return bool(addr) and (addr[0].startswith("127.") or addr[0] == "::1")


def own_resolv_conf(host_text: str, nameservers: list[str]) -> str:
    """On bridge networks: the networks' DNS responders (they forward the rest to the host's
    resolvers), the host's search domains, ndots:0 as Docker writes it."""
    search = [line for line in host_text.splitlines() if line.split()[:1] == ["search"]]
    lines = [f"nameserver {ns}" for ns in dict.fromkeys(nameservers)]
    return "\n".join([*lines, *search[-1:], "options ndots:0"]) + "\n"


def write_etc_files(cdir: Path, hostname: str, host_network: bool,
                    addresses: list[str] | None = None,
                    nameservers: list[str] | None = None, *,
                    extra_hosts: list[tuple[str, str]] | None = None,
                    dns: DnsSettings = NO_DNS, domainname: str = "") -> dict[str, Path]:
    """Write hosts, hostname and resolv.conf into the container dir; map container paths to them.
    World-readable so that a container root mapped to an unprivileged host uid can read them."""
    extra = "".join(f"{address}\t{name}\n" for address, name in extra_hosts or [])
    contents = {
        "/etc/hosts": ("hosts", hosts_file(hosts_names(hostname, domainname), addresses)
                       + extra),
        "/etc/hostname": ("hostname", hostname + "\n"),
        "/etc/resolv.conf": ("resolv.conf", _resolv_for(host_network, nameservers, dns)),
    }
    files = {}
    for target, (name, text) in contents.items():
        path = cdir / name
        path.write_text(text)
        path.chmod(0o644)
        files[target] = path
    _remember(cdir, contents["/etc/resolv.conf"][1])
    return files


def update_network_files(cdir: Path, hostname: str, addresses: list[str],
                         nameservers: list[str], dns: DnsSettings = NO_DNS,
                         domainname: str = "") -> None:
    """A running container joined or left a network: its own lines in /etc/hosts follow (the
    rest, a user's lines too, stay), and resolv.conf follows unless someone changed it since
    Berth wrote it (as Docker does). Written in place: the container sees these very files."""
    hosts = cdir / "hosts"
    try:
        old = hosts.read_text()
    except FileNotFoundError:
        return  # released meanwhile
    new = refresh_hosts(old, hosts_names(hostname, domainname), addresses)
    if new != old:
        rewrite_in_place(hosts, new)
    resolv = cdir / "resolv.conf"
    try:
        current = resolv.read_bytes()
        written = (cdir / RESOLV_SUM).read_text().split()
    except FileNotFoundError:
        return
    # Blank lines at the end may be a rewrite's padding that a kill left (rewrite_in_place).
    current = current.rstrip(b"\n") + b"\n"
    if hashlib.sha256(current).hexdigest() not in written:
        return  # edited inside the container: theirs now
    text = _resolv_for(False, nameservers, dns)
    # Both sums first: a kill before the write leaves the old text, still known as Berth's.
    _remember(cdir, text, current.decode())
    rewrite_in_place(resolv, text)
    _remember(cdir, text)


def rewrite_in_place(path: Path, text: str) -> None:
    """Replace a bind-mounted file's text (a rename would not reach the container): one
    write of the new text, padded with newlines to the old length, then the truncate. A
    kill between the two leaves blank lines at its end, never a tail of the old text."""
    data = text.encode()
    fd = os.open(path, os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        padding = max(0, os.fstat(fd).st_size - len(data))
        os.pwrite(fd, data + b"\n" * padding, 0)
        os.ftruncate(fd, len(data))
    finally:
        os.close(fd)


def refresh_hosts(text: str, names: str, addresses: list[str]) -> str:
    """``text`` with its own-address lines (as hosts_file writes them) for ``addresses``."""
    own = {f"{a}\t{names}" for a in addresses}
    kept = [line for line in text.splitlines()
            if not _own_line(line, names) or line in own]
    missing = [f"{a}\t{names}" for a in addresses if f"{a}\t{names}" not in kept]
    lines = missing + kept
    if not addresses:
        lines.append(f"127.0.1.1\t{names}")
    return "\n".join(lines) + "\n"


def _own_line(line: str, names: str) -> bool:
    """An ``ADDRESS<tab>NAMES`` line naming the container: one of Berth's own."""
    addr, tab, name = line.partition("\t")
    return bool(tab) and name == names and addr.count(".") == 3 and \
        all(p.isdigit() for p in addr.split("."))


def _resolv_for(host_network: bool, nameservers: list[str] | None,
                dns: DnsSettings = NO_DNS) -> str:
    """On a bridge network: its DNS (which forwards other names to dns.servers when given);
    else dns.servers, or the host's usable ones. dns.search and dns.options replace the
    host's (a search of "." means none)."""
    try:
        host_resolv = Path("/etc/resolv.conf").read_text()
    except OSError:
        host_resolv = ""
    base = own_resolv_conf(host_resolv, nameservers) if nameservers else \
        "".join(f"nameserver {ns}\n" for ns in dns.servers) if dns.servers else \
        resolv_conf(host_resolv, host_network)
    lines = base.splitlines()
    if dns.search:
        lines = [x for x in lines if x.split()[:1] not in (["search"], ["domain"])]
        if dns.search != (".",):
            lines.append("search " + " ".join(d for d in dns.search if d != "."))
    if dns.options:
        lines = [x for x in lines if x.split()[:1] != ["options"]]
        lines.append("options " + " ".join(dns.options))
    return "\n".join(lines) + "\n"


def _remember(cdir: Path, *resolv_texts: str) -> None:
    """The sums of the resolv.conf texts Berth wrote (replaced whole: a rename)."""
    sums = "".join(hashlib.sha256(t.encode()).hexdigest() + "\n" for t in resolv_texts)
    tmp = cdir / (RESOLV_SUM + ".tmp")
    tmp.write_text(sums)
    os.replace(tmp, cdir / RESOLV_SUM)

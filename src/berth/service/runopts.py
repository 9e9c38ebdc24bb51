"""A container's extra /etc/hosts lines, DNS settings, rlimits and supplementary groups
(docker run's --add-host, --dns, --dns-search, --dns-option, --ulimit, --group-add): the
request's shapes and their checks."""

from __future__ import annotations

import ipaddress
import re

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from berth.errors import InvalidArgument

HOST_GATEWAY = "host-gateway"  # --add-host NAME:host-gateway: the container's gateway
# A name /etc/hosts can carry: labels of letters, digits, '-' and '_', dot-separated.
HOST_NAME_RE = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9_]([A-Za-z0-9_-]{0,62})"
                          r"(\.[A-Za-z0-9_]([A-Za-z0-9_-]{0,62}))*\.?$")
DNS_OPTION_RE = re.compile(r"^[a-z][a-z0-9-]*(:[0-9]{1,4})?$")
GROUP_RE = re.compile(r"^([0-9]{1,10}|[A-Za-z_][A-Za-z0-9_.-]{0,31})$")
# The rlimits runc knows, by docker's names (RLIMIT_<NAME upper-cased>).
ULIMIT_NAMES = frozenset({"as", "core", "cpu", "data", "fsize", "locks", "memlock",
                          "msgqueue", "nice", "nofile", "nproc", "rss", "rtprio", "rttime",
                          "sigpending", "stack"})
MAX_RLIMIT = 2**63 - 1
# Sysctls a container may set (docker's rule): those of its own IPC namespace, and net.*
# of its own network namespace. Anything else would change the host.
IPC_SYSCTLS = frozenset({"kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem",
                         "kernel.shmall", "kernel.shmmax", "kernel.shmmni",
                         "kernel.shm_rmid_forced"})
SYSCTL_KEY_RE = re.compile(r"^[a-z0-9_]+(\.[a-zA-Z0-9_-]+)+$")


class Ulimit(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    soft: int = Field(ge=-1, le=MAX_RLIMIT)  # -1: unlimited, as docker's
    hard: int = Field(ge=-1, le=MAX_RLIMIT)

    @model_validator(mode="after")
    def _check(self) -> Ulimit:
        if self.name not in ULIMIT_NAMES:
            raise ValueError(f"unknown ulimit {self.name!r}: use one of "
                             f"{', '.join(sorted(ULIMIT_NAMES))}")
        if unlimited(self.soft) > unlimited(self.hard):
            raise ValueError(f"ulimit {self.name}: the soft limit {self.soft} is above the "
                             f"hard limit {self.hard}")
        return self


def unlimited(limit: int) -> float:
    """A limit for comparing, -1 (docker's unlimited) the largest."""
    return float("inf") if limit == -1 else limit


def check_extra_hosts(v: list[str]) -> list[str]:
    """NAME:ADDRESS (an IPv6 address keeps its colons: the first colon splits)."""
    for item in v:
        name, colon, address = item.partition(":")
        if not colon or not HOST_NAME_RE.match(name):
            raise ValueError(f"invalid extra host {item!r}: expected NAME:IP")
        if address != HOST_GATEWAY:
            try:
                ipaddress.ip_address(address.strip("[]"))
            except ValueError:
                raise ValueError(f"invalid extra host {item!r}: {address!r} is not an IP "
                                 f"address (or {HOST_GATEWAY})") from None
    return v


def check_nameservers(v: list[str]) -> list[str]:
    for item in v:
        try:
            ipaddress.ip_address(item)
        except ValueError:
            raise ValueError(f"invalid DNS server {item!r}: expected an IP address") from None
    return v


def check_search_domains(v: list[str]) -> list[str]:
    for item in v:
        if item != "." and not HOST_NAME_RE.match(item):
            raise ValueError(f"invalid DNS search domain {item!r}")
    return v


def check_dns_options(v: list[str]) -> list[str]:
    for item in v:
        if not DNS_OPTION_RE.match(item):
            raise ValueError(f"invalid DNS option {item!r}: expected NAME or NAME:NUMBER "
                             "(ndots:2, timeout:1, edns0, ...)")
    return v


def check_groups(v: list[str]) -> list[str]:
    for item in v:
        if not GROUP_RE.match(item) or (item.isdigit() and int(item) > 2**31 - 1):
            raise ValueError(f"invalid group {item!r}: a group name or a numeric gid")
    return v


def check_sysctls(v: dict[str, str]) -> dict[str, str]:
    """Keys as docker takes them (dots, or slashes as in /proc/sys), values one line."""
    out = {}
    for key, value in v.items():
        name = key.replace("/", ".")
        if not SYSCTL_KEY_RE.match(name) or ".." in name:
            raise ValueError(f"invalid sysctl {key!r}")
        if sysctl_namespace(name) is None:
            raise ValueError(f"sysctl {key!r} is not allowed: only net.* and the IPC "
                             "namespace's (kernel.msg*, kernel.sem, kernel.shm*, fs.mqueue.*) "
                             "belong to a container")
        if not isinstance(value, str) or not value or len(value) > 4096 or any(
                c in value for c in "\n\x00"):
            raise ValueError(f"sysctl {key}: invalid value {value!r}")
        out[name] = value
    return out


def sysctl_namespace(name: str) -> str | None:
    """"net" or "ipc": the namespace a sysctl belongs to; None: the host's."""
    if name.startswith("net."):
        return "net"
    if name in IPC_SYSCTLS or name.startswith("fs.mqueue."):
        return "ipc"
    return None


def extra_host_lines(extra_hosts: list[str], gateway: str | None) -> list[tuple[str, str]]:
    """(address, name) pairs, host-gateway replaced by ``gateway``."""
    out = []
    for item in extra_hosts:
        name, _, address = item.partition(":")
        if address == HOST_GATEWAY:
            if gateway is None:
                raise InvalidArgument(f"extra host {item!r}: {HOST_GATEWAY} needs the "
                                      "container on a network (it is that network's gateway)")
            address = gateway
        out.append((address.strip("[]"), name))
    return out


class DnsRequest(BaseModel):
    """resolv.conf settings a request may carry (a container's, or a pod's for its members):
    nameservers (on a bridge network: where the network's DNS forwards the names it does not
    know), search domains and options."""

    model_config = ConfigDict(extra="forbid")

    dns: list[str] = Field(default_factory=list, max_length=16)
    dns_search: list[str] = Field(default_factory=list, max_length=6)
    dns_options: list[str] = Field(default_factory=list, max_length=16)

    _dns = field_validator("dns")(check_nameservers)
    _dns_search = field_validator("dns_search")(check_search_domains)
    _dns_options = field_validator("dns_options")(check_dns_options)

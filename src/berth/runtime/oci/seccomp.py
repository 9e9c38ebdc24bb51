"""The default seccomp profile (OCI format).

A denylist, not Docker's allowlist: the syscalls below are the ones Docker's default profile
refuses to an unprivileged container. A denylist keeps the profile short and reviewable and
never breaks a program by missing a newly added harmless syscall; the price is that a new
dangerous syscall must be added here by hand. Blocked calls fail with EPERM, like Docker.
Unknown names (e.g. vm86 on x86_64) are skipped by runc, so one list serves every arch.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

EPERM = 1
ENOSYS = 38

# The ABIs a process can make system calls through on each kind of host (its own and the
# compat ones): a denylist must cover all of them, or `int 0x80` walks around it on x86_64.
# Foreign ones only cost time: runc compiles the filter for every listed arch at each start.
ARCH_FAMILIES = {
    "x86_64": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
    "aarch64": ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"],
    "ppc64le": ["SCMP_ARCH_PPC64LE"],
    "s390x": ["SCMP_ARCH_S390X", "SCMP_ARCH_S390"],
    "riscv64": ["SCMP_ARCH_RISCV64"],
}


def arches_for(machine: str) -> list[str]:
    """The filter's architectures on a host whose `uname -m` is machine (unknown: none listed,
    which libseccomp reads as the native one only)."""
    return list(ARCH_FAMILIES.get(machine, []))

# Always blocked: no capability makes these safe inside a shared kernel.
ALWAYS_DENIED = [
    "create_module", "get_kernel_syms", "query_module", "nfsservctl", "_sysctl", "sysfs",
    "uselib", "ustat", "vm86", "vm86old", "lookup_dcookie", "userfaultfd",
    "add_key", "keyctl", "request_key",  # the kernel keyring is not namespaced
    "io_uring_setup", "io_uring_enter", "io_uring_register",  # a large, bug-prone surface
    "swapon", "swapoff",  # need CAP_SYS_ADMIN as well; Docker blocks them even then
]

# Blocked unless the container was granted the capability that legitimately needs them.
DENIED_WITHOUT_CAP: dict[str, list[str]] = {
    "CAP_SYS_ADMIN": [
        "mount", "umount", "umount2", "pivot_root", "setns", "quotactl", "quotactl_fd",
        "move_mount", "open_tree", "fsopen", "fsmount", "fspick", "fsconfig", "mount_setattr",
        "name_to_handle_at", "open_by_handle_at", "perf_event_open", "bpf", "fanotify_init",
        "syslog",
    ],
    "CAP_SYS_MODULE": ["init_module", "finit_module", "delete_module"],
    "CAP_SYS_BOOT": ["reboot", "kexec_load", "kexec_file_load"],
    "CAP_SYS_TIME": ["clock_settime", "clock_settime64", "clock_adjtime", "clock_adjtime64",
                     "adjtimex", "settimeofday", "stime"],
    "CAP_SYS_PACCT": ["acct"],
    "CAP_SYS_RAWIO": ["iopl", "ioperm"],
    "CAP_SYS_PTRACE": ["kcmp", "process_madvise", "pidfd_getfd"],
    "CAP_SYS_NICE": ["get_mempolicy", "set_mempolicy", "mbind", "move_pages"],
    "CAP_SYSLOG": ["syslog"],
}

# Namespace flags of clone(2)/unshare(2): creating namespaces (above all a user namespace,
# which needs no capability) is how most container escapes start.
CLONE_NS_FLAGS = {
    "CLONE_NEWNS": 0x00020000,
    "CLONE_NEWCGROUP": 0x02000000,
    "CLONE_NEWUTS": 0x04000000,
    "CLONE_NEWIPC": 0x08000000,
    "CLONE_NEWUSER": 0x10000000,
    "CLONE_NEWPID": 0x20000000,
    "CLONE_NEWNET": 0x40000000,
    "CLONE_NEWTIME": 0x00000080,  # unshare only: in clone() this bit is CSIGNAL
}

# personality(2) values Docker allows: PER_LINUX, PER_LINUX32, UNAME26 (and combined), query.
PERSONALITY_ALLOWED_BITS = 0x00000008 | 0x00020000
PERSONALITY_QUERY = 0xFFFFFFFF


def _deny(names: list[str], errno: int = EPERM, args: list[dict[str, Any]] | None = None,
          ) -> dict[str, Any]:
    rule: dict[str, Any] = {"names": names, "action": "SCMP_ACT_ERRNO", "errnoRet": errno}
    if args:
        rule["args"] = args
    return rule


def _masked_eq(mask: int, value: int) -> dict[str, Any]:
    # OCI/libseccomp: for MASKED_EQ "value" is the mask and "valueTwo" the expected result.
    return {"index": 0, "value": mask, "valueTwo": value, "op": "SCMP_CMP_MASKED_EQ"}


def _namespace_rules() -> list[dict[str, Any]]:
    # One rule per flag: runc turns several conditions on the same argument into OR-ed rules,
    # so "any of these bits set" is expressed as one MASKED_EQ rule per bit.
    rules = []
    for name, bit in CLONE_NS_FLAGS.items():
        rules.append(_deny(["unshare"], args=[_masked_eq(bit, bit)]))
        if name != "CLONE_NEWTIME":
            rules.append(_deny(["clone"], args=[_masked_eq(bit, bit)]))
    # clone3 passes its flags in a struct seccomp cannot read: say "not implemented" so libc
    # falls back to clone(), which the rules above can inspect (Docker does the same).
    rules.append(_deny(["clone3"], errno=ENOSYS))
    return rules


def _personality_rules() -> list[dict[str, Any]]:
    """Deny every personality value except 0, 0x8, 0x20000, 0x20008 and 0xffffffff.

    With single-condition rules only: a value is bad when (a) bit 0 is clear and some bit other
    than the allowed ones is set, or (b) bit 0 is set and some other bit is clear (so it is not
    the all-ones query). Each case is a MASKED_EQ on two bits.
    """
    rules = []
    for bit in range(1, 32):
        flag = 1 << bit
        if not flag & PERSONALITY_ALLOWED_BITS:
            rules.append(_deny(["personality"], args=[_masked_eq(flag | 1, flag)]))
        rules.append(_deny(["personality"], args=[_masked_eq(flag | 1, 1)]))
    return rules


def default_profile(caps: Iterable[str]) -> dict[str, Any]:
    granted = set(caps)
    denied = list(ALWAYS_DENIED)
    for cap, names in DENIED_WITHOUT_CAP.items():
        if cap not in granted:
            denied += [n for n in names if n not in denied]
    syscalls = [_deny(sorted(set(denied)))]
    if "CAP_SYS_ADMIN" not in granted:
        syscalls += _namespace_rules()
    syscalls += _personality_rules()
    return {"defaultAction": "SCMP_ACT_ALLOW", "architectures": arches_for(os.uname().machine),
            "syscalls": syscalls}

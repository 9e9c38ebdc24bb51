#!/usr/bin/env bash
# Prepare a Debian 12 host for Berth: system packages, a virtualenv with Berth installed
# (editable, with test extras), and a check that overlayfs is usable.
#
# Idempotent: run it as often as you like. It only calls apt-get when a package is missing,
# and only reinstalls the Python package when pyproject.toml changed since the last install.
#
# Environment:
#   BERTH_VENV   virtualenv to create/use (default: <repo>/.venv)
#   BERTH_WITH_TEST_TOOLS=1  also install what the tests talk to (docker-registry, skopeo)
#   BERTH_PYTHON python interpreter to build the venv with (default: Debian's /usr/bin/python3,
#                else python3 on PATH; must be >= 3.11). A venv built with another one is
#                made anew.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BERTH_VENV="${BERTH_VENV:-$REPO/.venv}"
STAMP="$BERTH_VENV/.berth-install-stamp"

APT_PACKAGES=(runc crun conmon busybox-static catatonit iproute2 nftables python3 python3-venv gnupg
              python3-pip util-linux procps ca-certificates git)
# The test suite's real peers: a registry (distribution), skopeo for interop, htpasswd,
# zsh to check the completion script it is given, and the docker CLI and compose that the
# Docker API is tested with (their dockerd is never started: see policy-rc.d below).
TEST_APT_PACKAGES=(docker-registry skopeo apache2-utils zsh docker.io docker-compose)
if [[ "${BERTH_WITH_TEST_TOOLS:-0}" == 1 ]]; then
    APT_PACKAGES+=("${TEST_APT_PACKAGES[@]}")
fi

log() { printf 'setup: %s\n' "$*" >&2; }
die() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }

if [[ "$(id -u)" -ne 0 ]]; then
    die "must run as root (Berth drives runc, overlayfs and namespaces); try: sudo bash $0"
fi
[[ -r /etc/debian_version ]] || log "warning: not a Debian system; continuing anyway"

# Serialise concurrent runs (quickstart.sh and test.sh may both call us).
if command -v flock >/dev/null 2>&1; then
    mkdir -p /run/lock
    exec 9>/run/lock/berth-setup.lock
    flock 9
fi

# --- system packages ---------------------------------------------------------------------

missing_packages() {
    local pkg status
    for pkg in "${APT_PACKAGES[@]}"; do
        status="$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)"
        [[ "$status" == "installed" ]] || printf '%s\n' "$pkg"
    done
}

apt_lists_fresh() {
    # True when package lists exist and the newest one is less than a day old.
    local newest
    newest="$(find /var/lib/apt/lists -maxdepth 1 -type f -name '*_Packages*' \
                -printf '%T@\n' 2>/dev/null | sort -n | tail -1)"
    [[ -n "$newest" ]] || return 1
    (( $(date +%s) - ${newest%.*} < 86400 ))
}

mapfile -t MISSING < <(missing_packages)
if (( ${#MISSING[@]} > 0 )); then
    log "installing: ${MISSING[*]}"
    export DEBIAN_FRONTEND=noninteractive
    if ! apt_lists_fresh; then
        log "apt package lists missing or older than a day: apt-get update"
        apt-get update -q
    fi
    # Packages must not start services (docker-registry would listen on :5000): the tests
    # start their own, on loopback ports. policy-rc.d is Debian's switch for that.
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        trap 'rm -f /usr/sbin/policy-rc.d' EXIT
    fi
    if ! apt-get install -y -q --no-install-recommends "${MISSING[@]}"; then
        log "install failed; refreshing package lists and retrying once"
        apt-get update -q
        apt-get install -y -q --no-install-recommends "${MISSING[@]}"
    fi
fi

# --- python + virtualenv -----------------------------------------------------------------

py_ok() {  # $1 = interpreter; true when it runs and is >= 3.11 with venv support
    "$1" -c 'import sys, venv; sys.exit(0 if sys.version_info >= (3, 11) else 1)' \
        >/dev/null 2>&1
}

PYTHON="${BERTH_PYTHON:-}"
if [[ -z "$PYTHON" ]]; then
    # The distribution's interpreter first: apt keeps it patched, and its optimised (PGO/LTO)
    # build starts `berth` ~5 ms sooner and runs berthd faster than a self-built one on PATH.
    for candidate in /usr/bin/python3 "$(command -v python3 || true)"; do
        if [[ -n "$candidate" ]] && py_ok "$candidate"; then PYTHON="$candidate"; break; fi
    done
fi
[[ -n "$PYTHON" ]] && py_ok "$PYTHON" \
    || die "need python3 >= 3.11 with the venv module (BERTH_PYTHON=${BERTH_PYTHON:-unset})"

if [[ -x "$BERTH_VENV/bin/python" ]] && ! py_ok "$BERTH_VENV/bin/python"; then
    log "existing venv $BERTH_VENV is broken or too old; recreating it"
    rm -rf "$BERTH_VENV"
elif [[ -x "$BERTH_VENV/bin/python" \
        && "$(readlink -f "$BERTH_VENV/bin/python")" != "$(readlink -f "$(command -v "$PYTHON")")" ]]; then
    log "existing venv $BERTH_VENV was built with another interpreter; recreating it with $PYTHON"
    rm -rf "$BERTH_VENV"
fi
if [[ ! -x "$BERTH_VENV/bin/python" ]]; then
    log "creating virtualenv $BERTH_VENV with $PYTHON"
    "$PYTHON" -m venv "$BERTH_VENV"
fi

VPY="$BERTH_VENV/bin/python"
want_stamp="$(cat "$REPO/pyproject.toml" <(printf '%s\n' "$REPO") | sha256sum | cut -d' ' -f1)"
have_stamp="$(cat "$STAMP" 2>/dev/null || true)"

installed_here() {
    # The berth distribution is installed and its editable install points at this repo.
    "$VPY" - "$REPO" <<'EOF' >/dev/null 2>&1
import sys
from importlib import metadata
dist = metadata.distribution("berth")
text = (dist.read_text("direct_url.json") or "")
sys.exit(0 if sys.argv[1] in text else 1)
EOF
}

if [[ "$want_stamp" != "$have_stamp" ]] || ! installed_here \
        || [[ ! -x "$BERTH_VENV/bin/berth" || ! -x "$BERTH_VENV/bin/berthd" ]]; then
    log "installing berth (editable, [test]) into $BERTH_VENV"
    "$VPY" -m pip install -q --disable-pip-version-check -e "$REPO[test]"
    printf '%s\n' "$want_stamp" >"$STAMP"
fi
# An editable install is not byte-compiled, and with PYTHONDONTWRITEBYTECODE set (as in many
# CI and container images) nothing ever writes the .pyc files: every `berth` command would
# compile the CLI from source, which doubles its start-up (~100 ms instead of ~50). compileall
# writes them regardless, and skips the ones still up to date.
"$VPY" -m compileall -q "$REPO/src/berth" >/dev/null

# --- overlayfs ---------------------------------------------------------------------------

if ! grep -qw overlay /proc/filesystems; then
    modprobe overlay 2>/dev/null || true
fi
grep -qw overlay /proc/filesystems \
    || die "overlayfs is not available (not in /proc/filesystems and 'modprobe overlay' failed)"

overlay_state="overlay ok"
probe="$(mktemp -d /var/tmp/berth-overlay-probe.XXXXXX)"
mkdir -p "$probe"/{lower,upper,work,merged}
if mount -t overlay overlay \
        -o "lowerdir=$probe/lower,upperdir=$probe/upper,workdir=$probe/work" \
        "$probe/merged" 2>/dev/null; then
    umount "$probe/merged"
else
    overlay_state="overlay listed but a test mount failed (is /var/tmp on overlayfs?)"
    log "warning: $overlay_state"
fi
rm -rf "$probe"

# --- summary -----------------------------------------------------------------------------

ver() { "$@" --version 2>/dev/null | head -1 | grep -oE '[0-9]+(\.[0-9]+)+' | head -1; }
if [[ "$(stat -fc %T /sys/fs/cgroup 2>/dev/null)" == "cgroup2fs" ]]; then cg="cgroup v2"
else cg="cgroup v1/hybrid"; fi
printf 'berth setup: ok — python %s (%s), runc %s, crun %s, conmon %s, %s, %s\n' \
    "$("$VPY" -c 'import platform; print(platform.python_version())')" "$BERTH_VENV" \
    "$(ver runc)" "$(ver crun)" "$(ver conmon)" "$overlay_state" "$cg"

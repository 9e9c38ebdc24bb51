#!/usr/bin/env bash
# Set up this host, start berthd in the background, build the busybox base image and run a
# first container. Safe to run again: it reuses a daemon that is already answering.
#
# Environment: BERTH_VENV (see setup.sh).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BERTH_VENV="${BERTH_VENV:-$REPO/.venv}"
export BERTH_VENV

ROOT_DIR=/var/lib/berth
RUN_DIR=/run/berth
SOCK="$RUN_DIR/berth.sock"
PIDFILE="$RUN_DIR/berthd.pid"
LOGFILE=/var/log/berthd.log
export BERTH_HOST="unix://$SOCK"

say() { printf '==> %s\n' "$*"; }
die() { printf 'quickstart: error: %s\n' "$*" >&2; exit 1; }

[[ "$(id -u)" -eq 0 ]] || die "must run as root; try: sudo bash $0"

say "setting up the host (scripts/setup.sh)"
bash "$REPO/scripts/setup.sh"

BERTH="$BERTH_VENV/bin/berth"
BERTHD="$BERTH_VENV/bin/berthd"
[[ -x "$BERTH" && -x "$BERTHD" ]] || die "berth/berthd not found in $BERTH_VENV/bin"

# Make `berth` and `berthd` available on PATH for the user.
for bin in berth berthd; do
    ln -sfn "$BERTH_VENV/bin/$bin" "/usr/local/bin/$bin"
done

answering() { "$BERTH" info >/dev/null 2>&1; }
berthd_running() {  # pid file names a live berthd process (not a recycled pid)
    [[ -s "$PIDFILE" ]] && tr '\0' ' ' 2>/dev/null <"/proc/$(cat "$PIDFILE")/cmdline" \
        | grep -q berthd
}

if answering; then
    say "berthd is already answering on $SOCK"
else
    if berthd_running; then
        die "berthd (pid $(cat "$PIDFILE")) is running but not answering on $SOCK; see $LOGFILE"
    fi
    rm -f "$SOCK"  # left behind by a daemon that is gone (it is not answering)
    mkdir -p "$ROOT_DIR" "$RUN_DIR"
    chmod 0711 "$ROOT_DIR" "$RUN_DIR"
    say "starting berthd --root $ROOT_DIR --run-root $RUN_DIR (log: $LOGFILE)"
    # setsid: its own session, so it survives this shell and its terminal.
    setsid "$BERTHD" --root "$ROOT_DIR" --run-root "$RUN_DIR" \
        </dev/null >>"$LOGFILE" 2>&1 &
    pid=$!
    echo "$pid" >"$PIDFILE"
    deadline=$((SECONDS + 20))
    until answering; do
        if ! kill -0 "$pid" 2>/dev/null; then
            rm -f "$PIDFILE"
            printf -- '--- last lines of %s ---\n' "$LOGFILE" >&2
            tail -n 20 "$LOGFILE" >&2 || true
            die "berthd exited during start-up"
        fi
        if (( SECONDS >= deadline )); then
            tail -n 20 "$LOGFILE" >&2 || true
            die "berthd (pid $pid) did not answer on $SOCK within 20 s; see $LOGFILE"
        fi
        sleep 0.2
    done
    say "berthd is up (pid $pid)"
fi

say "berth image build-base busybox"
"$BERTH" image build-base busybox

say 'berth run --rm busybox echo "hello from Berth"'
"$BERTH" run --rm busybox echo "hello from Berth"

cat <<EOF

Berth is running. Things to try next:

  berth --help                         all commands
  berth run -d busybox sleep 600       start a container in the background (prints its id)
  berth ps -a                          list containers, including stopped ones
  berth logs -f NAME                   follow a container's output
  berth run --rm -it busybox sh        an interactive shell
  berth stop NAME; berth rm -f NAME    stop and remove a container

berthd: root $ROOT_DIR, run-root $RUN_DIR, socket $SOCK, log $LOGFILE
Stop it with:  kill \$(cat $PIDFILE)
EOF

#!/usr/bin/env bash
# Run the Berth benchmarks. Needs root (runc, overlayfs, user namespaces).
#
#   bench/run.sh                    every benchmark with defaults
#   bench/run.sh run [ARGS...]      only bench_run.py  (e.g. --rounds 50, --only runc,berth)
#   bench/run.sh idle [ARGS...]     only bench_idle.py (e.g. --count 20)
#   bench/run.sh pull [ARGS...]     only bench_pull.py (e.g. --rounds 3, --only berth,docker,
#                                   --size-mb 100, --profile)
#   bench/run.sh api [ARGS...]      only bench_api.py  (e.g. --rows 10000, --duration 30,
#                                   --clients 200): list/get latency with 10,000 rows, load
#   bench/run.sh docker [ARGS...]   only bench_docker.py (e.g. --rounds 50): the docker CLI's
#                                   `run --rm busybox true` against Berth's socket vs dockerd
#   bench/run.sh build [ARGS...]    only bench_build.py (e.g. --rounds 5, --cached-rounds 10,
#                                   --only berth,docker): a 10-step Dockerfile, cold and cached,
#                                   berth build vs docker build (Berth's socket, dockerd) / podman
#   bench/run.sh net [ARGS...]      only bench_net.py (e.g. --rounds 50, --port 18080,
#                                   --no-dockerd): docker run --rm busybox true against Berth's
#                                   socket with --network none / the bridge / the bridge + -p,
#                                   vs a bridged dockerd in its own network namespace
#
# By default each benchmark starts its own berthd in temporary directories; pass
# --no-own-daemon [--host URL] to measure an already running one instead.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BERTH_VENV="${BERTH_VENV:-$REPO/.venv}"
export BERTH_VENV

[[ "$(id -u)" -eq 0 ]] || { echo "bench/run.sh: must run as root" >&2; exit 1; }
bash "$REPO/scripts/setup.sh"
PY="$BERTH_VENV/bin/python"
apt_install() {  # each missing package, from Debian; a failure only skips that contender
    local pkg
    for pkg in "$@"; do
        if ! dpkg -s "$pkg" >/dev/null 2>&1; then
            echo "==> installing $pkg for the comparison (apt)"
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
                "$pkg" >/dev/null || echo "bench/run.sh: $pkg could not be installed; skipped"
        fi
    done
}
# The engines to compare with, from Debian (the benchmarks start a private dockerd themselves).
apt_install podman docker.io

which="${1:-all}"
case "$which" in
    run|idle|pull|api|docker|build|net) shift ;;
    all) shift $(( $# > 0 ? 1 : 0 )) ;;
    -*) which=all ;;
    *) echo "usage: bench/run.sh [run|idle|pull|api|docker|build|net|all] [ARGS...]" >&2; exit 2 ;;
esac

# bench_pull: a loopback registry, skopeo to fill it (and to compare with), umoci to compare.
[[ "$which" == pull || "$which" == all ]] && apt_install docker-registry skopeo umoci

rc=0
if [[ "$which" == run || "$which" == all ]]; then
    echo "==> bench_run: berth run --rm busybox true vs runc / crun / docker / podman"
    "$PY" "$REPO/bench/bench_run.py" "$@" || rc=1
fi
if [[ "$which" == idle || "$which" == all ]]; then
    [[ "$which" == all ]] && set --  # bench_run's arguments do not apply here
    echo "==> bench_idle: memory per idle container"
    "$PY" "$REPO/bench/bench_idle.py" "$@" || rc=1
fi
if [[ "$which" == pull || "$which" == all ]]; then
    [[ "$which" == all ]] && set --  # bench_run's arguments do not apply here
    echo "==> bench_pull: pull a ~300 MB image from a loopback registry vs skopeo / docker /" \
         "podman; unpack vs umoci"
    "$PY" "$REPO/bench/bench_pull.py" "$@" || rc=1
fi
if [[ "$which" == api || "$which" == all ]]; then
    [[ "$which" == all ]] && set --  # bench_run's arguments do not apply here
    echo "==> bench_api: list and get with 10,000 containers in the store; concurrent clients"
    "$PY" "$REPO/bench/bench_api.py" "$@" || rc=1
fi
if [[ "$which" == docker || "$which" == all ]]; then
    [[ "$which" == all ]] && set --  # bench_run's arguments do not apply here
    echo "==> bench_docker: docker run --rm busybox true against Berth's socket vs dockerd"
    "$PY" "$REPO/bench/bench_docker.py" "$@" || rc=1
fi
if [[ "$which" == build || "$which" == all ]]; then
    [[ "$which" == all ]] && set --  # bench_run's arguments do not apply here
    echo "==> bench_build: berth build of a 10-step Dockerfile, cold and cached, vs docker" \
         "build (Berth's socket, dockerd) / podman build"
    "$PY" "$REPO/bench/bench_build.py" "$@" || rc=1
fi
if [[ "$which" == net || "$which" == all ]]; then
    [[ "$which" == all ]] && set --  # bench_run's arguments do not apply here
    echo "==> bench_net: docker run --rm busybox true against Berth's socket: --network none" \
         "vs the bridge vs the bridge + -p (and a bridged dockerd's -p)"
    "$PY" "$REPO/bench/bench_net.py" "$@" || rc=1
fi
exit "$rc"

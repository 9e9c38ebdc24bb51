#!/usr/bin/env bash
# Set up the host, then lint and run the unit and integration tests.
# Every stage runs even when an earlier one failed, so all failures show in one go.
# Extra arguments go to both pytest runs:  scripts/test.sh -k restart -vv
#
# Exit status: 0 when every stage passed, 1 otherwise.
# "No tests collected" (pytest exit 5) is a failure for tests/unit (there must be unit tests)
# unless extra arguments were given (a -k filter may legitimately select none there);
# for tests/integration it is not.
set -uo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BERTH_VENV="${BERTH_VENV:-$REPO/.venv}"
export BERTH_VENV
cd "$REPO"

start_ns=$(date +%s%N)
declare -a RESULTS=()
failed=0

stage() {  # stage NAME STATUS
    RESULTS+=("$(printf '%-20s %s' "$1" "$2")")
    [[ "$2" == ok* ]] || failed=1
}

echo "==> scripts/setup.sh"
if ! BERTH_WITH_TEST_TOOLS=1 bash scripts/setup.sh; then
    echo "test.sh: setup failed; not running the tests" >&2
    exit 1
fi

BIN="$BERTH_VENV/bin"
TIMEOUT="$("$BIN/python" - <<'EOF'
import tomllib
with open("pyproject.toml", "rb") as f:
    opts = tomllib.load(f).get("tool", {}).get("pytest", {}).get("ini_options", {})
print(opts.get("timeout", 300))
EOF
)"
PYTEST=("$BIN/python" -m pytest -q -p no:cacheprovider "--timeout=$TIMEOUT")

echo "==> ruff check src tests bench"
lint_paths=()
for d in src tests bench; do [[ -e "$d" ]] && lint_paths+=("$d"); done
if "$BIN/ruff" check "${lint_paths[@]}"; then stage ruff ok; else stage ruff FAILED; fi

run_pytest() {  # run_pytest NAME DIR EMPTY_IS_FAILURE [args...]
    local name="$1" dir="$2" empty_fails="$3" rc
    shift 3
    echo "==> pytest $dir -q (timeout ${TIMEOUT}s per test)"
    if [[ ! -d "$dir" ]]; then
        if [[ "$empty_fails" == yes ]]; then stage "$name" "FAILED ($dir missing)"
        else stage "$name" "ok (no $dir)"; fi
        return
    fi
    "${PYTEST[@]}" "$dir" "$@"
    rc=$?
    case "$rc" in
        0) stage "$name" ok ;;
        5) if [[ "$empty_fails" == yes ]]; then stage "$name" "FAILED (no tests collected)"
           else stage "$name" "ok (no tests collected)"; fi ;;
        *) stage "$name" "FAILED (pytest exit $rc)" ;;
    esac
}

unit_empty_fails=yes
(( $# > 0 )) && unit_empty_fails=no
run_pytest "unit tests" tests/unit "$unit_empty_fails" "$@"
run_pytest "integration tests" tests/integration no "$@"

elapsed_ms=$(( ($(date +%s%N) - start_ns) / 1000000 ))
echo
echo "==> summary"
printf '  %s\n' "${RESULTS[@]}"
printf '  total wall-clock: %d.%03d s\n' $((elapsed_ms / 1000)) $((elapsed_ms % 1000))
if (( failed )); then
    echo "test.sh: FAILED"
    exit 1
fi
echo "test.sh: all passed"

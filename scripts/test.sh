#!/usr/bin/env bash
# The whole test suite, on a fresh machine or in CI: installs what the tests need (idempotently),
# then runs every test. Usage: ./scripts/test.sh [extra cargo test arguments]
# Each step announces itself with a line `==> [i/6] …` on stderr; the last line on stdout is the total
# over both cargo test runs, `N passed, M failed`. Exits non-zero if any step or any test failed.
set -euo pipefail
cd "$(dirname "$0")/.."

steps=6
step() { echo "==> [$1/$steps] $2" >&2; }

# Sums the `test result:` lines libtest prints once per test binary (and per doc-test run), e.g.
#   test result: ok. 12 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.31s
# and prints `N passed, M failed`.
sum_results() {
    awk '
        /^test result:/ {
            for (i = 1; i < NF; i++) {
                if ($(i + 1) ~ /^passed;?$/) passed += $i
                if ($(i + 1) ~ /^failed;?$/) failed += $i
            }
        }
        END { printf "%d passed, %d failed\n", passed, failed }
    ' "$1"
}

step 1 "Rust toolchain (cargo)"
command -v cargo >/dev/null || { echo "error: cargo is required (https://rustup.rs)" >&2; exit 1; }

# Headless Chromium and ChromeDriver for the browser tests (tests/support/browser.rs), from Debian's
# packages, only when either binary is missing. Runs as root, else through sudo; never prompts.
step 2 "Chromium and ChromeDriver (apt-get, as root or through sudo; skipped when present)"
if [[ ! -x /usr/bin/chromium || ! -x /usr/bin/chromedriver ]]; then
    if [[ $(id -u) -eq 0 ]]; then
        as_root=()
    elif command -v sudo >/dev/null; then
        as_root=(sudo -n)
    else
        echo "error: installing chromium and chromium-driver needs root or sudo" >&2
        exit 1
    fi
    "${as_root[@]}" apt-get update
    "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y --no-install-recommends chromium chromium-driver </dev/null
fi

# Node 22, the npm packages and the Python SDK that the interop tests drive.
step 3 "Node.js 22, the npm peers and the MCP Python SDK (scripts/install-peers.sh, into .peers/)"
./scripts/install-peers.sh

# A throwaway PostgreSQL server (Debian's package, a cluster in a temporary directory on a loopback
# port) for the intent store shared by replicas; stopped and removed however the tests end.
step 4 "PostgreSQL (scripts/postgres.sh: apt-get if missing, then a throwaway cluster on loopback)"
eval "$(./scripts/postgres.sh start)"
results=$(mktemp "${TMPDIR:-/tmp}/bankguard-test-results.XXXXXX")
cleanup() {
    rm -f "$results"
    ./scripts/postgres.sh stop "$TEST_POSTGRES_DIR"
}
trap cleanup EXIT

# Every test, with the MCP servers on SQLite (the default store) ...
# Each run's stdout is also kept in $results for the total; a failed run does not stop the next, and
# --no-fail-fast runs every test binary even after one fails, so the total counts every test.
status=0
step 5 "cargo test (every test; the MCP servers on SQLite)"
cargo test --locked --no-fail-fast "$@" | tee -a "$results" || status=1
# ... then every MCP test again with the servers on PostgreSQL (the replica tests always are).
step 6 "cargo test --test mcp (the MCP servers on PostgreSQL)"
TEST_MCP_STORE=postgres cargo test --locked --no-fail-fast --test mcp "$@" -- --skip replicas_share_one_store \
    | tee -a "$results" || status=1

total=$(sum_results "$results")
echo "$total"
if [[ $status -ne 0 && $total == *" 0 failed" ]]; then
    echo "error: a cargo test run failed without a failing test (a build error, or a test binary that crashed)" >&2
fi
exit "$status"

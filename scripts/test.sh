#!/usr/bin/env bash
# The whole test suite, on a fresh machine or in CI: installs what the tests need (idempotently),
# then runs every test. Usage: ./scripts/test.sh [extra cargo test arguments]
set -euo pipefail
cd "$(dirname "$0")/.."

# Rust toolchain.
command -v cargo >/dev/null || { echo "error: cargo is required (https://rustup.rs)" >&2; exit 1; }

# Headless Chromium and ChromeDriver for the browser tests (tests/support/browser.rs), from Debian's
# packages, only when either binary is missing. Runs as root, else through sudo; never prompts.
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
./scripts/install-peers.sh

# A throwaway PostgreSQL server (Debian's package, a cluster in a temporary directory on a loopback
# port) for the intent store shared by replicas; stopped and removed however the tests end.
eval "$(./scripts/postgres.sh start)"
trap './scripts/postgres.sh stop "$TEST_POSTGRES_DIR"' EXIT

# Every test, with the MCP servers on SQLite (the default store) ...
cargo test --locked "$@"
# ... then every MCP test again with the servers on PostgreSQL (the replica tests always are).
TEST_MCP_STORE=postgres cargo test --locked --test mcp "$@" -- --skip replicas_share_one_store

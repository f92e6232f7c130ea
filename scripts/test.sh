#!/usr/bin/env bash
# The whole test suite, on a fresh machine or in CI: installs what the tests need (idempotently),
# then runs every test. Usage: ./scripts/test.sh [extra cargo test arguments]
set -euo pipefail
cd "$(dirname "$0")/.."

# Rust toolchain: the only prerequisite so far. Later peers (Chromium, node, Python SDKs) are installed here.
command -v cargo >/dev/null || { echo "error: cargo is required (https://rustup.rs)" >&2; exit 1; }

cargo test --locked "$@"

#!/usr/bin/env bash
# The benchmark suite (benches/suite): bankguard side by side with the official SDKs' servers and a
# bare rmcp server, in release, one table at the end. Installs the reference servers first
# (idempotently), builds the bare rmcp server, then runs the suite through cargo bench.
# Usage: ./scripts/bench.sh [SECTION...]   e.g. ./scripts/bench.sh cold_start reads
# Knobs: BENCH_COLD_ROUNDS, BENCH_CALLS, BENCH_APPROVALS, BENCH_SLOW_APPROVALS, BENCH_HOLDER_SECONDS,
# BENCH_PENDING, BENCH_REPLICA_PENDING, BENCH_REPLICA_IDLE_SECONDS, BENCH_PROPAGATIONS
# (see benches/suite/main.rs).
set -euo pipefail
cd "$(dirname "$0")/.."

command -v cargo >/dev/null || { echo "error: cargo is required (https://rustup.rs)" >&2; exit 1; }
./scripts/install-peers.sh
cargo build --locked --release --example bare_rmcp --example rmcp_http_floor
# PostgreSQL for the replicas section (scripts/postgres.sh), stopped however the run ends.
eval "$(./scripts/postgres.sh start)"
trap './scripts/postgres.sh stop "$TEST_POSTGRES_DIR"' EXIT
cargo bench --locked --bench suite -- "$@"

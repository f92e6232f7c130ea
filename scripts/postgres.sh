#!/usr/bin/env bash
# A throwaway PostgreSQL server for the tests that need one (the intent store shared by replicas).
#
#   eval "$(./scripts/postgres.sh start)"   installs Debian's postgresql package if missing, creates a
#                                          cluster with initdb in a new temporary directory, starts it
#                                          with pg_ctl on a free loopback port, and prints the exports
#                                          TEST_POSTGRES_URL, _PASSWORD and _DIR
#   ./scripts/postgres.sh stop DIR          stops that cluster and removes its directory
#
# The server runs as an unprivileged user (PostgreSQL refuses root): as `postgres` when started by
# root, else as the caller. It listens on 127.0.0.1 only, and asks for a password (SCRAM).
set -euo pipefail

as_root() {
    if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo -n "$@"; fi
}

server_bin() {
    local dir
    dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
    [[ -n $dir && -x $dir/initdb && -x $dir/pg_ctl ]] && echo "$dir"
}

install() {
    server_bin >/dev/null && return
    echo "installing PostgreSQL (Debian's postgresql package)" >&2
    # The tests make their own clusters: no default cluster is created or started.
    if [[ ! -e /etc/postgresql-common/createcluster.conf ]]; then
        as_root mkdir -p /etc/postgresql-common
        echo "create_main_cluster = false" | as_root tee /etc/postgresql-common/createcluster.conf >/dev/null
    fi
    as_root apt-get update >&2
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postgresql </dev/null >&2
    server_bin >/dev/null || { echo "error: PostgreSQL's initdb and pg_ctl are still missing" >&2; exit 1; }
}

# Runs a server command as the cluster's owner.
as_owner() {
    if [[ $(id -u) -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}

start() {
    install
    local bin dir port password
    bin=$(server_bin)
    dir=$(mktemp -d "${TMPDIR:-/tmp}/bankguard-postgres.XXXXXX")
    chmod 0755 "$dir"
    [[ $(id -u) -eq 0 ]] && chown postgres "$dir"
    password=$(head -c 24 /dev/urandom | base64 | tr -d '/+=')
    printf '%s\n' "$password" >"$dir/pwfile"
    [[ $(id -u) -eq 0 ]] && chown postgres "$dir/pwfile"
    as_owner "$bin/initdb" -D "$dir/data" -U bankguard --pwfile="$dir/pwfile" --auth=scram-sha-256 \
        -E UTF8 --no-sync >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; exit 1; }
    rm -f "$dir/pwfile"
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    # Throwaway data: no fsync. Enough connections for every test server at once.
    as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start -o \
        "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=$dir -c max_connections=400 \
         -c fsync=off -c synchronous_commit=off -c full_page_writes=off" >&2 \
        || { cat "$dir/server.log" >&2; exit 1; }
    echo "export TEST_POSTGRES_URL=postgres://bankguard@127.0.0.1:$port/postgres"
    echo "export TEST_POSTGRES_PASSWORD=$password"
    echo "export TEST_POSTGRES_DIR=$dir"
}

stop() {
    local dir=${1:?usage: postgres.sh stop DIR}
    [[ -d $dir/data ]] || return 0
    as_owner "$(server_bin)/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
    rm -rf "$dir"
}

case "${1:-}" in
    start) start ;;
    stop) stop "${2:-}" ;;
    *) echo "usage: $0 start | stop DIR" >&2; exit 2 ;;
esac

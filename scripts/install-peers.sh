#!/usr/bin/env bash
# Installs the independent peers the interop tests drive, idempotently, into .peers/ (git-ignored):
#   - Node.js 22 from the npm package node@22 (the MCP Inspector 2.x and the conformance suite need it);
#   - the npm dependencies of every tests/interop/<peer>/package.json and benches/peers/<peer>/package.json
#     (exact versions from its lock file);
#   - a Python virtualenv with tests/interop/python/requirements.txt (the official MCP Python SDK).
# Tests and the benchmark suite find them at .peers/node22/node_modules/.bin/node,
# {tests/interop,benches/peers}/<peer>/node_modules and .peers/venv/bin/python. Needs the machine's
# node/npm (any version) and python3; no stdin, no prompts.
set -euo pipefail
cd "$(dirname "$0")/.."
peers="$PWD/.peers"
mkdir -p "$peers"

# A step reruns only when its inputs change: the stamp holds a hash of them.
fresh() { [[ -f "$1" && "$(cat "$1")" == "$2" ]]; }

node22="$peers/node22/node_modules/.bin/node"
if ! { [[ -x "$node22" ]] && "$node22" --version | grep -q '^v22\.'; }; then
    echo "installing Node.js 22 into $peers/node22" >&2
    npm install --prefix "$peers/node22" --no-audit --no-fund --loglevel=error node@22 </dev/null
fi
"$node22" --version >/dev/null

for manifest in tests/interop/*/package.json benches/peers/*/package.json; do
    [[ -e "$manifest" ]] || continue
    dir=$(dirname "$manifest")
    stamp="$dir/node_modules/.bankguard-stamp"
    inputs=$({ cat "$manifest"; cat "$dir/package-lock.json" 2>/dev/null || true; } | sha256sum | cut -d' ' -f1)
    if ! fresh "$stamp" "$inputs"; then
        echo "installing npm dependencies of $dir" >&2
        if [[ -f "$dir/package-lock.json" ]]; then
            (cd "$dir" && PATH="$(dirname "$node22"):$PATH" npm ci --no-audit --no-fund --loglevel=error </dev/null)
        else
            (cd "$dir" && PATH="$(dirname "$node22"):$PATH" npm install --no-audit --no-fund --loglevel=error </dev/null)
        fi
        echo "$inputs" > "$stamp"
    fi
done

requirements=tests/interop/python/requirements.txt
if [[ -f "$requirements" ]]; then
    venv="$peers/venv"
    stamp="$venv/.bankguard-stamp"
    inputs=$(sha256sum "$requirements" | cut -d' ' -f1)
    if ! fresh "$stamp" "$inputs"; then
        echo "installing the Python test peers into $venv" >&2
        python3 -m venv "$venv"
        "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements" </dev/null
        echo "$inputs" > "$stamp"
    fi
fi

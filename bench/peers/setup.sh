#!/usr/bin/env bash
# Installs the load generator's dependencies into bench/.load/ and the benchmark peers' into
# bench/.peers/ (idempotent; stamps hold the inputs' hashes). --load-only: the load generator only.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
PEERS=bench/.peers
mkdir -p "$PEERS"

LOG="$PEERS/setup.log"
: > "$LOG"
fail() { echo "bench/peers/setup.sh: $* (see $LOG)" >&2; tail -n 20 "$LOG" >&2; exit 1; }
hash_of() { sha256sum "$1" | cut -d' ' -f1; }

# The load generator (Node socket.io-client)
load_dir=bench/.load
want="$(hash_of bench/load/package.json)"
if [[ "$(cat "$load_dir/.stamp" 2>/dev/null || true)" != "$want" ]]; then
    command -v npm >/dev/null || fail "npm not found (Node.js 18+ runs the load generator)"
    echo "setup: installing the load generator into $load_dir" >&2
    mkdir -p "$load_dir"
    cp bench/load/package.json "$load_dir/package.json"
    (cd "$load_dir" && npm install --no-audit --no-fund --loglevel=error) >>"$LOG" 2>&1 \
        || fail "npm install in $load_dir failed"
    echo "$want" > "$load_dir/.stamp"
fi
[[ "${1:-}" == "--load-only" ]] && exit 0

# Flask-SocketIO + eventlet virtualenv
venv="$PEERS/flask-venv"
want="$(hash_of bench/peers/requirements-flask.txt)"
if [[ "$(cat "$venv/.stamp" 2>/dev/null || true)" != "$want" ]]; then
    echo "setup: installing Flask-SocketIO peer into $venv" >&2
    "${PYTHON:-python3}" -m venv --clear "$venv" >>"$LOG" 2>&1 || fail "${PYTHON:-python3} -m venv $venv failed"
    "$venv/bin/pip" install -q --disable-pip-version-check -r bench/peers/requirements-flask.txt >>"$LOG" 2>&1 \
        || fail "pip install into $venv failed"
    "$venv/bin/python" -W ignore -c "import eventlet, flask_socketio" >>"$LOG" 2>&1 \
        || fail "eventlet/flask_socketio do not import in $venv"
    echo "$want" > "$venv/.stamp"
fi

# Node socket.io server: node_modules live in bench/.peers/node, outside the repo tree
node_dir="$PEERS/node"
want="$(hash_of bench/peers/node/package.json)"
if [[ "$(cat "$node_dir/.stamp" 2>/dev/null || true)" != "$want" ]]; then
    command -v npm >/dev/null || fail "npm not found (Node.js 18+ is needed for the node peer)"
    echo "setup: installing node socket.io peer into $node_dir" >&2
    mkdir -p "$node_dir"
    cp bench/peers/node/package.json "$node_dir/package.json"
    (cd "$node_dir" && npm install --no-audit --no-fund --loglevel=error) >>"$LOG" 2>&1 \
        || fail "npm install in $node_dir failed"
    echo "$want" > "$node_dir/.stamp"
fi

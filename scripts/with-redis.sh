#!/usr/bin/env bash
# Run a command with a throw-away redis-server (no persistence) listening on a
# random free port of 127.0.0.1, then stop it again by its PID.
#
#   scripts/with-redis.sh <command> [args...]
#
# The command sees IDEMPOTENCY_TEST_REDIS_URL=redis://127.0.0.1:<port> and
# REDIS_SERVER=<path of redis-server> (for tests that start, kill and restart a
# server of their own); its exit code is this script's exit code. Several copies
# can run at once. The server's log goes to .redis/redis.<port>.log (git-ignored),
# removed on success.
#
# Needs bash 4.1+, redis-server and redis-cli (Debian package redis-server; .ci/run
# installs it with apt-get when missing; macOS: brew install redis). Runs on Linux
# and macOS: scripts/portable.sh finds ports and their owners with ss (Linux) or
# lsof (macOS), else with python3 or bash alone.
# shellcheck disable=SC2317 # cleanup functions are called from traps
set -euo pipefail

readonly START_TIMEOUT_S="${REDIS_START_TIMEOUT:-20}"
readonly MAX_ATTEMPTS=5

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LOG_DIR="$ROOT/.redis"
# shellcheck source=scripts/portable.sh
source "$ROOT/scripts/portable.sh"
require_bash_4_1

log() { printf 'with-redis: %s\n' "$*" >&2; }
die() {
    log "error: $*"
    exit 1
}

if [[ $# -eq 0 ]]; then
    echo "usage: $0 <command> [args...]" >&2
    exit 2
fi

missing=()
command -v redis-server >/dev/null 2>&1 || missing+=("redis-server (the Debian package redis-server: apt-get install redis-server; macOS: brew install redis)")
command -v redis-cli >/dev/null 2>&1 || missing+=("redis-cli (the Debian package redis-server: apt-get install redis-server; macOS: brew install redis)")
if ((${#missing[@]})); then
    log "error: missing prerequisites:"
    printf '  - %s\n' "${missing[@]}" >&2
    exit 1
fi

mkdir -p "$LOG_DIR"

# A port with no TCP socket now; a race with another process is caught below (the
# server fails to bind and the next attempt takes another port).
free_port() {
    local port
    for _ in $(seq 50); do
        port=$((20000 + RANDOM % 40000))
        if ! port_in_use "$port"; then
            echo "$port"
            return 0
        fi
    done
    return 1
}

server_pid=""
port=""
stop_server() {
    if [[ -n $server_pid ]] && kill -0 "$server_pid" 2>/dev/null; then
        kill "$server_pid" 2>/dev/null || true
        for _ in $(seq 50); do
            kill -0 "$server_pid" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$server_pid" 2>/dev/null; then
            kill -9 "$server_pid" 2>/dev/null || true
        fi
    fi
    if [[ -n $server_pid ]]; then
        wait "$server_pid" 2>/dev/null || true
    fi
}

# Whether our own server (not another process that took the port first) listens.
# Without ss and lsof there is no telling: then it is assumed (and said once).
told_unknown_owner=""
owns_port() {
    local pids pid
    if ! pids="$(listening_pids "$port")"; then
        if [[ -z $told_unknown_owner ]]; then
            log "neither ss nor lsof found: not checking that the port is our redis-server's"
            told_unknown_owner=1
        fi
        return 0
    fi
    for pid in $pids; do
        if [[ $pid == "$server_pid" ]]; then return 0; fi
    done
    return 1
}
trap stop_server EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

started=""
for attempt in $(seq "$MAX_ATTEMPTS"); do
    port="$(free_port)" || die "no free port found"
    server_log="$LOG_DIR/redis.$port.log"
    redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no \
        --daemonize no --protected-mode yes --logfile "$server_log" &
    server_pid=$!
    deadline=$((SECONDS + START_TIMEOUT_S))
    while ((SECONDS < deadline)); do
        kill -0 "$server_pid" 2>/dev/null || break
        if owns_port && redis-cli -p "$port" ping 2>/dev/null | grep -x PONG >/dev/null; then
            started=1
            break
        fi
        sleep 0.1
    done
    [[ -n $started ]] && break
    log "attempt $attempt: redis-server did not answer on port $port (log: $server_log)"
    stop_server
    server_pid=""
done
[[ -n $started ]] || die "redis-server did not start after $MAX_ATTEMPTS attempts"

log "redis-server $(redis-server --version | sed -n 's/.*v=\([^ ]*\).*/\1/p') listening on redis://127.0.0.1:$port (pid $server_pid)"
export IDEMPOTENCY_TEST_REDIS_URL="redis://127.0.0.1:$port"
REDIS_SERVER="$(command -v redis-server)"
export REDIS_SERVER

status=0
"$@" || status=$?
stop_server
if ((status == 0)); then
    rm -f "$LOG_DIR/redis.$port.log"
fi
exit "$status"

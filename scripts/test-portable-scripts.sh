#!/usr/bin/env bash
# scripts/test-portable-scripts.sh: checks that with-dynamodb-local.sh and
# with-redis.sh (and the helpers of scripts/portable.sh they use) work without the
# Linux-only tools, as on macOS, and still work with them.
#
# Linux only: it plays macOS by running the scripts with PATH set to directories of
# shims, built in a temporary directory from the executables of the current PATH:
#   - ss and flock are left out (macOS has neither);
#   - env, date and ps are wrappers that act like the BSD ones where it matters:
#     env refuses --default-signal, date prints a literal N for %N, ps refuses --ppid;
#   - lsof, python3 and perl are each in a directory of their own, so that a case
#     can leave them out too.
# The cases, each with its PATH:
#   linux    the normal PATH (the control: the scripts' usual Linux tools);
#   bsd      no ss, flock or lsof: python3 bind test, no port-owner check, pgrep,
#            python3 for SIGINT, mkdir locks;
#   mac      what a Mac has: like bsd, with lsof (ports and port owners from lsof);
#   minimal  like bsd, without python3: bash's /dev/tcp for ports, perl for SIGINT;
#   bare     like minimal, without perl (only the SIGINT helper is run there).
# /proc cannot be hidden this way, so the ephemeral port range is still read from
# /proc/sys/net/ipv4/ip_local_port_range (macOS's sysctl is not exercised), and
# bash 5's $EPOCHREALTIME is used for the clock unless a case unsets it.
#
# Each case prints one PASS or FAIL line; the exit status is 1 when any failed.
# It takes 15-25 s (DynamoDB Local starts six times, four of them side by side);
# the servers take random free ports, so it can run next to other tests.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DDB="$ROOT/scripts/with-dynamodb-local.sh"
REDIS="$ROOT/scripts/with-redis.sh"
PORTABLE_SH="$ROOT/scripts/portable.sh"
export PORTABLE_SH

for tool in timeout curl redis-cli python3 perl lsof ss pgrep; do
    command -v "$tool" >/dev/null 2>&1 || {
        echo "test-portable-scripts: needs $tool (this test runs on Linux only)" >&2
        exit 2
    }
done
TIMEOUT="$(command -v timeout)"

TMP="$(mktemp -d "${TMPDIR:-/tmp}/test-portable.XXXXXX")"
BG_PIDS=() # background jobs of this test, stopped if it ends early
cleanup() {
    local pid i alive pids=()
    for pid in ${BG_PIDS[@]+"${BG_PIDS[@]}"}; do
        # With their children: a case's `timeout` passes TERM on to its script.
        # shellcheck disable=SC2207 # PIDs, one a line
        pids+=("$pid" $(pgrep -P "$pid" || true))
    done
    if ((${#pids[@]})); then
        kill -TERM "${pids[@]}" 2>/dev/null || true
        # The scripts need the shims (in $TMP) to stop their servers: wait for them.
        for ((i = 0; i < 150; i++)); do
            alive=0
            for pid in "${pids[@]}"; do
                if kill -0 "$pid" 2>/dev/null; then alive=1; fi
            done
            ((alive)) || break
            sleep 0.1
        done
        wait 2>/dev/null || true
    fi
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

passed=0
failed=0
pass() {
    printf 'PASS %s [%d s]\n' "$1" "$SECONDS"
    passed=$((passed + 1))
}
fail() { # <case> <why> [file whose last lines to show]
    printf 'FAIL %s: %s\n' "$1" "$2"
    if [[ -n ${3-} && -s $3 ]]; then
        tail -n 15 "$3" | sed 's/^/    | /'
    fi
    failed=$((failed + 1))
}

# --- the shims ------------------------------------------------------------------
SEPARATE=(ss flock lsof python3 perl env date ps)
mkdir -p "$TMP/base" "$TMP/bsd" "$TMP/lsof" "$TMP/python3" "$TMP/perl"
declare -A seen=()
links=()
IFS=: read -ra path_dirs <<<"$PATH"
for dir in "${path_dirs[@]}"; do
    [[ -n $dir && -d $dir ]] || continue
    for file in "$dir"/*; do
        name="${file##*/}"
        [[ -z ${seen[$name]-} && -f $file && -x $file ]] || continue
        seen[$name]=1
        case " ${SEPARATE[*]} " in *" $name "*) continue ;; esac
        links+=("$file")
    done
done
ln -s "${links[@]}" "$TMP/base/"
ln -s "$(command -v lsof)" "$TMP/lsof/lsof"
# The interpreter itself, not a version manager's shim script.
ln -s "$(python3 -c 'import sys; print(sys.executable)')" "$TMP/python3/python3"
ln -s "$(command -v perl)" "$TMP/perl/perl"

wrapper() { # <name> <real path>: the body comes on stdin and calls "$real"
    { printf '#!%s\nreal=%q\n' "$BASH" "$2" && cat; } >"$TMP/bsd/$1"
    chmod +x "$TMP/bsd/$1"
}
wrapper env "$(command -v env)" <<'EOF'
# BSD env has no --default-signal ("env: illegal option -- -", status 1).
for arg; do
    case $arg in
    --default-signal*) echo "env: illegal option -- -" >&2 && exit 1 ;;
    -* | *=*) ;;
    *) break ;;
    esac
done
exec "$real" "$@"
EOF
wrapper date "$(command -v date)" <<'EOF'
# BSD date has no %N: it prints N.
args=()
pct_n='%N'
for arg; do
    case $arg in +*) arg="${arg//"$pct_n"/N}" ;; esac
    args+=("$arg")
done
exec "$real" "${args[@]}"
EOF
wrapper ps "$(command -v ps)" <<'EOF'
# BSD ps has no --ppid.
for arg; do
    case $arg in --ppid*) echo "ps: illegal option -- -" >&2 && exit 1 ;; esac
done
exec "$real" "$@"
EOF

declare -A PATHS=(
    [linux]="$PATH"
    [bsd]="$TMP/bsd:$TMP/python3:$TMP/perl:$TMP/base"
    [mac]="$TMP/bsd:$TMP/lsof:$TMP/python3:$TMP/perl:$TMP/base"
    [minimal]="$TMP/bsd:$TMP/perl:$TMP/base"
    [bare]="$TMP/bsd:$TMP/base"
)

# The shims hide what they should.
shims_ok=1
for profile in bsd mac minimal bare; do
    for tool in ss flock; do
        if PATH="${PATHS[$profile]}" command -v "$tool" >/dev/null 2>&1; then
            fail "shims $profile" "$tool is visible"
            shims_ok=0
        fi
    done
    if PATH="${PATHS[$profile]}" env --default-signal=INT true >/dev/null 2>&1 ||
        [[ $(PATH="${PATHS[$profile]}" date +%N) != N ]] ||
        PATH="${PATHS[$profile]}" ps -o pid= --ppid 1 >/dev/null 2>&1; then
        fail "shims $profile" "env, date or ps still act like the GNU ones"
        shims_ok=0
    fi
done
((shims_ok)) || exit 1
pass "shims: no ss/flock; BSD-like env, date, ps (${#links[@]} other tools linked)"

# --- signals --------------------------------------------------------------------
# DynamoDB Local running `sleep 60`: TERM to the script alone (minimal: perl), and
# SIGINT to its whole process group as Ctrl-C in a terminal does (bsd: python3;
# the sleep must not ignore it). Both must end the script at once with 143 / 130
# and stop java and the command. Started first, so that their java starts while
# the cases below run; checked at the end. (Whether the helper really resets an
# ignored SIGINT is checked on its own below: bash 5 does not leave it ignored in
# this case.)
start_signal_case() { # <name> <profile>: sets SIG_PID
    set -m # its own process group, as a terminal's foreground job
    PATH="${PATHS[$2]}" "$DDB" sleep 60 2>"$TMP/$1.err" &
    SIG_PID=$!
    set +m
    BG_PIDS+=("$SIG_PID")
}

signal_case() { # <name> <profile> <signal> <to group: 0|1> <expected status> <script pid>
    local name="$1 ($2)" err="$TMP/$1.err" sig="$3" group="$4" expect="$5" pid="$6"
    local line java="" port="" cmd="" rc=0 i
    # Up when it has said where DynamoDB Local listens and the command runs.
    for ((i = 0; i < 600; i++)); do
        line="$(sed -n 's|.*listening on http://127\.0\.0\.1:\([0-9]*\) (pid \([0-9]*\)).*|\1 \2|p' "$err")"
        if [[ -n $line ]]; then
            read -r port java <<<"$line"
            cmd="$(pgrep -x -P "$pid" sleep || true)"
            [[ -z $cmd ]] || break
        fi
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if [[ -z $cmd ]]; then
        fail "$name" "did not start" "$err"
        return
    fi
    if ((group)); then kill -"$sig" -- -"$pid"; else kill -"$sig" "$pid"; fi
    for ((i = 0; i < 200; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        fail "$name" "still running 20 s after SIG$sig" "$err"
        return
    fi
    wait "$pid" && rc=0 || rc=$?
    if ((rc != expect)); then
        fail "$name" "exit status $rc, expected $expect" "$err"
    elif kill -0 "$java" 2>/dev/null || kill -0 "$cmd" 2>/dev/null; then
        fail "$name" "java (pid $java) or the command (pid $cmd) still runs" "$err"
    elif ! port_closed "$port"; then
        fail "$name" "something still answers on port $port" "$err"
    else
        pass "$name: SIG$sig ended it with $rc, java and the command stopped"
        remove_private_log "$pid"
    fi
}

start_signal_case term minimal
term_pid=$SIG_PID
start_signal_case int bsd
int_pid=$SIG_PID

in_profile() { # <profile> <bash code> [args...]: runs it with portable.sh sourced
    local profile="$1" code="$2"
    shift 2
    PATH="${PATHS[$profile]}" "$TIMEOUT" 20 "$BASH" -c "source \"\$PORTABLE_SH\"; $code" _ "$@"
}

# The same, in a bash started with SIGINT and SIGQUIT ignored. (timeout itself
# gives its command their default actions, so the ignoring comes after it.)
in_profile_ignoring_int() { # <profile> <bash code> [args...]
    local profile="$1" code="$2"
    shift 2
    # shellcheck disable=SC2016 # expanded by the inner bash
    PATH="${PATHS[$profile]}" "$TIMEOUT" 20 "$BASH" -c 'trap "" INT QUIT; exec "$0" "$@"' \
        "$BASH" -c "source \"\$PORTABLE_SH\"; $code" _ "$@"
}

# --- helpers ------------------------------------------------------------------------
if ! out="$(in_profile linux 'require_bash_4_1 3 2' 2>&1)" && [[ $out == *"brew install bash"* ]] &&
    in_profile linux 'require_bash_4_1 4 1 && require_bash_4_1'; then
    pass "require_bash_4_1: refuses 3.2 (names brew install bash), accepts 4.1 and this bash"
else
    fail "require_bash_4_1" "${out:-accepted bash 3.2}"
fi

# now_ms (with $EPOCHREALTIME, then without: GNU date or python3 or seconds),
# child_pids, ephemeral_port_first.
# shellcheck disable=SC2016 # expanded by the inner bash
helpers_check='
    ref=$(($(date +%s) * 1000))
    a=$(now_ms)
    unset EPOCHREALTIME
    b=$(now_ms)
    for t in "$a" "$b"; do
        [[ $t =~ ^[0-9]+$ ]] && ((t - ref > -3000 && t - ref < 3000)) ||
            { echo "now_ms gave $t, expected about $ref"; exit 1; }
    done
    sleep 5 &
    kids=" $(child_pids $$ | tr "\n" " ") "
    kill $!
    [[ $kids == *" $! "* ]] || { echo "child_pids $$ gave [$kids], without $!"; exit 1; }
    first=$(ephemeral_port_first) && [[ $first =~ ^[0-9]+$ ]] ||
        { echo "ephemeral_port_first gave [$first]"; exit 1; }
'
for profile in linux bsd minimal; do
    if out="$(in_profile "$profile" "$helpers_check" 2>&1)"; then
        pass "helpers ($profile): now_ms with and without EPOCHREALTIME, child_pids, ephemeral_port_first"
    else
        fail "helpers ($profile)" "$out"
    fi
done

# exec_with_default_int_quit, run the way the script runs it: a background
# command of a shell without job control. Such a shell starts a background
# *simple* command with SIGINT/SIGQUIT ignored; bash 5 gives a background function
# that execs the dispositions the shell started with, so the shell here starts
# with them ignored, as it would under nohup or from a non-interactive parent (and
# as older bash versions do). SIGINT, sent until it works, must stop the command
# (130); with no tool to reset it, the command runs to its end (0). A missing
# command gives 127.
# shellcheck disable=SC2016 # expanded by the inner bash
sigint_check='
    exec_with_default_int_quit sleep "$1" &
    pid=$!
    for ((i = 0; i < 10 * $1; i++)); do
        sleep 0.1
        kill -INT "$pid" 2>/dev/null || break
    done
    wait "$pid" && rc=0 || rc=$?
    exec_with_default_int_quit no-such-command-xyz 2>/dev/null &
    wait $! && missing=0 || missing=$?
    echo "$rc $missing"
'
for profile in linux:env bsd:python3 minimal:perl bare:none; do
    tool="${profile#*:}"
    profile="${profile%:*}"
    expect="130 127" seconds=5
    if [[ $tool == none ]]; then expect="0 127" seconds=1; fi
    if out="$(in_profile_ignoring_int "$profile" "$sigint_check" "$seconds" 2>"$TMP/sigint.err")" &&
        [[ $out == "$expect" ]] &&
        { [[ $tool != none ]] || grep 'Ctrl-C may not reach it' "$TMP/sigint.err" >/dev/null; }; then
        pass "exec_with_default_int_quit ($profile, $tool): SIGINT/missing command give $expect"
    else
        fail "exec_with_default_int_quit ($profile, $tool)" "got [$out], expected [$expect]" "$TMP/sigint.err"
    fi
done

# Locks: held (try-once and timed wait fail), given up at exit (a waiter gets
# it), taken over when the holder was killed with SIGKILL (for flock the kernel
# releases it; a lock directory is stale), and nothing left behind.
wait_for_file() { # <file> <pid>: until the file exists, the process is gone, or 10 s
    local i
    for ((i = 0; i < 200; i++)); do
        if [[ -e $1 ]] || ! kill -0 "$2" 2>/dev/null; then return 0; fi
        sleep 0.05
    done
}

lock_check() { # <profile> <kind>
    local profile="$1" kind="$2" dir="$TMP/lock-$1" pid rc=0
    local file="$dir/x.lock" err="$TMP/lock-$1.err"
    mkdir -p "$dir"
    # Not through in_profile: $! must be the holder itself, to kill it.
    # shellcheck disable=SC2016 # expanded by the inner bash
    PATH="${PATHS[$profile]}" "$BASH" -c 'source "$PORTABLE_SH"
        lock_take fd "$1" 0 || exit 3; : >"$2"; exec sleep 30' _ "$file" "$dir/held" 2>>"$err" &
    pid=$!
    BG_PIDS+=("$pid")
    wait_for_file "$dir/held" "$pid"
    # shellcheck disable=SC2016 # expanded by the inner bash
    in_profile "$profile" '
        lock_take a "$1" 0 && { echo "try-once took a held lock"; exit 1; }
        t0=$SECONDS
        lock_take b "$1" 1 && { echo "a 1 s wait took a held lock"; exit 1; }
        ((SECONDS - t0 <= 3)) || { echo "a 1 s wait took $((SECONDS - t0)) s"; exit 1; }
        exit 0' "$file" >>"$err" 2>&1 || rc=1
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    # shellcheck disable=SC2016 # expanded by the inner bash
    in_profile "$profile" '
        lock_take a "$1" 0 || { echo "not taken after its holder was killed"; exit 1; }
        lock_release a
        [[ ! -e $1.d ]] || { echo "lock_release left $1.d"; exit 1; }
        lock_take b "$1" 0 || { echo "not taken after lock_release"; exit 1; }
        trap lock_release_all EXIT
        : >"$2"
        sleep 1 &
        wait $!' "$file" "$dir/held-again" >>"$err" 2>&1 &
    pid=$!
    wait_for_file "$dir/held-again" "$pid"
    # shellcheck disable=SC2016 # expanded by the inner bash
    in_profile "$profile" 'trap lock_release_all EXIT
        lock_take a "$1" 10 || { echo "a waiter did not get it after its holder exited"; exit 1; }' \
        "$file" >>"$err" 2>&1 || rc=1
    wait "$pid" || rc=1
    if [[ -e $file.d ]]; then
        echo "$file.d left behind" >>"$err"
        rc=1
    fi
    if [[ $kind == mkdir ]] && ! grep 'taking over' "$err" >/dev/null; then
        echo "no takeover of the killed holder's lock directory" >>"$err"
        rc=1
    fi
    if ((rc == 0)); then
        pass "locks ($profile, $kind): try-once, timed wait, release at exit, after kill -9"
    else
        fail "locks ($profile, $kind)" "see below" "$err"
    fi
}
lock_check linux flock
lock_check bsd mkdir

# --- the scripts -------------------------------------------------------------------
# The command checks what it sees (its stdin too), writes the URL down and exits
# with 42, which the script must pass on; afterwards nothing may answer on that port.
# shellcheck disable=SC2016 # expanded by the inner bash
DDB_CHECK='
    [[ -n ${AWS_ENDPOINT_URL_DYNAMODB-} ]] || exit 91
    read -r line && [[ $line == stdin-ok ]] || exit 94
    echo "$AWS_ENDPOINT_URL_DYNAMODB $PPID" >"$CHECK_OUT"
    code=$(curl -s -o /dev/null -w "%{http_code}" --max-time 10 "$AWS_ENDPOINT_URL_DYNAMODB/") || exit 92
    [[ $code =~ ^[1-5][0-9][0-9]$ ]] || exit 92
    source "$PORTABLE_SH"
    port_in_use "${AWS_ENDPOINT_URL_DYNAMODB##*:}" || exit 93
    exit 42'
# shellcheck disable=SC2016 # expanded by the inner bash
REDIS_CHECK='
    [[ -n ${IDEMPOTENCY_TEST_REDIS_URL-} ]] || exit 91
    read -r line && [[ $line == stdin-ok ]] || exit 94
    echo "$IDEMPOTENCY_TEST_REDIS_URL $PPID" >"$CHECK_OUT"
    [[ $(redis-cli -u "$IDEMPOTENCY_TEST_REDIS_URL" ping) == PONG ]] || exit 92
    source "$PORTABLE_SH"
    port_in_use "${IDEMPOTENCY_TEST_REDIS_URL##*:}" || exit 93
    exit 42'

# The scripts keep their logs when the command fails, as 42 does: once a case
# passed, its logs go (with-redis.sh's, and with-dynamodb-local.sh's own one, which
# it has when another copy holds the shared log).
remove_private_log() { # <pid of the script>
    if [[ $1 =~ ^[0-9]+$ ]]; then rm -f "$ROOT/.dynamodb-local/dynamodb-local.$1.log"; fi
}

port_closed() { # <port>: nothing listens there any more
    local port="$1"
    ! curl -s -o /dev/null --max-time 3 "http://127.0.0.1:$port/" && [[ -z "$(ss -Hltn "sport = :$port")" ]]
}

run_case() { # <server: ddb|redis> <profile>
    local server="$1" profile="$2" name="$1 ($2)" rc=0 url script_pid port note
    local err="$TMP/$1-$2.err" script="$DDB" check="$DDB_CHECK"
    if [[ $server == redis ]]; then
        script="$REDIS"
        check="$REDIS_CHECK"
    fi
    : >"$TMP/$1-$2.url"
    PATH="${PATHS[$profile]}" CHECK_OUT="$TMP/$1-$2.url" "$TIMEOUT" 60 "$script" "$BASH" -c "$check" \
        2>"$err" <<<"stdin-ok" || rc=$?
    read -r url script_pid <"$TMP/$1-$2.url" || true
    port="${url##*:}"
    if ((rc != 42)); then
        fail "$name" "exit status $rc, expected 42 (91-94: the check failed)" "$err"
        return
    fi
    if [[ -z $port ]] || ! port_closed "$port"; then
        fail "$name" "something still answers on port ${port:-?} after the script ended" "$err"
        return
    fi
    # Without ss and lsof the scripts say that they skip the port-owner check.
    note=0
    if grep 'neither ss nor lsof found' "$err" >/dev/null; then note=1; fi
    if [[ $profile == bsd || $profile == minimal ]]; then
        if ((!note)); then
            fail "$name" "no note about the skipped port-owner check" "$err"
            return
        fi
    elif ((note)); then
        fail "$name" "skipped the port-owner check" "$err"
        return
    fi
    pass "$name: $url answered, exit status 42 passed on, server gone"
    if [[ $server == ddb ]]; then
        remove_private_log "${script_pid:-}"
    else
        rm -f "$ROOT/.redis/redis.$port.log"
    fi
}

# The four PATHs side by side (several copies at once is a case of its own: the
# log lock), each with its results in a file, shown in order when all are done.
case_pids=()
for profile in linux bsd mac minimal; do
    {
        run_case ddb "$profile"
        run_case redis "$profile"
    } >"$TMP/out-$profile" &
    case_pids+=("$!")
    BG_PIDS+=("$!")
done
for pid in "${case_pids[@]}"; do wait "$pid" || true; done
for profile in linux bsd mac minimal; do
    cat "$TMP/out-$profile"
    passed=$((passed + $(grep -c '^PASS ' "$TMP/out-$profile" || true)))
    failed=$((failed + $(grep -c '^FAIL ' "$TMP/out-$profile" || true)))
done

signal_case term minimal TERM 0 143 "$term_pid"
signal_case int bsd INT 1 130 "$int_pid"

# No lock directory may be left behind by the shim cases (one whose owner still
# runs belongs to a copy running next to this test).
lock_dir="$ROOT/.dynamodb-local/.log.lock.d"
owner=""
if [[ -e $lock_dir ]]; then read -r owner <"$lock_dir/pid" || owner="?"; fi
if [[ -n $owner ]] && ! kill -0 "$owner" 2>/dev/null; then
    fail "ddb log lock" "$lock_dir is left behind (by process $owner, which is gone)"
else
    pass "ddb log lock: no lock directory left behind"
fi

echo "portable scripts: $passed passed, $failed failed"
((failed == 0))

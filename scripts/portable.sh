# shellcheck shell=bash
# scripts/portable.sh: process, port, lock and clock helpers for the scripts that
# start local servers (with-dynamodb-local.sh, with-redis.sh), so that they run on
# Linux and on macOS alike. Source it; it only defines functions.
#
# Each helper uses the Linux tool first when it is there (ss, flock, GNU env and
# date, procps ps, /proc), so the Linux path is the one these scripts always had,
# and falls back to what macOS has (lsof, pgrep, sysctl, perl, python3 from the
# Command Line Tools) or to bash itself.
#
# Messages go through the caller's `log` function when it has one.
#
# This file has to load under macOS's bash 3.2, so that require_bash_4_1 can say
# what is wrong: no syntax newer than 3.2 anywhere, and bash 4 features only in
# functions that run after that check.

_portable_log() {
    if declare -F log >/dev/null; then
        log "$@"
    else
        printf '%s: %s\n' "${0##*/}" "$*" >&2
    fi
}

_portable_have() { command -v "$1" >/dev/null 2>&1; }

# python3 that really runs. On macOS /usr/bin/python3 is a stub when the Command
# Line Tools are missing: running it fails and opens an installer dialog, so it
# is not even tried then. Cached per shell (subshells repeat the probe).
_portable_python3() {
    if [[ -z ${_PORTABLE_PYTHON3-} ]]; then
        _PORTABLE_PYTHON3=no
        if _portable_have python3; then
            if [[ $(uname -s 2>/dev/null) == Darwin && $(command -v python3) == /usr/bin/python3 ]] &&
                ! xcode-select -p >/dev/null 2>&1; then
                :
            elif python3 -c '' >/dev/null 2>&1; then
                _PORTABLE_PYTHON3=yes
            fi
        fi
    fi
    [[ $_PORTABLE_PYTHON3 == yes ]]
}

# require_bash_4_1: exits with an error unless this bash is 4.1 or newer (the
# scripts allocate file descriptors with `exec {var}>file`). macOS still ships
# bash 3.2 as /bin/bash. The two optional arguments (major, minor) stand in for
# this bash's version, for tests.
require_bash_4_1() {
    local major="${1:-${BASH_VERSINFO[0]}}" minor="${2:-${BASH_VERSINFO[1]}}"
    if ((major > 4 || (major == 4 && minor >= 1))); then
        return 0
    fi
    printf '%s: error: bash 4.1 or newer is needed; this is bash %s.%s (%s)\n' \
        "${0##*/}" "$major" "$minor" "${BASH:-bash}" >&2
    printf '  on macOS: brew install bash, and put its bin directory before /bin in PATH\n' >&2
    printf '  (the scripts start with #!/usr/bin/env bash, so the first bash in PATH runs them)\n' >&2
    exit 1
}

# port_in_use <port>: whether any TCP socket (listening or not) has that local port.
#   1. ss (Linux): every TCP socket, of every user.
#   2. lsof (macOS): TCP sockets with that port at either end; without root only
#      your own processes' sockets, so it can miss another user's server.
#   3. python3: whether 127.0.0.1:<port> can be bound (no SO_REUSEADDR, so any
#      socket on that port, even one closing, makes it fail).
#   4. bash's /dev/tcp: whether something accepts connections on 127.0.0.1:<port>
#      (listeners only).
# None of them is exact (another process can take the port right after), so the
# callers retry on another port when their server cannot bind.
port_in_use() {
    local port="$1"
    if _portable_have ss; then
        [[ -n "$(ss -Htan "sport = :$port" 2>/dev/null)" ]]
        return
    fi
    if _portable_have lsof; then
        [[ -n "$(lsof -nP -iTCP:"$port" 2>/dev/null || true)" ]]
        return
    fi
    if _portable_python3; then
        local rc=0
        python3 -c '
import errno, socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError as e:
    sys.exit(3 if e.errno == errno.EADDRINUSE else 4)
' "$port" 2>/dev/null || rc=$?
        case $rc in
        0) return 1 ;;
        3) return 0 ;;
        esac # anything else: python3 could not tell, try /dev/tcp
    fi
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null
}

# listening_pids <port>: the PIDs of the processes listening on that TCP port,
# one a line (none when nobody listens, or only other users' processes do).
# Status 1 when there is no tool to tell (neither ss nor lsof): the callers then
# skip their check that their own server owns the port.
listening_pids() {
    local port="$1"
    if _portable_have ss; then
        # users:(("java",pid=123,fd=45),("java",pid=124,fd=45))
        ss -Hltnp "sport = :$port" 2>/dev/null | tr ',' '\n' | sed -n 's/^pid=\([0-9][0-9]*\).*/\1/p' || true
        return 0
    fi
    if _portable_have lsof; then
        lsof -nP -t -iTCP:"$port" -sTCP:LISTEN 2>/dev/null || true # status 1: none
        return 0
    fi
    return 1
}

# child_pids <pid>: the PIDs of its child processes, one a line. procps ps (Linux)
# takes --ppid; BSD ps (macOS) does not, pgrep -P (on both) does. ps with --ppid
# also fails when there are no children; pgrep then finds none either.
child_pids() {
    ps -o pid= --ppid "$1" 2>/dev/null || pgrep -P "$1" 2>/dev/null || true
}

# now_ms: milliseconds since the epoch, for measuring durations.
#   bash 5's $EPOCHREALTIME (no process), GNU date's %N (BSD date prints a
#   literal N), python3, and at worst whole seconds.
now_ms() {
    local t
    if ((BASH_VERSINFO[0] >= 5)) && [[ -n ${EPOCHREALTIME-} ]]; then
        t="${EPOCHREALTIME//[!0-9]/}" # seconds and 6 digits of microseconds, whatever the locale's decimal point
        echo $((t / 1000))
        return 0
    fi
    t="$(date +%s%N 2>/dev/null)" || t=""
    if [[ $t =~ ^[0-9]{13,}$ ]]; then # more digits than the seconds alone
        echo $((t / 1000000))
        return 0
    fi
    if _portable_python3 && t="$(python3 -c 'import time; print(int(time.time() * 1000))' 2>/dev/null)" &&
        [[ $t =~ ^[0-9]+$ ]]; then
        echo "$t"
        return 0
    fi
    echo $(($(date +%s) * 1000))
}

# ephemeral_port_first: the first port of the range the kernel hands out to
# outgoing connections (Linux /proc, macOS sysctl); status 1 when unknown.
ephemeral_port_first() {
    local first="" _rest
    local range=/proc/sys/net/ipv4/ip_local_port_range
    if [[ -r $range ]]; then
        read -r first _rest <"$range" || first=""
    elif _portable_have sysctl; then
        first="$(sysctl -n net.inet.ip.portrange.first 2>/dev/null)" || first=""
    fi
    [[ $first =~ ^[0-9]+$ ]] || return 1
    echo "$first"
}

# --- locks ----------------------------------------------------------------------
# lock_take <fd var> <lock file> <wait seconds; 0: try once>
#   Opens the lock file on a new file descriptor, stores its number in <fd var>
#   and takes the lock: status 0 when taken, 1 when another process still holds
#   it after the wait. The descriptor is opened in both cases, so that callers can
#   close it in their children (`{var}>&-`) whatever the lock's kind.
#   With flock (Linux) the lock is on the descriptor: the kernel releases it when
#   every copy of the descriptor is closed, even after kill -9.
#   Without flock (macOS) it is the directory <lock file>.d holding the owner's
#   PID: mkdir is atomic, and a directory whose owner is dead is taken over, so a
#   lock left by a killed script does not block anyone. Remove it with
#   lock_release, or lock_release_all from an EXIT trap.
# lock_release <fd var>: releases the lock and closes the descriptor.
# lock_release_all: removes every lock directory this shell holds (for EXIT traps).
_PORTABLE_LOCK_DIRS=() # by descriptor number: the lock directory held

_portable_pid_alive() { # kill -0 fails for other users' processes; ps does not
    kill -0 "$1" 2>/dev/null || ps -p "$1" >/dev/null 2>&1
}

_portable_mkdir_lock() { # <dir>: takes it once, or removes it when its owner is dead
    local dir="$1" owner=""
    if mkdir "$dir" 2>/dev/null; then
        printf '%s\n' "$$" >"$dir/pid"
        return 0
    fi
    read -r owner 2>/dev/null <"$dir/pid" || owner=""
    # An empty pid file: its owner is between mkdir and writing it.
    if [[ $owner =~ ^[0-9]+$ ]] && ! _portable_pid_alive "$owner"; then
        # Two waiters may find the same dead owner: only the one that creates the
        # .takeover directory removes the lock, and only if it is still the dead
        # owner's (the other may already have removed it and taken it anew).
        if mkdir "$dir.takeover" 2>/dev/null; then
            local now=""
            read -r now 2>/dev/null <"$dir/pid" || now=""
            if [[ $now == "$owner" ]]; then
                _portable_log "taking over $dir from process $owner, which is gone"
                rm -rf "$dir"
            fi
            rmdir "$dir.takeover" 2>/dev/null || true
            if mkdir "$dir" 2>/dev/null; then
                printf '%s\n' "$$" >"$dir/pid"
                return 0
            fi
        fi
    fi
    return 1
}

lock_take() {
    local _lt_var="$1" _lt_file="$2" _lt_wait="$3" _lt_fd _lt_deadline
    exec {_lt_fd}>"$_lt_file"
    printf -v "$_lt_var" '%s' "$_lt_fd"
    if _portable_have flock; then
        if ((_lt_wait > 0)); then
            flock -w "$_lt_wait" "$_lt_fd"
        else
            flock -n "$_lt_fd"
        fi
        return
    fi
    # SECONDS counts whole seconds: + 1 to wait at least as long as asked.
    _lt_deadline=$((SECONDS + _lt_wait + 1))
    while :; do
        if _portable_mkdir_lock "$_lt_file.d"; then
            _PORTABLE_LOCK_DIRS[_lt_fd]="$_lt_file.d"
            return 0
        fi
        ((_lt_wait > 0 && SECONDS < _lt_deadline)) || return 1
        sleep 0.2
    done
}

_portable_rm_lock_dir() { # <dir>: only when this shell owns it
    local owner=""
    read -r owner 2>/dev/null <"$1/pid" || owner=""
    if [[ $owner == "$$" ]]; then rm -rf "$1"; fi
}

lock_release() {
    local _lr_fd="${!1-}"
    [[ -n $_lr_fd ]] || return 0
    if [[ -n ${_PORTABLE_LOCK_DIRS[_lr_fd]-} ]]; then
        _portable_rm_lock_dir "${_PORTABLE_LOCK_DIRS[_lr_fd]}"
        unset '_PORTABLE_LOCK_DIRS[_lr_fd]'
    fi
    exec {_lr_fd}>&-
}

lock_release_all() {
    local fd
    for fd in ${_PORTABLE_LOCK_DIRS[@]+"${!_PORTABLE_LOCK_DIRS[@]}"}; do
        _portable_rm_lock_dir "${_PORTABLE_LOCK_DIRS[fd]}"
        unset '_PORTABLE_LOCK_DIRS[fd]'
    done
}

# --- signals --------------------------------------------------------------------
# exec_with_default_int_quit <command> [args...]: execs the command with SIGINT
# and SIGQUIT back at their default action, so that Ctrl-C stops it. A script
# without job control starts its background commands with both ignored, and few
# programs undo an ignore they inherit. (bash 5 happens to restore them when a
# background function execs, unless the script itself started with them ignored;
# the tools below do not depend on that.) It execs, so call it as a background
# command (`exec_with_default_int_quit cmd &`) or in a subshell.
#   1. GNU env --default-signal (coreutils 8.31+);
#   2. python3, which also resets SIGPIPE and SIGXFSZ: it ignores both itself;
#   3. perl;
#   4. otherwise the command runs with the signals ignored (a warning says so).
# A command that cannot be run exits with 127 (not found) or 126, as with env.
exec_with_default_int_quit() {
    if env --default-signal=INT true >/dev/null 2>&1; then
        exec env --default-signal=INT,QUIT "$@"
    fi
    if _portable_python3; then
        exec python3 -c '
import errno, os, signal, sys
for s in (signal.SIGINT, signal.SIGQUIT, signal.SIGPIPE, signal.SIGXFSZ):
    signal.signal(s, signal.SIG_DFL)
try:
    os.execvp(sys.argv[1], sys.argv[1:])
except OSError as e:
    sys.stderr.write("%s: %s\n" % (sys.argv[1], e.strerror))
    sys.exit(127 if e.errno == errno.ENOENT else 126)
' "$@"
    fi
    if _portable_have perl; then
        # exec {$ARGV[0]} @ARGV: never through a shell, even for a single word.
        exec perl -e '
$SIG{INT} = $SIG{QUIT} = "DEFAULT";
exec { $ARGV[0] } @ARGV or do { print STDERR "$ARGV[0]: $!\n"; exit($!{ENOENT} ? 127 : 126) };
' -- "$@"
    fi
    _portable_log "warning: neither GNU env --default-signal, python3 nor perl found: $1 runs with SIGINT/SIGQUIT ignored, Ctrl-C may not reach it"
    exec "$@"
}

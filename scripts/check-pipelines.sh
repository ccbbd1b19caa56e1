#!/usr/bin/env bash
# scripts/check-pipelines.sh: fails when a shell pipeline in .ci/run, scripts/ or the
# Makefile ends in a reader that stops early (`head`, `grep -q`/`-m` in any option
# position, `sed ...q`, `awk ...exit`).
#
# Under `set -o pipefail` such a pipeline fails at random: when the reader exits
# before the writer has written everything, the writer dies of SIGPIPE (status 141)
# and the whole pipeline fails, though nothing was wrong. It depends on timing, so it
# passes on an idle machine and fails on a busy CI runner. Read the whole input
# instead (`sed -n 1p`, `grep ... >/dev/null`), or keep the output in a variable.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

files=(.ci/run Makefile scripts/*.sh)
pattern='\|[[:space:]]*(head([[:space:]]|$)|grep([[:space:]]+[^|[:space:]]+)*[[:space:]]+(-[[:alnum:]]*[qm][[:alnum:]]*|--quiet|--silent|--max-count)|sed[^|]*[;[:space:]'"'"'"]q|awk[^|]*exit)'
# This file names the pattern in its own comments and code.
if matches="$(grep -nE "$pattern" "${files[@]}" | grep -v '^scripts/check-pipelines.sh:')"; then
    echo "error: pipelines that can fail with SIGPIPE under pipefail:" >&2
    printf '%s\n' "$matches" >&2
    echo "read the whole input instead (sed -n 1p, grep ... >/dev/null)" >&2
    exit 1
fi
echo "pipelines: no early-exit readers in ${#files[@]} files"

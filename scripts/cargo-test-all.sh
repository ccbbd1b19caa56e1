#!/usr/bin/env bash
# Runs every test in the workspace (unit, integration, examples, doc tests) and ends
# with one summary line, "tests: N passed, M failed", counted over every test binary:
# cargo's own last line only describes its last binary (often one with no tests).
set -uo pipefail

log="$(mktemp)"
trap 'rm -f "$log"' EXIT

status=0
cargo test --workspace --all-targets 2>&1 | tee -a "$log" || status=1
if ((status == 0)); then
    cargo test --workspace --doc 2>&1 | tee -a "$log" || status=1
fi

read -r passed failed < <(
    sed -n 's/^test result: [a-zA-Z]*\. \([0-9]*\) passed; \([0-9]*\) failed.*/\1 \2/p' "$log" |
        awk '{p += $1; f += $2} END {print p + 0, f + 0}'
)
echo
echo "tests: ${passed} passed, ${failed} failed"
if ((status != 0 || failed != 0)); then
    exit 1
fi
if ((passed == 0)); then
    echo "no test ran" >&2
    exit 1
fi

#!/usr/bin/env bash
# Runs every cargo-fuzz target (fuzz/fuzz_targets) for SECONDS each (default 10:
# what `make test` runs; `make fuzz` and `make verify` run longer), seeded from the
# sample events: their bodies for canonical_json, their Idempotency-Key values (bare
# and quoted) for idempotency_key. Prints one line per target (executions, coverage,
# features, corpus size) and fails if any target crashed, leaving each reproducer under
# fuzz/artifacts/<target>/.
# Usage: scripts/fuzz.sh [SECONDS] [TARGET...]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

seconds="${1:-10}"
shift || true
scripts/require.sh cargo cargo-fuzz python3

# cargo fuzz passes rustc -Z flags (sanitizer coverage); the stable toolchain accepts
# them with RUSTC_BOOTSTRAP. No sanitizer (-s none): the targets' code is safe Rust,
# and the release profile keeps debug assertions and overflow checks on.
export RUSTC_BOOTSTRAP=1
cd fuzz
echo "== building the fuzz targets"
cargo fuzz build -s none

targets=("$@")
if ((${#targets[@]} == 0)); then
    mapfile -t targets < <(cargo fuzz list)
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
python3 - "$work" <<'PY'
import json, pathlib, sys
work = pathlib.Path(sys.argv[1])
(work / "canonical_json").mkdir()
(work / "idempotency_key").mkdir()
n = 0
for path in sorted(pathlib.Path("../events").glob("*.json")):
    text = path.read_bytes()
    (work / "canonical_json" / path.name).write_bytes(text)
    try:
        event = json.loads(text)
    except ValueError:
        continue
    events = event.get("Records", [event]) if isinstance(event, dict) else []
    for i, e in enumerate(events):
        if not isinstance(e, dict):
            continue
        body = e.get("body")
        if isinstance(body, str):
            (work / "canonical_json" / f"{path.stem}.{i}.body").write_text(body)
        headers = dict(e.get("headers") or {})
        for name, values in (e.get("multiValueHeaders") or {}).items():
            headers.setdefault(name, ",".join(values))
        for name, value in headers.items():
            if name.lower() == "idempotency-key" and isinstance(value, str):
                n += 1
                (work / "idempotency_key" / f"{n}").write_text(value)
                (work / "idempotency_key" / f"{n}q").write_text(f'"{value}"')
PY

status=0
for target in "${targets[@]}"; do
    corpus="$work/$target"
    mkdir -p "$corpus"
    log="$work/$target.log"
    if cargo fuzz run -s none "$target" "$corpus" -- \
        -max_total_time="$seconds" -print_final_stats=1 -timeout=10 >"$log" 2>&1; then
        result=ok
    else
        result=CRASH
        status=1
    fi
    done_line="$(grep -E '^#[0-9]+\s+DONE' "$log" | tail -1 || true)"
    [[ -n $done_line ]] || done_line="$(grep -E '^#[0-9]+' "$log" | tail -1 || true)"
    execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)"
    cov="$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$done_line")"
    ft="$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$done_line")"
    corp="$(sed -n 's/.* corp: \([0-9]*\/[0-9a-zA-Z]*\).*/\1/p' <<<"$done_line")"
    printf '%-16s %-5s %4ss  executions %-10s coverage %-6s features %-6s corpus %s\n' \
        "$target" "$result" "$seconds" "${execs:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}"
    if [[ $result == CRASH ]]; then
        grep -v '^#' "$log" | tail -40 >&2
    fi
done
exit "$status"

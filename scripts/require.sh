#!/usr/bin/env bash
# scripts/require.sh <command>...
# Fails with a hint on how to install the first command that is not on PATH.
set -euo pipefail

hint() {
    case "$1" in
    cargo | rustc | rustup) echo "install Rust with rustup" ;;
    cargo-fmt | rustfmt) echo "run: rustup component add rustfmt" ;;
    cargo-clippy | clippy-driver) echo "run: rustup component add clippy" ;;
    java) echo "install a Java 17+ runtime (e.g. apt-get install openjdk-17-jre-headless)" ;;
    node | npm) echo "install Node.js 18+ with npm" ;;
    make) echo "install GNU make (e.g. apt-get install make)" ;;
    spin) echo "install the model checker spin (e.g. apt-get install spin)" ;;
    gcc) echo "install a C compiler (e.g. apt-get install gcc)" ;;
    cargo-fuzz) echo "run: cargo install cargo-fuzz --locked" ;;
    *) echo "install it and make sure it is on PATH" ;;
    esac
}

status=0
for cmd in "$@"; do
    if ! command -v "$cmd" >/dev/null 2>&1; then
        echo "$cmd not found: $(hint "$cmd")" >&2
        status=1
    fi
done
exit "$status"

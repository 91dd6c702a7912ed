#!/bin/sh
# Builds and runs the tree-sitter agreement check: prints each example on which jitsh and
# tree-sitter-powershell read different commands, then the agreement figures.
# Usage: tools/ts-agreement/run.sh [path/to/exchange-examples.jsonl]
# Needs crates.io the first time (tree-sitter, tree-sitter-powershell); shares the repository's
# target directory so jitsh's dependencies are not built twice.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
src=${1:-}
if [ -z "$src" ]; then
    for candidate in "$root/../shared/corpus/exchange-examples.jsonl" /work/shared/corpus/exchange-examples.jsonl; do
        if [ -f "$candidate" ]; then src=$candidate; break; fi
    done
fi
if [ -z "$src" ] || [ ! -f "$src" ]; then
    echo "run.sh: exchange-examples.jsonl not found; pass its path" >&2
    exit 2
fi
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"
export CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-1}"
# Start from the root's lock file, so jitsh's dependencies resolve to the versions already built;
# the grammar itself is pinned in Cargo.toml.
if [ ! -f "$here/Cargo.lock" ]; then
    cp "$root/Cargo.lock" "$here/Cargo.lock"
fi
exec cargo run --quiet --manifest-path "$here/Cargo.toml" -- "$src"

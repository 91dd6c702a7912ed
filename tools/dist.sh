#!/bin/sh
# Builds the shipped jitsh: `dist/jitsh` (no debug sections, symbols kept) and `dist/jitsh.debug`
# (jitsh's line tables, compressed), tied together by a `.gnu_debuglink`. A backtrace from
# `dist/jitsh` shows file and line for jitsh's code while `jitsh.debug` sits beside it; without
# it, function names only.
#
#   sh tools/dist.sh            # into ./dist
#   sh tools/dist.sh OUT_DIR
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$here/dist}
for tool in objcopy readelf; do
    command -v "$tool" >/dev/null || { echo "dist: $tool is needed (Debian: binutils)" >&2; exit 1; }
done
cd "$here"
cargo build --locked --profile release-lines -p jitsh --bin jitsh
built=$here/target/release-lines/jitsh
mkdir -p "$out"
objcopy --only-keep-debug --compress-debug-sections=zlib "$built" "$out/jitsh.debug.tmp"
mv "$out/jitsh.debug.tmp" "$out/jitsh.debug"
(cd "$out" && objcopy --strip-debug --add-gnu-debuglink=jitsh.debug "$built" jitsh.tmp && mv jitsh.tmp jitsh)
size=$(wc -c <"$out/jitsh")
echo "dist: $out/jitsh $size bytes; line tables in $out/jitsh.debug $(wc -c <"$out/jitsh.debug") bytes"

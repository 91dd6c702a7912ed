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
# Profile-guided: optimised for the profile tools/pgo.sh records (JITSH_PGO=0 builds without).
# Where no profile can be made (no llvm-tools, no python3), the plain build is shipped and this
# says so.
if [ "${JITSH_PGO:-1}" != 0 ] && sh tools/pgo.sh --profile release-lines -p jitsh --bin jitsh; then
    RUSTFLAGS="-Cprofile-use=$(cat "$here/target/pgo/profile")" \
        cargo build --locked --profile release-lines --target-dir "$here/target/pgo/use" -p jitsh --bin jitsh
    built=$here/target/pgo/use/release-lines/jitsh
    how="profile-guided"
    # The profile knows functions by symbol name: a build that named them otherwise (other
    # packages, features or cargo profile than tools/pgo.sh built) would be optimised blind.
    sym=$(nm "$built" | awk '$3 ~ /^_ZN10jitsh_core4gate10check_line17h/ && !found {print $3; found = 1}')
    if [ -z "$sym" ] || ! "$(cat "$here/target/pgo/llvm-profdata")" show --all-functions \
        "$(cat "$here/target/pgo/profile")" | grep -qF "$sym"; then
        echo "dist: the profile does not cover the built binary's functions (${sym:-no check_line})" >&2
        exit 1
    fi
else
    [ "${JITSH_PGO:-1}" != 0 ] && echo "dist: WARNING: no profile; building without profile-guided optimisation" >&2
    cargo build --locked --profile release-lines -p jitsh --bin jitsh
    built=$here/target/release-lines/jitsh
    how="not profile-guided"
fi
mkdir -p "$out"
objcopy --only-keep-debug --compress-debug-sections=zlib "$built" "$out/jitsh.debug.tmp"
mv "$out/jitsh.debug.tmp" "$out/jitsh.debug"
(cd "$out" && objcopy --strip-debug --add-gnu-debuglink=jitsh.debug "$built" jitsh.tmp && mv jitsh.tmp jitsh)
size=$(wc -c <"$out/jitsh")
echo "dist: $out/jitsh $size bytes ($how); line tables in $out/jitsh.debug $(wc -c <"$out/jitsh.debug") bytes"

#!/bin/sh
# Writes the profile a profile-guided release build is optimised with, and its path into
# target/pgo/profile. The arguments are the cargo build's own (default: the shipped binary's,
# as `tools/dist.sh` builds it): the instrumented build must select the same packages, features
# and profile as the optimised one, since the profile knows functions by their symbol names and
# those change with any of them.
#
# Builds an instrumented jitsh into target/pgo/gen, has it check the training lines of
# tools/pgo-train.py against the demo policies and against 20,000 generated rules, runs one
# shell session with it (tools/pgo-shell.py), and merges what it counted. The lines are the
# even-numbered examples of the Exchange corpus (../shared/corpus, or JITSH_PGO_CORPUS); the
# benchmark times the odd-numbered ones. Without the corpus, lines made from the cmdlet catalog
# and the fuzz seeds, and it says so. Needs
# `llvm-profdata` of rustc's own LLVM: the `llvm-tools` rustup component, installed here when
# missing. Exits non-zero, saying why, when a step cannot run.
#
#   sh tools/pgo.sh                                   # for tools/dist.sh
#   sh tools/pgo.sh --release --workspace             # for the benchmark build (README)
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
work=$here/target/pgo

find_profdata() {
    for p in "$(rustc --print sysroot)"/lib/rustlib/*/bin/llvm-profdata; do
        [ -x "$p" ] && { echo "$p"; return 0; }
    done
    return 1
}
profdata=$(find_profdata) || {
    rustup component add llvm-tools >/dev/null 2>&1 || true
    profdata=$(find_profdata) || {
        echo "pgo: llvm-profdata is missing (rustup component add llvm-tools)" >&2
        exit 1
    }
}
command -v python3 >/dev/null || { echo "pgo: python3 is needed for the training input" >&2; exit 1; }

rm -rf "$work/raw" "$work/train"
mkdir -p "$work/raw" "$work/train"
[ $# -gt 0 ] || set -- --profile release-lines -p jitsh --bin jitsh
# The folder cargo builds the selected profile into.
dir=release
prev=
for arg in "$@"; do
    [ "$prev" = --profile ] && dir=$arg
    case $arg in --profile=*) dir=${arg#--profile=} ;; esac
    prev=$arg
done
[ "$dir" = dev ] && dir=debug
RUSTFLAGS="-Cprofile-generate=$work/raw" \
    cargo build --locked --target-dir "$work/gen" "$@"
# Build scripts ran instrumented too: only the checks below are the profile.
rm -f "$work/raw"/*.profraw
corpus=${JITSH_PGO_CORPUS:-$here/../shared/corpus/exchange-examples.jsonl}
if [ -f "$corpus" ]; then
    python3 tools/pgo-train.py "$work/train" "$corpus"
    echo "pgo: training on the even-numbered examples of $corpus"
else
    python3 tools/pgo-train.py "$work/train"
    echo "pgo: WARNING: $corpus is missing; training on lines made from the catalog and the fuzz seeds" >&2
fi
bin=$work/gen/$dir/jitsh
for _ in 1 2 3; do
    for policies in policies "$work/train/policies-large"; do
        # A line that is denied or needs approval is part of the training: only a failure to
        # run at all stops here.
        "$bin" check --batch --policies "$policies" --user alice <"$work/train/lines.jsonl" >/dev/null
    done
done
# And one shell session (tools/pgo-shell.py): the PTY, the recording and the line editor. Left
# out, the profile counts that path as never run and it is optimised for size: the shell's CPU
# for 200 MB read 1.13x-1.15x `script`'s in four of five runs, against 1.05x-1.08x for the build
# without a profile. The runspace is the simulated one, built without instrumentation. A session
# that does not go as expected leaves that path out of the profile, and says so.
# Its target folder is named, so a CARGO_TARGET_DIR elsewhere cannot leave the path below stale.
if cargo build --locked --quiet --target-dir "$here/target" -p jitsh-exsim --bin jitsh-exsim \
    && python3 tools/pgo-shell.py "$bin" "$here/target/debug/jitsh-exsim" "$work/train"; then
    echo "pgo: training on a shell session too"
else
    echo "pgo: WARNING: the shell session did not run; the shell's path is not in the profile" >&2
fi
"$profdata" merge -o "$work/merged.profdata" "$work/raw"
# Named by its content: cargo reruns rustc when RUSTFLAGS change, not when the file a flag
# names does, so a new profile must be a new path.
sum=$(cksum <"$work/merged.profdata" | cut -d' ' -f1)
rm -f "$work"/jitsh-*.profdata
mv "$work/merged.profdata" "$work/jitsh-$sum.profdata"
printf '%s\n' "$work/jitsh-$sum.profdata" >"$work/profile"
printf '%s\n' "$profdata" >"$work/llvm-profdata"
echo "pgo: $work/jitsh-$sum.profdata ($(wc -c <"$work/jitsh-$sum.profdata") bytes), named in $work/profile"

#!/bin/sh
# Seeds fuzz/corpus/parse with one file per example line of the Exchange corpus (field `text`).
# Usage: fuzz/seed.sh [path/to/exchange-examples.jsonl]
set -eu
here=$(cd "$(dirname "$0")" && pwd)
src=${1:-}
if [ -z "$src" ]; then
    for candidate in "$here/../../shared/corpus/exchange-examples.jsonl" /work/shared/corpus/exchange-examples.jsonl; do
        if [ -f "$candidate" ]; then src=$candidate; break; fi
    done
fi
if [ -z "$src" ] || [ ! -f "$src" ]; then
    echo "seed.sh: exchange-examples.jsonl not found; pass its path" >&2
    exit 1
fi
out="$here/corpus/parse"
mkdir -p "$out"
python3 - "$src" "$out" <<'PY'
import hashlib, json, os, sys
src, out = sys.argv[1], sys.argv[2]
n = 0
with open(src, encoding="utf-8") as f:
    for line in f:
        text = json.loads(line).get("text")
        if not isinstance(text, str):
            continue
        data = text.encode("utf-8")
        name = hashlib.sha1(data).hexdigest()
        with open(os.path.join(out, name), "wb") as g:
            g.write(data)
        n += 1
print(f"seed.sh: wrote {n} seeds to {out}")
PY

#!/bin/sh
# Writes the fuzz seed corpora, fuzz/corpus/<target> (committed; `tests/fuzz_corpus.rs` replays
# them through the fuzz entry functions on every `cargo test`):
#   parse, check_line  a minimised set of lines: every line of the bypass suite
#                      (tests/bypass.rs) plus the fewest Exchange examples that, with them,
#                      contain every token class, pair and triple of neighbouring token classes
#                      found in the whole corpus (greedy cover, shortest first)
#   token_decode       v4.public tokens signed with the fixed fuzz key (seed 0x4a * 32, the key
#                      `jitsh::token::fuzz_decode` trusts), malformed variants of them, the
#                      matching armoured key files, and the v4.public test vectors
# With --all, parse and check_line get every example instead, in fuzz/work/<target> (not
# committed), for long local runs.
# Usage: fuzz/seed.sh [--all] [path/to/exchange-examples.jsonl]
# Needs python3; the token seeds also need its `cryptography` package (skipped without it).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
mode=minimal
if [ "${1:-}" = "--all" ]; then mode=all; shift; fi
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
if [ "$mode" = all ]; then out=$here/work; else out=$here/corpus; fi
# Regression inputs the fuzzers found (`regress-*`) are kept; everything else is rewritten.
mkdir -p "$out/parse" "$out/check_line" "$out/token_decode"
find "$out/parse" "$out/check_line" "$out/token_decode" -type f ! -name 'regress-*' -exec rm -f {} +
python3 - "$src" "$here/../tests/bypass.rs" "$out" "$mode" <<'PY'
import hashlib, json, os, re, sys

def rust_strings(path):
    """The first string literal of each `(line, Want, reason)` case in tests/bypass.rs."""
    text = open(path, encoding="utf-8").read()
    out = []
    pat = re.compile(r'\(\s*(r#*"|")', re.S)
    pos = 0
    while True:
        m = pat.search(text, pos)
        if not m:
            break
        start = m.end()
        opener = m.group(1)
        if opener.startswith("r"):
            hashes = opener[1:-1]
            end = text.find('"' + hashes, start)
            if end < 0:
                break
            lit, after = text[start:end], end + 1 + len(hashes)
        else:
            buf, i = [], start
            while i < len(text) and text[i] != '"':
                c = text[i]
                if c == "\\":
                    n = text[i + 1]
                    if n == "u":
                        close = text.index("}", i)
                        buf.append(chr(int(text[i + 3:close], 16)))
                        i = close + 1
                        continue
                    if n == "\n":  # line continuation: skip the newline and leading spaces
                        i += 2
                        while i < len(text) and text[i] in " \t":
                            i += 1
                        continue
                    buf.append({"n": "\n", "t": "\t", "r": "\r", "0": "\0", "\\": "\\", '"': '"', "'": "'"}.get(n, n))
                    i += 2
                    continue
                buf.append(c)
                i += 1
            lit, after = "".join(buf), i + 1
        if re.match(r"\s*,\s*(Allow|NotAllow|Deny)\b", text[after:after + 40]):
            out.append(lit)
        pos = after
    return out

TOKEN = re.compile(r"""
    (?P<open>\$\(|@\(|@\{|\$\{|@'|@"|'@|"@)
  | (?P<var>\$[\w:?^]+)
  | (?P<splat>@\w+)
  | (?P<param>[-\u2013\u2014\u2015]\w+:?)
  | (?P<num>\d[\w.]*)
  | (?P<sq>'(?:[^']|'')*')
  | (?P<dq>"(?:[^"`]|`.)*")
  | (?P<type>\[[\w.\[\],]+\])
  | (?P<word>[\w\\.*/?%~+!]+)
  | (?P<nl>\n)
  | (?P<ws>[ \t]+)
  | (?P<other>.)
""", re.X | re.S)
KEYWORDS = {"if", "else", "elseif", "foreach", "for", "while", "do", "until", "switch", "function",
            "filter", "param", "begin", "process", "end", "try", "catch", "finally", "trap",
            "return", "throw", "exit", "break", "continue"}

def features(text):
    classes = []
    for m in TOKEN.finditer(text):
        kind = m.lastgroup
        if kind == "ws":
            continue
        val = m.group(kind)
        if kind == "word" and val.lower() in KEYWORDS:
            kind = "kw:" + val.lower()
        elif kind in ("open", "other"):
            kind = val
        elif kind == "param" and val.endswith(":"):
            kind = "param:"
        classes.append(kind)
    feats = set(classes)
    feats.update(zip(classes, classes[1:]))
    feats.update(zip(classes, classes[1:], classes[2:]))
    return feats

def cover(lines, limit):
    """Greedy set cover: the fewest lines (shortest first among equals) with every feature."""
    cands = sorted({l for l in lines if l.strip()}, key=lambda l: (len(l.encode()), l))
    feats = {l: features(l) for l in cands}
    todo = set().union(*feats.values())
    chosen = []
    while todo and len(chosen) < limit:
        best = max(cands, key=lambda l: (len(feats[l] & todo), -len(l)))
        gain = feats[best] & todo
        if not gain:
            break
        chosen.append(best)
        todo -= gain
    return chosen, len(todo)


def put(target, data):
    name = hashlib.sha1(data).hexdigest()
    with open(os.path.join(out, target, name), "wb") as g:
        g.write(data)

src, bypass_rs, out, mode = sys.argv[1:5]
examples = []
with open(src, encoding="utf-8") as f:
    for line in f:
        text = json.loads(line).get("text")
        if isinstance(text, str):
            examples.append(text)
bypass = rust_strings(bypass_rs)
if mode == "all":
    lines = sorted(set(examples + bypass))
else:
    have = set().union(*(features(l) for l in bypass)) if bypass else set()
    rest = [l for l in examples if features(l) - have]
    chosen, _ = cover(rest, 400)
    lines = sorted(set(bypass + chosen))
for l in lines:
    data = l.encode("utf-8")
    put("parse", data)
    put("check_line", data)
print(f"seed.sh: wrote {len(lines)} lines ({len(bypass)} from the bypass suite) to {out}/parse and {out}/check_line")
PY
python3 - "$out/token_decode" "$here/../tests/fixtures/paseto-v4.json" <<'PY'
import base64, hashlib, json, os, sys
out, vectors = sys.argv[1], sys.argv[2]
try:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
except ImportError:
    print("seed.sh: python3 `cryptography` missing; token seeds skipped", file=sys.stderr)
    sys.exit(0)

n = 0
def put(data):
    global n
    if isinstance(data, str):
        data = data.encode("utf-8")
    with open(os.path.join(out, hashlib.sha1(data).hexdigest()), "wb") as g:
        g.write(data)
    n += 1

b64u = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
seed = bytes([0x4A]) * 32
sk = Ed25519PrivateKey.from_private_bytes(seed)
pk = sk.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
kid = hashlib.sha256(pk).hexdigest()[:16]

def pae(pieces):
    le = lambda x: (x & (2**63 - 1)).to_bytes(8, "little")
    return le(len(pieces)) + b"".join(le(len(p)) + p for p in pieces)

def token(claims, footer=None, implicit=b""):
    msg = json.dumps(claims, separators=(",", ":")).encode()
    foot = json.dumps(footer if footer is not None else {"kid": kid}, separators=(",", ":")).encode()
    sig = sk.sign(pae([b"v4.public.", msg, foot, implicit]))
    return "v4.public." + b64u(msg + sig) + "." + b64u(foot)

base = {
    "iss": "approvals.example", "sub": "fuzz", "jti": "t-1",
    "iat": "1970-01-01T00:00:00Z", "nbf": "1970-01-01T00:00:00Z", "exp": "1970-01-01T01:00:00Z",
    "rule": "mailbox-moves", "tasks": ["New-MoveRequest"], "request": "r-1",
    "approvers": ["bob"],
}
variants = [
    base,
    dict(base, uses=3, aud="gate-1", command="New-MoveRequest -Identity alice"),
    dict(base, params={"only": ["Identity"], "Identity": {"glob": "*@contoso.com"}}),
    dict(base, sub="FUZZ", extra_claim={"nested": [1, 2, 3]}),
    dict(base, nbf="1970-01-01T00:10:00Z"),                # not yet valid at the epoch
    dict(base, exp="1969-12-31T23:00:00Z"),                # expired
    dict(base, sub="someone-else"),
    dict(base, iat="not a time"),                          # bad claims, good signature
    {k: v for k, v in base.items() if k != "rule"},        # missing claim
]
for claims in variants:
    t = token(claims)
    put(t)
    head, body, foot = t[:10], t[10:].split(".")[0], t[10:].split(".")[1]
    put(t[:-1])                                            # truncated footer
    put(head + body)                                       # footer left out
    put(head + body + ".")                                 # empty footer segment
    put(head + body[:-2] + "AA." + foot)                   # body bits flipped
    put(head + body + "=." + foot)                         # padding
    put("v4.local." + t[10:])                              # wrong purpose
    put("v3.public." + t[10:])                             # wrong version
put(token(base, footer={"kid": "0000000000000000"}))       # unknown key
put(token(base, footer={"kid": 7}))                        # kid not a string
put(token(base, footer={}))                                # no kid
put(token(base, implicit=b"bound"))                        # implicit assertion jitsh does not use

# Key files: valid private and public key, and a kid mismatch.
def armour(kind, kid, key):
    return (f"-----BEGIN JITSH ED25519 {kind} KEY-----\nkid: {kid}\n"
            f"{base64.b64encode(key).decode()}\n-----END JITSH ED25519 {kind} KEY-----\n")
put(armour("PRIVATE", kid, seed))
put(armour("PUBLIC", kid, pk))
put(armour("PUBLIC", "0" * 16, pk))
put(armour("PRIVATE", kid, seed).replace("\n", "\r\n"))

# The PASETO v4.public test vectors (other keys: exercise decode, not verify).
if os.path.exists(vectors):
    with open(vectors, encoding="utf-8") as f:
        for test in json.load(f).get("tests", []):
            if test.get("token", "").startswith("v4.public."):
                put(test["token"])
print(f"seed.sh: wrote {n} seeds to {out}")
PY

#!/bin/sh
# Seeds the fuzz corpora (fuzz/corpus/<target>, gitignored):
#   parse, check_line  one file per example line of the Exchange corpus (field `text`)
#   token_decode       v4.public tokens signed with the fixed fuzz key (seed 0x4a * 32, the key
#                      `jitsh::token::fuzz_decode` trusts), malformed variants of them, the
#                      matching armoured key files, and the v4.public test vectors
# Usage: fuzz/seed.sh [path/to/exchange-examples.jsonl]
# Needs python3 with the `cryptography` package for the token seeds (skipped without it).
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
mkdir -p "$here/corpus/parse" "$here/corpus/check_line" "$here/corpus/token_decode"
python3 - "$src" "$here/corpus" <<'PY'
import hashlib, json, os, sys
src, out = sys.argv[1], sys.argv[2]

def put(target, data):
    name = hashlib.sha1(data).hexdigest()
    with open(os.path.join(out, target, name), "wb") as g:
        g.write(data)

n = 0
with open(src, encoding="utf-8") as f:
    for line in f:
        text = json.loads(line).get("text")
        if not isinstance(text, str):
            continue
        data = text.encode("utf-8")
        put("parse", data)
        put("check_line", data)
        n += 1
print(f"seed.sh: wrote {n} seeds to {out}/parse and {out}/check_line")
PY
python3 - "$here/corpus/token_decode" "$here/../tests/fixtures/paseto-v4.json" <<'PY'
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

#!/usr/bin/env python3
"""Writes the training input for jitsh's profile-guided build (tools/pgo.sh) into OUT_DIR:

- lines.jsonl: the command lines `jitsh check --batch` checks while the profile is recorded.
  With CORPUS (the Exchange examples, JSON Lines of {"text": ...}), its even-numbered examples
  (0, 2, 4, ...): the benchmark's per-line rows check the odd-numbered ones, which the profile
  has then never seen. Without it, lines made from the cmdlet catalog (data/*.json: every
  command with parameters of its first set, by name, by position, piped, abbreviated, with
  switches and script blocks) and the fuzz seeds (fuzz/corpus).
- policies-large/: 20,000 rules over the catalog's commands and generated names, with exact
  names, prefix and suffix globs, parameter constraints and conditions.

Deterministic: the same inputs give the same files.

    python3 tools/pgo-train.py OUT_DIR [CORPUS]
"""

import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def commands():
    for name in ("exchange-cmdlets.json", "common-cmdlets.json"):
        with open(os.path.join(ROOT, "data", name), encoding="utf-8") as f:
            doc = json.load(f)
        yield from doc.get("commands", [])


def value(param, i):
    t = (param.get("type") or "").lower()
    if "scriptblock" in t:
        return "{ $_.Name -like 'a*' }"
    if t.startswith("string"):
        return ["'Sales team'", "archive", '"Room $i"', "'o''brien'"][i % 4]
    if "int" in t or "unlimited" in t or "size" in t:
        return str(10 * (i % 7 + 1))
    if "bool" in t:
        return "$true" if i % 2 else "$false"
    if "date" in t:
        return "'2026-01-0%d'" % (i % 9 + 1)
    if "[]" in t:
        return "a@contoso.com, b@contoso.com"
    return ["user%d@contoso.com" % i, "DB0%d" % (i % 9), "'CN=x,DC=contoso'", "$id"][i % 4]


def lines():
    out = []
    for i, c in enumerate(commands()):
        name = c["name"]
        params = {p["name"]: p for p in c.get("parameters", [])}
        sets = c.get("sets") or [{}]
        first = sets[0]
        names = first.get("parameters") or list(params)
        plain = [params[n] for n in names if n in params and not params[n].get("switch")
                 and (params[n].get("type") or "") != "SwitchParameter"]
        switches = [params[n] for n in names if n in params
                    and (params[n].get("switch") or params[n].get("type") == "SwitchParameter")]
        named = " ".join("-%s %s" % (p["name"], value(p, i + k)) for k, p in enumerate(plain[:3]))
        out.append("%s %s" % (name, named))
        positions = first.get("positions") or {}
        if positions:
            pos = sorted(positions, key=lambda n: positions[n])[0]
            rest = " ".join("-%s %s" % (p["name"], value(p, i)) for p in plain if p["name"] != pos)
            out.append("%s %s %s" % (name, value(params.get(pos, {}), i), rest[:80]))
        piped = [p for p in params.values() if "value" in (p.get("pipeline") or "")]
        if piped:
            tail = " ".join("-%s %s" % (p["name"], value(p, i)) for p in plain[1:2])
            out.append("Get-Mailbox -ResultSize %d | %s %s" % (i % 50 + 1, name, tail))
        if plain:
            p = plain[0]
            short = p["name"][: max(3, len(p["name"]) // 2)]
            sw = " ".join("-%s" % s["name"] for s in switches[:2])
            out.append("%s -%s:%s %s -Confirm:$false" % (name.lower(), short, value(p, i), sw))
        if i % 5 == 0:
            out.append("$r = %s %s; $r | Where-Object { $_.Count -gt %d } | Select-Object Name"
                       % (name, named, i % 9))
        if i % 7 == 0:
            out.append("foreach ($m in (Get-Mailbox)) { %s -Identity $m.Alias %s }" % (name, named))
        if i % 11 == 0:
            out.append("$p = @{ %s }; %s @p"
                       % ("; ".join("%s = %s" % (p["name"], value(p, i)) for p in plain[:2]), name))
    for target in ("check_line", "parse"):
        folder = os.path.join(ROOT, "fuzz", "corpus", target)
        if not os.path.isdir(folder):
            continue
        for f in sorted(os.listdir(folder)):
            with open(os.path.join(folder, f), "rb") as fh:
                text = fh.read().decode("utf-8", "replace")
            if text.strip():
                out.append(text)
    return out


def large_policy(names):
    verbs = sorted({n.split("-", 1)[0] for n in names if "-" in n})
    rules = ['[defaults]\nunmatched = "deny"\ndynamic = "deny"\n']
    effects = ["allow", "approval", "deny"]
    i = 0
    while len(rules) <= 20000:
        if i < len(names):
            task = names[i]
        elif i % 9 == 0:
            task = "%s-Generated%d*" % (verbs[i % len(verbs)], i)
        elif i % 13 == 0:
            task = "*-Generated%d" % i
        else:
            task = "%s-Generated%d" % (verbs[i % len(verbs)], i)
        effect = effects[i % 3]
        rule = '\n[[rule]]\nid = "t%d"\neffect = "%s"\ntasks = ["%s"]\n' % (i, effect, task)
        if effect == "approval":
            rule += 'approvers = ["mbmanagers"]\nmax_duration = "4h"\n'
        if i % 6 == 1:
            rule += 'params.Identity = { glob = "*@contoso.com" }\n'
        elif i % 10 == 3:
            rule += 'when.any_param = ["ForwardingSmtpAddress", "ForwardingAddress"]\n'
        rules.append(rule)
        i += 1
    for k, verb in enumerate(verbs[:40]):
        rules.append('\n[[rule]]\nid = "v%d"\neffect = "%s"\ntasks = ["%s-*"]\n'
                     % (k, "allow" if verb == "Get" else "deny", verb))
    return "".join(rules)


def corpus_lines(path):
    """The even-numbered examples of the corpus (counting its parseable lines from 0)."""
    texts = []
    with open(path, encoding="utf-8") as f:
        for raw in f:
            try:
                text = json.loads(raw).get("text")
            except (ValueError, AttributeError):
                continue
            if isinstance(text, str):
                texts.append(text)
    return texts[0::2]


def main():
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    out = sys.argv[1]
    training = corpus_lines(sys.argv[2]) if len(sys.argv) == 3 else lines()
    os.makedirs(os.path.join(out, "policies-large"), exist_ok=True)
    with open(os.path.join(out, "lines.jsonl"), "w", encoding="utf-8") as f:
        for line in training:
            f.write(json.dumps({"text": line}) + "\n")
    names = [c["name"] for c in commands()]
    with open(os.path.join(out, "policies-large", "large.toml"), "w", encoding="utf-8") as f:
        f.write(large_policy(names))


if __name__ == "__main__":
    main()

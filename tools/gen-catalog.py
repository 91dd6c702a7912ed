#!/usr/bin/env python3
"""Derive data/exchange-cmdlets.json (jitsh catalog format 1) from the Exchange cmdlet corpus.

Usage: tools/gen-catalog.py [CORPUS_JSON] [OUTPUT_JSON]
Defaults: ../shared/corpus/exchange-cmdlets.json (next to the repository) and
data/exchange-cmdlets.json.

Keeps facts only: names, types, aliases, switch-ness, pipeline binding, parameter sets and
positions. Choices (the corpus README lists the source's inconsistencies):
- Positions come from the yaml `Position` field (the corpus `positional`), not the syntax
  bracket form: it is the field PowerShell's help system reads, and where the two disagree
  (37 sets) the yaml usually adds a position the syntax block omits; a parameter wrongly marked
  positional makes a set give a different answer, which the resolver treats as uncertain.
  `Position: Positional` (2 Viva cmdlets, no number) is taken as the first position (0) when
  the syntax block also writes it positional, else dropped.
- Pipeline input: `True (ByValue)` -> value, `True (ByPropertyName)` -> property, both ->
  value,property. A bare `True` does not say how, so it counts as both: a pipeline-bound
  parameter makes a script block code (delay-bind), the restrictive reading.
- Aliases: junk alias fields that repeat a type name (`MultiValuedProperty`) are dropped.
- Types: the one parameter whose yaml blocks disagree keeps its first type.
- Names in a syntax block with no `### -Name` section are declared with an empty type;
  names differing only in case are merged into the documented spelling.
- Switch-ness is the type `SwitchParameter` (the loader derives it); a set that holds every
  declared parameter leaves out its `parameters` list (the format reads that as "all").
- Sets with the same name are merged (union of parameters and positions); empty sets dropped.
"""
import json
import os
import sys

JUNK_ALIASES = {"MultiValuedProperty"}


def pipeline(raw):
    if raw is None:
        return ""
    r = raw.strip().lower()
    if not r.startswith("true"):
        return ""
    v = "byvalue" in r
    p = "bypropertyname" in r
    if not v and not p:
        v = p = True
    return ",".join(x for x, on in (("value", v), ("property", p)) if on)


def convert(cmdlet):
    params = []
    by_lower = {}
    for p in cmdlet["parameters"]:
        t = p["type"]
        if isinstance(t, list):
            t = t[0]
        entry = {"name": p["name"], "type": t}
        aliases = [a for a in p.get("aliases", []) if a and a not in JUNK_ALIASES]
        if aliases:
            entry["aliases"] = aliases
        pl = pipeline(p.get("pipeline_input"))
        if pl:
            entry["pipeline"] = pl
        if p["name"].lower() in by_lower:
            continue
        by_lower[p["name"].lower()] = entry
        params.append(entry)

    sets = {}
    order = []
    for s in cmdlet["parameter_sets"]:
        if not s["parameters"]:
            continue
        if s["name"] not in sets:
            sets[s["name"]] = {"name": s["name"], "parameters": [], "positions": {}}
            order.append(s["name"])
        out = sets[s["name"]]
        if s.get("default"):
            out["default"] = True
        for n in s["parameters"]:
            if n.lower() not in by_lower:
                # undocumented parameter: declared with an empty type
                entry = {"name": n, "type": ""}
                by_lower[n.lower()] = entry
                params.append(entry)
            canon = by_lower[n.lower()]["name"]
            if canon not in out["parameters"]:
                out["parameters"].append(canon)
        for n, pos in s["positional"].items():
            if not isinstance(pos, int):
                if n in s.get("syntax_positional", []):
                    pos = 0
                else:
                    continue
            canon = by_lower[n.lower()]["name"]
            if canon not in out["parameters"]:
                continue
            out["positions"][canon] = pos
    result_sets = []
    declared = {e["name"] for e in params}
    for name in order:
        s = sets[name]
        if set(s["parameters"]) == declared:
            # a set holding every declared parameter leaves its list out
            del s["parameters"]
        if not s["positions"]:
            del s["positions"]
        result_sets.append(s)
    return {
        "name": cmdlet["name"],
        "module": cmdlet.get("module", "ExchangePowerShell"),
        "parameters": params,
        "sets": result_sets,
    }


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    repo = os.path.dirname(here)
    src = sys.argv[1] if len(sys.argv) > 1 else os.path.join(repo, "..", "shared", "corpus", "exchange-cmdlets.json")
    dst = sys.argv[2] if len(sys.argv) > 2 else os.path.join(repo, "data", "exchange-cmdlets.json")
    with open(src, encoding="utf-8") as f:
        corpus = json.load(f)
    out = {
        "format": 1,
        "source": "Derived from office-docs-powershell by Microsoft Corporation and contributors "
        "(https://github.com/MicrosoftDocs/office-docs-powershell, commit "
        + corpus.get("source_commit", "?")
        + "), used under CC BY 4.0; facts extracted: names, types, aliases, pipeline binding, parameter sets, positions",
        "commands": [convert(c) for c in corpus["cmdlets"]],
    }
    # One command object per line between a header line and a closing line: still one JSON
    # document, and the loader can index it by line and convert each command on first use.
    commands = out.pop("commands")
    header = json.dumps(out, separators=(",", ":"), ensure_ascii=False)
    assert header.endswith("}")
    with open(dst, "w", encoding="utf-8") as f:
        f.write(header[:-1] + ',"commands":[\n')
        for i, c in enumerate(commands):
            f.write(json.dumps(c, separators=(",", ":"), ensure_ascii=False))
            f.write(",\n" if i + 1 < len(commands) else "\n")
        f.write("]}\n")
    out["commands"] = commands
    print(f"wrote {dst}: {len(out['commands'])} commands, {os.path.getsize(dst)} bytes")


if __name__ == "__main__":
    main()

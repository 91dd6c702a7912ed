//! The shipped catalog against real facts, the Exchange examples corpus, and bad input.
#![allow(
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests fail loudly"
)]

mod inputs;

use jitsh::catalog::{Catalog, CatalogError, CommandMeta, ParamLookup};

fn cmd(name: &str) -> &'static CommandMeta {
    Catalog::builtin()
        .command(name)
        .unwrap_or_else(|| panic!("{name} is in the builtin catalog"))
}

fn found(meta: &CommandMeta, written: &str) -> String {
    match meta.lookup_param(written) {
        ParamLookup::Found(p) => p.name.to_string(),
        other => panic!("{} -{written}: {other:?}", meta.name),
    }
}

#[test]
fn prefix_resolves_to_the_unique_parameter() {
    assert_eq!(found(cmd("Get-Mailbox"), "Ident"), "Identity");
    assert_eq!(found(cmd("get-mailbox"), "-IDENTITY"), "Identity");
    // New-MoveRequest's only parameter starting with `Id` is Identity (`IgnoreRuleLimitErrors`
    // and `IncrementalSyncInterval` start with `Ig` and `In`).
    assert_eq!(found(cmd("New-MoveRequest"), "Id"), "Identity");
    // `-I` matches those three and more: PowerShell refuses it.
    match cmd("New-MoveRequest").lookup_param("I") {
        ParamLookup::Ambiguous(names) => {
            assert!(names.contains(&"Identity"));
            assert!(names.contains(&"IgnoreRuleLimitErrors"));
            assert!(names.contains(&"InformationAction"));
        }
        other => panic!("-I on New-MoveRequest: {other:?}"),
    }
    assert_eq!(
        cmd("Get-Mailbox").lookup_param("NoSuchThing"),
        ParamLookup::NotFound
    );
    assert_eq!(cmd("Get-Mailbox").lookup_param("-"), ParamLookup::NotFound);
}

#[test]
fn exact_name_beats_a_longer_parameter_with_the_same_prefix() {
    // Set-Mailbox has both `Name` and names that start with it? It has `Name` and no other
    // `Name*`; New-Mailbox has `Name` too. Use Get-ChildItem: `Path` is exact although
    // nothing else starts with it; `File` is exact while `Filter` also starts with `File`? No:
    // `Fil` matches File and Filter, `File` is exact.
    let gci = cmd("Get-ChildItem");
    assert_eq!(found(gci, "File"), "File");
    assert!(matches!(gci.lookup_param("Fil"), ParamLookup::Ambiguous(_)));
    assert_eq!(found(gci, "Filt"), "Filter");
}

#[test]
fn parameter_aliases_resolve() {
    assert_eq!(found(cmd("Get-ChildItem"), "s"), "Recurse");
    assert_eq!(found(cmd("Invoke-Command"), "cn"), "ComputerName");
    // A documented name wins over another parameter's alias: Get-MoveRequest's docs list
    // `MoveStatus` both as a parameter and as an alias of `Status`.
    assert_eq!(found(cmd("Get-MoveRequest"), "MoveStatus"), "MoveStatus");
    assert_eq!(found(cmd("Get-MoveRequest"), "Status"), "Status");
}

#[test]
fn common_parameters_resolve_on_every_command() {
    for name in ["Get-Mailbox", "Set-Mailbox", "Where-Object"] {
        let c = cmd(name);
        assert_eq!(found(c, "ea"), "ErrorAction");
        assert_eq!(found(c, "wi"), "WhatIf");
        assert_eq!(found(c, "cf"), "Confirm");
        assert_eq!(found(c, "ov"), "OutVariable");
        assert_eq!(found(c, "proga"), "ProgressAction");
        assert_eq!(found(c, "ErrorAct"), "ErrorAction");
    }
    // An exact alias wins over a longer name: Get-Content `-wa` is WarningAction, not Wait.
    assert_eq!(found(cmd("Get-Content"), "wa"), "WarningAction");
    // A prefix matching one of the command's own parameters and common ones binds to the
    // command's own (`-In`: Include, not InformationAction/InformationVariable)...
    assert_eq!(found(cmd("Get-ChildItem"), "In"), "Include");
    // ...but two common ones stay ambiguous.
    match cmd("Get-Mailbox").lookup_param("Inf") {
        ParamLookup::Ambiguous(names) => {
            assert_eq!(names, ["InformationAction", "InformationVariable"])
        }
        other => panic!("-Inf: {other:?}"),
    }
}

#[test]
fn positional_binding_from_metadata() {
    assert_eq!(
        cmd("Set-Mailbox")
            .positional_param(0, &[])
            .map(|p| p.name.as_str()),
        Some("Identity")
    );
    // Get-Mailbox has sets without positional parameters; only Identity can take one.
    assert_eq!(
        cmd("Get-Mailbox")
            .positional_param(0, &[])
            .map(|p| p.name.as_str()),
        Some("Identity")
    );
    // Identity already bound by name: nothing is left for a positional argument.
    assert!(cmd("Set-Mailbox")
        .positional_param(0, &["Identity"])
        .is_none());
    assert!(cmd("Set-Mailbox").positional_param(1, &[]).is_none());
    // Named parameters narrow the sets: with -Append, Out-File's slot 1 is Encoding.
    assert_eq!(
        cmd("Out-File")
            .positional_param(1, &["Append"])
            .map(|p| p.name.as_str()),
        Some("Encoding")
    );
    // Invoke-Command: in-process the first argument is the script block, remotely it is the
    // computer name; the sets disagree, so the answer is uncertain...
    assert!(cmd("Invoke-Command").positional_param(0, &[]).is_none());
    // ...and still after -ComputerName (a script or a script file)...
    let after_cn: Vec<&str> = cmd("Invoke-Command")
        .positional_candidates(0, &["ComputerName"])
        .iter()
        .map(|p| p.name.as_str())
        .collect();
    assert_eq!(after_cn, ["ScriptBlock", "FilePath"]);
    // ...until a parameter only one set has fixes it (in-process).
    assert_eq!(
        cmd("Invoke-Command")
            .positional_param(0, &["NoNewScope"])
            .map(|p| p.name.as_str()),
        Some("ScriptBlock")
    );
}

#[test]
fn where_object_filter_script_is_code_at_position_zero() {
    let w = cmd("Where-Object");
    let fs = w.param("FilterScript").unwrap();
    assert!(fs.is_script_block());
    assert!(!fs.is_string_like());
    let set = w
        .parameter_sets
        .iter()
        .find(|s| s.name == "ScriptBlockSet")
        .unwrap();
    assert_eq!(set.positions, vec![(0, "FilterScript".to_string())]);
    // `? {...}` and `? Name -eq x` share slot 0: the caller narrows by argument kind.
    let names: Vec<&str> = w
        .positional_candidates(0, &[])
        .iter()
        .map(|p| p.name.as_str())
        .collect();
    assert_eq!(names, ["FilterScript", "Property"]);
    assert_eq!(
        w.positional_param(0, &["FilterScript"]),
        None,
        "FilterScript bound by name leaves no positional slot in its set"
    );
    assert_eq!(
        w.positional_param(1, &["EQ"]).map(|p| p.name.as_str()),
        Some("Value")
    );
    assert!(cmd("ForEach-Object")
        .param("Process")
        .unwrap()
        .is_script_block());
    assert!(cmd("Invoke-Command")
        .param("ScriptBlock")
        .unwrap()
        .is_script_block());
}

#[test]
fn exchange_filter_is_string_like_and_not_pipeline_bound() {
    let filter = cmd("Get-Mailbox").param("Filter").unwrap();
    assert!(filter.is_string_like());
    assert!(!filter.is_script_block());
    assert!(!filter.takes_pipeline_input());
    // Identity takes pipeline input (a bare `True` in the docs counts as both kinds).
    let identity = cmd("Get-Mailbox").param("Identity").unwrap();
    assert!(identity.pipeline_by_value && identity.pipeline_by_property_name);
    let identity = cmd("Set-Mailbox").param("Identity").unwrap();
    assert!(!identity.pipeline_by_value && identity.pipeline_by_property_name);
    // MultiValuedProperty is not string-like: a script block there stays code.
    let mvp = cmd("Set-Mailbox").param("EmailAddresses").unwrap();
    assert_eq!(mvp.type_name, "ProxyAddressCollection");
    assert!(!mvp.is_string_like());
    let accept = cmd("Set-Mailbox").param("AcceptMessagesOnlyFrom").unwrap();
    assert!(!accept.is_string_like());
    assert!(cmd("Set-Mailbox").param("Confirm").unwrap().switch);
}

#[test]
fn default_aliases_resolve() {
    let c = Catalog::builtin();
    for (alias, target) in [
        ("%", "ForEach-Object"),
        ("?", "Where-Object"),
        ("iex", "Invoke-Expression"),
        ("IEX", "Invoke-Expression"),
        ("icm", "Invoke-Command"),
        ("saps", "Start-Process"),
        ("start", "Start-Process"),
        ("gcm", "Get-Command"),
        ("ft", "Format-Table"),
        ("where", "Where-Object"),
        ("foreach", "ForEach-Object"),
        ("curl", "Invoke-WebRequest"),
        ("rm", "Remove-Item"),
        ("ipmo", "Import-Module"),
    ] {
        assert_eq!(c.resolve_alias(alias), Some(target), "alias {alias}");
        assert!(c.command(target).is_some(), "{target} has metadata");
    }
    assert_eq!(c.resolve_alias("Get-Mailbox"), None);
    assert_eq!(
        c.aliases().count(),
        jitsh::catalog::aliases::DEFAULT_ALIASES.len()
    );
}

#[test]
fn command_lookup_is_case_insensitive_and_names_are_listed() {
    let c = Catalog::builtin();
    assert_eq!(
        c.command("NEW-MOVEREQUEST").unwrap().name,
        "New-MoveRequest"
    );
    assert_eq!(
        c.command("New-MoveRequest").unwrap().module,
        "ExchangePowerShell"
    );
    assert!(c.command("Exchange\\New-MoveRequest").is_none());
    assert!(c.command("Get-NoSuchThing").is_none());
    let names: Vec<&str> = c.command_names().collect();
    assert!(names.len() > 1_500, "{} names", names.len());
    assert!(names.contains(&"Where-Object"));
    assert!(names.contains(&"Set-Mailbox"));
}

#[test]
fn every_shipped_command_converts() {
    let c = Catalog::builtin();
    let broken: Vec<&str> = c
        .command_names()
        .filter(|n| c.command(n).is_none())
        .collect();
    assert!(broken.is_empty(), "{broken:?}");
}

#[test]
fn merge_lets_later_entries_win() {
    let mut c = Catalog::from_json(
        r#"{"format":1,"commands":[{"name":"Get-Thing","parameters":[{"name":"Old","type":"String"}]}],
            "aliases":{"gt":"Get-Thing"}}"#,
    )
    .unwrap();
    let extra = Catalog::from_json(
        r#"{"format":1,"commands":[
              {"name":"get-thing","module":"M","parameters":[{"name":"New","type":"ScriptBlock"}],
               "sets":[{"name":"S","positions":{"New":0}}]},
              {"name":"Set-Thing","parameters":[]}],
            "aliases":{"GT":"Set-Thing"}}"#,
    )
    .unwrap();
    c.merge(extra);
    let thing = c.command("Get-Thing").unwrap();
    assert_eq!(thing.module, "M");
    assert_eq!(found(thing, "N"), "New");
    assert_eq!(thing.positional_param(0, &[]).unwrap().name, "New");
    assert_eq!(c.resolve_alias("gt"), Some("Set-Thing"));
    assert_eq!(c.command_names().count(), 2);
}

fn load_err(text: &str) -> String {
    match Catalog::from_json(text) {
        Err(e) => e.to_string(),
        Ok(c) => panic!("loaded: {c:?}"),
    }
}

#[test]
fn from_json_errors_name_the_place() {
    let e = load_err("{\"format\":1,\n \"commands\": [ {\"name\": 5} ]}");
    assert!(
        e.starts_with("catalog json is malformed at line 2 column"),
        "{e}"
    );
    assert!(e.contains("expected"), "{e}");

    assert!(matches!(
        Catalog::from_json(r#"{"format":2,"commands":[]}"#),
        Err(CatalogError::Version { found: 2 })
    ));

    let e = load_err(
        r#"{"format":1,"commands":[{"name":"A-B","parameters":[{"name":"X"}],
            "sets":[{"name":"S","parameters":["X","Y"]}]}]}"#,
    );
    assert_eq!(
        e,
        "catalog entry `commands[0].sets[0].parameters[1]`: parameter `Y` of `A-B` is not declared"
    );

    let e = load_err(
        r#"{"format":1,"commands":[{"name":"A-B","parameters":[{"name":"X"},{"name":"x"}]}]}"#,
    );
    assert_eq!(
        e,
        "catalog entry `commands[0].parameters[1]`: parameter `x` of `A-B` is listed twice"
    );

    let e = load_err(
        r#"{"format":1,"commands":[{"name":"A-B","parameters":[]},{"name":"a-b","parameters":[]}]}"#,
    );
    assert_eq!(
        e,
        "catalog entry `commands[1]`: command `a-b` is listed twice"
    );

    let e = load_err(
        r#"{"format":1,"commands":[{"name":"A-B","parameters":[{"name":"X","pipeline":"sideways"}]}]}"#,
    );
    assert!(e.starts_with("catalog entry `commands[0].parameters[0].pipeline`: unknown pipeline binding `sideways`"), "{e}");

    let e = load_err(r#"{"format":1,"commands":[{"name":"A-B","parameters":[],"colour":1}]}"#);
    assert!(e.contains("unknown field `colour`"), "{e}");

    let e = load_err(
        r#"{"format":1,"commands":[{"name":"A-B","parameters":[{"name":"X"},{"name":"Y"}],
            "sets":[{"name":"S","parameters":["X"],"positions":{"Y":0}}]}]}"#,
    );
    assert!(
        e.contains("positional parameter `Y` is not in set `S`"),
        "{e}"
    );
    assert!(load_err("").starts_with("catalog json is malformed at line 1 column 0"));
}

// ---- the Exchange examples corpus ------------------------------------------------------------

/// `-Name` tokens written for `cmdlet` in one example block: top-level parameter tokens after
/// each bare occurrence of the cmdlet name, up to the end of its pipeline element. Quoted
/// text, and nested `(...)`, `{...}`, `@(...)`, `$(...)` are skipped (they belong to other
/// commands or are values).
fn params_used(text: &str, cmdlet: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut depth = 0usize;
    let mut active: Option<usize> = None; // depth at which the cmdlet's arguments are read
    let mut i = 0;
    let word_end = |mut j: usize| {
        while j < chars.len() && !chars[j].is_whitespace() && !"|;(){}=,\"'".contains(chars[j]) {
            j += 1;
        }
        j
    };
    while i < chars.len() {
        let c = chars[i];
        match c {
            '\'' | '"' => {
                i += 1;
                while i < chars.len() && chars[i] != c {
                    if chars[i] == '`' && c == '"' {
                        i += 1;
                    }
                    i += 1;
                }
                i += 1;
                continue;
            }
            '#' if i == 0 || chars[i - 1].is_whitespace() => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
                continue;
            }
            '(' | '{' | '[' => depth += 1,
            ')' | '}' | ']' => {
                depth = depth.saturating_sub(1);
                if active.is_some_and(|d| depth < d) {
                    active = None;
                }
            }
            '|' | ';' if active == Some(depth) => active = None,
            '\n' => {
                let continued = i > 0
                    && chars[..i].iter().rev().find(|c| **c != ' ' && **c != '\r') == Some(&'`');
                if active == Some(depth) && !continued {
                    active = None;
                }
            }
            '-' if active == Some(depth)
                && i > 0
                && chars[i - 1].is_whitespace()
                && chars.get(i + 1).is_some_and(|c| c.is_alphabetic()) =>
            {
                let end = word_end(i + 1);
                let word: String = chars[i + 1..end].iter().collect();
                let name = word.split(':').next().unwrap_or_default().to_string();
                out.push(name);
                i = end;
                continue;
            }
            _ if !c.is_whitespace()
                && (i == 0
                    || !chars[i - 1].is_alphanumeric()
                        && chars[i - 1] != '-'
                        && chars[i - 1] != '$') =>
            {
                let end = word_end(i);
                let word: String = chars[i..end].iter().collect();
                if word.eq_ignore_ascii_case(cmdlet) {
                    active = Some(depth);
                }
                i = end.max(i + 1);
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    out
}

#[test]
fn example_parameters_resolve_except_the_documented_errors() {
    let Some(path) = inputs::corpus_or_skip(
        "exchange-examples.jsonl",
        "example_parameters_resolve_except_the_documented_errors",
    ) else {
        return;
    };
    let text = std::fs::read_to_string(path).unwrap();
    let catalog = Catalog::builtin();
    let mut misses = Vec::new();
    let mut checked = 0;
    for line in text.lines() {
        let example: serde_json::Value = serde_json::from_str(line).unwrap();
        let id = example["id"].as_str().unwrap();
        let cmdlet = example["cmdlet"].as_str().unwrap();
        let body = example["text"].as_str().unwrap();
        let meta = catalog
            .command(cmdlet)
            .unwrap_or_else(|| panic!("{cmdlet} known"));
        for written in params_used(body, cmdlet) {
            checked += 1;
            match meta.lookup_param(&written) {
                ParamLookup::Found(_) => {}
                ParamLookup::NotFound => misses.push(format!("{id} {cmdlet} -{written} not-found")),
                ParamLookup::Ambiguous(_) => {
                    misses.push(format!("{id} {cmdlet} -{written} ambiguous"))
                }
            }
        }
    }
    misses.sort();
    misses.dedup();
    let fixture = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/catalog-unknown-params.txt"),
    )
    .unwrap();
    let expected: Vec<String> = fixture
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(str::to_string)
        .collect();
    assert!(checked > 4_000, "only {checked} parameter uses found");
    eprintln!("{} misses among {checked} uses", misses.len());
    assert_eq!(
        misses,
        expected,
        "{} misses among {checked} uses",
        misses.len()
    );
}

#[test]
fn names_beat_aliases_and_unicode_dashes_are_accepted() {
    // Get-MoveRequest lists `MoveStatus` as a parameter and as an alias of `Status`; the name
    // wins whichever comes first. Build both orders.
    for params in [
        r#"[{"name":"Status","aliases":["MoveStatus"]},{"name":"MoveStatus"}]"#,
        r#"[{"name":"MoveStatus"},{"name":"Status","aliases":["MoveStatus"]}]"#,
    ] {
        let c = Catalog::from_json(&format!(
            r#"{{"format":1,"commands":[{{"name":"Get-X","parameters":{params}}}]}}"#
        ))
        .unwrap();
        assert_eq!(
            found(c.command("Get-X").unwrap(), "movestatus"),
            "MoveStatus"
        );
    }
    assert_eq!(found(cmd("Get-Mailbox"), "\u{2013}Ident"), "Identity");
    assert_eq!(found(cmd("Get-Mailbox"), "\u{2014}ea"), "ErrorAction");
}

#[test]
fn two_parameters_at_one_position_are_uncertain() {
    // The Import-TransportRuleCollection docs give Identity and FileData both position 1.
    let c = cmd("Import-TransportRuleCollection");
    assert!(c.positional_param(0, &[]).is_none());
    assert_eq!(c.positional_candidates(0, &[]).len(), 2);
    assert_eq!(
        c.positional_param(0, &["Identity"])
            .map(|p| p.name.as_str()),
        Some("FileData")
    );
}

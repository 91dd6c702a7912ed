//! Resolver unit tests against the shipped catalog.

#![allow(clippy::panic, reason = "tests fail loudly")]

use crate::catalog::Catalog;
use crate::invocation::{Invocation, ParamValue};

use super::{analyse, round_trip, same_keys};

fn run(src: &str) -> Vec<Invocation> {
    analyse(src, Catalog::builtin()).unwrap_or_else(|e| panic!("{src:?}: {e}"))
}

fn one(src: &str) -> Invocation {
    let mut invs = run(src);
    assert_eq!(invs.len(), 1, "{src:?}: {invs:?}");
    invs.remove(0)
}

#[test]
fn names_are_canonical() {
    let i = one("exchange\\new-moverequest -Identity bob");
    assert_eq!(i.name, "New-MoveRequest");
    assert_eq!(i.module.as_deref(), Some("exchange"));
    assert_eq!(one("Ne`w-MoveRequest bob").name, "New-MoveRequest");
    assert_eq!(one("? { $_ }").name, "Where-Object");
    assert_eq!(one("iex 'x'").name, "Invoke-Expression");
    assert_eq!(one("& 'Get-Mailbox'").name, "Get-Mailbox");
    assert_eq!(one(".\\script.ps1").module, None);
}

#[test]
fn parameters_resolve_by_prefix_alias_colon_and_position() {
    let i = one("Set-Mailbox bob -Disp:'B' -cf:$false");
    let names: Vec<&str> = i.params.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["Identity", "DisplayName", "Confirm"]);
    assert!(i.params.iter().all(|p| p.resolved));
    assert_eq!(
        i.param("Confirm").map(|p| &p.value),
        Some(&ParamValue::Static("False".into()))
    );
    assert_eq!(i.params_uncertain, None);
    let amb = one("Get-Mailbox -R x");
    assert!(amb
        .params_uncertain
        .as_deref()
        .is_some_and(|u| u.contains("ambiguous")));
    assert!(!amb.params.iter().any(|p| p.resolved));
}

#[test]
fn values_static_list_and_dynamic() {
    let i = one("Set-Mailbox -Identity \"a`tb\" -EmailAddresses x@y.com,'z@y.com' -DisplayName $n");
    assert_eq!(
        i.param("Identity").map(|p| &p.value),
        Some(&ParamValue::Static("a\tb".into()))
    );
    assert_eq!(
        i.param("EmailAddresses").map(|p| &p.value),
        Some(&ParamValue::List(vec!["x@y.com".into(), "z@y.com".into()]))
    );
    assert_eq!(
        i.param("DisplayName").map(|p| &p.value),
        Some(&ParamValue::Dynamic)
    );
    let q = one("Set-Mailbox bob -ProhibitSendQuota 1GB");
    assert_eq!(
        q.param("ProhibitSendQuota").map(|p| &p.value),
        Some(&ParamValue::Static("1073741824".into()))
    );
}

#[test]
fn splatting_only_from_unmodified_literal_hashtables() {
    let invs = run("$p = @{ Ident = 'bob'; TargetDatabase = 'DB2' }; New-MoveRequest @p");
    let i = invs.first().unwrap_or_else(|| panic!("no invocation"));
    assert_eq!(i.params_uncertain, None);
    assert_eq!(
        i.param("Identity").map(|p| &p.value),
        Some(&ParamValue::Static("bob".into()))
    );
    for src in [
        "New-MoveRequest @p",
        "$p = @{ Identity = 'bob' }; $p['X'] = 1; New-MoveRequest @p",
        "$p = @{ Identity = 'bob' }; $p += @{ X = 1 }; New-MoveRequest @p",
        "New-MoveRequest @p; $p = @{ Identity = 'bob' }",
        "foreach ($p in $list) { New-MoveRequest @p }",
        "$p = Get-Thing; New-MoveRequest @p",
    ] {
        let invs = run(src);
        let Some(i) = invs.iter().find(|i| i.name == "New-MoveRequest") else {
            panic!("{src:?}: no New-MoveRequest");
        };
        assert!(i.params_uncertain.is_some(), "{src:?}: {i:?}");
    }
}

#[test]
fn dynamic_invocations() {
    for (src, name) in [
        ("& $x", "$x"),
        (
            "& (\"New-\" + \"MoveRequest\")",
            "(\"New-\" + \"MoveRequest\")",
        ),
        (". $path", "$path"),
        ("& \"New-$x\"", "\"New-$x\""),
        ("$sb.Invoke()", ".Invoke()"),
        ("$host.Runspace.InvokeScript()", ".InvokeScript()"),
        (
            "[System.Diagnostics.Process]::Start('x')",
            "[System.Diagnostics.Process]::Start",
        ),
    ] {
        let invs = run(src);
        let Some(i) = invs.iter().find(|i| i.name == name) else {
            panic!("{src:?}: {invs:?}");
        };
        assert!(i.dynamic.is_some(), "{src:?}");
    }
    assert!(
        run("(Get-Date).AddDays(-7).ToString(); [math]::Round(1.5); $x.Count")
            .iter()
            .all(|i| i.dynamic.is_none())
    );
}

#[test]
fn script_blocks_code_or_data() {
    // OPATH filter: data, but a subexpression inside it is still code.
    let invs = run("Get-Mailbox -Filter {Name -like 'a*' -and X -eq $(Remove-Mailbox z)}");
    let names: Vec<&str> = invs.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(names, ["Get-Mailbox", "Remove-Mailbox"]);
    let invs = run("Get-Mailbox -Filter { & $(Remove-Mailbox z) }");
    assert!(invs.iter().any(|i| i.name == "Remove-Mailbox"), "{invs:?}");
    // ScriptBlock parameters, loose blocks, unknown commands: code.
    for src in [
        "Get-Mailbox | Where-Object -FilterScript { Remove-Mailbox x }",
        "Get-Mailbox | ForEach-Object -Process { Remove-Mailbox x }",
        "Invoke-Command -ScriptBlock { Remove-Mailbox x }",
        "& { Remove-Mailbox x }",
        ". { Remove-Mailbox x }",
        "Unknown-Thing { Remove-Mailbox x }",
        "Get-Mailbox -NoSuchParam { Remove-Mailbox x }",
        "Get-ExchangeCertificate | Enable-ExchangeCertificate -Thumbprint { Remove-Mailbox x }",
        "$f = { Remove-Mailbox x }",
    ] {
        assert!(
            run(src)
                .iter()
                .any(|i| i.name == "Remove-Mailbox" && i.depth == 1),
            "{src:?}"
        );
    }
}

#[test]
fn depths_count_enclosing_constructs() {
    let invs = run("A (B $(C \"$(D)\")) { E } @(F) @{ k = G }");
    let depths: Vec<(&str, usize)> = invs.iter().map(|i| (i.name.as_str(), i.depth)).collect();
    assert_eq!(
        depths,
        [
            ("A", 0),
            ("B", 1),
            ("C", 2),
            ("D", 3),
            ("E", 1),
            ("F", 1),
            ("G", 1)
        ]
    );
}

#[test]
fn pipeline_input_is_recorded() {
    let invs = run("Get-Mailbox | Set-Mailbox -DisplayName x");
    let flags: Vec<bool> = invs.iter().map(|i| i.pipeline_input).collect();
    assert_eq!(flags, [false, true]);
}

#[test]
fn report_shape_matches_the_spec() {
    let r = super::parse_report("Get-Mailbox -Ident bob", Catalog::builtin());
    assert_eq!(r["error"], serde_json::Value::Null);
    assert_eq!(r["invocations"][0]["name"], "Get-Mailbox");
    assert_eq!(r["invocations"][0]["params"][0], "-Identity");
    assert_eq!(r["invocations"][0]["depth"], 0);
    let e = super::parse_report("Get-Mailbox 'x", Catalog::builtin());
    assert_eq!(e["error"]["offset"], 12);
    assert_eq!(e["error"]["kind"], "incomplete");
}

#[test]
fn foreach_object_member_calls_are_dynamic() {
    for src in [
        "{ Remove-Mailbox x } | % Invoke",
        "[scriptblock] | ForEach-Object -MemberName Create -ArgumentList 'x'",
        "$x | % $m",
    ] {
        assert!(
            run(src)
                .iter()
                .any(|i| i.dynamic.is_some() && i.name.starts_with('.')),
            "{src:?}"
        );
    }
    assert!(run("Get-Mailbox | % ToString")
        .iter()
        .all(|i| i.dynamic.is_none()));
    assert!(run("Get-Mailbox | % { $_.Name }")
        .iter()
        .all(|i| i.dynamic.is_none()));
}

#[test]
fn code_made_from_text_or_passed_in_variables_is_dynamic() {
    for src in [
        "$s = [scriptblock]'Remove-Mailbox x'",
        "$s = 'Remove-Mailbox x' -as [ScriptBlock]",
        "Invoke-Command -ScriptBlock $s",
        "Get-Mailbox | Where-Object -FilterScript $s",
        "Get-Mailbox | ForEach-Object -Process $s",
    ] {
        assert!(
            run(src).iter().any(|i| i.dynamic.is_some()),
            "{src:?}: {:?}",
            run(src)
        );
    }
    assert!(
        run("Get-Mailbox | ForEach-Object -Begin { 1 } -Process { 2 }, { 3 }")
            .iter()
            .all(|i| i.dynamic.is_none())
    );
}

/// 100 KB lines that repeat one parameter lookup: each used to scan the command's metadata
/// (12 s for `-zz` × 25,000, 25 s for `@p` × 33,000, 3 s for 50,000 positional arguments in a
/// debug build). The bound is loose so a busy machine does not fail it; the old cost does.
#[test]
fn long_lines_resolve_in_linear_time() {
    let lines = [
        format!("Get-Mailbox {}", "-zz ".repeat(25_000)),
        format!("$p = @{{ a = 1 }}; Get-Mailbox {}", "@p ".repeat(33_000)),
        format!("Get-Mailbox {}", "a ".repeat(50_000)),
        "$p = @{ a = 1 }; ".repeat(6_000) + "Get-Mailbox @p",
    ];
    for line in &lines {
        let started = std::time::Instant::now();
        let invs = run(line);
        let took = started.elapsed();
        assert!(!invs.is_empty());
        assert!(
            took < std::time::Duration::from_secs(4),
            "{} bytes took {took:?}",
            line.len()
        );
    }
}

#[test]
fn splats_keep_their_place_among_parameters() {
    let i =
        one("$a = @{ Identity = 'x' }; $b = @{ ResultSize = 5 }; Get-Mailbox @a -Filter 'f' @b");
    let names: Vec<&str> = i.params.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["Identity", "Filter", "ResultSize"]);
}

#[test]
fn a_line_with_too_many_invocations_is_refused_whole() {
    let line = format!("Get-Mailbox | % {}", "a ".repeat(5_000));
    let invs = run(&line);
    let last = invs.last().unwrap_or_else(|| panic!("no invocations"));
    assert_eq!(last.name, "<too many invocations>");
    assert!(last.dynamic.is_some());
    assert!(invs.len() <= 2049, "{}", invs.len());
}

#[test]
fn round_trip_tolerates_reprinted_filter_blocks_only() {
    let cat = Catalog::builtin();
    // The print normalises the block's quotes; the filter still reads as the same code.
    assert_eq!(
        round_trip(
            "Get-UnifiedGroup -Filter {ResourceProvisioningOptions -eq \"Team\"}",
            cat
        ),
        Ok(())
    );
    let key = |v: &str| {
        vec![(
            Some("Get-Mailbox".to_string()),
            0,
            false,
            false,
            vec![("Identity".to_string(), Some(ParamValue::Static(v.into())))],
        )]
    };
    // A string value must survive the print exactly, even when it reads as the same code.
    let src = "Get-Mailbox -Identity 'a  \"b\"'";
    assert!(!same_keys(src, &key("a  \"b\""), &key("a 'b'")));
    // The text of a block may be reprinted as the same code, not as other code.
    let src = "Get-Mailbox -Identity { a  \"b\" }";
    assert!(same_keys(src, &key("a  \"b\""), &key("a 'b'")));
    assert!(!same_keys(src, &key("a  \"b\""), &key("a 'c'")));
}

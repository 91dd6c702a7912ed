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
        (0..2_000)
            .map(|i| format!("$p{i} = @{{ a = 1 }}; Get-Mailbox @p{i}; "))
            .collect::<String>(),
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
    // A block that ends in a comment closes on the next line: it is read in its own context,
    // where the comment stops at the newline (found by the `parse` fuzz target).
    for src in [
        "Set-Mailbox -DisplayName { Get-Mailbox  x # note }\n}",
        "Set-Mailbox -DisplayName {\n  Get-Mailbox  'x'\n  #a } b\n}",
        "Get-Mailbox | Set-Mailbox -DisplayName { a \"b\" #c\n\n#d $p}e\n}",
    ] {
        assert_eq!(round_trip(src, cat), Ok(()), "{src:?}");
    }
}

/// The `Set-Mailbox` invocation of `src`.
fn set_mailbox(src: &str) -> Invocation {
    run(src)
        .into_iter()
        .find(|i| i.name == "Set-Mailbox")
        .unwrap_or_else(|| panic!("{src:?}: no Set-Mailbox"))
}

#[test]
fn splats_resolve_only_when_the_value_at_run_time_is_certain() {
    // One literal assignment, in the same body or one that runs where it stands, before
    // the use, no other writer.
    for src in [
        "$h = @{ Identity = 'rob' }; Set-Mailbox @h",
        "$h = @{ Identity = 'rob' }; if ($x) { Set-Mailbox @h }",
        "$h = @{ Identity = 'rob' }; Get-Mailbox | ForEach-Object { Set-Mailbox @h }",
        "$h = @{ Identity = 'rob' }; & { Set-Mailbox @h }",
        "$h = @{ Identity = 'rob' }; Set-Mailbox @H",
        "${h} = @{ Identity = 'rob' }; Set-Mailbox @h",
        "function f { $h = @{ Identity = 'rob' }; Set-Mailbox @h }",
        "foreach ($m in 1, 2) { $h = @{ Identity = 'rob' }; Set-Mailbox @h }",
    ] {
        let i = set_mailbox(src);
        assert_eq!(i.params_uncertain, None, "{src:?}");
        assert_eq!(
            i.param("Identity").map(|p| &p.value),
            Some(&ParamValue::Static("rob".into())),
            "{src:?}"
        );
    }
    let h = "$h = @{ Identity = 'rob' }";
    for src in [
        // automatic variables
        "Get-Mailbox | % { Set-Mailbox @_ }".to_string(),
        "$_ = @{ Identity = 'rob' }; Get-Mailbox | % { Set-Mailbox @_ }".into(),
        "$args = @{ Identity = 'rob' }; Set-Mailbox @args".into(),
        "$input = @{ Identity = 'rob' }; Set-Mailbox @input".into(),
        "$PSBoundParameters = @{ Identity = 'rob' }; Set-Mailbox @PSBoundParameters".into(),
        // parameters of a function or script block
        format!("{h}; function f {{ param($h) Set-Mailbox @h }}"),
        format!("{h}; function f($h) {{ Set-Mailbox @h }}"),
        format!("{h}; & {{ param($h) Set-Mailbox @h }} @{{ Identity = 'x' }}"),
        // variables set by common parameters, loops and switch
        format!("{h}; Get-Mailbox -PipelineVariable h | Set-Mailbox @h"),
        format!("{h}; Get-Mailbox -OutVariable h; Set-Mailbox @h"),
        format!("{h}; Get-Mailbox -ov +h; Set-Mailbox @h"),
        format!("{h}; Get-Mailbox -ErrorVariable h; Set-Mailbox @h"),
        format!("{h}; Get-Mailbox -OutVariable $n; Set-Mailbox @h"),
        format!("{h}; foreach ($h in $list) {{ }}; Set-Mailbox @h"),
        format!("{h}; for ($h = 0; $h -lt 1; $h++) {{ }}; Set-Mailbox @h"),
        format!("{h}; $h++; Set-Mailbox @h"),
        // reassigned: after a function that splats it was defined, in a nested scope or loop
        format!("{h}; function f {{ Set-Mailbox @h }}; $h = @{{ Identity = 'x' }}; f"),
        format!("{h}; function f {{ Set-Mailbox @h }}; f"),
        format!("{h}; $sb = {{ Set-Mailbox @h }}; & $sb"),
        format!("{h}; Invoke-Command -ComputerName ex1 -ScriptBlock {{ Set-Mailbox @h }}"),
        format!("{h}; Start-Job {{ Set-Mailbox @h }}"),
        format!("{h}; Get-Mailbox | % -Parallel {{ Set-Mailbox @h }}"),
        format!("{h}; & {{ $h = @{{ Identity = 'x' }} }}; Set-Mailbox @h"),
        format!("{h}; while ($true) {{ Set-Mailbox @h; $h = @{{ Identity = 'x' }} }}"),
        format!("{h}; if ($x) {{ $h = @{{ Identity = 'x' }} }}; Set-Mailbox @h"),
        format!("{h}; $h = @{{ Identity = 'x' }}; Set-Mailbox @h"),
        "if ($x) { $h = @{ Identity = 'rob' } }; Set-Mailbox @h".into(),
        "try { $h = @{ Identity = 'rob' } } catch { }; Set-Mailbox @h".into(),
        // written by name, by reference, through the variable: drive or an alias of the table
        format!("{h}; Set-Variable h @{{ Identity = 'x' }}; Set-Mailbox @h"),
        format!("{h}; New-Variable -Name h -Value 1 -Force; Set-Mailbox @h"),
        format!("{h}; sv h 1; Set-Mailbox @h"),
        format!("{h}; Get-Variable h | % {{ $_.Value = 1 }}; Set-Mailbox @h"),
        format!("{h}; Get-Mailbox | Tee-Object -Variable h; Set-Mailbox @h"),
        format!("{h}; New-Item variable:h -Value 1 -Force; Set-Mailbox @h"),
        format!("{h}; ${{variable:h}} = 1; Set-Mailbox @h"),
        format!("{h}; $variable:h = 1; Set-Mailbox @h"),
        format!("{h}; Do-Thing ([ref]$h); Set-Mailbox @h"),
        format!("{h}; [void][ref]$h; Set-Mailbox @h"),
        format!("{h}; $g = $h; $g['ForwardingSmtpAddress'] = 'e@x.com'; Set-Mailbox @h"),
        format!("{h}; $g = $h; $g.ForwardingSmtpAddress = 'e@x.com'; Set-Mailbox @h"),
        format!("{h}; [hashtable]$h = @{{}}; Set-Mailbox @h"),
        // scope qualifiers and spellings of one variable
        format!("{h}; $global:h = @{{ Identity = 'x' }}; Set-Mailbox @h"),
        format!("{h}; $Script:H = @{{ Identity = 'x' }}; Set-Mailbox @h"),
        format!("{h}; ${{H}} = @{{ Identity = 'x' }}; Set-Mailbox @h"),
        format!("{h}; $local:h = 1; Set-Mailbox @h"),
        format!("{h}; Set-Mailbox @global:h"),
        format!("{h}; Set-Mailbox @script:h"),
        "$global:h = @{ Identity = 'rob' }; Set-Mailbox @h".into(),
        "$\u{17F} = @{ Identity = 'rob' }; Set-Mailbox @S".into(),
        // a function or script could assign `$global:h`; a splat of unknown keys could set it
        format!("{h}; Update-MyThing; Set-Mailbox @h"),
        format!("{h}; . .\\helpers.ps1; Set-Mailbox @h"),
        format!("{h}; Get-Mailbox @p; Set-Mailbox @h"),
        format!("{h}; $p = @{{ OutVariable = 'h' }}; Get-Mailbox @p; Set-Mailbox @h"),
        format!("{h}; $p = @{{ ov = 'h' }}; Get-Mailbox @p; Set-Mailbox @h"),
        // the use runs before the assignment
        format!("Set-Mailbox @h; {h}"),
        "$h = @{ Identity = (Set-Mailbox @h) }".into(),
    ] {
        let i = set_mailbox(&src);
        assert!(
            i.params_uncertain
                .as_deref()
                .is_some_and(|u| u.contains("is not certain")),
            "{src:?}: {i:?}"
        );
        assert_eq!(i.canonical(), None, "{src:?}");
    }
}

/// Whether `src` resolves the invocation named `name` as dynamic.
fn is_dynamic(src: &str, name: &str) -> bool {
    run(src)
        .iter()
        .find(|i| i.name == name)
        .unwrap_or_else(|| panic!("{src:?}: no {name}"))
        .dynamic
        .is_some()
}

#[test]
fn computed_arguments_of_commands_without_metadata_are_code() {
    for (src, name) in [
        (
            "Format-Custom -Property (Get-Command Remove-Mailbox).ScriptBlock",
            "Format-Custom",
        ),
        ("Format-Custom -Property $sb", "Format-Custom"),
        ("fc $sb", "Format-Custom"),
        ("Format-Custom -GroupBy $sb", "Format-Custom"),
        ("Format-Wide $sb", "Format-Wide"),
        ("Out-Report -Property $sb", "Out-Report"),
        ("Out-Report (Get-Command X).ScriptBlock", "Out-Report"),
        ("Out-Report -Property:$sb", "Out-Report"),
        ("Out-Report -Property @($sb)", "Out-Report"),
        ("Out-Report -Property @{ e = $sb }", "Out-Report"),
        ("Out-Report $( $sb )", "Out-Report"),
        ("Get-Mailbox | Out-Report", "Out-Report"),
        ("Get-Mailbox | Out-Report -Title 'x'", "Out-Report"),
        ("ForEach-Object -Begin $sb -Process { }", "ForEach-Object"),
        ("ForEach-Object -Process { } -End $sb", "ForEach-Object"),
        ("ForEach-Object -Process { } -RemainingScripts $sb", "ForEach-Object"),
        ("Trace-Command -Name x -Expression $sb", "Trace-Command"),
        ("Measure-Command $sb", "Measure-Command"),
        ("New-Module -ScriptBlock $sb", "New-Module"),
        ("Start-ThreadJob $sb", "Start-ThreadJob"),
        ("Add-Member -InputObject $o ScriptMethod Go $sb", "Add-Member"),
        ("$o | Add-Member -MemberType ScriptProperty -Name P -Value $sb", "Add-Member"),
        (
            "Register-EngineEvent -SourceIdentifier PowerShell.OnIdle -Action $sb",
            "Register-EngineEvent",
        ),
        ("Register-ObjectEvent $timer Elapsed x $sb", "Register-ObjectEvent"),
        ("Set-PSBreakpoint -Command Get-Mailbox -Action $sb", "Set-PSBreakpoint"),
        (
            "Register-ArgumentCompleter -CommandName Get-Mailbox -ScriptBlock $sb",
            "Register-ArgumentCompleter",
        ),
        (
            "Update-TypeData -TypeName System.String -MemberType ScriptMethod -MemberName Go -Value $sb",
            "Update-TypeData",
        ),
        // A catalogued parameter whose type the documentation does not give.
        ("Set-UserPhoto rob -UseCustomRouting $sb", "Set-UserPhoto"),
    ] {
        assert!(is_dynamic(src, name), "{src:?}");
    }
    // Literal arguments are not code; a block literal's commands are checked on their own.
    for (src, name) in [
        (
            "Out-Report -Title 'x' -Count 3 -Wide $true -Tags a, b",
            "Out-Report",
        ),
        ("Out-Report x 3 @{ a = 'b' }", "Out-Report"),
        (
            "Format-Custom -Property Name, Alias -Depth 2",
            "Format-Custom",
        ),
        (
            "Add-Member -InputObject $o -NotePropertyName N -NotePropertyValue 'v'",
            "Add-Member",
        ),
    ] {
        assert!(!is_dynamic(src, name), "{src:?}");
    }
    let invs = run("Out-Report { Remove-Mailbox rob }");
    assert!(invs.iter().any(|i| i.name == "Remove-Mailbox"), "{invs:?}");
}

#[test]
fn blocks_kept_for_later_are_deferred_code() {
    for src in [
        "Out-Report { Remove-Mailbox rob }",
        "Get-Mailbox | Out-Report -Then { Remove-Mailbox rob }",
        "$o | Add-Member -MemberType ScriptMethod -Name Go -Value { Remove-Mailbox rob }",
        "Add-Member -InputObject $o ScriptProperty P { Remove-Mailbox rob }",
        "Register-EngineEvent -SourceIdentifier PowerShell.OnIdle -Action { Remove-Mailbox rob }",
        "Register-ObjectEvent $timer Elapsed -Action { Remove-Mailbox rob }",
        "Register-WmiEvent -Class Win32_ProcessStartTrace -Action { Remove-Mailbox rob }",
        "Register-CimIndicationEvent -ClassName Win32_ProcessStartTrace -Action { Remove-Mailbox rob }",
        "Set-PSBreakpoint -Command Get-Mailbox -Action { Remove-Mailbox rob }",
        "Register-ArgumentCompleter -CommandName Get-Mailbox -ScriptBlock { Remove-Mailbox rob }",
        "Update-TypeData -TypeName System.String -MemberType ScriptMethod -MemberName Go -Value { Remove-Mailbox rob }",
        "Start-Job { Remove-Mailbox rob }",
        "Start-ThreadJob -ScriptBlock { Remove-Mailbox rob }",
        "Register-ScheduledJob -Name n -ScriptBlock { Remove-Mailbox rob }",
        "Set-PSReadLineKeyHandler -Chord Enter -ScriptBlock { Remove-Mailbox rob }",
        "Add-Member -InputObject $o ScriptMethod Go ({ Remove-Mailbox rob })",
        "Invoke-Command -ScriptBlock { Remove-Mailbox rob } -AsJob",
        "Invoke-Command -ComputerName ex1 -InDisconnectedSession { Remove-Mailbox rob }",
        "Get-Mailbox | ForEach-Object -Parallel { Remove-Mailbox rob } -AsJob",
    ] {
        let a = super::analyse_line(src, Catalog::builtin()).unwrap_or_else(|e| panic!("{e}"));
        let Some(inv) = a.invocations.iter().find(|i| i.name == "Remove-Mailbox") else {
            panic!("{src:?}: {:?}", a.invocations);
        };
        assert!(
            a.deferred
                .iter()
                .any(|d| d.start <= inv.span.start && inv.span.end <= d.end),
            "{src:?}: {:?}",
            a.deferred
        );
    }
    // Blocks that run now, where they stand, are not deferred.
    for src in [
        "Get-Mailbox | ForEach-Object { Remove-Mailbox rob }",
        "Measure-Command { Remove-Mailbox rob }",
        "Invoke-Command { Remove-Mailbox rob }",
    ] {
        let a = super::analyse_line(src, Catalog::builtin()).unwrap_or_else(|e| panic!("{e}"));
        assert!(a.deferred.is_empty(), "{src:?}: {:?}", a.deferred);
    }
}

#[test]
fn positional_arguments_fill_the_remaining_slots_in_order() {
    let i = one("Register-ObjectEvent $timer Elapsed Tick");
    let names: Vec<&str> = i.params.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["InputObject", "EventName", "SourceIdentifier"]);
    assert_eq!(
        i.param("EventName").map(|p| &p.value),
        Some(&ParamValue::Static("Elapsed".into()))
    );
    let i = one("New-Variable v 1");
    assert_eq!(
        i.param("Value").map(|p| &p.value),
        Some(&ParamValue::Static("1".into()))
    );
}

/// The names PowerShell 7 leaves out of its alias table on Linux and macOS (`#if !UNIX` in
/// InitialSessionState.cs), with their Windows targets.
const WINDOWS_ONLY_ALIASES: &[(&str, &str)] = &[
    ("ac", "Add-Content"),
    ("clear", "Clear-Host"),
    ("compare", "Compare-Object"),
    ("cpp", "Copy-ItemProperty"),
    ("diff", "Compare-Object"),
    ("gsv", "Get-Service"),
    ("sleep", "Start-Sleep"),
    ("sort", "Sort-Object"),
    ("start", "Start-Process"),
    ("sasv", "Start-Service"),
    ("spsv", "Stop-Service"),
    ("tee", "Tee-Object"),
    ("write", "Write-Output"),
    ("cat", "Get-Content"),
    ("cp", "Copy-Item"),
    ("ls", "Get-ChildItem"),
    ("man", "help"),
    ("mount", "New-PSDrive"),
    ("mv", "Move-Item"),
    ("ps", "Get-Process"),
    ("rm", "Remove-Item"),
    ("rmdir", "Remove-Item"),
    ("cnsn", "Connect-PSSession"),
    ("dnsn", "Disconnect-PSSession"),
    ("ogv", "Out-GridView"),
    ("shcm", "Show-Command"),
    ("kill", "Stop-Process"),
];

fn first_on(src: &str, platform: crate::catalog::Platform) -> Invocation {
    let a = super::analyse_line_on(src, Catalog::builtin(), platform)
        .unwrap_or_else(|e| panic!("{src:?}: {e}"));
    a.invocations
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("{src:?}: no invocation"))
}

#[test]
fn platform_decides_what_windows_only_aliases_run() {
    use crate::catalog::Platform;
    use crate::invocation::TaskKind;
    // Windows PowerShell 5.1 only (`#if !CORECLR`): PowerShell 7 on Windows runs `sc.exe`.
    let windows_powershell_only = [
        ("curl", "Invoke-WebRequest"),
        ("wget", "Invoke-WebRequest"),
        ("sc", "Set-Content"),
        ("gwmi", "Get-WmiObject"),
        ("trcm", "Trace-Command"),
        ("ipsn", "Import-PSSession"),
    ];
    let platform_only = WINDOWS_ONLY_ALIASES
        .iter()
        .copied()
        .chain(windows_powershell_only)
        // The CimCmdlets module is Windows only.
        .chain([("gcim", "Get-CimInstance"), ("icim", "Invoke-CimMethod")]);
    for (alias, target) in platform_only {
        for written in [alias.to_string(), alias.to_uppercase()] {
            let line = format!("{written} x");
            let w = first_on(&line, Platform::Windows);
            if windows_powershell_only.contains(&(alias, target)) {
                assert!(
                    w.dynamic
                        .as_deref()
                        .is_some_and(|d| d.contains("PowerShell 7")),
                    "{line}: {w:?}"
                );
            } else {
                assert_eq!(
                    (w.name.as_str(), w.kind),
                    (target, TaskKind::Command),
                    "{line}"
                );
                assert_eq!(w.dynamic, None, "{line}");
            }
            let u = first_on(&line, Platform::Unix);
            assert_eq!(
                (u.name.as_str(), u.kind),
                (written.as_str(), TaskKind::Program)
            );
            assert_eq!(u.task(), format!("program:{written}"));
            let n = first_on(&line, Platform::Unknown);
            assert!(
                n.dynamic
                    .as_deref()
                    .is_some_and(|d| d.contains("not known")),
                "{line}: {n:?}"
            );
            assert_ne!(n.name, target, "{line}");
        }
    }
    // Aliases every platform defines resolve the same everywhere.
    for (alias, target) in [
        ("%", "ForEach-Object"),
        ("gci", "Get-ChildItem"),
        ("dir", "Get-ChildItem"),
        ("echo", "Write-Output"),
        ("type", "Get-Content"),
        ("pwd", "Get-Location"),
        ("cd", "Set-Location"),
        ("fc", "Format-Custom"),
        ("select", "Select-Object"),
    ] {
        for p in [Platform::Windows, Platform::Unix, Platform::Unknown] {
            let i = first_on(&format!("{alias} x"), p);
            assert_eq!(
                (i.name.as_str(), &i.dynamic),
                (target, &None),
                "{alias} {p:?}"
            );
        }
    }
    // A native program's arguments and pipeline input are text, not code; nested code in them
    // is still found.
    let u = super::analyse_line_on(
        "Get-Mailbox | sort $(Remove-Mailbox rob)",
        Catalog::builtin(),
        Platform::Unix,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let names: Vec<&str> = u.invocations.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(names, ["Get-Mailbox", "sort", "Remove-Mailbox"]);
    // Module-qualified names are never aliases.
    let q = first_on(
        "Microsoft.PowerShell.Utility\\Sort-Object x",
        Platform::Unknown,
    );
    assert_eq!((q.name.as_str(), &q.dynamic), ("Sort-Object", &None));
}

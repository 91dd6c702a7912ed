//! Unit tests per grammar area (lexical, strings, commands, expressions, statements, printer).

#![allow(clippy::panic, reason = "tests fail loudly")]

use super::ast::*;
use super::*;

fn ok(src: &str) -> Script {
    parse(src).unwrap_or_else(|e| panic!("{src:?} should parse: {e}"))
}

fn err(src: &str) -> ParseError {
    match parse(src) {
        Ok(s) => panic!("{src:?} should fail, got {s:?}"),
        Err(e) => e,
    }
}

/// The single command of a one-command line.
fn command(src: &str) -> Command {
    let script = ok(src);
    let Some(Statement {
        kind: StatementKind::Chain(chain),
        ..
    }) = script.statements.into_iter().next()
    else {
        panic!("{src:?}: not a chain");
    };
    match chain.first.elements.into_iter().next() {
        Some(PipelineElement::Command(c)) => c,
        other => panic!("{src:?}: not a command: {other:?}"),
    }
}

fn word_name(c: &Command) -> &str {
    match &c.name {
        CommandName::Word(w) => &w.text,
        CommandName::Expr(_) => "",
    }
}

fn arg_text(c: &Command, i: usize) -> Option<String> {
    let args: Vec<&Expr> = c
        .elements
        .iter()
        .filter_map(|e| match e {
            CommandElement::Argument(a) => Some(a),
            CommandElement::Parameter(p) => p.value.as_ref(),
        })
        .collect();
    match &args.get(i)?.kind {
        ExprKind::String(s) => s.static_value(),
        ExprKind::Number(n) => Some(n.clone()),
        _ => None,
    }
}

#[test]
fn lexical_comments_continuations_and_unicode_dashes() {
    let c = command("Get-Mailbox <# c #> -Identity `\n bob # tail");
    assert_eq!(word_name(&c), "Get-Mailbox");
    assert_eq!(arg_text(&c, 0).as_deref(), Some("bob"));
    let c = command("Set-Mailbox \u{2014}Identity x");
    assert!(matches!(&c.elements[..], [CommandElement::Parameter(p), _] if p.name == "Identity"));
    assert_eq!(err("Get-X <# open").kind, ParseErrorKind::Incomplete);
}

#[test]
fn strings_quotes_escapes_and_expansions() {
    let c = command("X 'it''s' \"a`tb\"\"c\" \u{2018}q\u{2019} \u{201C}d\u{201D}");
    assert_eq!(arg_text(&c, 0).as_deref(), Some("it's"));
    assert_eq!(arg_text(&c, 1).as_deref(), Some("a\tb\"c"));
    assert_eq!(arg_text(&c, 2).as_deref(), Some("q"));
    assert_eq!(arg_text(&c, 3).as_deref(), Some("d"));
    let c = command("X \"user $name: $($x.Count) ${a b}\"");
    let Some(CommandElement::Argument(Expr {
        kind: ExprKind::String(s),
        ..
    })) = c.elements.first()
    else {
        panic!("not a string");
    };
    let kinds: Vec<&str> = s
        .parts
        .iter()
        .map(|p| match p {
            StringPart::Text(_) => "text",
            StringPart::Variable(..) => "var",
            StringPart::Subexpression(..) => "sub",
        })
        .collect();
    assert_eq!(kinds, ["text", "var", "text", "sub", "text", "var"]);
    let c = command("X @'\nline 'one'\n'@");
    assert_eq!(arg_text(&c, 0).as_deref(), Some("line 'one'"));
    assert_eq!(err("X @'abc'@").kind, ParseErrorKind::Invalid);
    assert_eq!(err("X \"abc").kind, ParseErrorKind::Incomplete);
}

#[test]
fn commands_names_parameters_and_arguments() {
    assert_eq!(word_name(&command("Ne`w-MoveRequest")), "New-MoveRequest");
    assert_eq!(
        word_name(&command("Exchange\\Get-Mailbox")),
        "Exchange\\Get-Mailbox"
    );
    let c = command("Set-Mailbox -Identity:bob -Confirm:$false -WhatIf x,y, 'z'");
    let [CommandElement::Parameter(a), CommandElement::Parameter(b), CommandElement::Parameter(w), CommandElement::Argument(list)] =
        &c.elements[..]
    else {
        panic!("unexpected elements {:?}", c.elements);
    };
    assert!(a.colon && a.value.is_some() && b.colon && !w.colon && w.value.is_none());
    assert!(matches!(&list.kind, ExprKind::List(items) if items.len() == 3));
    let c = command("X user@contoso.com C:\\dir\\f.txt *.txt 10.0.0.1 1KB -5");
    assert_eq!(arg_text(&c, 0).as_deref(), Some("user@contoso.com"));
    assert_eq!(arg_text(&c, 1).as_deref(), Some("C:\\dir\\f.txt"));
    assert_eq!(arg_text(&c, 3).as_deref(), Some("10.0.0.1"));
    assert_eq!(arg_text(&c, 4).as_deref(), Some("1KB"));
    assert_eq!(arg_text(&c, 5).as_deref(), Some("-5"));
    let c = command("& 'New-MoveRequest' -Identity x");
    assert_eq!(c.call_operator, Some(CallOperator::Call));
    assert_eq!(word_name(&command("& 7z.exe a x")), "7z.exe");
    assert_eq!(err("7z.exe a x").kind, ParseErrorKind::Invalid);
    let c = command(". .\\profile.ps1");
    assert_eq!(c.call_operator, Some(CallOperator::DotSource));
    let c = command("X > out.txt 2>&1");
    assert_eq!(c.redirections.len(), 2);
    assert_eq!(err("X (a)b").kind, ParseErrorKind::Invalid);
    assert_eq!(err("X &").kind, ParseErrorKind::Invalid);
    assert_eq!(err("X |").kind, ParseErrorKind::Incomplete);
}

#[test]
fn expressions_precedence_members_and_casts() {
    let script = ok("$x = 1 + 2 * 3 -eq 7 -and $true");
    let Some(Statement {
        kind: StatementKind::Assignment { value, .. },
        ..
    }) = script.statements.first()
    else {
        panic!("not an assignment");
    };
    let printed = print(&Script {
        statements: vec![(**value).clone()],
        span: value.span,
    });
    assert_eq!(printed, "1 + 2 * 3 -eq 7 -and $true");
    let e = ok("[System.Net.IPAddress]::Parse('1.2.3.4').ToString()");
    let text = format!("{e:?}");
    assert!(text.contains("is_static: true") && text.contains("ToString"));
    assert!(ok("[int]$n = '5'").statements.len() == 1);
    assert!(
        ok("$a[0].Name; $h.$key; (Get-Date).AddDays(-7)")
            .statements
            .len()
            == 3
    );
    assert!(
        ok("$s = 'a,b' -split ','; 'x' -f 1; 1..10; -not $a; !$b")
            .statements
            .len()
            == 5
    );
    assert!(
        ok("$x = @{ a = 1; 'b c' = Get-Date\n d = @(1,2) }")
            .statements
            .len()
            == 1
    );
    assert_eq!(err("$x -frob 1").kind, ParseErrorKind::Invalid);
    assert_eq!(err("$x = 1 +").kind, ParseErrorKind::Incomplete);
}

#[test]
fn statements_control_flow_bodies_are_parsed() {
    for src in [
        "if ($a) { X } elseif ($b) { Y } else { Z }",
        "if ($a) { X }\nelse { Y }",
        "foreach ($m in Get-Mailbox) { X $m }",
        "for ($i = 0; $i -lt 3; $i++) { X }",
        "while ($true) { break }",
        "do { X } until ($done)",
        "switch -regex ($x) { 'a' { X } default { Y } }",
        "function F($a, $b = 2) { param() X }",
        "try { X } catch [System.Exception] { Y } finally { Z }",
        "trap { continue }",
        "{ param($x) begin { X } process { Y } end { Z } }",
        "return; throw 'x'; exit 1",
    ] {
        ok(src);
    }
    assert_eq!(err("class C {}").kind, ParseErrorKind::Invalid);
    assert_eq!(err("else { X }").kind, ParseErrorKind::Invalid);
    assert_eq!(err("try { X }").kind, ParseErrorKind::Incomplete);
    assert_eq!(err("if ($a) {").kind, ParseErrorKind::Incomplete);
}

#[test]
fn chains_and_pipelines() {
    let script = ok("A | B -x 1 | C && D || E");
    let Some(Statement {
        kind: StatementKind::Chain(chain),
        ..
    }) = script.statements.first()
    else {
        panic!("not a chain");
    };
    assert_eq!(chain.first.elements.len(), 3);
    assert_eq!(chain.rest.len(), 2);
    ok("A |\n  B");
}

#[test]
fn spans_point_into_the_source() {
    let src = "Get-Mailbox -Identity bob";
    let c = command(src);
    let CommandName::Word(w) = &c.name else {
        panic!("not a word")
    };
    assert_eq!(w.span.text(src), "Get-Mailbox");
    let Some(CommandElement::Parameter(p)) = c.elements.first() else {
        panic!("not a parameter")
    };
    assert_eq!(p.token_span.text(src), "-Identity");
    assert_eq!(err("Get-Mailbox )").offset, 12);
}

#[test]
fn depth_limit_is_reported_not_overflowed() {
    let src = format!("X {}", "(".repeat(MAX_DEPTH + 5));
    assert_eq!(err(&src).kind, ParseErrorKind::DepthLimit);
}

#[test]
fn printer_output_reparses() {
    for src in [
        "Get-Mailbox -Identity 'o''neil' | ? { $_.X -gt 1 } | % { Set-Mailbox $_ -Y \"a $b $(c)\" }",
        "$p = @{ Identity = 'x' }; New-MoveRequest @p -Confirm:$false",
        "[scriptblock]::Create('x').Invoke(); & $cmd; . { X }",
        "X -- -Identity; X `$notvar 'a b' c`tb",
    ] {
        let printed = print(&ok(src));
        ok(&printed);
    }
}

#[test]
fn a_comma_that_follows_no_argument_is_invalid() {
    // PowerShell: "Missing argument in parameter list"; there is no unary comma in argument mode.
    for src in [
        "Set-Mailbox ,alice",
        "Set-Mailbox,alice",
        "Set-Mailbox alice > out.txt ,bob",
        "Set-Mailbox -Identity ,alice",
        "Set-Mailbox -Identity: ,alice",
        "$x = @(MBX01,MBX02)",
        "Get-Mailbox | Set-Mailbox ,(Get-Date)",
    ] {
        let e = err(src);
        assert_eq!(e.kind, ParseErrorKind::Invalid, "{src}");
        assert!(
            e.message.contains("missing argument") || e.message.contains("expected a value"),
            "{src}: {}",
            e.message
        );
    }
    // A comma after an argument still makes a list.
    for src in [
        "Set-Mailbox a, b",
        "Set-Mailbox a ,b",
        "Set-Mailbox -Identity:a,b",
    ] {
        ok(src);
    }
}

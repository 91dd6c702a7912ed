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
        ExprKind::String(s) => s.static_value().map(std::borrow::Cow::into_owned),
        ExprKind::Number(n) => Some(n.clone()),
        _ => None,
    }
}

/// The parts of a command's first element, which must be a string argument.
fn first_string_parts(c: &Command) -> &[StringPart] {
    match c.elements.first() {
        Some(CommandElement::Argument(Expr {
            kind: ExprKind::String(s),
            ..
        })) => &s.parts,
        other => panic!("not a string argument: {other:?}"),
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
    let kinds: Vec<&str> = first_string_parts(&c)
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
    // `(a)` is one token in PowerShell: `b` is the next argument.
    assert_eq!(command("X (a)b").elements.len(), 2);
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

/// The parameter names of a one-command line, in order.
fn param_names(src: &str) -> Vec<String> {
    command(src)
        .elements
        .iter()
        .filter_map(|e| match e {
            CommandElement::Parameter(p) => Some(p.name.to_string()),
            CommandElement::Argument(_) => None,
        })
        .collect()
}

#[test]
fn a_token_ends_at_its_closing_quote_or_bracket() {
    for src in [
        "X -A 'v'-B:x",
        "X -A \"v\"-B:x",
        "X -A \u{2018}v\u{2019}-B:x",
        "X -A $(1)-B:x",
        "X -A (1)-B:x",
        "X -A @(1)-B:x",
        "X -A @{a=1}-B:x",
        "X -A {1}-B:x",
        "X -A $v.P-B:x",
        "X -A $v[0]-B:x",
        "X -A:'v'-B x",
        "X -A @'\nv\n'@-B x",
        "X -A 'v'` -B x",
    ] {
        let names = param_names(src);
        assert_eq!(names, ["A", "B"], "{src:?}");
    }
    // A splat, a string, a block or a script block may follow directly.
    let c = command("X 'v'@p");
    assert!(matches!(
        &c.elements[1],
        CommandElement::Argument(Expr {
            kind: ExprKind::Splat(_),
            ..
        })
    ));
    assert_eq!(command("X 'a'\"b\"").elements.len(), 2);
    assert_eq!(command("X 'a''b'").elements.len(), 1);
    assert_eq!(arg_text(&command("X 'a''b'"), 0).as_deref(), Some("a'b"));
    assert_eq!(command("X 'a'{b}").elements.len(), 2);
    // An unbraced variable ends at `=`, which then starts a word (`=-B` is no parameter).
    assert_eq!(arg_text(&command("X $v=-B"), 1).as_deref(), Some("=-B"));
    assert_eq!(command("X 'a']").elements.len(), 2);
    assert_eq!(command("X 'a'>f").redirections.len(), 1);
    // A word, or a variable glued to a word character, is one token (`ScanGenericToken`).
    assert_eq!(
        arg_text(&command("X a'b c'-D"), 0).as_deref(),
        Some("ab c-D")
    );
    assert_eq!(command("X $env:T\\x-D").elements.len(), 1);
    assert_eq!(arg_text(&command("X a>b"), 0).as_deref(), Some("a>b"));
    assert_eq!(arg_text(&command("X a#b"), 0).as_deref(), Some("a#b"));
    // What PowerShell would glue in ways jitsh does not model is rejected.
    for src in [
        "X 'a'.5",
        "X 'a'?.b",
        "X 'a':b",
        "X 'a'<#c#>.Length",
        "X @p'x'",
        "X @p.x",
        "X [int]x",
        "X @$",
    ] {
        assert_eq!(err(src).kind, ParseErrorKind::Invalid, "{src:?}");
    }
}

#[test]
fn comments_and_here_strings_glued_to_a_token() {
    // `#` after a closing quote or bracket starts a comment; the next line is a new statement.
    for src in [
        "X 'a'#'\nY b\n#'",
        "X \"a\"#\"\nY b\n#\"",
        "X (1)#'\nY b\n#'",
        "X $(1)#'\nY b\n#'",
        "X $v.P#'\nY b\n#'",
    ] {
        let script = ok(src);
        assert_eq!(script.statements.len(), 2, "{src:?}");
    }
    // `@'` after a closing quote opens a here-string.
    let script = ok("X 'a'@'\n'@\nY b");
    assert_eq!(script.statements.len(), 2);
    // Inside a word `#` and `<#` are word characters, as in PowerShell.
    let script = ok("X a<#\nY b\n#>");
    assert!(script.statements.len() >= 2);
    assert_eq!(err("X -P<#\nY\n#>").kind, ParseErrorKind::Invalid);
}

#[test]
fn backtick_before_white_space_is_white_space() {
    for ws in [
        " ", "\t", "\u{b}", "\u{c}", "\u{a0}", "\u{85}", "\u{2003}", "\u{3000}", "\u{2028}",
    ] {
        let src = format!("X a `{ws}-B y");
        assert_eq!(param_names(&src), ["B"], "{src:?}");
    }
    // Inside a word the backtick escapes the space: one argument.
    assert_eq!(arg_text(&command("X a` -B"), 0).as_deref(), Some("a -B"));
    // Inside a word a backtick before a newline keeps the newline in the word; at the end of the
    // input it is a backtick (`ScanGenericToken`).
    assert_eq!(arg_text(&command("X a`\n-B"), 0).as_deref(), Some("a\n-B"));
    assert_eq!(arg_text(&command("X a`"), 0).as_deref(), Some("a`"));
    assert_eq!(err("X a `").kind, ParseErrorKind::Incomplete);
}

#[test]
fn control_and_invisible_characters_are_refused() {
    for c in [
        '\u{0}',
        '\u{1}',
        '\u{1b}',
        '\u{1f}',
        '\u{7f}',
        '\u{80}',
        '\u{9f}',
        '\u{ad}',
        '\u{200b}',
        '\u{200f}',
        '\u{202e}',
        '\u{2060}',
        '\u{feff}',
        '\u{e0001}',
    ] {
        for src in [
            format!("Remove-Mailbox{c}"),
            format!("{c}X"),
            format!("X -P{c}Q"),
            format!("X 'a{c}'"),
        ] {
            let e = err(&src);
            assert_eq!(e.kind, ParseErrorKind::Invalid, "{src:?}");
        }
    }
    // PowerShell's white space separates tokens.
    for c in [
        '\u{85}', '\u{a0}', '\u{b}', '\u{c}', '\u{1680}', '\u{2000}', '\u{2028}', '\u{2029}',
        '\u{202f}', '\u{3000}',
    ] {
        assert_eq!(
            word_name(&command(&format!("Get-Mailbox{c}x"))),
            "Get-Mailbox"
        );
    }
    // Escapes that produce such characters are refused in names.
    for src in [
        "Get-X`0",
        "Get-X`a",
        "Get-X`u{200B}",
        "& \"Get-X`0\"",
        "function F`0 { 1 }",
    ] {
        assert_eq!(err(src).kind, ParseErrorKind::Invalid, "{src:?}");
    }
}

#[test]
fn unicode_escapes_are_decoded() {
    assert_eq!(word_name(&command("Get-Mailbo`u{78}")), "Get-Mailbox");
    assert_eq!(
        arg_text(&command("X \"`u{41}`u{1F600}\""), 0).as_deref(),
        Some("A\u{1F600}")
    );
    assert_eq!(arg_text(&command("X a`u{2d}b"), 0).as_deref(), Some("a-b"));
    for src in [
        "X a`ux",
        "X a`u{}",
        "X a`u{1234567}",
        "X a`u{110000}",
        "X a`u{D800}",
        "X \"`u{41\"",
    ] {
        assert_eq!(err(src).kind, ParseErrorKind::Invalid, "{src:?}");
    }
}

#[test]
fn stop_parsing_is_refused_in_every_spelling() {
    for src in [
        "X --% a | Y",
        "X `--% a",
        "X -`-% a",
        "X '--%' a",
        "X \"--%\" a",
        "X \"-`-%\" a",
        "X @'\n--%\n'@ a",
        "X 'a'--% b",
        "X -- --% a",
        "& '--%' a",
        "X '--%',b a",
        "X '--%'.Length a",
        "X -P:'--%' a",
        "X \u{2013}-% a",
        "X \u{2014}\u{2015}% a",
    ] {
        assert_eq!(err(src).kind, ParseErrorKind::Invalid, "{src:?}");
    }
    // Text that only contains it is an ordinary argument.
    assert_eq!(arg_text(&command("X 'a--%'"), 0).as_deref(), Some("a--%"));
    assert_eq!(command("X --").elements.len(), 0);
}

/// Every input PowerShell's parser reports as incomplete (`ReportIncompleteInput` in Parser.cs
/// and tokenizer.cs) is `Incomplete`: the shell then asks for more instead of sending a line
/// pwsh would wait on.
#[test]
fn completeness_agrees_with_powershell() {
    for src in [
        "X 'x'[",
        "X \"x\"[",
        "X $a[",
        "X $a[0",
        "X (1)[",
        "X $(1)[",
        "X @(1)[",
        "X @{a=1}[",
        "X {1}[",
        "X @'\nx\n'@[",
        "$a.",
        "$a::",
        "$a.b.",
        "[int]::",
        "$a.b(",
        "$a.b(1,",
        "'x'[",
        "'x'.",
        "@(",
        "@{",
        "@{a",
        "@{a=",
        "[int",
        "[",
        "[System.Collections.Generic.List[string",
        "-join",
        "1 -join",
        "param(",
        "param($a,",
        "[CmdletBinding()]",
        "function f",
        "function f(",
        "filter f",
        "if",
        "if (",
        "if ($a)",
        "if ($a) {} else",
        "if ($a) {} elseif",
        "foreach",
        "foreach (",
        "foreach ($a",
        "foreach ($a in",
        "foreach ($a in $b)",
        "for",
        "for (",
        "for ($i=0;",
        "while",
        "while ($a)",
        "do",
        "do {}",
        "do {} while",
        "do {} until (",
        "switch",
        "switch (",
        "switch ($a)",
        "switch ($a) {",
        "switch ($a) { 'a'",
        "switch -file",
        "try",
        "try {}",
        "try {} catch",
        "try {} finally",
        "trap",
        "$a =",
        "$a +=",
        "1 +",
        "1 -and",
        "1 ..",
        "1,",
        "!",
        "-not",
        "X |",
        "X &&",
        "X ||",
        "X -P:",
        "&",
        "X <#",
        "\"abc",
        "'abc",
        "\"$(",
        "${a",
        "$(",
        "(",
        "{",
        "X `",
        "begin",
        "process",
        "end",
        "dynamicparam",
        "return (",
        "throw (",
        "exit (",
        "X @(",
        "X -P:@(",
        "$a = @{ b = ",
        ",",
        "X a,",
        "$a[1,",
        "[int]$",
        "$a.b.",
        "'x'.",
        "$a.  # c",
        "clean",
        "class",
        "$a ?",
        "$a ??",
        "$a ? 1 :",
        "$a ? 1",
        "function",
        "filter",
        "[Parameter(Mandatory)",
        "X a(",
        "X a{",
        "X | # c",
    ] {
        assert_eq!(err(src).kind, ParseErrorKind::Incomplete, "{src:?}");
    }
    // Unsupported but finished: refused, not waited on.
    for src in ["$a ? 1 : 2", "$a ?? 1"] {
        assert_eq!(err(src).kind, ParseErrorKind::Invalid, "{src:?}");
    }
    // Complete in PowerShell, complete here.
    for src in ["if ($a) {}", "X a`", "X $a", "begin { X }", "X 'a'"] {
        assert!(parse(src).is_ok(), "{src:?}");
    }
}

#[test]
fn names_with_letters_powershell_folds_to_ascii_are_refused() {
    for src in [
        "Get-Ma\u{131}lbox",
        "Get-Mailbox -Identit\u{131} x",
        "Remove-Mailbox -\u{212a}eep x",
        "\u{17f}et-Mailbox",
        "& 'Get-Ma\u{131}lbox'",
        "function Get-Ma\u{131}lbox { 1 }",
        "Get-Ma`u{131}lbox",
    ] {
        let e = err(src);
        assert_eq!(e.kind, ParseErrorKind::Invalid, "{src:?}");
    }
    // As data they are fine.
    assert_eq!(arg_text(&command("X -P 'ı'"), 0).as_deref(), Some("ı"));
}

#[test]
fn dot_sources_only_where_powershell_does() {
    // `ScanDot`: `.` before a token break, `$` or an ASCII quote is the dot-source operator.
    for src in [
        ". .\\x.ps1",
        ".$x",
        ". 'x'",
        ".'x'",
        ".\"x\"",
        ".{ 1 }",
        ".(1)",
    ] {
        assert_eq!(
            command(src).call_operator,
            Some(CallOperator::DotSource),
            "{src:?}"
        );
    }
    // Otherwise it starts a word: `` .`x `` is the command `.x`.
    let c = command(".`x");
    assert_eq!((c.call_operator, word_name(&c)), (None, ".x"));
    assert_eq!(err(".\u{2018}x\u{2019}").kind, ParseErrorKind::Invalid);
}

/// A command whose name starts with a keyword the reader would stop at (`` `do+ ``, written
/// with an escape so it is a command) is printed so that it reads back as that command, not as
/// the keyword's statement (found by the `parse` fuzz target). Every keyword the reader knows,
/// with each kind of character that ends one, and names that only look alike.
#[test]
fn print_keeps_commands_named_like_keywords() {
    let keywords = [
        "if",
        "elseif",
        "else",
        "foreach",
        "for",
        "while",
        "do",
        "until",
        "switch",
        "function",
        "filter",
        "param",
        "try",
        "catch",
        "finally",
        "trap",
        "return",
        "throw",
        "exit",
        "break",
        "continue",
        "begin",
        "process",
        "end",
        "clean",
        "class",
        "enum",
        "using",
        "data",
        "workflow",
        "configuration",
        "parallel",
        "sequence",
        "inlinescript",
        "dynamicparam",
    ];
    for k in keywords {
        for tail in ["", "+", "!", "%", "*", "?", "/", "~", "+x", "1"] {
            for src in [
                format!("`{k}{tail}"),
                format!("a | `{k}{tail} b"),
                format!("`{}{tail}", k.to_uppercase()),
            ] {
                if let Err(e) = crate::resolve::round_trip(&src, crate::catalog::Catalog::builtin())
                {
                    panic!("{src:?}: {e}");
                }
            }
        }
    }
    // Names that only start like a keyword stay bare.
    for (src, printed) in [
        ("dog", "dog"),
        ("do-it x", "do-it 'x'"),
        ("if.ps1", "if.ps1"),
    ] {
        let script = super::parse(src).unwrap_or_else(|e| panic!("{src:?}: {e}"));
        assert_eq!(super::print(&script), printed);
    }
}

/// Each line parses, and its print reads back as the same invocations and prints the same
/// (`resolve::round_trip`, the property the `parse` fuzz target asserts). Several members of each
/// class where a printer can lose meaning: escapes and quotes, token boundaries, numbers,
/// here-strings, type literals, redirections, parameters and operators.
#[test]
fn print_round_trip_holds_for_each_printing_class() {
    let lines = [
        // characters that need escaping or quoting; Unicode quotes, dashes and spaces
        "Get-X \"a`\"b\" 'a''b' \u{201c}x\u{201d} \u{2018}b\u{2019}\u{2019}c\u{2018}",
        "Get-X `$a `#a a`# `@a `'a `-a `<a a`>b `u{41}",
        "Get-X ${a b} a${b}c \"$a:b\" \"$($a)x\" \"`u{1F600}\" \"$\" \"a$\" \"$ a\"",
        "Get-X\u{a0}a\u{85}b \u{2013}Identity x \u{2014}y; $a \u{2013}eq $b",
        // token boundaries a print could join or split
        "Get-X 'a'b a'b' \"a\"b $a$b $a'b' $(1)a (1)a @{}a {}a",
        "Get-X a=b a:b a'b'c =1 a==1 !a a! a? a[0] $a[0]b",
        "Get-X $a.b $a[1] $a::b 1kb.x 'a'.Length (1).x a.b .\\a.ps1",
        "Get-X -a:1,2 b -a: 1 -a -1 -a:$true:1 a:$b $a:b $a`:b -? -- -a",
        // numbers, as arguments and in expressions
        "1.5e3kb; 0x10L; .5d; 1ul; 0xFFuy; 10n",
        "Get-X 1..3 -5 +5 .5 1kb2 0x 1. 1e 1a 0x1g 1.2.3 1e5x -1e5 1-2 1+2",
        "$a = 1..-1; $a = 1,-1; $a = - -1; $a = 1 -f 2, 3",
        // here-strings
        "$x = @'\na 'b' \"c\"\n'@; Get-X @\"\nx $y `$z\n\"@ 3",
        "Get-X @'\n\n'@ @\"\n$(Get-Y)\n\"@",
        // type literals and casts
        "[System.Collections.Generic.List[int]]::new(); [int[]]$a = 1,2",
        "[int]-1; [int]::MaxValue; [int] $x; $a = [int][string]1; $a = [int]-$b",
        "Get-X [int] [int]::x; $a = $b -as [int]; $a = $b -is [int[]]",
        // redirections between and after arguments
        "Get-X 2>&1 *>$null 3>> f.txt; Get-X 1>a 2>b; Get-X > a b",
        // unary operators and one-element arrays
        "$a = ,,1; $a = -,1; $a = [int],1; $a = !!$b; $a = -not -not $b; $a.b++; --$a",
        // member names computed by an expandable string, with code inside (found by the
        // `parse` fuzz target: a print in parentheses nested that code one level deeper)
        "t((\"\").\"$(o \"\"\"\")\")\"\"",
        "$a.\"$(Get-Mailbox)\"; $a::\"x$(Get-User)\"(); $a.\"$b\".\"$(Get-X 'y')\"",
        "Get-X ($a).\"p$((Get-Y).z)\" $a.\u{201c}$(Get-Z)\u{201d}",
        // hashtable keys that are expressions (a print in parentheses nested their code one
        // level deeper; found by the `parse` fuzz target)
        "$sb = (gcm Remove-laMbiox).Scrck; $p = @{ @de:tity = $sb }; Get-Mabox | G.einway@p",
        "$p = @{ $(Get-X) = 1; -$(Get-Y) = 2; @(Get-Z) = 3; $a.(Get-W) = 4; [int]$(Get-V) = 5 }",
        "$p = @{ !$(Get-X) = 1; ,$(Get-Y) = 2; $a[$(Get-Z)] = 3; .5 = 4; -1 = 5; ($(Get-U)) = 6 }",
    ];
    for src in lines {
        ok(src);
        if let Err(e) = crate::resolve::round_trip(src, crate::catalog::Catalog::builtin()) {
            panic!("{src:?}: {e}");
        }
    }
}

/// PowerShell reads `:name` before `switch`, `foreach`, `for`, `while` or `do` at the start of a
/// statement as a loop label (`Parser.LabeledStatementRule`). Labels are outside the subset, so
/// such a line is refused, not read as the command `:name` whose arguments are the loop.
#[test]
fn labelled_loops_are_refused_not_read_as_commands() {
    for src in [
        ":lbl foreach ($a in $b) { break lbl }",
        ":outer while ($true) { continue outer }",
        ":outer WHILE($true) { Remove-Mailbox x }",
        ":l for (;;) { }",
        ":l do { Remove-Mailbox x } while ($false)",
        ":s switch (1) { 1 { Remove-Mailbox x } }",
        "Get-X; :l <# c #> while (1) { }",
        "if ($x) { :l `\n while (1) { } }",
        "$a = $(:l while (1) { })",
    ] {
        let e = err(src);
        assert!(e.message.contains("loop labels"), "{src:?}: {e}");
    }
    // Not labels to PowerShell either: a command `:name` (or `:`) with arguments.
    for src in [
        ":l Get-X",
        ": while (1)",
        "Name : value",
        ":l\nwhile (1) { }",
    ] {
        ok(src);
    }
}

/// A member name printed bare right after a number joins the number token (`1.5.'3V'` printed
/// as `1.5.3V` reads as other tokens), and a bare member name cannot start with a digit: both are
/// printed quoted (found by fuzzing). A point right after an integer's digits is the number's
/// own (`3.` is 3.0), so `3.x` is no member access but, to PowerShell, one generic word: refused.
#[test]
fn member_names_after_numbers_or_starting_with_digits_print_quoted() {
    for (src, printed) in [
        (",1.5.'3V'", ", 1.5.'3V'"),
        ("3..'e5'", "3 .. 'e5'"),
        ("1e3.x", "1e3.'x'"),
        ("1kb.'1'", "1kb.'1'"),
        ("0x10.'d'", "0x10.'d'"),
        ("3.5.kb", "3.5.'kb'"),
        ("$a.'3'.'4x'.y", "$a.'3'.'4x'.y"),
    ] {
        assert_eq!(print(&ok(src)), printed, "{src:?}");
        if let Err(e) = crate::resolve::round_trip(src, crate::catalog::Catalog::builtin()) {
            panic!("{src:?}: {e}");
        }
    }
    for src in [",3.'3V'", "3.'e5'", "3.'kb'", "3.x", "3.x()", "(3.ps1)"] {
        assert!(parse(src).is_err(), "{src:?}");
    }
}

/// Every ASCII character, and some beyond, in the middle of a word and at either end of a line:
/// refused exactly when `is_rejected_char` refuses it, whether or not the rest of the line is
/// plain (the parser's one-pass check over a plain line must not let a control character by).
#[test]
fn each_character_is_refused_exactly_when_rejected() {
    let extra = [
        '\u{85}', '\u{a0}', '\u{ad}', '\u{200b}', '\u{202e}', '\u{feff}', 'é', '\u{2028}',
    ];
    for c in (0u8..0x80).map(char::from).chain(extra) {
        for line in [
            format!("Get-Mailbox a{c}b"),
            format!("{c}Get-Mailbox"),
            format!("Get-Mailbox x{c}"),
            format!("Get-Mailbox 'é' a{c}b"),
        ] {
            let refused = matches!(
                parse(&line),
                Err(e) if e.message.contains("invisible or control character")
            );
            assert_eq!(
                refused,
                lex::is_rejected_char(c),
                "U+{:04X} in {line:?}",
                u32::from(c)
            );
        }
    }
}

/// Text is held in place up to 23 bytes and moves to the heap beyond: words, names and strings
/// of 18 to 30 bytes, with a two-byte character, an escape or a doubled quote at every place
/// across that limit, read the same as built one character at a time.
#[test]
fn text_across_the_in_place_limit_reads_whole() {
    for len in 18..=30 {
        for at in 0..len {
            let mut plain: Vec<char> = "abcdefghijklmnopqrstuvwxyz0123".chars().take(len).collect();
            plain[at] = 'é';
            let want: String = plain.iter().collect();
            // `want` holds one `é`: each form writes another character in its place.
            let with_tick = want.replacen('é', "`t", 1);
            let tick_want = want.replacen('é', "\t", 1);
            let quoted = want.replacen('é', "''", 1);
            let quote_want = want.replacen('é', "'", 1);
            for (src, expect) in [
                (format!("Get-{want} -{want} {want}"), want.clone()),
                (format!("Get-X '{want}'"), want.clone()),
                (format!("Get-X \"{want}\""), want.clone()),
                (format!("Get-X {with_tick}"), tick_want.clone()),
                (format!("Get-X \"{with_tick}\""), tick_want.clone()),
                (format!("Get-X '{quoted}'"), quote_want.clone()),
            ] {
                let c = command(&src);
                let Some(CommandElement::Argument(arg)) = c.elements.last() else {
                    panic!("{src}: {:?}", c.elements);
                };
                let ExprKind::String(s) = &arg.kind else {
                    panic!("{src}: {arg:?}");
                };
                assert_eq!(s.static_value().as_deref(), Some(expect.as_str()), "{src}");
                if let Some(CommandElement::Parameter(p)) = c.elements.first() {
                    assert_eq!(p.name, want, "{src}");
                    assert_eq!(word_name(&c), format!("Get-{want}"), "{src}");
                }
            }
        }
    }
}

/// Names, bare words, strings and parameter names are read a run of plain ASCII at a time. Each
/// run must end exactly where reading one character at a time decides something: a quote
/// (typographic ones too), a backtick, `$`, a token break, a here-string's newline, or any
/// character outside ASCII, which may be a refused or look-alike one.
#[test]
fn plain_runs_stop_where_a_character_decides() {
    // Command names: an escape and a `$` that starts no variable are read on; the rest refused.
    assert_eq!(word_name(&command("Get-Mai`lbox")), "Get-Mailbox");
    assert_eq!(word_name(&command("Get-X$ a")), "Get-X$");
    assert_eq!(word_name(&command("Get-X|Y")), "Get-X");
    assert_eq!(word_name(&command("Get\u{2013}X")), "Get\u{2013}X");
    for src in [
        "Get-Mail\u{2018}box\u{2019}",
        "Get-Mail'box'",
        "Get-Mail\"box\"",
        "Get-Mail$box",
        "Get-Ma\u{131}lbox",
        "Get-Mail\u{200b}box",
        "Get-Mail`u{200B}box",
    ] {
        assert_eq!(err(src).kind, ParseErrorKind::Invalid, "{src}");
    }
    // Bare words: quotes join the word, `$name` and `$( )` expand, a token break ends it.
    let c =
        command("X a\u{2018}b c\u{2019}d e\"f g\"h i$j k$(1)l m$ n,o p`$q r\u{201C}s t\u{201D}");
    let texts: Vec<Option<String>> = (0..9).map(|i| arg_text(&c, i)).collect();
    assert_eq!(
        texts,
        [
            Some("ab cd".into()),
            Some("ef gh".into()),
            None,
            None,
            Some("m$".into()),
            None,
            Some("p$q".into()),
            Some("rs t".into()),
            None,
        ]
    );
    // Double-quoted: `$`, backticks and every closing quote end the run; `'` and `’` are text.
    let c = command("X \"a 'b' \u{2019}c\u{2019} `$d $e\" \"f\u{201D} \u{201C}g h\u{201E}");
    assert_eq!(arg_text(&c, 0), None);
    assert_eq!(arg_text(&c, 1).as_deref(), Some("f"));
    assert_eq!(arg_text(&c, 2).as_deref(), Some("g h"));
    let c = command("X \"a 'b' \u{2019}c\u{2019} `$d\"");
    assert_eq!(
        arg_text(&c, 0).as_deref(),
        Some("a 'b' \u{2019}c\u{2019} $d")
    );
    // Single-quoted: every single quote closes, `''` is one, `"`, `$` and backticks are text.
    let c = command("X 'a \"b\" $c `d''e\u{2019} 'g\u{201B}");
    assert_eq!(arg_text(&c, 0).as_deref(), Some("a \"b\" $c `d'e"));
    assert_eq!(arg_text(&c, 1).as_deref(), Some("g"));
    // Here-strings: a quote inside a line is text; the closing `"@` ends only a line.
    let c = command("X @\"\na \"b\"@ $c\n\"@ -Y");
    assert!(matches!(
        first_string_parts(&c),
        [StringPart::Text(t), StringPart::Variable(v, _)] if t == "a \"b\"@ " && v.name == "c"
    ));
    let c = command("X @'\na 'b'@ $c\n'@");
    assert_eq!(arg_text(&c, 0).as_deref(), Some("a 'b'@ $c"));
    // Parameter names: ASCII then any name characters, typographic dashes and `?`.
    assert_eq!(
        param_names("X -Na?me\u{2013}x\u{e9}_1 v -Y:z"),
        ["Na?me\u{2013}x\u{e9}_1", "Y"]
    );
    assert_eq!(err("X -Ma\u{131}l v").kind, ParseErrorKind::Invalid);
    assert_eq!(err("X -Name\"v\"").kind, ParseErrorKind::Invalid);
}

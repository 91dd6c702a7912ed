//! Robustness properties of the parser and resolver: bounded nesting (never a stack overflow),
//! no panic on any input, and print → re-parse keeping the invocations.

#![allow(clippy::expect_used, clippy::panic, reason = "tests fail loudly")]

mod inputs;

use jitsh::catalog::Catalog;
use jitsh::resolve::{analyse, invocations, round_trip};
use jitsh::syntax::{parse, print, ParseErrorKind, MAX_DEPTH};
use proptest::prelude::*;

/// Stack for the depth tests: 2 MiB, the default for spawned threads and tokio workers (a main
/// thread has 8 MiB). In a debug build the deepest accepted nesting needs about half of it.
const SMALL_STACK: usize = 2 * 1024 * 1024;

fn on_small_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new()
        .stack_size(SMALL_STACK)
        .spawn(f)
        .expect("spawn")
        .join()
        .expect("no stack overflow or panic")
}

/// (opening, closing) pairs for every nesting construct.
const NESTERS: &[(&str, &str)] = &[
    ("(", ")"),
    ("{", "}"),
    ("$(", ")"),
    ("@(", ")"),
    ("@{a=", "}"),
    ("\"$(", ")\""),
    ("& {", "}"),
    ("!", ""),
    ("-not ", ""),
    ("[int]", ""),
    ("if ($x) {", "}"),
    ("$a[", "]"),
    ("$a.b(", ")"),
];

#[test]
fn hundred_thousand_deep_nesting_is_a_depth_error() {
    for (open, close) in NESTERS {
        let src = format!("$v = {}1{}", open.repeat(100_000), close.repeat(100_000));
        let kind = on_small_stack(move || parse(&src).map(|_| ()).map_err(|e| e.kind));
        assert_eq!(
            kind,
            Err(ParseErrorKind::DepthLimit),
            "nesting with `{open}`"
        );
    }
}

#[test]
fn deepest_accepted_nesting_is_safe_to_parse_resolve_print_and_drop() {
    for (open, close) in NESTERS {
        let (open, close) = (open.to_string(), close.to_string());
        on_small_stack(move || {
            // Find the deepest nesting that still parses; everything must work at that depth.
            let mut deepest = None;
            for n in (1..=MAX_DEPTH).rev() {
                let src = format!("$v = {}(Get-Y){}", open.repeat(n), close.repeat(n));
                if let Ok(script) = parse(&src) {
                    deepest = Some((n, src, script));
                    break;
                }
            }
            let (n, src, script) = deepest.unwrap_or_else(|| panic!("`{open}` never parses"));
            assert!(n >= MAX_DEPTH / 4, "`{open}` nests only {n} deep");
            let invs = invocations(&script, &src, Catalog::builtin());
            assert!(invs.iter().any(|i| i.name == "Get-Y"), "`{open}`: {invs:?}");
            let printed = print(&script);
            assert!(parse(&printed).is_ok() || printed.len() > src.len());
            drop(script);
        });
    }
}

#[test]
fn long_flat_chains_do_not_nest() {
    on_small_stack(|| {
        let sum = format!("$x = 1{}", " + 1".repeat(50_000));
        let script = parse(&sum).expect("long sum parses");
        let _ = invocations(&script, &sum, Catalog::builtin());
        let _ = print(&script);
        let members = format!("$x{}", ".a".repeat(50_000));
        assert!(parse(&members).is_ok());
        let pipes = format!("Get-A{}", " | Get-B".repeat(20_000));
        let invs = analyse(&pipes, Catalog::builtin()).expect("long pipeline parses");
        // Resolved, then refused whole: more than 2,048 invocations in one line is a DoS guard.
        assert_eq!(invs.len(), 2_049);
        assert_eq!(
            invs.last().map(|i| i.name.as_str()),
            Some("<too many invocations>")
        );
    });
}

#[test]
fn incomplete_input_is_distinguished_from_invalid_input() {
    for src in [
        "Get-Mailbox 'abc",
        "Get-Mailbox \"abc",
        "Get-Mailbox |",
        "Get-Mailbox | % {",
        "Get-Mailbox (",
        "Get-Mailbox `",
        "Get-Mailbox -Identity `\n",
        "$x = @'\nabc",
        "$x = @\"\nabc $(Get-Date",
        "$h = @{ a = 1",
        "Get-A &&",
        "$x = 1 +",
        "foreach ($m in $x) {",
        "<# comment",
    ] {
        assert_eq!(
            parse(src).map(|_| ()).map_err(|e| e.kind),
            Err(ParseErrorKind::Incomplete),
            "{src:?}"
        );
    }
    for src in [
        "Get-Mailbox )",
        "Get-Mailbox &",
        "$x -foo 1",
        "class X {}",
        "Get-Mailbox < x",
    ] {
        assert_eq!(
            parse(src).map(|_| ()).map_err(|e| e.kind),
            Err(ParseErrorKind::Invalid),
            "{src:?}"
        );
    }
}

/// Lines in the style of the corpus, used as seeds for mutation.
const SEEDS: &[&str] = &[
    "Get-Mailbox -Identity \"Terry Adams\" | Set-Mailbox -ProhibitSendQuota 10GB",
    "$p = @{ Identity = 'bob'; TargetDatabase = 'DB2' }; New-MoveRequest @p -Confirm:$false",
    "Get-Recipient -Filter {Name -like 'a*'} | ? { $_.Count -gt 1 } | % { $_.Name }",
    "foreach ($m in (Get-Mailbox -ResultSize Unlimited)) { if ($m.X) { Set-Mailbox $m -Y \"$(Get-Date)\" } }",
    "[scriptblock]::Create('x').Invoke(); & $cmd @args 2>&1 > out.txt",
    "$s = @'\nhere $x\n'@\n$t = \"a`tb $env:USER ${x y}\"",
];

/// Lines whose print must read the same (added as printer classes turn up).
const TRICKY: &[&str] = &[
    "Get-Mailbox -Identity 'it''s' -ResultSize:10",
    // one-element arrays (unary comma)
    "$x = ,1; $y = ,(Get-Mailbox); Set-Mailbox -Identity (,'a')",
    // parameter defaults: no grouping added on each print
    "function F { param([int]$Size = 10000, [bool]$R = $true, $L = (1, 2), $C = (Get-Date)) }",
    // dynamic member names
    "$a.$b(); $a.($b); $a.$(Get-Name).x; [scriptblock]::Create('x').$Invoke()",
    // computed hashtable keys
    "$h = @{ ($k) = 1; (Get-Key) = 2; 'a' = 3 }",
    "$h = @{ \"a $b $(Get-C)\" = 1; \"x\" = 2 }",
    // command names that would read as operators, numbers or keywords when printed bare
    "`if; `while x; .= ; .=Get-Date; `-x; `1x; `+x; `!x; a`(b",
    "& $cmd ;.> out.txt",
    // negative numbers as arguments
    "Set-Mailbox -10GB; Get-Item -Count -1 -5",
    // control and invisible characters written as escapes print as escapes (found by fuzzing)
    "Get-Mailbox `e x; Get-Mailbox a`u{200b}b `a`b`f`v",
    "Get-Mailbox \"a`u{200b}b`e\" 'multi\nline'",
    "${functbo/r xb'; Gll`et-Mailbo}; .`4p-ath",
    // escaped characters in parameter names
    "Set-Mailbox -`x 1 -`1x 3",
    // a call operator's name and a variable inside it start at the same place (found by fuzzing)
    "& $dnv:d PECVVVV whoami",
    "& $env:x`qy a; & $a`qb c",
    // a filter block whose text ends in an escaped space (found by fuzzing)
    "Get-Mailbox -Filter { a b (Get-Command R) c` }",
    "Get-Mailbox -Filter {Name -eq \"x\"` }",
    // function names with escapes (found by fuzzing)
    "filter a``````b { e_ }; function Get-Mail``box { }; function x`(y`{ { }",
    // redirections between arguments keep their place
    "a > Set-Mailbox $m -Y \"$(Get-Date)\"; b 2>&1 c >> f.txt (Get-X)",
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn never_panics_on_arbitrary_text(s in "\\PC{0,200}") {
        let _ = analyse(&s, Catalog::builtin());
    }

    #[test]
    fn never_panics_on_powershell_like_tokens(parts in proptest::collection::vec(
        prop_oneof![
            Just("("), Just(")"), Just("{"), Just("}"), Just("$("), Just("@("), Just("@{"),
            Just("'"), Just("\""), Just("`"), Just("|"), Just(";"), Just("\n"), Just(" "),
            Just("-"), Just("\u{2013}"), Just("\u{201C}"), Just(":"), Just(","), Just("="),
            Just("$x"), Just("Get-Mailbox"), Just("-Identity"), Just("[int]"), Just("::"),
            Just("."), Just("@'\n"), Just("\n'@"), Just("<#"), Just("#>"), Just("#"), Just("&"),
            Just(">"), Just("2>&1"), Just("1KB"), Just("0x"), Just("if"), Just("foreach"),
        ], 0..40)) {
        let s: String = parts.concat();
        let _ = analyse(&s, Catalog::builtin());
        if let Err(e) = round_trip(&s, Catalog::builtin()) {
            prop_assert!(false, "{:?}: {}", s, e);
        }
    }

    #[test]
    fn never_panics_on_mutated_seeds(seed in 0..SEEDS.len(), at in 0usize..200, cut in 0usize..20, insert in "\\PC{0,6}") {
        let base = SEEDS.get(seed).copied().unwrap_or("");
        let mut s = String::new();
        let chars: Vec<char> = base.chars().collect();
        let at = at.min(chars.len());
        s.extend(chars.iter().take(at));
        s.push_str(&insert);
        s.extend(chars.iter().skip(at + cut));
        let _ = analyse(&s, Catalog::builtin());
        if let Err(e) = round_trip(&s, Catalog::builtin()) {
            prop_assert!(false, "{:?}: {}", s, e);
        }
    }

    #[test]
    fn print_then_reparse_keeps_invocations(seed in 0..SEEDS.len(), at in 0usize..200, insert in "[ a-z$'\"(){};|,.=@-]{0,4}") {
        let base = SEEDS.get(seed).copied().unwrap_or("");
        let chars: Vec<char> = base.chars().collect();
        let at = at.min(chars.len());
        let mut s: String = chars.iter().take(at).collect();
        s.push_str(&insert);
        s.extend(chars.iter().skip(at));
        if let Err(e) = round_trip(&s, Catalog::builtin()) {
            prop_assert!(false, "{:?}: {}", s, e);
        }
    }
}

#[test]
fn print_then_reparse_keeps_corpus_invocations() {
    let Some(path) = inputs::corpus_or_skip(
        "exchange-examples.jsonl",
        "print_then_reparse_keeps_corpus_invocations",
    ) else {
        return;
    };
    let text = std::fs::read_to_string(path).expect("read corpus");
    let mut checked = 0;
    let mut failures = Vec::new();
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line).expect("json line");
        let src = v["text"].as_str().unwrap_or_default();
        if parse(src).is_err() {
            continue;
        }
        if let Err(e) = round_trip(src, Catalog::builtin()) {
            failures.push(format!("{}: {e}\n{src}", v["id"]));
        }
        checked += 1;
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    assert!(checked > 2000);
}

/// Hand-made lines whose print once read differently (each a member of a printer class).
#[test]
fn print_then_reparse_keeps_tricky_lines() {
    for src in SEEDS.iter().chain(TRICKY) {
        if let Err(e) = round_trip(src, Catalog::builtin()) {
            panic!("{src:?}: {e}");
        }
        parse(src).unwrap_or_else(|e| panic!("{src:?} must parse: {e}"));
    }
}

/// The fuzz entry point asserts the round trip (it panics when the print reads differently).
#[test]
fn fuzz_parse_asserts_the_round_trip() {
    for src in SEEDS.iter().chain(TRICKY) {
        jitsh::syntax::fuzz_parse(src.as_bytes());
    }
}

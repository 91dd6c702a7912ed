//! Robustness properties of the parser and resolver: bounded nesting (never a stack overflow),
//! no panic on any input, and print → re-parse keeping the invocations.

#![allow(clippy::expect_used, clippy::panic, reason = "tests fail loudly")]

mod inputs;

use jitsh::catalog::Catalog;
use jitsh::resolve::{analyse, invocations};
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
    }

    #[test]
    fn print_then_reparse_keeps_invocation_names(seed in 0..SEEDS.len(), at in 0usize..200, insert in "[ a-z$'\"(){};|-]{0,4}") {
        let base = SEEDS.get(seed).copied().unwrap_or("");
        let chars: Vec<char> = base.chars().collect();
        let at = at.min(chars.len());
        let mut s: String = chars.iter().take(at).collect();
        s.push_str(&insert);
        s.extend(chars.iter().skip(at));
        if let Ok(script) = parse(&s) {
            let printed = print(&script);
            let again = parse(&printed);
            prop_assert!(again.is_ok(), "reprint of {:?} does not parse: {:?}\n{}", s, again.err(), printed);
            let names = |src: &str| -> Vec<String> {
                analyse(src, Catalog::builtin())
                    .map(|v| v.into_iter().map(|i| format!("{}@{}", i.name, i.depth)).collect())
                    .unwrap_or_default()
            };
            let mut a = names(&s);
            let mut b = names(&printed);
            // Dynamic invocations are named by their source text, which the printer normalises.
            a.retain(|n| !n.starts_with(['$', '(', '.', '[', '&', '"', '\'', '{', '@']));
            b.retain(|n| !n.starts_with(['$', '(', '.', '[', '&', '"', '\'', '{', '@']));
            prop_assert_eq!(a, b, "printed: {}", printed);
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
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line).expect("json line");
        let src = v["text"].as_str().unwrap_or_default();
        let Ok(script) = parse(src) else { continue };
        let printed = print(&script);
        let a = invocations(&script, src, Catalog::builtin());
        let b = analyse(&printed, Catalog::builtin())
            .unwrap_or_else(|e| panic!("{}: reprint does not parse: {e}\n{printed}", v["id"]));
        let key = |i: &jitsh::invocation::Invocation| {
            (
                i.dynamic.is_none().then(|| i.name.clone()),
                i.depth,
                i.params.iter().map(|p| p.name.clone()).collect::<Vec<_>>(),
            )
        };
        let ka: Vec<_> = a.iter().map(key).collect();
        let kb: Vec<_> = b.iter().map(key).collect();
        assert_eq!(
            ka, kb,
            "{}: invocations differ after print\n{src}\n---\n{printed}",
            v["id"]
        );
        checked += 1;
    }
    assert!(checked > 2000);
}

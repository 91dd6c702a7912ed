//! Policy engine: load errors against golden files, decision semantics (SPEC §2), uncertainty,
//! lint, and the shipped `policies/` folder.

use std::path::{Path, PathBuf};

use jitsh::invocation::{Invocation, Param, ParamValue};
use jitsh::policy::{
    load_dir, synthetic_policy_set, Effect, ParamConstraints, PolicySet, PolicySource, Tri,
};
use jitsh::span::Span;

// ---- helpers ---------------------------------------------------------------------------------

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/policies")
}

fn set(text: &str) -> PolicySet {
    match PolicySet::from_sources(&[PolicySource::new("test.toml", text)]) {
        Ok(s) => s,
        Err(e) => panic!("policy should load:\n{e}"),
    }
}

fn load_err(text: &str) -> String {
    PolicySet::from_sources(&[PolicySource::new("test.toml", text)])
        .unwrap_err()
        .to_string()
}

/// An invocation builder: `inv("Set-Mailbox").p("Identity", "bob")`.
struct Inv(Invocation);

fn inv(name: &str) -> Inv {
    Inv(Invocation {
        name: name.to_string(),
        module: None,
        as_written: name.to_string(),
        span: Span::new(0, name.len()),
        depth: 0,
        dynamic: None,
        params: Vec::new(),
        params_uncertain: None,
        pipeline_input: false,
    })
}

impl Inv {
    fn param(mut self, name: &str, value: ParamValue, resolved: bool) -> Self {
        self.0.params.push(Param {
            name: name.to_string(),
            as_written: format!("-{name}"),
            value,
            resolved,
        });
        self
    }
    fn p(self, name: &str, value: &str) -> Self {
        self.param(name, ParamValue::Static(value.to_string()), true)
    }
    fn switch(self, name: &str) -> Self {
        self.param(name, ParamValue::Switch, true)
    }
    fn dyn_value(self, name: &str) -> Self {
        self.param(name, ParamValue::Dynamic, true)
    }
    fn unresolved(self, written: &str) -> Self {
        self.param(written, ParamValue::Static("x".into()), false)
    }
    fn splatted(mut self) -> Self {
        self.0.params_uncertain = Some("splatted variable `$p` has unknown keys".into());
        self
    }
    fn piped(mut self) -> Self {
        self.0.pipeline_input = true;
        self
    }
    fn module(mut self, m: &str) -> Self {
        self.0.module = Some(m.to_string());
        self
    }
    fn dynamic(mut self) -> Self {
        self.0.dynamic = Some("the command name is computed at run time".into());
        self
    }
}

fn effect(s: &PolicySet, i: &Inv) -> Effect {
    s.decide(&i.0).effect
}

// ---- load errors: golden files ----------------------------------------------------------------

/// Each `invalid/NAME.toml` (or folder `invalid/NAME/` of several files) fails to load with
/// exactly the text in `invalid/NAME.err`. Set `JITSH_BLESS=1` to write the expected files.
#[test]
fn invalid_fixtures_fail_with_expected_errors() {
    let dir = fixtures().join("invalid");
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir() || p.extension().is_some_and(|e| e == "toml"))
        .collect();
    cases.sort();
    assert!(cases.len() >= 15, "expected one fixture per kind of error");
    let bless = std::env::var_os("JITSH_BLESS").is_some();
    let mut failures = Vec::new();
    for case in cases {
        let files: Vec<PathBuf> = if case.is_dir() {
            let mut v: Vec<PathBuf> = std::fs::read_dir(&case)
                .unwrap()
                .map(|e| e.unwrap().path())
                .collect();
            v.sort();
            v
        } else {
            vec![case.clone()]
        };
        let sources: Vec<PolicySource> = files
            .iter()
            .map(|f| {
                let name = f.strip_prefix(&dir).unwrap().display().to_string();
                PolicySource::new(name, std::fs::read_to_string(f).unwrap())
            })
            .collect();
        let got = match PolicySet::from_sources(&sources) {
            Ok(_) => "(loaded without errors)".to_string(),
            Err(e) => e.to_string(),
        };
        let expected_file = case.with_extension("err");
        if bless {
            std::fs::write(&expected_file, format!("{got}\n")).unwrap();
            continue;
        }
        let expected = std::fs::read_to_string(&expected_file)
            .unwrap_or_else(|_| panic!("missing {}", expected_file.display()));
        if expected.trim_end() != got {
            failures.push(format!(
                "{}:\n  expected: {}\n  got:      {}",
                case.display(),
                expected.trim_end(),
                got
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn valid_fixtures_load() {
    let set = load_dir(&fixtures().join("valid")).unwrap();
    assert!(set.rule("read-only").is_some());
}

fn shipped() -> PolicySet {
    load_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("policies")).unwrap()
}

#[test]
fn shipped_policies_load_and_lint_clean() {
    let s = shipped();
    assert_eq!(s.defaults().unmatched, Effect::Deny);
    assert_eq!(s.defaults().dynamic, Effect::Deny);
    let findings = s.lint(&|_| true);
    assert!(findings.is_empty(), "{findings:#?}");
}

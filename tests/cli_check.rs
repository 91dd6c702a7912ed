//! `jitsh check` and `jitsh parse` as a script or an outside check drives them (SPEC §3):
//! exit codes, the JSON shape, tokens honoured only when they really cover the line, load errors
//! with file:line:col, and the batch protocol.

#![allow(
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail loudly"
)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use jitsh::token::{issue, Claims, SigningKey};
use serde_json::Value;

fn jitsh() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_jitsh"));
    c.current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("JITSH_SERVER")
        .env_remove("JITSH_USER")
        .env_remove("JITSH_POLICIES")
        // Keys a `jitsh login` on this machine stored must not stand in for --trust-key.
        .env_remove("JITSH_TRUST_KEY")
        .env("XDG_CONFIG_HOME", "/nonexistent");
    c
}

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// `jitsh ARGS` with `input` on its standard input.
fn with_stdin(args: &[&str], input: &[u8]) -> Output {
    let mut child = jitsh()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

fn check(args: &[&str]) -> (Option<i32>, Value) {
    let out = jitsh().arg("check").args(args).output().unwrap();
    (out.status.code(), json(&out))
}

struct Keys {
    _dir: tempfile::TempDir,
    key: SigningKey,
    public: PathBuf,
    root: PathBuf,
}

fn keys() -> Keys {
    let dir = tempfile::tempdir().unwrap();
    let out = jitsh()
        .args(["keygen", "--out"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let key = SigningKey::from_file_text(
        &std::fs::read_to_string(dir.path().join("signing.key")).unwrap(),
    )
    .unwrap();
    Keys {
        public: dir.path().join("signing.pub"),
        root: dir.path().to_path_buf(),
        key,
        _dir: dir,
    }
}

/// An instant from RFC 3339 text.
fn at(text: &str) -> chrono::DateTime<chrono::Utc> {
    jitsh::rfc3339::parse(text).unwrap()
}

fn claims(sub: &str, rule: &str, tasks: &[&str]) -> Claims {
    Claims {
        iss: "jitsh-test".into(),
        sub: sub.into(),
        jti: format!("tok-{sub}-{rule}"),
        iat: at("2026-11-27T10:00:00Z"),
        nbf: at("2026-11-27T10:00:00Z"),
        exp: at("2026-11-27T11:00:00Z"),
        rule: rule.into(),
        tasks: tasks.iter().map(|t| t.to_string()).collect(),
        params: None,
        request: "req-1".into(),
        approvers: vec!["bob".into()],
        uses: None,
        command: None,
        offline: Some(3600),
        extra: Default::default(),
    }
}

fn write_token(keys: &Keys, name: &str, c: &Claims) -> PathBuf {
    let path = keys.root.join(name);
    std::fs::write(&path, issue(c, &keys.key).unwrap()).unwrap();
    path
}

/// A copy of the shipped policies in which rule `id` allows offline use for an hour.
fn policies_with_offline(keys: &Keys, id: &str) -> PathBuf {
    let dir = keys.root.join(format!("policies-{id}"));
    std::fs::create_dir_all(&dir).unwrap();
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("policies");
    for entry in std::fs::read_dir(shipped).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let header = format!("id           = \"{id}\"\n");
        let text = text.replace(&header, &format!("{header}offline      = \"1h\"\n"));
        std::fs::write(dir.join(path.file_name().unwrap()), text).unwrap();
    }
    dir
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

const MOVE: &str = "New-MoveRequest -Identity rob@contoso.com";
const IN_WINDOW: &str = "2026-11-27T10:30:00Z";

#[test]
fn exit_codes_follow_the_decision() {
    let (code, v) = check(&["Get-Mailbox -Identity rob@contoso.com | Format-List"]);
    assert_eq!((code, v["decision"].as_str()), (Some(0), Some("allow")));
    assert_eq!(v["invocations"][1]["name"], "Format-List");
    let (code, v) = check(&[MOVE]);
    assert_eq!((code, v["decision"].as_str()), (Some(1), Some("approval")));
    assert_eq!(v["invocations"][0]["rule"], "mailbox-moves");
    assert_eq!(v["invocations"][0]["token"], Value::Null);
    let (code, v) = check(&["iex 'Get-Mailbox'"]);
    assert_eq!((code, v["decision"].as_str()), (Some(2), Some("deny")));
    assert_eq!(v["invocations"][0]["name"], "Invoke-Expression");
    assert_eq!(v["invocations"][0]["as_written"], "iex");
}

#[test]
fn an_unparseable_line_is_denied_with_its_position() {
    let (code, v) = check(&["Get-Mailbox -Identity 'rob"]);
    assert_eq!(code, Some(2));
    assert_eq!(v["decision"], "deny");
    assert!(v["error"]["offset"].is_u64(), "{v}");
}

#[test]
fn the_line_can_come_from_stdin() {
    let out = with_stdin(&["check"], b"Remove-Mailbox rob\n");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(json(&out)["text"], "Remove-Mailbox rob");
}

#[test]
fn a_valid_token_covers_its_task_for_its_user_in_its_window() {
    let k = keys();
    let tok = write_token(
        &k,
        "move.tok",
        &claims("alice", "mailbox-moves", &["New-MoveRequest"]),
    );
    let base = [
        "--user",
        "alice",
        "--token",
        p(&tok),
        "--trust-key",
        p(&k.public),
    ];
    let (code, v) = check(&[&base[..], &["--now", IN_WINDOW, MOVE]].concat());
    assert_eq!(code, Some(0), "{v}");
    assert_eq!(v["invocations"][0]["token"], "tok-alice-mailbox-moves");
    // after exp
    let (code, v) = check(&[&base[..], &["--now", "2026-11-27T11:05:00Z", MOVE]].concat());
    assert_eq!(code, Some(1), "{v}");
    // before nbf (beyond the skew)
    let (code, _) = check(&[&base[..], &["--now", "2026-11-27T09:00:00Z", MOVE]].concat());
    assert_eq!(code, Some(1));
    // another user
    let (code, _) = check(&[
        "--user",
        "mallory",
        "--token",
        p(&tok),
        "--trust-key",
        p(&k.public),
        "--now",
        IN_WINDOW,
        MOVE,
    ]);
    assert_eq!(code, Some(1));
    // another task under approval
    let (code, _) = check(&[&base[..], &["--now", IN_WINDOW, "Remove-Mailbox rob"]].concat());
    assert_eq!(code, Some(1));
    // a denied task is never covered
    let (code, _) = check(
        &[
            &base[..],
            &["--now", IN_WINDOW, "iex 'New-MoveRequest rob'"],
        ]
        .concat(),
    );
    assert_eq!(code, Some(2));
    // dynamic code is never covered
    let (code, _) = check(
        &[
            &base[..],
            &["--now", IN_WINDOW, "& ('New-'+'MoveRequest') rob"],
        ]
        .concat(),
    );
    assert_eq!(code, Some(2));
    // disguised but resolvable: still the same task, still covered
    let (code, _) = check(
        &[
            &base[..],
            &[
                "--now",
                IN_WINDOW,
                "Get-Mailbox rob | % { Ne`w-MoveRequest $_ }",
            ],
        ]
        .concat(),
    );
    assert_eq!(code, Some(0));
}

#[test]
fn a_token_is_bound_to_its_rule_params_and_exact_command() {
    let k = keys();
    // Rule that does not cover the task.
    let wrong_rule = write_token(
        &k,
        "wrong.tok",
        &claims("alice", "mailbox-removal", &["New-MoveRequest"]),
    );
    let (code, v) = check(&[
        "--user",
        "alice",
        "--token",
        p(&wrong_rule),
        "--trust-key",
        p(&k.public),
        "--now",
        IN_WINDOW,
        MOVE,
    ]);
    assert_eq!(code, Some(1), "{v}");
    // Param scope.
    let mut c = claims("alice", "mailbox-moves", &["New-MoveRequest"]);
    c.params = Some(
        jitsh::policy::ParamConstraints::from_json(
            &serde_json::json!({"Identity": {"glob": "rob@*"}}),
        )
        .unwrap(),
    );
    let scoped = write_token(&k, "scoped.tok", &c);
    let args = |line: &'static str| {
        vec![
            "--user",
            "alice",
            "--token",
            p(&scoped),
            "--trust-key",
            p(&k.public),
            "--now",
            IN_WINDOW,
            line,
        ]
    };
    assert_eq!(check(&args(MOVE)).0, Some(0));
    assert_eq!(
        check(&args("New-MoveRequest -Identity eve@contoso.com")).0,
        Some(1)
    );
    assert_eq!(check(&args("New-MoveRequest -Identity $who")).0, Some(1));
    // Exact command.
    let mut c = claims("alice", "mailbox-moves", &["New-MoveRequest"]);
    c.command = Some("New-MoveRequest -Identity:'rob@contoso.com' -TargetDatabase:'DB02'".into());
    let exact = write_token(&k, "exact.tok", &c);
    let args = |line: &'static str| {
        vec![
            "--user",
            "alice",
            "--token",
            p(&exact),
            "--trust-key",
            p(&k.public),
            "--now",
            IN_WINDOW,
            line,
        ]
    };
    assert_eq!(
        check(&args(
            "new-moverequest -TargetDatabase DB02 -Ident rob@contoso.com"
        ))
        .0,
        Some(0)
    );
    assert_eq!(
        check(&args(
            "New-MoveRequest -Identity rob@contoso.com -TargetDatabase DB03"
        ))
        .0,
        Some(1)
    );
    assert_eq!(check(&args(MOVE)).0, Some(1));
    // Counted grants are refused by a gate that cannot count.
    let mut c = claims("alice", "mailbox-moves", &["New-MoveRequest"]);
    c.uses = Some(1);
    let counted = write_token(&k, "counted.tok", &c);
    let (code, v) = check(&[
        "--user",
        "alice",
        "--token",
        p(&counted),
        "--trust-key",
        p(&k.public),
        "--now",
        IN_WINDOW,
        MOVE,
    ]);
    assert_eq!(code, Some(1), "{v}");
}

#[test]
fn tokens_are_verified_when_loaded() {
    let k = keys();
    let other = keys();
    let tok = write_token(
        &other,
        "other.tok",
        &claims("alice", "mailbox-moves", &["New-MoveRequest"]),
    );
    let out = jitsh()
        .args([
            "check",
            "--user",
            "alice",
            "--token",
            p(&tok),
            "--trust-key",
            p(&k.public),
            MOVE,
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("refused"), "{err}");
    // Without a trust key a token cannot be honoured at all.
    let out = jitsh()
        .args(["check", "--token", p(&tok), MOVE])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--trust-key"));
}

/// A gate whose service does not answer decides offline: a token counts only where its rule
/// allows offline use (the shipped `mailbox-moves` does, for an hour), and it says so.
#[test]
fn an_unreachable_service_leaves_only_offline_tokens() {
    let k = keys();
    let run = |c: &Claims| {
        let tok = write_token(&k, &format!("{}.tok", c.jti), c);
        // Port 9 on loopback: nothing listens there.
        check(&[
            "--server",
            "http://127.0.0.1:9",
            "--user",
            "alice",
            "--token",
            p(&tok),
            "--trust-key",
            p(&k.public),
            "--now",
            IN_WINDOW,
            MOVE,
        ])
    };
    let (code, v) = run(&claims("alice", "mailbox-moves", &["New-MoveRequest"]));
    assert_eq!(code, Some(0), "{v}");
    assert!(
        v["warning"]
            .as_str()
            .unwrap_or("")
            .contains("could not be reached"),
        "{v}"
    );
    let mut online_only = claims("alice", "mailbox-moves", &["New-MoveRequest"]);
    online_only.jti = "online-only".into();
    online_only.offline = None;
    let (code, v) = run(&online_only);
    assert_eq!(code, Some(1), "{v}");
    let mut counted = claims("alice", "mailbox-moves", &["New-MoveRequest"]);
    counted.jti = "counted".into();
    counted.uses = Some(1);
    let (code, v) = run(&counted);
    assert_eq!(code, Some(1), "{v}");
}

#[test]
fn policy_load_errors_name_file_line_col_and_exit_3() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("bad.toml"),
        "[[rule]]\nid = \"x\"\neffect = \"allow\"\ntasks = [\"Get-*\"]\nmax_duration = \"30h\"\n",
    )
    .unwrap();
    let out = jitsh()
        .args(["check", "--policies"])
        .arg(dir.path())
        .arg("Get-Mailbox")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.toml:5:"), "{err}");
    assert!(out.stdout.is_empty());
    let out = jitsh()
        .args([
            "check",
            "--policies",
            "/nonexistent/policies",
            "Get-Mailbox",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
}

#[test]
fn batch_echoes_fields_reports_bad_lines_and_goes_on() {
    let input = "{\"text\":\"Get-Mailbox\",\"id\":1}\nnot json\n{\"id\":3}\n{\"text\":7}\n[1]\n{\"text\":\"Remove-Mailbox rob\",\"id\":6}\n";
    for sub in ["check", "parse"] {
        let out = with_stdin(&[sub, "--batch"], input.as_bytes());
        assert_eq!(out.status.code(), Some(0));
        let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 6, "{sub}: {lines:?}");
        assert_eq!(lines[0]["id"], 1);
        assert!(lines[1]["error"].is_string());
        assert!(lines[2]["error"].is_string());
        assert_eq!(lines[2]["id"], 3);
        assert!(lines[3]["error"].is_string());
        assert!(lines[4]["error"].is_string());
        assert_eq!(lines[5]["id"], 6);
        if sub == "check" {
            assert_eq!(lines[0]["decision"], "allow");
            assert_eq!(lines[5]["decision"], "approval");
        } else {
            assert_eq!(lines[5]["invocations"][0]["name"], "Remove-Mailbox");
            assert_eq!(lines[5]["error"], Value::Null);
        }
    }
}

/// `check` and `parse` write every object's keys sorted, a batch line's own fields among them,
/// whatever else is built alongside: a workspace build once wrote them in the order the code
/// inserted them, the crate built alone sorted.
#[test]
fn output_keys_are_sorted_at_every_level_in_every_build() {
    // serde_json keeps an object's keys in the order read (`preserve_order`, on in every build
    // now), so this sees the order written.
    fn unsorted(v: &Value, at: &str, found: &mut Vec<String>) {
        match v {
            Value::Object(map) => {
                let keys: Vec<&String> = map.keys().collect();
                if !keys.is_sorted() {
                    found.push(format!("{at}: {keys:?}"));
                }
                for (k, v) in map {
                    unsorted(v, &format!("{at}.{k}"), found);
                }
            }
            Value::Array(items) => {
                for (i, v) in items.iter().enumerate() {
                    unsorted(v, &format!("{at}[{i}]"), found);
                }
            }
            _ => {}
        }
    }
    let lines = [
        ("check", MOVE),
        ("check", "Get-Mailbox | % { & $_.Name } | Set-Mailbox -X 1"),
        ("check", "Get-Mailbox -Identity 'rob"),
        (
            "parse",
            "Get-Mailbox | Set-Mailbox -X 1 -Identity (Get-User bob)",
        ),
        ("parse", "Get-Mailbox {"),
    ];
    for (sub, line) in lines {
        let out = jitsh().args([sub, line]).output().unwrap();
        let v = json(&out);
        let mut found = Vec::new();
        unsorted(&v, sub, &mut found);
        assert!(found.is_empty(), "{sub} {line:?}: {found:#?}");
    }
    let input = "{\"zeta\":1,\"text\":\"Get-Mailbox | Set-Mailbox\",\"alpha\":{\"z\":1,\"a\":2}}\nnot json\n";
    for sub in ["check", "parse"] {
        let out = with_stdin(&[sub, "--batch"], input.as_bytes());
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(text.lines().count(), 2, "{text}");
        for line in text.lines() {
            let v: Value = serde_json::from_str(line).unwrap();
            let mut found = Vec::new();
            unsorted(&v, sub, &mut found);
            assert!(found.is_empty(), "{sub} --batch: {found:#?}");
        }
    }
}

/// Bytes that are not UTF-8 (a stray byte, a truncated sequence, Latin-1 text, a UTF-16
/// surrogate encoded as UTF-8, CRLF endings) each give one error object and the batch goes on;
/// a last line without a newline still counts.
#[test]
fn batch_survives_invalid_utf8_lines() {
    let mut input: Vec<u8> = Vec::new();
    input.extend_from_slice(b"{\"text\":\"Get-Mailbox\",\"id\":1}\n");
    input.extend_from_slice(b"{\"text\":\"Get-\xff\xfeMailbox\",\"id\":2}\n");
    input.extend_from_slice(b"\xc3\x28\n");
    input.extend_from_slice(b"{\"text\":\"Set-Mailbox -Identity caf\xe9\"}\r\n");
    input.extend_from_slice(b"{\"text\":\"\xed\xa0\x80\"}\n");
    input.extend_from_slice(b"{\"text\":\"\xe2\x82\"}\n");
    input.extend_from_slice(b"{\"text\":\"Remove-Mailbox rob\",\"id\":7}\r\n");
    input.extend_from_slice(b"{\"text\":\"Get-User\",\"id\":8}");
    for sub in ["check", "parse"] {
        let out = with_stdin(&[sub, "--batch"], &input);
        assert_eq!(out.status.code(), Some(0), "{sub}");
        let text = String::from_utf8(out.stdout).expect("output is UTF-8");
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 8, "{sub}: {lines:?}");
        for (i, bad) in [(1, 2), (2, 3), (3, 4), (4, 5), (5, 6)] {
            let msg = lines[i]["error"].as_str().unwrap_or_default();
            assert!(
                msg.starts_with(&format!("input line {bad} is not valid UTF-8")),
                "{sub} line {bad}: {msg}"
            );
        }
        assert_eq!(lines[0]["id"], 1);
        assert_eq!(lines[6]["id"], 7);
        assert_eq!(lines[7]["id"], 8);
        if sub == "check" {
            assert_eq!(lines[0]["decision"], "allow");
            assert_eq!(lines[6]["decision"], "approval");
            assert_eq!(lines[7]["decision"], "allow");
        } else {
            assert_eq!(lines[6]["invocations"][0]["name"], "Remove-Mailbox");
            assert_eq!(lines[7]["invocations"][0]["name"], "Get-User");
        }
    }
}

#[test]
fn parse_lists_nested_invocations_in_source_order() {
    let out = jitsh().args(["parse", "Get-Mailbox | ? { $_.Name -like 'a*' } | % { Set-Mailbox $_ -DisplayName \"$(Get-Date)\" }"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let v = json(&out);
    let names: Vec<(&str, u64)> = v["invocations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (i["name"].as_str().unwrap(), i["depth"].as_u64().unwrap()))
        .collect();
    assert_eq!(
        names,
        vec![
            ("Get-Mailbox", 0),
            ("Where-Object", 0),
            ("ForEach-Object", 0),
            ("Set-Mailbox", 1),
            ("Get-Date", 2)
        ]
    );
    assert_eq!(v["error"], Value::Null);
    let out = jitsh().args(["parse", "Get-Mailbox {"]).output().unwrap();
    let v = json(&out);
    assert!(
        v["error"]["message"].is_string() && v["error"]["offset"].is_u64(),
        "{v}"
    );
}

#[test]
fn now_is_validated() {
    let out = jitsh()
        .args(["check", "--now", "yesterday", "Get-Mailbox"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
}

#[test]
fn a_token_counts_only_for_the_most_specific_approval_rule() {
    let k = keys();
    // `other-changes` (Set-*) also matches a forwarding change, but `mail-forwarding` is the
    // rule that decides it, with its own approvers: a catch-all grant must not cover it.
    let broad = write_token(
        &k,
        "broad.tok",
        &claims("alice", "other-changes", &["Set-Mailbox"]),
    );
    // This gate has no approval service: the shipped rule does not allow offline use, so the
    // grant counts only where the policy says it may.
    let (code, v) = check(&[
        "--user",
        "alice",
        "--token",
        p(&broad),
        "--trust-key",
        p(&k.public),
        "--now",
        IN_WINDOW,
        "Set-Mailbox rob -DisplayName Rob",
    ]);
    assert_eq!(code, Some(1), "{v}");
    assert!(
        v["reason"]
            .as_str()
            .unwrap()
            .contains("does not allow offline use"),
        "{v}"
    );
    let policies = policies_with_offline(&k, "other-changes");
    let args = |line: &'static str| {
        vec![
            "--policies",
            p(&policies),
            "--user",
            "alice",
            "--token",
            p(&broad),
            "--trust-key",
            p(&k.public),
            "--now",
            IN_WINDOW,
            line,
        ]
    };
    let (code, v) = check(&args("Set-Mailbox rob -DisplayName Rob"));
    assert_eq!(code, Some(0), "{v}");
    let (code, v) = check(&args(
        "Set-Mailbox rob -ForwardingSmtpAddress evil@example.com",
    ));
    assert_eq!(code, Some(1), "{v}");
    assert_eq!(v["invocations"][0]["rule"], "mail-forwarding", "{v}");
}

#[test]
fn a_token_never_covers_code_stored_to_run_later() {
    let k = keys();
    let tok = write_token(
        &k,
        "move.tok",
        &claims("alice", "mailbox-moves", &["New-MoveRequest"]),
    );
    let args = |line: &'static str| {
        vec![
            "--user",
            "alice",
            "--token",
            p(&tok),
            "--trust-key",
            p(&k.public),
            "--now",
            IN_WINDOW,
            line,
        ]
    };
    // Run now: covered.
    let (code, v) = check(&args("& { New-MoveRequest -Identity rob@contoso.com }"));
    assert_eq!(code, Some(0), "{v}");
    // Stored: `Get-MoveHelper` (allowed as `Get-*`) or `$sb` would run the move again in any
    // later line, after the token has expired.
    for line in [
        "function Get-MoveHelper { New-MoveRequest -Identity rob@contoso.com }",
        "filter Get-MoveHelper { New-MoveRequest -Identity rob@contoso.com }",
        "$global:sb = { New-MoveRequest -Identity rob@contoso.com }",
        "$h = @{ e = { New-MoveRequest -Identity rob@contoso.com } }",
    ] {
        let (code, v) = check(&args(line));
        assert_eq!(code, Some(1), "{line}: {v}");
        assert!(
            v["reason"].as_str().unwrap().contains("run later"),
            "{line}: {v}"
        );
    }
}

#[test]
fn an_exact_command_grant_does_not_cover_pipeline_input() {
    let k = keys();
    // Approved: remove the move requests a reviewed pipeline chose. The canonical command does
    // not say which objects come down the pipeline, so it must not cover any pipeline.
    let mut c = claims("alice", "mailbox-moves", &["Remove-MoveRequest"]);
    c.command = Some("Remove-MoveRequest -Confirm:'False'".into());
    let tok = write_token(&k, "exact.tok", &c);
    let args = |line: &'static str| {
        vec![
            "--user",
            "alice",
            "--token",
            p(&tok),
            "--trust-key",
            p(&k.public),
            "--now",
            IN_WINDOW,
            line,
        ]
    };
    let (code, v) = check(&args("Remove-MoveRequest -Confirm:$false"));
    assert_eq!(code, Some(0), "{v}");
    let (code, v) = check(&args(
        "Get-MoveRequest -ResultSize Unlimited | Remove-MoveRequest -Confirm:$false",
    ));
    assert_eq!(code, Some(1), "{v}");
}

#[test]
fn platform_option_overrides_the_policies_platform() {
    // The shipped policies gate a Windows runspace: `sort` is `Sort-Object`.
    let (code, v) = check(&["Get-Mailbox | sort Name"]);
    assert_eq!((code, v["decision"].as_str()), (Some(0), Some("allow")));
    assert_eq!(v["invocations"][1]["name"], "Sort-Object");
    let (code, v) = check(&["--platform", "unix", "Get-Mailbox | sort Name"]);
    assert_eq!((code, v["decision"].as_str()), (Some(2), Some("deny")));
    assert_eq!(v["invocations"][1]["name"], "sort");
    let (code, v) = check(&["--platform", "unknown", "Get-Mailbox | sort Name"]);
    assert_eq!((code, v["decision"].as_str()), (Some(2), Some("deny")));
    assert_eq!(v["invocations"][1]["dynamic"], true);
    let out = jitsh()
        .args(["check", "--platform", "linux", "Get-Mailbox"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let out = jitsh()
        .args(["parse", "--platform", "unix", "ls /etc"])
        .output()
        .unwrap();
    let v = json(&out);
    assert_eq!(v["invocations"][0]["task"], "program:ls");
}

/// Issue 8 class 13: a grant covers the command its task names and no other module's command of
/// the same name. An unqualified grant covers only the unqualified name (the command the
/// runspace resolves); a qualified grant covers that module's command, written qualified or not.
#[test]
fn a_grant_covers_its_own_module_only() {
    let k = keys();
    let bare = write_token(
        &k,
        "bare.tok",
        &claims("alice", "mailbox-moves", &["New-MoveRequest"]),
    );
    let mut c = claims("alice", "mailbox-moves", &["Exchange\\New-MoveRequest"]);
    c.jti = "tok-qualified".into();
    let qualified = write_token(&k, "qualified.tok", &c);
    let run = |tok: &Path, line: &str| {
        let (code, v) = check(&[
            "--user",
            "alice",
            "--token",
            p(tok),
            "--trust-key",
            p(&k.public),
            "--now",
            IN_WINDOW,
            line,
        ]);
        (code, v)
    };
    for (tok, line, want) in [
        (&bare, "New-MoveRequest rob", 0),
        (&bare, "Whatever\\New-MoveRequest rob", 1),
        (&bare, "Exchange\\New-MoveRequest rob", 1),
        (&bare, "Get-Mailbox rob | % { Evil\\New-MoveRequest $_ }", 1),
        (&qualified, "Exchange\\New-MoveRequest rob", 0),
        (&qualified, "exchange\\new-moverequest rob", 0),
        (&qualified, "New-MoveRequest rob", 0),
        (&qualified, "Whatever\\New-MoveRequest rob", 1),
        (&qualified, "Microsoft.Exchange\\New-MoveRequest rob", 1),
        (
            &qualified,
            "Get-Mailbox rob | % { Evil\\New-MoveRequest $_ }",
            1,
        ),
    ] {
        let (code, v) = run(tok, line);
        assert_eq!(code, Some(want), "{line}: {v}");
        if want == 1 {
            assert_eq!(
                v["invocations"].as_array().unwrap().last().unwrap()["token"],
                Value::Null,
                "{line}: {v}"
            );
        }
    }
}

/// Issue 9 item 4: a gate that cannot confirm a token with the approval service honours it only
/// when the rule allows offline use, the token was issued with that allowance, and inside the
/// smaller of the two bounds after issue; never a counted grant.
#[test]
fn offline_use_is_the_rules_explicit_choice_with_a_bound() {
    let k = keys();
    let run = |c: &Claims, now: &str| {
        let tok = write_token(&k, &format!("{}.tok", c.jti), c);
        check(&[
            "--user",
            "alice",
            "--token",
            p(&tok),
            "--trust-key",
            p(&k.public),
            "--now",
            now,
            MOVE,
        ])
    };
    let long = |jti: &str, offline: Option<u64>| {
        let mut c = claims("alice", "mailbox-moves", &["New-MoveRequest"]);
        c.jti = jti.into();
        c.exp = at("2026-11-27T13:00:00Z");
        c.offline = offline;
        c
    };
    // The rule (shipped: 1h) and the token (30 min) both bound it: the smaller wins.
    let short = long("short", Some(1800));
    assert_eq!(run(&short, "2026-11-27T10:29:00Z").0, Some(0));
    let (code, v) = run(&short, "2026-11-27T10:31:00Z");
    assert_eq!(code, Some(1), "{v}");
    assert!(
        v["reason"].as_str().unwrap().contains("offline allowance"),
        "{v}"
    );
    let generous = long("generous", Some(7200));
    assert_eq!(run(&generous, "2026-11-27T10:59:00Z").0, Some(0));
    assert_eq!(run(&generous, "2026-11-27T11:01:00Z").0, Some(1));
    assert_eq!(run(&generous, "2026-11-27T12:30:00Z").0, Some(1));
    // A token issued without the allowance is never honoured offline.
    let (code, v) = run(&long("none", None), IN_WINDOW);
    assert_eq!(code, Some(1), "{v}");
    assert!(
        v["reason"].as_str().unwrap().contains("not reachable"),
        "{v}"
    );
    // A rule without `offline` never lets its tokens count offline, whatever they carry.
    let mut other = claims(
        "alice",
        "mailbox-import-export",
        &["New-MailboxExportRequest"],
    );
    other.offline = Some(7200);
    let tok = write_token(&k, "export.tok", &other);
    let (code, v) = check(&[
        "--user",
        "alice",
        "--token",
        p(&tok),
        "--trust-key",
        p(&k.public),
        "--now",
        IN_WINDOW,
        "New-MailboxExportRequest rob -FilePath \\\\srv\\pst\\rob.pst",
    ]);
    assert_eq!(code, Some(1), "{v}");
    assert!(
        v["reason"]
            .as_str()
            .unwrap()
            .contains("does not allow offline use"),
        "{v}"
    );
    // A counted grant is never honoured without the service to count it.
    let mut counted = long("counted", Some(3600));
    counted.uses = Some(5);
    let (code, v) = run(&counted, IN_WINDOW);
    assert_eq!(code, Some(1), "{v}");
    assert!(
        v["reason"].as_str().unwrap().contains("counted grant"),
        "{v}"
    );
}

/// Issue 9 item 3: skew has one default and a bound of five minutes on every command that
/// checks tokens; a larger one is a usage error, never an expired token that runs.
#[test]
fn skew_beyond_five_minutes_is_refused_everywhere() {
    let k = keys();
    let tok = write_token(
        &k,
        "move.tok",
        &claims("alice", "mailbox-moves", &["New-MoveRequest"]),
    );
    for skew in ["301", "3600", "86400", "99999999999"] {
        let out = jitsh()
            .args([
                "check",
                "--user",
                "alice",
                "--token",
                p(&tok),
                "--trust-key",
                p(&k.public),
            ])
            .args(["--now", "2026-11-27T12:00:00Z", "--skew", skew, MOVE])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(3), "check --skew {skew}");
        let out = jitsh()
            .args([
                "token",
                "inspect",
                p(&tok),
                "--trust-key",
                p(&k.public),
                "--skew",
                skew,
            ])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(3), "token inspect --skew {skew}");
        let out = jitsh()
            .args(["exec", "--skew", skew, "--", "Get-Mailbox"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(3), "exec --skew {skew}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("300"),
            "{skew}"
        );
    }
    // Inside the bound: four minutes after exp with the largest skew still counts; the default
    // (60 s) does not.
    let base = [
        "--user",
        "alice",
        "--token",
        p(&tok),
        "--trust-key",
        p(&k.public),
    ];
    let (code, _) = check(
        &[
            &base[..],
            &["--now", "2026-11-27T10:59:30Z", "--skew", "300", MOVE],
        ]
        .concat(),
    );
    assert_eq!(code, Some(0));
    let (code, _) = check(&[&base[..], &["--now", "2026-11-27T11:04:00Z", MOVE]].concat());
    assert_eq!(code, Some(1));
}

/// `jitsh policy lint --policies policies` reports nothing on the shipped policies, and does
/// report a typo, an unknown .NET type and a command that exists nowhere.
#[test]
fn policy_lint_is_clean_on_shipped_policies() {
    let out = jitsh()
        .args(["policy", "lint", "--policies", "policies"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("no findings"), "{text}");

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("p.toml"),
        r#"[[rule]]
id = "typos"
effect = "deny"
tasks = ["Stop-Computr", "[Contoso.Unknown]::Run", "Stop-Computer", "[IO.File]::Delete", 'path:C:\x\*.ps1', "program:x.exe"]
"#,
    )
    .unwrap();
    let out = jitsh()
        .args(["policy", "lint", "--policies", p(dir.path())])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let findings: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("unknown-task"))
        .collect();
    assert_eq!(findings.len(), 2, "{text}");
    assert!(text.contains("`Stop-Computr`"), "{text}");
    assert!(text.contains("`[Contoso.Unknown]::Run`"), "{text}");
}

/// `check` and `parse` name a task that is not a command with its kind and the task a policy
/// uses for it; a script no rule names is denied as dynamic even though `Get-*` is standing
/// access.
#[test]
fn check_and_parse_report_task_kinds() {
    let (code, v) = check(&["--policies", "policies", r".\Get-Report.ps1 -Days 3"]);
    assert_eq!(code, Some(2), "{v}");
    let inv = &v["invocations"][0];
    assert_eq!(inv["kind"], "path", "{v}");
    assert_eq!(inv["task"], r"path:.\Get-Report.ps1", "{v}");
    assert_eq!(inv["dynamic"], true, "{v}");

    let (code, v) = check(&["--policies", "policies", "Get-Helper.exe"]);
    assert_eq!(code, Some(2), "{v}");
    assert_eq!(v["invocations"][0]["task"], "program:Get-Helper.exe", "{v}");

    let (code, v) = check(&[
        "--policies",
        "policies",
        r"[IO.File]::ReadAllBytes('C:\x.pfx')",
    ]);
    assert_eq!(code, Some(1), "{v}");
    let inv = &v["invocations"][0];
    assert_eq!(inv["kind"], "method", "{v}");
    assert_eq!(inv["name"], "[System.IO.File]::ReadAllBytes", "{v}");
    assert_eq!(inv["rule"], "file-reads", "{v}");

    let out = jitsh()
        .args([
            "parse",
            r"Get-Mailbox | C:\Tools\x.exe; [IO.StreamWriter]'C:\x'",
        ])
        .output()
        .unwrap();
    let v = json(&out);
    let kinds: Vec<(&str, &str)> = v["invocations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["name"].as_str().unwrap_or_default(),
                i["kind"].as_str().unwrap_or("command"),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            ("Get-Mailbox", "command"),
            (r"C:\Tools\x.exe", "path"),
            ("[System.IO.StreamWriter]::new", "method"),
        ],
        "{v}"
    );
}

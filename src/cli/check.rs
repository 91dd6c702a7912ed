//! `jitsh check`: the machine interface of the gate (SPEC §3).

use std::collections::HashSet;
use std::path::PathBuf;
use std::process::ExitCode;

use serde_json::json;

use super::common::{self, GateInputs};
use crate::gate::{check_line, GateContext};
use crate::policy::Effect;
use crate::shell::service::{decide_confirmed, Confirm, Service};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Policy folder: every *.toml in it is loaded.
    /// Default: `policies` in the settings, else the demo policies of this build.
    #[arg(
        long,
        value_name = "DIR",
        env = "JITSH_POLICIES",
        hide_env_values = true
    )]
    policies: Option<PathBuf>,
    /// The user the line runs as (tokens must be issued to this user; with --server, the
    /// credential's user).
    #[arg(long, env = "JITSH_USER", hide_env_values = true)]
    user: Option<String>,
    /// Approval token file (repeatable); verified against --trust-key when loaded.
    #[arg(long = "token", value_name = "FILE")]
    tokens: Vec<PathBuf>,
    /// Public key file of a trusted approval service (repeatable, for key rotation); default:
    /// the keys `jitsh login` stored.
    #[arg(long = "trust-key", value_name = "FILE")]
    trust_keys: Vec<PathBuf>,
    /// Decide as if it were this time (RFC 3339), instead of now.
    #[arg(long, value_name = "RFC3339")]
    now: Option<String>,
    /// Clock skew tolerated on token validity, in seconds (at most 300).
    #[arg(long, default_value = super::common::DEFAULT_SKEW_SECS, value_name = "SECONDS",
          value_parser = super::common::parse_skew)]
    skew: u32,
    /// Approval service that confirms each token a line leans on (revocation, locks, holder,
    /// counted uses) before the line is allowed; when unreachable, only tokens whose rule allows
    /// offline use are honoured. The credential comes from JITSH_CREDENTIAL or the client
    /// config, and `--user` must be its user.
    #[arg(long, env = "JITSH_SERVER", value_name = "URL", hide_env_values = true)]
    server: Option<String>,
    /// Extra cmdlet metadata (JSON, catalog format) for modules jitsh does not ship.
    #[arg(long = "catalog", value_name = "FILE")]
    catalogs: Vec<PathBuf>,
    /// The runspace's platform (`windows`, `unix` or `unknown`), instead of the policies'
    /// `[defaults] platform`: `sort`, `ls`, `ps` … are aliases on Windows and native programs
    /// on Linux and macOS.
    #[arg(long, value_name = "PLATFORM", value_parser = common::parse_platform)]
    platform: Option<crate::catalog::Platform>,
    /// Read JSON Lines (`{"text": ...}`) from stdin and write one decision per line.
    #[arg(long)]
    batch: bool,
    /// The line to check (read from stdin when absent).
    line: Option<String>,
}

pub fn run(args: Args) -> ExitCode {
    let policies = match common::policy_dir(args.policies.clone(), true) {
        Ok(dir) => dir,
        Err(e) => return super::fail(e),
    };
    let mut inputs = match GateInputs::load(
        &policies,
        &args.catalogs,
        &args.tokens,
        &args.trust_keys,
        args.now.as_deref(),
    ) {
        Ok(i) => i,
        Err(code) => return code,
    };
    if let Some(platform) = args.platform {
        inputs.policies.set_platform(platform);
    }
    let mut user = common::user_name(args.user.as_deref());
    let server = match (&args.server, inputs.tokens.is_empty()) {
        (Some(url), false) => Some(url.clone()),
        _ => None,
    };
    let Some(url) = server else {
        // No service: only tokens whose rule allows offline use can count.
        return run_with(&args, &inputs, &user, Online::No);
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return super::fail(format!("cannot start the HTTP client: {e}")),
    };
    let credential = std::env::var("JITSH_CREDENTIAL")
        .ok()
        .filter(|c| !c.trim().is_empty())
        .or_else(|| common::client_config().credential);
    let service = match Service::new(&url, credential) {
        Ok(s) => s,
        Err(e) => return super::fail(e),
    };
    // The token's holder is the credential's user: `--user` may only repeat it.
    match rt.block_on(service.me()) {
        Ok(name) if name.to_lowercase() == user.to_lowercase() => {}
        Ok(name) if common::user_explicit(args.user.as_deref()) => {
            return super::fail(format!(
                "--user `{user}` is not `{name}`, the user the approval service credential belongs to: a gate that talks to the service runs as its credential's user"
            ))
        }
        Ok(name) => user = name,
        Err(Confirm::Unreachable(why)) => {
            tracing::warn!("the approval service cannot be reached: {why}");
            return run_with(&args, &inputs, &user, Online::Unreachable);
        }
        Err(Confirm::Refused(why)) => return super::fail(why),
        Err(Confirm::Confirmed) => {
            return super::fail("the approval service did not say who the credential is")
        }
    }
    run_with(&args, &inputs, &user, Online::Yes(&rt, &service))
}

/// How the gate stands with the approval service.
enum Online<'a> {
    /// None configured (or no token to confirm).
    No,
    /// Configured but not answering: decided offline, with a warning.
    Unreachable,
    /// Every token a line leans on is confirmed (and a counted one spent) before it is allowed.
    Yes(&'a tokio::runtime::Runtime, &'a Service),
}

fn run_with(args: &Args, inputs: &GateInputs, user: &str, online: Online<'_>) -> ExitCode {
    let skew = chrono::Duration::seconds(i64::from(args.skew));
    let decide = |text: &str, refused: &HashSet<String>, confirmed: bool| {
        let ctx = GateContext {
            policies: &inputs.policies,
            catalog: &inputs.catalog,
            user,
            now: inputs.now,
            tokens: &inputs.tokens,
            revoked: refused,
            skew,
            online: confirmed,
        };
        check_line(text, &ctx)
    };
    let decide_line = |text: &str| match &online {
        Online::Yes(rt, service) => rt.block_on(decide_confirmed(
            service,
            &inputs.tokens,
            |refused, confirmed| decide(text, refused, confirmed),
        )),
        Online::No | Online::Unreachable => decide(text, &HashSet::new(), false),
    };
    let warn = |out: &mut serde_json::Value| {
        if let (Online::Unreachable, Some(obj)) = (&online, out.as_object_mut()) {
            obj.insert(
                "warning".into(),
                json!("the approval service could not be reached to confirm tokens, so only tokens whose rule allows offline use were honoured"),
            );
        }
    };
    if args.batch {
        return common::run_batch(|text| {
            let mut out = decide_line(text).to_json();
            warn(&mut out);
            out
        });
    }
    let line = match &args.line {
        Some(l) => l.clone(),
        None => match common::read_stdin() {
            Ok(l) => l,
            Err(code) => return code,
        },
    };
    let decision = decide_line(&line);
    let mut out = decision.to_json();
    warn(&mut out);
    println!("{}", common::machine_json(out));
    ExitCode::from(match decision.decision {
        Effect::Allow => 0,
        Effect::Approval => 1,
        Effect::Deny => 2,
    })
}

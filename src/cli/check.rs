//! `jitsh check`: the machine interface of the gate (SPEC §3).

use std::collections::HashSet;
use std::path::PathBuf;
use std::process::ExitCode;

use serde_json::json;

use super::common::{self, GateInputs};
use crate::gate::{check_line, GateContext};
use crate::policy::Effect;

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
    /// The user the line runs as (tokens must be issued to this user).
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
    /// Clock skew tolerated on token validity, in seconds.
    #[arg(long, default_value_t = 30, value_name = "SECONDS")]
    skew: u32,
    /// Approval service to ask for revocations; when given and unreachable, no token is honoured.
    #[arg(long, env = "JITSH_SERVER", value_name = "URL", hide_env_values = true)]
    server: Option<String>,
    /// Extra cmdlet metadata (JSON, catalog format) for modules jitsh does not ship.
    #[arg(long = "catalog", value_name = "FILE")]
    catalogs: Vec<PathBuf>,
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
    let inputs = match GateInputs::load(
        &policies,
        &args.catalogs,
        &args.tokens,
        &args.trust_keys,
        args.now.as_deref(),
    ) {
        Ok(i) => i,
        Err(code) => return code,
    };
    let user = common::user_name(args.user.as_deref());
    let (revoked, online) = match (&args.server, inputs.tokens.is_empty()) {
        (Some(server), false) => match common::fetch_revocations(server) {
            Ok(set) => (set, true),
            Err(e) => {
                tracing::warn!("revocations unavailable, no token is honoured: {e}");
                // Fail closed: without the revocation list no token may cover anything.
                return run_with(&args, &inputs, &user, None, false);
            }
        },
        _ => (HashSet::new(), false),
    };
    run_with(&args, &inputs, &user, Some(&revoked), online)
}

fn run_with(
    args: &Args,
    inputs: &GateInputs,
    user: &str,
    revoked: Option<&HashSet<String>>,
    online: bool,
) -> ExitCode {
    let empty = HashSet::new();
    let no_tokens = [];
    let ctx = GateContext {
        policies: &inputs.policies,
        catalog: &inputs.catalog,
        user,
        now: inputs.now,
        tokens: if revoked.is_some() {
            &inputs.tokens
        } else {
            &no_tokens
        },
        revoked: revoked.unwrap_or(&empty),
        skew: time::Duration::seconds(i64::from(args.skew)),
        online,
    };
    if args.batch {
        return common::run_batch(|text| check_line(text, &ctx).to_json());
    }
    let line = match &args.line {
        Some(l) => l.clone(),
        None => match common::read_stdin() {
            Ok(l) => l,
            Err(code) => return code,
        },
    };
    let decision = check_line(&line, &ctx);
    let mut out = decision.to_json();
    if revoked.is_none() {
        if let Some(obj) = out.as_object_mut() {
            obj.insert(
                "warning".into(),
                json!("the approval service could not be reached for revocations, so no token was honoured"),
            );
        }
    }
    println!("{out}");
    ExitCode::from(match decision.decision {
        Effect::Allow => 0,
        Effect::Approval => 1,
        Effect::Deny => 2,
    })
}

//! `jitsh policy lint`: load a policy folder and report rules that can never match, allow rules
//! that shadow approval rules, and tasks that name no known cmdlet.

use std::path::PathBuf;
use std::process::ExitCode;

use super::common;
use crate::catalog::Catalog;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: PolicyCommand,
}

#[derive(Debug, clap::Subcommand)]
enum PolicyCommand {
    /// Check a policy folder: load errors (exit 3), findings (exit 1), clean (exit 0).
    Lint {
        /// Policy folder: every *.toml in it is loaded. Default: `policies` in the settings,
        /// else the demo policies of this build.
        #[arg(
            long,
            value_name = "DIR",
            env = "JITSH_POLICIES",
            hide_env_values = true
        )]
        policies: Option<PathBuf>,
        /// Print findings as JSON Lines.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(args: Args) -> ExitCode {
    match args.command {
        PolicyCommand::Lint { policies, json } => match common::policy_dir(policies, true) {
            Ok(dir) => lint(&dir, json),
            Err(e) => super::fail(e),
        },
    }
}

fn lint(dir: &std::path::Path, json: bool) -> ExitCode {
    let set = match common::load_policies(dir) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let catalog = Catalog::builtin();
    let findings = set.lint(&|name: &str| catalog.knows_name(name));
    for f in &findings {
        if json {
            println!(
                "{}",
                serde_json::json!({"rule": f.rule, "kind": f.kind, "message": f.message})
            );
        } else {
            println!("{}: {}: {}", f.rule, f.kind, f.message);
        }
    }
    if findings.is_empty() {
        if !json {
            println!(
                "{} rules in `{}`: no findings",
                set.rules().len(),
                dir.display()
            );
        }
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

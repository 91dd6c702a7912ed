//! `jitsh parse`: every command invocation in a line, as JSON (SPEC §3).

use std::path::PathBuf;
use std::process::ExitCode;

use super::common;
use crate::resolve;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Extra cmdlet metadata (JSON, catalog format) for modules jitsh does not ship.
    #[arg(long = "catalog", value_name = "FILE")]
    catalogs: Vec<PathBuf>,
    /// The runspace's platform (`windows`, `unix` or `unknown`, the default): `sort`, `ls`,
    /// `ps` … are aliases on Windows and native programs on Linux and macOS.
    #[arg(long, value_name = "PLATFORM", value_parser = common::parse_platform, default_value = "unknown")]
    platform: crate::catalog::Platform,
    /// Read JSON Lines (`{"text": ...}`) from stdin and write one result per line.
    #[arg(long)]
    batch: bool,
    /// The line to parse (read from stdin when absent).
    line: Option<String>,
}

pub fn run(args: Args) -> ExitCode {
    let catalog = match common::load_catalog(&args.catalogs) {
        Ok(c) => c,
        Err(code) => return code,
    };
    if !args.batch {
        let line = match args.line {
            Some(l) => l,
            None => match common::read_stdin() {
                Ok(l) => l,
                Err(code) => return code,
            },
        };
        let report = resolve::parse_report_on(&line, &catalog, args.platform);
        let failed = report.get("error").is_some_and(|e| !e.is_null());
        println!("{report}");
        return if failed {
            ExitCode::from(2)
        } else {
            ExitCode::SUCCESS
        };
    }
    common::run_batch(|text| resolve::parse_report_on(text, &catalog, args.platform))
}

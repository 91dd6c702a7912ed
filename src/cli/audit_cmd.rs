//! (being built)

#[derive(Debug, clap::Args)]
pub struct Args {}
pub fn run(_: Args) -> std::process::ExitCode {
    super::not_built("audit")
}

//! (being built)

#[derive(Debug, clap::Args)]
pub struct Args {}

#[derive(Debug, clap::Args)]
pub struct SessionsArgs {}
pub fn run(_: Args) -> std::process::ExitCode {
    super::not_built("replay")
}
pub fn sessions(_: SessionsArgs) -> std::process::ExitCode {
    super::not_built("sessions")
}

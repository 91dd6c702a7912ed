//! (being built)

#[derive(Debug, clap::Args)]
pub struct Args {}

#[derive(Debug, clap::Args)]
pub struct UserArgs {}
pub fn run(_: Args) -> std::process::ExitCode {
    super::not_built("serve")
}
pub fn user(_: UserArgs) -> std::process::ExitCode {
    super::not_built("user")
}

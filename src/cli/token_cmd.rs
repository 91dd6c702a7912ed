//! (being built)

#[derive(Debug, clap::Args)]
pub struct KeygenArgs {}

#[derive(Debug, clap::Args)]
pub struct TokenArgs {}
pub fn keygen(_: KeygenArgs) -> std::process::ExitCode {
    super::not_built("keygen")
}
pub fn run(_: TokenArgs) -> std::process::ExitCode {
    super::not_built("token")
}

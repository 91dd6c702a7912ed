//! (being built)

#[derive(Debug, clap::Args)]
pub struct ShellArgs {}

#[derive(Debug, clap::Args)]
pub struct ExecArgs {}
pub fn shell(_: ShellArgs) -> std::process::ExitCode {
    super::not_built("shell")
}
pub fn exec(_: ExecArgs) -> std::process::ExitCode {
    super::not_built("exec")
}

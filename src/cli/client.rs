//! (being built)

#[derive(Debug, clap::Args)]
pub struct RequestArgs {}

#[derive(Debug, clap::Args)]
pub struct RequestsArgs {}

#[derive(Debug, clap::Args)]
pub struct ApproveArgs {}

#[derive(Debug, clap::Args)]
pub struct DenyArgs {}

#[derive(Debug, clap::Args)]
pub struct RevokeArgs {}

#[derive(Debug, clap::Args)]
pub struct LockArgs {}
pub fn request(_: RequestArgs) -> std::process::ExitCode {
    super::not_built("request")
}
pub fn requests(_: RequestsArgs) -> std::process::ExitCode {
    super::not_built("requests")
}
pub fn approve(_: ApproveArgs) -> std::process::ExitCode {
    super::not_built("approve")
}
pub fn deny(_: DenyArgs) -> std::process::ExitCode {
    super::not_built("deny")
}
pub fn revoke(_: RevokeArgs) -> std::process::ExitCode {
    super::not_built("revoke")
}
pub fn lock(_: LockArgs) -> std::process::ExitCode {
    super::not_built("lock")
}

//! `jitsh migrate --from sqlite:PATH --to postgres://…`: move a service's state from its SQLite
//! file into a new PostgreSQL store, for replicas.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::service;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The SQLite store, `sqlite:STATE/jitsh.db` (stop the service on it first).
    #[arg(long, value_name = "sqlite:PATH")]
    from: String,
    /// The PostgreSQL store to fill (empty; its schema is created).
    #[arg(long, value_name = "URL", env = "JITSH_STORE", hide_env_values = true)]
    to: String,
}

pub fn run(args: Args) -> ExitCode {
    let Some(path) = args.from.strip_prefix("sqlite:").map(PathBuf::from) else {
        return super::fail("--from takes `sqlite:PATH` (the service's STATE/jitsh.db)");
    };
    if !args.to.starts_with("postgres://") && !args.to.starts_with("postgresql://") {
        return super::fail("--to takes a `postgres://` URL");
    }
    // The store blocks on a runtime that drives its connections, from a thread outside it.
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return super::fail(format!("could not start the runtime: {e}")),
    };
    let store = match service::postgres::PgStore::open(&args.to, rt.handle().clone()) {
        Ok(s) => s,
        Err(e) => return super::fail(format!("PostgreSQL store: {e}")),
    };
    match store.import_sqlite(&path) {
        Ok(counts) => {
            for (table, n) in counts {
                eprintln!("{table}: {n} rows");
            }
            eprintln!(
                "migrated `{}`; start the replicas with --store and the same signing keys",
                path.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => super::fail(format!("migration failed, nothing was written: {e}")),
    }
}

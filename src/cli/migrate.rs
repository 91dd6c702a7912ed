//! `jitsh migrate --from sqlite:PATH --to postgres://…`: move a service's state from its SQLite
//! file into a new PostgreSQL store, for replicas: requests, grants, locks, outbox, seals, and
//! from the state folder around the file its signing key, its directory of users and its audit
//! log (which the deployment's chain continues).

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
    /// The service's directory file (default: `directory.toml` beside the SQLite file).
    #[arg(long, value_name = "FILE")]
    directory: Option<PathBuf>,
}

pub fn run(args: Args) -> ExitCode {
    let Some(path) = args.from.strip_prefix("sqlite:").map(PathBuf::from) else {
        return super::fail("--from takes `sqlite:PATH` (the service's STATE/jitsh.db)");
    };
    let state = path
        .parent()
        .map(std::path::Path::to_path_buf)
        .unwrap_or_default();
    let (_rt, store) = match super::serve::open_postgres(&args.to) {
        Ok(s) => s,
        Err(e) => return super::fail(e),
    };
    // The seals were made with the state folder's key: the deployment must go on with it.
    let local = match service::ports::Signer::load_existing(&state) {
        Ok(s) => s,
        Err(e) => return super::fail(format!("the SQLite store's signing key: {e}")),
    };
    match store.deployment_key(local.key()) {
        Ok(key) if key.kid() == local.kid() => {}
        Ok(key) => {
            return super::fail(format!(
                "the PostgreSQL store already has another signing key (`{}`, a replica started on it): migrate into a new database",
                key.kid()
            ))
        }
        Err(e) => return super::fail(format!("PostgreSQL store: {e}")),
    }
    // The SQLite-era audit log becomes the start of the deployment's chain, which goes on
    // after a checkpoint of the migration.
    let adopted = local
        .audit_signer()
        .verify_key()
        .map_err(|e| e.to_string())
        .and_then(|key| {
            store
                .adopt_file_log(&state.join("audit"), &key)
                .map_err(|e| e.to_string())
        });
    match adopted {
        Ok(n) => eprintln!("audit log: {n} records"),
        Err(e) => return super::fail(format!("migration refused, no state was copied: {e}")),
    }
    let counts = match store.import_sqlite(&path) {
        Ok(counts) => counts,
        Err(e) => {
            return super::fail(format!(
                "migration failed, no state was copied (the audit log was): {e}"
            ))
        }
    };
    for (table, n) in &counts {
        eprintln!("{table}: {n} rows");
    }
    let directory = args
        .directory
        .unwrap_or_else(|| state.join("directory.toml"));
    let audit = match service::join_postgres(
        &store,
        &local,
        &directory,
        "migrate",
    ) {
        Ok((_, audit)) => audit,
        Err(e) => {
            return super::fail(format!(
                "the state was copied but the directory was not: {e}; a replica started with --directory imports it"
            ))
        }
    };
    let mut details = serde_json::Map::new();
    details.insert("from".into(), path.display().to_string().into());
    for (table, n) in &counts {
        details.insert((*table).into(), (*n).into());
    }
    let event = crate::audit::AuditEvent {
        time: service::rfc3339(chrono::Utc::now().timestamp()),
        actor: std::env::var("USER").unwrap_or_else(|_| "local".into()),
        action: "store.migrate".into(),
        subject: "store".into(),
        outcome: "ok".into(),
        details,
    };
    if let Err(e) = crate::audit::AuditSink::append(audit.as_ref(), event) {
        return super::fail(format!("the migration could not be audited: {e}"));
    }
    eprintln!(
        "migrated `{}` with its signing key and directory; start the replicas with --store",
        path.display()
    );
    ExitCode::SUCCESS
}

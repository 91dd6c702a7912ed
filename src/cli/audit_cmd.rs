//! `jitsh audit verify|search|export|forward`: review tools over audit log files.
//!
//! Every command takes log files in chain order (or a log directory, meaning all its
//! `audit-NNNNNN.jsonl` files). `verify` exits 0 intact, 1 bad, 3 on usage or read errors.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Subcommand, ValueEnum};

use crate::audit::chain::{Location, Record};
use crate::audit::read::{expand_paths, for_each_record, verify_paths};
use crate::audit::search::{parse_decision, parse_time, search, Filter};
use crate::audit::{export, keys, ForwardTarget, SyslogForwarder};

use super::fail;

#[derive(Debug, clap::Args)]
pub struct Args {
    // Boxed: the search filters would make every `jitsh` command as large as they are.
    #[command(subcommand)]
    command: Box<AuditCommand>,
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Check the hash chain and signed checkpoints; name the first bad record.
    Verify(VerifyArgs),
    /// Find events; gate decisions are shown with the request events behind them (exit 1 when
    /// nothing matches).
    Search(SearchArgs),
    /// Write events as JSON Lines, ArcSight CEF or RFC 5424 syslog lines.
    Export(ExportArgs),
    /// Send events to a syslog collector, spooling what cannot be delivered yet.
    Forward(ForwardArgs),
    /// Re-anchor a service's log that no longer matches its store, after a person has reviewed
    /// it (`jitsh serve` refuses to start until then). The repair is recorded in the log.
    Repair(RepairArgs),
}

#[derive(Debug, clap::Args)]
struct VerifyArgs {
    /// Log files in order (rotated ones oldest first), or a log directory; or the
    /// `postgres://` URL of a PostgreSQL store, to verify its audit chain in the database.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// File with the public key that signs checkpoints (hex or base64, optional `kid=NAME`).
    #[arg(long, value_name = "FILE")]
    trust_key: Vec<PathBuf>,
    /// Accept records after the last checkpoint (a log still being written).
    #[arg(long)]
    allow_unsealed: bool,
    /// Look for session recordings by file name in this folder (default: where each
    /// `session.end` record says it was written).
    #[arg(long, value_name = "DIR")]
    recordings: Option<PathBuf>,
    /// Do not check the session recordings the log names (on a host that does not keep them).
    #[arg(long)]
    no_recordings: bool,
    /// The service's state folder (or its `audit.anchor`): the log must reach the head
    /// anchored there, match it, and (after a clean stop) end there.
    #[arg(long, value_name = "PATH")]
    store: Option<PathBuf>,
    /// Print the verdict as one JSON object.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
struct RepairArgs {
    /// The service's state folder (its log is `STATE/audit`, its store `STATE/jitsh.db`).
    #[arg(long, value_name = "DIR")]
    state: PathBuf,
}

#[derive(Debug, clap::Args)]
struct SearchArgs {
    /// Events by this user (the actor).
    #[arg(long, value_name = "U")]
    user: Option<String>,
    /// Events about this task, or decisions on this command.
    #[arg(long, value_name = "T")]
    task: Option<String>,
    /// Events with this parameter (and value).
    #[arg(long, value_name = "NAME[=VALUE]")]
    param: Option<String>,
    /// Events decided by this policy rule.
    #[arg(long, value_name = "R")]
    rule: Option<String>,
    /// Gate decisions with this outcome: allow, approval or deny.
    #[arg(long, value_name = "D")]
    decision: Option<String>,
    /// Events at or after this time (RFC 3339 or YYYY-MM-DD).
    #[arg(long, value_name = "T")]
    since: Option<String>,
    /// Events at or before this time (RFC 3339 or YYYY-MM-DD).
    #[arg(long, value_name = "T")]
    until: Option<String>,
    /// Events of this shell session.
    #[arg(long, value_name = "S")]
    session: Option<String>,
    /// Events about this request.
    #[arg(long, value_name = "ID")]
    request: Option<String>,
    /// Only system accounts' sessions whose review is still open (`jitsh review`): their
    /// gate records and the review's opening.
    #[arg(long)]
    unreviewed: bool,
    /// JSON Lines: `{"record":..,"related":[..]}` per match.
    #[arg(long)]
    json: bool,
    /// Log files in order, or a log directory.
    #[arg(required = true)]
    files: Vec<PathBuf>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Format {
    Jsonl,
    Cef,
    Syslog,
}

#[derive(Debug, clap::Args)]
struct ExportArgs {
    /// Output format (with --from and no --format: the log's own format, which `jitsh audit
    /// verify` checks).
    #[arg(long, value_enum, required_unless_present = "from")]
    format: Option<Format>,
    /// Export the audit chain of this PostgreSQL store (`postgres://…`).
    #[arg(long, value_name = "URL", conflicts_with = "files")]
    from: Option<String>,
    /// Log files in order, or a log directory.
    #[arg(required_unless_present = "from")]
    files: Vec<PathBuf>,
}

#[derive(Debug, clap::Args)]
struct ForwardArgs {
    /// Collector: tcp://HOST:PORT or udp://HOST:PORT.
    #[arg(long, value_name = "URL")]
    to: String,
    /// Where the spool and delivery cursor live (default: the first log's directory).
    #[arg(long, value_name = "DIR")]
    state: Option<PathBuf>,
    /// Log files in order, or a log directory.
    #[arg(required = true)]
    files: Vec<PathBuf>,
}

pub fn run(args: Args) -> ExitCode {
    match *args.command {
        AuditCommand::Verify(a) => verify(a),
        AuditCommand::Search(a) => search_cmd(a),
        AuditCommand::Export(a) => export_cmd(a),
        AuditCommand::Forward(a) => forward(a),
        AuditCommand::Repair(a) => repair(a),
    }
}

fn verify(a: VerifyArgs) -> ExitCode {
    let mut trusted = Vec::new();
    for path in &a.trust_key {
        match load_trust_key(path) {
            Ok(k) => trusted.push(k),
            Err(e) => return fail(e),
        }
    }
    if trusted.is_empty() {
        return fail("no trusted key: pass the service's public key with `--trust-key FILE`");
    }
    if let [url] = a.files.as_slice() {
        let url = url.to_string_lossy();
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return verify_postgres(&url, &trusted, &a);
        }
    }
    let paths = match expand_paths(&a.files) {
        Ok(p) => p,
        Err(e) => return fail(e),
    };
    let options = crate::audit::VerifyOptions {
        allow_unsealed: a.allow_unsealed,
    };
    let mut verdict = match verify_paths(&paths, &trusted, options) {
        Ok(v) => v,
        Err(e) => return fail(e),
    };
    if let (Some(store), Ok(_)) = (&a.store, &verdict) {
        match sealed_requests(store) {
            Ok(Some(f)) => verdict = Err(f),
            Ok(None) => {}
            Err(e) => return fail(e),
        }
    }
    let mut checked_recordings = 0;
    if verdict.is_ok() && !a.no_recordings {
        let vouched = match crate::audit::recordings::vouched(&paths) {
            Ok(v) => v,
            Err(e) => return fail(e),
        };
        checked_recordings = vouched.len();
        if let Some(f) = vouched
            .iter()
            .find_map(|v| crate::audit::recordings::check(v, a.recordings.as_deref()))
        {
            verdict = Err(f);
        }
    }
    let mut unanchored = None;
    if let (Some(store), Ok(summary)) = (&a.store, &verdict) {
        match against_store(store, &paths, summary) {
            Ok(Ok(note)) => unanchored = note,
            Ok(Err(finding)) => verdict = Err(finding),
            Err(e) => return fail(e),
        }
    }
    let mut out = std::io::stdout().lock();
    match verdict {
        Ok(s) => {
            let _ = if a.json {
                let mut v = serde_json::to_value(&s).unwrap_or_default();
                if let Some(o) = v.as_object_mut() {
                    o.insert("status".into(), "intact".into());
                }
                writeln!(out, "{v}")
            } else {
                write_intact(&mut out, &s)
                    .and_then(|()| match checked_recordings {
                        0 => Ok(()),
                        n => writeln!(out, "recordings: {n} checked, each as recorded"),
                    })
                    .and_then(|()| match unanchored {
                        Some((from, to)) => writeln!(
                        out,
                        "note: records {from}..={to} are past the head the store anchored (the \
                         writer stopped before anchoring them, or is still running)"
                    ),
                        None => Ok(()),
                    })
            };
            ExitCode::SUCCESS
        }
        Err(f) => {
            let _ = if a.json {
                let mut v = serde_json::to_value(&f).unwrap_or_default();
                if let Some(o) = v.as_object_mut() {
                    o.insert("status".into(), "bad".into());
                }
                writeln!(out, "{v}")
            } else {
                writeln!(out, "bad: {}", esc(&f.to_string()))
            };
            ExitCode::from(1)
        }
    }
}

/// `jitsh audit verify postgres://…`: the chain and the request seals, in the database.
fn verify_postgres(url: &str, trusted: &[keys::AuditVerifyKey], a: &VerifyArgs) -> ExitCode {
    use crate::service::pg_chain::Verdict;
    let (_rt, pg) = match super::serve::open_postgres(url) {
        Ok(p) => p,
        Err(e) => return fail(e),
    };
    match pg.current_key() {
        Ok(Some(key)) => {
            pg.check_seals_with(crate::service::ports::Signer::from_key(key).store_sealer())
        }
        Ok(None) => {}
        Err(e) => return fail(e),
    }
    let options = crate::audit::VerifyOptions {
        allow_unsealed: a.allow_unsealed,
    };
    let verdict = pg.verify_chain(trusted, options);
    let verdict = match verdict {
        Ok(Verdict::Intact(s)) => match pg.tampered_requests() {
            Ok(bad) => match bad.first() {
                None => Ok(s),
                Some(id) => Err(crate::audit::Finding {
                    at: Location {
                        file: "postgres:requests".into(),
                        line: 0,
                    },
                    seq: None,
                    kind: crate::audit::FindingKind::Store,
                    reason: format!(
                        "request `{id}` was changed in the database outside the service: its \
                         seal does not match ({} such request(s) in all)",
                        bad.len()
                    ),
                }),
            },
            Err(e) => return fail(e),
        },
        Ok(Verdict::Bad(f)) => Err(f),
        Err(e) => return fail(e),
    };
    let mut out = std::io::stdout().lock();
    match verdict {
        Ok(s) => {
            let _ = if a.json {
                let mut v = serde_json::to_value(&s).unwrap_or_default();
                if let Some(o) = v.as_object_mut() {
                    o.insert("status".into(), "intact".into());
                }
                writeln!(out, "{v}")
            } else {
                write_intact(&mut out, &s)
            };
            ExitCode::SUCCESS
        }
        Err(f) => {
            let _ = if a.json {
                let mut v = serde_json::to_value(&f).unwrap_or_default();
                if let Some(o) = v.as_object_mut() {
                    o.insert("status".into(), "bad".into());
                }
                writeln!(out, "{v}")
            } else {
                writeln!(out, "bad: {}", esc(&f.to_string()))
            };
            ExitCode::from(1)
        }
    }
}

/// Compare a verified log with the head anchored in the store: a finding when it is behind,
/// diverges or goes on after a clean stop; else the unanchored range, if any.
#[allow(
    clippy::type_complexity,
    reason = "outer: read errors; inner: the verdict"
)]
fn against_store(
    store: &Path,
    paths: &[PathBuf],
    summary: &crate::audit::Summary,
) -> Result<Result<Option<(u64, u64)>, crate::audit::Finding>, String> {
    use crate::audit::anchor::{self, Standing};
    use crate::audit::chain::ChainHash;
    let db = if store.is_dir() {
        store.join(anchor::STATE_FILE)
    } else {
        store.to_path_buf()
    };
    if !db.is_file() {
        return Err(format!("no audit anchor at `{}`", db.display()));
    }
    let state = crate::audit::FileAnchor::read(&db)?;
    let last = ChainHash::from_hex(&summary.last_hash).map(|h| (summary.last_seq, h));
    let standing = anchor::check(state.as_ref(), last, |seq| {
        let mut found = None;
        for_each_record(paths, |_, r| {
            if let Ok(r) = r {
                if r.seq == seq {
                    found = ChainHash::from_hex(&r.hash);
                }
            }
        })
        .map_err(|e| e.to_string())?;
        Ok(found)
    })?;
    match standing {
        Standing::Matches => Ok(Ok(None)),
        Standing::Unanchored { from, to } => Ok(Ok(Some((from, to)))),
        Standing::Mismatch(reason) => Ok(Err(crate::audit::Finding {
            at: Location {
                file: store.display().to_string(),
                line: 0,
            },
            seq: state.map(|s| s.seq),
            kind: crate::audit::FindingKind::Anchor,
            reason,
        })),
    }
}

/// With `--store STATE` (a state folder holding `jitsh.db` and `signing.key`): the first request
/// whose seal does not match.
fn sealed_requests(store: &Path) -> Result<Option<crate::audit::Finding>, String> {
    let db = store.join("jitsh.db");
    if !store.is_dir() || !db.is_file() {
        return Ok(None);
    }
    let signer = crate::service::ports::Signer::load_existing(store)?;
    let bad = crate::service::sqlite::SqliteStore::tampered_requests(&db, &signer.store_sealer())
        .map_err(|e| e.to_string())?;
    Ok(bad.first().map(|id| crate::audit::Finding {
        at: Location {
            file: db.display().to_string(),
            line: 0,
        },
        seq: None,
        kind: crate::audit::FindingKind::Store,
        reason: format!(
            "request `{id}` was changed in the database outside the service: its seal does not \
             match ({} such request(s) in all)",
            bad.len()
        ),
    }))
}

fn repair(a: RepairArgs) -> ExitCode {
    let signer = match crate::service::ports::Signer::load_existing(&a.state) {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    let actor = std::env::var("USER").unwrap_or_else(|_| "local".into());
    match crate::service::ports::repair_audit(&a.state, &signer, &actor) {
        Ok(Some(found)) => {
            println!("re-anchored `{}`: {found}", a.state.join("audit").display());
            ExitCode::SUCCESS
        }
        Ok(None) => {
            println!("the log matches its store; nothing to repair");
            ExitCode::SUCCESS
        }
        Err(crate::service::ports::OpenAuditError::Locked(path)) => fail(format!(
            "audit log `{path}` is in use: stop `jitsh serve` on this state folder first"
        )),
        Err(e) => fail(e),
    }
}

fn write_intact(out: &mut impl Write, s: &crate::audit::Summary) -> std::io::Result<()> {
    writeln!(
        out,
        "intact: {}, {}, last seq {}",
        super::common::plural(s.records, "record"),
        super::common::plural(s.checkpoints, "checkpoint"),
        s.last_seq
    )?;
    if s.unsealed > 0 {
        if s.unsealed == 1 {
            writeln!(
                out,
                "note: the last record is not yet covered by a checkpoint"
            )?;
        } else {
            writeln!(
                out,
                "note: the last {} records are not yet covered by a checkpoint",
                s.unsealed
            )?;
        }
    }
    for seq in &s.torn_sealed {
        writeln!(
            out,
            "note: seq {seq} records a torn write found and set aside when the log was reopened"
        )?;
    }
    Ok(())
}

/// The trust-key file format lives in [`keys::parse_trust_key`].
fn load_trust_key(path: &Path) -> Result<keys::AuditVerifyKey, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read trust key `{}`: {e}", path.display()))?;
    keys::parse_trust_key(&text).map_err(|e| format!("`{}`: {e}", path.display()))
}

/// Read every record; lines that are not records are reported on stderr and skipped.
fn load_records(files: &[PathBuf]) -> Result<Vec<Record>, String> {
    let paths = expand_paths(files).map_err(|e| e.to_string())?;
    let mut records = Vec::new();
    for_each_record(&paths, |at: Location, r| match r {
        Ok(r) => records.push(r),
        Err(e) => eprintln!("jitsh: skipping {at}: {e} (run `jitsh audit verify`)"),
    })
    .map_err(|e| e.to_string())?;
    Ok(records)
}

fn search_cmd(a: SearchArgs) -> ExitCode {
    let filter = match build_filter(&a) {
        Ok(f) => f,
        Err(e) => return fail(e),
    };
    let records = match load_records(&a.files) {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
    let hits = search(&records, &filter);
    let mut out = std::io::stdout().lock();
    if a.json {
        for hit in &hits {
            let related: Vec<&Record> =
                hit.related.iter().filter_map(|&i| records.get(i)).collect();
            let line = serde_json::json!({"record": records.get(hit.index), "related": related});
            let _ = writeln!(out, "{}", export::json_one_line(&line.to_string()));
        }
    } else {
        let _ = write_table(&mut out, &records, &hits);
    }
    if hits.is_empty() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

fn build_filter(a: &SearchArgs) -> Result<Filter, String> {
    let time = |t: &Option<String>| t.as_deref().map(parse_time).transpose();
    Ok(Filter {
        user: a.user.clone(),
        task: a.task.clone(),
        param: a.param.as_ref().map(|p| match p.split_once('=') {
            Some((n, v)) => (n.trim_start_matches('-').to_owned(), Some(v.to_owned())),
            None => (p.trim_start_matches('-').to_owned(), None),
        }),
        rule: a.rule.clone(),
        decision: a
            .decision
            .as_deref()
            .map(parse_decision)
            .transpose()
            .map_err(|e| e.to_string())?,
        since: time(&a.since).map_err(|e| e.to_string())?,
        until: time(&a.until).map_err(|e| e.to_string())?,
        session: a.session.clone(),
        request: a.request.clone(),
        unreviewed: a.unreviewed,
    })
}

/// A table with one row per match; a decision's request events follow it, indented.
fn write_table(
    out: &mut impl Write,
    records: &[Record],
    hits: &[crate::audit::search::Hit],
) -> std::io::Result<()> {
    let mut rows: Vec<[String; 7]> = vec![[
        "SEQ".into(),
        "TIME".into(),
        "ACTOR".into(),
        "ACTION".into(),
        "SUBJECT".into(),
        "OUTCOME".into(),
        "DETAILS".into(),
    ]];
    let row = |r: &Record, indent: bool| -> [String; 7] {
        [
            if indent {
                format!("  > {}", r.seq)
            } else {
                r.seq.to_string()
            },
            // Records carry what requesters and gates wrote: escaped for the terminal.
            esc(&r.time),
            esc(&r.actor),
            esc(&r.action),
            esc(&r.subject),
            esc(&r.outcome),
            summary(r),
        ]
    };
    for hit in hits {
        if let Some(r) = records.get(hit.index) {
            rows.push(row(r, false));
        }
        for r in hit.related.iter().filter_map(|&i| records.get(i)) {
            rows.push(row(r, true));
        }
    }
    let mut widths = [0usize; 6];
    for r in &rows {
        for (w, cell) in widths.iter_mut().zip(r.iter()) {
            *w = (*w).max(cell.chars().count());
        }
    }
    for r in &rows {
        let mut line = String::new();
        for (cell, w) in r.iter().zip(widths.iter()) {
            line.push_str(&format!("{cell:<w$}  "));
        }
        if let Some(last) = r.last() {
            line.push_str(last);
        }
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(())
}

/// One-line details: a decision's line and per-command verdicts, else the details JSON.
fn summary(r: &Record) -> String {
    use serde_json::Value;
    let text = if r.action == crate::audit::search::GATE_DECISION {
        let inv = crate::audit::decision::invocations(r)
            .iter()
            .map(|i| {
                let f = |k| i.get(k).and_then(Value::as_str).unwrap_or("-");
                format!("{}:{}:{}", f("name"), f("rule"), f("decision"))
            })
            .collect::<Vec<_>>()
            .join(" ");
        format!("{} [{inv}]", r.detail_str("line").unwrap_or_default())
    } else {
        Value::Object(r.details.clone()).to_string()
    };
    let clean = esc(&text);
    if clean.chars().count() > 100 {
        clean.chars().take(97).collect::<String>() + "..."
    } else {
        clean
    }
}

/// Every field comes from the log, which gates and users feed: control characters are shown
/// as pictures (as in the other one-line exports) and whatever else can redraw the terminal
/// (bidi overrides, zero-width characters) is escaped.
fn esc(text: &str) -> String {
    crate::text::escape(&export::printable(text)).into_owned()
}

fn export_cmd(a: ExportArgs) -> ExitCode {
    if let (Some(url), None) = (&a.from, a.format) {
        return export_postgres(url);
    }
    let records = match &a.from {
        Some(url) => postgres_records(url),
        None => load_records(&a.files),
    };
    let records = match records {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
    let host = crate::audit::transport::syslog::hostname();
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for r in &records {
        let line = match a.format.unwrap_or(Format::Jsonl) {
            Format::Jsonl => export::json_one_line(&serde_json::to_string(r).unwrap_or_default()),
            Format::Cef => export::to_cef(r, env!("CARGO_PKG_VERSION")),
            Format::Syslog => export::to_syslog(r, &host),
        };
        if writeln!(out, "{line}").is_err() {
            // Closed pipe (e.g. `| head`): stop quietly.
            return ExitCode::SUCCESS;
        }
    }
    let _ = out.flush();
    ExitCode::SUCCESS
}

/// The chain of a PostgreSQL store as log lines, byte for byte as stored and hashed.
fn export_postgres(url: &str) -> ExitCode {
    let (_rt, pg) = match super::serve::open_postgres(url) {
        Ok(p) => p,
        Err(e) => return fail(e),
    };
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let written = pg.export_chain(&mut out).and_then(|n| {
        out.flush()
            .map(|()| n)
            .map_err(|e| crate::service::store::StoreError::Backend(e.to_string()))
    });
    match written {
        Ok(n) => {
            eprintln!("{n} records exported");
            ExitCode::SUCCESS
        }
        Err(e) => fail(format!("export failed: {e}")),
    }
}

/// Every record of a PostgreSQL store's chain, parsed (for the CEF and syslog exports).
fn postgres_records(url: &str) -> Result<Vec<Record>, String> {
    let (_rt, pg) = super::serve::open_postgres(url)?;
    let mut lines = Vec::new();
    pg.export_chain(&mut lines).map_err(|e| e.to_string())?;
    lines
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| {
            crate::audit::chain::decode(l)
                .map(|(r, _)| r)
                .map_err(|e| format!("a record in the chain does not decode: {e}"))
        })
        .collect()
}

fn forward(a: ForwardArgs) -> ExitCode {
    let target: ForwardTarget = match a.to.parse() {
        Ok(t) => t,
        Err(e) => return fail(e),
    };
    let state = a.state.clone().unwrap_or_else(|| {
        a.files
            .first()
            .map(|f| {
                if f.is_dir() {
                    f.clone()
                } else {
                    f.parent().map(Path::to_path_buf).unwrap_or_default()
                }
            })
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or_else(|| PathBuf::from("."))
    });
    let records = match load_records(&a.files) {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
    let mut fwd = match SyslogForwarder::open(target, &state) {
        Ok(f) => f,
        Err(e) => return fail(e),
    };
    match fwd.forward(&records) {
        Ok(n) => {
            println!(
                "delivered {n} records; last delivered seq {}",
                fwd.cursor().unwrap_or(0)
            );
            ExitCode::SUCCESS
        }
        Err(e @ crate::audit::ForwardError::Unreachable { .. }) => {
            eprintln!("jitsh: {e}");
            ExitCode::from(1)
        }
        Err(e) => fail(e),
    }
}

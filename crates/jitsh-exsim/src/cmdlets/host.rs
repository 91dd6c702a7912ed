//! Host and utility cmdlets: dates, console output and input, sleeping, bulk output, exit.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use super::{cmdlet_names, cols, id_matches, number, s};
use crate::format::{Obj, View};
use crate::lang::{Bound, Value};
use crate::session::{Flow, Session, Stop};
use crate::Input;

// ---- host and utility cmdlets ------------------------------------------------------------

pub(super) fn get_date(_: &mut Session, b: &Bound, _: Flow) -> Result<Flow, Stop> {
    let now = chrono::Utc::now();
    let text = match b.str("Format").as_deref() {
        Some("o") | Some("s") | Some("u") => {
            now.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
        }
        _ => now.format("%A, %B %-d, %Y %-I:%M:%S %p").to_string(),
    };
    Ok(Flow::Text(vec![String::new(), text, String::new()]))
}

pub(super) fn write_host(ses: &mut Session, b: &Bound, input: Flow) -> Result<Flow, Stop> {
    let mut text = b
        .get("Object")
        .map(|v| {
            v.strings()
                .join(&b.str("Separator").unwrap_or_else(|| " ".into()))
        })
        .unwrap_or_default();
    if let Flow::Text(lines) = input {
        text = lines.join(" ");
    }
    if !b.flag("NoNewline") {
        text.push('\n');
    }
    ses.term.write(&text)?;
    Ok(Flow::Nothing)
}

pub(super) fn read_host(ses: &mut Session, b: &Bound, _: Flow) -> Result<Flow, Stop> {
    let prompt = b
        .str("Prompt")
        .map(|p| format!("{p}: "))
        .unwrap_or_default();
    let (count, seen) = (ses.interrupt.clone(), ses.seen);
    let stop = move || count.count() != seen;
    if b.flag("AsSecureString") || b.flag("MaskInput") {
        return match ses.term.read_secret(&prompt, &stop)? {
            Input::Eof => Err("Read-Host was stopped: the input ended.".into()),
            Input::Interrupted => Err(Stop::Interrupted),
            Input::Line(_) if b.flag("AsSecureString") => {
                Ok(Flow::Text(vec!["System.Security.SecureString".into()]))
            }
            // `-MaskInput` returns the text; it is not echoed back.
            Input::Line(_) => Ok(Flow::Nothing),
        };
    }
    ses.term.write(&prompt)?;
    ses.term.flush()?;
    match ses.term.read_line(Some(&stop))? {
        Input::Line(line) => Ok(Flow::Text(vec![line])),
        Input::Interrupted => Err(Stop::Interrupted),
        Input::Eof => Err("Read-Host was stopped: the input ended.".into()),
    }
}

/// Sleep in short steps so Ctrl-C is noticed quickly.
fn pause(ses: &Session, total: Duration) -> Result<(), Stop> {
    let deadline = Instant::now() + total;
    loop {
        if ses.interrupted() {
            return Err(Stop::Interrupted);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(());
        }
        std::thread::sleep(left.min(Duration::from_millis(20)));
    }
}

pub(super) fn start_sleep(ses: &mut Session, b: &Bound, _: Flow) -> Result<Flow, Stop> {
    let total = match (number(b, "Seconds")?, number(b, "Milliseconds")?) {
        (Some(secs), _) => Duration::from_secs(secs),
        (None, Some(ms)) => Duration::from_millis(ms),
        (None, None) => return Err(
            "Cannot process command because of one or more missing mandatory parameters: Seconds."
                .into(),
        ),
    };
    pause(ses, total)?;
    Ok(Flow::Nothing)
}

/// Largest `Get-LargeOutput -Megabytes` value.
const MAX_LARGE_OUTPUT_MB: u64 = 4096;

pub(super) fn get_large_output(ses: &mut Session, b: &Bound, _: Flow) -> Result<Flow, Stop> {
    let mb = number(b, "Megabytes")?.unwrap_or(1);
    if mb > MAX_LARGE_OUTPUT_MB {
        return Err(Stop::Error(format!(
            "Megabytes `{mb}` is more than the limit of {MAX_LARGE_OUTPUT_MB}."
        )));
    }
    let total = mb * 1024 * 1024;
    let mut written: u64 = 0;
    let mut line_no: u64 = 0;
    let mut chunk = String::with_capacity(70 * 1024);
    while written < total {
        chunk.clear();
        while chunk.len() < 64 * 1024 {
            line_no += 1;
            let user = line_no % 97;
            let trace = line_no.wrapping_mul(0x9e37_79b9_7f4a_7c15);
            // Writing into a String cannot fail.
            let _ = writeln!(
                chunk,
                "{line_no:08} Received  user{user:02}@contoso.com{:12} Delivered to mailbox; trace id {trace:016x}",
                ""
            );
        }
        let room = usize::try_from(total - written).unwrap_or(usize::MAX);
        if chunk.len() > room {
            // The last line is shortened so the output is exactly the size asked for and still
            // ends with a newline (the text is ASCII, so any cut is a character boundary).
            chunk.truncate(room.saturating_sub(1));
            chunk.push('\n');
        }
        let part = chunk.as_str();
        if part.is_empty() {
            break;
        }
        ses.term.write(part)?;
        written += part.len() as u64;
        if ses.interrupted() {
            return Err(Stop::Interrupted);
        }
    }
    Ok(Flow::Nothing)
}

pub(super) fn exit(_: &mut Session, b: &Bound, _: Flow) -> Result<Flow, Stop> {
    let code = match b.get("Code") {
        None => 0,
        Some(Value::Int(n)) => u8::try_from(n.rem_euclid(256)).unwrap_or(1),
        Some(other) => {
            return Err(Stop::Error(format!(
                "Cannot convert value \"{}\" to type \"System.Int32\".",
                other.display()
            )))
        }
    };
    Err(Stop::Exit(code))
}

pub(super) fn get_command(_: &mut Session, b: &Bound, _: Flow) -> Result<Flow, Stop> {
    let pattern = b.str("Name");
    let out = cmdlet_names()
        .into_iter()
        .filter(|n| pattern.as_ref().is_none_or(|p| id_matches(n, p)))
        .map(|n| {
            Obj::new(
                "CommandInfo",
                View::Table(cols(&["CommandType", "Name", "Source"])),
            )
            .with("CommandType", s("Cmdlet"))
            .with("Name", s(n))
            .with(
                "Source",
                s(
                    if n.contains("Mailbox")
                        || n.contains("Move")
                        || n.contains("Transport")
                        || n.contains("Audit")
                    {
                        "ExchangeOnlineManagement"
                    } else {
                        "Microsoft.PowerShell.Utility"
                    },
                ),
            )
        })
        .collect();
    Ok(Flow::Objects(out))
}

pub(super) fn clear_host(ses: &mut Session, _: &Bound, _: Flow) -> Result<Flow, Stop> {
    ses.term.write("\x1b[H\x1b[2J")?;
    Ok(Flow::Nothing)
}

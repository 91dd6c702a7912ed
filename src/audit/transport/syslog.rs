//! Forwarding audit records to a syslog collector (RFC 5424), at least once and in order.
//!
//! Records to send are first appended to a spool file in the state directory
//! (`audit-forward.spool`, JSON Lines); [`SyslogForwarder::flush`] sends the spool in order and
//! then records the last delivered seq in `audit-forward.cursor` (written atomically). When the
//! collector is down the spool keeps growing and is sent, in order, once it is back. Records
//! with a seq at or below the cursor are never spooled again, so re-forwarding a log file sends
//! only what is new.
//!
//! TCP uses octet-counting framing (RFC 6587 3.4.1). Syslog over TCP has no acknowledgements:
//! "delivered" means written to a connection that was open; before each flush a connection the
//! collector has closed is detected and replaced, so a collector restart does not swallow the
//! spool. A crash between sending and saving the cursor sends records again (at least once).
//! UDP gives no delivery signal at all; use it only where loss is acceptable.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpStream, ToSocketAddrs, UdpSocket};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::audit::chain::Record;
use crate::audit::export::to_syslog;

const SPOOL_FILE: &str = "audit-forward.spool";
const CURSOR_FILE: &str = "audit-forward.cursor";
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// Where to send: `tcp://HOST:PORT` or `udp://HOST:PORT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ForwardTarget {
    Tcp(String),
    Udp(String),
}

impl std::str::FromStr for ForwardTarget {
    type Err = ForwardError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || ForwardError::BadTarget(s.to_owned());
        let (scheme, addr) = s.split_once("://").ok_or_else(bad)?;
        if addr.is_empty() || !addr.contains(':') {
            return Err(bad());
        }
        match scheme {
            "tcp" => Ok(ForwardTarget::Tcp(addr.to_owned())),
            "udp" => Ok(ForwardTarget::Udp(addr.to_owned())),
            _ => Err(bad()),
        }
    }
}

impl std::fmt::Display for ForwardTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ForwardTarget::Tcp(a) => write!(f, "tcp://{a}"),
            ForwardTarget::Udp(a) => write!(f, "udp://{a}"),
        }
    }
}

/// Why forwarding failed.
#[derive(Debug, thiserror::Error)]
pub enum ForwardError {
    #[error("`{0}` is not a collector address: use tcp://HOST:PORT or udp://HOST:PORT")]
    BadTarget(String),
    #[error("collector `{target}` is unreachable ({message}); {pending} records stay spooled")]
    Unreachable {
        target: String,
        message: String,
        pending: usize,
    },
    #[error("forwarding state `{path}`: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("forwarding state `{path}` is damaged: {reason}")]
    Damaged { path: String, reason: String },
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> ForwardError + '_ {
    move |source| ForwardError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Sends audit records to a syslog collector through a spool.
#[derive(Debug)]
pub struct SyslogForwarder {
    target: ForwardTarget,
    hostname: String,
    spool: PathBuf,
    cursor_path: PathBuf,
    cursor: Option<u64>,
    /// Highest seq in the spool (so records are spooled once, in order).
    spooled_upto: Option<u64>,
    tcp: Option<TcpStream>,
}

impl SyslogForwarder {
    /// Use (or create) the spool and cursor in `state_dir`.
    pub fn open(target: ForwardTarget, state_dir: &Path) -> Result<Self, ForwardError> {
        std::fs::create_dir_all(state_dir).map_err(io_err(state_dir))?;
        let spool = state_dir.join(SPOOL_FILE);
        let cursor_path = state_dir.join(CURSOR_FILE);
        let cursor = match std::fs::read_to_string(&cursor_path) {
            Ok(text) => Some(
                text.trim()
                    .parse::<u64>()
                    .map_err(|_| ForwardError::Damaged {
                        path: cursor_path.display().to_string(),
                        reason: format!("`{}` is not a seq", text.trim()),
                    })?,
            ),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(io_err(&cursor_path)(e)),
        };
        let mut forwarder = SyslogForwarder {
            target,
            hostname: hostname(),
            spool,
            cursor_path,
            cursor,
            spooled_upto: None,
            tcp: None,
        };
        forwarder.spooled_upto = forwarder.read_spool()?.last().map(|r| r.seq);
        Ok(forwarder)
    }

    /// The last seq delivered, if any.
    pub fn cursor(&self) -> Option<u64> {
        self.cursor
    }

    /// Records waiting in the spool.
    pub fn pending(&self) -> Result<usize, ForwardError> {
        Ok(self.read_spool()?.len())
    }

    /// Spool records (durably); those already delivered or spooled are skipped.
    pub fn enqueue<'a>(
        &mut self,
        records: impl IntoIterator<Item = &'a Record>,
    ) -> Result<usize, ForwardError> {
        let floor = self.spooled_upto.max(self.cursor);
        let mut out = Vec::new();
        let mut upto = self.spooled_upto;
        for r in records {
            if floor.is_some_and(|f| r.seq <= f) || upto.is_some_and(|u| r.seq <= u) {
                continue;
            }
            let line = serde_json::to_string(r).map_err(|e| ForwardError::Damaged {
                path: self.spool.display().to_string(),
                reason: e.to_string(),
            })?;
            out.extend_from_slice(line.as_bytes());
            out.push(b'\n');
            upto = Some(r.seq);
        }
        if out.is_empty() {
            return Ok(0);
        }
        let mut file = OpenOptions::new()
            .create(true)
            .mode(0o600)
            .append(true)
            .open(&self.spool)
            .map_err(io_err(&self.spool))?;
        file.write_all(&out).map_err(io_err(&self.spool))?;
        file.sync_data().map_err(io_err(&self.spool))?;
        let added = out.iter().filter(|&&b| b == b'\n').count();
        self.spooled_upto = upto;
        Ok(added)
    }

    /// Send the spool in order; returns how many records were delivered. When the collector
    /// cannot be reached, what was not sent stays spooled and the error says how much.
    pub fn flush(&mut self) -> Result<usize, ForwardError> {
        let records: Vec<Record> = self
            .read_spool()?
            .into_iter()
            .filter(|r| self.cursor.is_none_or(|c| r.seq > c))
            .collect();
        if records.is_empty() {
            return self.clear_spool().map(|()| 0);
        }
        let mut sent = 0usize;
        let mut failure = None;
        for r in &records {
            match self.send_one(&to_syslog(r, &self.hostname)) {
                Ok(()) => {
                    sent += 1;
                    self.cursor = Some(r.seq);
                }
                Err(e) => {
                    self.tcp = None;
                    failure = Some(e.to_string());
                    break;
                }
            }
        }
        if sent > 0 {
            self.save_cursor()?;
        }
        match failure {
            Some(message) => Err(ForwardError::Unreachable {
                target: self.target.to_string(),
                message,
                pending: records.len() - sent,
            }),
            None => {
                self.clear_spool()?;
                Ok(sent)
            }
        }
    }

    /// Enqueue and flush in one step.
    pub fn forward<'a>(
        &mut self,
        records: impl IntoIterator<Item = &'a Record>,
    ) -> Result<usize, ForwardError> {
        self.enqueue(records)?;
        self.flush()
    }

    fn send_one(&mut self, message: &str) -> std::io::Result<()> {
        match &self.target {
            ForwardTarget::Udp(addr) => {
                let socket = UdpSocket::bind(("0.0.0.0", 0))?;
                socket.send_to(message.as_bytes(), addr.as_str())?;
                Ok(())
            }
            ForwardTarget::Tcp(addr) => {
                if self.tcp.as_ref().is_some_and(|s| !connection_open(s)) {
                    self.tcp = None;
                }
                if self.tcp.is_none() {
                    self.tcp = Some(connect(addr)?);
                }
                let Some(stream) = self.tcp.as_mut() else {
                    return Err(std::io::Error::other("no connection"));
                };
                let frame = format!("{} {message}", message.len());
                stream.write_all(frame.as_bytes())?;
                stream.flush()
            }
        }
    }

    fn read_spool(&self) -> Result<Vec<Record>, ForwardError> {
        let file = match File::open(&self.spool) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_err(&self.spool)(e)),
        };
        let mut out = Vec::new();
        for (i, line) in BufReader::new(file).lines().enumerate() {
            let line = line.map_err(io_err(&self.spool))?;
            if line.is_empty() {
                continue;
            }
            let record: Record =
                serde_json::from_str(&line).map_err(|e| ForwardError::Damaged {
                    path: self.spool.display().to_string(),
                    reason: format!("line {}: {e}", i + 1),
                })?;
            out.push(record);
        }
        Ok(out)
    }

    fn clear_spool(&mut self) -> Result<(), ForwardError> {
        match OpenOptions::new().write(true).open(&self.spool) {
            Ok(f) => {
                f.set_len(0).map_err(io_err(&self.spool))?;
                f.sync_all().map_err(io_err(&self.spool))?;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(&self.spool)(e)),
        }
        self.spooled_upto = None;
        Ok(())
    }

    /// Write the cursor to a temporary file and rename it over the old one.
    fn save_cursor(&self) -> Result<(), ForwardError> {
        let Some(seq) = self.cursor else {
            return Ok(());
        };
        crate::atomic_write::write(
            &self.cursor_path,
            format!("{seq}\n").as_bytes(),
            crate::atomic_write::Mode::Private,
        )
        .map_err(io_err(&self.cursor_path))
    }
}

fn connect(addr: &str) -> std::io::Result<TcpStream> {
    let mut last = std::io::Error::other(format!("`{addr}` resolves to no address"));
    for sa in addr.to_socket_addrs()? {
        match TcpStream::connect_timeout(&sa, CONNECT_TIMEOUT) {
            Ok(s) => {
                s.set_write_timeout(Some(WRITE_TIMEOUT))?;
                return Ok(s);
            }
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// Whether the collector still holds the connection open (it never sends; EOF means closed).
fn connection_open(stream: &TcpStream) -> bool {
    if stream.set_nonblocking(true).is_err() {
        return false;
    }
    let mut byte = [0u8; 1];
    let open = match stream.peek(&mut byte) {
        Ok(0) => false,
        Ok(_) => true,
        Err(e) => e.kind() == std::io::ErrorKind::WouldBlock,
    };
    stream.set_nonblocking(false).is_ok() && open
}

/// This host's name for syslog headers (`-` when unknown).
pub(crate) fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "-".into())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "test failures are panics")]
mod tests {
    use super::*;

    #[test]
    fn targets_parse() {
        assert_eq!(
            "tcp://127.0.0.1:514".parse::<ForwardTarget>().unwrap(),
            ForwardTarget::Tcp("127.0.0.1:514".into())
        );
        assert!("udp://h:1".parse::<ForwardTarget>().is_ok());
        for bad in ["127.0.0.1:514", "http://h:1", "tcp://", "tcp://host"] {
            assert!(bad.parse::<ForwardTarget>().is_err(), "{bad}");
        }
    }
}

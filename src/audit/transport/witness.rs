//! A witness off the host: every checkpoint the writer syncs is also sent to a syslog
//! collector, so a log (and its anchor) rewritten on the host still disagrees with the signed
//! heads the collector holds.
//!
//! The writer hands each checkpoint line to [`Witness::checkpoint`], which never blocks it: a
//! thread of its own spools the record (`audit-forward.spool` in the witness folder) and sends it
//! in order ([`SyslogForwarder`]). What the collector did not take stays spooled and goes out
//! with the next checkpoint, or at close.

use std::path::Path;
use std::sync::mpsc::{self, Sender};
use std::thread::JoinHandle;

use crate::audit::chain;
use crate::audit::log::Witness;
use crate::audit::transport::syslog::{ForwardError, ForwardTarget, SyslogForwarder};

/// Checkpoints forwarded to a syslog collector.
#[derive(Debug)]
pub(crate) struct SyslogWitness {
    tx: Option<Sender<Vec<u8>>>,
    worker: Option<JoinHandle<()>>,
}

impl SyslogWitness {
    /// Forward to `target`, spooling in `dir`.
    pub fn start(target: ForwardTarget, dir: &Path) -> Result<SyslogWitness, ForwardError> {
        let mut forwarder = SyslogForwarder::open(target, dir)?;
        let (tx, rx) = mpsc::channel::<Vec<u8>>();
        let worker = std::thread::Builder::new()
            .name("jitsh-witness".into())
            .spawn(move || {
                for line in rx {
                    let Ok((record, _)) = chain::decode(&line) else {
                        continue;
                    };
                    if let Err(e) = forwarder.forward(std::iter::once(&record)) {
                        tracing::warn!("audit checkpoint not yet sent to the witness: {e}");
                    }
                }
                // Closing: one last try for anything still spooled.
                if let Err(e) = forwarder.flush() {
                    tracing::warn!("audit checkpoints stay spooled for the witness: {e}");
                }
            })
            .map_err(|e| ForwardError::Damaged {
                path: dir.display().to_string(),
                reason: format!("the witness thread could not start: {e}"),
            })?;
        Ok(SyslogWitness {
            tx: Some(tx),
            worker: Some(worker),
        })
    }
}

impl Witness for SyslogWitness {
    fn checkpoint(&self, line: &[u8]) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(line.to_vec());
        }
    }
}

impl Drop for SyslogWitness {
    fn drop(&mut self) {
        drop(self.tx.take());
        if let Some(worker) = self.worker.take() {
            let _ = worker.join();
        }
    }
}

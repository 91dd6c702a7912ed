//! The audit log record format, the hash chain, checkpoints, and verification over bytes.
//!
//! Pure: no I/O and no clock; times are passed in as RFC 3339 text.
//!
//! # Format (`jitsh-audit/1`)
//!
//! JSON Lines, one record per line, keys in this order and nothing else:
//!
//! ```text
//! {"seq":N,"time":"RFC3339","actor":"..","action":"..","subject":"..","outcome":"..","details":{..},"prev":"<hex>","hash":"<hex>"}
//! ```
//!
//! - `seq` starts at 1 and grows by one per record, across rotated files.
//! - `hash` is the lowercase hex SHA-256 of the line's exact bytes with the trailing
//!   `,"hash":"<64 hex>"` removed (so the hashed bytes are the JSON object without `hash`). No
//!   canonicalisation is needed: the writer's bytes are what is hashed and verified.
//! - `prev` is the previous record's `hash`; the genesis record's `prev` is 64 zeros. The first
//!   record of a rotated file continues the chain of the previous file.
//! - Record 1 is the genesis (`action` `audit.genesis`): `details` names the format, the start
//!   time and the checkpoint key id (`kid`, or null for a log without a signing key).
//! - Checkpoints (`action` `audit.checkpoint`) are written every N records, at rotation, when a log
//!   is reopened after an unclean stop and at clean shutdown. `details`: `kid`, `head_seq`,
//!   `head_hash` (the previous record: the checkpoint's own `seq - 1` and `prev`), `reason`, and
//!   `sig`, the base64url Ed25519 signature over [`checkpoint_message`]. A signature covers the
//!   whole chain up to the head it names; a checkpoint's own fields are covered by the next one.
//! - `audit.torn` records note a torn last record found (and set aside) when the log was opened,
//!   or the bytes a write failed for lack of space left behind (set aside when writing resumed).
//! - `audit.resumed` follows a full disk: the log was unavailable from `from` to `to`.
//! - `audit.abandoned` says the action of record `details.seq` did not take effect.
//! - Every start of the writer writes a checkpoint (`reason` `open`). After a checkpoint with
//!   `reason` `shutdown` (a clean stop) the next record other than `audit.torn` must be a
//!   checkpoint: anything else was appended by hand (`appended`).
//!
//! Verification ([`Verifier`]) stops at the first bad record and says why: `malformed`,
//! `altered` (hash mismatch, or `prev` not matching), `removed` (seq gap), `reordered`,
//! `inserted` (seq repeats), `forged` (checkpoint signature fails: records were inserted or
//! rewritten with a recomputed chain), `torn` (incomplete last record), `appended` (records after
//! a clean shutdown without the next start's checkpoint), `unsealed` (records after the last
//! signed checkpoint: appended without the key, or the writer did not stop cleanly).

use std::borrow::Cow;

use ring::digest::{Context, SHA256};
use serde::{Deserialize, Serialize};

use crate::audit::keys::{AuditSigner, AuditVerifyKey};
use crate::audit::AuditEvent;

/// Name of the record format, written in the genesis record.
pub(crate) const FORMAT: &str = "jitsh-audit/1";
pub(crate) const GENESIS_ACTION: &str = "audit.genesis";
pub const CHECKPOINT_ACTION: &str = "audit.checkpoint";
pub const TORN_ACTION: &str = "audit.torn";
/// Records found after the anchored head when the writer reopened after a crash.
pub const UNANCHORED_ACTION: &str = "audit.unanchored";
/// The log could be written again after a full disk: `details` name the outage (`from`, `to`,
/// `reason`, `refused`: appends refused meanwhile).
pub const RESUMED_ACTION: &str = "audit.resumed";
/// An action whose record was written but which did not take effect (its store step failed
/// after the record was synced): `details.seq` names that record.
pub const ABANDONED_ACTION: &str = "audit.abandoned";
/// A person re-anchored a log that did not match its store (`jitsh audit repair`).
pub const REPAIR_ACTION: &str = "audit.repair";
/// Actor and subject of the log's own records.
pub(crate) const SELF_ACTOR: &str = "jitsh";
pub(crate) const SELF_SUBJECT: &str = "audit-log";

/// `,"hash":"` + 64 hex digits + `"}`.
const HASH_SUFFIX_LEN: usize = 9 + 64 + 2;
const HASH_KEY: &[u8] = b",\"hash\":\"";
/// Domain separation for checkpoint signatures.
const CHECKPOINT_DOMAIN: &[u8] = b"jitsh-audit/1 checkpoint\0";

/// A SHA-256 chain hash.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ChainHash(pub [u8; 32]);

impl ChainHash {
    /// The `prev` of the genesis record.
    pub const ZERO: ChainHash = ChainHash([0; 32]);

    pub fn to_hex(&self) -> String {
        hex(&self.0)
    }

    /// Whether `text` is this hash in lowercase hex (without allocating).
    pub fn eq_hex(&self, text: &str) -> bool {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        text.len() == 64
            && self
                .0
                .iter()
                .zip(text.as_bytes().chunks(2))
                .all(|(b, pair)| {
                    pair == [DIGITS[usize::from(b >> 4)], DIGITS[usize::from(b & 0x0f)]]
                })
    }

    pub fn from_hex(text: &str) -> Option<ChainHash> {
        hex_decode(text)?.try_into().ok().map(ChainHash)
    }
}

impl std::fmt::Debug for ChainHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl std::fmt::Display for ChainHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// One parsed record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Record {
    pub seq: u64,
    pub time: String,
    pub actor: String,
    pub action: String,
    pub subject: String,
    pub outcome: String,
    pub details: serde_json::Map<String, serde_json::Value>,
    pub prev: String,
    pub hash: String,
}

impl Record {
    /// The event this record carries.
    pub fn event(&self) -> AuditEvent {
        AuditEvent {
            time: self.time.clone(),
            actor: self.actor.clone(),
            action: self.action.clone(),
            subject: self.subject.clone(),
            outcome: self.outcome.clone(),
            details: self.details.clone(),
        }
    }

    /// A string detail, if present.
    pub fn detail_str(&self, key: &str) -> Option<&str> {
        self.details.get(key).and_then(serde_json::Value::as_str)
    }
}

/// The bytes hashed for a record: the record without `hash`, in writing order.
#[derive(Serialize)]
struct Body<'a> {
    seq: u64,
    time: &'a str,
    actor: &'a str,
    action: &'a str,
    subject: &'a str,
    outcome: &'a str,
    details: &'a serde_json::Map<String, serde_json::Value>,
    prev: &'a str,
}

/// An encoded record: its line (with the trailing newline) and its hash.
#[derive(Debug, Clone)]
pub struct Encoded {
    pub line: Vec<u8>,
    pub hash: ChainHash,
}

/// Why a record could not be encoded or a line decoded.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ChainError {
    #[error("event could not be encoded as JSON: {0}")]
    Encode(String),
    #[error("line does not end with a `hash` field")]
    NoHash,
    #[error("line is not a valid record: {0}")]
    NotJson(String),
    #[error("stored hash {stored} does not match the record's content (hash {computed})")]
    HashMismatch { stored: String, computed: String },
}

impl ChainError {
    /// Whether the line is structurally broken (as a torn write leaves it) rather than altered.
    pub fn is_malformed(&self) -> bool {
        matches!(self, ChainError::NoHash | ChainError::NotJson(_))
    }
}

/// Encode `event` as record `seq` chained after `prev`.
pub fn encode(seq: u64, prev: &ChainHash, event: &AuditEvent) -> Result<Encoded, ChainError> {
    let prev_hex = prev.to_hex();
    let body = Body {
        seq,
        time: &event.time,
        actor: &event.actor,
        action: &event.action,
        subject: &event.subject,
        outcome: &event.outcome,
        details: &event.details,
        prev: &prev_hex,
    };
    let mut line = serde_json::to_vec(&body).map_err(|e| ChainError::Encode(e.to_string()))?;
    let hash = ChainHash(sha256(&[&line]));
    // Replace the closing brace with the hash field; the hashed bytes are the object without it.
    line.pop();
    line.extend_from_slice(HASH_KEY);
    line.extend_from_slice(hash.to_hex().as_bytes());
    line.extend_from_slice(b"\"}\n");
    Ok(Encoded { line, hash })
}

/// Decode and check one line (without its newline): the stored hash must match its bytes.
pub fn decode(line: &[u8]) -> Result<(Record, ChainHash), ChainError> {
    let (computed, stored) = hash_line(line)?;
    let record: Record =
        serde_json::from_slice(line).map_err(|e| ChainError::NotJson(e.to_string()))?;
    check_hash(&computed, stored, &record.hash)?;
    Ok((record, computed))
}

/// What verification needs of a record, borrowed from the line. Every field is still
/// type-checked; `details` must be an object but its entries are skipped.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct View<'a> {
    seq: u64,
    #[serde(borrow)]
    #[allow(dead_code, reason = "type-checked, not used")]
    time: Cow<'a, str>,
    #[serde(borrow)]
    #[allow(dead_code, reason = "type-checked, not used")]
    actor: Cow<'a, str>,
    #[serde(borrow)]
    action: Cow<'a, str>,
    #[serde(borrow)]
    #[allow(dead_code, reason = "type-checked, not used")]
    subject: Cow<'a, str>,
    #[serde(borrow)]
    #[allow(dead_code, reason = "type-checked, not used")]
    outcome: Cow<'a, str>,
    #[allow(dead_code, reason = "type-checked, not used")]
    details: AnyObject,
    #[serde(borrow)]
    prev: Cow<'a, str>,
    #[serde(borrow)]
    hash: Cow<'a, str>,
}

/// A JSON object whose entries are checked for syntax and dropped.
#[derive(Debug)]
struct AnyObject;

impl<'de> Deserialize<'de> for AnyObject {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = AnyObject;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<AnyObject, A::Error> {
                use serde::de::IgnoredAny;
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(AnyObject)
            }
        }
        d.deserialize_map(Visitor)
    }
}

/// [`decode`] without building the record: the verifier's fast path.
fn decode_view(line: &[u8]) -> Result<(View<'_>, ChainHash), ChainError> {
    let (computed, stored) = hash_line(line)?;
    let view: View<'_> =
        serde_json::from_slice(line).map_err(|e| ChainError::NotJson(e.to_string()))?;
    check_hash(&computed, stored, &view.hash)?;
    Ok((view, computed))
}

/// The hash of a line's bytes without its `hash` field, and the stored hex digits.
fn hash_line(line: &[u8]) -> Result<(ChainHash, &[u8]), ChainError> {
    let split = line
        .len()
        .checked_sub(HASH_SUFFIX_LEN)
        .ok_or(ChainError::NoHash)?;
    let (body, suffix) = line.split_at(split);
    let stored = suffix
        .strip_prefix(HASH_KEY)
        .and_then(|s| s.strip_suffix(b"\"}"))
        .ok_or(ChainError::NoHash)?;
    Ok((ChainHash(sha256(&[body, b"}"])), stored))
}

/// The stored hash (as found at the end of the line and as parsed) must be the computed one.
fn check_hash(computed: &ChainHash, stored: &[u8], parsed: &str) -> Result<(), ChainError> {
    let computed_hex = computed.to_hex();
    if stored != computed_hex.as_bytes() || parsed != computed_hex {
        return Err(ChainError::HashMismatch {
            stored: parsed.to_owned(),
            computed: computed_hex,
        });
    }
    Ok(())
}

/// The genesis event: names the format, the start time and the checkpoint key id.
pub fn genesis_event(kid: Option<&str>, time: &str) -> AuditEvent {
    let mut details = serde_json::Map::new();
    details.insert("format".into(), FORMAT.into());
    details.insert("start".into(), time.into());
    details.insert(
        "kid".into(),
        kid.map_or(serde_json::Value::Null, Into::into),
    );
    self_event(GENESIS_ACTION, time, details)
}

/// The bytes a checkpoint signature covers: the key id, and the head record's seq and hash.
pub(crate) fn checkpoint_message(kid: &str, head_seq: u64, head: &ChainHash) -> Vec<u8> {
    let mut msg = Vec::with_capacity(CHECKPOINT_DOMAIN.len() + 8 + 8 + kid.len() + 32);
    msg.extend_from_slice(CHECKPOINT_DOMAIN);
    msg.extend_from_slice(&(kid.len() as u64).to_be_bytes());
    msg.extend_from_slice(kid.as_bytes());
    msg.extend_from_slice(&head_seq.to_be_bytes());
    msg.extend_from_slice(&head.0);
    msg
}

/// A signed checkpoint over the head record (`head_seq`, `head`).
pub fn checkpoint_event(
    signer: &CheckpointSigner,
    head_seq: u64,
    head: &ChainHash,
    time: &str,
    reason: &str,
) -> AuditEvent {
    use base64::Engine as _;
    let sig = signer
        .pair
        .sign(&checkpoint_message(&signer.kid, head_seq, head));
    let mut details = serde_json::Map::new();
    details.insert("kid".into(), signer.kid.clone().into());
    details.insert("head_seq".into(), head_seq.into());
    details.insert("head_hash".into(), head.to_hex().into());
    details.insert("reason".into(), reason.into());
    details.insert(
        "sig".into(),
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(sig.as_ref())
            .into(),
    );
    self_event(CHECKPOINT_ACTION, time, details)
}

/// An `audit.torn` event: a torn record at `offset` of `file` was set aside.
pub(crate) fn torn_event(
    time: &str,
    file: &str,
    offset: u64,
    torn: &[u8],
    saved_as: &str,
) -> AuditEvent {
    let mut details = serde_json::Map::new();
    details.insert("file".into(), file.into());
    details.insert("offset".into(), offset.into());
    details.insert("length".into(), (torn.len() as u64).into());
    details.insert("sha256".into(), hex(&sha256(&[torn])).into());
    details.insert("saved_as".into(), saved_as.into());
    let mut event = self_event(TORN_ACTION, time, details);
    event.outcome = "error".into();
    event
}

pub(crate) fn self_event(
    action: &str,
    time: &str,
    details: serde_json::Map<String, serde_json::Value>,
) -> AuditEvent {
    AuditEvent {
        time: time.into(),
        actor: SELF_ACTOR.into(),
        action: action.into(),
        subject: SELF_SUBJECT.into(),
        outcome: "ok".into(),
        details,
    }
}

/// A signer ready to sign checkpoints (the key pair is expanded once).
#[derive(Debug)]
pub struct CheckpointSigner {
    kid: String,
    pair: ring::signature::Ed25519KeyPair,
}

impl CheckpointSigner {
    pub fn new(signer: &AuditSigner) -> Result<Self, crate::audit::keys::KeyError> {
        Ok(CheckpointSigner {
            kid: signer.kid.clone(),
            pair: signer.key_pair()?,
        })
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }
}

// ---------------------------------------------------------------------------------------------
// Verification

/// Where a line is: a file name as given, and its 1-based line number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Location {
    pub file: String,
    pub line: u64,
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

/// What is wrong with the first bad record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FindingKind {
    Malformed,
    Altered,
    Removed,
    Reordered,
    Inserted,
    Forged,
    Torn,
    Unsealed,
    Appended,
    /// The log does not match the head anchored in the service's store.
    Anchor,
    /// A session recording the log vouches for is missing or was changed.
    Recording,
    /// A request in the service's state database was changed outside the service.
    Store,
    Empty,
}

impl FindingKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FindingKind::Malformed => "malformed",
            FindingKind::Altered => "altered",
            FindingKind::Removed => "removed",
            FindingKind::Reordered => "reordered",
            FindingKind::Inserted => "inserted",
            FindingKind::Forged => "forged",
            FindingKind::Torn => "torn",
            FindingKind::Unsealed => "unsealed",
            FindingKind::Appended => "appended",
            FindingKind::Anchor => "anchor",
            FindingKind::Recording => "recording",
            FindingKind::Store => "store",
            FindingKind::Empty => "empty",
        }
    }
}

/// The first bad record: where, which seq (when readable), what and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    #[serde(flatten)]
    pub at: Location,
    pub seq: Option<u64>,
    pub kind: FindingKind,
    pub reason: String,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: ", self.at)?;
        if let Some(seq) = self.seq {
            write!(f, "seq {seq}: ")?;
        }
        write!(f, "{}: {}", self.kind.as_str(), self.reason)
    }
}

/// A verified log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub records: u64,
    pub checkpoints: u64,
    pub last_seq: u64,
    /// Hash of the last record (compared with the store's anchor).
    pub last_hash: String,
    /// Records after the last checkpoint (only non-zero with `allow_unsealed`).
    pub unsealed: u64,
    /// Seqs of `audit.torn` records: earlier crashes that were detected and sealed.
    pub torn_sealed: Vec<u64>,
}

/// Verification choices.
#[derive(Debug, Clone, Copy, Default)]
pub struct VerifyOptions {
    /// Accept records after the last checkpoint (a live log); they are counted, not trusted.
    pub allow_unsealed: bool,
}

/// Walks records in order (across files) and stops at the first bad one.
///
/// Feed every line with [`Verifier::push`], then call [`Verifier::finish`]. A problem is
/// sometimes only known one record later (a seq gap is a removal, or a reordering if the missing
/// seq comes next), so `push` may report a finding about an earlier line.
#[derive(Debug)]
pub(crate) struct Verifier<'k> {
    keys: &'k [AuditVerifyKey],
    options: VerifyOptions,
    head: Option<Head>,
    pending: Option<Pending>,
    records: u64,
    checkpoints: u64,
    /// First record after the last checkpoint.
    unsealed_from: Option<(Location, u64)>,
    unsealed: u64,
    torn_sealed: Vec<u64>,
    /// The last checkpoint was a clean shutdown's.
    after_shutdown: bool,
}

#[derive(Debug)]
struct Head {
    seq: u64,
    hash: ChainHash,
    at: Location,
}

#[derive(Debug)]
enum Pending {
    /// A record with a seq past the expected one; the next record tells removal from reordering.
    Gap { finding: Finding, expected: u64 },
    /// A malformed line: torn if nothing follows it, malformed otherwise.
    Broken { finding: Finding },
}

impl<'k> Verifier<'k> {
    pub fn new(keys: &'k [AuditVerifyKey], options: VerifyOptions) -> Self {
        Verifier {
            keys,
            options,
            head: None,
            pending: None,
            records: 0,
            checkpoints: 0,
            unsealed_from: None,
            unsealed: 0,
            torn_sealed: Vec::new(),
            after_shutdown: false,
        }
    }

    /// Check the next line. `terminated` says whether it ended with a newline (only the last
    /// line of a file can lack one).
    pub fn push(&mut self, at: Location, line: &[u8], terminated: bool) -> Result<(), Finding> {
        match self.pending.take() {
            None => {}
            Some(Pending::Broken { finding }) => return Err(finding),
            Some(Pending::Gap { finding, expected }) => {
                return Err(self.resolve_gap(finding, expected, line));
            }
        }
        if !terminated {
            return Err(Finding {
                at,
                seq: None,
                kind: FindingKind::Torn,
                reason: "the last record is incomplete (no line end): a write was cut short".into(),
            });
        }
        let (record, hash) = match decode_view(line) {
            Ok(ok) => ok,
            Err(e) if e.is_malformed() => {
                self.pending = Some(Pending::Broken {
                    finding: Finding {
                        at,
                        seq: None,
                        kind: FindingKind::Malformed,
                        reason: e.to_string(),
                    },
                });
                return Ok(());
            }
            Err(e) => {
                return Err(Finding {
                    seq: seq_hint(line),
                    at,
                    kind: FindingKind::Altered,
                    reason: e.to_string(),
                })
            }
        };
        self.check_link(&at, &record)?;
        if self.pending.is_some() {
            return Ok(());
        }
        if self.after_shutdown && record.action != CHECKPOINT_ACTION && record.action != TORN_ACTION
        {
            return Err(Finding {
                at,
                seq: Some(record.seq),
                kind: FindingKind::Appended,
                reason: "this record follows the checkpoint of a clean shutdown without the \
                         signed checkpoint every start writes: it was appended by hand"
                    .into(),
            });
        }
        if record.action == CHECKPOINT_ACTION {
            // Checkpoints are rare: decode them in full for their details.
            let full = decode(line).map_err(|e| Finding {
                at: at.clone(),
                seq: Some(record.seq),
                kind: FindingKind::Malformed,
                reason: e.to_string(),
            })?;
            self.check_checkpoint(&at, &full.0)?;
            self.after_shutdown = full.0.detail_str("reason") == Some("shutdown");
            self.checkpoints += 1;
            self.unsealed_from = None;
            self.unsealed = 0;
        } else {
            if self.unsealed_from.is_none() {
                self.unsealed_from = Some((at.clone(), record.seq));
            }
            self.unsealed += 1;
        }
        if record.action == TORN_ACTION {
            self.torn_sealed.push(record.seq);
        }
        self.records += 1;
        self.head = Some(Head {
            seq: record.seq,
            hash,
            at,
        });
        Ok(())
    }

    /// After the last line: the verdict.
    pub fn finish(self) -> Result<Summary, Finding> {
        match self.pending {
            None => {}
            Some(Pending::Gap { finding, .. }) => return Err(finding),
            Some(Pending::Broken { finding }) => {
                return Err(Finding {
                    kind: FindingKind::Torn,
                    reason: format!("the last record is incomplete: {}", finding.reason),
                    ..finding
                })
            }
        }
        let Some(head) = self.head else {
            return Err(Finding {
                at: Location {
                    file: String::new(),
                    line: 0,
                },
                seq: None,
                kind: FindingKind::Empty,
                reason: "no records".into(),
            });
        };
        if let Some((at, seq)) = self.unsealed_from {
            if !self.options.allow_unsealed {
                return Err(Finding {
                    at,
                    seq: Some(seq),
                    kind: FindingKind::Unsealed,
                    reason: format!(
                        "this and the {} records after it are not covered by a signed checkpoint: \
                         appended without the signing key, or the writer did not stop cleanly",
                        self.unsealed.saturating_sub(1)
                    ),
                });
            }
        }
        Ok(Summary {
            records: self.records,
            checkpoints: self.checkpoints,
            last_seq: head.seq,
            last_hash: head.hash.to_hex(),
            unsealed: self.unsealed,
            torn_sealed: self.torn_sealed,
        })
    }

    fn check_link(&mut self, at: &Location, record: &View<'_>) -> Result<(), Finding> {
        let finding = |kind, reason: String| Finding {
            at: at.clone(),
            seq: Some(record.seq),
            kind,
            reason,
        };
        let Some(head) = &self.head else {
            if record.seq != 1 {
                return Err(finding(
                    FindingKind::Removed,
                    format!(
                        "the log starts at seq {}, not at the genesis record (seq 1): earlier \
                         records or files are missing",
                        record.seq
                    ),
                ));
            }
            if record.action != GENESIS_ACTION || *record.prev != *ChainHash::ZERO.to_hex() {
                return Err(finding(
                    FindingKind::Inserted,
                    "seq 1 is not a genesis record".into(),
                ));
            }
            return Ok(());
        };
        let expected = head.seq.saturating_add(1);
        if record.seq > expected {
            self.pending = Some(Pending::Gap {
                finding: finding(
                    FindingKind::Removed,
                    format!(
                        "seq {expected} is missing (after seq {} at {})",
                        head.seq, head.at
                    ),
                ),
                expected,
            });
            // The gap is reported when the next record (or the end) says which kind it is.
            return Ok(());
        }
        if record.seq < expected {
            return Err(finding(
                FindingKind::Inserted,
                format!(
                    "seq {} comes again after seq {} at {}: a record was inserted or duplicated",
                    record.seq, head.seq, head.at
                ),
            ));
        }
        if !head.hash.eq_hex(&record.prev) {
            return Err(finding(
                FindingKind::Altered,
                format!(
                    "`prev` does not match the hash of seq {} at {}: one of the two was rewritten",
                    head.seq, head.at
                ),
            ));
        }
        Ok(())
    }

    fn resolve_gap(&self, finding: Finding, expected: u64, next: &[u8]) -> Finding {
        if seq_hint(next) == Some(expected) {
            Finding {
                kind: FindingKind::Reordered,
                reason: format!("seq {expected} comes after this record: records were reordered"),
                ..finding
            }
        } else {
            finding
        }
    }

    fn check_checkpoint(&self, at: &Location, record: &Record) -> Result<(), Finding> {
        let forged = |reason: String| Finding {
            at: at.clone(),
            seq: Some(record.seq),
            kind: FindingKind::Forged,
            reason,
        };
        let kid = record.detail_str("kid").unwrap_or_default();
        let head_seq = record.details.get("head_seq").and_then(|v| v.as_u64());
        let head_hash = record.detail_str("head_hash");
        if head_seq != Some(record.seq.saturating_sub(1)) || head_hash != Some(&record.prev) {
            return Err(forged(
                "checkpoint does not name the record before it as its head".into(),
            ));
        }
        let head = ChainHash::from_hex(&record.prev)
            .ok_or_else(|| forged("checkpoint head hash is not hex".into()))?;
        let sig = record
            .detail_str("sig")
            .and_then(|s| {
                use base64::Engine as _;
                base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(s)
                    .ok()
            })
            .ok_or_else(|| forged("checkpoint has no readable signature".into()))?;
        let candidates: Vec<&AuditVerifyKey> =
            self.keys.iter().filter(|k| k.matches(kid)).collect();
        if candidates.is_empty() {
            return Err(forged(format!(
                "checkpoint is signed by key `{kid}`, which is not trusted"
            )));
        }
        let message = checkpoint_message(kid, record.seq.saturating_sub(1), &head);
        if !candidates.iter().any(|k| k.verify(&message, &sig)) {
            let since = self.last_checkpoint_hint();
            return Err(forged(format!(
                "checkpoint signature does not verify with the trusted key for `{kid}`: records \
                 {since} were altered, inserted or removed with a recomputed chain"
            )));
        }
        Ok(())
    }

    fn last_checkpoint_hint(&self) -> String {
        match &self.unsealed_from {
            Some((at, seq)) => format!("from seq {seq} ({at}) on"),
            None => "before this checkpoint".into(),
        }
    }
}

/// The `seq` of a line that may not verify, for naming it in a finding.
fn seq_hint(line: &[u8]) -> Option<u64> {
    #[derive(Deserialize)]
    struct Seq {
        seq: u64,
    }
    serde_json::from_slice::<Seq>(line).ok().map(|s| s.seq)
}

// ---------------------------------------------------------------------------------------------
// Small helpers

pub(crate) fn sha256(parts: &[&[u8]]) -> [u8; 32] {
    let mut ctx = Context::new(&SHA256);
    for part in parts {
        ctx.update(part);
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

/// Decode hex (either case); `None` on odd length or a non-hex digit.
pub(crate) fn hex_decode(text: &str) -> Option<Vec<u8>> {
    fn nibble(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    }
    text.as_bytes()
        .chunks(2)
        .map(|pair| match pair {
            [h, l] => Some(nibble(*h)? << 4 | nibble(*l)?),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "test failures are panics")]
mod tests {
    use super::*;

    const T: &str = "2026-01-02T03:04:05Z";

    fn signer() -> AuditSigner {
        AuditSigner {
            kid: "k1".into(),
            seed: [9; 32],
        }
    }

    fn event(n: u64) -> AuditEvent {
        let mut details = serde_json::Map::new();
        details.insert("n".into(), n.into());
        AuditEvent {
            time: T.into(),
            actor: "alice".into(),
            action: "request.create".into(),
            subject: format!("r{n}"),
            outcome: "ok".into(),
            details,
        }
    }

    /// A sealed log of `n` events plus genesis and a final checkpoint, as lines.
    fn log(n: u64) -> Vec<Vec<u8>> {
        let cp = CheckpointSigner::new(&signer()).unwrap();
        let mut lines = Vec::new();
        let mut head = ChainHash::ZERO;
        let mut push = |seq, ev: &AuditEvent, head: &mut ChainHash| {
            let e = encode(seq, head, ev).unwrap();
            *head = e.hash;
            lines.push(e.line);
        };
        push(1, &genesis_event(Some("k1"), T), &mut head);
        for i in 0..n {
            push(i + 2, &event(i), &mut head);
        }
        let ckpt = checkpoint_event(&cp, n + 1, &head, T, "shutdown");
        push(n + 2, &ckpt, &mut head);
        lines
    }

    fn verify(lines: &[Vec<u8>]) -> Result<Summary, Finding> {
        let keys = [signer().verify_key().unwrap()];
        let mut v = Verifier::new(&keys, VerifyOptions::default());
        for (i, l) in lines.iter().enumerate() {
            let at = Location {
                file: "f".into(),
                line: i as u64 + 1,
            };
            let terminated = l.ends_with(b"\n");
            let body = l.strip_suffix(b"\n").unwrap_or(l);
            v.push(at, body, terminated)?;
        }
        v.finish()
    }

    #[test]
    fn encoded_line_decodes_and_hash_covers_the_object_without_hash() {
        let e = encode(7, &ChainHash::ZERO, &event(1)).unwrap();
        let line = e.line.strip_suffix(b"\n").unwrap();
        let (rec, hash) = decode(line).unwrap();
        assert_eq!(rec.seq, 7);
        assert_eq!(hash, e.hash);
        assert_eq!(rec.event(), event(1));
        let text = std::str::from_utf8(line).unwrap();
        let without = text.split(",\"hash\"").next().unwrap().to_owned() + "}";
        assert_eq!(hex(&sha256(&[without.as_bytes()])), rec.hash);
    }

    #[test]
    fn intact_log_verifies() {
        let s = verify(&log(5)).unwrap();
        assert_eq!((s.records, s.checkpoints, s.last_seq), (7, 1, 7));
    }

    #[test]
    fn changed_byte_is_altered() {
        let mut lines = log(5);
        let l = &mut lines[3];
        let pos = l.windows(5).position(|w| w == b"alice").unwrap();
        l[pos] = b'A';
        let f = verify(&lines).unwrap_err();
        assert_eq!(
            (f.kind, f.at.line, f.seq),
            (FindingKind::Altered, 4, Some(4))
        );
    }

    #[test]
    fn removed_and_reordered_records_are_told_apart() {
        let mut lines = log(5);
        lines.remove(2);
        let f = verify(&lines).unwrap_err();
        assert_eq!(
            (f.kind, f.at.line, f.seq),
            (FindingKind::Removed, 3, Some(4))
        );

        let mut lines = log(5);
        lines.swap(2, 3);
        let f = verify(&lines).unwrap_err();
        assert_eq!(
            (f.kind, f.at.line, f.seq),
            (FindingKind::Reordered, 3, Some(4))
        );
    }

    #[test]
    fn repeated_record_is_inserted() {
        let mut lines = log(5);
        let copy = lines[2].clone();
        lines.insert(3, copy);
        let f = verify(&lines).unwrap_err();
        assert_eq!(
            (f.kind, f.at.line, f.seq),
            (FindingKind::Inserted, 4, Some(3))
        );
    }

    proptest::proptest! {
        /// Any one changed byte anywhere in a sealed log is found.
        #[test]
        fn any_changed_byte_is_found(pos in 0usize..2000, byte in proptest::prelude::any::<u8>()) {
            let lines = log(3);
            let mut all: Vec<u8> = lines.concat();
            let pos = pos % all.len();
            proptest::prop_assume!(all[pos] != byte);
            all[pos] = byte;
            let changed: Vec<Vec<u8>> =
                all.split_inclusive(|&b| b == b'\n').map(<[u8]>::to_vec).collect();
            proptest::prop_assert!(verify(&changed).is_err());
        }
    }

    #[test]
    fn recomputed_chain_fails_at_the_checkpoint() {
        // Rewrite record 3 and recompute everything after it, without the key.
        let lines = log(4);
        let mut out: Vec<Vec<u8>> = lines[..2].to_vec();
        let (_, mut head) = decode(lines[1].strip_suffix(b"\n").unwrap()).unwrap();
        for (i, l) in lines[2..].iter().enumerate() {
            let (rec, _) = decode(l.strip_suffix(b"\n").unwrap()).unwrap();
            let mut ev = rec.event();
            if i == 0 {
                ev.actor = "mallory".into();
            }
            if ev.action == CHECKPOINT_ACTION {
                ev.details.insert("head_hash".into(), head.to_hex().into());
            }
            let e = encode(rec.seq, &head, &ev).unwrap();
            head = e.hash;
            out.push(e.line);
        }
        let f = verify(&out).unwrap_err();
        assert_eq!((f.kind, f.seq), (FindingKind::Forged, Some(6)));
        assert!(f.reason.contains("from seq 1 (f:1)"), "{}", f.reason);
    }

    #[test]
    fn appended_record_without_key_is_unsealed() {
        // After an interval checkpoint (a live or crashed writer): not yet sealed.
        let mut lines = log(2);
        let cp = CheckpointSigner::new(&signer()).unwrap();
        lines.pop();
        let (rec, head) = decode(lines.last().unwrap().strip_suffix(b"\n").unwrap()).unwrap();
        let ckpt = checkpoint_event(&cp, rec.seq, &head, T, "interval");
        let sealed = encode(rec.seq + 1, &head, &ckpt).unwrap();
        lines.push(sealed.line);
        lines.push(encode(rec.seq + 2, &sealed.hash, &event(99)).unwrap().line);
        let f = verify(&lines).unwrap_err();
        assert_eq!(
            (f.kind, f.at.line, f.seq),
            (FindingKind::Unsealed, 5, Some(5))
        );
    }

    #[test]
    fn records_after_a_clean_shutdown_are_appended_unless_a_start_checkpoint_comes_first() {
        let mut lines = log(2);
        let (rec, head) = decode(lines.last().unwrap().strip_suffix(b"\n").unwrap()).unwrap();
        let mut appended = lines.clone();
        appended.push(encode(rec.seq + 1, &head, &event(99)).unwrap().line);
        let f = verify(&appended).unwrap_err();
        assert_eq!((f.kind, f.seq), (FindingKind::Appended, Some(5)));
        // The torn-write note a start may write first is no cover either.
        let mut torn = lines.clone();
        let note = encode(rec.seq + 1, &head, &torn_event(T, "f", 0, b"x", "t")).unwrap();
        torn.push(note.line);
        torn.push(encode(rec.seq + 2, &note.hash, &event(99)).unwrap().line);
        let f = verify(&torn).unwrap_err();
        assert_eq!((f.kind, f.seq), (FindingKind::Appended, Some(6)));
        // A start's signed checkpoint, then records: a live log.
        let cp = CheckpointSigner::new(&signer()).unwrap();
        let open = encode(
            rec.seq + 1,
            &head,
            &checkpoint_event(&cp, rec.seq, &head, T, "open"),
        )
        .unwrap();
        lines.push(open.line);
        lines.push(encode(rec.seq + 2, &open.hash, &event(99)).unwrap().line);
        let keys = [signer().verify_key().unwrap()];
        let mut v = Verifier::new(
            &keys,
            VerifyOptions {
                allow_unsealed: true,
            },
        );
        for (i, l) in lines.iter().enumerate() {
            let at = Location {
                file: "f".into(),
                line: i as u64 + 1,
            };
            v.push(at, l.strip_suffix(b"\n").unwrap(), true).unwrap();
        }
        assert_eq!(v.finish().unwrap().unsealed, 1);
    }

    #[test]
    fn torn_tail_is_reported_and_not_accepted() {
        let mut lines = log(2);
        let last = lines.last_mut().unwrap();
        last.truncate(last.len() / 2);
        let f = verify(&lines).unwrap_err();
        assert_eq!((f.kind, f.at.line), (FindingKind::Torn, 4));
        // A malformed line in the middle is not a torn tail.
        let mut lines = log(2);
        lines[1] = b"{\"seq\":2}\n".to_vec();
        let f = verify(&lines).unwrap_err();
        assert_eq!((f.kind, f.at.line), (FindingKind::Malformed, 2));
    }

    #[test]
    fn untrusted_checkpoint_key_is_forged() {
        let keys = [AuditSigner {
            kid: "k1".into(),
            seed: [1; 32],
        }
        .verify_key()
        .unwrap()];
        let mut v = Verifier::new(&keys, VerifyOptions::default());
        let mut err = None;
        for (i, l) in log(1).iter().enumerate() {
            let at = Location {
                file: "f".into(),
                line: i as u64 + 1,
            };
            if let Err(f) = v.push(at, l.strip_suffix(b"\n").unwrap(), true) {
                err = Some(f);
                break;
            }
        }
        assert_eq!(err.unwrap().kind, FindingKind::Forged);
    }

    #[test]
    fn decode_never_panics_on_junk() {
        for junk in [&b""[..], b"}", b"{\"hash\":\"\"}", &[0xff; 80], b"{}"] {
            assert!(decode(junk).is_err());
        }
    }

    #[test]
    fn eq_hex_accepts_only_the_lowercase_hex_of_the_hash() {
        let h = ChainHash(sha256(&[b"x"]));
        assert!(h.eq_hex(&h.to_hex()));
        assert!(!h.eq_hex(&h.to_hex().to_uppercase()));
        assert!(!h.eq_hex(&ChainHash::ZERO.to_hex()));
        assert!(!h.eq_hex("00"));
    }

    #[test]
    fn verifier_fast_path_still_requires_object_details() {
        let line = br#"{"seq":1,"time":"t","actor":"a","action":"x","subject":"s","outcome":"ok","details":[],"prev":"p""#;
        let hash = hex(&sha256(&[line, b"}"]));
        let mut full = line.to_vec();
        full.extend_from_slice(format!(",\"hash\":\"{hash}\"}}").as_bytes());
        assert!(matches!(decode_view(&full), Err(ChainError::NotJson(_))));
        let ok = String::from_utf8(full).unwrap().replace("[]", "{}");
        let hash = hex(&sha256(&[
            ok.split(",\"hash\"").next().unwrap().as_bytes(),
            b"}",
        ]));
        let ok = format!(
            "{},\"hash\":\"{hash}\"}}",
            ok.split(",\"hash\"").next().unwrap()
        );
        assert_eq!(decode_view(ok.as_bytes()).unwrap().0.seq, 1);
    }

    #[test]
    fn hex_round_trips() {
        assert_eq!(hex_decode(&hex(&[0, 255, 16])).unwrap(), vec![0, 255, 16]);
        assert_eq!(hex_decode("abc"), None);
        assert_eq!(hex_decode("zz"), None);
    }
}

//! Session recordings in the asciicast v2 format (playable by `asciinema play` and `jitsh replay`).
//!
//! [`v2`] (header, events, encoder, lenient decoder) and [`utf8`] (incremental decoder for
//! split reads) are pure: no I/O, no clock. [`writer`] appends events to a file durably enough
//! that a killed session still leaves a playable recording, and [`player`] replays and
//! summarizes recordings.
//!
//! A jitsh recording is a plain v2 cast with one extra header key, `"jitsh"` (user, session id,
//! runspace), which asciinema ignores, and one `"m"` marker event per gate decision whose label
//! is either text (`gate: allow rule=read-only line=3`) or a JSON object with a `"decision"` key;
//! see [`player::classify_marker`].

pub mod player;
pub(crate) mod utf8;
pub mod v2;
pub mod writer;

pub use player::{
    classify_marker, markers, play, Control, Marker, MarkerClass, PlayOptions, SessionSummary,
};
pub use utf8::Utf8Decoder;
pub use v2::{
    decode, encode_event, encode_header, format_time, Cast, Event, EventKind, Header, JitshInfo,
    TornTail,
};
pub use writer::Recorder;

/// Why a recording could not be read, written or played.
#[derive(Debug, thiserror::Error)]
pub enum AsciicastError {
    #[error("line {line}: the header is not an asciicast v2 header: {message}")]
    Header { line: usize, message: String },
    #[error("line {line}: not an asciicast v2 event: {message}")]
    Event { line: usize, message: String },
    #[error("the recording is empty")]
    Empty,
    #[error("recording `{path}`: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("marker {index} does not exist; the recording has {count} markers")]
    NoSuchMarker { index: usize, count: usize },
    #[error("could not write the replay: {0}")]
    Output(#[source] std::io::Error),
}

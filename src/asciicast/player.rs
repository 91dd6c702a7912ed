//! Replaying recordings and summarizing them for `jitsh sessions`.
//!
//! The timing plan ([`plan`]) is pure; [`play`] writes it out, sleeping through an injected
//! function so tests run without waiting.

use std::io::Write;
use std::time::Duration;

use serde::Serialize;

use super::v2::{Cast, EventKind};
use super::AsciicastError;

/// How to replay.
#[derive(Debug, Clone, PartialEq)]
pub struct PlayOptions {
    /// Playback speed factor (2.0 plays twice as fast); values ≤ 0 are treated as 1.
    pub speed: f64,
    /// Longest pause, in seconds, before speed is applied; defaults to the header's
    /// `idle_time_limit`.
    pub idle_limit: Option<f64>,
    /// Start at this marker (1-based, as listed by [`markers`]): everything before it is printed
    /// at once, the rest in real time.
    pub at_marker: Option<usize>,
}

impl Default for PlayOptions {
    fn default() -> Self {
        Self {
            speed: 1.0,
            idle_limit: None,
            at_marker: None,
        }
    }
}

/// A marker as listed by `jitsh replay --markers`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Marker {
    /// 1-based position among the markers.
    pub index: usize,
    pub time_us: u64,
    pub label: String,
}

/// All markers in a recording, in order.
pub fn markers(cast: &Cast) -> Vec<Marker> {
    cast.events
        .iter()
        .filter(|e| e.kind == EventKind::Marker)
        .enumerate()
        .map(|(i, e)| Marker {
            index: i + 1,
            time_us: e.time_us,
            label: e.data.clone(),
        })
        .collect()
}

/// One step of a replay: wait, then write.
#[derive(Debug, Clone, PartialEq)]
pub struct Step<'a> {
    pub delay: Duration,
    /// When the event happened in the recording.
    pub time_us: u64,
    pub data: &'a str,
}

/// The output events to write and the pause before each.
pub(crate) fn plan<'a>(
    cast: &'a Cast,
    options: &PlayOptions,
) -> Result<Vec<Step<'a>>, AsciicastError> {
    let speed = if options.speed.is_finite() && options.speed > 0.0 {
        options.speed
    } else {
        1.0
    };
    let idle_limit = options
        .idle_limit
        .or(cast.header.idle_time_limit)
        .filter(|l| l.is_finite() && *l > 0.0);
    let start_us = match options.at_marker {
        None => 0,
        Some(index) => {
            let all = markers(cast);
            let count = all.len();
            index
                .checked_sub(1)
                .and_then(|i| all.get(i))
                .map(|m| m.time_us)
                .ok_or(AsciicastError::NoSuchMarker { index, count })?
        }
    };
    let mut steps = Vec::new();
    let mut previous_us = start_us;
    for event in cast.events.iter().filter(|e| e.kind == EventKind::Output) {
        let delay = if event.time_us < start_us {
            Duration::ZERO
        } else {
            let mut gap = event.time_us.saturating_sub(previous_us) as f64 / 1_000_000.0;
            if let Some(limit) = idle_limit {
                gap = gap.min(limit);
            }
            previous_us = event.time_us;
            Duration::try_from_secs_f64(gap / speed).unwrap_or(Duration::ZERO)
        };
        steps.push(Step {
            delay,
            time_us: event.time_us,
            data: &event.data,
        });
    }
    Ok(steps)
}

/// What the viewer asked for while the player waited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// The pause ran out; go on.
    Continue,
    /// Print everything up to the next marker at once.
    NextMarker,
    Quit,
}

/// Replay the output of `cast` to `out`. `wait` is called for every pause and returns what to
/// do next (a plain player sleeps and returns [`Control::Continue`]).
pub fn play(
    cast: &Cast,
    options: &PlayOptions,
    out: &mut dyn Write,
    wait: &mut dyn FnMut(Duration) -> Control,
) -> Result<(), AsciicastError> {
    let marker_times: Vec<u64> = markers(cast).iter().map(|m| m.time_us).collect();
    // While set, output up to this time is written without pauses.
    let mut skip_until: Option<u64> = None;
    for step in plan(cast, options)? {
        let skipping = skip_until.is_some_and(|t| step.time_us < t);
        if !skipping && !step.delay.is_zero() {
            out.flush().map_err(AsciicastError::Output)?;
            match wait(step.delay) {
                Control::Continue => {}
                Control::Quit => break,
                Control::NextMarker => {
                    // The first marker not before the pending output; none left means the end.
                    let next = marker_times.iter().copied().find(|t| *t >= step.time_us);
                    skip_until = Some(next.unwrap_or(u64::MAX));
                }
            }
        }
        out.write_all(step.data.as_bytes())
            .map_err(AsciicastError::Output)?;
    }
    out.flush().map_err(AsciicastError::Output)
}

/// What a marker says about a gate decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MarkerClass {
    Allowed,
    /// Denied, or waiting for an approval that was not there.
    Blocked,
    Other,
}

/// Classify a marker label. Text labels: optional `gate:` prefix, then the first word
/// (`allow`/`allowed` vs `deny`/`denied`/`approval`/`approval-blocked`/`blocked`/`refused`).
/// JSON labels: the string in `"decision"` (or `"effect"`, `"outcome"`), same words.
pub fn classify_marker(label: &str) -> MarkerClass {
    let word = match serde_json::from_str::<serde_json::Value>(label) {
        Ok(serde_json::Value::Object(map)) => ["decision", "effect", "outcome"]
            .iter()
            .find_map(|k| map.get(*k).and_then(|v| v.as_str()).map(str::to_owned))
            .unwrap_or_default(),
        _ => {
            let text = label.trim_start();
            let text = text.strip_prefix("gate:").unwrap_or(text);
            text.split_whitespace()
                .next()
                .unwrap_or_default()
                .to_owned()
        }
    };
    match word.to_ascii_lowercase().as_str() {
        "allow" | "allowed" => MarkerClass::Allowed,
        "deny" | "denied" | "approval" | "approval-blocked" | "approval-required" | "blocked"
        | "refused" => MarkerClass::Blocked,
        _ => MarkerClass::Other,
    }
}

/// One line of `jitsh sessions`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SessionSummary {
    pub file: String,
    pub user: Option<String>,
    pub session: Option<String>,
    /// Unix seconds from the header.
    pub started: Option<i64>,
    pub duration_us: u64,
    pub allowed: usize,
    pub blocked: usize,
    /// The recording ends in a cut-off line (the session was killed).
    pub torn: bool,
}

impl SessionSummary {
    pub fn of(file: String, cast: &Cast) -> Self {
        let jitsh = cast.header.jitsh.as_ref();
        let mut allowed = 0;
        let mut blocked = 0;
        for event in cast.events.iter().filter(|e| e.kind == EventKind::Marker) {
            match classify_marker(&event.data) {
                MarkerClass::Allowed => allowed += 1,
                MarkerClass::Blocked => blocked += 1,
                MarkerClass::Other => {}
            }
        }
        SessionSummary {
            file,
            user: jitsh.and_then(|j| j.user.clone()),
            session: jitsh.and_then(|j| j.session.clone()),
            started: cast.header.timestamp,
            duration_us: cast.events.iter().map(|e| e.time_us).max().unwrap_or(0),
            allowed,
            blocked,
            torn: cast.torn.is_some(),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests fail loudly")]
mod tests {
    use super::*;
    use crate::asciicast::v2::{Event, Header};

    fn cast(events: Vec<Event>) -> Cast {
        Cast {
            header: Header {
                width: 80,
                height: 24,
                ..Header::default()
            },
            events,
            torn: None,
        }
    }

    fn o(t: u64, d: &str) -> Event {
        Event::new(t, EventKind::Output, d)
    }

    #[test]
    fn pauses_follow_event_times_with_speed_and_idle_limit() {
        let c = cast(vec![o(0, "a"), o(1_000_000, "b"), o(11_000_000, "c")]);
        let opts = PlayOptions {
            speed: 2.0,
            idle_limit: Some(2.0),
            at_marker: None,
        };
        let delays: Vec<_> = plan(&c, &opts).unwrap().iter().map(|s| s.delay).collect();
        assert_eq!(
            delays,
            [
                Duration::ZERO,
                Duration::from_millis(500),
                Duration::from_secs(1)
            ]
        );
    }

    #[test]
    fn at_marker_prints_earlier_output_at_once() {
        let c = cast(vec![
            o(0, "a"),
            o(5_000_000, "b"),
            Event::new(6_000_000, EventKind::Marker, "gate: deny"),
            o(7_000_000, "c"),
        ]);
        let opts = PlayOptions {
            at_marker: Some(1),
            ..PlayOptions::default()
        };
        let steps = plan(&c, &opts).unwrap();
        let delays: Vec<_> = steps.iter().map(|s| s.delay).collect();
        assert_eq!(
            delays,
            [Duration::ZERO, Duration::ZERO, Duration::from_secs(1)]
        );
        let err = plan(
            &c,
            &PlayOptions {
                at_marker: Some(2),
                ..opts
            },
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "marker 2 does not exist; the recording has 1 markers"
        );
    }

    #[test]
    fn next_marker_skips_pauses_until_the_marker_and_quit_stops() {
        let c = cast(vec![
            o(0, "a"),
            o(1_000_000, "b"),
            o(2_000_000, "c"),
            Event::new(3_000_000, EventKind::Marker, "gate: allow"),
            o(4_000_000, "d"),
            o(5_000_000, "e"),
        ]);
        let mut out = Vec::new();
        let mut calls = 0;
        play(&c, &PlayOptions::default(), &mut out, &mut |_| {
            calls += 1;
            if calls == 1 {
                Control::NextMarker
            } else {
                Control::Continue
            }
        })
        .unwrap();
        // One pause before "b" (jump), none for "c", then pauses for "d" and "e".
        assert_eq!((out.as_slice(), calls), (&b"abcde"[..], 3));
        let mut out = Vec::new();
        play(&c, &PlayOptions::default(), &mut out, &mut |_| {
            Control::Quit
        })
        .unwrap();
        assert_eq!(out, b"a");
    }

    #[test]
    fn markers_are_classified_from_text_and_json() {
        assert_eq!(
            classify_marker("gate: allow rule=read-only line=3"),
            MarkerClass::Allowed
        );
        assert_eq!(
            classify_marker("gate: deny rule=no-forward"),
            MarkerClass::Blocked
        );
        assert_eq!(
            classify_marker("approval-blocked task=x"),
            MarkerClass::Blocked
        );
        assert_eq!(
            classify_marker(r#"{"decision":"Approval","line":2}"#),
            MarkerClass::Blocked
        );
        assert_eq!(
            classify_marker(r#"{"decision":"allow"}"#),
            MarkerClass::Allowed
        );
        assert_eq!(classify_marker("session resumed"), MarkerClass::Other);
    }
}

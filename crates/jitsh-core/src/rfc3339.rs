//! RFC 3339 text for instants, in the one form jitsh writes everywhere (tokens, audit records,
//! API JSON, recordings): UTC with a `Z` suffix, whole seconds when the instant has no fraction,
//! otherwise the fraction to nanoseconds with trailing zeros dropped (`…T10:00:00.5Z`).
//!
//! Pure: no clock. Callers take `now` from `chrono::Utc::now()` at the edges.

use chrono::{DateTime, Datelike, Timelike, Utc};

pub use chrono::TimeDelta;

/// An instant, always in UTC.
pub type Instant = DateTime<Utc>;

/// RFC 3339 text of `t`; `None` outside years 0000–9999, which RFC 3339 cannot write.
pub fn format(t: Instant) -> Option<String> {
    if !(0..=9999).contains(&t.year()) {
        return None;
    }
    // Digits are written directly: chrono's `format` reads its pattern on every call, and tokens
    // and audit records write several instants each.
    let mut out = String::with_capacity(30);
    let (date, time) = (t.date_naive(), t.time());
    // A leap second is carried as nanoseconds past 1e9: its second is `60`, its fraction the
    // remainder.
    let raw = t.timestamp_subsec_nanos();
    let second = if raw >= 1_000_000_000 {
        60
    } else {
        time.second()
    };
    let year = u32::try_from(date.year()).ok()?;
    push_digits(&mut out, year, 4);
    out.push('-');
    push_digits(&mut out, date.month(), 2);
    out.push('-');
    push_digits(&mut out, date.day(), 2);
    out.push('T');
    push_digits(&mut out, time.hour(), 2);
    out.push(':');
    push_digits(&mut out, time.minute(), 2);
    out.push(':');
    push_digits(&mut out, second, 2);
    let mut nanos = raw % 1_000_000_000;
    if nanos != 0 {
        out.push('.');
        let mut width = 9;
        while nanos.is_multiple_of(10) {
            nanos /= 10;
            width -= 1;
        }
        push_digits(&mut out, nanos, width);
    }
    out.push('Z');
    Some(out)
}

/// `n` in decimal, zero-padded to `width` digits (`n` has at most `width` digits here).
fn push_digits(out: &mut String, n: u32, width: u32) {
    for place in (0..width).rev() {
        let digit = (n / 10u32.pow(place)) % 10;
        out.push(char::from(b'0' + digit as u8));
    }
}

/// Parse RFC 3339 text (`T` between date and time; `Z` or a numeric offset) into UTC.
pub fn parse(text: &str) -> Option<Instant> {
    // chrono also reads a space for the `T`; RFC 3339 text from outside is held to the letter.
    if !matches!(text.as_bytes().get(10), Some(b'T' | b't')) {
        return None;
    }
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// Unix seconds as an instant; `None` out of range.
pub fn from_unix(secs: i64) -> Option<Instant> {
    DateTime::from_timestamp(secs, 0)
}

/// `#[serde(with = "crate::rfc3339::serde")]`: an instant as RFC 3339 text on the wire.
pub mod serde {
    use super::Instant;
    use serde::{de::Error as _, ser::Error as _, Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &Instant, s: S) -> Result<S::Ok, S::Error> {
        match super::format(*t) {
            Some(text) => s.serialize_str(&text),
            None => Err(S::Error::custom("the time is outside years 0000-9999")),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Instant, D::Error> {
        let text = std::borrow::Cow::<str>::deserialize(d)?;
        super::parse(&text)
            .ok_or_else(|| D::Error::custom(format!("`{text}` is not an RFC 3339 time")))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;

    #[test]
    fn formats_as_before_whole_seconds_and_trimmed_fractions() {
        let t = from_unix(1_796_119_200).unwrap();
        assert_eq!(format(t).unwrap(), "2026-12-01T10:00:00Z");
        let cases = [
            (500_000_000, "2026-12-01T10:00:00.5Z"),
            (123_000_000, "2026-12-01T10:00:00.123Z"),
            (1_000, "2026-12-01T10:00:00.000001Z"),
            (123_456_789, "2026-12-01T10:00:00.123456789Z"),
        ];
        for (nanos, text) in cases {
            let t = DateTime::from_timestamp(1_796_119_200, nanos).unwrap();
            assert_eq!(format(t).unwrap(), text);
            assert_eq!(parse(text), Some(t), "{text} reads back");
        }
        assert_eq!(
            format(DateTime::UNIX_EPOCH).unwrap(),
            "1970-01-01T00:00:00Z"
        );
        // Years below 1000 keep four digits; a leap second is second 60 with its fraction.
        let early = DateTime::from_timestamp(-62_135_596_800 + 86_400 * 400, 7).unwrap();
        assert_eq!(format(early).unwrap(), "0002-02-05T00:00:00.000000007Z");
        let leap = DateTime::from_timestamp(1_483_228_799, 1_250_000_000).unwrap();
        assert_eq!(format(leap).unwrap(), "2016-12-31T23:59:60.25Z");
    }

    /// The direct writer gives what chrono's pattern gave, across the range and its edges.
    #[test]
    fn direct_digits_match_chrono_pattern() {
        let mut secs: i64 = -62_167_219_200; // 0000-01-01
        while secs < 253_402_300_800 {
            for nanos in [0, 1, 10, 999_999_999, 1_000_000_000, 1_999_999_999] {
                let Some(t) = DateTime::from_timestamp(secs, nanos) else {
                    continue;
                };
                let mut want = t.format("%Y-%m-%dT%H:%M:%S").to_string();
                let frac = nanos % 1_000_000_000;
                if frac != 0 {
                    want.push('.');
                    want.push_str(format!("{frac:09}").trim_end_matches('0'));
                }
                want.push('Z');
                assert_eq!(format(t).as_deref(), Some(want.as_str()), "{secs} {nanos}");
            }
            secs += 7_777_777;
        }
    }

    #[test]
    fn out_of_range_years_are_refused_not_written_in_another_form() {
        let far = DateTime::from_timestamp(253_402_300_800, 0).unwrap(); // 10000-01-01
        assert_eq!(format(far), None);
        assert!(format(far - TimeDelta::seconds(1)).is_some());
    }

    #[test]
    fn parse_takes_offsets_to_utc_and_holds_to_the_letter() {
        let t = parse("2026-12-01T12:00:00+02:00").unwrap();
        assert_eq!(format(t).unwrap(), "2026-12-01T10:00:00Z");
        assert_eq!(parse("2026-12-01t10:00:00z"), Some(t));
        for bad in [
            "2026-12-01 10:00:00Z",
            "2026-12-01T10:00:00",
            "2026-12-01",
            "",
            "2026-13-01T10:00:00Z",
            "2026-12-01T10:00:00Zjunk",
            "２026-12-01T10:00:00Z",
        ] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
    }
}

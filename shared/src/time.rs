//! Instants as the core passes them around: [`jiff::Timestamp`] (UTC, nanosecond precision),
//! written as RFC 3339 (`2026-11-21T10:04:05Z`). The core never reads the clock: callers pass
//! `Timestamp::now()` in, so tests control time.

pub use jiff::Timestamp;

/// `t` plus `days` days of 86,400 seconds (retention periods are counted so).
pub fn add_days(t: Timestamp, days: u32) -> Timestamp {
    t.checked_add(jiff::SignedDuration::from_secs(i64::from(days) * 86_400))
        .unwrap_or(Timestamp::MAX)
}

/// RFC 3339 at second precision, in UTC: `2026-11-21T10:04:05Z`.
pub fn rfc3339(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Parse an RFC 3339 instant (any offset, any precision), naming the value when it is not one.
pub fn parse(text: &str) -> Result<Timestamp, String> {
    text.parse()
        .map_err(|e| format!("not an RFC 3339 timestamp: {text:?}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_instants() {
        assert_eq!(rfc3339(Timestamp::UNIX_EPOCH), "1970-01-01T00:00:00Z");
        let t = Timestamp::from_second(1_795_255_445).unwrap();
        assert_eq!(rfc3339(t), "2026-11-21T10:04:05Z");
        assert_eq!(rfc3339(add_days(t, 365)), "2027-11-21T10:04:05Z");
        // Leap day.
        let leap = Timestamp::from_second(951_782_400).unwrap();
        assert_eq!(rfc3339(leap), "2000-02-29T00:00:00Z");
        // Sub-second precision is dropped in the text form.
        let precise = Timestamp::new(1_795_255_445, 999_000_000).unwrap();
        assert_eq!(rfc3339(precise), "2026-11-21T10:04:05Z");
    }

    #[test]
    fn parsing_accepts_offsets_and_fractions_and_names_bad_input() {
        let t = Timestamp::from_second(1_795_255_445).unwrap();
        assert_eq!(parse("2026-11-21T10:04:05Z").unwrap(), t);
        assert_eq!(parse("2026-11-21T11:04:05+01:00").unwrap(), t);
        assert_eq!(
            parse("2026-11-21T10:04:05.250Z").unwrap(),
            Timestamp::new(1_795_255_445, 250_000_000).unwrap()
        );
        let err = parse("21/11/2026").unwrap_err();
        assert!(err.contains("\"21/11/2026\""), "{err}");
    }

    #[test]
    fn retention_far_in_the_future_saturates() {
        let t = Timestamp::MAX;
        assert_eq!(add_days(t, 1), Timestamp::MAX);
    }
}

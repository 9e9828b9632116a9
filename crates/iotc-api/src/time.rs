//! Date-time text for the API (RFC 3339, UTC).

/// Unix seconds as `2026-05-18T09:25:33Z`.
pub fn rfc3339(unix_seconds: u64) -> String {
    i64::try_from(unix_seconds)
        .ok()
        .and_then(|s| jiff::Timestamp::from_second(s).ok())
        .unwrap_or(jiff::Timestamp::UNIX_EPOCH)
        .to_string()
}

/// An RFC 3339 date-time; without an offset (as older exports write it) it is read as UTC.
pub fn is_date_time(text: &str) -> bool {
    text.parse::<jiff::Timestamp>().is_ok() || text.parse::<jiff::civil::DateTime>().is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_checks() {
        assert_eq!(rfc3339(1_652_865_933), "2022-05-18T09:25:33Z");
        assert!(is_date_time("2022-05-18T09:25:33Z"));
        assert!(is_date_time("2022-05-18T09:25:33.123+02:00"));
        assert!(is_date_time("2022-05-18T09:25:33.123456"));
        assert!(!is_date_time("18.05.2022"));
        assert!(!is_date_time(""));
    }
}

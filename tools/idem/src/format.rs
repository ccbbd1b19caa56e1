//! Human-readable times and sizes.

use lambda_idempotency::ops::{format_utc_millis, format_utc_secs};

/// `2024-06-09 10:00:00.000 UTC (2m 3s ago)`.
pub fn millis_with_age(millis: i64, now_ms: i64) -> String {
    format!(
        "{} ({})",
        format_utc_millis(millis),
        relative(millis - now_ms)
    )
}

/// `2024-06-10 10:00:00 UTC (in 23h 57m)`.
pub fn secs_with_age(secs: i64, now_ms: i64) -> String {
    format!(
        "{} ({})",
        format_utc_secs(secs),
        relative(secs.saturating_mul(1000) - now_ms)
    )
}

/// `in 3m 2s` for a future offset, `3m 2s ago` for a past one, `now` within a second.
pub fn relative(offset_ms: i64) -> String {
    let secs = offset_ms.unsigned_abs() / 1000;
    if secs == 0 {
        return "now".to_owned();
    }
    let span = span(secs);
    if offset_ms > 0 {
        format!("in {span}")
    } else {
        format!("{span} ago")
    }
}

/// The two largest units: `2d 3h`, `23h 57m`, `3m 2s`, `9s`.
fn span(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86_400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m {s}s"),
        (0, _, _) => format!("{h}h {m}m"),
        _ => format!("{d}d {h}h"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_times() {
        assert_eq!(relative(0), "now");
        assert_eq!(relative(999), "now");
        assert_eq!(relative(9_000), "in 9s");
        assert_eq!(relative(-182_000), "3m 2s ago");
        assert_eq!(relative((23 * 3600 + 57 * 60 + 5) * 1000), "in 23h 57m");
        assert_eq!(relative(-(2 * 86_400 + 3 * 3600) * 1000), "2d 3h ago");
    }

    #[test]
    fn absolute_with_relative() {
        assert_eq!(
            millis_with_age(1_000, 4_000),
            "1970-01-01 00:00:01.000 UTC (3s ago)"
        );
        assert_eq!(secs_with_age(60, 0), "1970-01-01 00:01:00 UTC (in 1m 0s)");
    }
}

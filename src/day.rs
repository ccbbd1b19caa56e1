//! UTC calendar days and readable UTC times, without a date crate.
//!
//! The per-day statistics are keyed by UTC day (`s1|2025-06-02`) and the operator
//! CLI prints times; both need only the proleptic Gregorian calendar, converted with
//! Howard Hinnant's `days_from_civil` / `civil_from_days` algorithms.
//!
//! ```
//! use lambda_idempotency::ops::{Day, format_utc_millis};
//!
//! let day = Day::of_secs(1_700_000_000);
//! assert_eq!(day.to_string(), "2023-11-14");
//! assert_eq!(Day::parse("2023-11-14"), Some(day));
//! assert_eq!(day.start_secs(), 1_699_920_000);
//! assert_eq!(format_utc_millis(1_700_000_000_123), "2023-11-14 22:13:20.123 UTC");
//! ```

// The HTTP layer uses only the IMF-fixdate part; the rest serves operator code.
#![cfg_attr(not(feature = "ops"), allow(dead_code))]

use std::fmt;

/// Seconds in a day.
pub const SECS_PER_DAY: i64 = 86_400;

/// A UTC calendar day, counted in days since 1970-01-01.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Day(i64);

impl Day {
    /// The day `days` days after 1970-01-01 (negative: before).
    pub const fn from_days_since_epoch(days: i64) -> Self {
        Self(days)
    }

    /// Days since 1970-01-01.
    pub const fn days_since_epoch(self) -> i64 {
        self.0
    }

    /// The UTC day holding an instant given in epoch seconds.
    pub const fn of_secs(secs: i64) -> Self {
        Self(secs.div_euclid(SECS_PER_DAY))
    }

    /// The UTC day holding an instant given in epoch milliseconds.
    pub const fn of_millis(millis: i64) -> Self {
        Self::of_secs(millis.div_euclid(1000))
    }

    /// The day with this year, month (1-12) and day of month, if it exists.
    pub fn from_ymd(year: i64, month: u32, day: u32) -> Option<Self> {
        if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
            return None;
        }
        Some(Self(days_from_civil(year, month, day)))
    }

    /// The year, month (1-12) and day of month.
    pub const fn ymd(self) -> (i64, u32, u32) {
        civil_from_days(self.0)
    }

    /// Midnight at the start of the day, epoch seconds.
    pub const fn start_secs(self) -> i64 {
        self.0 * SECS_PER_DAY
    }

    /// The day `n` days earlier.
    #[must_use]
    pub const fn minus_days(self, n: i64) -> Self {
        Self(self.0 - n)
    }

    /// The day `n` days later.
    #[must_use]
    pub const fn plus_days(self, n: i64) -> Self {
        Self(self.0 + n)
    }

    /// Parses `YYYY-MM-DD` (four-digit year).
    pub fn parse(text: &str) -> Option<Self> {
        let bytes = text.as_bytes();
        if bytes.len() != 10 || bytes[4] != b'-' || bytes[7] != b'-' {
            return None;
        }
        let digits = |range: std::ops::Range<usize>| -> Option<u32> {
            let part = text.get(range)?;
            if !part.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            part.parse().ok()
        };
        Self::from_ymd(i64::from(digits(0..4)?), digits(5..7)?, digits(8..10)?)
    }
}

impl fmt::Display for Day {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (y, m, d) = self.ymd();
        write!(f, "{y:04}-{m:02}-{d:02}")
    }
}

impl serde::Serialize for Day {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// An instant in epoch milliseconds as `YYYY-MM-DD HH:MM:SS.mmm UTC`.
pub fn format_utc_millis(millis: i64) -> String {
    let day = Day::of_millis(millis);
    let in_day = millis.rem_euclid(SECS_PER_DAY * 1000);
    let (secs, ms) = (in_day / 1000, in_day % 1000);
    format!(
        "{day} {:02}:{:02}:{:02}.{ms:03} UTC",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// An instant in epoch seconds as `YYYY-MM-DD HH:MM:SS UTC`.
pub fn format_utc_secs(secs: i64) -> String {
    let day = Day::of_secs(secs);
    let in_day = secs.rem_euclid(SECS_PER_DAY);
    format!(
        "{day} {:02}:{:02}:{:02} UTC",
        in_day / 3600,
        in_day / 60 % 60,
        in_day % 60
    )
}

fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Hinnant's
/// `days_from_civil`). `month` is 1-12, `day` 1-31.
const fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400; // [0, 399]
    let m = month as i64;
    let mp = if m > 2 { m - 3 } else { m + 9 }; // March = 0
    let doy = (153 * mp + 2) / 5 + day as i64 - 1; // [0, 365]
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy; // [0, 146096]
    era * 146_097 + doe - 719_468
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (Hinnant's
/// `civil_from_days`).
const fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097; // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11]
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = (if mp < 10 { mp + 3 } else { mp - 9 }) as u32;
    let year = yoe + era * 400 + if month <= 2 { 1 } else { 0 };
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_days() {
        let cases = [
            (0, (1970, 1, 1)),
            (-1, (1969, 12, 31)),
            (59, (1970, 3, 1)),
            (10_957, (2000, 1, 1)),
            (11_017, (2000, 3, 1)), // 2000 is a leap year
            (11_016, (2000, 2, 29)),
            (19_675, (2023, 11, 14)),
            (-719_468, (0, 3, 1)),
            (2_932_896, (9999, 12, 31)),
        ];
        for (days, ymd) in cases {
            assert_eq!(Day::from_days_since_epoch(days).ymd(), ymd, "{days}");
            assert_eq!(
                Day::from_ymd(ymd.0, ymd.1, ymd.2),
                Some(Day::from_days_since_epoch(days))
            );
        }
    }

    #[test]
    fn round_trips_over_four_centuries_both_sides_of_the_epoch() {
        let mut previous = civil_from_days(-150_000 - 1);
        for days in -150_000..150_000 {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
            // Consecutive: the next day, or the first of the next month / year.
            let next = match previous {
                (py, pm, pd) if pd < days_in_month(py, pm) => (py, pm, pd + 1),
                (py, 12, _) => (py + 1, 1, 1),
                (py, pm, _) => (py, pm + 1, 1),
            };
            assert_eq!((y, m, d), next, "{days}");
            previous = (y, m, d);
        }
    }

    #[test]
    fn leap_years() {
        assert!(Day::from_ymd(2024, 2, 29).is_some());
        assert!(Day::from_ymd(2023, 2, 29).is_none());
        assert!(Day::from_ymd(1900, 2, 29).is_none());
        assert!(Day::from_ymd(2000, 2, 29).is_some());
        assert!(Day::from_ymd(2023, 4, 31).is_none());
        assert!(Day::from_ymd(2023, 13, 1).is_none());
        assert!(Day::from_ymd(2023, 0, 1).is_none());
        assert!(Day::from_ymd(2023, 1, 0).is_none());
    }

    #[test]
    fn instants_to_days() {
        assert_eq!(Day::of_secs(0).to_string(), "1970-01-01");
        assert_eq!(Day::of_secs(86_399).to_string(), "1970-01-01");
        assert_eq!(Day::of_secs(86_400).to_string(), "1970-01-02");
        assert_eq!(Day::of_secs(-1).to_string(), "1969-12-31");
        assert_eq!(Day::of_millis(-1).to_string(), "1969-12-31");
        assert_eq!(Day::of_millis(1_717_286_400_000).to_string(), "2024-06-02");
        assert_eq!(Day::of_millis(1_717_286_399_999).to_string(), "2024-06-01");
    }

    #[test]
    fn parse_and_display() {
        let d = Day::parse("2024-02-29").unwrap();
        assert_eq!(d.to_string(), "2024-02-29");
        assert_eq!(d.plus_days(1).to_string(), "2024-03-01");
        assert_eq!(d.minus_days(60).to_string(), "2023-12-31");
        for bad in [
            "2023-02-29",
            "2024-2-29",
            "2024/02/29",
            "24-02-29x",
            "+024-02-29",
            "",
        ] {
            assert_eq!(Day::parse(bad), None, "{bad}");
        }
        assert_eq!(serde_json::to_string(&d).unwrap(), "\"2024-02-29\"");
    }

    #[test]
    fn readable_times() {
        assert_eq!(format_utc_millis(0), "1970-01-01 00:00:00.000 UTC");
        assert_eq!(format_utc_millis(-1), "1969-12-31 23:59:59.999 UTC");
        assert_eq!(format_utc_secs(1_709_251_199), "2024-02-29 23:59:59 UTC");
        assert_eq!(format_utc_secs(1_709_251_200), "2024-03-01 00:00:00 UTC");
    }
}

//! Calendar dates of Unix seconds, in UTC on the proleptic Gregorian calendar: the workspace's
//! one copy of Howard Hinnant's `days_from_civil` / `civil_from_days`
//! (<https://howardhinnant.github.io/date_algorithms.html>) and its one RFC 3339 spelling.
//!
//! Every function is exact for every day count a Unix-seconds `i64` can name, and for years
//! within ±10^14 or so (far beyond the protocol's 1970…9999 range).

/// Seconds in a day (UTC has no leap seconds in Unix time).
pub const SECS_PER_DAY: i64 = 86_400;

/// Days from 1970-01-01 to 0000-03-01, the start of Hinnant's March-based era.
const EPOCH_SHIFT: i64 = 719_468;
/// Days in 400 Gregorian years (one era).
const DAYS_PER_ERA: i64 = 146_097;

/// Whether `year` has a February 29th.
pub const fn is_leap_year(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

/// Days in `month` (1-12) of `year`; 0 for a month outside 1-12.
pub const fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap_year(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        _ => 0,
    }
}

/// Days since 1970-01-01 of the date `year-month-day` (month 1-12, day 1-31; not checked: use
/// [`date_to_days`] for a date that may not exist).
pub const fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400; // [0, 399]
    let mp = (month + 9) % 12; // March = 0
    let doy = (153 * mp + 2) / 5 + day - 1; // [0, 365]
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy; // [0, 146096]
    era * DAYS_PER_ERA + doe - EPOCH_SHIFT
}

/// Days since 1970-01-01 of `year-month-day`, or `None` when there is no such date (month 13,
/// February 30th, February 29th of a common year).
pub const fn date_to_days(year: i64, month: i64, day: i64) -> Option<i64> {
    if month < 1 || month > 12 || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    Some(days_from_civil(year, month, day))
}

/// `(year, month 1-12, day 1-31)` of a day count since 1970-01-01.
pub const fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + EPOCH_SHIFT;
    let era = z.div_euclid(DAYS_PER_ERA);
    let doe = z.rem_euclid(DAYS_PER_ERA); // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // March = 0
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + if m <= 2 { 1 } else { 0 };
    (y, m, d)
}

/// The UTC date and time of Unix seconds: `(year, month, day, hour, minute, second)`.
pub const fn civil_from_secs(secs: i64) -> (i64, i64, i64, i64, i64, i64) {
    let (y, m, d) = civil_from_days(secs.div_euclid(SECS_PER_DAY));
    let rem = secs.rem_euclid(SECS_PER_DAY);
    (y, m, d, rem / 3600, rem % 3600 / 60, rem % 60)
}

/// Unix seconds as `YYYY-MM-DD` (UTC).
pub fn ymd(secs: i64) -> String {
    let (y, m, d, ..) = civil_from_secs(secs);
    format!("{y:04}-{m:02}-{d:02}")
}

/// Unix seconds as `YYYY-MM-DD HH:MM` (UTC), for people.
pub fn ymd_hm(secs: i64) -> String {
    let (y, m, d, h, min, _) = civil_from_secs(secs);
    format!("{y:04}-{m:02}-{d:02} {h:02}:{min:02}")
}

/// Unix seconds as RFC 3339 in UTC, e.g. `2026-11-22T06:00:00+00:00`: the reference's
/// spelling (chrono's `to_rfc3339`), used for the export's `exported_at` and `server.json`'s
/// `started_at` alike.
pub fn rfc3339(secs: i64) -> String {
    let (y, m, d, h, min, s) = civil_from_secs(secs);
    format!("{y:04}-{m:02}-{d:02}T{h:02}:{min:02}:{s:02}+00:00")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A plain day-by-day count, to check the closed forms against.
    fn naive_days(year: i64, month: i64, day: i64) -> i64 {
        let year_days = |y: i64| if is_leap_year(y) { 366 } else { 365 };
        let mut days: i64 = if year >= 1970 {
            (1970..year).map(year_days).sum()
        } else {
            -(year..1970).map(year_days).sum::<i64>()
        };
        days += (1..month).map(|m| days_in_month(year, m)).sum::<i64>();
        days + day - 1
    }

    #[test]
    fn known_dates() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00+00:00");
        assert_eq!(rfc3339(1_795_327_261), "2026-11-22T06:01:01+00:00");
        assert_eq!(rfc3339(-1), "1969-12-31T23:59:59+00:00");
        assert_eq!(ymd(1_795_305_600), "2026-11-22");
        assert_eq!(ymd_hm(1_795_327_261), "2026-11-22 06:01");
    }

    #[test]
    fn leap_years() {
        for (year, leap) in [
            (1900, false),
            (1970, false),
            (1972, true),
            (2000, true),
            (2023, false),
            (2024, true),
            (2100, false),
            (2400, true),
            (9996, true),
            (9999, false),
        ] {
            assert_eq!(is_leap_year(year), leap, "{year}");
            assert_eq!(date_to_days(year, 2, 29).is_some(), leap, "{year}-02-29");
            let feb_end = if leap { 29 } else { 28 };
            // The day after the end of February is March 1st.
            let last = days_from_civil(year, 2, feb_end);
            assert_eq!(civil_from_days(last + 1), (year, 3, 1), "{year}");
        }
        assert_eq!(rfc3339(1_709_164_800), "2024-02-29T00:00:00+00:00");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00+00:00");
        assert_eq!(rfc3339(4_107_542_400), "2100-03-01T00:00:00+00:00");
    }

    #[test]
    fn the_year_9999_bound() {
        let last_second = days_from_civil(10_000, 1, 1) * SECS_PER_DAY - 1;
        assert_eq!(last_second, 253_402_300_799);
        assert_eq!(last_second, crate::domain::limits::TIMESTAMP_MAX);
        assert_eq!(rfc3339(last_second), "9999-12-31T23:59:59+00:00");
        assert_eq!(rfc3339(last_second + 1), "10000-01-01T00:00:00+00:00");
        assert_eq!(civil_from_secs(last_second), (9999, 12, 31, 23, 59, 59));
        assert_eq!(date_to_days(9999, 12, 31), Some(2_932_896));
        assert_eq!(date_to_days(9999, 12, 32), None);
    }

    #[test]
    fn every_day_from_1900_to_10000_round_trips_and_matches_a_plain_count() {
        let start = days_from_civil(1900, 1, 1);
        assert_eq!(start, naive_days(1900, 1, 1));
        let end = days_from_civil(10_000, 1, 1);
        assert_eq!(end, naive_days(10_000, 1, 1));
        let mut expected = (1900, 1, 1);
        for days in start..end {
            let (y, m, d) = civil_from_days(days);
            assert_eq!((y, m, d), expected, "day {days}");
            assert_eq!(days_from_civil(y, m, d), days);
            expected = if d < days_in_month(y, m) {
                (y, m, d + 1)
            } else if m < 12 {
                (y, m + 1, 1)
            } else {
                (y + 1, 1, 1)
            };
        }
        assert_eq!(expected, (10_000, 1, 1));
    }

    #[test]
    fn impossible_dates() {
        for (y, m, d) in [
            (2023, 2, 29),
            (2026, 13, 1),
            (2026, 0, 1),
            (2026, 4, 31),
            (2026, 1, 0),
        ] {
            assert_eq!(date_to_days(y, m, d), None, "{y}-{m}-{d}");
        }
        assert_eq!(
            date_to_days(2026, 11, 22),
            Some(1_795_305_600 / SECS_PER_DAY)
        );
    }

    #[test]
    fn extreme_seconds_do_not_overflow() {
        for secs in [i64::MIN, i64::MAX] {
            let (y, m, d, h, min, s) = civil_from_secs(secs);
            assert!(
                (1..=12).contains(&m) && (1..=31).contains(&d),
                "{y}-{m}-{d}"
            );
            assert!(h < 24 && min < 60 && s < 60);
            assert_eq!(
                days_from_civil(y, m, d),
                secs.div_euclid(SECS_PER_DAY),
                "{secs}"
            );
        }
    }
}

//! UTC instants formatted as JavaScript's `Date` formats them.

const WEEKDAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// The largest time value a JavaScript `Date` holds (ECMA-262 §21.4.1.31).
const MAX_JS_MILLIS: u64 = 8_640_000_000_000_000;

/// A UTC instant broken down into calendar fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Civil {
    year: u64,
    month: u64,
    day: u64,
    weekday: u64,
    hour: u64,
    minute: u64,
    second: u64,
    millis: u64,
}

impl Civil {
    /// From milliseconds since the Unix epoch (Howard Hinnant's
    /// `civil_from_days`), or `None` past what a JavaScript `Date` holds.
    pub(super) fn from_millis(ms: u64) -> Option<Civil> {
        if ms > MAX_JS_MILLIS {
            return None;
        }
        let days = ms / 86_400_000;
        let in_day = ms % 86_400_000;
        let z = days + 719_468;
        let era = z / 146_097;
        let doe = z % 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        let year = yoe + era * 400 + u64::from(month <= 2);
        Some(Civil {
            year,
            month,
            day,
            // 1970-01-01 was a Thursday.
            weekday: (days + 4) % 7,
            hour: in_day / 3_600_000,
            minute: in_day / 60_000 % 60,
            second: in_day / 1000 % 60,
            millis: in_day % 1000,
        })
    }

    fn weekday_name(&self) -> &'static str {
        usize::try_from(self.weekday)
            .ok()
            .and_then(|i| WEEKDAYS.get(i))
            .copied()
            .unwrap_or("")
    }

    fn month_name(&self) -> &'static str {
        usize::try_from(self.month)
            .ok()
            .and_then(|m| m.checked_sub(1))
            .and_then(|i| MONTHS.get(i))
            .copied()
            .unwrap_or("")
    }

    /// `Date.prototype.toISOString()` (what `JSON.stringify` writes).
    fn iso(&self) -> String {
        let year = if self.year <= 9999 {
            format!("{:04}", self.year)
        } else {
            format!("+{:06}", self.year)
        };
        format!(
            "{year}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
            self.month, self.day, self.hour, self.minute, self.second, self.millis
        )
    }

    /// `Date.prototype.toString()` in a process whose time zone is UTC.
    fn node_string(&self) -> String {
        format!(
            "{} {} {:02} {:04} {:02}:{:02}:{:02} GMT+0000 (Coordinated Universal Time)",
            self.weekday_name(),
            self.month_name(),
            self.day,
            self.year,
            self.hour,
            self.minute,
            self.second
        )
    }

    /// `Date.prototype.toUTCString()`, the HTTP date format.
    fn http_date(&self) -> String {
        format!(
            "{}, {:02} {} {:04} {:02}:{:02}:{:02} GMT",
            self.weekday_name(),
            self.day,
            self.month_name(),
            self.year,
            self.hour,
            self.minute,
            self.second
        )
    }
}

/// `new Date(ms).toString()` in UTC (`"Invalid Date"` out of range).
pub(super) fn node_string(ms: u64) -> String {
    Civil::from_millis(ms).map_or_else(|| "Invalid Date".to_owned(), |c| c.node_string())
}

/// `new Date(ms).toUTCString()` (`"Invalid Date"` out of range).
pub(super) fn http_date(ms: u64) -> String {
    Civil::from_millis(ms).map_or_else(|| "Invalid Date".to_owned(), |c| c.http_date())
}

/// `new Date(ms).toISOString()`, or `None` where JavaScript throws a `RangeError`.
pub(crate) fn iso(ms: u64) -> Option<String> {
    Civil::from_millis(ms).map(|c| c.iso())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `(ms, toString() without the zone suffix, toUTCString(), toISOString())`,
    /// checked against GNU `date -u`.
    const CASES: &[(u64, &str, &str, &str)] = &[
        (
            0,
            "Thu Jan 01 1970 00:00:00",
            "Thu, 01 Jan 1970 00:00:00 GMT",
            "1970-01-01T00:00:00.000Z",
        ),
        (
            1_795_658_110_123,
            "Thu Nov 26 2026 01:55:10",
            "Thu, 26 Nov 2026 01:55:10 GMT",
            "2026-11-26T01:55:10.123Z",
        ),
        // Leap days: a year divisible by 400, an ordinary leap year.
        (
            951_782_400_000,
            "Tue Feb 29 2000 00:00:00",
            "Tue, 29 Feb 2000 00:00:00 GMT",
            "2000-02-29T00:00:00.000Z",
        ),
        (
            1_709_164_800_000,
            "Thu Feb 29 2024 00:00:00",
            "Thu, 29 Feb 2024 00:00:00 GMT",
            "2024-02-29T00:00:00.000Z",
        ),
        // Month ends of a common year and of a century that is not leap.
        (
            1_677_628_799_999,
            "Tue Feb 28 2023 23:59:59",
            "Tue, 28 Feb 2023 23:59:59 GMT",
            "2023-02-28T23:59:59.999Z",
        ),
        (
            1_677_628_800_000,
            "Wed Mar 01 2023 00:00:00",
            "Wed, 01 Mar 2023 00:00:00 GMT",
            "2023-03-01T00:00:00.000Z",
        ),
        (
            4_107_542_399_999,
            "Sun Feb 28 2100 23:59:59",
            "Sun, 28 Feb 2100 23:59:59 GMT",
            "2100-02-28T23:59:59.999Z",
        ),
        (
            4_107_542_400_000,
            "Mon Mar 01 2100 00:00:00",
            "Mon, 01 Mar 2100 00:00:00 GMT",
            "2100-03-01T00:00:00.000Z",
        ),
        // Year end.
        (
            1_735_689_599_999,
            "Tue Dec 31 2024 23:59:59",
            "Tue, 31 Dec 2024 23:59:59 GMT",
            "2024-12-31T23:59:59.999Z",
        ),
        (
            1_735_689_600_000,
            "Wed Jan 01 2025 00:00:00",
            "Wed, 01 Jan 2025 00:00:00 GMT",
            "2025-01-01T00:00:00.000Z",
        ),
        (
            253_402_300_799_999,
            "Fri Dec 31 9999 23:59:59",
            "Fri, 31 Dec 9999 23:59:59 GMT",
            "9999-12-31T23:59:59.999Z",
        ),
    ];

    #[test]
    fn formats_as_javascript() {
        for &(ms, string, utc, iso_string) in CASES {
            assert_eq!(
                node_string(ms),
                format!("{string} GMT+0000 (Coordinated Universal Time)"),
                "{ms}"
            );
            assert_eq!(http_date(ms), utc, "{ms}");
            assert_eq!(iso(ms).as_deref(), Some(iso_string), "{ms}");
        }
    }

    #[test]
    fn beyond_four_digit_years() {
        // new Date(253402300800000): the first instant of year 10000.
        assert_eq!(
            iso(253_402_300_800_000).as_deref(),
            Some("+010000-01-01T00:00:00.000Z")
        );
        assert_eq!(
            node_string(253_402_300_800_000),
            "Sat Jan 01 10000 00:00:00 GMT+0000 (Coordinated Universal Time)"
        );
        // The last valid Date, then one past it.
        assert_eq!(
            iso(MAX_JS_MILLIS).as_deref(),
            Some("+275760-09-13T00:00:00.000Z")
        );
        assert_eq!(iso(MAX_JS_MILLIS + 1), None);
        assert_eq!(node_string(MAX_JS_MILLIS + 1), "Invalid Date");
        assert_eq!(http_date(MAX_JS_MILLIS + 1), "Invalid Date");
    }
}

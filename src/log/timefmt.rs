//! Time formats: `yyyy-mm-dd HH:MM:SS+hh:mm` (entries, hook, stamps), the
//! data-log file-name stamp, RFC 3339 with microseconds (JSON). Pure: the
//! caller supplies the UTC offset in force at that instant (`sys`).

use time::{OffsetDateTime, UtcOffset};

/// An instant with the local UTC offset in force at that instant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LocalTime {
    /// Microseconds since the Unix epoch.
    pub epoch_us: i64,
    /// Offset from UTC in seconds, east positive.
    pub offset: i32,
}

impl LocalTime {
    fn parts(&self) -> OffsetDateTime {
        let off = UtcOffset::from_whole_seconds(self.offset).unwrap_or(UtcOffset::UTC);
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(self.epoch_us) * 1000)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH)
            .to_offset(off)
    }

    /// Whole seconds since the epoch.
    pub fn epoch_secs(&self) -> i64 {
        self.epoch_us.div_euclid(1_000_000)
    }

    fn offset_text(&self) -> String {
        let sign = if self.offset < 0 { '-' } else { '+' };
        let a = self.offset.unsigned_abs();
        format!("{sign}{:02}:{:02}", a / 3600, a % 3600 / 60)
    }

    /// Date, `sep`, time to the second: the body of every format here.
    fn date_time(&self, sep: &str, colons: bool) -> String {
        let t = self.parts();
        let c = if colons { ":" } else { "" };
        format!(
            "{:04}-{:02}-{:02}{sep}{:02}{c}{:02}{c}{:02}",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        )
    }

    /// `yyyy-mm-dd HH:MM:SS+hh:mm`.
    pub fn iso(&self) -> String {
        format!("{}{}", self.date_time(" ", true), self.offset_text())
    }

    /// `yyyy-mm-ddTHH:MM:SS.uuuuuu+hh:mm`.
    pub fn rfc3339_us(&self) -> String {
        let us = self.epoch_us.rem_euclid(1_000_000);
        format!(
            "{}.{us:06}{}",
            self.date_time("T", true),
            self.offset_text()
        )
    }

    /// `yyyy-mm-dd_HHMMSS`, for data-log file names.
    pub fn file_stamp(&self) -> String {
        self.date_time("_", false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        // 2026-11-23 20:30:05.123456 UTC, shown at +01:00
        let t = LocalTime {
            epoch_us: 1_795_465_805_123_456,
            offset: 3600,
        };
        assert_eq!(t.iso(), "2026-11-23 21:30:05+01:00");
        assert_eq!(t.rfc3339_us(), "2026-11-23T21:30:05.123456+01:00");
        assert_eq!(t.file_stamp(), "2026-11-23_213005");
        assert_eq!(t.epoch_secs(), 1_795_465_805);
        let w = LocalTime {
            epoch_us: 0,
            offset: -(3 * 3600 + 1800),
        };
        assert_eq!(w.iso(), "1969-12-31 20:30:00-03:30");
    }
}

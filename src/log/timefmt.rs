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

    /// `Mmm dd HH:MM:SS` (day padded with a blank), the time stamp of a
    /// BSD syslog message (RFC 3164).
    pub fn syslog_stamp(&self) -> String {
        const MONTHS: [&str; 12] = [
            "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
        ];
        let t = self.parts();
        format!(
            "{} {:>2} {:02}:{:02}:{:02}",
            MONTHS[usize::from(u8::from(t.month()) - 1)],
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        )
    }

    /// `yyyy-mm-dd_HHMMSS`, for data-log file names.
    pub fn file_stamp(&self) -> String {
        self.date_time("_", false)
    }
}

/// The date of a day number (days since 1970-01-01): H. Hinnant's
/// `civil_from_days`, the inverse of [`days_from_civil`].
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

impl LocalTime {
    /// Append `yyyy-mm-dd?HH:MM:SS+hh:mm` with `sep` between date and time
    /// (`iso` with a space, RFC 3339 with `T`), without the allocations of
    /// [`LocalTime::iso`]: the report writes millions of these.
    pub fn push_seconds(&self, out: &mut String, sep: char) {
        let local = self.epoch_secs() + i64::from(self.offset);
        let (y, mo, d) = civil_from_days(local.div_euclid(86_400));
        let sod = local.rem_euclid(86_400) as u32;
        let two = |out: &mut String, v: u32| {
            out.push(char::from(b'0' + (v / 10 % 10) as u8));
            out.push(char::from(b'0' + (v % 10) as u8));
        };
        if (0..10_000).contains(&y) {
            let y = y as u32;
            two(out, y / 100);
            two(out, y % 100);
        } else {
            out.push_str(&format!("{y:04}"));
        }
        out.push('-');
        two(out, mo);
        out.push('-');
        two(out, d);
        out.push(sep);
        two(out, sod / 3600);
        out.push(':');
        two(out, sod % 3600 / 60);
        out.push(':');
        two(out, sod % 60);
        out.push(if self.offset < 0 { '-' } else { '+' });
        let a = self.offset.unsigned_abs();
        two(out, a / 3600);
        out.push(':');
        two(out, a % 3600 / 60);
    }
}

/// Days from 1970-01-01 to a proleptic Gregorian date (H. Hinnant's
/// `days_from_civil`); `None` for a date that does not exist.
pub fn days_from_civil(y: i64, m: u32, d: u32) -> Option<i64> {
    if !(1..=12).contains(&m) || d == 0 || d > days_in_month(y, m) {
        return None;
    }
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some(era * 146_097 + doe - 719_468)
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        4 | 6 | 9 | 11 => 30,
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        _ => 31,
    }
}

/// `n` ASCII digits at the start of `b`, as a number.
fn digits(b: &[u8], n: usize) -> Option<u32> {
    let d = b.get(..n)?;
    d.iter().try_fold(0u32, |acc, &c| {
        c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
    })
}

/// `yyyy-mm-dd`, a separator (`T`, `t` or a space), `HH:MM[:SS[.frac]]`,
/// then what is left: the naive date-time as seconds since the epoch (as
/// if it were UTC), microseconds, and the unread rest.
fn naive(s: &str, need_secs: bool) -> Option<(i64, i64, &str)> {
    let b = s.as_bytes();
    let y = digits(b, 4)?;
    if b.get(4) != Some(&b'-') || b.get(7) != Some(&b'-') {
        return None;
    }
    let (mo, d) = (digits(&b[5..], 2)?, digits(&b[8..], 2)?);
    let days = days_from_civil(i64::from(y), mo, d)?;
    let mut i = 10;
    let (mut h, mut mi, mut sec, mut us) = (0, 0, 0, 0i64);
    if matches!(b.get(i), Some(b'T' | b't' | b' ')) && b.get(i + 1).is_some_and(u8::is_ascii_digit)
    {
        h = digits(&b[i + 1..], 2)?;
        if b.get(i + 3) != Some(&b':') {
            return None;
        }
        mi = digits(&b[i + 4..], 2)?;
        i += 6;
        if b.get(i) == Some(&b':') {
            sec = digits(&b[i + 1..], 2)?;
            i += 3;
            if b.get(i) == Some(&b'.') {
                i += 1;
                let start = i;
                while b.get(i).is_some_and(u8::is_ascii_digit) {
                    i += 1;
                }
                let frac = &s[start..i];
                if frac.is_empty() {
                    return None;
                }
                let mut scaled = 0i64;
                for (k, c) in frac.bytes().take(6).enumerate() {
                    scaled += i64::from(c - b'0') * 10i64.pow(5 - k as u32);
                }
                us = scaled;
            }
        } else if need_secs {
            return None;
        }
        if h > 23 || mi > 59 || sec > 60 {
            return None;
        }
    } else if need_secs {
        return None;
    }
    let secs = days * 86_400 + i64::from(h * 3600 + mi * 60 + sec);
    Some((secs, us, &s[i..]))
}

/// `Z` or `+hh:mm` / `-hh:mm` (also `+hhmm`), the whole of `s`.
fn offset(s: &str) -> Option<i32> {
    if s == "Z" || s == "z" {
        return Some(0);
    }
    let b = s.as_bytes();
    let sign = match b.first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let h = digits(&b[1..], 2)?;
    let m = match b.len() {
        6 if b[3] == b':' => digits(&b[4..], 2)?,
        5 => digits(&b[3..], 2)?,
        _ => return None,
    };
    if h > 23 || m > 59 {
        return None;
    }
    Some(sign * (h * 3600 + m * 60) as i32)
}

impl LocalTime {
    /// Read back [`LocalTime::iso`] and [`LocalTime::rfc3339_us`]: RFC 3339
    /// with `T` or a space, optional fraction (microseconds kept), `Z` or a
    /// numeric offset.
    pub fn parse(s: &str) -> Option<LocalTime> {
        let (secs, us, rest) = naive(s, true)?;
        let off = offset(rest)?;
        Some(LocalTime {
            epoch_us: (secs - i64::from(off)) * 1_000_000 + us,
            offset: off,
        })
    }
}

/// `yyyy-mm-dd[ HH:MM[:SS]]` without an offset: the naive date-time, as
/// seconds since the epoch read as if it were UTC (the caller applies the
/// zone). `None` unless the whole text is of that form.
pub fn parse_naive(s: &str) -> Option<i64> {
    match naive(s, false)? {
        (secs, 0, "") => Some(secs),
        _ => None,
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
        assert_eq!(t.syslog_stamp(), "Nov 23 21:30:05");
        let early = LocalTime {
            epoch_us: 1_795_465_805_123_456 - 22 * 86_400_000_000,
            offset: 0,
        };
        assert_eq!(early.syslog_stamp(), "Nov  1 20:30:05");
        let w = LocalTime {
            epoch_us: 0,
            offset: -(3 * 3600 + 1800),
        };
        assert_eq!(w.iso(), "1969-12-31 20:30:00-03:30");
    }

    #[test]
    fn parse_round_trips() {
        for (us, off) in [
            (1_795_465_805_123_456, 3600),
            (0, -(3 * 3600 + 1800)),
            (951_782_400_000_000, 0), // 2000-02-29
            (-86_400_000_000, 19800),
        ] {
            let t = LocalTime {
                epoch_us: us,
                offset: off,
            };
            assert_eq!(LocalTime::parse(&t.rfc3339_us()), Some(t));
            let whole = LocalTime {
                epoch_us: us.div_euclid(1_000_000) * 1_000_000,
                offset: off,
            };
            assert_eq!(LocalTime::parse(&t.iso()), Some(whole));
        }
        let z = LocalTime::parse("2026-11-23T20:30:05Z").unwrap();
        assert_eq!((z.epoch_us, z.offset), (1_795_465_805_000_000, 0));
        let frac = LocalTime::parse("2026-11-23T20:30:05.5+0000").unwrap();
        assert_eq!(frac.epoch_us, 1_795_465_805_500_000);
    }

    #[test]
    fn parse_rejects() {
        for bad in [
            "",
            "2026-11-23",
            "2026-11-23 21:30:05",
            "2026-02-30 10:00:00+00:00",
            "2026-11-23 24:00:00+00:00",
            "2026-11-23 21:30:05+01:00x",
            "2026-11-23 21:30:05.+01:00",
            "2026-1-23 21:30:05+01:00",
            "２026-11-23 21:30:05+01:00",
        ] {
            assert_eq!(LocalTime::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn push_seconds_is_iso() {
        let mut t = LocalTime {
            epoch_us: -5_000_000_000_000,
            offset: -(3 * 3600 + 1800),
        };
        // every 7 h 13 min 17 s from 1811 to 2128, at three offsets
        for i in 0..400_000 {
            t.epoch_us += 26_997_000_000;
            t.offset = [0, 3600, -(3 * 3600 + 1800)][i % 3];
            let mut s = String::new();
            t.push_seconds(&mut s, ' ');
            assert_eq!(s, t.iso());
            s.clear();
            t.push_seconds(&mut s, 'T');
            assert_eq!(s, t.iso().replacen(' ', "T", 1));
        }
        for day in -800_000..800_000 {
            let (y, m, d) = civil_from_days(day);
            assert_eq!(days_from_civil(y, m, d), Some(day));
        }
    }

    #[test]
    fn naive_forms() {
        assert_eq!(parse_naive("2026-11-23"), Some(1_795_392_000));
        assert_eq!(parse_naive("2026-11-23 20:30"), Some(1_795_465_800));
        assert_eq!(parse_naive("2026-11-23 20:30:05"), Some(1_795_465_805));
        assert_eq!(parse_naive("2026-11-23T20:30:05"), Some(1_795_465_805));
        assert_eq!(parse_naive("2026-11-23 20"), None);
        assert_eq!(parse_naive("2026-11-23 20:30:05+01:00"), None);
        assert_eq!(parse_naive("2026-11-23 20:30:05.1"), None);
        assert_eq!(days_from_civil(1970, 1, 1), Some(0));
        assert_eq!(days_from_civil(2024, 2, 29), Some(19_782));
        assert_eq!(days_from_civil(2023, 2, 29), None);
    }
}

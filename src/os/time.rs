//! Local time: the time-zone rules (`tzset`), the UTC offset in force at
//! an instant (`localtime_r`), and the current time with its offset. The
//! formatting is pure and lives in `log::timefmt`.
//!
//! [`now_local`] remembers the offset it found and until when it holds
//! (the zone's next transition, from the same rules read by `jiff`, used
//! only when jiff and libc agree on the offset now): the parent stamps
//! every connection and each child its end, and `localtime_r` writes
//! libc's time-zone globals on every call, two pages each process would
//! otherwise copy after every fork.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicI32, AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::log::timefmt::LocalTime;

/// Load the time-zone rules once (TZ), so `localtime_r` sees them.
pub fn tzset() {
    // SAFETY: tzset only reads the environment and initialises libc's
    // time-zone state; called while the process is single threaded.
    unsafe { tzset_c() }
}

unsafe extern "C" {
    #[link_name = "tzset"]
    fn tzset_c();
}

/// UTC offset in seconds in force at `epoch_secs`, local time zone.
pub fn local_offset(epoch_secs: i64) -> i32 {
    let t: libc::time_t = epoch_secs as libc::time_t;
    // SAFETY: tm is plain old data, fully written by localtime_r on
    // success; both pointers are valid for the call.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: see above.
    let r = unsafe { libc::localtime_r(&t, &mut tm) };
    if r.is_null() { 0 } else { tm.tm_gmtoff as i32 }
}

/// The UTC seconds `[FROM, UNTIL)` over which `OFFSET` is the local
/// offset (empty at first). One process, one thread: relaxed atomics.
static FROM: AtomicI64 = AtomicI64::new(0);
static UNTIL: AtomicI64 = AtomicI64::new(0);
static OFFSET: AtomicI32 = AtomicI32::new(0);
/// The system time zone as jiff reads it (TZ, /etc/localtime), loaded once.
static ZONE: OnceLock<Option<jiff::tz::TimeZone>> = OnceLock::new();

/// From `secs` on, until when the offset `offset` (what libc says at
/// `secs`) holds in `tz`: its next transition; `None` when jiff sees
/// another offset at `secs` (then nothing is remembered).
pub fn valid_until(tz: &jiff::tz::TimeZone, secs: i64, offset: i32) -> Option<i64> {
    let ts = jiff::Timestamp::from_second(secs).ok()?;
    if tz.to_offset(ts).seconds() != offset {
        return None;
    }
    Some(match tz.following(ts).next() {
        Some(t) => t.timestamp().as_second(),
        None => i64::MAX,
    })
}

/// The local offset at `secs`, from the remembered span when it covers it.
fn offset_now(secs: i64) -> i32 {
    if FROM.load(Ordering::Relaxed) <= secs && secs < UNTIL.load(Ordering::Relaxed) {
        return OFFSET.load(Ordering::Relaxed);
    }
    let off = local_offset(secs);
    let until = ZONE
        .get_or_init(|| jiff::tz::TimeZone::try_system().ok())
        .as_ref()
        .and_then(|tz| valid_until(tz, secs, off));
    match until {
        Some(u) if u > secs => {
            OFFSET.store(off, Ordering::Relaxed);
            FROM.store(secs, Ordering::Relaxed);
            UNTIL.store(u, Ordering::Relaxed);
        }
        _ => UNTIL.store(i64::MIN, Ordering::Relaxed),
    }
    off
}

/// The current time with its local offset.
pub fn now_local() -> LocalTime {
    let us = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0);
    LocalTime {
        epoch_us: us,
        offset: offset_now(us.div_euclid(1_000_000)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn span_ends_at_the_next_transition() {
        let Ok(ny) = jiff::tz::TimeZone::get("America/New_York") else {
            eprintln!("note: no tzdb, skipped");
            return;
        };
        // 2023-03-12 07:00:00 UTC: EST (-5 h) becomes EDT (-4 h)
        let t = 1_678_604_400;
        assert_eq!(valid_until(&ny, t - 3600, -5 * 3600), Some(t));
        assert_eq!(valid_until(&ny, t - 1, -5 * 3600), Some(t));
        // from the transition on, the next one (2023-11-05 06:00 UTC)
        assert_eq!(valid_until(&ny, t, -4 * 3600), Some(1_699_164_000));
        // jiff and libc disagree: nothing is remembered
        assert_eq!(valid_until(&ny, t, -5 * 3600), None);
        assert_eq!(valid_until(&jiff::tz::TimeZone::UTC, t, 0), Some(i64::MAX));
    }

    #[test]
    fn now_local_matches_localtime_r() {
        for _ in 0..3 {
            let n = now_local();
            assert_eq!(n.offset, local_offset(n.epoch_us.div_euclid(1_000_000)));
        }
    }
}

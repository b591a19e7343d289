//! Local time: the time-zone rules (`tzset`), the UTC offset in force at
//! an instant (`localtime_r`), and the current time with its offset. The
//! formatting is pure and lives in `log::timefmt`.

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

/// The current time with its local offset.
pub fn now_local() -> LocalTime {
    let us = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0);
    LocalTime {
        epoch_us: us,
        offset: local_offset(us.div_euclid(1_000_000)),
    }
}

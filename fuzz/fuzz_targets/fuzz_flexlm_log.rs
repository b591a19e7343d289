//! Fuzzes the FlexNet debug-log parser and the join (`report::flexlm::
//! analyze`): any bytes as a debug log (lossy UTF-8, as `ipprotreport`
//! reads it), in UTC, Europe/Paris (DST folds and gaps) or
//! America/St_Johns (half-hour offset), against a few connections whose
//! user@host the input may name. Invariants: never panics; warnings stay
//! bounded; every check-in is at or after its checkout; licenses ≥ 1; rows are sorted by time; a match other than
//! `none` names a client IP and a connection; peaks are at least 1.
#![no_main]

use ipprotd::report::flexlm::{MAX_WARNINGS, analyze};
use ipprotd::report::{Match, Session};
use libfuzzer_sys::fuzz_target;

const ZONES: [&str; 3] = ["UTC", "Europe/Paris", "America/St_Johns"];
/// 2022-05-05T08:00:00Z
const BASE_US: i64 = 1_651_737_600_000_000;

fn sessions() -> Vec<Session> {
    let mk = |conn: u64, start_s: i64, len_s: i64, ip: &str, user: &str, host: &str| Session {
        conn: Some(conn),
        start_us: BASE_US + start_s * 1_000_000,
        end_us: BASE_US + (start_s + len_s) * 1_000_000,
        client_ip: ip.into(),
        user: Some(user.into()),
        host: Some(host.into()),
        status: "ok".into(),
        ..Session::default()
    };
    vec![
        mk(1, 0, 7200, "10.0.0.1", "a", "h"),
        mk(2, 60, 7200, "10.0.0.1", "a", "h"),
        mk(3, 120, 600, "10.0.0.2", "a", "h"),
        mk(4, 3600, 60, "10.0.0.3", "u", "H"),
        mk(5, -86_400, 300_000, "10.0.0.4", "José Juan", "PC"),
    ]
}

fuzz_target!(|data: &[u8]| {
    let (zone, log) = match data.split_first() {
        Some((z, rest)) => (ZONES[usize::from(*z) % ZONES.len()], rest),
        None => ("UTC", data),
    };
    let text = String::from_utf8_lossy(log).into_owned();
    let logs = [("fuzz.log".to_string(), text)];
    let r = match analyze(&logs, Some(zone), &sessions()) {
        Ok(r) => r,
        Err(e) => panic!("{zone} is a known zone: {e}"),
    };
    assert!(r.warnings.len() <= MAX_WARNINGS + 1, "{}", r.warnings.len());
    for c in &r.checkouts {
        if let Some(t) = c.in_us {
            assert!(t >= c.out_us, "{c:?}");
        }
        assert!(c.licenses >= 1, "{c:?}");
        assert_eq!(c.matched == Match::None, c.client_ip.is_none(), "{c:?}");
        assert_eq!(c.matched == Match::None, c.conn.is_none(), "{c:?}");
    }
    assert!(r.checkouts.windows(2).all(|w| w[0].out_us <= w[1].out_us));
    assert!(r.denials.windows(2).all(|w| w[0].time_us <= w[1].time_us));
    assert!(r.unsupported.windows(2).all(|w| w[0].time_us <= w[1].time_us));
    for d in &r.denials {
        assert_eq!(d.matched == Match::None, d.client_ip.is_none(), "{d:?}");
    }
    for p in &r.peaks {
        assert!(p.peak >= 1, "{p:?}");
    }
    let _ = r.offset_us;
});

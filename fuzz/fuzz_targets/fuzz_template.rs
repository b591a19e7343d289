//! Fuzzes the connection-log template parser (`-C`, `--open-format`) and,
//! for every format it accepts, the renderer, with an identity full of
//! hostile strings (control characters, `|`, newlines, quotes,
//! backslashes, non-ASCII). Invariants: parsing never panics; an error
//! names a column inside the format; an accepted format renders to exactly
//! one line per literal newline of the format (values from the network
//! never add lines or `|`), ending with `\n`; a JSON entry is one line.
#![no_main]

use std::net::SocketAddr;
use std::path::PathBuf;

use ipprotd::identity::Identity;
use ipprotd::log::conninfo::{ConnInfo, Status};
use ipprotd::log::template::{Part, Template};
use ipprotd::log::timefmt::LocalTime;
use libfuzzer_sys::fuzz_target;

/// Strings a client could send as its identity.
const HOSTILE: &[&str] = &[
    "a|b\nc\rd\u{0}e\u{7f}f",
    "\"},{\"user\":\"root\\",
    "%n%s%{user}",
    "\u{85}\u{2028}\u{feff}ü€𝄞",
    "",
];

fn info(s: &str, seed: u8) -> ConnInfo {
    let pick = |k: usize| -> Option<String> {
        match (usize::from(seed) + k) % (HOSTILE.len() + 2) {
            0 => None,
            1 => Some(s.to_string()),
            n => Some(HOSTILE[n - 2].to_string()),
        }
    };
    // A real UTC offset (-12:00 .. +14:00 in quarter hours).
    let offset = (i32::from(seed) % 105 - 48) * 900;
    let start = 1_795_465_805_123_456 + i64::from(seed) * 997_001;
    ConnInfo {
        start: LocalTime {
            epoch_us: start,
            offset,
        },
        end: LocalTime {
            epoch_us: start + i64::from(seed) * 1_234_567,
            offset,
        },
        client: "[::ffff:10.0.0.9]:40000".parse::<SocketAddr>().unwrap(),
        local: "[fe80::1]:1726".parse::<SocketAddr>().unwrap(),
        dest: if seed & 1 == 0 {
            None
        } else {
            Some("[::1]:27000".parse::<SocketAddr>().unwrap())
        },
        bytes_in: u64::from(seed) << 40,
        bytes_out: u64::MAX - u64::from(seed),
        file: if seed & 2 == 0 {
            None
        } else {
            Some(PathBuf::from(
                "/var/log/ipprot/prot_2026-11-23_213005_7_10.0.0.9.gz",
            ))
        },
        sha256: if seed & 2 == 0 { None } else { pick(4) },
        tls: if seed & 32 == 0 { None } else { Some("terminated") },
        conn: u64::from(seed),
        status: if seed & 4 == 0 {
            Status::Ok
        } else {
            Status::Open
        },
        identity: Identity {
            proto: if seed & 8 == 0 { None } else { Some("flexlm") },
            user: pick(0),
            host: pick(1),
            display: pick(2),
            pid: pick(3),
            program: pick(4),
            service: pick(5),
            vendor_host: pick(6),
            vendor_port: if seed & 16 == 0 { None } else { Some(u16::MAX) },
        },
    }
}

fuzz_target!(|data: &[u8]| {
    let s = String::from_utf8_lossy(data);
    let t = match Template::parse(&s) {
        Ok(t) => t,
        Err(e) => {
            // "unknown escape '...' at column N", N a column of the format
            let col: usize = e
                .rsplit_once("at column ")
                .and_then(|(_, n)| n.parse().ok())
                .unwrap_or_else(|| panic!("error without a column: {e:?}"));
            assert!(col >= 1 && col <= s.chars().count(), "{e:?} for {s:?}");
            return;
        }
    };
    for seed in [0u8, 1, 6, 9, 31, 200, 255] {
        let out = t.render(&info(&s, seed));
        assert!(out.ends_with('\n'), "{out:?}");
        match &t {
            Template::Json => {
                assert_eq!(out.matches('\n').count(), 1, "{out:?}");
                assert!(out.starts_with('{') && out.ends_with("}\n"), "{out:?}");
            }
            Template::Text(parts) => {
                let lits: String = parts
                    .iter()
                    .filter_map(|p| match p {
                        Part::Lit(l) => Some(l.as_str()),
                        Part::Field(_) => None,
                    })
                    .collect();
                let ends_nl = matches!(parts.last(), Some(Part::Lit(l)) if l.ends_with('\n'));
                let lines = lits.matches('\n').count() + usize::from(!ends_nl);
                assert_eq!(out.matches('\n').count(), lines, "{s:?} -> {out:?}");
                assert_eq!(
                    out.matches('|').count(),
                    lits.matches('|').count(),
                    "{s:?} -> {out:?}"
                );
            }
        }
    }
});

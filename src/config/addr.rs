//! Address forms: `port[@host]` (`-p`, `-P`), the `-P` failover list, and
//! the text form of an address (IPv4-mapped IPv6 shown as IPv4). Pure.

use std::net::{IpAddr, SocketAddr};

/// One destination of `-P`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dest {
    pub port: u16,
    pub host: String,
}

/// Split `port[@host]` into its parts; the port is still text.
pub fn split_port_host(s: &str) -> (&str, Option<&str>) {
    match s.split_once('@') {
        Some((p, h)) => (p, Some(h)),
        None => (s, None),
    }
}

/// Parse a port in `min..=65535`.
pub fn parse_port(s: &str, min: u16) -> Option<u16> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse::<u16>().ok().filter(|p| *p >= min)
}

/// A host as written by the user: IPv6 literals may be bracketed.
pub fn unbracket(h: &str) -> &str {
    h.strip_prefix('[')
        .and_then(|x| x.strip_suffix(']'))
        .unwrap_or(h)
}

/// Parse `-P port[@host][,port[@host]...]`, with `default_host` from `-h`.
pub fn parse_dests(s: &str, default_host: &str) -> Result<Vec<Dest>, String> {
    let mut v = Vec::new();
    for item in s.split(',') {
        let (p, h) = split_port_host(item);
        let port =
            parse_port(p, 1).ok_or_else(|| format!("invalid port '{p}' (must be 1 to 65535)"))?;
        let host = match h {
            Some("") => return Err(format!("empty host in '{item}'")),
            Some(h) => unbracket(h).to_string(),
            None => default_host.to_string(),
        };
        v.push(Dest { port, host });
    }
    Ok(v)
}

/// The address as users see it: an IPv4-mapped IPv6 address as IPv4.
pub fn canonical(ip: IpAddr) -> IpAddr {
    ip.to_canonical()
}

/// Text form of an IP address (canonical).
pub fn ip_text(ip: IpAddr) -> String {
    canonical(ip).to_string()
}

/// Text form `ADDR:PORT`, IPv6 bracketed.
pub fn sock_text(a: SocketAddr) -> String {
    match canonical(a.ip()) {
        IpAddr::V4(v4) => format!("{v4}:{}", a.port()),
        IpAddr::V6(v6) => format!("[{v6}]:{}", a.port()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dests() {
        let d = parse_dests("1726@lic1,27000,5432@[::1]", "localhost").unwrap();
        assert_eq!(
            d,
            vec![
                Dest {
                    port: 1726,
                    host: "lic1".into()
                },
                Dest {
                    port: 27000,
                    host: "localhost".into()
                },
                Dest {
                    port: 5432,
                    host: "::1".into()
                },
            ]
        );
        assert!(parse_dests("0", "h").is_err());
        assert!(parse_dests("70000", "h").is_err());
        assert!(parse_dests("80@", "h").is_err());
        assert!(parse_dests("x", "h").is_err());
    }

    #[test]
    fn mapped_is_v4() {
        let ip: IpAddr = "::ffff:10.1.2.3".parse().unwrap();
        assert_eq!(ip_text(ip), "10.1.2.3");
        let s: SocketAddr = "[::1]:80".parse().unwrap();
        assert_eq!(sock_text(s), "[::1]:80");
    }
}

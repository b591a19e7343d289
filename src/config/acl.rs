//! The `-r` allow-list: IP addresses and CIDR networks, IPv4 and IPv6.
//! A client is matched in its canonical form, so an IPv4 rule matches the
//! same client arriving as an IPv4-mapped address on a dual-stack socket.
//! Pure.

use std::net::IpAddr;

/// The prefix length of the IPv4-mapped IPv6 range `::ffff:0:0/96`.
const MAPPED_PREFIX: u8 = 96;

/// One rule: a network and its prefix length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rule {
    net: IpAddr,
    prefix: u8,
}

impl Rule {
    /// Parse `ADDR` or `ADDR/PREFIX`; host names are not accepted.
    pub fn parse(s: &str) -> Option<Rule> {
        let (a, p) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let net: IpAddr = a.parse().ok()?;
        let max = if net.is_ipv4() { 32 } else { 128 };
        let prefix = match p {
            None => max,
            Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {
                p.parse::<u8>().ok().filter(|n| *n <= max)?
            }
            Some(_) => return None,
        };
        // an IPv4-mapped network of at least /96 (`::ffff:10.0.0.0/104`) is
        // the IPv4 network it maps (`10.0.0.0/8`), as clients are matched
        Some(match net.to_canonical() {
            IpAddr::V4(v4) if net.is_ipv6() && prefix >= MAPPED_PREFIX => Rule {
                net: IpAddr::V4(v4),
                prefix: prefix - MAPPED_PREFIX,
            },
            // wider than the mapped range: an IPv6 network
            IpAddr::V4(_) => Rule { net, prefix },
            c => Rule { net: c, prefix },
        })
    }

    fn matches(&self, ip: IpAddr) -> bool {
        match (self.net, ip) {
            (IpAddr::V4(n), IpAddr::V4(c)) => prefix_eq(&n.octets(), &c.octets(), self.prefix),
            (IpAddr::V6(n), IpAddr::V6(c)) => prefix_eq(&n.octets(), &c.octets(), self.prefix),
            _ => false,
        }
    }
}

fn prefix_eq(a: &[u8], b: &[u8], prefix: u8) -> bool {
    let full = usize::from(prefix / 8);
    let rest = prefix % 8;
    if a[..full] != b[..full] {
        return false;
    }
    if rest == 0 {
        return true;
    }
    let mask = 0xffu8 << (8 - rest);
    a[full] & mask == b[full] & mask
}

/// The allow-list; empty allows everybody.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Acl {
    rules: Vec<Rule>,
}

impl Acl {
    pub fn new(rules: Vec<Rule>) -> Acl {
        Acl { rules }
    }

    pub fn allows(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.rules.is_empty() || self.rules.iter().any(|r| r.matches(ip))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acl(rules: &[&str]) -> Acl {
        Acl::new(rules.iter().map(|r| Rule::parse(r).unwrap()).collect())
    }

    #[test]
    fn matching() {
        let a = acl(&["10.1.0.0/16", "192.168.1.7", "fd00::/8"]);
        assert!(a.allows("10.1.200.3".parse().unwrap()));
        assert!(!a.allows("10.2.0.1".parse().unwrap()));
        assert!(a.allows("192.168.1.7".parse().unwrap()));
        assert!(a.allows("::ffff:192.168.1.7".parse().unwrap()));
        assert!(!a.allows("192.168.1.8".parse().unwrap()));
        assert!(a.allows("fd12::1".parse().unwrap()));
        assert!(!a.allows("fe80::1".parse().unwrap()));
        assert!(acl(&[]).allows("1.2.3.4".parse().unwrap()));
        assert!(acl(&["0.0.0.0/0"]).allows("8.8.8.8".parse().unwrap()));
        assert!(acl(&["10.0.0.0/9"]).allows("10.127.0.1".parse().unwrap()));
        assert!(!acl(&["10.0.0.0/9"]).allows("10.128.0.1".parse().unwrap()));
        // IPv4-mapped networks are the IPv4 networks they map
        let m = acl(&["::ffff:10.0.0.0/104", "::ffff:192.168.1.7"]);
        assert!(m.allows("10.200.0.1".parse().unwrap()));
        assert!(m.allows("::ffff:10.200.0.1".parse().unwrap()));
        assert!(!m.allows("11.0.0.1".parse().unwrap()));
        assert!(m.allows("192.168.1.7".parse().unwrap()));
        assert!(acl(&["::ffff:0:0/96"]).allows("8.8.8.8".parse().unwrap()));
        assert!(!acl(&["::ffff:0:0/96"]).allows("2001:db8::1".parse().unwrap()));
        assert_eq!(Rule::parse("::ffff:0:0/96"), Rule::parse("0.0.0.0/0"));
        assert_eq!(Rule::parse("::ffff:1.2.3.4/128"), Rule::parse("1.2.3.4"));
    }

    #[test]
    fn parsing() {
        for bad in [
            "",
            "host.example",
            "10.0.0.0/33",
            "::/129",
            "1.2.3.4/",
            "1.2.3.4/x",
        ] {
            assert!(Rule::parse(bad).is_none(), "{bad}");
        }
    }
}

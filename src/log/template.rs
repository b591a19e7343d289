//! The connection-log entry format (`-C`, `--open-format`): parsed once at
//! start (an unknown escape names itself and its 1-based column), rendered
//! per connection to one text line or one JSON object. Pure.

use std::fmt::Write as _;

use crate::config::addr::ip_text;
use crate::log::conninfo::{ConnInfo, Status};

/// One value an escape stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    Start,
    End,
    Secs,
    ClientIp,
    ClientPort,
    LocalIp,
    LocalPort,
    DestIp,
    DestPort,
    BytesIn,
    BytesOut,
    File,
    Conn,
    Status,
    Proto,
    User,
    Host,
    Display,
    Pid,
    Program,
    Service,
    VendorHost,
    VendorPort,
}

/// Long names, in JSON key order; `short` is the one-letter escape.
const FIELDS: &[(Field, &str, Option<char>)] = &[
    (Field::Start, "start", Some('s')),
    (Field::End, "end", Some('e')),
    (Field::Secs, "secs", Some('S')),
    (Field::ClientIp, "client_ip", Some('i')),
    (Field::ClientPort, "client_port", Some('p')),
    (Field::LocalIp, "local_ip", Some('a')),
    (Field::LocalPort, "local_port", Some('A')),
    (Field::DestIp, "dest_ip", Some('o')),
    (Field::DestPort, "dest_port", Some('O')),
    (Field::BytesIn, "bytes_in", Some('b')),
    (Field::BytesOut, "bytes_out", Some('B')),
    (Field::File, "file", Some('f')),
    (Field::Conn, "conn", Some('c')),
    (Field::Status, "status", Some('x')),
    (Field::Proto, "proto", None),
    (Field::User, "user", None),
    (Field::Host, "host", None),
    (Field::Display, "display", None),
    (Field::Pid, "pid", None),
    (Field::Program, "program", None),
    (Field::Service, "service", None),
    (Field::VendorHost, "vendor_host", None),
    (Field::VendorPort, "vendor_port", None),
];

/// The default entry format.
pub const DEFAULT_FORMAT: &str =
    "%s|%e|%S|%i|%p|%b|%B|%x|%{proto}|%{user}|%{host}|%{display}|%{pid}|%{program}";

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Part {
    Lit(String),
    Field(Field),
}

/// A parsed entry format.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Template {
    Text(Vec<Part>),
    Json,
}

/// One rendered value: a number, a string from us, a string from the
/// network (sanitised in text), or unknown.
enum Value {
    Num(i128),
    Str(String),
    Net(String),
    Unknown,
}

impl Template {
    /// Parse a format; `json` selects JSON entries.
    pub fn parse(fmt: &str) -> Result<Template, String> {
        if fmt == "json" {
            return Ok(Template::Json);
        }
        let mut parts = Vec::new();
        let mut lit = String::new();
        let chars: Vec<char> = fmt.chars().collect();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            if c != '%' {
                lit.push(c);
                i += 1;
                continue;
            }
            let col = i + 1;
            let Some(&e) = chars.get(i + 1) else {
                return Err(format!("unknown escape '%' at column {col}"));
            };
            let field = match e {
                '%' => {
                    lit.push('%');
                    None
                }
                'n' => {
                    lit.push('\n');
                    None
                }
                '{' => {
                    let close = chars[i + 2..].iter().position(|&c| c == '}');
                    let Some(len) = close else {
                        let rest: String = chars[i..].iter().collect();
                        return Err(format!("unknown escape '{rest}' at column {col}"));
                    };
                    let name: String = chars[i + 2..i + 2 + len].iter().collect();
                    let f = FIELDS.iter().find(|(_, n, _)| *n == name).map(|x| x.0);
                    let Some(f) = f else {
                        return Err(format!("unknown escape '%{{{name}}}' at column {col}"));
                    };
                    i += len + 1; // the name and the closing brace
                    Some(f)
                }
                c => {
                    let f = FIELDS.iter().find(|(_, _, s)| *s == Some(c)).map(|x| x.0);
                    match f {
                        Some(f) => Some(f),
                        None => return Err(format!("unknown escape '%{c}' at column {col}")),
                    }
                }
            };
            if let Some(f) = field {
                if !lit.is_empty() {
                    parts.push(Part::Lit(std::mem::take(&mut lit)));
                }
                parts.push(Part::Field(f));
            }
            i += 2;
        }
        if !lit.is_empty() {
            parts.push(Part::Lit(lit));
        }
        Ok(Template::Text(parts))
    }

    /// Render one entry, ending with exactly one `\n` at the end (added if
    /// the format does not end with `%n`).
    pub fn render(&self, info: &ConnInfo) -> String {
        let mut out = String::new();
        match self {
            Template::Json => render_json(info, &mut out),
            Template::Text(parts) => {
                for p in parts {
                    match p {
                        Part::Lit(s) => out.push_str(s),
                        Part::Field(f) => match value(*f, info) {
                            Value::Num(n) => {
                                let _ = write!(out, "{n}");
                            }
                            Value::Str(s) => out.push_str(&s),
                            Value::Net(s) => out.push_str(&sanitise(&s)),
                            Value::Unknown => out.push('-'),
                        },
                    }
                }
            }
        }
        if !out.ends_with('\n') {
            out.push('\n');
        }
        out
    }
}

/// Make a value from the network safe for a one-line entry: control
/// characters and `|` become `?`.
pub fn sanitise(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() || c == '|' { '?' } else { c })
        .collect()
}

fn net(v: &Option<String>) -> Value {
    match v {
        Some(s) => Value::Net(s.clone()),
        None => Value::Unknown,
    }
}

fn value(f: Field, i: &ConnInfo) -> Value {
    let id = &i.identity;
    match f {
        Field::Start => Value::Str(i.start.iso()),
        Field::End => Value::Str(i.end.iso()),
        Field::Secs => Value::Num(i128::from(i.secs())),
        Field::ClientIp => Value::Str(ip_text(i.client.ip())),
        Field::ClientPort => Value::Num(i128::from(i.client.port())),
        Field::LocalIp => Value::Str(ip_text(i.local.ip())),
        Field::LocalPort => Value::Num(i128::from(i.local.port())),
        Field::DestIp => match i.dest {
            Some(d) => Value::Str(ip_text(d.ip())),
            None => Value::Unknown,
        },
        Field::DestPort => match i.dest {
            Some(d) => Value::Num(i128::from(d.port())),
            None => Value::Unknown,
        },
        Field::BytesIn => Value::Num(i128::from(i.bytes_in)),
        Field::BytesOut => Value::Num(i128::from(i.bytes_out)),
        Field::File => match &i.file {
            Some(p) => Value::Str(p.display().to_string()),
            None => Value::Unknown,
        },
        Field::Conn => Value::Num(i128::from(i.conn)),
        Field::Status => Value::Str(i.status.as_str().to_string()),
        Field::Proto => match id.proto {
            Some(p) => Value::Str(p.to_string()),
            None => Value::Unknown,
        },
        Field::User => net(&id.user),
        Field::Host => net(&id.host),
        Field::Display => net(&id.display),
        Field::Pid => net(&id.pid),
        Field::Program => net(&id.program),
        Field::Service => net(&id.service),
        Field::VendorHost => net(&id.vendor_host),
        Field::VendorPort => match id.vendor_port {
            Some(p) => Value::Num(i128::from(p)),
            None => Value::Unknown,
        },
    }
}

/// Append `s` as a JSON string.
pub fn json_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn render_json(i: &ConnInfo, out: &mut String) {
    out.push('{');
    let mut first = true;
    let mut key = |out: &mut String, k: &str| {
        if !first {
            out.push(',');
        }
        first = false;
        json_str(out, k);
        out.push(':');
    };
    for (f, name, _) in FIELDS {
        key(out, name);
        match (f, value(*f, i)) {
            (Field::Start, _) => json_str(out, &i.start.rfc3339_us()),
            (Field::End, _) => json_str(out, &i.end.rfc3339_us()),
            (_, Value::Num(n)) => {
                let _ = write!(out, "{n}");
            }
            (_, Value::Str(s) | Value::Net(s)) => json_str(out, &s),
            (_, Value::Unknown) => out.push_str("null"),
        }
        if *f == Field::End {
            key(out, "start_us");
            let _ = write!(out, "{}", i.start.epoch_us);
            key(out, "end_us");
            let _ = write!(out, "{}", i.end.epoch_us);
        }
    }
    key(out, "event");
    json_str(
        out,
        if i.status == Status::Open {
            "open"
        } else {
            "close"
        },
    );
    out.push('}');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Identity;
    use crate::log::timefmt::LocalTime;

    fn info() -> ConnInfo {
        ConnInfo {
            start: LocalTime {
                epoch_us: 1_795_465_805_123_456,
                offset: 3600,
            },
            end: LocalTime {
                epoch_us: 1_795_465_807_999_999,
                offset: 3600,
            },
            client: "[::ffff:10.0.0.9]:40000".parse().unwrap(),
            local: "127.0.0.1:1726".parse().unwrap(),
            dest: Some("[::1]:27000".parse().unwrap()),
            bytes_in: 147,
            bytes_out: 53,
            file: None,
            conn: 7,
            status: Status::Ok,
            identity: Identity {
                proto: Some("flexlm"),
                user: Some("fr|e\ny".into()),
                ..Identity::default()
            },
        }
    }

    #[test]
    fn default_format() {
        let t = Template::parse(DEFAULT_FORMAT).unwrap();
        assert_eq!(
            t.render(&info()),
            "2026-11-23 21:30:05+01:00|2026-11-23 21:30:07+01:00|2|10.0.0.9|40000|147|53|ok|flexlm|fr?e?y|-|-|-|-\n"
        );
    }

    #[test]
    fn every_escape() {
        let t = Template::parse("%%%i %p %a %A %o %O %f %c %x %{vendor_port}%n").unwrap();
        assert_eq!(
            t.render(&info()),
            "%10.0.0.9 40000 127.0.0.1 1726 ::1 27000 - 7 ok -\n"
        );
        let t = Template::parse("%{client_ip}/%{conn}").unwrap();
        assert_eq!(t.render(&info()), "10.0.0.9/7\n");
    }

    #[test]
    fn unknown_escapes() {
        assert_eq!(
            Template::parse("ab%q").unwrap_err(),
            "unknown escape '%q' at column 3"
        );
        assert_eq!(
            Template::parse("%{nope}x").unwrap_err(),
            "unknown escape '%{nope}' at column 1"
        );
        assert!(Template::parse("x%").is_err());
        assert!(Template::parse("%{user").is_err());
    }

    #[test]
    fn json() {
        let j = Template::Json.render(&info());
        assert!(j.starts_with("{\"start\":\"2026-11-23T21:30:05.123456+01:00\",\"end\":\"2026-11-23T21:30:07.999999+01:00\",\"start_us\":1795465805123456,\"end_us\":1795465807999999,\"secs\":2,"));
        assert!(j.contains("\"user\":\"fr|e\\ny\",\"host\":null"));
        assert!(j.contains("\"dest_port\":27000"));
        assert!(j.ends_with("\"vendor_port\":null,\"event\":\"close\"}\n"));
    }
}

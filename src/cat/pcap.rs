//! `ipprotcat --pcap`: a data log rebuilt as a capture file that Wireshark
//! and tshark dissect as an ordinary TCP conversation. Pure: items in,
//! pcap bytes appended to a buffer; the caller writes them.
//!
//! Each input file becomes one conversation: Ethernet, IPv4 or IPv6 (after
//! the client address in the data-log name
//! `<prefix>_<yyyy-mm-dd_HHMMSS>_<n>_<client_ip>[.gz|.bz2]`), a three-way
//! handshake, every recorded block as data segments of at most
//! [`MAX_SEGMENT_BYTES`] each acknowledged by the peer, and FIN/ACK from
//! both sides at the end. Sequence and acknowledgement numbers follow the
//! payload exactly and both checksums are correct. Packets carry the time
//! of their block's `-M` marker; in an undated file the latest `-t` stamp,
//! else the file's modification time (or 0). Undated data has no known
//! direction: it is sent by the server, because that is what ipprotd
//! records without `-l`/`-L`. Marker-only blocks (the unrecorded
//! direction) carry no bytes and give no packets.
//!
//! The capture is not a record of the wire: MAC addresses, ports (client
//! side), sequence numbers, TTL and windows are made up; segments keep the
//! block boundaries of the recording.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::{Item, stamp_epoch_us};
use crate::record::block::Dir;

/// Server address when `--server-ip` is not given, IPv4 (TEST-NET-1).
pub const DEFAULT_SERVER_V4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
/// Server address when `--server-ip` is not given, IPv6 (documentation).
pub const DEFAULT_SERVER_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
/// Client address when the file name holds none, IPv4 (TEST-NET-2).
pub const UNKNOWN_CLIENT_V4: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);
/// Client address when the file name holds none and the server is IPv6.
pub const UNKNOWN_CLIENT_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2);
/// Largest TCP payload per packet, bytes (an IPv4 packet stays below 64 KiB).
pub const MAX_SEGMENT_BYTES: usize = 65_000;
/// Client port of the first input file; the next files count up.
pub const FIRST_CLIENT_PORT: u16 = 49152;
/// Client ports handed out before they repeat (49152..=65535).
const CLIENT_PORTS: usize = 16384;
/// pcap snapshot length, bytes: larger than any packet written.
const SNAPLEN: u32 = 262_144;
/// pcap link type of Ethernet.
const LINKTYPE_ETHERNET: u32 = 1;
/// Locally administered MAC addresses.
const CLIENT_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
const SERVER_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];
/// Initial sequence numbers of the client and the server.
const CLIENT_ISN: u32 = 0x1000_0000;
const SERVER_ISN: u32 = 0x2000_0000;
/// Advertised receive window, bytes (no scaling: > MAX_SEGMENT_BYTES).
const WINDOW: u16 = 65_535;
const TTL: u8 = 64;
const IPPROTO_TCP: u8 = 6;
const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_IPV6: u16 = 0x86dd;
const ETH_HEADER: usize = 14;
const IPV4_HEADER: usize = 20;
const IPV6_HEADER: usize = 40;
const TCP_HEADER: usize = 20;
const FIN: u8 = 0x01;
const SYN: u8 = 0x02;
const PSH: u8 = 0x08;
const ACK: u8 = 0x10;
const US_PER_SEC: u64 = 1_000_000;

/// The client address written in a data-log name, if any: the text after
/// the last `_` of the base name, less `.gz`/`.bz2` and an IPv6 zone.
pub fn client_from_file_name(path: &str) -> Option<IpAddr> {
    let name = path.rsplit('/').next()?;
    let name = name
        .strip_suffix(".gz")
        .or_else(|| name.strip_suffix(".bz2"))
        .unwrap_or(name);
    let ip = name.rsplit_once('_')?.1;
    let ip = ip.split_once('%').map_or(ip, |(addr, _zone)| addr);
    ip.parse().ok()
}

/// The synthesised client port of the `index`th input file (from 0).
pub fn client_port(index: usize) -> u16 {
    // CLIENT_PORTS fits: FIRST_CLIENT_PORT + 16383 = 65535.
    FIRST_CLIENT_PORT + u16::try_from(index % CLIENT_PORTS).unwrap_or(0)
}

/// Both addresses, always of one family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Addrs {
    V4 { client: Ipv4Addr, server: Ipv4Addr },
    V6 { client: Ipv6Addr, server: Ipv6Addr },
}

/// The two ends of a conversation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Endpoints {
    addrs: Addrs,
    client_port: u16,
    server_port: u16,
}

impl Endpoints {
    /// Ends of the given addresses. When one is IPv4 and the other IPv6,
    /// the IPv4 one is written IPv4-mapped, so both are IPv6.
    pub fn new(client: IpAddr, client_port: u16, server: IpAddr, server_port: u16) -> Self {
        let addrs = match (client, server) {
            (IpAddr::V4(client), IpAddr::V4(server)) => Addrs::V4 { client, server },
            (client, server) => Addrs::V6 {
                client: v6(client),
                server: v6(server),
            },
        };
        Endpoints {
            addrs,
            client_port,
            server_port,
        }
    }

    /// Ends for the `index`th input file `path`: client address from the
    /// name, server address `server_ip` or the default of the client's
    /// family.
    pub fn for_file(path: &str, server_ip: Option<IpAddr>, server_port: u16, index: usize) -> Self {
        let client = client_from_file_name(path).unwrap_or(match server_ip {
            Some(IpAddr::V6(_)) => IpAddr::V6(UNKNOWN_CLIENT_V6),
            _ => IpAddr::V4(UNKNOWN_CLIENT_V4),
        });
        let server = server_ip.unwrap_or(match client {
            IpAddr::V4(_) => IpAddr::V4(DEFAULT_SERVER_V4),
            IpAddr::V6(_) => IpAddr::V6(DEFAULT_SERVER_V6),
        });
        Endpoints::new(client, client_port(index), server, server_port)
    }

    /// (client, server) addresses as written into the packets.
    pub fn addrs(&self) -> (IpAddr, IpAddr) {
        match self.addrs {
            Addrs::V4 { client, server } => (client.into(), server.into()),
            Addrs::V6 { client, server } => (client.into(), server.into()),
        }
    }

    pub fn client_port(&self) -> u16 {
        self.client_port
    }
}

fn v6(a: IpAddr) -> Ipv6Addr {
    match a {
        IpAddr::V4(a) => a.to_ipv6_mapped(),
        IpAddr::V6(a) => a,
    }
}

/// The pcap file header (microsecond timestamps, Ethernet).
pub fn global_header(out: &mut Vec<u8>) {
    out.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    out.extend_from_slice(&0i32.to_le_bytes()); // thiszone
    out.extend_from_slice(&0u32.to_le_bytes()); // sigfigs
    out.extend_from_slice(&SNAPLEN.to_le_bytes());
    out.extend_from_slice(&LINKTYPE_ETHERNET.to_le_bytes());
}

/// One TCP conversation being written.
#[derive(Debug)]
pub struct Conversation {
    ends: Endpoints,
    /// Time of the next packet, epoch microseconds.
    now_us: u64,
    /// The first marker time: the handshake's.
    first_marker_us: Option<u64>,
    /// The first stamp time: the handshake's in a file without markers
    /// (a stamp has whole seconds, and follows its block's marker).
    first_stamp_us: Option<u64>,
    opened: bool,
    /// Next sequence number of [client, server].
    next_seq: [u32; 2],
    /// Next IPv4 identification of [client, server].
    ip_id: [u16; 2],
}

impl Conversation {
    /// A conversation between `ends`; `base_us` is the time of packets
    /// before the file gives one (its modification time, or 0).
    pub fn new(ends: &Endpoints, base_us: u64) -> Self {
        Conversation {
            ends: *ends,
            now_us: base_us,
            first_marker_us: None,
            first_stamp_us: None,
            opened: false,
            next_seq: [CLIENT_ISN, SERVER_ISN],
            ip_id: [1, 1],
        }
    }

    /// Packets for one item.
    pub fn item(&mut self, item: &Item, out: &mut Vec<u8>) {
        let b = match item {
            Item::Stamp(text) => {
                if let Some(us) = stamp_epoch_us(text).and_then(|us| u64::try_from(us).ok()) {
                    self.now_us = us;
                    self.first_stamp_us.get_or_insert(us);
                }
                return;
            }
            Item::Block(b) => b,
        };
        if let Some(us) = b.time_us {
            self.now_us = us;
            self.first_marker_us.get_or_insert(us);
        }
        let (payload, from_client) = (&b.payload[..], b.dir == Some(Dir::FromClient));
        if payload.is_empty() {
            return;
        }
        self.open(out);
        for segment in payload.chunks(MAX_SEGMENT_BYTES) {
            self.packet(from_client, PSH | ACK, segment, out);
            self.packet(!from_client, ACK, &[], out);
        }
    }

    /// The closing packets (and the handshake, if no data came).
    pub fn finish(mut self, out: &mut Vec<u8>) {
        self.open(out);
        self.packet(true, FIN | ACK, &[], out);
        self.packet(false, FIN | ACK, &[], out);
        self.packet(true, ACK, &[], out);
    }

    fn open(&mut self, out: &mut Vec<u8>) {
        if self.opened {
            return;
        }
        self.opened = true;
        let now = self.now_us;
        self.now_us = self.first_marker_us.or(self.first_stamp_us).unwrap_or(now);
        self.packet(true, SYN, &[], out);
        self.packet(false, SYN | ACK, &[], out);
        self.packet(true, ACK, &[], out);
        self.now_us = now;
    }

    /// One Ethernet frame in a pcap record. The sequence number is the
    /// sender's next; SYN and FIN count as one byte.
    fn packet(&mut self, from_client: bool, flags: u8, payload: &[u8], out: &mut Vec<u8>) {
        let (me, peer) = if from_client { (0, 1) } else { (1, 0) };
        let seq = self.next_seq[me];
        let ack = if flags & ACK != 0 {
            self.next_seq[peer]
        } else {
            0
        };
        let mut advance = payload.len() as u32;
        if flags & (SYN | FIN) != 0 {
            advance += 1;
        }
        self.next_seq[me] = seq.wrapping_add(advance);
        let id = self.ip_id[me];
        self.ip_id[me] = id.wrapping_add(1);

        let (sport, dport) = if from_client {
            (self.ends.client_port, self.ends.server_port)
        } else {
            (self.ends.server_port, self.ends.client_port)
        };
        let mut tcp = Vec::with_capacity(TCP_HEADER + payload.len());
        tcp.extend_from_slice(&sport.to_be_bytes());
        tcp.extend_from_slice(&dport.to_be_bytes());
        tcp.extend_from_slice(&seq.to_be_bytes());
        tcp.extend_from_slice(&ack.to_be_bytes());
        tcp.push((TCP_HEADER as u8 / 4) << 4);
        tcp.push(flags);
        tcp.extend_from_slice(&WINDOW.to_be_bytes());
        tcp.extend_from_slice(&[0, 0, 0, 0]); // checksum, urgent pointer
        tcp.extend_from_slice(payload);
        // At most TCP_HEADER + MAX_SEGMENT_BYTES: fits the IP length fields.
        let tcp_len = tcp.len() as u16;

        let (src_mac, dst_mac) = if from_client {
            (CLIENT_MAC, SERVER_MAC)
        } else {
            (SERVER_MAC, CLIENT_MAC)
        };
        let mut frame = Vec::with_capacity(ETH_HEADER + IPV6_HEADER + tcp.len());
        frame.extend_from_slice(&dst_mac);
        frame.extend_from_slice(&src_mac);
        match self.ends.addrs {
            Addrs::V4 { client, server } => {
                let (src, dst) = if from_client {
                    (client, server)
                } else {
                    (server, client)
                };
                let mut ip = Vec::with_capacity(IPV4_HEADER);
                ip.push(0x45); // version 4, 5 words
                ip.push(0);
                ip.extend_from_slice(&(IPV4_HEADER as u16 + tcp_len).to_be_bytes());
                ip.extend_from_slice(&id.to_be_bytes());
                ip.extend_from_slice(&0x4000u16.to_be_bytes()); // don't fragment
                ip.push(TTL);
                ip.push(IPPROTO_TCP);
                ip.extend_from_slice(&[0, 0]);
                ip.extend_from_slice(&src.octets());
                ip.extend_from_slice(&dst.octets());
                let sum = checksum(sum16(0, &ip));
                ip[10..12].copy_from_slice(&sum.to_be_bytes());
                let mut pseudo = sum16(0, &src.octets());
                pseudo = sum16(pseudo, &dst.octets());
                pseudo += u64::from(IPPROTO_TCP) + u64::from(tcp_len);
                let sum = checksum(sum16(pseudo, &tcp));
                tcp[16..18].copy_from_slice(&sum.to_be_bytes());
                frame.extend_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
                frame.extend_from_slice(&ip);
            }
            Addrs::V6 { client, server } => {
                let (src, dst) = if from_client {
                    (client, server)
                } else {
                    (server, client)
                };
                frame.extend_from_slice(&ETHERTYPE_IPV6.to_be_bytes());
                frame.extend_from_slice(&[0x60, 0, 0, 0]); // version 6
                frame.extend_from_slice(&tcp_len.to_be_bytes());
                frame.push(IPPROTO_TCP);
                frame.push(TTL);
                frame.extend_from_slice(&src.octets());
                frame.extend_from_slice(&dst.octets());
                let mut pseudo = sum16(0, &src.octets());
                pseudo = sum16(pseudo, &dst.octets());
                pseudo += u64::from(tcp_len) + u64::from(IPPROTO_TCP);
                let sum = checksum(sum16(pseudo, &tcp));
                tcp[16..18].copy_from_slice(&sum.to_be_bytes());
            }
        }
        frame.extend_from_slice(&tcp);

        let secs = u32::try_from(self.now_us / US_PER_SEC).unwrap_or(u32::MAX);
        let usecs = (self.now_us % US_PER_SEC) as u32;
        let len = frame.len() as u32;
        out.extend_from_slice(&secs.to_le_bytes());
        out.extend_from_slice(&usecs.to_le_bytes());
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&frame);
    }
}

/// Add `data` as big-endian 16-bit words (odd length: zero-padded) to a
/// running ones'-complement sum.
fn sum16(mut sum: u64, data: &[u8]) -> u64 {
    for pair in data.chunks(2) {
        let hi = pair[0];
        let lo = pair.get(1).copied().unwrap_or(0);
        sum += u64::from(u16::from_be_bytes([hi, lo]));
    }
    sum
}

/// Fold the carries and complement: the Internet checksum (RFC 1071).
fn checksum(mut sum: u64) -> u16 {
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cat::Block;

    #[test]
    fn client_from_names() {
        let v4: IpAddr = "10.1.2.3".parse().expect("literal");
        assert_eq!(
            client_from_file_name("/var/log/prot_2026-11-23_203005_7_10.1.2.3"),
            Some(v4)
        );
        assert_eq!(
            client_from_file_name("prot_x_2026-11-23_203005_7_10.1.2.3.gz"),
            Some(v4)
        );
        assert_eq!(
            client_from_file_name("p_2026-11-23_203005_7_10.1.2.3.bz2"),
            Some(v4)
        );
        assert_eq!(
            client_from_file_name("p_2026-11-23_203005_7_fe80::1%eth0.gz"),
            Some("fe80::1".parse().expect("literal"))
        );
        assert_eq!(client_from_file_name("-"), None);
        assert_eq!(client_from_file_name("renamed.gz"), None);
    }

    #[test]
    fn families() {
        let e = Endpoints::for_file("p_d_t_1_10.0.0.9", None, 80, 0);
        assert_eq!(
            e.addrs(),
            (
                "10.0.0.9".parse().expect("literal"),
                IpAddr::V4(DEFAULT_SERVER_V4)
            )
        );
        let e = Endpoints::for_file("p_d_t_1_2001:db8::9", None, 80, 1);
        assert_eq!(e.addrs().1, IpAddr::V6(DEFAULT_SERVER_V6));
        assert_eq!(e.client_port(), FIRST_CLIENT_PORT + 1);
        let e = Endpoints::for_file(
            "p_d_t_1_10.0.0.9",
            Some("2001:db8::5".parse().expect("literal")),
            80,
            0,
        );
        assert_eq!(
            e.addrs().0,
            "::ffff:10.0.0.9".parse::<IpAddr>().expect("literal")
        );
        let e = Endpoints::for_file("-", None, 80, 0);
        assert_eq!(e.addrs().0, IpAddr::V4(UNKNOWN_CLIENT_V4));
        assert_eq!(client_port(CLIENT_PORTS - 1), 65535);
        assert_eq!(client_port(CLIENT_PORTS), FIRST_CLIENT_PORT);
    }

    #[test]
    fn checksum_of_rfc1071_example() {
        // RFC 1071 section 3: words 0001 f203 f4f5 f6f7 sum to ddf2.
        assert_eq!(
            checksum(sum16(0, &[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7])),
            !0xddf2
        );
    }

    #[test]
    fn big_block_is_segmented_and_sequenced() {
        let ends = Endpoints::for_file("p_d_t_1_10.0.0.9", None, 80, 0);
        let mut c = Conversation::new(&ends, 0);
        let mut out = Vec::new();
        c.item(
            &Item::Block(Block {
                time_us: Some(5),
                dir: Some(Dir::FromClient),
                payload: vec![7; MAX_SEGMENT_BYTES + 1],
            }),
            &mut out,
        );
        c.finish(&mut out);
        // handshake 3, two segments each with an ACK, close 3
        let mut n = 0;
        let mut rest = &out[..];
        let mut payloads = Vec::new();
        while rest.len() >= 16 {
            let len = u32::from_le_bytes([rest[8], rest[9], rest[10], rest[11]]) as usize;
            payloads.push(len - ETH_HEADER - IPV4_HEADER - TCP_HEADER);
            rest = &rest[16 + len..];
            n += 1;
        }
        assert_eq!(n, 3 + 4 + 3);
        assert_eq!(payloads[3], MAX_SEGMENT_BYTES);
        assert_eq!(payloads[5], 1);
    }
}

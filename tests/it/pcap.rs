//! A reader of the captures `ipprotcat --pcap` writes (classic pcap, µs,
//! either byte order, Ethernet + IPv4/IPv6 + TCP without options): every
//! length and checksum is checked while reading.

use std::net::IpAddr;

/// One TCP packet read back from a capture.
#[derive(Debug)]
pub struct Pkt {
    pub ts_us: u64,
    /// Bytes of the whole frame (Ethernet header included).
    pub frame_len: usize,
    pub src: IpAddr,
    pub dst: IpAddr,
    pub sport: u16,
    pub dport: u16,
    pub seq: u32,
    pub ack: u32,
    pub flags: u8,
    pub payload: Vec<u8>,
}

/// TCP flags.
pub const FIN: u8 = 0x01;
pub const SYN: u8 = 0x02;
pub const PSH: u8 = 0x08;
pub const ACK: u8 = 0x10;

fn be16(b: &[u8]) -> u16 {
    u16::from_be_bytes([b[0], b[1]])
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

/// Ones'-complement sum (RFC 1071), folded; a correct checksum gives
/// 0xffff.
fn fold(parts: &[&[u8]]) -> u16 {
    let mut sum: u64 = 0;
    for p in parts {
        for pair in p.chunks(2) {
            sum += u64::from(u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)]));
        }
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

/// Whether the capture is little-endian (the magic in either order).
pub fn little_endian(b: &[u8]) -> bool {
    assert!(b.len() >= 24, "global header");
    match &b[..4] {
        [0xd4, 0xc3, 0xb2, 0xa1] => true,
        [0xa1, 0xb2, 0xc3, 0xd4] => false,
        m => panic!("not a µs pcap: magic {m:x?}"),
    }
}

/// Parse a whole capture; every header, checksum and length must be right.
pub fn read_pcap(b: &[u8]) -> Vec<Pkt> {
    let le = little_endian(b);
    let u32_at = |b: &[u8]| {
        let a = [b[0], b[1], b[2], b[3]];
        if le {
            u32::from_le_bytes(a)
        } else {
            u32::from_be_bytes(a)
        }
    };
    let snaplen = u32_at(&b[16..]) as usize;
    assert_eq!(u32_at(&b[20..]), 1, "link type Ethernet");
    let mut rest = &b[24..];
    let mut pkts = Vec::new();
    while !rest.is_empty() {
        assert!(rest.len() >= 16, "record header cut");
        let usec = u32_at(&rest[4..]);
        assert!(usec < 1_000_000, "microseconds {usec}");
        let ts_us = u64::from(u32_at(rest)) * 1_000_000 + u64::from(usec);
        let incl = u32_at(&rest[8..]) as usize;
        assert_eq!(u32_at(&rest[12..]) as usize, incl, "whole frames");
        assert!(incl <= snaplen && 16 + incl <= rest.len(), "record cut");
        let frame = &rest[16..16 + incl];
        rest = &rest[16 + incl..];
        let (src, dst, tcp): (IpAddr, IpAddr, &[u8]) = match be16(&frame[12..]) {
            0x0800 => {
                let ip = &frame[14..];
                assert_eq!(ip[0], 0x45, "IPv4, no options");
                assert_eq!(be16(&ip[2..]) as usize, ip.len(), "IPv4 total length");
                assert_eq!(ip[9], 6, "TCP");
                assert_eq!(fold(&[&ip[..20]]), 0xffff, "IPv4 header checksum");
                let src: [u8; 4] = ip[12..16].try_into().expect("4 bytes");
                let dst: [u8; 4] = ip[16..20].try_into().expect("4 bytes");
                let tcp = &ip[20..];
                let len = (tcp.len() as u16).to_be_bytes();
                assert_eq!(
                    fold(&[&src, &dst, &[0, 6], &len, tcp]),
                    0xffff,
                    "TCP checksum"
                );
                (src.into(), dst.into(), tcp)
            }
            0x86dd => {
                let ip = &frame[14..];
                assert_eq!(ip[0] >> 4, 6);
                assert_eq!(
                    be16(&ip[4..]) as usize,
                    ip.len() - 40,
                    "IPv6 payload length"
                );
                assert_eq!(ip[6], 6);
                let src: [u8; 16] = ip[8..24].try_into().expect("16 bytes");
                let dst: [u8; 16] = ip[24..40].try_into().expect("16 bytes");
                let tcp = &ip[40..];
                let len = (tcp.len() as u32).to_be_bytes();
                assert_eq!(
                    fold(&[&src, &dst, &len, &[0, 0, 0, 6], tcp]),
                    0xffff,
                    "TCP checksum"
                );
                (src.into(), dst.into(), tcp)
            }
            other => panic!("ethertype {other:#x}"),
        };
        assert_eq!(tcp[12] >> 4, 5, "no TCP options");
        pkts.push(Pkt {
            ts_us,
            frame_len: frame.len(),
            src,
            dst,
            sport: be16(tcp),
            dport: be16(&tcp[2..]),
            seq: be32(&tcp[4..]),
            ack: be32(&tcp[8..]),
            flags: tcp[13],
            payload: tcp[20..].to_vec(),
        });
    }
    pkts
}

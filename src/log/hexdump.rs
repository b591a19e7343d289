//! Hexdump of a byte slice in the layout of `hexdump -C`: offset, 16 hex
//! bytes in two groups of 8, and the ASCII column. Used by `ipprotcat -x`
//! and by the daemon's `--verbose`. Pure: bytes in, text out. Repeated
//! lines are never squeezed into `*` (every byte stays visible), and the
//! final offset line of `hexdump -C` is left out: callers state the length.

/// Bytes shown per line.
pub const BYTES_PER_LINE: usize = 16;

/// One line per 16 bytes, each ending in `\n`; empty input gives "".
pub fn hexdump(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(BYTES_PER_LINE) * 79);
    for (n, line) in data.chunks(BYTES_PER_LINE).enumerate() {
        out.push_str(&format!("{:08x}  ", n * BYTES_PER_LINE));
        for i in 0..BYTES_PER_LINE {
            if i == BYTES_PER_LINE / 2 {
                out.push(' ');
            }
            match line.get(i) {
                Some(b) => out.push_str(&format!("{b:02x} ")),
                None => out.push_str("   "),
            }
        }
        out.push_str(" |");
        out.extend(line.iter().map(|&b| match b {
            0x20..=0x7e => char::from(b),
            _ => '.',
        }));
        out.push_str("|\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_hexdump_c_layout() {
        assert_eq!(
            hexdump(b"hello world\n"),
            "00000000  68 65 6c 6c 6f 20 77 6f  72 6c 64 0a              |hello world.|\n"
        );
        assert_eq!(
            hexdump(b"h813frey\x00\x01\x02\x7f\x80\xff\t\r\nA"),
            "00000000  68 38 31 33 66 72 65 79  00 01 02 7f 80 ff 09 0d  |h813frey........|\n\
             00000010  0a 41                                             |.A|\n"
        );
    }

    #[test]
    fn empty_and_exact_lines() {
        assert_eq!(hexdump(b""), "");
        let d = hexdump(&[b'a'; 32]);
        assert_eq!(d.lines().count(), 2);
        assert!(d.ends_with(
            "00000010  61 61 61 61 61 61 61 61  61 61 61 61 61 61 61 61  |aaaaaaaaaaaaaaaa|\n"
        ));
    }
}

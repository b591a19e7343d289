//! Hexdump (stub until ipprotcat lands).

pub fn hexdump(data: &[u8]) -> String {
    let mut s = String::new();
    for (i, line) in data.chunks(16).enumerate() {
        s.push_str(&format!("{:08x} ", i * 16));
        for b in line {
            s.push_str(&format!(" {b:02x}"));
        }
        s.push('\n');
    }
    s
}

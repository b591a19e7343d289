//! Protocol messages shared by the test modules: the FLEXlm vectors of
//! `shared/IDENTIFY.md` §7 and a PostgreSQL StartupMessage builder.

/// FL1: FLEXlm HELLO, frey@login01 on /dev/pts/73, pid 35174, daemon MLM.
pub const FL1: &str = "683831336672657900000000000000000000000000000000006c6f67696e303100000000000000000000000000000000000000000000000000004d4c4d00000000000000002f6465762f7074732f3733000000000000000000000000000000000000000000005400000000000000000000000033353137340000000000007836345f6c73620000000000000b10373800313400";
/// FL6: lmgrd's framed 0x0113 reply, vendor daemon mathworks.lm.udel.edu:40000.
pub const FL6: &str = "2f25125a003501130000000041000000000000006d617468776f726b732e6c6d2e7564656c2e6564750000009c4000000000005444";

/// A PostgreSQL 3.0 StartupMessage with these parameters.
pub fn pg_startup(params: &[(&str, &[u8])]) -> Vec<u8> {
    let mut body = 0x0003_0000u32.to_be_bytes().to_vec();
    for (k, v) in params {
        body.extend(k.as_bytes());
        body.push(0);
        body.extend(*v);
        body.push(0);
    }
    body.push(0);
    let mut msg = u32::try_from(body.len() + 4)
        .unwrap()
        .to_be_bytes()
        .to_vec();
    msg.extend(body);
    msg
}

/// A FLEXlm client thread: after `delay` connects to `addr`, sends the
/// HELLO of `user@host` from `display` with `pid` for vendor daemon MLM,
/// reads lmgrd's FL6-sized reply, holds the connection `hold`, closes.
pub fn flexlm_client(
    addr: std::net::SocketAddr,
    who: [&'static str; 4],
    delay: std::time::Duration,
    hold: std::time::Duration,
) -> std::thread::JoinHandle<()> {
    use std::io::{Read, Write};
    std::thread::spawn(move || {
        std::thread::sleep(delay);
        let mut s = crate::harness::connect(addr);
        let [user, host, display, pid] = who;
        s.write_all(&crate::report::hello(user, host, display, pid, "MLM"))
            .unwrap();
        let mut got = vec![0u8; FL6.len() / 2];
        let _ = s.read_exact(&mut got);
        std::thread::sleep(hold);
    })
}

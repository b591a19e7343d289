//! Fuzzes the relay's per-direction bookkeeping (`relay::Queue`): reads of
//! normal chunks and of urgent bytes into a drained buffer, and partial
//! writes of any size. What comes out (normal bytes, and where each urgent
//! byte went as urgent data) must be exactly what went in, in order; a
//! write never counts more than was pending; urgent data goes out alone.
#![no_main]

use ipprotd::session::relay::Queue;
use libfuzzer_sys::fuzz_target;

/// What one side sent or received: a normal byte, or an urgent one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Byte {
    Normal(u8),
    Urgent(u8),
}

/// The relay's buffer size in this model (bytes).
const BUF: usize = 64;

fuzz_target!(|ops: &[u8]| {
    let mut q = Queue::default();
    let mut buf = [0u8; BUF];
    let mut sent: Vec<Byte> = Vec::new();
    let mut got: Vec<Byte> = Vec::new();
    let (mut read, mut written) = (0usize, 0usize);
    let mut next = 0u8;
    for &op in ops {
        let arg = usize::from(op & 0x3f);
        match op >> 6 {
            // a read of `arg` normal bytes, only into a drained buffer
            0 | 1 if q.drained() => {
                let n = arg.clamp(1, BUF);
                for b in buf.iter_mut().take(n) {
                    *b = next;
                    sent.push(Byte::Normal(next));
                    next = next.wrapping_add(1);
                }
                q.load(n);
                read += n;
            }
            // the urgent byte, only into a drained buffer
            2 if q.drained() => {
                buf[0] = next;
                sent.push(Byte::Urgent(next));
                next = next.wrapping_add(1);
                q.load_urgent();
                read += 1;
            }
            // the destination takes up to `arg` bytes
            _ => {
                let (range, urgent) = q.pending();
                assert!(range.start <= range.end && range.end <= q.chunk().end);
                assert!(q.chunk().end <= BUF);
                if urgent {
                    assert_eq!(q.chunk(), 0..1, "urgent data goes out alone");
                }
                let take = arg.min(range.len());
                let counted = q.wrote(arg);
                assert_eq!(counted, take, "counted more than was pending");
                for &b in &buf[range.start..range.start + counted] {
                    got.push(if urgent { Byte::Urgent(b) } else { Byte::Normal(b) });
                }
                written += counted;
            }
        }
        assert!(written <= read);
        assert_eq!(got[..], sent[..got.len()], "out of order");
    }
    // drain what is left
    let (range, urgent) = q.pending();
    let n = q.wrote(usize::MAX);
    assert_eq!(n, range.len());
    for &b in &buf[range.start..range.start + n] {
        got.push(if urgent { Byte::Urgent(b) } else { Byte::Normal(b) });
    }
    assert!(q.drained());
    assert_eq!(got, sent);
    assert_eq!(written + n, read);
});

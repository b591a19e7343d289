//! Helpers shared by the unit tests (compiled for them only).

/// xorshift64: a seeded, reproducible stream of pseudo-random numbers for
/// generated test inputs.
pub struct Rng(u64);

impl Rng {
    /// A stream from `seed` (not 0).
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A number below `m` (not 0).
    pub fn below(&mut self, m: usize) -> usize {
        (self.next_u64() % m as u64) as usize
    }

    /// Fewer than `max_parts` pieces picked from `parts`, concatenated.
    pub fn text(&mut self, parts: &[&str], max_parts: usize) -> String {
        let n = self.below(max_parts);
        (0..n).map(|_| parts[self.below(parts.len())]).collect()
    }
}

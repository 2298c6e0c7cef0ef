//! [`FastRand`]: the per-P random numbers of the scheduler (steal starts, victim sampling).
//! Not for anything that needs quality or unpredictability: speed and a small state are
//! what matter on the steal path.

/// A xorshift64* generator: cheap, per-P, good enough to spread steal attempts.
#[derive(Debug, Clone)]
pub struct FastRand(u64);

impl FastRand {
    /// A generator from a non-zero-ized seed.
    pub fn new(seed: u64) -> FastRand {
        FastRand(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// The next raw value.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A value in `0..bound` (Lemire's multiply-shift; `bound` > 0).
    pub fn below(&mut self, bound: u32) -> u32 {
        (((self.next_u64() >> 32) * u64::from(bound)) >> 32) as u32
    }
}

//! Memory-bandwidth probe: how many bytes per second the CPU cores together can read
//! from RAM. Generation speed of a dense model is bounded by this ÷ bytes read per token,
//! so the benchmark can say how close to the machine's limit a model runs.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// The result of one probe.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct BandwidthReport {
    /// Best pass, in bytes per second.
    pub bytes_per_second: f64,
    pub threads: u32,
    pub buffer_bytes: u64,
    pub passes: u32,
    pub elapsed_ms: f64,
}

impl BandwidthReport {
    pub fn gb_per_second(&self) -> f64 {
        self.bytes_per_second / 1e9
    }
}

/// Reads a buffer much larger than any CPU cache with `threads` threads for about
/// `budget`, and returns the best pass. Blocking: call it from a blocking context.
pub fn probe_bandwidth(threads: u32, budget: Duration) -> BandwidthReport {
    let threads = threads.max(1) as usize;
    // 512 MiB: far beyond the largest L3 of the Macs we target; rounds to whole chunks.
    let words = (512usize << 20) / 8;
    let chunk = words / threads;
    let buf: Vec<u64> = (0..words as u64)
        .map(|i| i.wrapping_mul(0x9E37_79B9))
        .collect();
    let start = Instant::now();
    let mut best = 0.0f64;
    let mut passes = 0;
    while passes < 2 || (start.elapsed() < budget && passes < 50) {
        let t = Instant::now();
        let sum: u64 = std::thread::scope(|s| {
            let handles: Vec<_> = buf
                .chunks(chunk)
                .map(|part| s.spawn(move || sum_words(part)))
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or(0))
                .fold(0, u64::wrapping_add)
        });
        std::hint::black_box(sum);
        let secs = t.elapsed().as_secs_f64();
        best = best.max((words * 8) as f64 / secs);
        passes += 1;
    }
    BandwidthReport {
        bytes_per_second: best,
        threads: threads as u32,
        buffer_bytes: (words * 8) as u64,
        passes,
        elapsed_ms: start.elapsed().as_secs_f64() * 1e3,
    }
}

/// Sums with four independent accumulators so the loop is bound by loads, not by one add chain.
fn sum_words(part: &[u64]) -> u64 {
    let mut acc = [0u64; 4];
    let mut it = part.chunks_exact(4);
    for c in &mut it {
        acc[0] = acc[0].wrapping_add(c[0]);
        acc[1] = acc[1].wrapping_add(c[1]);
        acc[2] = acc[2].wrapping_add(c[2]);
        acc[3] = acc[3].wrapping_add(c[3]);
    }
    let tail: u64 = it.remainder().iter().fold(0, |a, b| a.wrapping_add(*b));
    acc.iter().fold(tail, |a, b| a.wrapping_add(*b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_all_words() {
        let v: Vec<u64> = (1..=10).collect();
        assert_eq!(sum_words(&v), 55);
    }
}

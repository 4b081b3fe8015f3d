//! Latency figures, for benchmarks.

use std::time::Duration;

/// The `p` quantile (0–1, nearest rank) of `sorted` latencies, in milliseconds; NaN for none.
pub fn percentile_ms(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(i).map_or(f64::NAN, |d| d.as_secs_f64() * 1000.0)
}

//! The process's memory, for benchmarks (Linux `/proc/self`).

/// A field of `/proc/self/status` (`VmRSS`, `VmHWM`, …) in MiB; NaN where unavailable.
pub fn status_mib(field: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.strip_prefix(field).is_some_and(|r| r.starts_with(':')))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// Peak resident memory since the last [`reset_peak`], in MiB (`VmHWM`).
pub fn peak_mib() -> f64 {
    status_mib("VmHWM")
}

/// Starts a new peak (`echo 5 > /proc/self/clear_refs`).
pub fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

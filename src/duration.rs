//! Durations for people: a leaf module, so that state (a failure's reason) and report (every
//! line with a time) format them the same way.

/// A duration for humans: `850ms`, `12.3s`, `4m05s`, `1h02m`.
pub fn fmt_duration_ms(ms: u64) -> String {
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms < 60_000 {
        format!("{:.1}s", ms as f64 / 1000.0)
    } else if ms < 3_600_000 {
        format!("{}m{:02}s", ms / 60_000, (ms / 1000) % 60)
    } else {
        format!("{}h{:02}m", ms / 3_600_000, (ms / 60_000) % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(fmt_duration_ms(850), "850ms");
        assert_eq!(fmt_duration_ms(12_340), "12.3s");
        assert_eq!(fmt_duration_ms(245_000), "4m05s");
        assert_eq!(fmt_duration_ms(3_720_000), "1h02m");
    }
}

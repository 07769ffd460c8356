//! Bisecting a red gate: which prefix of a batch to gate next, and when the culprit is known.
//!
//! A batch is the integration tip plus streams `0..n` integrated in order; "prefix `k`" is the
//! tip plus the first `k` of them (prefix 0 is the tip alone). The whole batch (prefix `n`) was
//! red. The search keeps the largest prefix known green and the smallest larger one known red,
//! and gates the prefix halfway between (the bors/Mergify method): `ceil(log2 n)` gate runs find
//! the stream whose addition turns the gate red. The tip alone is assumed green when an earlier
//! gate passed on it; otherwise it is gated only if the search ends at the first stream, since
//! only then could the tip, rather than a stream, be to blame.
//!
//! Pure: results in, next step out. The engine journals each result, so a resumed run replays
//! the same steps to the same culprit.

use std::collections::BTreeMap;

/// What to do next in a bisection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BisectStep {
    /// Gate prefix `k` (the tip plus the first `k` streams of the batch).
    Probe(usize),
    /// Stream `index` of the batch turns the gate red; prefix `index` is the largest green one.
    Culprit { index: usize },
    /// The gate fails on the tip alone: no stream can be blamed.
    TipRed,
}

/// The next step, given the batch size `n` (at least 1), whether the tip alone is known green,
/// and the results so far (prefix length -> passed). Prefix `n` counts as red whether or not it
/// is in `results` (bisection only starts once the whole batch failed).
pub fn bisect_next(n: usize, tip_green: bool, results: &BTreeMap<usize, bool>) -> BisectStep {
    assert!(n >= 1, "an empty batch has nothing to bisect");
    if results.get(&0) == Some(&false) {
        return BisectStep::TipRed;
    }
    // The largest green prefix below the smallest red one (0 is green until shown otherwise).
    let red = results
        .iter()
        .filter(|(k, passed)| !**passed && **k > 0)
        .map(|(k, _)| *k)
        .min()
        .unwrap_or(n)
        .min(n);
    let green = results
        .iter()
        .filter(|(k, passed)| **passed && **k < red)
        .map(|(k, _)| *k)
        .max()
        .unwrap_or(0);
    if red - green > 1 {
        return BisectStep::Probe(green + (red - green) / 2);
    }
    if green == 0 && !tip_green && !results.contains_key(&0) {
        return BisectStep::Probe(0);
    }
    BisectStep::Culprit { index: red - 1 }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs a bisection against a batch where adding stream `culprit` (and anything after it)
    /// turns the gate red; returns the culprit found and the prefixes gated.
    fn bisect(n: usize, culprit: Option<usize>, tip_green: bool) -> (BisectStep, Vec<usize>) {
        let mut results = BTreeMap::from([(n, false)]);
        let mut probes = Vec::new();
        loop {
            match bisect_next(n, tip_green, &results) {
                BisectStep::Probe(k) => {
                    assert!(!results.contains_key(&k), "prefix {k} gated twice");
                    probes.push(k);
                    let passed = match culprit {
                        Some(c) => k <= c,
                        None => false,
                    };
                    results.insert(k, passed);
                }
                end => return (end, probes),
            }
        }
    }

    #[test]
    fn every_culprit_of_every_batch_size_is_found_in_log2_steps() {
        for n in 1..=33 {
            for c in 0..n {
                let (end, probes) = bisect(n, Some(c), true);
                assert_eq!(end, BisectStep::Culprit { index: c }, "n={n} c={c}");
                let bound = (n as f64).log2().ceil() as usize;
                assert!(probes.len() <= bound, "n={n} c={c}: {probes:?}");
            }
        }
    }

    #[test]
    fn one_stream_is_blamed_without_a_probe_when_the_tip_is_known_green() {
        assert_eq!(
            bisect(1, Some(0), true),
            (BisectStep::Culprit { index: 0 }, vec![])
        );
    }

    #[test]
    fn the_tip_is_gated_only_when_the_first_stream_would_be_blamed() {
        // Not yet known green, and the search ends at the first stream: gate the tip.
        assert_eq!(
            bisect(4, Some(0), false),
            (BisectStep::Culprit { index: 0 }, vec![2, 1, 0])
        );
        // A later culprit: a green prefix already clears the tip.
        assert_eq!(
            bisect(4, Some(2), false),
            (BisectStep::Culprit { index: 2 }, vec![2, 3])
        );
        assert_eq!(bisect(1, Some(0), false).1, vec![0]);
    }

    #[test]
    fn a_gate_red_on_the_tip_alone_blames_no_stream() {
        assert_eq!(bisect(5, None, false).0, BisectStep::TipRed);
        assert_eq!(
            bisect_next(1, false, &BTreeMap::from([(0, false), (1, false)])),
            BisectStep::TipRed
        );
    }

    #[test]
    fn sixteen_streams_with_one_culprit_take_four_probes() {
        let (end, probes) = bisect(16, Some(9), true);
        assert_eq!(end, BisectStep::Culprit { index: 9 });
        assert_eq!(probes, vec![8, 12, 10, 9]);
    }
}

//! Benchmark 5: large repositories. The overhead benchmark (`common/overhead.rs`) on a
//! 100,000-file repository: 8 streams of one trivial task each, `jobs = 4`, cold and warm,
//! against the same plain-git script and against the floor (8 fresh checkouts, four at a time,
//! nothing else); and a sparse plan where each stream `reads` 5% of the tree besides what it
//! owns, cold.
//!
//! Targets: cold <= 0.7x the script, warm <= 0.15x, sparse cold <= 0.2x the script, and cold
//! <= 1.5x the floor (issue 23's targets). Put the repositories on a tmpfs (`STREAMS_BENCH_DIR=/dev/shm`) to see
//! streams' own work rather than the disk's.

mod common;

use common::overhead::{Config, run};
use common::{quick, trials};

fn main() {
    let (files, streams) = if quick() { (2_000, 4) } else { (100_000, 8) };
    run(&Config {
        title: "Benchmark 5: a large repository",
        name: "large",
        files,
        streams,
        jobs: 4,
        trials: trials(3),
        cold_target: 0.7,
        warm_target: 0.15,
        floor_target: 1.5,
        sparse: Some((0.05, 0.2)),
    });
}

//! Benchmark 1: streams' own cost against a careful engineer's script of plain git commands.
//!
//! A 5,000-file repository, 20 streams of one trivial task each (the agent writes one file),
//! `jobs = 2`. The baseline script does the same by hand: for each stream `git worktree add` +
//! the same agent + `git add -A` + `git commit`, two at a time, then `git merge --no-ff` of every
//! branch in an integration worktree. (The script registers worktrees under a lock and checks
//! them out in parallel: plain parallel `git worktree add` fails now and then.)
//!
//! - cold: fresh repositories, no workspaces yet; both sides check out 20 of them.
//!   Target: streams <= 0.75x the script.
//! - warm: the same plan run a second time, reusing the clean workspaces of the first run (the
//!   common case when a plan is run again). Target: <= 0.2x the script.
//! - the floor: 20 fresh checkouts, two at a time, and nothing else. Target: cold <= 1.5x it.
//!
//! Each side runs `STREAMS_BENCH_TRIALS` times (default 3) on fresh repositories, alternating
//! which goes first; times are medians, ratios the median of each trial's own ratio. The body is
//! shared with the 100,000-file `large` benchmark (`common/overhead.rs`).

mod common;

use common::overhead::{Config, run};
use common::{quick, trials};

fn main() {
    let (files, streams) = if quick() { (500, 6) } else { (5_000, 20) };
    run(&Config {
        title: "Benchmark 1: overhead against plain git",
        name: "overhead",
        files,
        streams,
        jobs: 2,
        trials: trials(3),
        cold_target: 0.75,
        warm_target: 0.2,
        floor_target: 1.5,
        sparse: None,
    });
}

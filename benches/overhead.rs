//! Benchmark 1: streams' own cost against a careful engineer's script of plain git commands.
//!
//! A 5,000-file repository, 20 streams of one trivial task each (the agent writes one file),
//! `jobs = 2`. The baseline script does the same by hand: for each stream `git worktree add` +
//! the same agent + `git add -A` + `git commit`, two at a time, then `git merge --no-ff` of every
//! branch in an integration worktree. (The script registers worktrees under a lock and checks
//! them out in parallel: plain parallel `git worktree add` fails now and then.)
//!
//! - cold: fresh repositories, no worktrees yet; both sides check out 20 worktrees.
//!   Target: streams <= 0.9x the script.
//! - warm: the same plan run a second time, reusing the clean worktrees of the first run (the
//!   common case when a plan is run again). Target: <= 0.25x the script.
//!
//! Each side runs `STREAMS_BENCH_TRIALS` times (default 3) on fresh repositories, alternating
//! which goes first; times are medians, ratios the median of each trial's own ratio.

mod common;

use common::*;
use std::path::Path;

const TASK_SCRIPT: &str = r#"# One stream by hand: a worktree on a new branch, the agent, a commit.
# Parallel `git worktree add` on one repository sometimes fails (`failed to read
# .git/worktrees/<n>/commondir`), so registration takes a lock; the checkout runs in parallel.
repo=$1; wt=$2; s=$3
cd "$repo"
flock "$repo/.git/plain.lock" git worktree add -q --no-checkout -b "plain/$s" "$wt/$s" main
cd "$wt/$s"
git reset -q --hard
act write "streams/$s/out.txt" "done by $s"
git add -A
git commit -q -m "$s: write out.txt"
"#;

const PLAIN_SCRIPT: &str = r#"# The whole plan by hand: streams two at a time, then merge each branch.
here=$(dirname "$0"); repo=$1; wt=$2; shift 2
printf '%s\n' "$@" | xargs -P 2 -n 1 sh -e "$here/task.sh" "$repo" "$wt"
cd "$repo"
git worktree add -q -b plain/integration "$wt/integration" main
cd "$wt/integration"
for s in "$@"; do
    git merge -q --no-ff -m "Merge $s" "plain/$s"
done
"#;

fn main() {
    let (files, n_streams) = if quick() { (500, 6) } else { (5_000, 20) };
    let jobs = 2;
    let trials = trials(3);
    let mut report = Report::new("Benchmark 1: overhead against plain git");
    report.note(format!(
        "{files} files, {n_streams} streams x 1 trivial task, jobs = {jobs}, {trials} trial(s), medians"
    ));
    let sb = Sandbox::new("overhead");
    let streams = stream_names(n_streams);
    let plan = sb.path().join("plan.toml");
    std::fs::write(&plan, one_file_plan("bench", &streams, jobs)).unwrap();
    let scripts = sb.dir("scripts");
    std::fs::write(scripts.join("task.sh"), TASK_SCRIPT).unwrap();
    std::fs::write(scripts.join("plain.sh"), PLAIN_SCRIPT).unwrap();

    let (mut cold, mut warm, mut script) = (Vec::new(), Vec::new(), Vec::new());
    let (mut cold_ratio, mut warm_ratio) = (Vec::new(), Vec::new());
    for trial in 0..trials {
        // The machine's load drifts: alternate which side goes first, and judge each trial's
        // ratio against its own baseline.
        let script_first = trial % 2 == 1;
        let mut took = None;
        if script_first {
            took = Some(run_plain(&sb, &scripts, &streams, files, trial));
        }
        // streams: a fresh repository, run twice (the second run reuses the worktrees).
        let repo = sb.path().join(format!("streams-{trial}"));
        build_repo(&sb, &repo, files, Contents::Distinct, &streams);
        let first = run_streams(&sb, &repo, &plan, &[]);
        first.assert_integrated(n_streams);
        let second = run_streams(&sb, &repo, &plan, &[]);
        second.assert_integrated(n_streams);
        let _ = std::fs::remove_dir_all(&repo);
        let took = match took {
            Some(took) => took,
            None => run_plain(&sb, &scripts, &streams, files, trial),
        };
        let (c, w) = (secs(first.wall), secs(second.wall));
        report.note(format!(
            "trial {}: streams cold {}, warm {}; script {} (ratios {:.2}x, {:.2}x)",
            trial + 1,
            s(c),
            s(w),
            s(took),
            c / took,
            w / took
        ));
        cold.push(c);
        warm.push(w);
        script.push(took);
        cold_ratio.push(c / took);
        warm_ratio.push(w / took);
    }
    let (cold, warm, script) = (median(cold), median(warm), median(script));
    let (cold_ratio, warm_ratio) = (median(cold_ratio), median(warm_ratio));
    let base = format!("{} (plain git script)", s(script));
    // Ratios: the median of each trial's own ratio (the times are medians too).
    report.figure(
        "cold run (fresh worktrees)",
        s(cold),
        base.clone(),
        Some(cold_ratio),
        Target::RatioAtMost(0.9),
    );
    report.figure(
        "warm run (worktrees reused)",
        s(warm),
        base,
        Some(warm_ratio),
        Target::RatioAtMost(0.25),
    );
    report.figure(
        "cold, per stream",
        ms(cold / n_streams as f64),
        format!("{} (script)", ms(script / n_streams as f64)),
        Some(cold / script),
        Target::None,
    );
    report.figure(
        "warm, per stream",
        ms(warm / n_streams as f64),
        format!("{} (script)", ms(script / n_streams as f64)),
        Some(warm / script),
        Target::None,
    );
    report.print();
}

/// Runs the plain-git script on a fresh repository; returns its wall time in seconds.
fn run_plain(sb: &Sandbox, scripts: &Path, streams: &[String], files: usize, trial: usize) -> f64 {
    let plain = sb.path().join(format!("plain-{trial}"));
    build_repo(sb, &plain, files, Contents::Distinct, streams);
    let wt = sb.dir(&format!("plain-{trial}-worktrees"));
    let mut args = vec![plain.to_str().unwrap(), wt.to_str().unwrap()];
    args.extend(streams.iter().map(String::as_str));
    let took = run_script(sb, &plain, &scripts.join("plain.sh"), &args);
    check_plain(sb, &wt.join("integration"), streams.len());
    // Keep the disk from filling over trials.
    let _ = std::fs::remove_dir_all(&plain);
    let _ = std::fs::remove_dir_all(&wt);
    secs(took)
}

/// The script must have done the whole job too, or it is not a baseline.
fn check_plain(sb: &Sandbox, integration: &Path, streams: usize) {
    let merges = sb.git(integration, &["rev-list", "--merges", "--count", "HEAD"]);
    assert_eq!(
        merges,
        streams.to_string(),
        "the script merged every branch"
    );
}

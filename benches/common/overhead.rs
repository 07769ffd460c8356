//! The overhead benchmark's body, shared by `overhead` (5,000 files) and `large` (100,000 files):
//! streams against a careful engineer's script of plain git commands, and against the floor (the
//! same number of fresh checkouts, `jobs` at a time, and nothing else).

use super::*;
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

const PLAIN_SCRIPT: &str = r#"# The whole plan by hand: streams `jobs` at a time, then merge each branch.
here=$(dirname "$0"); repo=$1; wt=$2; jobs=$3; shift 3
printf '%s\n' "$@" | xargs -P "$jobs" -n 1 sh -e "$here/task.sh" "$repo" "$wt"
cd "$repo"
git worktree add -q -b plain/integration "$wt/integration" main
cd "$wt/integration"
for s in "$@"; do
    git merge -q --no-ff -m "Merge $s" "plain/$s"
done
"#;

const CHECKOUT_SCRIPT: &str = r#"# One fresh checkout and nothing else: the floor under any tool that gives each stream one.
repo=$1; wt=$2; s=$3
cd "$repo"
flock "$repo/.git/plain.lock" git worktree add -q --no-checkout --detach "$wt/$s" main
cd "$wt/$s"
git reset -q --hard
"#;

const FLOOR_SCRIPT: &str = r#"# As many fresh checkouts as there are streams, `jobs` at a time.
here=$(dirname "$0"); repo=$1; wt=$2; jobs=$3; shift 3
printf '%s\n' "$@" | xargs -P "$jobs" -n 1 sh -e "$here/checkout.sh" "$repo" "$wt"
"#;

/// One size of the overhead benchmark.
pub struct Config {
    pub title: &'static str,
    /// Names the sandbox (`streams-bench-<name>-*`).
    pub name: &'static str,
    pub files: usize,
    pub streams: usize,
    pub jobs: usize,
    pub trials: usize,
    /// Targets against the script: cold and warm.
    pub cold_target: f64,
    pub warm_target: f64,
    /// Target for the cold run against the floor.
    pub floor_target: f64,
    /// Also run a sparse plan (each stream `reads` this fraction of the tree) cold, with its
    /// target against the script.
    pub sparse: Option<(f64, f64)>,
}

pub fn run(config: &Config) {
    let Config {
        files,
        streams: n_streams,
        jobs,
        trials,
        ..
    } = *config;
    let mut report = Report::new(config.title);
    report.note(format!(
        "{files} files, {n_streams} streams x 1 trivial task, jobs = {jobs}, {trials} trial(s), medians"
    ));
    let sb = Sandbox::new(config.name);
    let streams = stream_names(n_streams);
    let plan = sb.path().join("plan.toml");
    std::fs::write(&plan, one_file_plan("bench", &streams, jobs)).unwrap();
    let sparse_plan = sb.path().join("sparse.toml");
    if let Some((fraction, _)) = config.sparse {
        let reads = read_fraction(files, fraction);
        report.note(format!(
            "sparse: each stream reads {} ({} files)",
            reads.join(" "),
            reads.len() * 100
        ));
        std::fs::write(&sparse_plan, reads_plan("bench", &streams, jobs, &reads)).unwrap();
    }
    let scripts = sb.dir("scripts");
    for (name, text) in [
        ("task.sh", TASK_SCRIPT),
        ("plain.sh", PLAIN_SCRIPT),
        ("checkout.sh", CHECKOUT_SCRIPT),
        ("floor.sh", FLOOR_SCRIPT),
    ] {
        std::fs::write(scripts.join(name), text).unwrap();
    }

    let mut t = Trials::default();
    for trial in 0..trials {
        // The machine's load drifts: alternate which side goes first, and judge each trial's
        // ratio against its own baseline.
        let script_first = trial % 2 == 1;
        let mut baselines = None;
        if script_first {
            baselines = Some(run_baselines(&sb, &scripts, &streams, files, jobs, trial));
        }
        // streams: a fresh repository, run twice (the second run reuses the workspaces).
        let repo = sb.path().join(format!("streams-{trial}"));
        build_repo(&sb, &repo, files, Contents::Distinct, &streams);
        let first = run_streams(&sb, &repo, &plan, &[]);
        first.assert_integrated(n_streams);
        // The same plan again: its result is not merged, so it starts over (`--restart`).
        let second = run_streams(&sb, &repo, &plan, &["--restart"]);
        second.assert_integrated(n_streams);
        remove_repo(&repo);
        let sparse = config.sparse.map(|_| {
            let repo = sb.path().join(format!("sparse-{trial}"));
            build_repo(&sb, &repo, files, Contents::Distinct, &streams);
            let run = run_streams(&sb, &repo, &sparse_plan, &[]);
            run.assert_integrated(n_streams);
            remove_repo(&repo);
            secs(run.wall)
        });
        let (script, floor) = match baselines {
            Some(b) => b,
            None => run_baselines(&sb, &scripts, &streams, files, jobs, trial),
        };
        let (c, w) = (secs(first.wall), secs(second.wall));
        report.note(format!(
            "trial {}: streams cold {} warm {}{} | script {} | floor {}",
            trial + 1,
            s(c),
            s(w),
            sparse.map_or(String::new(), |x| format!(" sparse {}", s(x))),
            s(script),
            s(floor)
        ));
        t.cold.push(c);
        t.warm.push(w);
        t.script.push(script);
        t.floor.push(floor);
        t.cold_ratio.push(c / script);
        t.warm_ratio.push(w / script);
        t.floor_ratio.push(c / floor);
        if let Some(x) = sparse {
            t.sparse.push(x);
            t.sparse_ratio.push(x / script);
        }
    }
    let (cold, warm, script, floor) = (
        median(t.cold),
        median(t.warm),
        median(t.script),
        median(t.floor),
    );
    let base = format!("{} (plain git script)", s(script));
    // Ratios: the median of each trial's own ratio (the times are medians too).
    report.figure(
        "cold run (fresh workspaces)",
        s(cold),
        base.clone(),
        Some(median(t.cold_ratio)),
        Target::RatioAtMost(config.cold_target),
    );
    report.figure(
        "warm run (workspaces reused)",
        s(warm),
        base.clone(),
        Some(median(t.warm_ratio)),
        Target::RatioAtMost(config.warm_target),
    );
    if let Some((_, target)) = config.sparse {
        report.figure(
            "sparse cold run",
            s(median(t.sparse)),
            base,
            Some(median(t.sparse_ratio)),
            Target::RatioAtMost(target),
        );
    }
    report.figure(
        "cold run against the floor",
        s(cold),
        format!("{} (checkouts alone)", s(floor)),
        Some(median(t.floor_ratio)),
        Target::RatioAtMost(config.floor_target),
    );
    report.figure(
        "cold, streams' own work per stream",
        ms((cold - floor) / n_streams as f64),
        format!("{} (script's)", ms((script - floor) / n_streams as f64)),
        None,
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

#[derive(Default)]
struct Trials {
    cold: Vec<f64>,
    warm: Vec<f64>,
    sparse: Vec<f64>,
    script: Vec<f64>,
    floor: Vec<f64>,
    cold_ratio: Vec<f64>,
    warm_ratio: Vec<f64>,
    sparse_ratio: Vec<f64>,
    floor_ratio: Vec<f64>,
}

/// `fraction` of the tree as whole directories of [`build_repo`] (100 files each), spread over
/// its modules: `src/m<j>/d<k>/**`.
pub fn read_fraction(files: usize, fraction: f64) -> Vec<String> {
    let dirs = files.div_ceil(100);
    let want = ((dirs as f64 * fraction).round() as usize).max(1);
    // Every module in turn, so the patterns span the tree rather than one corner of it.
    let modules = dirs.div_ceil(100);
    (0..want)
        .map(|i| {
            let (m, d) = (i % modules, i / modules);
            format!("src/m{m}/d{d}/**")
        })
        .collect()
}

/// [`one_file_plan`] where every stream also `reads` the given patterns (a sparse workspace).
pub fn reads_plan(name: &str, streams: &[String], jobs: usize, reads: &[String]) -> String {
    let plan = one_file_plan(name, streams, jobs);
    plan.replace(
        "\ntasks = [",
        &format!("\nreads = {}\ntasks = [", arr(reads)),
    )
}

/// The plain-git script and the floor, each on its own fresh repository: seconds.
fn run_baselines(
    sb: &Sandbox,
    scripts: &Path,
    streams: &[String],
    files: usize,
    jobs: usize,
    trial: usize,
) -> (f64, f64) {
    let script = run_plain(sb, scripts, "plain.sh", streams, files, jobs, trial);
    let floor = run_plain(sb, scripts, "floor.sh", streams, files, jobs, trial);
    (script, floor)
}

/// Runs a script on a fresh repository; returns its wall time in seconds.
fn run_plain(
    sb: &Sandbox,
    scripts: &Path,
    script: &str,
    streams: &[String],
    files: usize,
    jobs: usize,
    trial: usize,
) -> f64 {
    let plain = sb.path().join(format!("plain-{trial}"));
    build_repo(sb, &plain, files, Contents::Distinct, streams);
    let wt = sb.dir(&format!("plain-{trial}-worktrees"));
    let jobs = jobs.to_string();
    let mut args = vec![plain.to_str().unwrap(), wt.to_str().unwrap(), &jobs];
    args.extend(streams.iter().map(String::as_str));
    let took = run_script(sb, &plain, &scripts.join(script), &args);
    if script == "plain.sh" {
        check_plain(sb, &wt.join("integration"), streams.len());
    } else {
        // The floor must have checked out every file, or it is not a floor.
        let first = wt.join(&streams[0]).join("streams").join(&streams[0]);
        assert!(first.join("README.md").is_file(), "the floor checked out");
    }
    // Keep the disk from filling over trials.
    let _ = std::fs::remove_dir_all(&plain);
    let _ = std::fs::remove_dir_all(&wt);
    secs(took)
}

/// Removes a trial's repository and its workspaces beside it (`REPO.streams/`): left, a 100k
/// trial's 16 workspaces filled a 24 GB tmpfs by the third trial.
fn remove_repo(repo: &Path) {
    let _ = std::fs::remove_dir_all(repo);
    let mut workspaces = repo.as_os_str().to_owned();
    workspaces.push(".streams");
    let _ = std::fs::remove_dir_all(workspaces);
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

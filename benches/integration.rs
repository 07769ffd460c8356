//! Benchmark 3: integration throughput. 50 streams whose agents make 20 commits each, rebased
//! onto the integration branch of a 20,000-file repository, and the same on 100,000 files.
//!
//! What is timed is integration alone: for each stream, from its `task_committed` event to its
//! `integrated` event in the NDJSON output of `streams run --json` (the dispatcher integrates a
//! unit right after the commit that completes it, and does nothing else meanwhile). Summed over
//! the streams and divided by the commits integrated, that is the cost per commit: merge-tree,
//! commit objects, the compare-and-swap ref move, the journal, and saving the state.
//!
//! Baseline: plain `git cherry-pick` of the same branches in an integration worktree (its
//! checkout not counted), on a sample of the streams, per commit.
//!
//! Targets: <= 10 ms per commit; flat in repository size (100k files within 1.5x of 20k).
//!
//! Files are empty (one blob): 50 checkouts of 100,000 files must fit on the disk, and what
//! integration costs does not depend on what the files hold.

mod common;

use common::*;
use std::path::Path;
use std::time::Instant;

struct Size {
    files: usize,
    per_commit: f64,
    baseline: f64,
    commits: usize,
}

fn plan_text(streams: &[String], commits: usize) -> String {
    let mut plan = "[plan]\nname = \"bench\"\nbase = \"main\"\njobs = 2\n".to_string();
    for s in streams {
        let mut agent = vec!["act".to_string()];
        for c in 1..=commits {
            agent.extend([
                "write".into(),
                format!("streams/{s}/f{c}.txt"),
                format!("{s} change {c}"),
                "commit".into(),
                format!("{s}: change {c}"),
            ]);
        }
        plan.push_str(&format!(
            "\n[[stream]]\nname = {}\nowns = [{}]\ntasks = [\"Make {commits} commits\"]\nagent = {}\n",
            q(s),
            q(&format!("streams/{s}/**")),
            arr(&agent)
        ));
    }
    plan
}

fn measure(
    sb: &Sandbox,
    report: &Report,
    files: usize,
    streams: &[String],
    commits: usize,
    sample: usize,
) -> Size {
    let repo = sb.path().join(format!("repo-{files}"));
    let started = Instant::now();
    build_repo(sb, &repo, files, Contents::Empty, streams);
    report.note(format!(
        "{files} files: repository built in {}",
        s(secs(started.elapsed()))
    ));
    let plan = sb.path().join("plan.toml");
    std::fs::write(&plan, plan_text(streams, commits)).unwrap();
    let out = run_streams(sb, &repo, &plan, &[]);
    out.assert_integrated(streams.len());

    // Per stream: task_committed -> integrated.
    let mut total_ms = 0u64;
    let mut integrated_commits = 0usize;
    let mut units = Vec::new();
    for event in out.events_named("integrated") {
        let stream = event.stream();
        let committed = out
            .events_named("task_committed")
            .filter(|e| e.stream() == stream)
            .map(|e| e.at)
            .max()
            .expect("a commit before its integration");
        let took = event.at.saturating_sub(committed);
        let n = event.value["commits"].as_u64().unwrap_or(0) as usize;
        total_ms += took;
        integrated_commits += n;
        units.push(took as f64 / n.max(1) as f64);
    }
    assert_eq!(integrated_commits, streams.len() * commits);
    let per_commit = total_ms as f64 / 1000.0 / integrated_commits as f64;
    report.note(format!(
        "{files} files: run {}; {integrated_commits} commits integrated in {} ms in all; per stream, per commit: median {:.1} ms, worst {:.1} ms",
        s(secs(out.wall)),
        total_ms,
        median(units.clone()),
        units.iter().cloned().fold(0.0, f64::max)
    ));

    // Baseline: cherry-pick a sample of the branches in an integration worktree.
    let wt = sb.path().join(format!("plain-{files}"));
    sb.git(
        &repo,
        &[
            "worktree",
            "add",
            "-q",
            "-b",
            "plain/integration",
            wt.to_str().unwrap(),
            "main",
        ],
    );
    settle();
    let started = Instant::now();
    for s in &streams[..sample] {
        // The stream's own commits (its branch starts from the integration tip of its time).
        let branch = format!("streams/bench/{s}");
        sb.git(
            &wt,
            &["cherry-pick", &format!("{branch}~{commits}..{branch}")],
        );
    }
    let baseline = secs(started.elapsed()) / (sample * commits) as f64;
    check_picked(sb, &wt, sample * commits);
    report.note(format!(
        "{files} files: git cherry-pick of {sample} branches ({} commits): {} per commit",
        sample * commits,
        ms(baseline)
    ));
    let _ = std::fs::remove_dir_all(&repo);
    let _ = std::fs::remove_dir_all(&wt);
    Size {
        files,
        per_commit,
        baseline,
        commits: integrated_commits,
    }
}

fn check_picked(sb: &Sandbox, wt: &Path, commits: usize) {
    let count = sb.git(wt, &["rev-list", "--count", "main..HEAD"]);
    assert_eq!(
        count,
        commits.to_string(),
        "cherry-pick picked every commit"
    );
}

fn main() {
    let (sizes, n_streams, commits, sample) = if quick() {
        ([2_000, 10_000], 8, 5, 2)
    } else {
        ([20_000, 100_000], 50, 20, 5)
    };
    let mut report = Report::new("Benchmark 3: integration throughput");
    report.note(format!(
        "{n_streams} streams x {commits} commits (one task each), jobs 2, rebase"
    ));
    let sb = Sandbox::new("integration");
    report.note(format!("repositories under {}", sb.path().display()));
    let streams = stream_names(n_streams);
    let results: Vec<Size> = sizes
        .iter()
        .map(|&files| measure(&sb, &report, files, &streams, commits, sample))
        .collect();
    for r in &results {
        report.figure(
            format!("{} files: per commit", r.files),
            ms(r.per_commit),
            "10.0 ms (target)",
            Some(r.per_commit / 0.010),
            Target::RatioAtMost(1.0),
        );
        report.figure(
            format!("{} files: per commit vs cherry-pick", r.files),
            ms(r.per_commit),
            format!("{} (git cherry-pick)", ms(r.baseline)),
            Some(r.per_commit / r.baseline),
            Target::None,
        );
        let _ = r.commits;
    }
    let (small, large) = (&results[0], &results[1]);
    report.figure(
        format!("{} vs {} files, per commit", large.files, small.files),
        ms(large.per_commit),
        format!("{} ({} files)", ms(small.per_commit), small.files),
        Some(large.per_commit / small.per_commit),
        Target::RatioAtMost(1.5),
    );
    report.print();
}

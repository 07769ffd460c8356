//! Benchmark 7: a plan spread over machines. 6 streams, one task each, whose scripted agent
//! sleeps 5 s (a stand-in for a long agent) and writes one file.
//!
//! Measured, in the same run of the benchmark:
//! - **spread over 6 machines**: 6 clones of a bare remote, each running
//!   `streams run --only S --base B --push REMOTE` at the same time (separate processes), then
//!   `streams integrate --from REMOTE` in a 7th clone; timed from the first spawn to the end of
//!   the integration (the clones are made before the clock starts, as CI checks out first);
//! - **one machine**: the same plan with `streams run`, `jobs = 6`, in another clone.
//!
//! Here every "machine" shares one host (2 cores), so this measures what spreading costs (six
//! coordinators, the pushes, the fetch, the checks again and the integration) beside the agents'
//! time, not the speedup of real machines. Target: <= 1.5x one machine.

mod common;

use std::path::Path;
use std::process::Stdio;
use std::time::Instant;

use common::*;

const STREAMS: usize = 6;
const SLEEP_SECONDS: &str = "5";
const RUN_ID: &str = "bench-1";

fn plan_text(streams: &[String]) -> String {
    let mut plan = format!(
        "[plan]\nname = \"bench\"\nbase = \"main\"\njobs = {}\n",
        streams.len()
    );
    let sleep = if quick() { "0" } else { SLEEP_SECONDS };
    for s in streams {
        plan.push_str(&format!(
            "\n[[stream]]\nname = {}\nowns = [{}]\ntasks = [\"Sleep, then write out.txt\"]\nagent = {}\n",
            q(s),
            q(&format!("streams/{s}/**")),
            arr(&[
                "act".into(),
                "sleep".into(),
                sleep.into(),
                "write".into(),
                format!("streams/{s}/out.txt"),
                format!("done by {s}"),
            ])
        ));
    }
    plan
}

fn clone(sb: &Sandbox, from: &Path, to: &Path) {
    sb.git(
        &sb.path(),
        &["clone", "-q", from.to_str().unwrap(), to.to_str().unwrap()],
    );
}

/// One trial of the spread run; returns wall seconds.
fn spread(
    sb: &Sandbox,
    trial: usize,
    remote: &Path,
    plan: &Path,
    base: &str,
    streams: &[String],
) -> f64 {
    let run_id = format!("{RUN_ID}-{trial}");
    let machines: Vec<_> = streams
        .iter()
        .map(|s| {
            let dir = sb.path().join(format!("t{trial}-machine-{s}"));
            clone(sb, remote, &dir);
            dir
        })
        .collect();
    let central = sb.path().join(format!("t{trial}-central"));
    clone(sb, remote, &central);
    let remote_arg = remote.to_str().unwrap();
    settle();
    let started = Instant::now();
    let children: Vec<_> = streams
        .iter()
        .zip(&machines)
        .map(|(s, dir)| {
            let mut cmd = sb.command(streams_bin(), dir);
            cmd.args(["--no-progress", "run", "--only", s, "--run-id", &run_id])
                .args(["--base", base, "--push", remote_arg])
                .arg(plan)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped());
            cmd.spawn().expect("streams runs")
        })
        .collect();
    for (child, s) in children.into_iter().zip(streams) {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "machine {s} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let out = sb
        .command(streams_bin(), &central)
        .args([
            "--no-progress",
            "integrate",
            "--from",
            remote_arg,
            "--run-id",
            &run_id,
        ])
        .arg(plan)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let wall = secs(started.elapsed());
    assert!(
        out.status.success(),
        "integrate failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let files = sb.git(
        &central,
        &["ls-tree", "-r", "--name-only", "streams/bench/integration"],
    );
    for s in streams {
        assert!(
            files.contains(&format!("streams/{s}/out.txt")),
            "{s} not integrated"
        );
    }
    wall
}

fn main() {
    let sb = Sandbox::new("machines");
    let streams = stream_names(STREAMS);
    let src = sb.path().join("src");
    build_repo(&sb, &src, 100, Contents::Distinct, &streams);
    let base = sb.git(&src, &["rev-parse", "main"]);
    let remote = sb.path().join("remote.git");
    sb.git(
        &sb.path(),
        &[
            "clone",
            "-q",
            "--bare",
            src.to_str().unwrap(),
            remote.to_str().unwrap(),
        ],
    );
    let plan = sb.dir("plans").join("machines.toml");
    std::fs::write(&plan, plan_text(&streams)).unwrap();
    let mut report = Report::new(
        "machines: 6 streams whose agents sleep 5 s, over 6 local machines vs one machine with jobs = 6",
    );
    let (mut spread_walls, mut one_walls) = (Vec::new(), Vec::new());
    for t in 0..trials(1) {
        let w = spread(&sb, t, &remote, &plan, &base, &streams);
        report.note(format!("spread over 6 machines, then integrate: {}", s(w)));
        spread_walls.push(w);
        let single = sb.path().join(format!("t{t}-one-machine"));
        clone(&sb, &remote, &single);
        let out = run_streams(&sb, &single, &plan, &[]);
        out.assert_integrated(STREAMS);
        report.note(format!("one machine, jobs = 6: {}", s(secs(out.wall))));
        one_walls.push(secs(out.wall));
    }
    let (w, one) = (median(spread_walls), median(one_walls));
    report.figure(
        "6 machines + integrate (median)",
        s(w),
        format!("{} one machine, jobs = 6", s(one)),
        Some(w / one),
        Target::RatioAtMost(1.5),
    );
    report.print();
}

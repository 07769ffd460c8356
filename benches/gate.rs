//! Benchmark 6: the gate's batching and bisection. 16 streams reach their sync point together;
//! one of them (in the middle) breaks the build; the gate takes a second (`sleep 1`, then the
//! stand-in compiler of the tests).
//!
//! Measured: the number of gate runs and the wall time of `streams run` with batching (the
//! default: every waiting stream in one gate run, a red batch bisected), against the same plan
//! gated one stream at a time (`gate_batch = 1`), in the same run of the benchmark.
//!
//! Targets: at most 6 gate runs (1 for the batch + log2 16 = 4 to find the culprit + 1 for the
//! rest on the new tip), and <= 0.45x the wall time of one-at-a-time (which needs 16 runs, and
//! one more for the tip when the culprit comes first). Both with `gate_retries = 0`: the targets
//! are batching's and bisection's. The default (`gate_retries = 1`: a red batch runs once more
//! before it is bisected, the green subset once more before it lands, to tell a flaky gate from
//! a red one) costs two runs on a red batch: measured once beside them, without a target.

mod common;

use common::*;

const STREAMS: usize = 16;
/// The stream that breaks the build (1-based), in the middle of the batch.
const CULPRIT: usize = 9;

fn plan_text(streams: &[String], gate_batch: Option<usize>, retries: Option<u32>) -> String {
    let mut plan = format!(
        "[plan]\nname = \"bench\"\nbase = \"main\"\njobs = {}\ngate = [\"sh\", \"-c\", \"sleep 1; exec compile streams\"]\n",
        streams.len()
    );
    if let Some(n) = gate_batch {
        plan.push_str(&format!("gate_batch = {n}\n"));
    }
    if let Some(n) = retries {
        plan.push_str(&format!("gate_retries = {n}\n"));
    }
    for (i, s) in streams.iter().enumerate() {
        let line = if i + 1 == CULPRIT {
            "call missing".to_string()
        } else {
            format!("fn {s}")
        };
        plan.push_str(&format!(
            "\n[[stream]]\nname = {}\nowns = [{}]\ntasks = [\"Write out.txt\"]\nagent = {}\n",
            q(s),
            q(&format!("streams/{s}/**")),
            arr(&[
                "act".into(),
                "write".into(),
                format!("streams/{s}/out.txt"),
                line
            ])
        ));
    }
    plan
}

/// Runs the plan in a fresh repository; returns (gate runs, wall seconds).
fn measure(
    sb: &Sandbox,
    name: &str,
    streams: &[String],
    gate_batch: Option<usize>,
    retries: Option<u32>,
) -> (usize, f64) {
    let root = sb.path().join(name);
    build_repo(sb, &root, 100, Contents::Distinct, streams);
    let plan = sb.dir("plans").join(format!("{name}.toml"));
    std::fs::write(&plan, plan_text(streams, gate_batch, retries)).unwrap();
    let out = run_streams(sb, &root, &plan, &[]);
    let failed: Vec<&Event> = out.events_named("stream_failed").collect();
    assert!(
        out.code == 4 && failed.len() == 1 && failed[0].stream() == streams[CULPRIT - 1],
        "{name}: expected only {} to fail, exit 4; got exit {}:\n{}",
        streams[CULPRIT - 1],
        out.code,
        out.stderr
    );
    let done = out.events_named("stream_done").count();
    assert_eq!(done, streams.len() - 1, "{name}: {}", out.stderr);
    (out.events_named("gate_ran").count(), secs(out.wall))
}

fn main() {
    let sb = Sandbox::new("gate");
    let streams = stream_names(STREAMS);
    let mut report = Report::new("gate: 16 streams at once, one culprit, a 1 s gate");
    let trials = trials(1);
    let (mut runs, mut walls, mut base_runs, mut base_walls) = (0, Vec::new(), 0, Vec::new());
    for t in 0..trials {
        let (r, w) = measure(&sb, &format!("batched-{t}"), &streams, None, Some(0));
        report.note(format!("batched: {r} gate runs, {}", s(w)));
        let (br, bw) = measure(&sb, &format!("alone-{t}"), &streams, Some(1), Some(0));
        report.note(format!("one at a time: {br} gate runs, {}", s(bw)));
        runs = runs.max(r);
        base_runs = base_runs.max(br);
        walls.push(w);
        base_walls.push(bw);
    }
    report.figure(
        "gate runs (most over trials)",
        runs.to_string(),
        format!("{base_runs} one at a time; target 6"),
        Some(runs as f64 / 6.0),
        Target::RatioAtMost(1.0),
    );
    let (w, bw) = (median(walls), median(base_walls));
    report.figure(
        "wall time (median)",
        s(w),
        format!("{} one at a time", s(bw)),
        Some(w / bw),
        Target::RatioAtMost(0.45),
    );
    // The default, which checks a red verdict and the green subset once more: no target.
    let (dr, dw) = measure(&sb, "batched-default", &streams, None, None);
    report.note(format!(
        "batched with the default gate_retries = 1 (a red batch and the green subset run once more): {dr} gate runs, {}",
        s(dw)
    ));
    report.print();
}

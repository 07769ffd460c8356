//! Benchmark 4: scale. One plan of 200 streams (one trivial task each: the agent writes one
//! file), and the same plan cut to 50 and 100 streams, on a 1,000-file repository with jobs 2.
//!
//! Reports the coordinator's peak resident set (VmHWM of the `streams` process, sampled every
//! 10 ms while it runs; agents and git processes are not counted) and the wall time per stream.
//! Nothing may be quadratic in the number of streams: the time per stream at 200 streams must stay
//! within 1.25x of the time per stream at 50 (baseline measured in the same run), and memory must
//! not grow faster than the streams do.

mod common;

use common::*;

struct Point {
    streams: usize,
    per_stream: f64,
    rss_kb: u64,
}

fn main() {
    let (counts, files) = if quick() {
        (vec![10, 20, 40], 200)
    } else {
        (vec![50, 100, 200], 1_000)
    };
    let mut report = Report::new("Benchmark 4: scale");
    report.note(format!(
        "{files} files; plans of {counts:?} streams x 1 trivial task; jobs 2"
    ));
    let sb = Sandbox::new("scale");
    report.note(format!("repositories under {}", sb.path().display()));
    let mut points = Vec::new();
    for &n in &counts {
        let streams = stream_names(n);
        let repo = sb.path().join(format!("repo-{n}"));
        build_repo(&sb, &repo, files, Contents::Distinct, &streams);
        let plan = sb.path().join(format!("plan-{n}.toml"));
        std::fs::write(&plan, one_file_plan("scale", &streams, 2)).unwrap();
        let out = run_streams(&sb, &repo, &plan, &[]);
        out.assert_integrated(n);
        let p = Point {
            streams: n,
            per_stream: secs(out.wall) / n as f64,
            rss_kb: out.peak_rss_kb,
        };
        report.note(format!(
            "{n} streams: {} in all, {} per stream, coordinator peak RSS {:.1} MiB",
            s(secs(out.wall)),
            ms(p.per_stream),
            p.rss_kb as f64 / 1024.0
        ));
        points.push(p);
        let _ = std::fs::remove_dir_all(&repo);
    }
    let first = &points[0];
    for p in &points[1..] {
        report.figure(
            format!("{} streams: time per stream", p.streams),
            ms(p.per_stream),
            format!("{} ({} streams)", ms(first.per_stream), first.streams),
            Some(p.per_stream / first.per_stream),
            Target::RatioAtMost(1.25),
        );
    }
    for p in &points[1..] {
        let growth = p.streams as f64 / first.streams as f64;
        report.figure(
            format!("{} streams: peak RSS", p.streams),
            format!("{:.1} MiB", p.rss_kb as f64 / 1024.0),
            format!(
                "{:.1} MiB ({} streams) x {growth:.0}",
                first.rss_kb as f64 / 1024.0,
                first.streams
            ),
            Some(p.rss_kb as f64 / (first.rss_kb as f64 * growth)),
            Target::RatioAtMost(1.0),
        );
    }
    report.print();
}

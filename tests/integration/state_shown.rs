//! What `status` and `report.md` show of a run nobody is running: an interrupted run's streams
//! are not "running", the clock of a run that stopped does not keep going, and an aborted run's
//! report says aborted.

use nix::sys::signal::Signal;
use std::time::{Duration, Instant};

use crate::common::{TestRepo, wait_for};
use crate::support::interrupt::start_waiting_run;
use crate::support::runs::{halted, run_dir};

/// `status --json`'s streams: (name, state, elapsed_ms).
fn streams_status(repo: &TestRepo) -> Vec<(String, String, Option<u64>)> {
    let out = repo.streams(&["status", "--json"]);
    out.assert_code(0);
    let json: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    json["run"]["streams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap().to_string(),
                s["state"].as_str().unwrap().to_string(),
                s["elapsed_ms"].as_u64(),
            )
        })
        .collect()
}

/// Lets the wall clock move on (by more than the millisecond `status` counts in).
fn let_time_pass() {
    let start = Instant::now();
    wait_for("the clock to move", Duration::from_secs(5), || {
        (start.elapsed() >= Duration::from_millis(30)).then_some(())
    });
}

#[test]
fn an_interrupted_run_shows_its_streams_stopped_and_abort_rewrites_its_report() {
    let repo = TestRepo::with_files(&[("a/README", "a\n")]);
    let mut run = start_waiting_run(&repo);
    let out = run.signal(Signal::SIGINT);
    assert_eq!(
        out.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let before = streams_status(&repo);
    assert_eq!(before[0].1, "interrupted", "{before:?}");
    assert!(before[0].2.is_some(), "{before:?}");
    let_time_pass();
    assert_eq!(
        streams_status(&repo),
        before,
        "the clock of a stopped run stands still"
    );

    repo.streams(&["abort"]).assert_code(0);
    let md = std::fs::read_to_string(run_dir(&repo).join("report.md")).unwrap();
    assert!(md.starts_with("## streams run `"), "{md}");
    assert!(md.lines().next().unwrap().ends_with(": aborted"), "{md}");
    assert!(md.contains("| a | aborted |"), "{md}");
    assert!(md.contains("a<br/>aborted"), "{md}");
    // (`:active,` in the timeline is Mermaid's mark for a bar that did not end.)
    assert!(
        !md.contains("interrupted") && !md.contains("<br/>active") && !md.contains("| active |"),
        "{md}"
    );
}

#[test]
fn the_clock_of_a_halted_run_stands_still() {
    let repo = halted();
    let before = streams_status(&repo);
    assert!(
        before.iter().any(|(_, state, _)| state == "parked"),
        "{before:?}"
    );
    let_time_pass();
    assert_eq!(streams_status(&repo), before);
}

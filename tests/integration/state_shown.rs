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
    let text = repo.streams(&["status"]);
    let first = text.stdout.lines().next().unwrap();
    assert!(
        first.contains(": interrupted: its coordinator (`streams run`, pid ")
            && first.contains(") stopped on SIGINT at ")
            && first.ends_with(" UTC"),
        "{text}"
    );
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

/// `kill -9` of the coordinator while its agent works: nothing saves the state, and the run's
/// last save is when the task started. `status` says the run is interrupted, by whom and when,
/// and counts the stream's time to the coordinator's last sign of life (the agent's output it
/// copied into the log after a while), not to that save; the clock then stands still. Its row
/// says which task was running, its `done` column how many are committed.
#[test]
fn a_run_whose_coordinator_was_killed_shows_the_time_it_ran_until_then() {
    let repo = TestRepo::with_files(&[("a/README", "a\n")]);
    let dir = repo.root.parent().unwrap().to_path_buf();
    let (started, step, release) = (dir.join("started"), dir.join("step"), dir.join("release"));
    crate::support::plans::plan(
        &repo,
        &format!(
            r#"
[plan]
name = "c"

[[stream]]
name = "a"
owns = ["a/**"]
agent = ["act", "write", "{}", "x", "wait-for", "{}", "say", "worked a while", "wait-for", "{}"]
tasks = ["slow work", "more work"]
"#,
            started.display(),
            step.display(),
            release.display()
        ),
    );
    let mut run = repo
        .streams_cmd(&["run"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_for("the agent to start", Duration::from_secs(20), || {
        started.exists().then_some(())
    });
    // The agent works a while (a second at least) before it prints anything.
    let working = Instant::now();
    wait_for("the agent to work a while", Duration::from_secs(5), || {
        (working.elapsed() >= Duration::from_secs(1)).then_some(())
    });
    std::fs::write(&step, "").unwrap();
    let log = run_dir(&repo).join("logs/a/1.log");
    wait_for(
        "the agent's output in its log",
        Duration::from_secs(20),
        || {
            std::fs::read_to_string(&log)
                .is_ok_and(|text| text.lines().any(|l| l == "worked a while"))
                .then_some(())
        },
    );
    let pid = run.id();
    run.kill().unwrap();
    run.wait().unwrap();

    let out = repo.streams(&["status", "--json"]);
    out.assert_code(0);
    let json: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let a = &json["run"]["streams"][0];
    assert_eq!(json["run"]["phase"], "interrupted", "{json}");
    assert_eq!(a["state"], "interrupted", "{json}");
    assert!(
        a["elapsed_ms"].as_u64().unwrap() >= 1000,
        "the stream ran until its agent's output, a second after it started: {json}"
    );
    assert!(json["run"]["stopped_at"].as_u64().is_some(), "{json}");
    assert_eq!(json["run"]["last_holder"]["pid"], pid, "{json}");
    let text = repo.streams(&["status"]);
    let first = text.stdout.lines().next().unwrap().to_string();
    assert!(
        first.ends_with(&format!(
            ": interrupted: its coordinator (`streams run`, pid {pid}) is gone, last seen at work at {}",
            first.rsplit(" at ").next().unwrap()
        )) && first.ends_with(" UTC"),
        "{text}"
    );
    // Its first task of two was running: none is done.
    assert!(
        text.stdout
            .lines()
            .any(|l| l.starts_with("a       interrupted (task 1)    0/2  ")),
        "{text}"
    );
    assert!(
        text.stdout.contains(
            "\nnext: `streams resume` goes on from where it stopped (or `streams abort`)\n"
        ),
        "{text}"
    );
    let before = streams_status(&repo);
    let_time_pass();
    assert_eq!(streams_status(&repo), before, "the clock stands still");

    // `abort` stops the agent the killed coordinator left running.
    repo.streams(&["abort"]).assert_code(0);
    assert!(repo.live_processes().is_empty());
}

//! `streams status`: the current or last run, from another terminal, while it runs and halted.

use std::process::Stdio;
use std::time::Duration;

use crate::common::wait_for;
use crate::support::plans::two_streams;
use crate::support::repos::repo_with_shared;

#[test]
fn status_while_running_and_while_halted() {
    let repo = repo_with_shared();
    let release = repo.root.parent().unwrap().join("release");
    two_streams(
        &repo,
        &format!(
            r#""commit", "a wrote y", "wait-for", "{}", "write", "shared.txt", "from a""#,
            release.display()
        ),
        r#""write", "shared.txt", "from b""#,
        "",
    );
    let mut child = repo
        .streams_cmd(&["run"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let wt = repo.workspaces("p").join("a");
    // The agent's commit is in its workspace until its task ends.
    wait_for("a's first commit", Duration::from_secs(20), || {
        (wt.join(".git/index").exists()
            && repo
                .git_output_in(&wt, &["log", "-1", "--format=%s", "streams/p/a"])
                .stdout
                .starts_with(b"a wrote y"))
        .then_some(())
    });
    assert!(wt.exists());
    let status = repo.streams(&["status"]);
    status.assert_code(0);
    let text = status.stdout_redacted();
    assert!(
        text.contains("plan `p`: running (`streams run`, pid [PID] on"),
        "{text}"
    );
    assert!(
        text.lines().any(|l| l.starts_with("a ")
            && l.contains("running")
            // `done`: no task of a's is committed yet.
            && l.contains("0/1")
            && l.contains("a wrote y")),
        "{text}"
    );
    // b runs too, waiting for a's work to land: no task done of 1, no commit yet.
    let b: Vec<&str> = text
        .lines()
        .find(|l| l.starts_with("b "))
        .unwrap_or_else(|| panic!("no row for b:\n{text}"))
        .split_whitespace()
        .collect();
    assert_eq!(
        (b[1], b[2], b[5]),
        ("running", "0/1", "0"),
        "stream, state, done, elapsed, from, commits:\n{text}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&repo.streams(&["status", "--json"]).stdout).unwrap();
    assert_eq!(json["schema"], 2);
    assert_eq!(json["run"]["phase"], "running");
    assert_eq!(json["run"]["streams"][0]["state"], "running");
    assert_eq!(json["run"]["streams"][0]["commits"], 1);

    std::fs::write(&release, "").unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(3));
    let halted = repo.streams(&["status"]);
    let text = halted.stdout_redacted();
    assert!(text.contains(": halted"), "{text}");
    assert!(
        text.contains("parked: integrating stream `b` conflicts in shared.txt"),
        "{text}"
    );
    assert!(
        text.contains("next: resolve there, `git add` the files, then `streams continue b`"),
        "{text}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&repo.streams(&["status", "--json"]).stdout).unwrap();
    assert_eq!(json["run"]["parked"][0]["stream"], "b");
    assert_eq!(json["run"]["parked"][0]["files"][0], "shared.txt");
    assert_eq!(json["run"]["integration_order"][0]["stream"], "a");
}

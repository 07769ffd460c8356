//! What streams writes for people and programs survives where it goes: closed pipes, full disks,
//! hostile file names.

use std::process::Stdio;

use crate::coordinator::{repo_with_shared, two_streams};

/// Runs `streams` with stdout and stderr both on a pipe nobody reads any more (`... 2>&1 | head
/// -0` once `head` has gone): every write fails with EPIPE.
fn exit_code_with_closed_pipe(repo: &crate::common::TestRepo, args: &[&str]) -> Option<i32> {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    repo.streams_cmd(args)
        .stdout(writer.try_clone().unwrap())
        .stderr(writer)
        .status()
        .unwrap()
        .code()
}

#[test]
fn a_closed_pipe_never_panics() {
    let repo = repo_with_shared();
    two_streams(&repo, "", "", "");
    // Errors (on stderr) keep their exit codes.
    assert_eq!(exit_code_with_closed_pipe(&repo, &["skip", "zzz"]), Some(5));
    assert_eq!(
        exit_code_with_closed_pipe(&repo, &["-C", "/nonexistent", "status"]),
        Some(2)
    );
    // Data (on stdout) whose reader left early: the reader asked for no more.
    for args in [
        &["plan", "--json"][..],
        &["plan", "--dot"],
        &["plan", "--mermaid"],
        &["status", "--json"],
        &["run", "--dry-run"],
    ] {
        assert_eq!(exit_code_with_closed_pipe(&repo, args), Some(0), "{args:?}");
    }
    repo.streams(&["run"]).assert_code(0);
    for args in [&["status"][..], &["status", "--json"]] {
        let code = exit_code_with_closed_pipe(&repo, args);
        assert_ne!(code, Some(101), "{args:?} panicked");
    }
}

#[test]
fn data_that_cannot_be_written_is_an_error_not_a_silent_success() {
    let repo = repo_with_shared();
    two_streams(&repo, "", "", "");
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let out = repo
        .streams_cmd(&["plan", "--json"])
        .stdout(full)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("could not write to stdout"), "{stderr}");
}

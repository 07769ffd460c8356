//! What streams writes for people and programs survives where it goes: closed pipes, full disks,
//! hostile file names.

use std::process::Stdio;

use crate::support::plans::two_streams;
use crate::support::repos::repo_with_shared;

/// Runs `streams` with stdout and stderr both on a pipe nobody reads any more (`... 2>&1 | head
/// -0` once `head` has gone): every write fails with EPIPE.
fn exit_code_with_closed_pipe(repo: &crate::common::TestRepo, args: &[&str]) -> Option<i32> {
    let (reader, writer) = nix::unistd::pipe().unwrap();
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
    two_streams(&repo, "", r#""write", "b/y", "yb""#, "");
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

/// An escape sequence in a file name would reach the terminal raw; one that draws a fake "ok"
/// line is the attack the finding showed.
const HOSTILE: &str = "\u{1b}[2K\r\u{1b}[32mok\u{1b}[0m";

#[test]
fn paths_with_control_characters_are_quoted_in_ownership_failures() {
    let repo = repo_with_shared();
    crate::support::plans::plan(
        &repo,
        r#"
[plan]
name = "p"

[[stream]]
name = "a"
owns = ["a/**"]
agent = ["act", "write", "a/ok", "ok", "write", "c/\u001b[2K\r\u001b[32mok\u001b[0m", "x"]
tasks = ["Task of a"]
"#,
    );
    let out = repo.streams(&["run"]);
    out.assert_code(4);
    assert!(!out.stderr.contains('\u{1b}'), "raw escape: {out}");
    assert!(!out.stdout.contains('\u{1b}'), "raw escape: {out}");
    assert!(
        out.stderr.contains(
            r#"changed paths it does not own: "c/\033[2K\r\033[32mok\033[0m" (owned by no stream)"#
        ),
        "{out}"
    );
    insta::assert_snapshot!(out.to_string());
    let status = repo.streams(&["status"]);
    assert!(!status.stdout.contains('\u{1b}'), "raw escape: {status}");
    assert!(!status.stderr.contains('\u{1b}'), "raw escape: {status}");
}

#[test]
fn paths_with_control_characters_are_quoted_in_conflicts() {
    let repo = repo_with_shared();
    let path = format!("assets/{HOSTILE}");
    let toml_path = path.replace('\u{1b}', "\\u001b").replace('\r', "\\r");
    two_streams(
        &repo,
        &format!(r#""write", "{toml_path}", "from a""#),
        &format!(r#""write", "{toml_path}", "from b""#),
        "",
    );
    let out = repo.streams(&["run"]);
    out.assert_code(3);
    let shown = r#""assets/\033[2K\r\033[32mok\033[0m""#;
    assert!(!out.stderr.contains('\u{1b}'), "raw escape: {out}");
    assert!(
        out.stderr
            .contains(&format!("parked b: integrating it conflicts in {shown}")),
        "{out}"
    );
    // The `git add` to paste quotes it for the shell: the same bytes, nothing raw.
    assert!(
        out.stderr
            .contains(r"git add $'assets/\033[2K\r\033[32mok\033[0m'"),
        "{out}"
    );
    let status = repo.streams(&["status"]);
    assert!(!status.stdout.contains('\u{1b}'), "raw escape: {status}");
    assert!(status.stdout.contains(shown), "{status}");
    let run = std::fs::read_to_string(repo.common_dir().join("streams/current")).unwrap();
    let bundle = repo
        .common_dir()
        .join("streams/runs")
        .join(run.trim())
        .join("conflicts/b/README.md");
    let readme = std::fs::read_to_string(&bundle).unwrap();
    assert!(
        !readme.contains('\u{1b}'),
        "raw escape in {}: {}",
        bundle.display(),
        readme.escape_debug()
    );
    assert!(readme.contains(shown), "{readme}");
    let cont = repo.streams(&["continue"]);
    assert!(!cont.stderr.contains('\u{1b}'), "raw escape: {cont}");
    assert!(
        cont.stderr
            .contains(&format!("not resolved yet: {shown} still unmerged")),
        "{cont}"
    );
    // The quoted name pastes back as the real file: resolving with the printed command works.
    let wt = repo.workspaces("p").join(".resolve-b");
    let wt = wt.display();
    let quoted = r"$'assets/\033[2K\r\033[32mok\033[0m'";
    let mut bash = std::process::Command::new("bash");
    bash.arg("-c").arg(format!(
        "cd '{wt}' && echo resolved > {quoted} && git add {quoted}"
    ));
    repo.hermetic(&mut bash);
    assert!(bash.status().unwrap().success());
    repo.streams(&["continue"]).assert_code(0);
    assert_eq!(
        repo.git(&["show", &format!("streams/p/integration:{path}")]),
        "resolved"
    );
}

#[test]
fn files_an_agent_writes_to_ignored_paths_are_named_in_the_task_result() {
    let repo = crate::common::TestRepo::with_files(&[
        (".gitignore", "*.log\nbuild/\n"),
        ("a/README", "a\n"),
    ]);
    // Ignored files that were there before the task are not the agent's.
    repo.write("a/old.log", "from before\n");
    let old = std::time::SystemTime::now() - std::time::Duration::from_secs(60);
    std::fs::File::options()
        .write(true)
        .open(repo.path("a/old.log"))
        .unwrap()
        .set_modified(old)
        .unwrap();
    crate::support::plans::plan(
        &repo,
        r#"
[plan]
name = "p"

[[stream]]
name = "a"
owns = ["a/**"]
# It writes only what git ignores: no changes, and meant so.
allow_empty = true
agent = ["act", "write", "a/result.log", "the real result", "write", "a/build/out.bin", "x", "write", "a/build/more.bin", "y", "write", "a/z.log", "z", "write", "a/w.log", "w"]
tasks = ["Write a report"]
"#,
    );
    let out = repo.streams(&["run"]);
    out.assert_code(0);
    let note = "task 1 wrote 4 path(s) that git ignores, left out of its work: a/build/, a/result.log, a/w.log and 1 more";
    assert!(out.stderr.contains(&format!("note a: {note}")), "{out}");
    assert!(out.stderr.contains("(no changes)"), "{out}");
    assert!(!out.stderr.contains("old.log"), "{out}");
    insta::assert_snapshot!(out.to_string());
    // The run's report keeps it.
    let run = std::fs::read_to_string(repo.common_dir().join("streams/current")).unwrap();
    let report = std::fs::read_to_string(
        repo.common_dir()
            .join("streams/runs")
            .join(run.trim())
            .join("report.md"),
    )
    .unwrap();
    assert!(report.contains(note), "{report}");
}

//! The scenes a person reads, whole: a run that integrates every stream, `status` after it,
//! `show` of a stream, a run that halts on a conflict (with `status` and `show` while halted),
//! `continue` after a resolution and `abort`. Each scene is one snapshot file: the commands in
//! the order a person types them, each followed by its exit code, stdout and stderr, normalised
//! by `support::redact` (so a snapshot changes only when what a person reads changes). What a
//! scene needs before its first command (the run before `status`) is run but not recorded: its
//! own scene records it.
//!
//! Every scene is `support::plans::two_streams`: `b` acts only once `a`'s work is integrated, so
//! the order of events, and with it every line, is the same on every run.

use crate::common::TestRepo;
use crate::support::plans::{conflicting, two_streams};
use crate::support::redact::Redactor;
use crate::support::repos::repo_with_shared;
use crate::support::runs::resolution;

/// A scene being played: the repository, and the transcript so far.
struct Scene {
    repo: TestRepo,
    redact: Redactor,
    transcript: String,
}

impl Scene {
    fn new(repo: TestRepo) -> Scene {
        Scene {
            repo,
            redact: Redactor::new(),
            transcript: String::new(),
        }
    }

    /// Runs `streams ARGS` expecting exit code `code`, without recording it (a scene's set-up).
    #[track_caller]
    fn before(&self, args: &[&str], code: i32) {
        self.repo.streams(args).assert_code(code);
    }

    /// Runs `streams ARGS` expecting exit code `code`, and adds the command and its whole output
    /// to the transcript.
    #[track_caller]
    fn streams(&mut self, args: &[&str], code: i32) {
        let out = self.repo.streams(args);
        out.assert_code(code);
        let text = self.redact.output(&out);
        self.transcript
            .push_str(&format!("$ streams {}\n{text}\n", args.join(" ")));
    }

    /// What the person does between two commands, as a comment in the transcript.
    fn note(&mut self, what: &str) {
        self.transcript.push_str(&format!("# {what}\n\n"));
    }
}

/// Both streams land: each changes its own area and one shared file, and the changes merge.
fn both_land(repo: &TestRepo) {
    two_streams(
        repo,
        r#""append", "docs/guide.md", "third", "commit", "Add a/y and a guide line""#,
        r#""write", "b/y", "yb", "append", "shared.txt", "line 4""#,
        "",
    );
}

#[test]
fn a_run_that_integrates_every_stream() {
    let repo = repo_with_shared();
    both_land(&repo);
    let mut scene = Scene::new(repo);
    scene.streams(&["run"], 0);
    insta::assert_snapshot!("run_integrating_every_stream", scene.transcript);
}

#[test]
fn status_after_a_run() {
    let repo = repo_with_shared();
    both_land(&repo);
    let mut scene = Scene::new(repo);
    scene.before(&["run"], 0);
    scene.streams(&["status"], 0);
    insta::assert_snapshot!("status_after_a_run", scene.transcript);
}

#[test]
fn show_of_a_stream() {
    let repo = repo_with_shared();
    both_land(&repo);
    let mut scene = Scene::new(repo);
    scene.before(&["run"], 0);
    scene.streams(&["show", "b"], 0);
    insta::assert_snapshot!("show_of_a_stream", scene.transcript);
}

#[test]
fn a_run_that_halts_on_a_conflict() {
    let repo = repo_with_shared();
    conflicting(&repo);
    let mut scene = Scene::new(repo);
    scene.streams(&["run"], 3);
    scene.streams(&["status"], 0);
    scene.streams(&["show", "b"], 0);
    insta::assert_snapshot!("run_halting_on_a_conflict", scene.transcript);
}

#[test]
fn continue_after_a_resolution() {
    let repo = repo_with_shared();
    conflicting(&repo);
    let mut scene = Scene::new(repo);
    scene.before(&["run"], 3);
    let wt = resolution(&scene.repo);
    std::fs::write(wt.join("shared.txt"), "from a and b\n").unwrap();
    scene.repo.git_in(&wt, &["add", "shared.txt"]);
    scene.note("shared.txt resolved in the resolution worktree and added");
    scene.streams(&["continue"], 0);
    scene.streams(&["status"], 0);
    insta::assert_snapshot!("continue_after_a_resolution", scene.transcript);
}

#[test]
fn abort_after_a_halt() {
    let repo = repo_with_shared();
    conflicting(&repo);
    let mut scene = Scene::new(repo);
    scene.before(&["run"], 3);
    scene.streams(&["abort"], 0);
    scene.streams(&["status"], 0);
    insta::assert_snapshot!("abort_after_a_halt", scene.transcript);
}

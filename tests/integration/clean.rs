//! `streams clean`: removes what finished runs left, never work that is not integrated
//! unless forced.

use crate::support::plans::two_streams;
use crate::support::repos::repo_with_shared;
use crate::support::runs::halted;

#[test]
fn clean_keeps_unintegrated_work_unless_forced() {
    let repo = repo_with_shared();
    two_streams(
        &repo,
        r#""say", "nothing more""#,
        r#""write", "b/y", "yb", "write", "c/x", "not b's""#,
        "",
    );
    repo.streams(&["run"]).assert_code(4);
    // Refused while a run is not over? This one is finished; clean goes ahead.
    let out = repo.streams(&["clean"]);
    out.assert_code(0);
    let text = out.stderr_redacted();
    assert!(
        text.contains("removed worktree [REPO].streams/p/a"),
        "{text}"
    );
    assert!(text.contains("removed branch streams/p/a"), "{text}");
    assert!(
        text.contains("kept, because deleting them would lose work:"),
        "{text}"
    );
    assert!(
        text.contains(
            "ref refs/streams/p/rejected/b/1: work an agent did outside its lane, set aside"
        ),
        "{text}"
    );
    assert!(
        text.contains(
            "branch streams/p/integration: the run's result, not merged into any other branch"
        ),
        "{text}"
    );
    assert!(
        text.contains("hint: `streams clean --force` deletes these too"),
        "{text}"
    );
    assert!(
        repo.git_output_in(
            &repo.root,
            &["rev-parse", "--verify", "refs/streams/p/rejected/b/1"]
        )
        .status
        .success()
    );
    let worktrees = repo.git(&["worktree", "list"]);
    assert_eq!(worktrees.lines().count(), 1, "{worktrees}");

    let out = repo.streams(&["clean", "--force"]);
    out.assert_code(0);
    assert!(
        out.stderr.contains(
            "removed ref refs/streams/p/rejected/b/1 (lost: work an agent did outside its lane"
        ),
        "{out}"
    );
    let refs = repo.refs();
    assert!(!refs.contains("streams/p/"), "{refs}");
}

#[test]
fn clean_refuses_while_a_run_is_not_over() {
    let repo = halted();
    let out = repo.streams(&["clean"]);
    out.assert_code(5);
    assert!(out.stderr.contains("is halted, not finished"), "{out}");
}

#[test]
fn clean_keeps_a_branch_with_commits_made_after_the_run() {
    let repo = repo_with_shared();
    two_streams(&repo, r#""say", "done""#, r#""write", "b/y", "yb""#, "");
    repo.streams(&["run"]).assert_code(0);
    // A person fixes something in b's workspace after the run, and commits it there: the
    // commit is in the workspace's own repository only.
    let wt = repo.workspaces("p").join("b");
    std::fs::write(wt.join("b/y"), "fixed by hand\n").unwrap();
    repo.git_in(&wt, &["commit", "-q", "-am", "a fix made after the run"]);
    let fix = repo.git_in(&wt, &["rev-parse", "HEAD"]);
    let out = repo.streams(&["clean"]);
    out.assert_code(0);
    assert!(out.stderr.contains("removed branch streams/p/a"), "{out}");
    assert!(
        out.stderr.contains(&format!(
            "commits made in it that your repository does not have ({})",
            &fix[..10]
        )),
        "{out}"
    );
    assert!(
        out.stderr
            .contains("branch streams/p/b: its worktree has uncommitted changes"),
        "{out}"
    );
    assert_eq!(repo.git_in(&wt, &["rev-parse", "HEAD"]), fix);
}

#[test]
fn clean_after_a_merged_run_leaves_nothing_beside_the_repository() {
    let repo = repo_with_shared();
    two_streams(&repo, r#""say", "done""#, r#""write", "b/y", "yb""#, "");
    repo.streams(&["run"]).assert_code(0);
    repo.streams(&["merge"]).assert_code(0);
    let beside = repo.workspaces("p").parent().unwrap().to_path_buf();
    assert!(beside.exists());
    let out = repo.streams(&["clean"]);
    out.assert_code(0);
    // The plan's directory and, once it was the last plan's, the `<repo>.streams` that held it.
    assert!(!beside.exists(), "{} is left: {out}", beside.display());
}

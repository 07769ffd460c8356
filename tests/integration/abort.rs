//! `streams abort`: the run stops, every ref goes back, nothing is lost.

use crate::support::plans::conflicting;
use crate::support::repos::repo_with_shared;
use crate::support::runs::resolution;

#[test]
fn abort_puts_every_ref_back_and_keeps_the_work() {
    let repo = repo_with_shared();
    // The integration branch exists from before, at an older commit: abort must restore it.
    repo.git(&["branch", "streams/p/integration", "main"]);
    repo.write("other.txt", "later\n");
    repo.commit_all("a later commit on main");
    conflicting(&repo);
    let before = repo.refs();
    repo.streams(&["run"]).assert_code(3);
    let out = repo.streams(&["abort"]);
    out.assert_code(0);
    let after = repo.refs();
    // Every ref that existed before is exactly as it was...
    for line in before.lines() {
        assert!(after.lines().any(|l| l == line), "{line} changed:\n{after}");
    }
    // ...and what the run made is kept: stream branches and the work under refs/streams.
    let kept: Vec<&str> = after
        .lines()
        .filter(|l| !before.lines().any(|b| b == *l))
        .collect();
    let names: Vec<&str> = kept.iter().map(|l| l.split(' ').next().unwrap()).collect();
    let run_id = std::fs::read_to_string(repo.common_dir().join("streams/current")).unwrap();
    let run_id = run_id.trim();
    for expected in [
        "refs/heads/streams/p/a".to_string(),
        "refs/heads/streams/p/b".to_string(),
        format!("refs/streams/p/aborted/{run_id}/branches/a"),
        format!("refs/streams/p/aborted/{run_id}/branches/b"),
        format!("refs/streams/p/aborted/{run_id}/integration"),
    ] {
        assert!(
            names.contains(&expected.as_str()),
            "{expected} missing from {names:?}"
        );
    }
    assert!(out.stderr.contains("aborted run"), "{out}");
    assert!(out.stderr.contains("kept (nothing is lost):"), "{out}");
    assert!(!resolution(&repo).exists());
    // Worktrees are unlocked; the run is over.
    let list = repo.git(&["worktree", "list", "--porcelain"]);
    assert!(!list.contains("locked"), "{list}");
    repo.streams(&["abort"]).assert_code(5);
    // A new run may start; its resolution worktree is locked again (stream workspaces are
    // private repositories, not worktrees of the user's).
    repo.streams(&["run"]).assert_code(3);
    let list = repo.git(&["worktree", "list", "--porcelain"]);
    assert_eq!(list.matches("\nlocked").count(), 1, "{list}");
}

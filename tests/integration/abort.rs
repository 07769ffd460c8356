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

/// A stream whose workspace was prepared ahead, at the integration tip of that moment, and
/// which never started: abort finds no work of its own there (its workspace is at the commit
/// streams put it at) and keeps nothing for it. It kept the other streams' integrated work as
/// its "uncommitted work" once the stream branch stopped following a workspace prepared ahead.
#[test]
fn abort_keeps_nothing_for_a_stream_prepared_ahead_that_never_started() {
    let repo = repo_with_shared();
    let c_ready = repo.workspaces("p").join("c/.git/HEAD");
    let b_waiting = repo.workspaces("p").join("b/b/waiting");
    crate::support::plans::plan(
        &repo,
        &format!(
            r#"
[plan]
name = "p"
jobs = 1

[[stream]]
name = "a"
owns = ["a/**"]
agent = ["act", "write", "a/y", "ya"]
tasks = ["Task of a"]

[[stream]]
name = "b"
owns = ["b/**"]
agent = ["act", "wait-for", "{}", "write", "b/waiting", "yes", "hang"]
tasks = ["Task of b"]

[[stream]]
name = "c"
owns = ["c/**"]
agent = ["act", "write", "c/y", "yc"]
tasks = ["Task of c"]
"#,
            c_ready.display()
        ),
    );
    // `a` is integrated, `b` runs (its agent waits until `c`'s workspace is prepared ahead, at
    // the tip with `a`'s work), then the coordinator dies.
    let mut run = repo.streams_cmd(&["run"]).spawn().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !b_waiting.exists() {
        assert!(std::time::Instant::now() < deadline, "b never got going");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    run.kill().unwrap();
    run.wait().unwrap();
    let out = repo.streams(&["abort"]);
    out.assert_code(0);
    let refs = repo.refs();
    assert!(
        refs.contains("/uncommitted/b"),
        "b's own work is kept:\n{refs}\n{out}"
    );
    assert!(!refs.contains("/uncommitted/c"), "{refs}\n{out}");
}

/// A lock a killed coordinator left on the plan's refs does not keep abort from putting the
/// integration branch back.
#[test]
fn abort_clears_a_lock_a_killed_coordinator_left_on_the_plans_refs() {
    let repo = crate::support::runs::halted();
    let lock = repo
        .common_dir()
        .join("refs/heads/streams/p/integration.lock");
    std::fs::write(&lock, "").unwrap();
    repo.streams(&["abort"]).assert_code(0);
    assert!(!lock.exists());
    assert!(!repo.refs().contains("refs/heads/streams/p/integration "));
}

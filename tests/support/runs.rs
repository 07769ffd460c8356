//! Where a run keeps what the tests look at: its state under the repository's git directory,
//! its workspaces beside the repository; and the run halted on a conflict that many tests
//! start from.

use std::path::PathBuf;

use crate::common::TestRepo;
use crate::support::plans::conflicting;
use crate::support::repos::repo_with_shared;

/// The run directory of the repository's current (last) run.
pub fn run_dir(repo: &TestRepo) -> PathBuf {
    let id = std::fs::read_to_string(repo.common_dir().join("streams/current")).unwrap();
    repo.common_dir().join("streams/runs").join(id.trim())
}

/// The resolution worktree of plan `p`'s stream `b` (`plans::two_streams`) while it is parked on a
/// conflict.
pub fn resolution(repo: &TestRepo) -> PathBuf {
    repo.workspaces("p").join(".resolve-b")
}

/// A repository (`repos::repo_with_shared`) whose run of `plans::conflicting` halted: `b` is
/// parked on its conflict with `a` in `shared.txt`.
pub fn halted() -> TestRepo {
    let repo = repo_with_shared();
    conflicting(&repo);
    repo.streams(&["run"]).assert_code(3);
    repo
}

/// Resolves the conflict of a `halted` run as a person would: `text` written to `shared.txt`
/// in the resolution worktree and staged there; returns that worktree.
pub fn resolve_shared(repo: &TestRepo, text: &str) -> PathBuf {
    let wt = resolution(repo);
    std::fs::write(wt.join("shared.txt"), text).unwrap();
    repo.git_in(&wt, &["add", "shared.txt"]);
    wt
}

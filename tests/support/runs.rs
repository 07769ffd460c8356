//! Where a run keeps what the tests look at: its state under the repository's git directory,
//! its workspaces beside the repository.

use std::path::PathBuf;

use crate::common::TestRepo;

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

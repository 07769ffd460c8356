//! The use cases behind the commands: start, resume, continue, skip, abort, retry, merge, status,
//! clean, the plan analysis that reads the repository, and a run spread over CI machines
//! (`machines`: one stream per machine, integrated centrally).
//!
//! No clap and no printing here: each use case takes a repository and its inputs, does its work
//! through the layers below (exec, coordinator, git, state), and returns data for `report` to
//! show and `cli` to turn into an exit code.

pub mod abort;
pub mod clean;
pub mod diff;
pub mod logs;
pub mod machines;
pub mod merge;
pub mod plan;
pub mod pr;
pub mod retry;
pub mod session;
pub mod show;
pub mod start;
pub mod status;
pub mod ui;

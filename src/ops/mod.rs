//! The use cases behind the commands: loading the plan against the repository (`load`), start,
//! `run --dry-run`, resume, continue, skip (`session`), abort, retry, merge, status, clean,
//! init, `ci github`, the demo, review (show, diff, logs, pr), the plan analysis that reads the
//! repository, and a run spread over CI machines (`machines`: one stream per machine,
//! integrated centrally).
//!
//! No clap and no printing here: each use case takes a repository and its inputs, does its work
//! through the layers below (exec, coordinator, git, state), and returns data for `report` to
//! show and `cli` to turn into an exit code. A use case that says something between its steps
//! (a plan's warnings, a line of progress) is split into those steps, for the CLI to call in
//! order.

pub mod abort;
pub mod agents;
pub mod ci;
pub mod clean;
pub mod cwd;
pub mod demo;
pub mod diff;
pub mod dry_run;
pub mod init;
pub mod load;
pub mod logs;
pub mod machines;
pub mod merge;
pub mod plan;
pub mod pr;
pub mod retry;
pub mod runs;
pub mod session;
pub mod show;
pub mod start;
pub mod status;
pub mod stop;
pub mod ui;

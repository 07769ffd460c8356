//! `streams` runs many coding agents in parallel on one git repository and brings their work back
//! together safely.
//!
//! Module map (each layer only reaches down, never up):
//!
//! - [`cli`]: clap types and one function per subcommand (args -> ops -> report -> exit code);
//!   no git, no processes of its own.
//! - [`ops`]: the use cases (start, resume, continue, skip, abort, status, clean, plan
//!   prediction): no clap, no printing; a repository and inputs in, data out.
//! - [`plan`]: pure: TOML text in, validated [`plan::Plan`] out (raw -> model -> validate), plus
//!   the schedule analysis behind `streams plan`.
//! - [`ownership`]: compiled globsets; who owns a path; checking an agent's changed paths.
//! - [`git`]: the only place that uses git2 or runs the `git` program.
//! - [`exec`]: tokio: the dispatcher (sole writer of run state while it runs) and its pure
//!   decisions, the task spec shared with `--dry-run`, task executors, process groups, signals.
//! - [`coordinator`]: sync points: integrate a stream's commits, detect conflicts, halt.
//! - [`state`]: run state types, the atomic store (one writer's door: `StateStore`), the lock,
//!   the journal.
//! - [`report`]: all text a person reads: progress, event lines, NDJSON, the final report, the
//!   plan and status views, "what next" hints. Sees plain data only.
//! - [`error`]: error kinds and the exit codes, in one place, with how a run's outcome maps to one.

pub mod cli;
pub mod coordinator;
pub mod demo;
pub mod error;
pub mod exec;
pub mod git;
pub mod ops;
pub mod ownership;
pub mod plan;
pub mod report;
pub mod state;

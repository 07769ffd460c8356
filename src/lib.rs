//! `streams` runs many coding agents in parallel on one git repository and brings their work back
//! together safely.
//!
//! Module map (each layer only reaches down, never up):
//!
//! - [`children`]: the processes streams starts itself, told apart from an agent's strays.
//! - [`cli`]: clap types and one function per subcommand; no git, no processes of its own.
//! - [`plan`]: pure: TOML text in, validated [`plan::Plan`] out (raw -> model -> validate), plus
//!   the schedule analysis behind `streams plan`.
//! - [`ownership`]: compiled globsets; who owns a path; checking an agent's changed paths.
//! - [`git`]: the only place that uses git2 or runs the `git` program.
//! - [`exec`]: tokio: the dispatcher (sole owner of run state), task executors, process groups,
//!   signals.
//! - [`coordinator`]: sync points: integrate a stream's commits, detect conflicts, halt.
//! - [`state`]: run state types, the atomic store, the lock, the journal.
//! - [`report`]: what the user sees: progress, event lines, NDJSON, the final report.
//! - [`error`]: error kinds and the exit codes, in one place.

pub mod children;
pub mod cli;
pub mod coordinator;
pub mod demo;
pub mod error;
pub mod exec;
pub mod git;
pub mod ownership;
pub mod plan;
pub mod report;
pub mod state;

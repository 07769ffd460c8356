//! `streams` runs many coding agents in parallel on one git repository and brings their work back
//! together safely.
//!
//! Module map, from the top down (each layer only reaches down, never up):
//!
//! - [`children`]: the processes streams starts itself, told apart from an agent's strays.
//! - [`cli`]: clap types and one function per subcommand; no git, no processes of its own.
//! - [`exec`]: tokio: the dispatcher (sole owner of run state), task executors, process groups,
//!   signals, recovery after a crash.
//! - [`coordinator`]: sync points: integrate a stream's commits (and [`coordinator::move_integration_ref`],
//!   the one mover of the integration ref), halt on a conflict, the resolution worktree,
//!   conflict prediction.
//! - [`report`]: what the user sees: progress, event lines, NDJSON, the conflict README, the
//!   final report.
//! - [`state`]: run state types, the atomic store, the lock, the journal.
//! - [`git`]: the only place that uses git2 or runs the `git` program; a [`git::Repo`], an
//!   [`git::Oid`] and named operations, the argv runner private.
//! - [`ownership`]: compiled globsets; who owns a path; checking an agent's changed paths.
//! - [`plan`]: pure: TOML text in, validated [`plan::Plan`] out (raw -> model -> validate), plus
//!   the schedule analysis behind `streams plan`.
//! - Leaves, usable from any layer: [`layout`] (every ref and directory name a run uses, built
//!   and parsed), [`failpoint`] (crash tests), [`duration`] (durations for people).
//! - [`error`]: error kinds and the exit codes, in one place (it wraps [`git::GitError`], so it
//!   sits beside git rather than below it).
//! - [`demo`]: the example repository behind `streams demo`.

pub mod children;
pub mod cli;
pub mod coordinator;
pub mod demo;
pub mod duration;
pub mod error;
pub mod exec;
pub mod failpoint;
pub mod git;
pub mod layout;
pub mod ownership;
pub mod plan;
pub mod report;
pub mod state;

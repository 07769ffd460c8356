//! `streams` runs many coding agents in parallel on one git repository and brings their work back
//! together safely.
//!
//! Module map, from the top down (each layer only reaches down, never up). The allowed arrows are
//! written in one place, the tables at the top of `tests/integration/layering.rs`, whose test
//! reads every `use` and qualified path of `src/` and fails naming `file:line` for each arrow
//! that goes up:
//!
//! - [`cli`]: clap types and one function per subcommand (args -> ops -> report -> exit code);
//!   it reaches only ops, report and error, and [`web`] for `streams ui`.
//! - [`web`]: `streams ui`, the other front end: the local web view, an axum server on
//!   127.0.0.1 behind a random token, live events from the run's directory, actions through the
//!   `streams` command itself; it reads through [`ops`] and draws with [`report`] (report.html
//!   is its static twin).
//! - [`ops`]: the use cases (loading the plan against git, start, `--dry-run`, resume,
//!   continue, skip, abort, retry, status, clean, init, plan prediction, `ci github`, a run
//!   spread over CI machines): no clap, no printing; a repository and inputs in, data out.
//! - [`exec`]: tokio: the dispatcher (sole writer of run state while it runs) driving its parts
//!   (each stream's `check`, the `gate` over batches of streams at sync points, workspaces
//!   prepared ahead, recovery after a crash) and its pure decisions; a task as its steps
//!   (prepare, attempt, verify, commit, bring), the task spec shared with `--dry-run`, process
//!   groups, signals, the kernel sandbox of an agent (Landlock).
//! - [`workspace`]: a stream's workspace, its kind known in one place: laying it out, resetting
//!   it, setting one aside, and the one reader of an agent's work (its files against streams'
//!   record of them, read once the agent is gone; its own commits checked object by object).
//! - [`coordinator`]: sync points: integrate a stream's commits (and [`coordinator::move_integration_ref`],
//!   the one mover of the integration ref), park a stream on a conflict, its resolution
//!   worktree and the resolution carried onto the integration as it is by then,
//!   conflict prediction, the bisection of a red gate (pure).
//! - [`report`]: all text a person reads: progress, event lines, NDJSON, the conflict README,
//!   the final report, the plan and status views (learned estimates too), "what next" hints,
//!   GitHub Actions annotations; and [`report::printer`], the one writer of stdout and stderr.
//!   Sees plain data only: never git.
//! - [`ledger`]: what a run's agents used and cost (usage read as it streams, each preset's
//!   CLI by its rules and any program by a generic JSON line or `{usage_file}`; priced from
//!   `[prices]` where the agent does not say; added up per task, stream and run) and the
//!   budgets that limit it (a task's, crossed as usage streams; shared ones, reserved before a
//!   task starts). Over the run state; the dispatcher enforces shared budgets (`exec`).
//! - [`state`]: run state types, the atomic store (`StateStore`: the one way state is written),
//!   the lock, the journal, the history of past runs (what each task took, for `streams plan`
//!   to predict from).
//! - [`git`]: the only place that uses git2 or runs the `git` program; a [`git::Repo`] and named
//!   operations on plain data ([`ids::Oid`], [`work`]), the argv runner private.
//! - [`gh`]: the one door to the GitHub CLI (pull requests).
//! - [`ownership`]: compiled globsets; who owns a path; checking an agent's changed paths.
//! - [`plan`]: pure: TOML text in, validated [`plan::Plan`] out (raw -> model -> validate), plus
//!   the schedule analysis behind `streams plan` (learning from past runs); a stream's sparse
//!   set ([`plan::Sparse`], which `git` applies).
//! - [`authoring`]: pure, the other direction: plan text written for a person (the commented
//!   plan `streams init` writes, the built-in examples, a task list into a plan for
//!   `streams init --from`), then checked by [`plan`] like any other.
//! - [`agent`]: what streams knows about an agent, apart from any plan or run: the placeholders
//!   of its argv and their expansion, the task log's format (written and read there only); the
//!   room for what is known per agent CLI (presets, events, usage, sessions).
//! - Leaves, usable from any layer: [`text`] (quoting, escaping and sanitising for a terminal,
//!   short ids), [`ids`] (a commit's [`ids::Oid`]; a stream's and a task's place, passed
//!   instead of bare indices), [`work`] (what a piece of work amounts to: its size, a file's
//!   change, the ignored files an agent wrote), [`layout`] (every ref and directory name a run
//!   uses, built and parsed), [`failpoint`] (crash tests), [`duration`] (durations for people),
//!   [`git_env`] (the environment variables that redirect git, shared by `git` and `plan`),
//!   [`children`] (the processes streams starts itself, told apart from an agent's strays),
//!   [`beneath`] (the one way streams writes into a workspace: beneath it, never through a
//!   link).
//! - [`error`]: error kinds and the exit codes, in one place, with how a run's outcome maps to
//!   one (it wraps [`git::GitError`], so it sits beside git rather than below it).
//! - [`demo`]: the example repository behind `streams demo`.
//! - [`ci`]: pure: a plan spread over CI jobs (its stages, the secrets and installs its agents
//!   need, what cannot be kept across machines) and the GitHub Actions workflow that runs it.

// Output goes through `report::printer` alone (see there); tests print what they like.
#![warn(clippy::print_stdout, clippy::print_stderr)]
#![cfg_attr(test, allow(clippy::print_stdout, clippy::print_stderr))]

pub mod agent;
pub mod authoring;
pub mod beneath;
pub mod children;
pub mod ci;
pub mod cli;
pub mod coordinator;
pub mod demo;
pub mod duration;
pub mod error;
pub mod exec;
pub mod failpoint;
pub mod gh;
pub mod git;
pub mod git_env;
pub mod ids;
pub mod layout;
pub mod ledger;
pub mod ops;
pub mod ownership;
pub mod plan;
pub mod report;
pub mod state;
pub mod text;
pub mod web;
pub mod work;
pub mod workspace;

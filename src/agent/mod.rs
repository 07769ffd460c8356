//! What streams knows about an agent, apart from any plan or run: the command it is started
//! with, what it prints, and the log it writes into.
//!
//! - [`argv`]: the placeholders an agent's command may use (`{prompt}`, `{worktree}`, ...), and
//!   the argv with them filled in, to run or to show a person.
//! - [`preset`]: the agent CLIs streams knows (claude, codex, aider, gemini, qwen): the one-shot
//!   invocation of each, its permissions, where it writes, how it is resumed and stopped; and
//!   what a plan's `agent` is ([`AgentSpec`]: a preset, or the argv of any program).
//! - [`home`]: a task's own configuration folder for a preset's CLI, seeded from the user's.
//! - [`events`]: what a preset's CLI printed, read by one parser per CLI: whether it finished,
//!   failed, was refused or hit a usage limit, its usage, session and last action.
//! - [`usage`]: tokens by kind, cost, turns and models, in one shape for every CLI.
//! - [`version`]: the version of a CLI found, against those its preset was tested with.
//! - [`log`]: the task log: what an agent (or a check, a gate run, a setup) printed, between the
//!   lines streams writes itself. Its format is written and read here only.
//!
//! Below the plan: the plan's validation asks this module which placeholders and presets exist,
//! and nothing here knows a plan, a run or git.

pub mod argv;
pub mod events;
pub mod home;
pub mod log;
pub mod preset;
pub mod usage;
pub mod version;

pub use argv::{PLACEHOLDERS, Placeholders};
pub use preset::{AgentSpec, Cli, Preset};
pub use usage::Usage;

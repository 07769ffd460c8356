//! What streams knows about an agent, apart from any plan or run: the command it is started
//! with, and the log it writes into.
//!
//! - [`argv`]: the placeholders an agent's command may use (`{prompt}`, `{worktree}`, ...), and
//!   the argv with them filled in, to run or to show a person.
//! - [`log`]: the task log: what an agent (or a check, a gate run, a setup) printed, between the
//!   lines streams writes itself. Its format is written and read here only.
//!
//! Room for what the next issues teach streams about the agent CLIs it runs: a preset per CLI
//! (the one-shot invocation, its permissions, where it writes, how to stop it so it still
//! reports), reading its event stream (activity, refusals, errors), its usage (tokens, cost,
//! turns), its sessions (resuming one), its usage limits. Each gets a module here, so that a new
//! CLI is taught in one place.
//!
//! Below the plan: the plan's validation asks this module which placeholders exist, and nothing
//! here knows a plan, a run or git.

pub mod argv;
pub mod log;

pub use argv::{PLACEHOLDERS, Placeholders};

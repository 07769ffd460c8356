//! The engine: running a plan's tasks and integrating their work.
//!
//! - [`dispatcher`]: the [`Engine`], sole writer of run state while a session runs; its
//!   decisions are pure functions in `decide`, starting a task is in `launch`, sync points in
//!   `integration`.
//! - [`task_spec`]: a task's prompt and argv, the same for a run and `run --dry-run`.
//! - [`task`]: one task, as its steps (prepare, attempt, verify, commit, bring); [`process`]:
//!   agent process groups. [`events`]: what they tell the dispatcher.
//! - [`setup`]: a workspace's `setup` command, run before the first agent there.
//! - [`sandbox`]: the kernel confinement of an agent's writes (Landlock), applied between fork
//!   and exec.
//! - [`recover`]: picking a run up again (`resume`, `continue`, `skip`), and what a dead
//!   coordinator left running.
//! - [`stale_locks`]: stale git lock files after a crash.

mod ahead;
mod check;
mod decide;
pub mod dispatcher;
pub mod events;
mod gate;
mod halt;
pub mod include;
mod integration;
mod launch;
pub mod process;
pub mod prompt;
pub mod recover;
mod run;
pub mod sandbox;
pub mod setup;
mod signals;
pub mod stale_locks;
pub mod task;
pub mod task_spec;

pub use dispatcher::{Engine, EngineInput, Finish, Session};

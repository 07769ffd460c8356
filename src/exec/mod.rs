//! The engine: running a plan's tasks and integrating their work.
//!
//! - [`dispatcher`]: the [`Engine`], sole writer of run state while a session runs. It holds
//!   the `run` (the state, saved and reported through one writer, and what the run works
//!   with) and drives the parts, each owning what it keeps: the streams' `check`s, the `gate`
//!   (a batch of queued units, bisected when red), the `ahead` pool of workspaces prepared
//!   before their streams start, and [`recover`]y. Its decisions are pure functions in
//!   `decide`; what it tells apart from its parts' work is in `events`.
//! - `task`: one task, as its steps (prepare, attempt, verify, commit, bring), run by an
//!   executor that reports through events; `launch` builds its job from the plan and the
//!   state, [`task_spec`] its prompt and argv (the same for a run and `run --dry-run`).
//! - Sync points: `integration` (a unit on its own), the `gate` (batches), `park`ing a stream
//!   on a conflict while the rest goes on (`notify` tells someone), the `resolve`r agent that
//!   tries first (proposing or integrating what streams' rules and checks accept), and what a
//!   person does then (`continue STREAM`, `skip STREAM`).
//! - `process`: agent process groups (a check's, the gate's, a setup's too), each under its
//!   `reaper`, which makes every process the agent starts its task's by ancestry; `setup`: a
//!   workspace's `setup` command; `include`: the ignored files copied into a new workspace;
//!   [`sandbox`]: the kernel confinement of an agent's writes (Landlock), applied between fork
//!   and exec.
//! - [`recover`]: picking a run up again after a crash, and what a dead coordinator left
//!   running; `stale_locks`: the git lock files a crash left.

mod ahead;
mod budgets;
mod check;
mod decide;
pub mod dispatcher;
mod events;
mod gate;
mod include;
mod integration;
mod launch;
mod notify;
mod park;
mod process;
pub mod prompt;
mod reaper;
pub mod recover;
mod resolve;
mod run;
pub mod sandbox;
mod setup;
pub mod signals;
pub mod stale_locks;
mod task;
pub mod task_spec;

// How a run at rest ended, read from its state: for `integrate`, which can end one without
// running the engine.
pub use decide::settled;
pub use dispatcher::{Engine, EngineInput, Finish, Session};
pub use park::Resolution;

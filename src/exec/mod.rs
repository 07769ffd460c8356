//! Running a plan: the dispatcher (sole owner of run state), the task executors, agent
//! processes, prompts, and the commands that steer a run (start, resume, continue, skip, abort).

pub mod control;
mod decide;
pub mod dispatcher;
pub mod executor;
pub mod process;
pub mod prompt;
pub mod recover;
pub mod task_spec;

pub use dispatcher::{Engine, EngineInput, Finish, Session};

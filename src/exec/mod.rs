//! Running a plan: the dispatcher (sole owner of run state), the task executors, agent
//! processes, prompts, and the commands that steer a run (start, resume, continue, skip, abort).

pub mod control;
pub mod dispatcher;
pub mod executor;
pub mod process;
pub mod prompt;
mod recover;
pub mod sandbox;

pub use dispatcher::{Engine, EngineInput, Finish, Session};

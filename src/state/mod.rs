//! Run state: the types, the atomic store, the per-plan locks and the register of running
//! plans, the journal, and the history of past runs.

mod budget;
mod forecast;
pub mod history;
mod integration;
pub mod journal;
pub mod lock;
mod model;
pub mod register;
pub mod store;
mod task;
mod timeline;

pub use budget::*;
pub use forecast::*;
pub use integration::*;
pub use journal::{Entry, Journal};
pub use lock::{RegisterLock, RunLock};
pub use model::*;
pub use store::{RunDir, StateDir, StateStore, new_run_id, now_ms};
pub use task::*;
pub use timeline::*;

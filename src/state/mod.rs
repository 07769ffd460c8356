//! Run state: the types, the atomic store, the lock, the journal, and the history of past runs.

pub mod history;
pub mod journal;
pub mod lock;
mod model;
pub mod store;

pub use journal::{Entry, Journal};
pub use lock::RunLock;
pub use model::*;
pub use store::{RunDir, StateDir, StateStore, new_run_id, now_ms};

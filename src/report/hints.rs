//! "What to do next": the commands a person is pointed to when a run stops short of the end,
//! written here once so every message that gives them says the same thing.

/// For `resume` (or a new `run`) refused because the run is halted on a conflict.
pub fn resume_while_halted(stream: &str) -> String {
    format!("resolve it and run `streams continue`, or `streams skip {stream}`, or `streams abort`")
}

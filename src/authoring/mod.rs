//! Writing plans: the text `streams init` puts in front of a person.
//!
//! [`crate::plan`] reads a plan (TOML text in, validated [`crate::plan::Plan`] out); this module
//! goes the other way, from facts about a repository or a task list to plan text a person then
//! edits. It is a room of its own because the two directions share no code but the rules a name
//! must follow: keeping them apart leaves `plan/` the one place that says what a plan means,
//! and this one the place to look for what streams writes for you.
//!
//! - [`init`]: the commented plan `streams init` writes for a repository, and the `agent` lines
//!   (one per agent CLI known) that every written plan shares;
//! - [`members`]: the members of the repository's workspaces (Cargo, npm/pnpm, Go, Python),
//!   which `init` makes streams of;
//! - [`examples`]: the example plans of `streams/`, built into the binary (`init --example`);
//! - [`tasks`]: a task list (spec-kit `tasks.md`, a checklist, JSON) grouped into streams, for
//!   `streams init --from`.
//!
//! Pure, like `plan/`: text and facts in, text out. What it writes passes [`crate::plan::check`]
//! (tests hold every generator to that), so `streams plan` accepts it as it is.

pub mod examples;
pub mod init;
pub mod members;
pub mod tasks;

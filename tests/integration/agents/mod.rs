//! The real agent CLIs (Claude Code, Codex, aider, Gemini CLI, Qwen Code), pinned and installed
//! from the registries, run against a scripted model server of this project on 127.0.0.1.
//!
//! - `server`: the scripted model server (Anthropic Messages, OpenAI Responses and chat
//!   completions, Gemini generateContent), with its own tests in `server_tests`.
//! - `clis`: where each pinned CLI is installed, who runs it (an unprivileged account, and root),
//!   and the invocation `docs/agents.md` specifies; a missing CLI fails under `CI=true` and is
//!   skipped with a visible reason elsewhere.
//! - `real`: each CLI edits and commits in a scratch repository through the server: proof that
//!   the harness and the documented invocations work.
//! - `record`: re-records the CLIs' event streams in `fixtures/agents/recorded` (ignored tests,
//!   run by hand).
//!
//! No test here reaches beyond 127.0.0.1: every CLI is configured with its telemetry, update
//! checks and other network habits off (`docs/agents.md`, "Network").

mod clis;
mod plans;
mod real;
mod record;
mod scenes;
mod server;
mod server_tests;

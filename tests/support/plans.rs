//! Plans the tests run: written as `streams.toml` in a repository, with the scripted `act` agent
//! (fixtures/agents) doing the work.

use crate::common::TestRepo;

/// Writes `streams.toml` (untracked: the plan need not be committed).
pub fn plan(repo: &TestRepo, text: &str) {
    repo.write("streams.toml", text);
}

/// Streams `a` and `b` of plan `p` running side by side from the same base (in a
/// `repos::repo_with_shared`), with the actions of their agents (comma-separated TOML strings).
/// `a` always writes `a/y` and lands first: `b` starts its actions only once `a`'s work is on the
/// integration branch, so `b` is integrated onto a moved tip, deterministically.
pub fn two_streams(repo: &TestRepo, a: &str, b: &str, extra: &str) {
    plan(
        repo,
        &format!(
            r#"
[plan]
name = "p"
jobs = 2
shared = ["shared.txt", "docs/*.md", "assets/*"]
{extra}

[[stream]]
name = "a"
owns = ["a/**"]
agent = ["act", "write", "a/y", "ya", {a}]
tasks = ["Task of a"]

[[stream]]
name = "b"
owns = ["b/**"]
agent = ["act", "wait-rev", "streams/p/integration:a/y", {b}]
tasks = ["Task of b"]
"#
        ),
    );
}

/// `two_streams` where both rewrite the middle line of the shared file: `b`'s integration
/// conflicts and the run halts (its resolution worktree is `runs::resolution`).
pub fn conflicting(repo: &TestRepo) {
    two_streams(
        repo,
        r#""write", "shared.txt", "from a""#,
        r#""write", "shared.txt", "from b", "write", "b/y", "yb""#,
        "",
    );
}

//! GitHub Actions: workflow-command annotations and the step summary's extras, for a run on a
//! runner. (The workflow itself is written by `ci::github`; pull requests go through `gh`.)
//!
//! Annotations (`::error`, `::warning`, `::group::`) are lines the runner reads from a step's
//! output; streams prints them on stderr (the runner reads both streams, and stdout stays for
//! `--json` data) when `GITHUB_ACTIONS=true`. Agent output shown inside a group is fenced with
//! `::stop-commands::`, so a line an agent printed can never act as a workflow command.
//! Escaping follows the runner's rules (`ActionCommand.cs`): in data `%`, `\r`, `\n`; in
//! properties also `:` and `,`.

use std::fmt::Write as _;

use super::summary::RunReport;
use super::timeline::{self, duration_ms, outcome_word};
use crate::state::{FailReason, RunState, Span, Step, StreamState, TaskState};

/// Escapes a command's message.
pub fn escape_data(text: &str) -> String {
    text.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// Escapes a command's property value (`file=`, `title=`).
pub fn escape_property(text: &str) -> String {
    escape_data(text).replace(':', "%3A").replace(',', "%2C")
}

/// One workflow command line.
fn command(name: &str, properties: &[(&str, &str)], message: &str) -> String {
    let mut line = format!("::{name}");
    for (i, (key, value)) in properties.iter().enumerate() {
        line.push(if i == 0 { ' ' } else { ',' });
        let _ = write!(line, "{key}={}", escape_property(value));
    }
    let _ = write!(line, "::{}", escape_data(message));
    line
}

/// The annotations for a run, one line each: a collapsed group with the log tail of every task
/// that ran, then an error for each failed stream (with `file=` at the first path an ownership
/// rejection names), a warning for each skipped one, and an error at each file of a conflict
/// halt. `log_tail` gives the last lines of a span's log; `token` ends the fence around them
/// and must be something an agent cannot guess (the caller makes it random).
pub fn annotations(
    state: &RunState,
    log_tail: &dyn Fn(&Span) -> Vec<String>,
    token: &str,
) -> String {
    let mut out = String::new();
    for span in &state.timeline {
        let Step::Task { task } = span.step else {
            continue;
        };
        let summary = state
            .stream_by_name(&span.stream)
            .and_then(|(_, s)| s.tasks.get(task))
            .map(|t| t.summary.as_str())
            .unwrap_or("");
        let title = format!(
            "{} {}: {summary} ({}, {})",
            span.stream,
            timeline::step_name(&span.step),
            outcome_word(&span.outcome),
            super::fmt_duration_ms(duration_ms(span))
        );
        let _ = writeln!(out, "{}", command("group", &[], &title));
        let _ = writeln!(out, "::stop-commands::{token}");
        let lines = log_tail(span);
        if lines.is_empty() {
            let _ = writeln!(out, "(no output)");
        }
        for line in lines {
            let _ = writeln!(out, "{line}");
        }
        let _ = writeln!(out, "::{token}::");
        let _ = writeln!(out, "::endgroup::");
    }
    for stream in &state.streams {
        match &stream.state {
            StreamState::Failed { reason, .. } => {
                let rejected =
                    stream
                        .tasks
                        .iter()
                        .enumerate()
                        .find_map(|(t, task)| match &task.state {
                            TaskState::Failed {
                                reason: FailReason::Ownership { violations, .. },
                                ..
                            } => violations.first().map(|v| (t, v.path.as_str())),
                            _ => None,
                        });
                let line = match rejected {
                    Some((t, path)) => command(
                        "error",
                        &[
                            ("file", path),
                            (
                                "title",
                                &format!(
                                    "streams: task {} of stream {} changed a path it does not own",
                                    t + 1,
                                    stream.name
                                ),
                            ),
                        ],
                        reason,
                    ),
                    None => command(
                        "error",
                        &[("title", &format!("streams: stream {} failed", stream.name))],
                        reason,
                    ),
                };
                let _ = writeln!(out, "{line}");
            }
            StreamState::Skipped { reason, .. } => {
                let title = format!("streams: stream {} skipped", stream.name);
                let _ = writeln!(out, "{}", command("warning", &[("title", &title)], reason));
            }
            _ => {}
        }
    }
    for (_, stream, halt) in state.parked() {
        let name = &stream.name;
        let title = format!("streams: conflict integrating stream {name}");
        for file in &halt.files {
            let message = format!(
                "{name}'s work conflicts with the integration branch here; resolve it in {} and run `streams continue {name}` (or `streams skip {name}`)",
                halt.resolution_worktree.display()
            );
            let _ = writeln!(
                out,
                "{}",
                command("error", &[("file", file), ("title", &title)], &message)
            );
        }
    }
    out
}

/// The annotations of a session that ended, when it ran in GitHub Actions (`GITHUB_ACTIONS=true`);
/// `None` anywhere else. Log tails come from the steps' logs, fenced by a fresh random token.
pub fn session_annotations(state: &RunState) -> Option<String> {
    if std::env::var("GITHUB_ACTIONS").is_ok_and(|v| v == "true") {
        // The fence around agent output must not be guessable by an agent.
        let token = format!(
            "streams-{:016x}",
            std::hash::BuildHasher::hash_one(
                &std::collections::hash_map::RandomState::new(),
                &state.run_id
            )
        );
        Some(annotations(state, &super::span_log_tail, &token))
    } else {
        None
    }
}

/// Where branches can be seen on GitHub: `GITHUB_SERVER_URL` and `GITHUB_REPOSITORY`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Links {
    pub server: String,
    pub repository: String,
}

impl Links {
    /// From the environment GitHub Actions sets; `None` outside it. `var` reads a variable.
    pub fn from_env(var: impl Fn(&str) -> Option<String>) -> Option<Links> {
        let server = var("GITHUB_SERVER_URL").filter(|v| !v.is_empty())?;
        let repository = var("GITHUB_REPOSITORY").filter(|v| !v.is_empty())?;
        Some(Links {
            server: server.trim_end_matches('/').to_string(),
            repository,
        })
    }

    pub fn branch_url(&self, branch: &str) -> String {
        format!(
            "{}/{}/tree/{}",
            self.server,
            self.repository,
            url_path(branch)
        )
    }
}

/// A branch name as a URL path: `/` kept, everything outside the unreserved set encoded.
fn url_path(text: &str) -> String {
    let mut out = String::new();
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~/".contains(&byte) {
            out.push(byte as char);
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}

/// The step summary's list of branches, linked to GitHub (they are there once pushed, e.g. by
/// `git push` of `streams/<plan>/*` or `streams pr`).
pub fn branch_links(report: &RunReport, links: &Links) -> String {
    let mut out = String::from("\nBranches:\n\n");
    let _ = writeln!(
        out,
        "- integration: [{0}]({1})",
        report.integration_branch,
        links.branch_url(&report.integration_branch)
    );
    for stream in &report.streams {
        let _ = writeln!(
            out,
            "- {}: [{}]({}) ({})",
            stream.name,
            stream.branch,
            links.branch_url(&stream.branch),
            stream.status
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::timeline::sample_state;

    fn tail(span: &Span) -> Vec<String> {
        vec![
            format!("last line of {}", span.stream),
            "::error::an agent's forged annotation".into(),
        ]
    }

    #[test]
    fn escaping_follows_the_runners_rules() {
        assert_eq!(
            escape_data("50% done\r\nnext: a,b"),
            "50%25 done%0D%0Anext: a,b"
        );
        assert_eq!(escape_property("src/a:b,c%.rs"), "src/a%3Ab%2Cc%25.rs");
        assert_eq!(
            command(
                "error",
                &[("file", "a,b.rs"), ("title", "x: y")],
                "line 1\nline 2"
            ),
            "::error file=a%2Cb.rs,title=x%3A y::line 1%0Aline 2"
        );
    }

    #[test]
    fn groups_for_every_task_errors_for_failures_and_the_first_rejected_path() {
        let state = sample_state();
        let text = annotations(&state, &tail, "tok");
        let expected = "\
::group::db task 1: Add the schema (ok, 1.0s)
::stop-commands::tok
last line of db
::error::an agent's forged annotation
::tok::
::endgroup::
::group::api task 1: Add /login (failed, 990ms)
::stop-commands::tok
last line of api
::error::an agent's forged annotation
::tok::
::endgroup::
::error file=src/db/x.rs,title=streams%3A task 1 of stream api changed a path it does not own::changed paths it does not own: src/db/x.rs (owned by db), README.md (owned by no stream); its work is kept on refs/streams/p/rejected/api/1
::warning title=streams%3A stream ui skipped::its dependency `api` did not finish
";
        assert_eq!(text, expected);
    }

    #[test]
    fn a_parked_stream_has_an_error_at_each_file() {
        let mut state = sample_state();
        state.timeline.clear();
        state.streams[2].state = StreamState::Pending;
        crate::report::timeline::park_sample(&mut state, "api", 10);
        if let StreamState::Parked(park) = &mut state.streams[1].state {
            park.files = vec!["Cargo.lock".into(), "docs/a,b.md".into()];
        }
        let text = annotations(&state, &tail, "tok");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(lines[0].starts_with(
            "::error file=Cargo.lock,title=streams%3A conflict integrating stream api::api's work conflicts"
        ));
        assert!(
            lines[1].starts_with("::error file=docs/a%2Cb.md,"),
            "{text}"
        );
        assert!(lines[1].contains("resolve it in /wt/.resolve-api and run `streams continue api`"));
    }

    #[test]
    fn links_need_both_variables() {
        let env = |server: Option<&str>, repo: Option<&str>| {
            Links::from_env(|name| match name {
                "GITHUB_SERVER_URL" => server.map(String::from),
                "GITHUB_REPOSITORY" => repo.map(String::from),
                _ => None,
            })
        };
        assert_eq!(env(Some("https://github.com"), None), None);
        assert_eq!(env(None, Some("o/r")), None);
        let links = env(Some("https://github.com/"), Some("o/r")).unwrap();
        assert_eq!(
            links.branch_url("streams/p/a#b"),
            "https://github.com/o/r/tree/streams/p/a%23b"
        );
        let report = crate::report::summary::build(&sample_state(), "failed", None);
        let text = branch_links(&report, &links);
        assert!(text.contains(
            "- integration: [streams/p/integration](https://github.com/o/r/tree/streams/p/integration)"
        ));
        assert!(text.contains(
            "- api: [streams/p/api](https://github.com/o/r/tree/streams/p/api) (failed)"
        ));
    }
}

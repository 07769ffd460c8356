//! The title and body of a stream's pull request, made from what `show` gathered, and the
//! lines `streams pr` prints.

use std::fmt::Write as _;

use super::fmt_duration_ms;
use super::show_view::StreamShow;
use crate::text::{escape_unsafe, md_code, md_code_cell, md_text};

/// What a pull request body says besides the stream itself.
pub struct PrContext<'a> {
    pub plan: &'a str,
    pub run_id: &'a str,
    /// The stream's `owns` patterns, and the plan's `shared` ones.
    pub owns: &'a [String],
    pub shared: &'a [String],
    /// Each stream it depends on, and its pull request when there is one (`#12`).
    pub depends_on: &'a [(String, Option<String>)],
}

/// `api: Add /login`, and how many more tasks there were. One line, whatever the task says.
pub fn title(stream: &StreamShow) -> String {
    let title = match stream.tasks.as_slice() {
        [] => stream.name.clone(),
        [only] => format!("{}: {}", stream.name, only.text),
        [first, rest @ ..] => format!(
            "{}: {} (+{} more {})",
            stream.name,
            first.text,
            rest.len(),
            if rest.len() == 1 { "task" } else { "tasks" }
        ),
    };
    escape_unsafe(&title).into_owned()
}

/// The body: where it comes from, what it depends on, its tasks, files, checks and ownership.
/// Every name is in a code span nothing can close and every other text is Markdown-escaped
/// ([`crate::text`]): what agents named cannot add Markdown of its own.
pub fn body(stream: &StreamShow, cx: &PrContext<'_>) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Stream {} of plan {} (run {}), made by agents run by `streams`.",
        md_code(&stream.name),
        md_code(cx.plan),
        cx.run_id
    );
    if !cx.depends_on.is_empty() {
        out.push('\n');
        for (dep, pr) in cx.depends_on {
            match pr {
                Some(pr) => {
                    let _ = writeln!(
                        out,
                        "Depends on {} (stream {}): merge that first.",
                        pr,
                        md_code(dep)
                    );
                }
                None => {
                    let _ = writeln!(
                        out,
                        "Depends on stream {} (no pull request for it yet): merge its work first.",
                        md_code(dep)
                    );
                }
            }
        }
    }
    let _ = writeln!(out, "\n### Tasks\n");
    for t in &stream.tasks {
        let done = matches!(&t.status[..], "committed" | "integrated");
        let mark = if done { "x" } else { " " };
        let reason = t
            .reason
            .as_deref()
            .map(|r| format!(": {}", md_text(r)))
            .unwrap_or_default();
        let cost = t
            .cost
            .as_ref()
            .map(|c| {
                format!(
                    "; {}, {} tokens",
                    c.tally.cost_text(),
                    c.tally.tokens_text()
                )
            })
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "- [{mark}] {} ({}{reason}{cost})",
            md_text(&t.text),
            t.status
        );
    }
    if let Some(cost) = &stream.cost {
        let _ = writeln!(out, "\nAgent cost: {}.", cost.describe());
    }
    let _ = writeln!(
        out,
        "\n### Files ({}, +{} -{})\n",
        stream.files.len(),
        stream.insertions,
        stream.deletions
    );
    if stream.files.is_empty() {
        let _ = writeln!(out, "No files changed.");
    } else {
        let _ = writeln!(out, "| file | + | - |\n| --- | ---: | ---: |");
        for f in &stream.files {
            let (ins, del) = match (f.insertions, f.deletions) {
                (Some(i), Some(d)) => (i.to_string(), d.to_string()),
                _ => ("binary".to_string(), String::new()),
            };
            let name = match &f.renamed_from {
                Some(old) => format!("{} → {}", md_code_cell(old), md_code_cell(&f.path)),
                None => md_code_cell(&f.path),
            };
            let _ = writeln!(out, "| {name} | {ins} | {del} |");
        }
    }
    if !stream.checks.is_empty() {
        let _ = writeln!(out, "\n### Checks\n");
        for c in &stream.checks {
            let _ = writeln!(
                out,
                "- {}: {} ({})",
                c.kind,
                c.outcome,
                fmt_duration_ms(c.time_ms)
            );
        }
    }
    let _ = writeln!(out, "\n### Ownership\n");
    let quoted = |patterns: &[String]| {
        patterns
            .iter()
            .map(|p| md_code(p))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let _ = writeln!(
        out,
        "The stream may change only {}{}; everything else was read-only to its agents.",
        quoted(cx.owns),
        if cx.shared.is_empty() {
            String::new()
        } else {
            format!(" and the shared {}", quoted(cx.shared))
        }
    );
    for r in &stream.rejections {
        let _ = writeln!(
            out,
            "\nTask {} was rejected for changing paths it does not own ({}); that work is kept on {}.",
            r.task,
            r.paths
                .iter()
                .map(|v| md_code(&v.path))
                .collect::<Vec<_>>()
                .join(", "),
            md_code(&r.kept)
        );
    }
    out
}

/// The title and body of the integration branch's pull request: every stream in one.
pub fn integration_body(streams: &[StreamShow], plan: &str, run_id: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "The integration branch of plan {} (run {}): every integrated stream's work.\n",
        md_code(plan),
        run_id
    );
    let _ = writeln!(out, "| stream | state | tasks | files | + | - |");
    let _ = writeln!(out, "| --- | --- | ---: | ---: | ---: | ---: |");
    for s in streams {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} |",
            s.name,
            s.state,
            s.tasks.len(),
            s.files.len(),
            s.insertions,
            s.deletions
        );
    }
    out
}

/// What `pr` did for one branch.
#[derive(Clone, Debug)]
pub struct Opened {
    /// The stream, or `integration`.
    pub name: String,
    pub head: String,
    /// Opened now, or an open one (from an earlier `streams pr`) updated.
    pub created: bool,
    pub number: u64,
    pub url: String,
}

pub enum PrOutcome {
    /// `--dry-run`: the commands that would run, as argv; `gh_missing`: `gh` is not on PATH
    /// (they could not run here).
    DryRun {
        commands: Vec<Vec<String>>,
        gh_missing: bool,
    },
    Done {
        pushed: Vec<String>,
        opened: Vec<Opened>,
    },
}

/// What `streams pr` prints: the commands of a dry run (one per line, quoted for a shell), or
/// each pull request opened or updated.
pub fn render_outcome(outcome: &PrOutcome) -> String {
    let mut out = String::new();
    match outcome {
        PrOutcome::DryRun { commands, .. } => {
            for argv in commands {
                // A dry run does not ask GitHub what is open, so it cannot know which of the two
                // a real run does; it says so rather than always showing `create`.
                if argv.get(1..3) == Some(&["pr".to_string(), "create".to_string()][..])
                    && let Some(head) = argv.iter().skip_while(|a| *a != "--head").nth(1)
                {
                    let _ = writeln!(
                        out,
                        "# or, if a pull request from {head} is open already: `gh pr edit` of it with this title and body"
                    );
                }
                let line: Vec<String> = argv.iter().map(|a| crate::text::shell_quote(a)).collect();
                let _ = writeln!(out, "{}", line.join(" "));
            }
        }
        PrOutcome::Done { pushed, opened } => {
            let _ = writeln!(out, "pushed {}", pushed.join(", "));
            for o in opened {
                let verb = if o.created { "opened" } else { "updated" };
                let _ = writeln!(out, "{}: {verb} #{} {}", o.name, o.number, o.url);
            }
        }
    }
    out
}

/// After a dry run's commands, when `gh` is not installed: they could not run here.
pub const GH_MISSING: &str = "the GitHub CLI `gh` was not found on PATH: install it (https://cli.github.com) and run `gh auth login` before `streams pr`";

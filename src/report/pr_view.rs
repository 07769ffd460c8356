//! The title and body of a stream's pull request, made from what `show` gathered, and the
//! lines `streams pr` prints.

use std::fmt::Write as _;

use super::fmt_duration_ms;
use super::show_view::StreamShow;

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

/// `api: Add /login`, and how many more tasks there were.
pub fn title(stream: &StreamShow) -> String {
    match stream.tasks.as_slice() {
        [] => stream.name.clone(),
        [only] => format!("{}: {}", stream.name, only.text),
        [first, rest @ ..] => format!(
            "{}: {} (+{} more {})",
            stream.name,
            first.text,
            rest.len(),
            if rest.len() == 1 { "task" } else { "tasks" }
        ),
    }
}

/// The body: where it comes from, what it depends on, its tasks, files, checks and ownership.
pub fn body(stream: &StreamShow, cx: &PrContext<'_>) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Stream `{}` of plan `{}` (run {}), made by agents run by `streams`.",
        stream.name, cx.plan, cx.run_id
    );
    if !cx.depends_on.is_empty() {
        out.push('\n');
        for (dep, pr) in cx.depends_on {
            match pr {
                Some(pr) => {
                    let _ = writeln!(out, "Depends on {pr} (stream `{dep}`): merge that first.");
                }
                None => {
                    let _ = writeln!(
                        out,
                        "Depends on stream `{dep}` (no pull request for it yet): merge its work first."
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
            .map(|r| format!(": {r}"))
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
        let _ = writeln!(out, "- [{mark}] {} ({}{reason}{cost})", t.text, t.status);
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
            let _ = writeln!(out, "| `{}` | {ins} | {del} |", f.path);
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
            .map(|p| format!("`{p}`"))
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
            "\nTask {} was rejected for changing paths it does not own ({}); that work is kept on `{}`.",
            r.task,
            r.paths
                .iter()
                .map(|v| format!("`{}`", v.path))
                .collect::<Vec<_>>()
                .join(", "),
            r.kept
        );
    }
    out
}

/// The title and body of the integration branch's pull request: every stream in one.
pub fn integration_body(streams: &[StreamShow], plan: &str, run_id: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "The integration branch of plan `{plan}` (run {run_id}): every integrated stream's work.\n"
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
    /// `--dry-run`: the commands that would run, as argv.
    DryRun(Vec<Vec<String>>),
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
        PrOutcome::DryRun(commands) => {
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

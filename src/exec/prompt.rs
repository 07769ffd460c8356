//! The prompt each agent gets (the placeholders in its command line are `agent::argv`'s).
//!
//! The prompt is the task text plus what an agent needs to stay in its lane: what it may change,
//! that everything else is read-only, who works beside it, and what its dependencies already did.
//! It is the same text for `--dry-run` and for the real run.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use crate::plan::{Plan, Prompt};

/// What a dependency already integrated, for the prompt.
#[derive(Clone, Debug)]
pub struct DependencyWork {
    pub stream: String,
    pub tasks: Vec<String>,
    /// Changed paths (possibly cut short), and how many there were in all.
    pub files: Vec<String>,
    pub total_files: usize,
}

/// The task's own text: the prompt as written, or the prompt file's contents.
pub fn task_text(plan_dir: &std::path::Path, prompt: &Prompt) -> Result<String, String> {
    match prompt {
        Prompt::Text(text) => Ok(text.clone()),
        Prompt::File(path) => {
            let full = plan_dir.join(path);
            std::fs::read_to_string(&full)
                .map_err(|e| format!("could not read the prompt file {}: {e}", full.display()))
        }
    }
}

/// Streams that may run at the same time as `stream`: neither its ancestors nor descendants.
pub fn neighbours(plan: &Plan, stream: usize) -> Vec<usize> {
    let related = |start: usize, up: bool| -> BTreeSet<usize> {
        let mut seen = BTreeSet::new();
        let mut stack = vec![start];
        while let Some(s) = stack.pop() {
            let next: Vec<usize> = if up {
                plan.streams[s]
                    .depends_on
                    .iter()
                    .filter_map(|d| plan.stream_index(d))
                    .collect()
            } else {
                plan.streams
                    .iter()
                    .enumerate()
                    .filter(|(_, o)| o.depends_on.iter().any(|d| d == &plan.streams[s].name))
                    .map(|(i, _)| i)
                    .collect()
            };
            for n in next {
                if seen.insert(n) {
                    stack.push(n);
                }
            }
        }
        seen
    };
    let ancestors = related(stream, true);
    let descendants = related(stream, false);
    (0..plan.streams.len())
        .filter(|&i| i != stream && !ancestors.contains(&i) && !descendants.contains(&i))
        .collect()
}

pub fn render(
    plan: &Plan,
    stream: usize,
    task: usize,
    text: &str,
    deps: &[DependencyWork],
) -> String {
    let s = &plan.streams[stream];
    let mut out = String::new();
    out.push_str(text.trim_end());
    out.push_str("\n\n---\n\n");
    let _ = writeln!(
        out,
        "You are working in a git worktree as stream `{}` of plan `{}` (task {} of {}).",
        s.name,
        plan.name,
        task + 1,
        s.tasks.len()
    );
    let _ = writeln!(
        out,
        "\nYou may change only paths matching these patterns (relative to the repository root):"
    );
    for p in &s.owns {
        let _ = writeln!(out, "- {}", p.text);
    }
    if !plan.shared.is_empty() {
        let _ = writeln!(
            out,
            "\nShared paths, which any stream may edit (keep changes there small: they are merged):"
        );
        for p in &plan.shared {
            let _ = writeln!(out, "- {}", p.text);
        }
    }
    let _ = writeln!(
        out,
        "\nEverything else is read-only. A change to any other path makes this task fail and its work is set aside."
    );
    let beside = neighbours(plan, stream);
    if !beside.is_empty() {
        let _ = writeln!(out, "\nOther streams work at the same time; they own:");
        for i in beside {
            let o = &plan.streams[i];
            let owns: Vec<&str> = o.owns.iter().map(|p| p.text.as_str()).collect();
            let _ = writeln!(out, "- {}: {}", o.name, owns.join(", "));
        }
    }
    if !deps.is_empty() {
        let _ = writeln!(
            out,
            "\nYour dependencies are done and their work is already in your worktree:"
        );
        for d in deps {
            let _ = writeln!(out, "- {}:", d.stream);
            for t in &d.tasks {
                let _ = writeln!(out, "  - {}", t.lines().next().unwrap_or("").trim());
            }
            if d.total_files > 0 {
                let more = d.total_files.saturating_sub(d.files.len());
                let mut files = d.files.join(", ");
                if more > 0 {
                    let _ = write!(files, " and {more} more");
                }
                let _ = writeln!(out, "  changed: {files}");
            }
        }
    }
    let _ = writeln!(
        out,
        "\nCommit your work, or leave it in the worktree: whatever you leave is committed for you when you exit."
    );
    out
}

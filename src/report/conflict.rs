//! The README of a conflict bundle: what conflicted, where the pieces are, and how to go on.

use std::fmt::Write as _;
use std::path::Path;

use crate::text::{escape_unsafe, md_code, shell_quote};

/// What the README says, as plain data.
pub struct ConflictReadme<'a> {
    pub stream: &'a str,
    /// "task 2", "tasks 1-3".
    pub task_list: &'a str,
    /// Each task's number (one-based) and its summary on one line.
    pub tasks: &'a [(usize, String)],
    /// The integration branch's short name.
    pub integration_branch: &'a str,
    pub base: &'a str,
    pub ours: &'a str,
    pub theirs: &'a str,
    pub files: &'a [String],
    /// What git said about the merge.
    pub messages: &'a [String],
    /// What to fix besides the conflict (a merge driver with no command), one line each.
    pub hints: &'a [String],
    pub resolution_worktree: &'a Path,
    /// The stream is parked and the rest of the run goes on (false: the line stopped here).
    pub parked: bool,
}

pub fn conflict_readme(r: &ConflictReadme) -> String {
    let mut readme = String::new();
    let _ = writeln!(
        readme,
        "# Conflict: stream `{}` ({})\n",
        r.stream, r.task_list
    );
    let what = if r.parked {
        "The stream is parked: every other stream goes on, and the streams that depend on it \
         wait until it is resolved or left out."
    } else {
        "The run is halted: no new task starts until this is resolved, skipped, or the run is \
         aborted."
    };
    let _ = writeln!(
        readme,
        "Integrating stream `{}` onto `{}` conflicts in {} file(s). {what}\n",
        r.stream,
        r.integration_branch,
        r.files.len()
    );
    let _ = writeln!(readme, "## Tasks\n");
    for (number, summary) in r.tasks {
        let _ = writeln!(readme, "- task {number}: {summary}");
    }
    let _ = writeln!(readme, "\n## Commits\n");
    let _ = writeln!(readme, "- base (where the stream started): `{}`", r.base);
    let _ = writeln!(readme, "- ours (the integration tip):      `{}`", r.ours);
    let _ = writeln!(readme, "- theirs (the stream's work):      `{}`", r.theirs);
    let _ = writeln!(readme, "\n## Conflicted files\n");
    // Each name in a code span no backtick in it can close, quoted if it holds a newline.
    for path in r.files {
        let _ = writeln!(
            readme,
            "- {}: {} (base -> integration), {} (base -> {}), {} (with markers)",
            md_code(path),
            md_code(&format!("files/{path}.integration.diff")),
            md_code(&format!("files/{path}.stream.diff")),
            r.stream,
            md_code(&format!("files/{path}.conflicted")),
        );
    }
    if !r.hints.is_empty() {
        let _ = writeln!(readme, "\n## To fix besides the conflict\n");
        for hint in r.hints {
            let _ = writeln!(readme, "- {}", escape_unsafe(hint));
        }
    }
    if !r.messages.is_empty() {
        let _ = writeln!(readme, "\n## What git said\n");
        for m in r.messages {
            // git names the files raw in its messages.
            let _ = writeln!(readme, "    {}", escape_unsafe(m));
        }
    }
    let wt = r.resolution_worktree.display();
    let _ = writeln!(readme, "\n## How to go on\n");
    if r.parked {
        let _ = writeln!(
            readme,
            "The resolution worktree `{wt}` is detached at the integration tip the conflict was \
             found on (ours), with the conflicted files holding conflict markers. Resolve them \
             there with your usual tools, then:\n"
        );
    } else {
        let _ = writeln!(
            readme,
            "The resolution worktree `{wt}` is on the integration branch with the conflicted \
             files holding conflict markers. Resolve them there with your usual tools, then:\n"
        );
    }
    let quoted: Vec<String> = r.files.iter().map(|f| shell_quote(f)).collect();
    let _ = writeln!(
        readme,
        "    cd {}",
        shell_quote(&r.resolution_worktree.display().to_string())
    );
    let _ = writeln!(readme, "    # edit the files, then mark them resolved:");
    let _ = writeln!(readme, "    git add {}", quoted.join(" "));
    let _ = writeln!(
        readme,
        "    streams continue {}      # records the resolution and resumes the run\n",
        r.stream
    );
    if r.parked {
        let _ = writeln!(
            readme,
            "Streams integrated while this one waits are not lost: `continue` records the \
             resolution on the integration branch as it is by then, and says so if it conflicts \
             with what landed meanwhile.\n"
        );
    }
    let _ = writeln!(
        readme,
        "Or leave this stream's work out (its branch is kept):\n"
    );
    let _ = writeln!(readme, "    streams skip {}\n", r.stream);
    let _ = writeln!(
        readme,
        "Or stop the run and put the integration branch back where it was:\n"
    );
    let _ = writeln!(readme, "    streams abort");
    readme
}

//! What a page about a run shows (the live web view of `streams ui` and the static
//! `report.html`), as plain data: gathered by `ops::ui`, rendered by [`super::html`] or sent to
//! the browser as JSON (the page builds its DOM from it with text nodes only).
//!
//! Fields for what later work adds (a stream's cost from the ledger, a parked stream, a
//! resolver's proposal, a stop button) are optional: absent until something fills them, and
//! the pages show them only when present.

use serde::Serialize;

use super::show_view::{RunHeader, StreamShow};
use super::status_view::RunStatus;

/// Version of the page document (`GET /api/run` of `streams ui`).
pub const PAGE_SCHEMA: u32 = 1;

/// Lines of a diff kept per stream; the rest is cut (with a note) so a page stays usable.
pub const MAX_DIFF_LINES: usize = 20_000;

#[derive(Serialize)]
pub struct RunPage {
    pub schema: u32,
    pub run: RunHeader,
    pub status: RunStatus,
    /// `integrated`, `failed`, `halted`, ... as the report says it (see `summary::status_of`).
    pub outcome: String,
    pub streams: Vec<StreamPage>,
    /// The conflicts that wait for a person, with both sides and the bundle's README: the one
    /// a halted run stopped on (one stream per conflict, so a run that parks several streams
    /// lists each).
    pub conflicts: Vec<ConflictPage>,
    /// When this was gathered, milliseconds since the Unix epoch.
    pub at: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct StreamPage {
    /// The word on the board and in the graph (`svg::node_word`).
    pub word: String,
    /// The agent's last line of output (its log's last line, redacted), while it runs or as it
    /// ended.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub activity: Option<String>,
    /// The task whose log `log_tail` is (1-based).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_task: Option<usize>,
    /// The end of that log, sanitised and redacted.
    pub log_tail: Vec<String>,
    /// Everything `streams show` tells (log tails redacted).
    #[serde(flatten)]
    pub show: StreamShow,
    /// The stream's whole change; gathered for report.html, fetched on demand by the web view.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diff: Option<StreamDiff>,
    /// Its cost, once the run keeps a ledger (a later stage): shown when present.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost: Option<serde_json::Value>,
}

/// A stream's change, file by file.
#[derive(Clone, Debug, Default, Serialize)]
pub struct StreamDiff {
    pub files: Vec<FileDiff>,
    /// Lines were left out past [`MAX_DIFF_LINES`].
    pub truncated: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct FileDiff {
    pub path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub renamed_from: Option<String>,
    pub binary: bool,
    /// The highlighter's name for the file's language, from its name (`rust`, `python`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lang: Option<&'static str>,
    pub lines: Vec<DiffLine>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DiffLine {
    /// `hunk` (an `@@` line), `add`, `del`, `context`, `meta` (`\ No newline at end of file`).
    pub kind: &'static str,
    /// The line without its leading `+`, `-` or space.
    pub text: String,
}

/// The conflict a halted run waits on.
#[derive(Clone, Debug, Serialize)]
pub struct ConflictPage {
    pub stream: String,
    /// The bundle's README.md: which tasks, which files, the commands to go on.
    pub readme: String,
    pub bundle: String,
    pub resolution_worktree: String,
    pub files: Vec<ConflictFile>,
    /// The resolver agent's resolution, when the plan has one: `resolver`, `mode`, `commit`,
    /// `refused` (the reason; absent when proposed) and `diff` (the resolution alone, as
    /// [`DiffLine`]s). Shown with an accept button (`continue STREAM`) when proposed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proposal: Option<serde_json::Value>,
}

#[derive(Clone, Debug, Serialize)]
pub struct ConflictFile {
    pub path: String,
    /// The highlighter's language for the file (see [`lang_of`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lang: Option<&'static str>,
    /// base -> integration (what the integration branch did to the file).
    pub integration: Vec<DiffLine>,
    /// base -> the stream (what the stream did to it).
    pub stream: Vec<DiffLine>,
    /// The file with labelled conflict markers, as the resolution worktree first had it.
    pub conflicted: String,
}

/// Splits `git diff` output into files. `git diff` lists files in the order `--numstat` does,
/// so each section is named by the matching entry of `files` (paths with spaces or quotes are
/// ambiguous in the `diff --git` line); a section beyond them is named from its header.
pub fn parse_patch(text: &str, files: &[crate::work::FileChange]) -> StreamDiff {
    let mut out = StreamDiff::default();
    let mut budget = MAX_DIFF_LINES;
    let mut current: Option<FileDiff> = None;
    let mut in_header = false;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("diff --git ") {
            out.files.extend(current.take());
            let known = files.get(out.files.len());
            let path = known.map_or_else(|| header_path(rest), |f| f.path.clone());
            current = Some(FileDiff {
                lang: lang_of(&path),
                path,
                renamed_from: known.and_then(|f| f.renamed_from.clone()),
                binary: false,
                lines: Vec::new(),
            });
            in_header = true;
            continue;
        }
        let Some(file) = current.as_mut() else {
            continue;
        };
        if in_header {
            if line.starts_with("Binary files ") {
                file.binary = true;
                continue;
            }
            if !line.starts_with("@@") {
                // index, mode, rename, ---/+++ lines.
                continue;
            }
            in_header = false;
        }
        if budget == 0 {
            out.truncated = true;
            continue;
        }
        budget -= 1;
        let (kind, text) = match line.as_bytes().first() {
            Some(b'@') => ("hunk", line),
            Some(b'+') => ("add", &line[1..]),
            Some(b'-') => ("del", &line[1..]),
            Some(b'\\') => ("meta", line),
            Some(b' ') => ("context", &line[1..]),
            _ => ("context", line),
        };
        file.lines.push(DiffLine {
            kind,
            text: text.to_string(),
        });
    }
    out.files.extend(current);
    out
}

/// The path of a `diff --git a/PATH b/PATH` header (its second half).
fn header_path(rest: &str) -> String {
    rest.rsplit_once(" b/")
        .map_or(rest, |(_, path)| path)
        .to_string()
}

/// The language highlight.js knows a file by, from its name; `None`: shown plain.
pub fn lang_of(path: &str) -> Option<&'static str> {
    let name = path.rsplit('/').next().unwrap_or(path);
    if name == "Makefile" || name == "GNUmakefile" {
        return Some("makefile");
    }
    if name == "Dockerfile" {
        return Some("bash");
    }
    let ext = name.rsplit_once('.')?.1.to_ascii_lowercase();
    Some(match ext.as_str() {
        "rs" => "rust",
        "py" | "pyi" => "python",
        "js" | "mjs" | "cjs" | "jsx" => "javascript",
        "ts" | "tsx" | "mts" => "typescript",
        "go" => "go",
        "java" => "java",
        "kt" | "kts" => "kotlin",
        "c" | "h" => "c",
        "cc" | "cpp" | "cxx" | "hpp" | "hh" => "cpp",
        "cs" => "csharp",
        "rb" => "ruby",
        "php" => "php",
        "swift" => "swift",
        "m" => "objectivec",
        "sh" | "bash" | "zsh" => "bash",
        "toml" | "ini" | "cfg" => "ini",
        "yml" | "yaml" => "yaml",
        "json" => "json",
        "md" | "markdown" => "markdown",
        "html" | "htm" | "xml" | "svg" => "xml",
        "css" => "css",
        "scss" => "scss",
        "less" => "less",
        "sql" => "sql",
        "lua" => "lua",
        "r" => "r",
        "pl" | "pm" => "perl",
        "graphql" | "gql" => "graphql",
        "diff" | "patch" => "diff",
        _ => return None,
    })
}

/// A bundle's rendered diff (`similar`'s unified format) as lines.
pub fn parse_unified(text: &str) -> Vec<DiffLine> {
    text.lines()
        .filter(|l| !l.starts_with("--- ") && !l.starts_with("+++ "))
        .map(|line| {
            let (kind, text) = match line.as_bytes().first() {
                Some(b'@') => ("hunk", line),
                Some(b'+') => ("add", &line[1..]),
                Some(b'-') => ("del", &line[1..]),
                Some(b'\\') => ("meta", line),
                Some(b' ') => ("context", &line[1..]),
                _ => ("context", line),
            };
            DiffLine {
                kind,
                text: text.to_string(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::work::FileChange;

    #[test]
    fn a_patch_is_split_into_files_named_by_numstat() {
        let text = "diff --git a/a b.txt b/a b.txt\nnew file mode 100644\nindex 0000000..1111111\n--- /dev/null\n+++ b/a b.txt\n@@ -0,0 +1,2 @@\n+one\n+<script>\ndiff --git a/bin b/bin\nindex 1..2 100644\nBinary files a/bin and b/bin differ\ndiff --git a/c.rs b/c.rs\n--- a/c.rs\n+++ b/c.rs\n@@ -1,2 +1,2 @@\n keep\n-old\n+new\n\\ No newline at end of file\n";
        let files = vec![
            FileChange {
                path: "a b.txt".into(),
                renamed_from: None,
                insertions: Some(2),
                deletions: Some(0),
            },
            FileChange {
                path: "bin".into(),
                renamed_from: None,
                insertions: None,
                deletions: None,
            },
        ];
        let diff = parse_patch(text, &files);
        assert_eq!(diff.files.len(), 3);
        assert_eq!(diff.files[0].path, "a b.txt");
        assert_eq!(
            diff.files[0].lines[2],
            DiffLine {
                kind: "add",
                text: "<script>".into()
            }
        );
        assert!(diff.files[1].binary);
        assert!(diff.files[1].lines.is_empty());
        assert_eq!(diff.files[2].path, "c.rs");
        let kinds: Vec<&str> = diff.files[2].lines.iter().map(|l| l.kind).collect();
        assert_eq!(kinds, ["hunk", "context", "del", "add", "meta"]);
        assert!(!diff.truncated);
    }
}

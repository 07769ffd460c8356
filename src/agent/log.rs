//! The log of a task (and of a check, a gate run, a prepared workspace's setup): what the agent
//! or command printed, stdout and stderr as they came, between the lines streams writes itself.
//! Its format is written and read here only:
//!
//! ```text
//! === streams: api task 1 attempt 2 ===         a header: what the section is the output of
//! === argv: ["agent", "-p", "..."]               and the argv it ran (one section per attempt)
//! what the agent printed
//! streams: could not confine the agent: ...      a note from streams
//! [streams: log cut here after 64 MiB of output]
//! ```
//!
//! The files themselves are written by `exec` (a process's output is copied as it comes); where
//! they live is the run directory's (`state::RunDir`).

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

/// How the first header line of a section opens, and the second.
const HEADER: &str = "=== streams:";
const ARGV: &str = "=== argv:";

/// The two header lines that open a section: what it is the output of (`api task 1 attempt 2`,
/// `check of api on <commit>`, `gate run 3 on <commit> (+ api, db)`) and the argv it ran.
pub fn header(title: &str, argv: &[String]) -> String {
    format!("{HEADER} {title} ===\n{ARGV} {argv:?}\n")
}

/// The header of a prepared workspace's setup at commit `at`: [`header`] but for the closing
/// `===`, which this one has never had.
pub fn setup_header(at: &str, argv: &[String]) -> String {
    format!("{HEADER} setup at {at}\n{ARGV} {argv:?}\n")
}

/// A line from streams itself in the middle of the output (the agent could not be started,
/// files were copied into its workspace).
pub fn note(message: &str) -> String {
    format!("streams: {message}\n")
}

/// The line that ends the output kept of a flood, after `limit_mib` MiB.
pub fn cut(limit_mib: u64) -> String {
    format!("\n[streams: log cut here after {limit_mib} MiB of output]\n")
}

/// The last `n` lines of a log worth showing a person (a failed task's note, `streams show`, the
/// CI reports): streams' headers left out, sanitised, blank ones dropped, each cut to a sensible
/// width. None when the log cannot be read.
pub fn tail(path: &Path, n: usize) -> Vec<String> {
    let Some(text) = read_end(path, 16 * 1024) else {
        return Vec::new();
    };
    let lines: Vec<String> = text
        .lines()
        .filter(|l| !is_header(l))
        .map(crate::text::sanitize)
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            if l.chars().count() > 160 {
                format!("{}...", l.chars().take(157).collect::<String>())
            } else {
                l
            }
        })
        .collect();
    lines[lines.len().saturating_sub(n)..].to_vec()
}

/// The last `n` lines the agent printed in its latest attempt: what follows the last header,
/// without streams' own lines (they quote the argv), joined. What `retry_on` patterns are looked
/// for in.
pub fn last_attempt_output(path: &Path, n: usize) -> String {
    let Some(text) = read_end(path, 64 * 1024) else {
        return String::new();
    };
    let attempt = text.rfind(HEADER).map_or(&text[..], |at| &text[at..]);
    let lines: Vec<&str> = attempt
        .lines()
        .filter(|l| !opens_like_a_header(l) && !l.starts_with("streams: "))
        .collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Everything the agent printed in its latest attempt (what follows the last header), for its
/// events to be read; `max` bytes from the end at most (a flooded log is cut there too).
pub fn last_attempt(path: &Path, max: u64) -> String {
    let Some(text) = read_end(path, max) else {
        return String::new();
    };
    match text.rfind(HEADER) {
        Some(at) => {
            let section = &text[at..];
            // The two header lines are streams' own.
            section.splitn(3, '\n').nth(2).unwrap_or("").to_string()
        }
        None => text,
    }
}

/// Whether a line the agent printed near the end of its log contains one of `words` (streams'
/// headers, which quote its argv, left out).
pub fn output_mentions(path: &Path, words: &[&str]) -> bool {
    read_end(path, 64 * 1024).is_some_and(|text| {
        text.lines()
            .filter(|line| !opens_like_a_header(line))
            .any(|line| words.iter().any(|w| line.contains(w)))
    })
}

/// Whether `line` is one of the two header lines streams writes (what ran, its argv): what a
/// person is shown of a log leaves them out.
pub fn is_header(line: &str) -> bool {
    line.starts_with(HEADER) || line.starts_with(ARGV)
}

/// The readers that look for the agent's own words leave out every line that opens like a
/// header, not only streams' two: a line of the agent's own that opens with `=== ` is never
/// matched.
fn opens_like_a_header(line: &str) -> bool {
    line.starts_with("=== ")
}

/// The last `bytes` of a log as text: only the end matters, and a flooded log can be huge.
fn read_end(path: &Path, bytes: u64) -> Option<String> {
    let mut file = std::fs::File::open(path).ok()?;
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = file.seek(SeekFrom::Start(len.saturating_sub(bytes)));
    let mut end = Vec::new();
    let _ = file.take(bytes).read_to_end(&mut end);
    Some(String::from_utf8_lossy(&end).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv() -> Vec<String> {
        vec!["agent".into(), "say Permission denied".into()]
    }

    fn log(text: &str) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("1.log");
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    #[test]
    fn headers_name_what_ran() {
        assert_eq!(
            header("api task 1 attempt 2", &argv()),
            "=== streams: api task 1 attempt 2 ===\n=== argv: [\"agent\", \"say Permission denied\"]\n"
        );
        assert!(setup_header("abc", &[]).starts_with("=== streams: setup at abc\n=== argv: []"));
    }

    #[test]
    fn readers_leave_streams_own_lines_out() {
        let text = format!(
            "{}first try\n{}\x1b[31msecond\x1b[0m try\n{}",
            header("api task 1 attempt 1", &argv()),
            header("api task 1 attempt 2", &argv()),
            note("files copied")
        );
        let (_dir, path) = log(&text);
        assert_eq!(
            tail(&path, 5),
            ["first try", "second try", "streams: files copied"]
        );
        assert_eq!(last_attempt_output(&path, 5), "\x1b[31msecond\x1b[0m try");
        assert!(
            !output_mentions(&path, &["Permission denied"]),
            "only in the argv"
        );
        assert!(output_mentions(&path, &["EACCES", "first"]));
        let missing = path.with_extension("none");
        assert_eq!(tail(&missing, 5), Vec::<String>::new());
        assert_eq!(last_attempt_output(&missing, 5), "");
        assert!(!output_mentions(&missing, &["first"]));
    }
}

//! The trailers that mark whose work a commit carries (`Streams-Stream`, `Streams-Task`).

use super::commit::parse_oid;
use super::{GitError, GitResult, Repo};

pub const TRAILER_STREAM: &str = "Streams-Stream";
pub const TRAILER_TASK: &str = "Streams-Task";

/// Appends trailers to a commit message, keeping an existing trailer block together.
pub fn with_trailers(message: &str, trailers: &[(&str, String)]) -> String {
    let body = message.trim_end();
    let missing: Vec<String> = trailers
        .iter()
        .map(|(k, v)| format!("{k}: {v}"))
        .filter(|line| !body.lines().any(|l| l.trim() == line))
        .collect();
    if missing.is_empty() {
        return format!("{body}\n");
    }
    let last_paragraph = body.rsplit("\n\n").next().unwrap_or("");
    let ends_with_trailers = body.contains("\n\n")
        && !last_paragraph.is_empty()
        && last_paragraph.lines().all(|l| {
            l.split_once(": ").is_some_and(|(k, _)| {
                !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            })
        });
    let separator = if ends_with_trailers { "\n" } else { "\n\n" };
    format!("{body}{separator}{}\n", missing.join("\n"))
}

/// The (stream, task number) pairs named by `Streams-Stream` / `Streams-Task` trailers on the
/// commits in `base..tip`: the tasks whose work is already on that branch.
pub fn integrated_tasks(repo: &Repo, base: &str, tip: &str) -> GitResult<Vec<(String, usize)>> {
    let r = repo.open()?;
    let mut walk = r.revwalk().map_err(|e| GitError::library("revwalk", e))?;
    walk.push(parse_oid(tip)?)
        .map_err(|e| GitError::library("revwalk", e))?;
    walk.hide(parse_oid(base)?)
        .map_err(|e| GitError::library("revwalk", e))?;
    let mut found = Vec::new();
    for oid in walk {
        let oid = oid.map_err(|e| GitError::library("revwalk", e))?;
        let commit = r
            .find_commit(oid)
            .map_err(|e| GitError::library("revwalk", e))?;
        let message = String::from_utf8_lossy(commit.message_bytes()).into_owned();
        let mut stream = None;
        let mut tasks = Vec::new();
        for line in message.lines() {
            if let Some(v) = line.strip_prefix(&format!("{TRAILER_STREAM}: ")) {
                stream = Some(v.trim().to_string());
            } else if let Some(v) = line.strip_prefix(&format!("{TRAILER_TASK}: ")) {
                if let Ok(n) = v.trim().parse::<usize>() {
                    tasks.push(n);
                }
            }
        }
        if let Some(stream) = stream {
            found.extend(tasks.into_iter().map(|t| (stream.clone(), t)));
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trailers_join_an_existing_block() {
        assert_eq!(
            with_trailers("Add x", &[("Streams-Task", "1".into())]),
            "Add x\n\nStreams-Task: 1\n"
        );
        assert_eq!(
            with_trailers(
                "Add x\n\nSigned-off-by: a <b>\n",
                &[("Streams-Task", "1".into())]
            ),
            "Add x\n\nSigned-off-by: a <b>\nStreams-Task: 1\n"
        );
        assert_eq!(
            with_trailers(
                "Add x\n\nStreams-Task: 1\n",
                &[("Streams-Task", "1".into())]
            ),
            "Add x\n\nStreams-Task: 1\n"
        );
    }
}

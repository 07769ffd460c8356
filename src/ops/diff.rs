//! `diff`: the range of commits that holds a stream's whole change (from where it started to
//! its tip), or the run's whole change (from the base to the integration tip), shown by
//! `git diff` in the person's checkout.

use std::path::Path;

use crate::error::{Error, Result};
use crate::git::Repo;
use crate::ids::Oid;
use crate::state::{RunState, StreamState};

use super::show::{end_point, find_stream, start_point};

/// What to diff: two commits and what they are, for messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiffRange {
    pub from: Oid,
    pub to: Oid,
}

/// The stream's change, or with `None` the integration branch against the run's base.
pub fn range(repo: &Repo, state: &RunState, stream: Option<&str>) -> Result<DiffRange> {
    let Some(name) = stream else {
        // The integration ref as it is now (a run going on moves it), else as last saved.
        let to = repo
            .ref_target(&state.integration_ref)
            .ok()
            .flatten()
            .unwrap_or_else(|| state.integration_tip.clone());
        return Ok(DiffRange {
            from: state.base.clone(),
            to,
        });
    };
    let (_, s) = find_stream(state, name)?;
    let (Some(from), Some(to)) = (start_point(repo, state, s), end_point(repo, s)) else {
        let why = match &s.state {
            StreamState::Skipped { reason, .. } => format!("it was skipped: {reason}"),
            _ => "it has not started yet".to_string(),
        };
        return Err(Error::usage_with_hint(
            format!("stream `{name}` has no change to show: {why}"),
            "`streams status` shows where each stream stands",
        ));
    };
    Ok(DiffRange { from, to })
}

/// The resolver agent's resolution of parked stream `name`'s conflict (`diff --resolution`):
/// its own commit, against the stream's work with the conflicted files as the integration has
/// them.
pub fn resolution_range(state: &RunState, name: &str) -> Result<DiffRange> {
    let (_, s) = find_stream(state, name)?;
    let proposal = match &s.state {
        StreamState::Parked(park) => park.proposal.as_deref(),
        _ => None,
    };
    match proposal {
        Some(crate::state::Proposal {
            work: Some(work),
            commit: Some(commit),
            refused: None,
            ..
        }) => Ok(DiffRange {
            from: work.clone(),
            to: commit.clone(),
        }),
        Some(crate::state::Proposal {
            refused: Some(reason),
            commit,
            ..
        }) => Err(Error::usage_with_hint(
            format!("the resolver's resolution of `{name}` was refused: {reason}"),
            match commit {
                Some(kept) => format!(
                    "what it did is kept: `git show {}`; resolve the conflict yourself, then `streams continue {name}`",
                    crate::text::short(kept)
                ),
                None => format!("resolve the conflict yourself, then `streams continue {name}`"),
            },
        )),
        _ => Err(Error::usage_with_hint(
            format!("stream `{name}` has no proposed resolution"),
            "a resolver agent proposes one when the plan sets `resolve = { agent = [...], mode = \"propose\" }` and a stream's integration conflicts",
        )),
    }
}

/// How `diff` shows a range.
pub struct DiffOptions<'a> {
    /// Where to run git: the person's current directory, so relative paths mean what they mean
    /// to `git diff` there.
    pub dir: &'a Path,
    /// `--stat` instead of the patch.
    pub stat: bool,
    /// Limit to these paths (pathspecs).
    pub paths: &'a [String],
    /// `Some(..)` forces colours on or off; `None` lets git decide, as `git diff` does.
    pub color: Option<bool>,
}

/// Runs `git diff` over `range` for a person (its output goes straight to them); returns git's
/// exit code (git has said what went wrong on stderr).
pub fn show(range: &DiffRange, options: &DiffOptions) -> Result<i32> {
    Ok(crate::git::review::show_diff(
        &crate::git::review::DiffRequest {
            dir: options.dir,
            from: &range.from,
            to: &range.to,
            stat: options.stat,
            paths: options.paths,
            color: options.color,
        },
    )?)
}

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

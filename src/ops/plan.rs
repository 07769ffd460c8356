//! Plan analysis that needs the repository: conflicts predicted between the plan's existing
//! stream branches and the integration tip. (The pure analysis, waves and schedule, is in
//! [`crate::plan::schedule`].)

use crate::error::Result;
use crate::git::Repo;
use crate::plan::Plan;
use crate::report::plan_view::Predicted;
use crate::report::status_view::PredictedConflict;

pub fn predict(repo: &Repo, plan: &Plan, base_commit: &str) -> Result<Predicted> {
    let mut branches = Vec::new();
    for stream in &plan.streams {
        let name = crate::layout::stream_branch(&plan.name, &stream.name);
        if let Some(tip) = repo.ref_target(&name)?
            && tip != base_commit
        {
            branches.push((stream.name.clone(), tip));
        }
    }
    let integration_ref = crate::layout::integration_ref(&plan.name);
    let integration = repo
        .ref_target(&integration_ref)?
        .map(|tip| ("integration".to_string(), tip));
    let (conflicts, pairs_checked) =
        crate::coordinator::predict(repo, &branches, integration.as_ref())?;
    Ok(Predicted {
        branches: branches.into_iter().map(|(n, _)| n).collect(),
        integration: integration.map(|(_, tip)| tip.to_string()),
        pairs_checked,
        conflicts: conflicts
            .into_iter()
            .map(|p| PredictedConflict {
                left: p.left,
                right: p.right,
                files: p.files,
            })
            .collect(),
    })
}

//! Predicting conflicts before they happen: every pair of branches merged in memory.

use crate::git::{GitResult, Repo, merge};
use crate::ids::Oid;

/// A pair of branches (or a branch and the integration tip) that would conflict.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Prediction {
    pub left: String,
    pub right: String,
    pub files: Vec<String>,
}

/// Merges every pair of `branches` and each branch with the integration tip in memory; returns
/// the pairs that conflict and how many pairs were checked.
pub fn predict(
    repo: &Repo,
    branches: &[(String, Oid)],
    integration: Option<&(String, Oid)>,
) -> GitResult<(Vec<Prediction>, usize)> {
    let mut pairs = Vec::new();
    let mut names = Vec::new();
    for (i, (a_name, a)) in branches.iter().enumerate() {
        for (b_name, b) in &branches[i + 1..] {
            if a != b {
                pairs.push((a.clone(), b.clone()));
                names.push((a_name.clone(), b_name.clone()));
            }
        }
        if let Some((tip_name, tip)) = integration
            && a != tip
        {
            pairs.push((tip.clone(), a.clone()));
            names.push((a_name.clone(), tip_name.clone()));
        }
    }
    // Merge drivers as the integration would run them: with the integration tip's attributes
    // (or, before there is one, those of the first branch: every branch starts from the base).
    let attributes_from = integration
        .map(|(_, tip)| tip.as_str())
        .or_else(|| branches.first().map(|(_, b)| b.as_str()));
    let results = merge::conflicts_batch(repo, attributes_from, &pairs)?;
    let predictions = names
        .into_iter()
        .zip(results)
        .filter(|(_, files)| !files.is_empty())
        .map(|((left, right), files)| Prediction { left, right, files })
        .collect();
    Ok((predictions, pairs.len()))
}

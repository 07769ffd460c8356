//! The agent CLIs a plan runs through presets: the version of each found on its agents' PATH,
//! against the versions its preset was tested with (`agent::version`). `plan` and `run` warn
//! about any other version, once per CLI.

use std::collections::BTreeSet;

use crate::agent::version::{self, Found};
use crate::plan::Plan;

/// One warning per preset whose CLI is not a version it was tested with (or whose version
/// could not be read).
pub fn version_warnings(plan: &Plan) -> Vec<String> {
    let mut seen = BTreeSet::new();
    let mut warnings = Vec::new();
    for stream in &plan.streams {
        for task in &stream.tasks {
            let Some(preset) = plan.agent_for(stream, task).and_then(|a| a.preset()) else {
                continue;
            };
            // The PATH its agent gets: the preset's, the plan's, else streams' own.
            let path = preset
                .env
                .get("PATH")
                .cloned()
                .or_else(|| plan.env_for(stream).get("PATH").cloned())
                .or_else(|| std::env::var("PATH").ok());
            if !seen.insert((preset.cli, path.clone())) {
                continue;
            }
            match version::check(preset.cli, path.as_deref()) {
                Found::Tested(_) => {}
                Found::Untested { warning, .. } | Found::Unknown(warning) => warnings.push(warning),
            }
        }
    }
    warnings
}

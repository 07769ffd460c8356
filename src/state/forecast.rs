//! The forecast a run keeps as it starts (what `streams plan` would show from the history then),
//! for the report to set beside what the run took and cost.

use serde::{Deserialize, Serialize};

/// The forecast a run started with: per stream and for the run, its time and cost from the
/// history (medians with the 10th-90th percentile range), as `streams plan` shows them.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RunForecast {
    /// Some earlier run of the plan finished a task to forecast from (else every figure is
    /// absent).
    pub history: bool,
    /// The number of agents the makespan was simulated with.
    pub jobs: usize,
    /// Seconds from start to end (absent without history).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub makespan_s: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_usd: Option<crate::plan::learn::Range>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens: Option<crate::plan::learn::Range>,
    /// Plan order.
    pub streams: Vec<StreamForecast>,
}

/// One stream's forecast; each figure absent where its tasks had no history.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct StreamForecast {
    pub stream: String,
    /// Agent time of its tasks, summed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seconds: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_usd: Option<crate::plan::learn::Range>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens: Option<crate::plan::learn::Range>,
}

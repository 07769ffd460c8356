//! Budgets a run was given on the command line over the plan's, and the warnings it gave as a
//! budget neared its end.

use serde::{Deserialize, Serialize};

/// A budget nearly spent (80 %).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BudgetWarning {
    /// Whose: `stream `api` task 2`, `stream `api``, `plan`, `--max-cost`.
    pub budget: String,
    /// What was spent of which limit, in words (`850 tokens of 1000`).
    pub spent: String,
    /// Milliseconds since the Unix epoch.
    pub at: u64,
}

impl BudgetWarning {
    /// `80 % of the plan budget is spent (850 tokens of 1000)`.
    pub fn line(&self) -> String {
        format!(
            "80 % of the {} budget is spent ({})",
            self.budget, self.spent
        )
    }
}

/// Budgets given on the command line for one run.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BudgetOverrides {
    /// `--max-cost`: the most the run's agents may spend in all, in US dollars, on top of the
    /// plan's own budget (a shared pool of its own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_cost: Option<f64>,
    /// `retry --budget`: budgets raised for the rest of the run, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub raises: Vec<BudgetRaise>,
}

impl BudgetOverrides {
    pub fn is_empty(&self) -> bool {
        self.max_cost.is_none() && self.raises.is_empty()
    }
}

/// One `retry --budget`: a budget raised (never lowered) over what the plan says.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BudgetRaise {
    /// Whose: the plan's when `None`, else this stream's (or, with `task`, its task's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<String>,
    /// 1-based.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usd: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub turns: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_ms: Option<u64>,
}

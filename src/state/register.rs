//! The repository's register of running plans: what each plan whose last run is not over
//! (running, halted, interrupted) owns and shares, so that plans run side by side only when
//! their ownership does not overlap.
//!
//! The register is read from the runs themselves (each run's copy of its plan, cut to the
//! streams it covers), so it can never disagree with them: a run joins it by being created or
//! reopened, and leaves it by finishing or being aborted. What makes the check and the joining
//! one step is [`super::lock::RegisterLock`], held by whoever starts or reopens a run from the
//! check until the run's state is saved (`ops::start::check_register`).
//!
//! Patterns are compared as plan validation compares those of different streams
//! ([`crate::plan::owners::claims_overlap`]): `owns` and `shared` alike, since two plans that
//! both may edit a shared file meet in it when their results are merged.

use serde::Serialize;

use super::lock::{self, Holder};
use super::model::RunState;
use super::store::StateDir;
use crate::plan::Plan;

/// A pattern a plan claims, and through what.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Claim {
    /// `stream `api``, or `shared`.
    pub by: String,
    /// As written in the plan.
    pub text: String,
    /// Normalised (what is compared).
    pub glob: String,
}

/// Every pattern of `plan`: each stream's `owns`, then `shared`.
pub fn claims(plan: &Plan) -> Vec<Claim> {
    let mut claims: Vec<Claim> = plan
        .streams
        .iter()
        .flat_map(|s| {
            s.owns.iter().map(|p| Claim {
                by: format!("stream `{}`", s.name),
                text: p.text.clone(),
                glob: p.glob.clone(),
            })
        })
        .collect();
    claims.extend(plan.shared.iter().map(|p| Claim {
        by: "shared".to_string(),
        text: p.text.clone(),
        glob: p.glob.clone(),
    }));
    claims
}

/// A plan in the register: the last run of a plan that is not over.
#[derive(Clone, Debug)]
pub struct Holding {
    pub plan: String,
    pub run_id: String,
    /// As `status` says it (`running`, `halted`, `interrupted`).
    pub phase: String,
    /// The process working on it right now, if one is.
    pub holder: Option<Holder>,
    pub claims: Vec<Claim>,
}

/// The plans in the register, but `except` (the plan about to start, whose own runs its lock
/// and [`crate::state::RunState::phase`] keep in order). A run whose plan copy cannot be read
/// is in it with no claims, and said so by [`Holding::claims`] being empty: the run itself
/// refuses to go on without that copy.
pub fn holdings(dir: &StateDir, except: &str) -> Vec<Holding> {
    let (runs, _) = dir.runs();
    let mut lasts: Vec<RunState> = Vec::new();
    for (_, state) in runs {
        lasts.retain(|s| s.plan_name != state.plan_name);
        lasts.push(state);
    }
    lasts
        .into_iter()
        .filter(|state| state.plan_name != except && !state.phase.is_over())
        .map(|state| {
            let holder = lock::current_holder(dir, &state.plan_name);
            let claims = run_plan(dir, &state)
                .map(|p| claims(&p))
                .unwrap_or_default();
            Holding {
                phase: state.phase.seen(holder.is_some()).to_string(),
                plan: state.plan_name,
                run_id: state.run_id,
                holder,
                claims,
            }
        })
        .collect()
}

/// The plan a run works from: its copy, cut to the streams it covers.
fn run_plan(dir: &StateDir, state: &RunState) -> Option<Plan> {
    let text = std::fs::read_to_string(dir.run_dir(&state.run_id).plan_copy_path()).ok()?;
    let plan = crate::plan::parse_simple(&text).ok()?;
    Some(match &state.only {
        Some(only) => plan.only(only),
        None => plan,
    })
}

/// One pair of patterns that meet: one of the plan about to start, one of a plan in the
/// register.
#[derive(Clone, Debug)]
pub struct Overlap {
    pub mine: Claim,
    pub theirs: Claim,
    /// A path both could claim.
    pub example: String,
}

/// The pairs of `mine` and `holding`'s claims that overlap.
pub fn overlaps(mine: &[Claim], holding: &Holding) -> Vec<Overlap> {
    let mut found = Vec::new();
    for a in mine {
        for b in &holding.claims {
            if let Some(example) = crate::plan::owners::claims_overlap(&a.glob, &b.glob) {
                found.push(Overlap {
                    mine: a.clone(),
                    theirs: b.clone(),
                    example,
                });
            }
        }
    }
    found
}

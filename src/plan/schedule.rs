//! What a run of a valid plan would do, from the plan alone: the start order the engine uses,
//! the waves, the critical path, and the makespan predicted by a list-scheduling simulation.
//!
//! The model: a stream is one unit of scheduling. It takes one agent slot from its first task to
//! its last (its tasks run one after another in its worktree), for the sum of its tasks'
//! estimates, and may start once every stream it depends on has finished. Among ready streams,
//! higher `priority` starts first, then the longest remaining path (critical path first), then
//! file order. This is the order `streams run` uses too.

use std::cmp::Ordering;
use std::collections::HashMap;

use serde::Serialize;

use super::model::{Estimate, Plan};

/// Per stream, the sum of its tasks' estimates.
pub fn stream_work(plan: &Plan) -> Vec<Estimate> {
    plan.streams
        .iter()
        .map(|s| s.tasks.iter().map(|t| plan.estimate_for(s, t)).sum())
        .collect()
}

/// Per stream, the indices of the streams it depends on.
pub fn dependencies(plan: &Plan) -> Vec<Vec<usize>> {
    let index: HashMap<&str, usize> = plan
        .streams
        .iter()
        .enumerate()
        .map(|(i, s)| (s.name.as_str(), i))
        .collect();
    plan.streams
        .iter()
        .map(|s| {
            s.depends_on
                .iter()
                .filter_map(|d| index.get(d.as_str()).copied())
                .collect()
        })
        .collect()
}

/// Per stream, the indices of the streams that depend on it.
pub fn dependents(plan: &Plan) -> Vec<Vec<usize>> {
    let mut out = vec![Vec::new(); plan.streams.len()];
    for (i, deps) in dependencies(plan).into_iter().enumerate() {
        for d in deps {
            out[d].push(i);
        }
    }
    out
}

/// The streams in an order where each comes after everything it depends on (file order among
/// equals). A validated plan has no cycles, so every stream is included.
fn topological(plan: &Plan) -> Vec<usize> {
    let deps = dependencies(plan);
    let dependents = dependents(plan);
    let mut waiting: Vec<usize> = deps.iter().map(Vec::len).collect();
    let mut ready: Vec<usize> = (0..plan.streams.len())
        .filter(|&i| waiting[i] == 0)
        .collect();
    let mut order = Vec::with_capacity(plan.streams.len());
    let mut next = 0;
    while next < ready.len() {
        let s = ready[next];
        next += 1;
        order.push(s);
        for &d in &dependents[s] {
            waiting[d] -= 1;
            if waiting[d] == 0 {
                ready.push(d);
            }
        }
    }
    order
}

/// Per stream index: the sum of its own task estimates plus the longest chain of streams that
/// (transitively) depend on it. The run engine starts ready streams with the largest value first.
pub fn longest_remaining_path(plan: &Plan) -> Vec<Estimate> {
    let work = stream_work(plan);
    let dependents = dependents(plan);
    let mut lrp = vec![0.0; plan.streams.len()];
    for &s in topological(plan).iter().rev() {
        let after = dependents[s].iter().map(|&d| lrp[d]).fold(0.0, f64::max);
        lrp[s] = work[s] + after;
    }
    lrp
}

/// The order in which ready streams start: higher priority, then longer remaining path, then
/// file order.
pub fn start_order(plan: &Plan, lrp: &[Estimate], a: usize, b: usize) -> Ordering {
    plan.streams[b]
        .priority
        .cmp(&plan.streams[a].priority)
        .then(lrp[b].total_cmp(&lrp[a]))
        .then(a.cmp(&b))
}

/// Streams grouped by depth in the dependency graph: wave 1 depends on nothing, wave n on
/// something in wave n-1. Streams of one wave can run together; each wave is in start order.
pub fn waves(plan: &Plan) -> Vec<Vec<usize>> {
    let deps = dependencies(plan);
    let lrp = longest_remaining_path(plan);
    let mut depth = vec![0usize; plan.streams.len()];
    for &s in &topological(plan) {
        depth[s] = deps[s].iter().map(|&d| depth[d] + 1).max().unwrap_or(0);
    }
    let count = depth.iter().max().map_or(0, |d| d + 1);
    let mut waves = vec![Vec::new(); count];
    for (s, &d) in depth.iter().enumerate() {
        waves[d].push(s);
    }
    for wave in &mut waves {
        wave.sort_by(|&a, &b| start_order(plan, &lrp, a, b));
    }
    waves
}

/// The stages of a run spread over machines (`streams ci`, `run --only --after-stage`): the
/// waves, numbered from 0, each stream in file order. Stage 0 holds the streams that depend on
/// nothing; stage k those whose dependencies all lie in stages before k, at least one in k - 1.
/// Unlike [`waves`] the order within a stage is the file's, not the start order: a CI matrix
/// and a stage's integration should not move when an estimate or a priority changes.
pub fn stages(plan: &Plan) -> Vec<Vec<usize>> {
    let mut stages = waves(plan);
    for stage in &mut stages {
        stage.sort_unstable();
    }
    stages
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CriticalPath {
    /// Stream indices, each depending on the one before.
    pub streams: Vec<usize>,
    pub length: Estimate,
}

/// The chain of dependent streams with the most work: no schedule can finish sooner.
pub fn critical_path(plan: &Plan) -> CriticalPath {
    let lrp = longest_remaining_path(plan);
    let dependents = dependents(plan);
    let best = |candidates: &mut dyn Iterator<Item = usize>| {
        candidates.fold(None, |best: Option<usize>, s| match best {
            Some(b) if lrp[b] >= lrp[s] => Some(b),
            _ => Some(s),
        })
    };
    let mut path = Vec::new();
    let mut at = best(&mut (0..plan.streams.len()));
    while let Some(s) = at {
        path.push(s);
        at = best(&mut dependents[s].iter().copied());
    }
    CriticalPath {
        length: path.first().map_or(0.0, |&s| lrp[s]),
        streams: path,
    }
}

/// One stream's place in a simulated schedule.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Slot {
    pub stream: usize,
    /// Which of the `jobs` agents runs it (0-based).
    pub agent: usize,
    pub start: Estimate,
    pub end: Estimate,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Simulation {
    pub jobs: usize,
    /// When the last stream finishes.
    pub makespan: Estimate,
    /// The sum of every task's estimate.
    pub total_work: Estimate,
    pub critical_path: CriticalPath,
    /// No schedule beats max(critical path, total work / jobs).
    pub ideal_bound: Estimate,
    /// In start order.
    pub slots: Vec<Slot>,
}

/// List scheduling with `jobs` agents: whenever an agent is free, it takes the first ready
/// stream in [`start_order`].
pub fn simulate(plan: &Plan, jobs: usize) -> Simulation {
    let jobs = jobs.max(1);
    let work = stream_work(plan);
    let lrp = longest_remaining_path(plan);
    let deps = dependencies(plan);
    let dependents = dependents(plan);
    let mut waiting: Vec<usize> = deps.iter().map(Vec::len).collect();
    let mut ready: Vec<usize> = (0..plan.streams.len())
        .filter(|&i| waiting[i] == 0)
        .collect();
    let mut free: Vec<usize> = (0..jobs).rev().collect();
    let mut running: Vec<Slot> = Vec::new();
    let mut slots = Vec::with_capacity(plan.streams.len());
    let mut now = 0.0;
    loop {
        ready.sort_by(|&a, &b| start_order(plan, &lrp, b, a));
        while !free.is_empty() && !ready.is_empty() {
            let stream = ready.pop().expect("not empty");
            let agent = free.pop().expect("not empty");
            let slot = Slot {
                stream,
                agent,
                start: now,
                end: now + work[stream],
            };
            slots.push(slot.clone());
            running.push(slot);
        }
        let Some(next) = running.iter().map(|s| s.end).min_by(f64::total_cmp) else {
            break;
        };
        now = next;
        let (done, still): (Vec<Slot>, Vec<Slot>) = running.into_iter().partition(|s| s.end <= now);
        running = still;
        for slot in done {
            free.push(slot.agent);
            for &d in &dependents[slot.stream] {
                waiting[d] -= 1;
                if waiting[d] == 0 {
                    ready.push(d);
                }
            }
        }
        // Lowest-numbered free agent first, for a stable picture.
        free.sort_unstable_by(|a, b| b.cmp(a));
    }
    let total_work: Estimate = work.iter().sum();
    let critical_path = critical_path(plan);
    Simulation {
        jobs,
        makespan: slots.iter().map(|s| s.end).fold(0.0, f64::max),
        total_work,
        ideal_bound: critical_path.length.max(total_work / jobs as f64),
        critical_path,
        slots,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::parse_simple;

    fn plan(streams: &[(&str, &[&str], usize, i64)]) -> Plan {
        let mut text = String::from("[plan]\nname = \"t\"\nagent = [\"true\"]\n");
        for (i, (name, deps, tasks, priority)) in streams.iter().enumerate() {
            let deps: Vec<String> = deps.iter().map(|d| format!("{d:?}")).collect();
            let tasks: Vec<String> = (0..*tasks).map(|t| format!("\"task {t}\"")).collect();
            text.push_str(&format!(
                "[[stream]]\nname = {name:?}\nowns = [\"s{i}/**\"]\ndepends_on = [{}]\ntasks = [{}]\npriority = {priority}\n",
                deps.join(", "),
                tasks.join(", ")
            ));
        }
        parse_simple(&text).unwrap()
    }

    #[test]
    fn longest_remaining_path_follows_dependents() {
        // a -> b -> d, a -> c; b has 3 tasks.
        let p = plan(&[
            ("a", &[], 1, 0),
            ("b", &["a"], 3, 0),
            ("c", &["a"], 1, 0),
            ("d", &["b"], 2, 0),
        ]);
        assert_eq!(longest_remaining_path(&p), vec![6.0, 5.0, 1.0, 2.0]);
        let cp = critical_path(&p);
        assert_eq!(cp.streams, vec![0, 1, 3]);
        assert_eq!(cp.length, 6.0);
        assert_eq!(waves(&p), vec![vec![0], vec![1, 2], vec![3]]);
    }

    #[test]
    fn simulation_prefers_the_critical_path() {
        // Two agents. `long` has the longest chain, so it starts before `short` although it
        // comes later in the file.
        let p = plan(&[
            ("short", &[], 1, 0),
            ("other", &[], 1, 0),
            ("long", &[], 2, 0),
            ("tail", &["long"], 2, 0),
        ]);
        let sim = simulate(&p, 2);
        assert_eq!(sim.slots[0].stream, 2);
        assert_eq!(sim.makespan, 4.0);
        assert_eq!(sim.total_work, 6.0);
        assert_eq!(sim.ideal_bound, 4.0);
        let one = simulate(&p, 1);
        assert_eq!(one.makespan, 6.0);
        let many = simulate(&p, 10);
        assert_eq!(many.makespan, 4.0);
    }

    #[test]
    fn priority_wins_over_path_length() {
        let p = plan(&[("a", &[], 3, 0), ("b", &[], 1, 5)]);
        let sim = simulate(&p, 1);
        assert_eq!(sim.slots[0].stream, 1);
        assert_eq!(waves(&p), vec![vec![1, 0]]);
    }

    #[test]
    fn stages_are_the_waves_in_file_order() {
        // c starts before b (priority, then its longer path), but a stage lists them as written.
        let p = plan(&[
            ("a", &[], 1, 0),
            ("b", &["a"], 1, 0),
            ("c", &["a"], 3, 2),
            ("d", &["b", "c"], 1, 0),
            ("e", &[], 1, 9),
        ]);
        assert_eq!(waves(&p), vec![vec![4, 0], vec![2, 1], vec![3]]);
        assert_eq!(stages(&p), vec![vec![0, 4], vec![1, 2], vec![3]]);
    }
}

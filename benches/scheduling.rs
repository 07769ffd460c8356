//! Benchmark 2: scheduling. DAGs of sleep-agents with known durations (a chain, a diamond, a
//! wide fan, and a plan whose critical path is declared last); the makespan of `streams run`
//! against the lower bound max(critical path, total work / jobs), and against plain plan-order
//! scheduling.
//!
//! Every task sleeps one unit (`act sleep U`); a stream of N tasks takes N units. With uniform
//! tasks, the scheduler's default estimate (one unit per task) is exact, so the benchmark does
//! not depend on `estimate` keys in the plan.
//!
//! The plan-order baseline is measured, not simulated: the same DAG run again with priorities
//! that make the dispatcher take ready streams in the order the plan lists them (same engine,
//! same overheads; only the order differs). The ideal (zero-overhead) makespans of both orders
//! are printed too, computed by simulating the dispatcher's rules.
//!
//! The makespan is the schedule's: from the `run_started` to the `run_finished` event of
//! `streams run --json` (process startup and plan validation before it, and the summary after,
//! are not scheduling; the wall time is printed beside it).
//!
//! Targets: makespan within 10% of the bound; never worse than plan order (5% allowed for noise).

mod common;

use common::*;

struct Stream {
    name: &'static str,
    tasks: usize,
    deps: &'static [&'static str],
}

struct Case {
    name: &'static str,
    jobs: usize,
    streams: Vec<Stream>,
}

const fn st(name: &'static str, tasks: usize, deps: &'static [&'static str]) -> Stream {
    Stream { name, tasks, deps }
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "chain of 5",
            jobs: 2,
            streams: vec![
                st("a", 1, &[]),
                st("b", 1, &["a"]),
                st("c", 1, &["b"]),
                st("d", 1, &["c"]),
                st("e", 1, &["d"]),
            ],
        },
        Case {
            name: "diamond",
            jobs: 2,
            streams: vec![
                st("top", 1, &[]),
                st("left", 2, &["top"]),
                st("right", 1, &["top"]),
                st("bottom", 1, &["left", "right"]),
            ],
        },
        Case {
            // Short leaves first in the plan: plan order starts the long ones last.
            name: "wide fan (1 -> 8)",
            jobs: 4,
            streams: vec![
                st("root", 1, &[]),
                st("l1", 1, &["root"]),
                st("l2", 1, &["root"]),
                st("l3", 1, &["root"]),
                st("l4", 1, &["root"]),
                st("l5", 1, &["root"]),
                st("l6", 2, &["root"]),
                st("l7", 2, &["root"]),
                st("l8", 3, &["root"]),
            ],
        },
        Case {
            // Independent work declared before the critical chain.
            name: "chain declared last",
            jobs: 2,
            streams: vec![
                st("x1", 1, &[]),
                st("x2", 1, &[]),
                st("x3", 1, &[]),
                st("c1", 1, &[]),
                st("c2", 1, &["c1"]),
                st("c3", 1, &["c2"]),
            ],
        },
    ]
}

fn index(case: &Case, name: &str) -> usize {
    case.streams.iter().position(|s| s.name == name).unwrap()
}

/// Per stream: its own work plus the longest chain of streams depending on it (units).
fn remaining(case: &Case) -> Vec<f64> {
    fn visit(case: &Case, s: usize, memo: &mut Vec<Option<f64>>) -> f64 {
        if let Some(v) = memo[s] {
            return v;
        }
        let name = case.streams[s].name;
        let after = (0..case.streams.len())
            .filter(|&o| case.streams[o].deps.contains(&name))
            .map(|o| visit(case, o, memo))
            .fold(0.0, f64::max);
        let v = case.streams[s].tasks as f64 + after;
        memo[s] = Some(v);
        v
    }
    let mut memo = vec![None; case.streams.len()];
    (0..case.streams.len())
        .map(|s| visit(case, s, &mut memo))
        .collect()
}

/// max(critical path, total work / jobs), in units.
fn bound(case: &Case) -> f64 {
    let critical = remaining(case).into_iter().fold(0.0, f64::max);
    let work: usize = case.streams.iter().map(|s| s.tasks).sum();
    critical.max(work as f64 / case.jobs as f64)
}

/// The makespan (units) of list scheduling with no overhead: whenever a slot is free, start the
/// first ready stream by `key` (lower first). A stream holds its slot for all its tasks.
fn simulate(case: &Case, key: &dyn Fn(usize) -> (i64, f64, usize)) -> f64 {
    let n = case.streams.len();
    let mut finish: Vec<Option<f64>> = vec![None; n];
    let mut started = vec![false; n];
    let mut running: Vec<(f64, usize)> = Vec::new();
    let mut now = 0.0;
    loop {
        let done = |s: usize, finish: &Vec<Option<f64>>, now: f64| {
            finish[s].is_some_and(|f: f64| f <= now + 1e-9)
        };
        loop {
            if running.len() >= case.jobs {
                break;
            }
            let mut ready: Vec<usize> = (0..n)
                .filter(|&s| {
                    !started[s]
                        && case.streams[s]
                            .deps
                            .iter()
                            .all(|d| done(index(case, d), &finish, now))
                })
                .collect();
            ready.sort_by(|&a, &b| {
                let (ka, kb) = (key(a), key(b));
                ka.0.cmp(&kb.0)
                    .then(ka.1.total_cmp(&kb.1))
                    .then(ka.2.cmp(&kb.2))
            });
            let Some(&s) = ready.first() else { break };
            started[s] = true;
            let end = now + case.streams[s].tasks as f64;
            finish[s] = Some(end);
            running.push((end, s));
        }
        if running.is_empty() {
            break;
        }
        running.sort_by(|a, b| a.0.total_cmp(&b.0));
        let (end, _) = running.remove(0);
        now = end;
        running.retain(|&(e, _)| e > now + 1e-9);
    }
    finish.into_iter().flatten().fold(0.0, f64::max)
}

fn plan_text(case: &Case, unit: f64, plan_order: bool) -> String {
    let n = case.streams.len();
    let mut plan = format!(
        "[plan]\nname = \"sched\"\nbase = \"main\"\njobs = {}\nagent = [\"act\", \"sleep\", \"{unit}\"]\n",
        case.jobs
    );
    for (i, s) in case.streams.iter().enumerate() {
        let tasks: Vec<String> = (1..=s.tasks).map(|t| format!("step {t}")).collect();
        let deps: Vec<String> = s.deps.iter().map(|d| d.to_string()).collect();
        plan.push_str(&format!(
            "\n[[stream]]\nname = {}\nowns = [{}]\ntasks = {}\ndepends_on = {}\n",
            q(s.name),
            q(&format!("streams/{}/**", s.name)),
            arr(&tasks),
            arr(&deps)
        ));
        if plan_order {
            plan.push_str(&format!("priority = {}\n", n - i));
        }
    }
    plan
}

fn main() {
    let unit = if quick() { 0.3 } else { 1.0 };
    let mut report = Report::new("Benchmark 2: scheduling");
    report.note(format!(
        "every task sleeps {unit} s; makespan = from the run_started to the run_finished event"
    ));
    let sb = Sandbox::new("scheduling");
    report.note(format!("repositories under {}", sb.path().display()));
    for (c, case) in cases().iter().enumerate() {
        let names: Vec<String> = case.streams.iter().map(|s| s.name.to_string()).collect();
        let rem = remaining(case);
        let ideal_cp = simulate(case, &|s| (0, -rem[s], s)) * unit;
        let ideal_plan = simulate(case, &|s| (0, 0.0, s)) * unit;
        let bound = bound(case) * unit;
        let mut measured = Vec::new();
        for (variant, plan_order) in [("cp", false), ("plan", true)] {
            let repo = sb.path().join(format!("case{c}-{variant}"));
            build_repo(&sb, &repo, 20, Contents::Distinct, &names);
            let plan = sb.path().join(format!("case{c}-{variant}.toml"));
            std::fs::write(&plan, plan_text(case, unit, plan_order)).unwrap();
            let out = run_streams(&sb, &repo, &plan, &[]);
            out.assert_integrated(case.streams.len());
            // The schedule's makespan: from the run's start to its end (process startup, git
            // version check and plan validation before; the summary after).
            let at = |name: &str| out.events_named(name).map(|e| e.at).next().unwrap_or(0);
            let makespan = at("run_finished").saturating_sub(at("run_started")) as f64 / 1000.0;
            measured.push((makespan, secs(out.wall)));
        }
        let ((makespan, wall), (plan_order, _)) = (measured[0], measured[1]);
        report.note(format!(
            "{}: jobs {}, {} streams; wall time {}; ideal makespans: critical-path-first {}, plan order {}",
            case.name,
            case.jobs,
            case.streams.len(),
            s(wall),
            s(ideal_cp),
            s(ideal_plan)
        ));
        report.figure(
            format!("{}: makespan vs bound", case.name),
            s(makespan),
            format!("{} (bound)", s(bound)),
            Some(makespan / bound),
            Target::RatioAtMost(1.10),
        );
        report.figure(
            format!("{}: vs plan order", case.name),
            s(makespan),
            format!("{} (plan order, measured)", s(plan_order)),
            Some(makespan / plan_order),
            Target::RatioAtMost(1.05),
        );
    }
    report.print();
}

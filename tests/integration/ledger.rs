//! The ledger (issue 26): what each attempt's agent used, from the recorded event streams of
//! the real CLIs (`fixtures/agents/replay`) and from the generic forms any program may use (a
//! `streams_usage` JSON line, its `{usage_file}`), added up per task, per stream and for the
//! run, and shown wherever a run is shown: `report.json`, `report.md`, JUnit, `show`, `status`,
//! `runs`, the commit trailers.

use std::path::PathBuf;

use crate::common::{TestRepo, agents_dir};

/// A repository with streams `a` and `b`, the replaying stand-ins of the CLIs on PATH.
fn repo() -> (TestRepo, String) {
    let repo = TestRepo::with_files(&[
        ("README.md", "A scratch repository.\n"),
        ("src/a/keep.txt", "a\n"),
        ("src/b/keep.txt", "b\n"),
    ]);
    let bin = repo.home.join("replay-bin");
    std::fs::create_dir_all(&bin).unwrap();
    for cli in ["claude", "codex", "aider", "gemini", "qwen"] {
        std::os::unix::fs::symlink(agents_dir().join("replay"), bin.join(cli)).unwrap();
    }
    let path = format!(
        "{}:{}:{}",
        bin.display(),
        agents_dir().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    (repo, path)
}

fn run_dir(repo: &TestRepo) -> PathBuf {
    let root = repo.common_dir().join("streams");
    let id = std::fs::read_to_string(root.join("current")).unwrap();
    root.join("runs").join(id.trim())
}

fn report(repo: &TestRepo) -> serde_json::Value {
    let text = std::fs::read_to_string(run_dir(repo).join("report.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn stream_cost<'a>(report: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    report["ledger"]["streams"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["stream"] == name)
        .unwrap_or_else(|| panic!("no ledger line for {name}: {report}"))
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

#[test]
fn the_ledger_holds_what_each_cli_reported_and_travels_in_reports_and_trailers() {
    let (repo, path) = repo();
    // Claude Code states its cost; Codex does not: it is priced from `[prices]`, an estimate.
    repo.write(
        "streams.toml",
        &format!(
            r#"[plan]
name = "p"
jobs = 2
env = {{ PATH = {path:?} }}

[prices."*"]
input = 1.0
output = 2.0
cache_read = 0.5

[[stream]]
name = "a"
owns = ["src/a/**"]
agent = "claude"
tasks = ["Write src/a/hello.txt"]
env = {{ REPLAY = "edit-and-commit", REPLAY_EDIT = "src/a/hello.txt" }}

[[stream]]
name = "b"
owns = ["src/b/**"]
agent = "codex"
tasks = ["Write src/b/hello.txt"]
env = {{ REPLAY = "edit-and-commit", REPLAY_EDIT = "src/b/hello.txt" }}
"#
        ),
    );
    repo.commit_all("plan");
    let out = repo.streams(&["run"]);
    out.assert_code(0);

    let report = report(&repo);
    let a = stream_cost(&report, "a");
    // The recorded `result` event: 3500 in, 90 out, 300 cache read, 40 cache write, $0.01209.
    assert_eq!(
        (
            &a["input_tokens"],
            &a["output_tokens"],
            &a["cache_read_tokens"],
            &a["cache_write_tokens"],
            &a["tokens"],
            &a["turns"]
        ),
        (
            &3500.into(),
            &90.into(),
            &300.into(),
            &40.into(),
            &3930.into(),
            &3.into()
        ),
        "{report}"
    );
    assert!(close(a["cost_usd"].as_f64().unwrap(), 0.01209), "{a}");
    assert!(a.get("cost_estimated").is_none(), "{a}");
    // Codex: 3840 prompt tokens of which 300 cached, 90 out; priced at 1, 2 and 0.5 $/M.
    let b = stream_cost(&report, "b");
    assert_eq!(
        (&b["input_tokens"], &b["tokens"]),
        (&3540.into(), &3930.into())
    );
    let b_cost = (3540.0 * 1.0 + 90.0 * 2.0 + 300.0 * 0.5) / 1e6;
    assert!(close(b["cost_usd"].as_f64().unwrap(), b_cost), "{b}");
    assert_eq!(b["cost_estimated"], true);
    // The totals add up.
    let total = &report["ledger"]["total"];
    assert_eq!(total["tokens"], 7860);
    assert!(close(total["cost_usd"].as_f64().unwrap(), 0.01209 + b_cost));
    assert_eq!(report["ledger"]["tasks"].as_array().unwrap().len(), 2);

    // report.md (and so the step summary) has the cost table and the costliest tasks.
    let md = std::fs::read_to_string(run_dir(&repo).join("report.md")).unwrap();
    assert!(md.contains("### Cost"), "{md}");
    assert!(
        md.contains("| a | $0.0121 | 3.9k | 3500 | 90 | 300 | 40 | 3 | 1 |"),
        "{md}"
    );
    assert!(md.contains("| **total** | ~$0.0160 | 7.9k |"), "{md}");
    assert!(
        md.contains("Most expensive tasks:\n\n- **a** task 1"),
        "{md}"
    );
    // The table printed at the end says it too.
    assert!(
        out.stderr.contains("cost ~$0.0160 for 7.9k tokens"),
        "{out}"
    );

    // Each task's cost travels with its commit.
    let log = repo.git(&["log", "--format=%B", "streams/p/integration"]);
    assert!(log.contains("Streams-Cost: $0.0121\n"), "{log}");
    assert!(
        log.contains("Streams-Tokens: 3930 (in 3500, out 90, cache read 300, cache write 40)"),
        "{log}"
    );
    assert!(
        log.contains(&format!("Streams-Cost: ${b_cost:.4} (estimate)")),
        "{log}"
    );

    // JUnit properties.
    let xml = std::fs::read_to_string(run_dir(&repo).join("report.xml")).unwrap();
    assert!(
        xml.contains(r#"<property name="streams.tokens" value="3930"/>"#),
        "{xml}"
    );
    assert!(xml.contains(r#"<property name="streams.cost_usd" value="0.012090"/>"#));

    // show, status, runs.
    let show = repo.streams(&["show", "a"]);
    assert!(
        show.stdout.contains(
            "  cost:      3.9k tokens (3.5k in, 90 out, 300 cache read, 40 cache write), $0.0121, 3 turns"
        ),
        "{show}"
    );
    let status = repo.streams(&["status"]);
    assert!(
        status
            .stdout
            .contains("cost: ~$0.0160, 7.9k tokens (3 turns)"),
        "{status}"
    );
    let runs = repo.streams(&["runs"]);
    assert!(runs.stdout.contains("$0.02"), "{runs}");
}

#[test]
fn any_program_reports_with_a_json_line_or_its_usage_file() {
    let repo = TestRepo::with_files(&[("src/a/keep.txt", "a\n"), ("src/b/keep.txt", "b\n")]);
    // `a`: running totals on stdout (the last counts), its model priced by `[prices]`;
    // `b`: its `{usage_file}`, with a cost of its own.
    repo.write(
        "streams.toml",
        r#"[plan]
name = "p"

[prices.m1]
input = 2.0
output = 10.0

[[stream]]
name = "a"
owns = ["src/a/**"]
agent = ["sh", "-c", "echo '{\"streams_usage\": {\"input_tokens\": 100, \"output_tokens\": 10}}'; echo x > src/a/f.txt; echo '{\"streams_usage\": {\"input_tokens\": 1000, \"output_tokens\": 200, \"model\": \"m1\", \"turns\": 2}}'"]
tasks = ["a"]

[[stream]]
name = "b"
owns = ["src/b/**"]
agent = ["sh", "-c", "echo y > src/b/f.txt; echo '{\"input_tokens\": 5, \"output_tokens\": 6, \"cost_usd\": 0.25}' > \"$1\"", "sh", "{usage_file}"]
tasks = ["b"]
"#,
    );
    repo.commit_all("plan");
    repo.streams(&["run"]).assert_code(0);
    let report = report(&repo);
    let a = stream_cost(&report, "a");
    assert_eq!(
        (&a["tokens"], &a["turns"]),
        (&1200.into(), &2.into()),
        "{a}"
    );
    assert!(close(
        a["cost_usd"].as_f64().unwrap(),
        (1000.0 * 2.0 + 200.0 * 10.0) / 1e6
    ));
    assert_eq!(a["cost_estimated"], true);
    let b = stream_cost(&report, "b");
    assert_eq!(b["tokens"], 11, "{b}");
    assert!(close(b["cost_usd"].as_f64().unwrap(), 0.25));
    let total = &report["ledger"]["total"];
    assert_eq!(total["tokens"], 1211);
    assert!(close(total["cost_usd"].as_f64().unwrap(), 0.25 + 0.004));
}

#[test]
fn a_run_killed_before_its_report_is_unknown_never_zero() {
    let (repo, path) = repo();
    // Claude Code interrupted while it waited for the model: no `result` event (its usage is
    // lost), only the message events seen until then.
    repo.write(
        "streams.toml",
        &format!(
            r#"[plan]
name = "p"
env = {{ PATH = {path:?} }}

[[stream]]
name = "a"
owns = ["src/a/**"]
agent = "claude"
tasks = ["Write src/a/hello.txt"]
env = {{ REPLAY = "sigint-waiting" }}
"#
        ),
    );
    repo.commit_all("plan");
    repo.streams(&["run"]).assert_code(4);
    let report = report(&repo);
    let a = stream_cost(&report, "a");
    assert_eq!(a["unreported"], 1, "{a}");
    assert!(
        a["tokens"].as_u64().unwrap() > 0,
        "what was seen counts: {a}"
    );
    assert!(a["cost_usd"].is_null(), "{a}");
    let md = std::fs::read_to_string(run_dir(&repo).join("report.md")).unwrap();
    assert!(md.contains("| a | unknown | at least "), "{md}");
}

/// A runaway agent in the generic form: writes its file, then reports `step` more tokens every
/// half second until it is interrupted (SIGINT ends it at once).
fn runaway(file: &str, step: u64) -> String {
    format!(
        r#"["sh", "-c", "echo x > {file}; trap 'exit 130' INT; i=0; while :; do i=$((i+1)); echo \"{{\\\"streams_usage\\\": {{\\\"input_tokens\\\": $((i*{step}))}}}}\"; sleep 0.5; done"]"#
    )
}

fn task_state(repo: &TestRepo, stream: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(run_dir(repo).join("state.json")).unwrap();
    let state: serde_json::Value = serde_json::from_str(&text).unwrap();
    state["streams"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == stream)
        .unwrap()["tasks"][0]
        .clone()
}

#[test]
fn a_task_budget_stops_a_runaway_agent_within_one_event_and_keeps_its_work() {
    let repo = TestRepo::with_files(&[("src/a/keep.txt", "a\n")]);
    repo.write(
        "streams.toml",
        &format!(
            r#"[plan]
name = "p"

[[stream]]
name = "a"
owns = ["src/a/**"]
agent = {}

[[stream.task]]
prompt = "a"
budget = {{ tokens = 350 }}
"#,
            runaway("src/a/f.txt", 100)
        ),
    );
    repo.commit_all("plan");
    let out = repo.streams(&["run"]);
    out.assert_code(6);
    assert!(
        out.stderr
            .contains("budget: the task budget ran out (400 tokens of 350)"),
        "{out}"
    );
    let task = task_state(&repo, "a");
    assert_eq!(task["state"]["state"], "stopped", "{task}");
    assert_eq!(task["state"]["stop"]["kind"], "budget", "{task}");
    // Stopped at the line that crossed the budget (or, on a slow machine, the one after).
    let used = task["usage"][0]["usage"]["input"].as_u64().unwrap();
    assert!(used == 400 || used == 500, "{task}");
    assert_eq!(task["usage"][0]["over_budget"], true);
    // Its work is kept for `retry` to go on from.
    let kept = task["state"]["stop"]["kept"].as_str().unwrap();
    assert_eq!(repo.git(&["show", &format!("{kept}:src/a/f.txt")]), "x");
    let status = repo.streams(&["status"]);
    assert!(status.stdout.contains("stopped"), "{status}");
    assert!(status.stdout.contains("budget"), "{status}");
}

#[test]
fn a_shared_budget_stops_agents_running_at_once_and_refuses_a_task_it_cannot_cover() {
    let repo = TestRepo::with_files(&[
        ("src/a/keep.txt", "a\n"),
        ("src/b/keep.txt", "b\n"),
        ("src/c/keep.txt", "c\n"),
    ]);
    // Each task reserves a tenth of the plan's budget (no history, no budget of its own): `a`
    // and `b` start at once; `c` waits for a slot, and by then the pool is dry.
    repo.write(
        "streams.toml",
        &format!(
            r#"[plan]
name = "p"
jobs = 2
budget = {{ tokens = 1000 }}

[[stream]]
name = "a"
owns = ["src/a/**"]
agent = {}
tasks = ["a"]
priority = 2

[[stream]]
name = "b"
owns = ["src/b/**"]
agent = {}
tasks = ["b"]
priority = 1

[[stream]]
name = "c"
owns = ["src/c/**"]
agent = ["sh", "-c", "echo z > src/c/f.txt"]
tasks = ["c"]
"#,
            runaway("src/a/f.txt", 50),
            runaway("src/b/f.txt", 50)
        ),
    );
    repo.commit_all("plan");
    let out = repo.streams(&["run"]);
    out.assert_code(6);
    let report = report(&repo);
    let total = report["ledger"]["total"]["tokens"].as_u64().unwrap();
    assert!(
        total >= 1000,
        "stopped only once the pool ran dry: {report}"
    );
    assert!(
        total <= 1000 + 100,
        "overshoot by at most one reservation (a tenth): {report}"
    );
    for stream in ["a", "b"] {
        let task = task_state(&repo, stream);
        assert_eq!(task["state"]["stop"]["budget"], "plan", "{task}");
    }
    let c = task_state(&repo, "c");
    assert_eq!(c["state"]["stop"]["kind"], "budget", "{c}");
    assert!(
        c["state"]["stop"]["spent"]
            .as_str()
            .unwrap()
            .contains("it did not start"),
        "{c}"
    );
    assert!(!repo.path("src/c/f.txt").exists());
}

#[test]
fn plan_forecasts_cost_from_past_runs() {
    let (repo, path) = repo();
    repo.write(
        "streams.toml",
        &format!(
            r#"[plan]
name = "p"
env = {{ PATH = {path:?} }}

[[stream]]
name = "a"
owns = ["src/a/**"]
agent = "claude"
tasks = ["Write src/a/hello.txt"]
"#
        ),
    );
    repo.commit_all("plan");
    let before = repo.streams(&["plan"]);
    assert!(!before.stdout.contains("expected cost"), "{before}");
    repo.streams(&["run"]).assert_code(0);
    repo.streams(&["clean"]).assert_code(0);
    repo.streams(&["run", "--restart"]).assert_code(0);
    let out = repo.streams(&["plan"]);
    assert!(
        out.stdout.contains(
            "  expected cost of the run: $0.0121 (10th-90th percentile $0.0121 to $0.0121), 3.9k tokens, 1 task from their own past runs"
        ),
        "{out}"
    );
    let json = repo.streams(&["plan", "--json"]);
    let value: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    let run = &value["learned"]["cost"][1];
    assert_eq!(run["tokens"]["median"], 3930.0, "{value}");
    // `--jobs 1,2`: the cost beside the time of each.
    let what_if = repo.streams(&["plan", "--jobs", "1,2"]);
    let rows: Vec<&str> = what_if
        .stdout
        .lines()
        .filter(|l| l.trim_start().starts_with(['1', '2']) && l.contains("job"))
        .collect();
    assert_eq!(rows.len(), 2, "{what_if}");
    assert!(rows.iter().all(|r| r.contains("$0.0121")), "{what_if}");
}

#[test]
fn plan_jobs_warns_where_fanning_out_buys_little_time() {
    // Five small streams of one unit each: 3 agents take 2 units, 4 agents still 2 (nothing
    // gained for one more agent), 5 take 1.
    let names = ["a", "b", "c", "d", "e"];
    let files: Vec<(String, String)> = names
        .iter()
        .map(|n| (format!("src/{n}/keep.txt"), format!("{n}\n")))
        .collect();
    let files: Vec<(&str, &str)> = files
        .iter()
        .map(|(p, c)| (p.as_str(), c.as_str()))
        .collect();
    let repo = TestRepo::with_files(&files);
    let mut plan = String::from("[plan]\nname = \"p\"\nagent = [\"true\"]\n");
    for n in names {
        plan.push_str(&format!(
            "\n[[stream]]\nname = \"{n}\"\nowns = [\"src/{n}/**\"]\ntasks = [\"t\"]\n"
        ));
    }
    repo.write("streams.toml", &plan);
    repo.commit_all("plan");
    let out = repo.streams(&["plan", "--jobs", "3,4,5"]);
    out.assert_code(0);
    assert!(
        out.stdout
            .contains("4 jobs  2 units  <- little time saved over 3 jobs, for more agents to pay"),
        "{out}"
    );
    assert!(!out.stdout.contains("3 jobs  2 units  <-"), "{out}");
    assert!(
        out.stdout
            .contains("where marked, more agents save less than 25% of the time"),
        "{out}"
    );
}

#[test]
fn plan_jobs_sets_the_cost_of_past_runs_with_each_number_of_agents_beside_it() {
    let repo = TestRepo::with_files(&[("src/a/keep.txt", "a\n")]);
    // The agent reports whatever the test put in `usage.json` (outside the repository).
    let usage = repo.home.join("usage.json");
    let report = |tokens: u64| {
        std::fs::write(
            &usage,
            format!("{{\"streams_usage\": {{\"input_tokens\": {tokens}}}}}\n"),
        )
        .unwrap()
    };
    repo.write(
        "streams.toml",
        &format!(
            r#"[plan]
name = "p"

[[stream]]
name = "a"
owns = ["src/a/**"]
agent = ["sh", "-c", "echo x > src/a/f.txt; cat {}"]
tasks = ["a"]
"#,
            usage.display()
        ),
    );
    repo.commit_all("plan");
    report(100);
    repo.streams(&["run", "--jobs", "1"]).assert_code(0);
    repo.streams(&["clean"]).assert_code(0);
    report(300);
    repo.streams(&["run", "--restart", "--jobs", "2"])
        .assert_code(0);
    repo.streams(&["clean"]).assert_code(0);
    let out = repo.streams(&["plan", "--jobs", "1,2,4"]);
    out.assert_code(0);
    let row = |jobs: &str| {
        out.stdout
            .lines()
            .find(|l| l.trim_start().starts_with(jobs))
            .unwrap_or_else(|| panic!("no row for {jobs}\n{out}"))
            .to_string()
    };
    assert!(row("1 job ").contains("  100 tokens  <-"), "{out}");
    assert!(row("2 jobs").ends_with("  300 tokens"), "{out}");
    // No past run had 4: the median of all of them, said so.
    assert!(row("4 jobs").contains("  200 tokens (all runs)"), "{out}");
    assert!(
        out.stdout
            .contains("cost: the run's median from past runs with that number of agents"),
        "{out}"
    );
    let json = repo.streams(&["plan", "--jobs", "1,2,4", "--json"]);
    let value: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    let by_jobs = &value["what_if"]["by_jobs"];
    assert_eq!(by_jobs[1]["jobs"], 2, "{value}");
    assert_eq!(by_jobs[1]["cost"]["tokens"]["median"], 300.0, "{value}");
    // A run forecasts from the past runs with its own number of agents.
    repo.streams(&["run", "--restart", "--jobs", "2"])
        .assert_code(0);
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run_dir(&repo).join("state.json")).unwrap())
            .unwrap();
    assert_eq!(state["forecast"]["tokens"]["median"], 300.0, "{state}");

    // A history that does not say how many agents its runs had (lines of an older streams):
    // one cost for every row, said once, not repeated per row.
    let history = repo.common_dir().join("streams/history.jsonl");
    let text = std::fs::read_to_string(&history).unwrap();
    let old: String = text
        .lines()
        .map(|l| {
            let mut line: serde_json::Value = serde_json::from_str(l).unwrap();
            line.as_object_mut().unwrap().remove("jobs");
            format!("{line}\n")
        })
        .collect();
    std::fs::write(&history, old).unwrap();
    let out = repo.streams(&["plan", "--jobs", "1,2"]);
    assert!(!out.stdout.contains("tokens (all runs)"), "{out}");
    assert!(
        out.stdout.contains(
            "cost: 300 tokens at any of these numbers of agents as far as the history tells (past runs do not say how many agents they had)"
        ),
        "{out}"
    );
}

#[test]
fn a_shared_budget_reserves_what_a_task_took_before() {
    let repo = TestRepo::with_files(&[("src/a/keep.txt", "a\n"), ("src/b/keep.txt", "b\n")]);
    let plan = |tokens: u64| {
        format!(
            r#"[plan]
name = "p"
jobs = 1
budget = {{ tokens = {tokens} }}

[[stream]]
name = "a"
owns = ["src/a/**"]
agent = ["sh", "-c", "echo x > src/a/f.txt; echo '{{\"streams_usage\": {{\"input_tokens\": 600}}}}'"]
tasks = ["a"]
priority = 1

[[stream]]
name = "b"
owns = ["src/b/**"]
agent = ["sh", "-c", "echo y > src/b/f.txt; echo '{{\"streams_usage\": {{\"input_tokens\": 600}}}}'"]
tasks = ["b"]
"#
        )
    };
    repo.write("streams.toml", &plan(100_000));
    repo.commit_all("plan");
    repo.streams(&["run"]).assert_code(0);
    repo.streams(&["clean"]).assert_code(0);
    // Now each task is known to take 600: after `a`, the 400 left cannot cover `b`'s 600
    // (a tenth of the budget, 100, would have let it start).
    repo.write("streams.toml", &plan(1000));
    repo.commit_all("smaller budget");
    let out = repo.streams(&["run", "--restart"]);
    out.assert_code(6);
    let b = task_state(&repo, "b");
    let spent = b["state"]["stop"]["spent"].as_str().unwrap();
    assert!(
        spent.contains("1200 tokens of 1000") && spent.contains("did not start"),
        "{b}"
    );
    assert!(!repo.path("src/b/f.txt").exists());
}

/// An agent in the generic form that writes its file, then reports 100 more tokens (and $0.10
/// more) every fifth of a second, ten times, and ends well: stopped early only by a budget.
fn ten_steps(file: &str) -> String {
    format!(
        r#"["sh", "-c", "echo x > {file}; trap 'exit 130' INT; i=0; while [ $i -lt 10 ]; do i=$((i+1)); echo \"{{\\\"streams_usage\\\": {{\\\"input_tokens\\\": $((i*100)), \\\"cost_usd\\\": $i.0e-1}}}}\"; sleep 0.2; done"]"#
    )
}

#[test]
fn max_cost_caps_a_run_on_top_of_the_plan_and_retry_raises_it() {
    let repo = TestRepo::with_files(&[("src/a/keep.txt", "a\n")]);
    // The plan's own budget ($100) would let it finish; `--max-cost 0.25` stops it.
    repo.write(
        "streams.toml",
        &format!(
            r#"[plan]
name = "p"
budget = {{ usd = 100 }}

[[stream]]
name = "a"
owns = ["src/a/**"]
agent = {}
tasks = ["a"]
"#,
            ten_steps("src/a/f.txt")
        ),
    );
    repo.commit_all("plan");
    let out = repo.streams(&["run", "--max-cost", "0.25"]);
    out.assert_code(6);
    assert!(
        out.stderr
            .contains("the --max-cost budget ran out ($0.3000 of $0.25)"),
        "{out}"
    );
    assert!(
        out.stderr
            .contains("`streams retry --max-cost` with more goes on"),
        "{out}"
    );
    let task = task_state(&repo, "a");
    assert_eq!(task["state"]["stop"]["budget"], "--max-cost", "{task}");
    // A retry keeps the run's limit...
    repo.streams(&["retry", "a"]).assert_code(6);
    // ...until it is given a higher one.
    let retry = repo.streams(&["retry", "a", "--max-cost", "5"]);
    retry.assert_code(0);
    let text = std::fs::read_to_string(run_dir(&repo).join("state.json")).unwrap();
    let state: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(state["budget_overrides"]["max_cost"], 5.0, "{state}");
    let help = repo.streams(&["run", "--help"]);
    assert!(help.stdout.contains("--max-cost <USD>"), "{help}");
}

#[test]
fn retry_budget_raises_the_budget_that_stopped_a_task() {
    let repo = TestRepo::with_files(&[("src/a/keep.txt", "a\n")]);
    repo.write(
        "streams.toml",
        &format!(
            r#"[plan]
name = "p"

[[stream]]
name = "a"
owns = ["src/a/**"]
agent = {}

[[stream.task]]
prompt = "a"
budget = {{ tokens = 350 }}
"#,
            ten_steps("src/a/f.txt")
        ),
    );
    repo.commit_all("plan");
    let out = repo.streams(&["run"]);
    out.assert_code(6);
    assert!(
        out.stderr
            .contains("`streams retry --budget` raises it and goes on"),
        "{out}"
    );
    // A budget the plan cannot have is refused before anything changes.
    let wrong = repo.streams(&["retry", "a", "--budget", "b:tokens=5000"]);
    wrong.assert_code(2);
    assert!(
        wrong.stderr.contains("the plan has no stream `b`"),
        "{wrong}"
    );
    let bad = repo.streams(&["retry", "a", "--budget", "a/1:tokens=lots"]);
    bad.assert_code(2);
    assert!(
        bad.stderr.contains("`tokens` takes a whole number"),
        "{bad}"
    );
    // Raised for the retry, the task ends well.
    repo.streams(&["retry", "a", "--budget", "a/1:tokens=5_000"])
        .assert_code(0);
    let task = task_state(&repo, "a");
    assert_eq!(task["state"]["state"], "integrated", "{task}");
    let help = repo.streams(&["retry", "--help"]);
    assert!(
        help.stdout
            .contains("--budget <[STREAM[/TASK]:]LIMIT=VALUE,...>"),
        "{help}"
    );
}

#[test]
fn a_budget_at_80_percent_is_warned_of_once_in_the_output_the_journal_and_status() {
    let repo = TestRepo::with_files(&[("src/a/keep.txt", "a\n")]);
    // Ten steps of 100 tokens: the task's 1100 reaches 80 % (880) at 900, the plan's 1200
    // (960) at 1000; neither runs out.
    repo.write(
        "streams.toml",
        &format!(
            r#"[plan]
name = "p"
budget = {{ tokens = 1200 }}

[[stream]]
name = "a"
owns = ["src/a/**"]
agent = {}

[[stream.task]]
prompt = "a"
budget = {{ tokens = 1100 }}
"#,
            ten_steps("src/a/f.txt")
        ),
    );
    repo.commit_all("plan");
    let out = repo.streams(&["run"]);
    out.assert_code(0);
    let plan_line = "80 % of the plan budget is spent (1000 tokens of 1200)";
    let task_line = "80 % of the stream `a` task 1 budget is spent (900 tokens of 1100)";
    assert_eq!(out.stderr.matches(plan_line).count(), 1, "{out}");
    assert_eq!(out.stderr.matches(task_line).count(), 1, "{out}");
    // The journal (what the live web view shows) has each once.
    let journal = std::fs::read_to_string(run_dir(&repo).join("journal.ndjson")).unwrap();
    assert_eq!(
        journal.matches("\"step\":\"budget_warning\"").count(),
        2,
        "{journal}"
    );
    let status = repo.streams(&["status"]);
    assert!(
        status.stdout.contains(&format!("warning: {plan_line}")),
        "{status}"
    );
    assert!(
        status.stdout.contains(&format!("warning: {task_line}")),
        "{status}"
    );
}

#[test]
fn the_users_prices_price_what_the_plan_does_not() {
    let repo = TestRepo::with_files(&[("src/a/keep.txt", "a\n"), ("src/b/keep.txt", "b\n")]);
    let config = repo.home.join(".config/streams/config.toml");
    std::fs::create_dir_all(config.parent().unwrap()).unwrap();
    // The user's `m1` price loses to the plan's; `m2` falls to the user's `"*"`.
    std::fs::write(
        &config,
        "[prices.m1]\ninput = 100.0\n\n[prices.\"*\"]\ninput = 3.0\noutput = 15.0\n",
    )
    .unwrap();
    let usage = |model: &str| {
        format!(
            r#"echo '{{\"streams_usage\": {{\"input_tokens\": 1000, \"output_tokens\": 100, \"model\": \"{model}\"}}}}'"#
        )
    };
    repo.write(
        "streams.toml",
        &format!(
            r#"[plan]
name = "p"

[prices.m1]
input = 2.0

[[stream]]
name = "a"
owns = ["src/a/**"]
agent = ["sh", "-c", "echo x > src/a/f.txt; {}"]
tasks = ["a"]

[[stream]]
name = "b"
owns = ["src/b/**"]
agent = ["sh", "-c", "echo y > src/b/f.txt; {}"]
tasks = ["b"]
"#,
            usage("m1"),
            usage("m2")
        ),
    );
    repo.commit_all("plan");
    repo.streams(&["run"]).assert_code(0);
    let report = report(&repo);
    let a = stream_cost(&report, "a");
    assert!(
        close(a["cost_usd"].as_f64().unwrap(), 1000.0 * 2.0 / 1e6),
        "{a}"
    );
    let b = stream_cost(&report, "b");
    assert!(
        close(
            b["cost_usd"].as_f64().unwrap(),
            (1000.0 * 3.0 + 100.0 * 15.0) / 1e6
        ),
        "{b}"
    );
    assert_eq!(b["cost_estimated"], true);
    // A user config that does not read stops a new run before it starts, naming the file.
    std::fs::write(&config, "[prices.m1]\ninptu = 1.0\n").unwrap();
    let out = repo.streams(&["plan"]);
    out.assert_code(2);
    assert!(
        out.stderr.contains("streams' user config does not read"),
        "{out}"
    );
    assert!(out.stderr.contains("config.toml"), "{out}");
    assert!(out.stderr.contains("inptu"), "{out}");
}

#[test]
fn the_report_sets_the_forecast_beside_the_actual() {
    let (repo, path) = repo();
    let plan = |streams: &[&str]| {
        let mut text = format!("[plan]\nname = \"p\"\nenv = {{ PATH = {path:?} }}\n");
        for s in streams {
            text.push_str(&format!(
                "\n[[stream]]\nname = \"{s}\"\nowns = [\"src/{s}/**\"]\nagent = \"claude\"\nenv = {{ REPLAY_EDIT = \"src/{s}/hello.txt\" }}\ntasks = [\"Write src/{s}/hello.txt\"]\n"
            ));
        }
        text
    };
    repo.write("streams.toml", &plan(&["a"]));
    repo.commit_all("plan");
    repo.streams(&["run"]).assert_code(0);
    let first = std::fs::read_to_string(run_dir(&repo).join("report.md")).unwrap();
    assert!(first.contains("### Forecast against actual"), "{first}");
    assert!(
        first.contains("| a | no history | ") && first.contains("| no history | $0.0121 |"),
        "{first}"
    );
    assert!(
        first.contains("there was no history to forecast from"),
        "{first}"
    );
    assert_eq!(report(&repo)["forecast"]["history"], false);
    repo.streams(&["clean"]).assert_code(0);
    repo.streams(&["run", "--restart"]).assert_code(0);
    repo.streams(&["clean"]).assert_code(0);
    // The third run adds a stream that never ran: it has no history, `a` has two runs'.
    repo.write("streams.toml", &plan(&["a", "b"]));
    repo.commit_all("plan b");
    repo.streams(&["run", "--restart"]).assert_code(0);
    let third = std::fs::read_to_string(run_dir(&repo).join("report.md")).unwrap();
    let row = |name: &str| {
        third
            .lines()
            .find(|l| l.starts_with(&format!("| {name} | ")) && l.matches(" | ").count() == 4)
            .unwrap_or_else(|| panic!("no forecast row for {name}: {third}"))
            .to_string()
    };
    let a = row("a");
    assert!(!a.contains("no history"), "{third}");
    assert!(a.ends_with("| $0.0121 | $0.0121 |"), "{third}");
    let b = row("b");
    assert!(b.starts_with("| b | no history | "), "{third}");
    assert!(b.ends_with("| no history | $0.0121 |"), "{third}");
    let run = row("**run**");
    assert!(!run.contains("no history"), "{third}");
    assert!(run.ends_with("| $0.0121 | $0.0242 |"), "{third}");
    assert!(
        third.contains("Forecast as the run started, from the history of earlier runs"),
        "{third}"
    );
    let json = report(&repo);
    let forecast = &json["forecast"];
    assert_eq!(forecast["history"], true, "{json}");
    // The recorded `result` event's $0.01209, once per past run: the median of the two.
    assert!(close(
        forecast["run"]["forecast"]["cost_usd"]["median"]
            .as_f64()
            .unwrap(),
        0.01209
    ));
    assert!(
        forecast["streams"][0]["forecast"]["seconds"]
            .as_f64()
            .unwrap()
            > 0.0
    );
    assert!(
        forecast["streams"][1]["forecast"].get("seconds").is_none(),
        "{json}"
    );
}

//! `streams ci github`: the workflow that spreads a plan over GitHub Actions jobs. Its shape
//! and stability, actionlint on every example plan's workflow, the plans it refuses, and a
//! harness that executes the workflow's `run:` steps job by job in clones of a bare remote, as
//! runners would.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::ci::{actionlint, node_tools};
use crate::common::{TestRepo, agents_dir, streams_bin};

/// Files for the example plans' patterns to match (so checking them warns of nothing).
const FILES: &[(&str, &str)] = &[
    ("Cargo.lock", "# lock file\n"),
    ("README.md", "# webapp\n"),
    ("src/api/login.rs", "pub fn login() {}\n"),
    ("src/db/schema.rs", "pub struct User;\n"),
    ("src/server/main.ts", "export {};\n"),
    ("migrations/001_users.sql", "create table users (id int);\n"),
    ("web/index.html", "<html></html>\n"),
    ("docs/guide.md", "# Guide\n"),
    ("tests/api/login.rs", "#[test] fn login() {}\n"),
];

/// A repository with the example plan `name` written by `streams init --example` and committed.
fn example_repo(name: &str) -> TestRepo {
    let repo = TestRepo::with_files(FILES).with_agent_stubs();
    if name == "script" {
        // script.toml runs a committed, executable script (as its comment says).
        repo.write("scripts/codemod.sh", "#!/bin/sh\nexit 0\n");
        use std::os::unix::fs::PermissionsExt;
        let script = repo.path("scripts/codemod.sh");
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    repo.streams(&["init", "--example", name]).assert_code(0);
    repo.commit_all("the plan");
    repo
}

fn yaml(text: &str) -> Value {
    serde_yaml_ng::from_str(text).unwrap_or_else(|e| panic!("not YAML: {e}\n{text}"))
}

fn readme() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap()
}

// ---------------------------------------------------------------------------------------------
// The file

#[test]
fn the_webapp_workflow_is_the_same_every_time_and_the_readme_shows_it() {
    let repo = example_repo("webapp");
    let first = repo.streams(&["ci", "github"]);
    first.assert_code(0);
    assert_eq!(first.stderr, "", "{first}");
    let second = repo.streams(&["ci", "github"]);
    assert_eq!(first.stdout, second.stdout, "same plan, same bytes");

    // --out writes the same bytes (and makes .github/workflows), saying so on stderr.
    let out = repo.streams(&["ci", "github", "--out", ".github/workflows/streams.yml"]);
    out.assert_code(0);
    assert_eq!(out.stdout, "");
    assert_eq!(
        out.stderr,
        "wrote .github/workflows/streams.yml: 3 stages, 4 stream jobs\n"
    );
    assert_eq!(repo.read(".github/workflows/streams.yml"), first.stdout);

    insta::assert_snapshot!(first.stdout);
    assert!(
        readme().contains(&format!("```yaml\n{}```\n", first.stdout)),
        "README.md's \"Running on CI machines\" workflow is not what `streams ci github` writes \
         for the webapp example; paste this in:\n{}",
        first.stdout
    );
}

#[test]
fn a_job_per_stage_and_an_integrate_job_after_each() {
    let repo = example_repo("webapp");
    let out = repo.streams(&["ci", "github"]);
    out.assert_code(0);
    let workflow = yaml(&out.stdout);
    let jobs = workflow["jobs"].as_object().unwrap();
    // In the file's order (serde_json's map sorts its keys): the order they run in.
    let mut ids: Vec<&str> = jobs.keys().map(String::as_str).collect();
    ids.sort_by_key(|id| out.stdout.find(&format!("\n  {id}:\n")).unwrap());
    assert_eq!(
        ids,
        [
            "plan",
            "stage-0",
            "integrate-0",
            "stage-1",
            "integrate-1",
            "stage-2",
            "integrate-2"
        ]
    );
    let matrix = |job: &str| jobs[job]["strategy"]["matrix"]["stream"].clone();
    assert_eq!(matrix("stage-0"), serde_json::json!(["db"]));
    assert_eq!(matrix("stage-1"), serde_json::json!(["api", "ui"]));
    assert_eq!(matrix("stage-2"), serde_json::json!(["docs"]));
    for k in 0..3 {
        let stage = &jobs[&format!("stage-{k}")];
        assert_eq!(stage["strategy"]["fail-fast"], false);
        assert_eq!(stage["strategy"]["max-parallel"], 2, "the plan's jobs");
        let needs = if k == 0 {
            serde_json::json!(["plan"])
        } else {
            serde_json::json!(["plan", format!("integrate-{}", k - 1)])
        };
        assert_eq!(stage["needs"], needs);
        let integrate = &jobs[&format!("integrate-{k}")];
        assert_eq!(
            integrate["needs"],
            serde_json::json!(["plan", format!("stage-{k}")])
        );
        assert!(
            integrate["if"].as_str().unwrap().contains("!cancelled()"),
            "integrate runs after a failed stream job, to report it"
        );
    }
    // Every job checks out the whole history, and keeps what it leaves in an artifact of its
    // own that a re-run of the job may replace (upload-artifact@v4 refuses a name twice).
    let mut artifacts = Vec::new();
    for (id, job) in jobs {
        let checkout = &job["steps"][0];
        assert_eq!(checkout["uses"], "actions/checkout@v4", "{id}");
        assert_eq!(checkout["with"]["fetch-depth"], 0, "{id}");
        for step in job["steps"].as_array().unwrap() {
            if step["uses"] == "actions/upload-artifact@v4" {
                assert_eq!(step["with"]["overwrite"], true, "{id}");
                artifacts.push(step["with"]["name"].as_str().unwrap().to_string());
            }
        }
    }
    artifacts.sort();
    assert_eq!(
        artifacts,
        [
            "integrate-0",
            "integrate-1",
            "integrate-2",
            "stream-${{ matrix.stream }}",
            "stream-${{ matrix.stream }}",
            "stream-${{ matrix.stream }}",
            "streams-plan"
        ]
    );
    assert_eq!(
        jobs["plan"]["outputs"]
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        ["base", "run-id"]
    );
}

/// The `env` of every step of `job` that has one, merged.
fn step_env(job: &Value) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    for step in job["steps"].as_array().unwrap() {
        if let Some(vars) = step["env"].as_object() {
            for (k, v) in vars {
                env.insert(k.clone(), v.as_str().unwrap_or_default().to_string());
            }
        }
    }
    env
}

#[test]
fn the_agents_secrets_reach_the_stream_jobs_by_name_and_nothing_else() {
    let repo = example_repo("agents");
    let out = repo.streams(&[
        "ci",
        "github",
        "--secret",
        "NPM_TOKEN",
        "--setup",
        "sudo apt-get install -y ripgrep",
        "--install",
        "cargo install --locked --git https://example.com/streams streams",
    ]);
    out.assert_code(0);
    let workflow = yaml(&out.stdout);
    // agents.toml runs claude and codex: their keys, and the one asked for.
    let secrets = |job: &Value| -> Vec<String> {
        step_env(job)
            .into_iter()
            .filter(|(_, v)| v.contains("secrets."))
            .map(|(k, v)| {
                assert_eq!(v, format!("${{{{ secrets.{k} }}}}"), "passed by name");
                k
            })
            .collect()
    };
    for (id, job) in workflow["jobs"].as_object().unwrap() {
        let expected: &[&str] = if id.starts_with("stage-") {
            &["ANTHROPIC_API_KEY", "NPM_TOKEN", "OPENAI_API_KEY"]
        } else {
            &[]
        };
        assert_eq!(secrets(job), expected, "{id}");
        let runs: Vec<&str> = job["steps"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|s| s["run"].as_str())
            .collect();
        let all = runs.join("");
        for install in [
            "cargo install --locked --git https://example.com/streams streams\n",
            "npm install --global @anthropic-ai/claude-code\nnpm install --global @openai/codex\n",
            "sudo apt-get install -y ripgrep\n",
        ] {
            assert!(all.contains(install), "{id} lacks {install:?}");
        }
    }
    // The header says how to write the same file again.
    assert!(
        out.stdout.contains("# Written by `streams ci github --install 'cargo install --locked --git https://example.com/streams streams' --setup 'sudo apt-get install -y ripgrep' --secret NPM_TOKEN`."),
        "{}",
        out.stdout
    );
}

#[test]
fn plans_that_cannot_be_spread_are_refused_and_nothing_is_written() {
    let repo = TestRepo::with_files(&[("a/x", "x\n"), ("b/x", "x\n")]);
    repo.write(
        "streams.toml",
        r#"
[plan]
name = "p"
jobs = 3
sync = "task"
agent = ["act", "write", "{stream}.txt", "x"]

[plan.limits]
gpu = 1

[[stream]]
name = "a"
owns = ["a/**"]
group = "gpu"
tasks = ["x"]

[[stream]]
name = "b"
owns = ["b/**"]
group = "gpu"
tasks = ["x"]
"#,
    );
    let out = repo.streams(&[
        "ci",
        "github",
        "--secret",
        "GITHUB_TOKEN",
        "--out",
        ".github/workflows/streams.yml",
    ]);
    out.assert_code(2);
    assert_eq!(out.stdout, "");
    assert!(!repo.path(".github").exists(), "nothing written");
    insta::assert_snapshot!(out.stderr_redacted());
}

#[test]
fn every_example_plans_workflow_passes_actionlint() {
    let Some(tools) = node_tools("actionlint") else {
        return;
    };
    let examples = streams::authoring::examples::EXAMPLES;
    assert!(examples.len() >= 4);
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for example in examples {
        let repo = example_repo(example.name);
        let out = repo.streams(&["ci", "github"]);
        out.assert_code(0);
        let file = dir.path().join(format!("{}.yml", example.name));
        std::fs::write(&file, &out.stdout).unwrap();
        files.push(file);
    }
    // One file per process: the WebAssembly build of actionlint 2.0.6 traps ("unreachable")
    // when one linter is given several workflows of this size.
    for file in &files {
        let (clean, findings) = actionlint(&tools, &[file.as_path()]);
        assert!(clean, "actionlint finds problems: {findings:#}");
    }

    // It does look: a job output that does not exist is a finding.
    let text = std::fs::read_to_string(&files[0]).unwrap();
    let broken = text.replace("needs.plan.outputs.run-id", "needs.plan.outputs.run_id");
    assert_ne!(broken, text);
    let copy = dir.path().join("broken.yml");
    std::fs::write(&copy, broken).unwrap();
    let (clean, findings) = actionlint(&tools, &[&copy]);
    assert!(!clean);
    assert!(findings.to_string().contains("run_id"), "{findings:#}");
}

// ---------------------------------------------------------------------------------------------
// Running the workflow: every job's `run:` steps, in dependency order, each job in a clone of
// its own (a "runner" with its own HOME) of one bare remote.

/// A bare repository standing in for GitHub, pushed from `repo`'s main.
fn bare_remote(repo: &TestRepo) -> PathBuf {
    let bare = repo.home.parent().unwrap().join("remote.git");
    repo.git(&["init", "-q", "--bare", bare.to_str().unwrap()]);
    repo.git(&["push", "-q", bare.to_str().unwrap(), "main"]);
    bare
}

/// A fresh runner: an empty repository with its own HOME, checked out as actions/checkout
/// does with `fetch-depth: 0` (every branch as origin/*, tags, then the branch itself).
fn runner(remote: &Path, branch: &str) -> TestRepo {
    let machine = TestRepo::empty();
    machine.git(&["remote", "add", "origin", remote.to_str().unwrap()]);
    machine.git(&[
        "fetch",
        "-q",
        "origin",
        "+refs/heads/*:refs/remotes/origin/*",
        "+refs/tags/*:refs/tags/*",
    ]);
    machine.git(&[
        "checkout",
        "-q",
        "--force",
        "-B",
        branch,
        &format!("refs/remotes/origin/{branch}"),
    ]);
    machine
}

/// What a job left: whether it succeeded, its outputs, what its steps printed.
#[derive(Clone, Debug)]
struct JobRun {
    ok: bool,
    outputs: BTreeMap<String, String>,
    log: String,
}

/// The values `${{ ... }}` expressions of one job see.
struct Scope<'a> {
    run_id: &'a str,
    matrix_stream: Option<&'a str>,
    needs: &'a BTreeMap<String, JobRun>,
    steps: BTreeMap<String, BTreeMap<String, String>>,
}

impl Scope<'_> {
    fn value(&self, expr: &str) -> String {
        let parts: Vec<&str> = expr.split('.').collect();
        match parts.as_slice() {
            ["github", "run_id"] => self.run_id.to_string(),
            ["github", "run_attempt"] => "1".to_string(),
            ["matrix", "stream"] => self.matrix_stream.expect("a matrix job").to_string(),
            // No secrets in tests: an unset secret is empty on GitHub too.
            ["secrets", _] => String::new(),
            ["needs", job, "outputs", key] => self.needs[*job].outputs[*key].clone(),
            ["steps", id, "outputs", key] => self.steps[*id][*key].clone(),
            _ => panic!("the harness does not know the expression `{expr}`"),
        }
    }

    /// `text` with every `${{ expr }}` replaced by its value.
    fn expand(&self, text: &str) -> String {
        let mut out = String::new();
        let mut rest = text;
        while let Some(start) = rest.find("${{") {
            out.push_str(&rest[..start]);
            let end = rest[start..].find("}}").expect("a closed expression") + start;
            out.push_str(&self.value(rest[start + 3..end].trim()));
            rest = &rest[end + 2..];
        }
        out.push_str(rest);
        out
    }
}

/// Whether a job runs, given how the jobs it needs went: GitHub's rule for the conditions the
/// generator writes (and none other: an unknown condition fails the test).
fn job_runs(job: &Value, needs: &BTreeMap<String, Option<JobRun>>) -> bool {
    let ran = |id: &str| needs[id].is_some();
    let succeeded = |id: &str| needs[id].as_ref().is_some_and(|r| r.ok);
    match job["if"].as_str() {
        None => needs.keys().all(|id| succeeded(id)),
        Some(condition) => {
            let stage = condition
                .strip_prefix("${{ !cancelled() && needs.")
                .and_then(|c| c.strip_suffix(".result != 'skipped' }}"))
                .unwrap_or_else(|| panic!("the harness does not know the condition {condition}"));
            ran(stage)
        }
    }
}

/// Runs one job (one matrix entry of it) on a fresh runner, as GitHub would: steps in order,
/// each `run:` under `bash -eo pipefail` with the workflow's, job's and step's `env`, stopping
/// at the first failing step. The install steps are replaced by the built binary on PATH;
/// uploads are skipped.
fn run_job(
    workflow: &Value,
    id: &str,
    remote: &Path,
    scope_base: (&str, &BTreeMap<String, JobRun>),
    matrix_stream: Option<&str>,
    branch: &str,
) -> JobRun {
    let job = &workflow["jobs"][id];
    let machine = runner(remote, branch);
    let mut scope = Scope {
        run_id: scope_base.0,
        matrix_stream,
        needs: scope_base.1,
        steps: BTreeMap::new(),
    };
    let mut log = String::new();
    let bin_dir = streams_bin().parent().unwrap().to_path_buf();
    let path = format!(
        "{}:{}:{}",
        bin_dir.display(),
        agents_dir().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut ok = true;
    for (n, step) in job["steps"].as_array().unwrap().iter().enumerate() {
        if let Some(uses) = step["uses"].as_str() {
            if uses.starts_with("actions/checkout@") || uses.starts_with("actions/upload-artifact@")
            {
                // Checked out above; artifacts are GitHub's business.
                continue;
            }
            panic!("the harness does not know the action {uses}");
        }
        if !ok {
            break;
        }
        let name = step["name"].as_str().unwrap_or_default();
        if name == "Install streams" || name == "Install the agents" {
            continue;
        }
        let script = step["run"].as_str().expect("a run step");
        let dir = machine.home.join(format!("step-{n}"));
        std::fs::create_dir_all(&dir).unwrap();
        let script_file = dir.join("script.sh");
        std::fs::write(&script_file, script).unwrap();
        let output_file = dir.join("output");
        std::fs::write(&output_file, "").unwrap();
        let mut cmd = Command::new("bash");
        cmd.args(["--noprofile", "--norc", "-eo", "pipefail"])
            .arg(&script_file)
            .current_dir(&machine.root)
            .stdin(Stdio::null());
        machine.hermetic(&mut cmd);
        cmd.env("PATH", &path)
            .env("GITHUB_OUTPUT", &output_file)
            .env("CI", "true");
        for scope_env in [&workflow["env"], &job["env"], &step["env"]] {
            for (k, v) in scope_env.as_object().into_iter().flatten() {
                let v = match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                cmd.env(k, scope.expand(&v));
            }
        }
        let out = cmd.output().unwrap();
        log.push_str(&format!(
            "--- {id} {} step {name:?}: {}\n{}{}",
            matrix_stream.unwrap_or(""),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
        let outputs: BTreeMap<String, String> = std::fs::read_to_string(&output_file)
            .unwrap()
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        if let Some(step_id) = step["id"].as_str() {
            scope.steps.insert(step_id.to_string(), outputs);
        }
        ok = out.status.success();
    }
    let outputs = job["outputs"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| {
            let value = if ok {
                scope.expand(v.as_str().unwrap())
            } else {
                String::new()
            };
            (k.clone(), value)
        })
        .collect();
    JobRun { ok, outputs, log }
}

/// Runs the whole workflow: jobs in the order their `needs` allow, the entries of a matrix at
/// the same time on runners of their own. Returns each job's result (`None`: skipped).
fn run_workflow(workflow: &Value, remote: &Path, run_id: &str) -> BTreeMap<String, Option<JobRun>> {
    let jobs = workflow["jobs"].as_object().unwrap();
    let mut done: BTreeMap<String, Option<JobRun>> = BTreeMap::new();
    while done.len() < jobs.len() {
        let (id, job) = jobs
            .iter()
            .find(|(id, job)| {
                !done.contains_key(*id) && needs(job).iter().all(|n| done.contains_key(n.as_str()))
            })
            .expect("the jobs' needs form no cycle");
        let job_needs: BTreeMap<String, Option<JobRun>> = needs(job)
            .into_iter()
            .map(|n| (n.clone(), done[&n].clone()))
            .collect();
        if !job_runs(job, &job_needs) {
            done.insert(id.clone(), None);
            continue;
        }
        let ran: BTreeMap<String, JobRun> = job_needs
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k, v)))
            .collect();
        let result = match job["strategy"]["matrix"]["stream"].as_array() {
            None => run_job(workflow, id, remote, (run_id, &ran), None, "main"),
            Some(streams) => {
                // A matrix job succeeds when every entry does; entries run at once.
                let entries: Vec<JobRun> = std::thread::scope(|s| {
                    let handles: Vec<_> = streams
                        .iter()
                        .map(|stream| {
                            let ran = &ran;
                            s.spawn(move || {
                                run_job(
                                    workflow,
                                    id,
                                    remote,
                                    (run_id, ran),
                                    stream.as_str(),
                                    "main",
                                )
                            })
                        })
                        .collect();
                    handles.into_iter().map(|h| h.join().unwrap()).collect()
                });
                JobRun {
                    ok: entries.iter().all(|e| e.ok),
                    outputs: BTreeMap::new(),
                    log: entries.iter().map(|e| e.log.as_str()).collect(),
                }
            }
        };
        done.insert(id.clone(), Some(result));
    }
    done
}

fn needs(job: &Value) -> Vec<String> {
    match &job["needs"] {
        Value::Null => Vec::new(),
        Value::String(one) => vec![one.clone()],
        Value::Array(many) => many
            .iter()
            .map(|n| n.as_str().unwrap().to_string())
            .collect(),
        other => panic!("needs: {other}"),
    }
}

fn logs(results: &BTreeMap<String, Option<JobRun>>) -> String {
    results.values().flatten().map(|r| r.log.as_str()).collect()
}

/// Stage 0: `db` and `assets`; stage 1: `api` and `ui` after `db`; stage 2: `docs` after
/// `api`. Each agent that depends on another's work requires it (`require`), so a stream job
/// that did not start from its stage's integrated tip fails.
const SPREAD_PLAN: &str = r##"
[plan]
name = "web"
base = "main"
jobs = 2

[[stream]]
name = "db"
owns = ["src/db/**"]
agent = ["act", "write", "src/db/schema.sql", "create table users (id int);"]
tasks = ["Add the users table"]

[[stream]]
name = "assets"
owns = ["assets/**"]
agent = ["act", "write", "assets/logo.svg", "<svg/>"]
tasks = ["Draw the logo"]

[[stream]]
name = "api"
owns = ["src/api/**"]
depends_on = ["db"]
agent = ["act", "require", "src/db/schema.sql", "write", "src/api/login.rs", "pub fn login() {}", "append", "src/api/login.rs", "{task}"]
tasks = ["// login", "// logout"]

[[stream]]
name = "ui"
owns = ["web/**"]
depends_on = ["db"]
agent = ["act", "require", "src/db/schema.sql", "write", "web/login.html", "<form></form>"]
tasks = ["Add the login form"]

[[stream]]
name = "docs"
owns = ["docs/**"]
depends_on = ["api"]
agent = ["act", "require", "src/api/login.rs", "write", "docs/login.md", "# Logging in"]
tasks = ["Document logging in"]
"##;

fn spread_repo() -> (TestRepo, PathBuf, Value) {
    let repo = TestRepo::with_files(&[("README.md", "# web\n")]);
    repo.write("streams.toml", SPREAD_PLAN);
    let out = repo.streams(&["ci", "github", "--out", ".github/workflows/streams.yml"]);
    out.assert_code(0);
    repo.commit_all("the plan and its workflow");
    let workflow = yaml(&repo.read(".github/workflows/streams.yml"));
    let remote = bare_remote(&repo);
    (repo, remote, workflow)
}

/// jq reads `streams plan --json` in the plan job (GitHub's runners have it; `.ci/run`
/// installs it).
fn have_jq() -> bool {
    let found = Command::new("jq")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        if std::env::var_os("CI").is_some() {
            panic!("jq is not installed; .ci/run installs it");
        }
        eprintln!("skipped: jq is not installed");
    }
    found
}

#[test]
fn the_plan_job_pins_the_base_and_run_id_and_stops_a_stale_workflow() {
    if !have_jq() {
        return;
    }
    let (repo, remote, workflow) = spread_repo();
    let none = BTreeMap::new();
    let plan = run_job(&workflow, "plan", &remote, ("4242", &none), None, "main");
    assert!(plan.ok, "{}", plan.log);
    assert_eq!(plan.outputs["base"], repo.git(&["rev-parse", "main"]));
    assert_eq!(plan.outputs["run-id"], "4242-1", "the run id and attempt");

    // Dispatched from another branch, the checkout has main only as origin/main: the plan's
    // base (`main`) still resolves, to the same commit.
    repo.git(&["push", "-q", remote.to_str().unwrap(), "main:feature"]);
    let elsewhere = run_job(&workflow, "plan", &remote, ("4242", &none), None, "feature");
    assert!(elsewhere.ok, "{}", elsewhere.log);
    assert_eq!(elsewhere.outputs["base"], plan.outputs["base"]);

    // The plan gains a stream in stage 1; the workflow is not written again.
    let mut text = SPREAD_PLAN.to_string();
    text.push_str(
        "\n[[stream]]\nname = \"mail\"\nowns = [\"mail/**\"]\ndepends_on = [\"db\"]\nagent = [\"act\", \"write\", \"mail/x\", \"x\"]\ntasks = [\"x\"]\n",
    );
    repo.write("streams.toml", &text);
    repo.commit_all("a stream more");
    repo.git(&["push", "-q", remote.to_str().unwrap(), "main"]);
    let stale = run_job(&workflow, "plan", &remote, ("4243", &none), None, "main");
    assert!(!stale.ok);
    assert!(
        stale.log.contains(
            "::error::the plan's stages are [[\"db\",\"assets\"],[\"api\",\"ui\",\"mail\"],[\"docs\"]], this workflow's [[\"db\",\"assets\"],[\"api\",\"ui\"],[\"docs\"]]: write it again with streams ci github"
        ),
        "{}",
        stale.log
    );
}

#[test]
fn the_workflow_drives_a_whole_run_across_runners() {
    if !have_jq() {
        return;
    }
    let (repo, remote, workflow) = spread_repo();
    let results = run_workflow(&workflow, &remote, "7001");
    for (id, result) in &results {
        assert!(
            result.as_ref().is_some_and(|r| r.ok),
            "job {id} did not succeed:\n{}",
            logs(&results)
        );
    }

    // On the remote: a manifest per stream and a tip per stage, all under the run id the plan
    // job pinned (`<run_id>-<run_attempt>`).
    let remote_refs = |prefix: &str| -> Vec<String> {
        repo.git(&[
            "--git-dir",
            remote.to_str().unwrap(),
            "for-each-ref",
            "--format=%(refname)",
            prefix,
        ])
        .lines()
        .map(|r| r.strip_prefix(prefix).unwrap().to_string())
        .collect()
    };
    assert_eq!(
        remote_refs("refs/streams/web/stages/7001-1/"),
        ["0", "1", "2"]
    );
    assert_eq!(
        remote_refs("refs/streams/web/manifests/7001-1/"),
        ["api", "assets", "db", "docs", "ui"]
    );

    // The integration branch on the remote holds the same tree as a run of the same plan on
    // one machine, from the same base.
    let integration = "refs/heads/streams/web/integration";
    let spread_tree = repo.git(&[
        "--git-dir",
        remote.to_str().unwrap(),
        "rev-parse",
        &format!("{integration}^{{tree}}"),
    ]);
    let local = runner(&remote, "main");
    local.streams(&["run"]).assert_code(0);
    assert_eq!(
        spread_tree,
        local.git(&["rev-parse", &format!("{integration}^{{tree}}")]),
        "{}",
        logs(&results)
    );
    let files = local.git(&["ls-tree", "-r", "--name-only", integration]);
    for file in [
        "src/db/schema.sql",
        "assets/logo.svg",
        "src/api/login.rs",
        "web/login.html",
        "docs/login.md",
    ] {
        assert!(files.lines().any(|f| f == file), "{file} missing:\n{files}");
    }
}

#[test]
fn a_failed_stream_job_is_reported_by_its_integrate_job_and_later_stages_wait() {
    if !have_jq() {
        return;
    }
    let repo = TestRepo::with_files(&[("README.md", "# web\n")]);
    // `assets` fails in stage 0; `db` beside it succeeds.
    let plan = SPREAD_PLAN.replace(
        r#"agent = ["act", "write", "assets/logo.svg", "<svg/>"]"#,
        r#"agent = ["act", "say", "out of ink", "exit", "3"]"#,
    );
    assert_ne!(plan, SPREAD_PLAN);
    repo.write("streams.toml", &plan);
    repo.streams(&["ci", "github", "--out", ".github/workflows/streams.yml"])
        .assert_code(0);
    repo.commit_all("the plan and its workflow");
    let workflow = yaml(&repo.read(".github/workflows/streams.yml"));
    let remote = bare_remote(&repo);
    let results = run_workflow(&workflow, &remote, "7002");
    let outcome = |id: &str| match &results[id] {
        None => "skipped",
        Some(r) if r.ok => "success",
        Some(_) => "failure",
    };
    let outcomes: Vec<(&str, &str)> = [
        "plan",
        "stage-0",
        "integrate-0",
        "stage-1",
        "integrate-1",
        "stage-2",
        "integrate-2",
    ]
    .into_iter()
    .map(|id| (id, outcome(id)))
    .collect();
    assert_eq!(
        outcomes,
        [
            ("plan", "success"),
            ("stage-0", "failure"),
            ("integrate-0", "failure"),
            ("stage-1", "skipped"),
            ("integrate-1", "skipped"),
            ("stage-2", "skipped"),
            ("integrate-2", "skipped"),
        ],
        "{}",
        logs(&results)
    );
    // The integrate job ran, integrated `db` and said what became of `assets`.
    let integrate = results["integrate-0"].as_ref().unwrap();
    assert!(
        integrate.log.contains("exit status: 4"),
        "{}",
        integrate.log
    );
    assert!(integrate.log.contains("assets"), "{}", integrate.log);
    let tree = repo.git(&[
        "--git-dir",
        remote.to_str().unwrap(),
        "ls-tree",
        "-r",
        "--name-only",
        "refs/heads/streams/web/integration",
    ]);
    assert!(tree.lines().any(|f| f == "src/db/schema.sql"), "{tree}");
}

#[test]
fn a_plan_without_jobs_or_with_an_agent_streams_cannot_install_is_written_with_a_warning() {
    let repo = TestRepo::with_files(&[("a/x", "x\n"), ("b/x", "x\n")]);
    repo.write(
        "streams.toml",
        r#"
[plan]
name = "p"
agent = ["act", "write", "{stream}/y", "y"]

[[stream]]
name = "a"
owns = ["a/**"]
tasks = ["x"]

[[stream]]
name = "b"
owns = ["b/**"]
tasks = ["x"]
"#,
    );
    let out = repo.streams(&["ci", "github"]);
    out.assert_code(0);
    insta::assert_snapshot!(out.stderr_redacted());
    let workflow = yaml(&out.stdout);
    let strategy = &workflow["jobs"]["stage-0"]["strategy"];
    assert_eq!(strategy["matrix"]["stream"], serde_json::json!(["a", "b"]));
    assert!(strategy.get("max-parallel").is_none(), "{strategy}");
    // With --setup the warning about installing goes; the one about `jobs` stays.
    let out = repo.streams(&["ci", "github", "--setup", "npm install --global act"]);
    out.assert_code(0);
    assert!(!out.stderr.contains("--setup"), "{out}");
    assert!(out.stderr.contains("sets no `jobs`"), "{out}");
}

/// The agents run on the runners, which install them: writing the workflow on a machine without
/// `claude` must work (it failed with "agent program `claude` was not found on PATH"). A program
/// committed in the repository is still checked: every runner checks out the same files.
#[test]
fn the_workflow_is_written_where_the_agents_are_not_installed() {
    let repo = TestRepo::with_files(FILES);
    repo.streams(&["init", "--example", "webapp"])
        .assert_code(0);
    repo.commit_all("the plan");
    assert_eq!(
        std::process::Command::new("sh")
            .args(["-c", "command -v claude"])
            .output()
            .unwrap()
            .stdout,
        b"",
        "this test needs a machine without claude"
    );
    let out = repo.streams(&["ci", "github"]);
    out.assert_code(0);
    assert!(out.stdout.contains("stage-0"), "{out}");
    repo.streams(&["plan"]).assert_code(2);

    let plan = repo
        .read("streams.toml")
        .replace("agent = [\"claude\"", "agent = [\"scripts/missing.sh\"");
    repo.write("streams.toml", &plan);
    let out = repo.streams(&["ci", "github"]);
    out.assert_code(2);
    assert!(out.stderr.contains("scripts/missing.sh"), "{out}");
}

//! Where run state lives on disk, and how it is written so that a crash never leaves it corrupt.
//!
//! Layout, under the git common dir:
//!
//! ```text
//! streams/
//!   locks/<plan>              flock'd by the plan's one coordinator; holds who that is
//!   register.lock             flock'd for an instant by whoever starts or reopens a run: the
//!                             check of the register (state::register) and the run's first
//!                             state are one step
//!   lock                      version 1's one lock for the whole repository (no longer taken)
//!   current                   the id of the last run started here, of any plan
//!   runs/<run-id>/
//!     state.json              replaced atomically: temp file, fsync, rename, fsync dir
//!     journal.ndjson          append-only: each step's intent, then its completion
//!     plan.toml               the plan as the run started with it
//!     logs/<stream>/<n>.log   each task's agent output
//!     prompts/<stream>/<n>.md each task's rendered prompt
//!     prompt-files/<stream>/<n>.md  copies of `prompt_file`s, taken at the start
//!     tmp/<stream>/<n>/       a sandboxed task's TMPDIR (the only temp dir it may write)
//!     conflicts/<stream>/     the conflict bundle of a halt
//!     stop/<stream>           `streams stop`'s request to stop a stream, until the
//!                             coordinator has (it removes the file)
//!     report.json, report.md  the final report
//!   worktrees/<plan>/<stream> stream worktrees (unless the plan sets worktree_root)
//! ```

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use super::model::{RunState, STATE_VERSION};
use crate::error::{Error, Result};
use crate::failpoint;

/// `<git common dir>/streams`.
#[derive(Clone, Debug)]
pub struct StateDir {
    root: PathBuf,
}

impl StateDir {
    pub fn new(common_dir: &Path) -> StateDir {
        StateDir {
            root: crate::layout::state_dir(common_dir),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The lock of plan `plan`'s coordinator (one per plan: plans run side by side).
    pub fn lock_path(&self, plan: &str) -> PathBuf {
        self.root.join("locks").join(plan)
    }

    /// The lock held while the register of running plans is checked and a run joins it.
    pub fn register_lock_path(&self) -> PathBuf {
        self.root.join("register.lock")
    }

    pub fn runs_dir(&self) -> PathBuf {
        self.root.join("runs")
    }

    pub fn run_dir(&self, run_id: &str) -> RunDir {
        RunDir {
            path: self.runs_dir().join(run_id),
        }
    }

    /// The id of the current (or last) run, if any run ever started here.
    pub fn current_run_id(&self) -> Option<String> {
        let text = std::fs::read_to_string(self.root.join("current")).ok()?;
        let id = text.trim();
        (!id.is_empty()).then(|| id.to_string())
    }

    pub fn set_current(&self, run_id: &str) -> Result<()> {
        write_atomic(&self.root.join("current"), format!("{run_id}\n").as_bytes()).map_err(|e| {
            Error::io(
                format!(
                    "could not record the current run in {}",
                    self.root.display()
                ),
                e,
            )
        })
    }

    /// The id of a run of plan `plan` (any plan: `None`) that was stopped as it started
    /// (killed in its first milliseconds): its directory exists but its state was never saved,
    /// and no run of that plan with a state started after it. Nothing of it can be resumed;
    /// what it did before it died (a directory, perhaps the current pointer) a new run takes
    /// over. Its plan is the one its copy of the plan names; a run killed before it wrote that
    /// copy may be any plan's.
    pub fn stillborn(&self, plan: Option<&str>) -> Option<String> {
        // Newest by when its directory last changed: run ids are only ordered to the second.
        let (newest, changed) = std::fs::read_dir(self.runs_dir())
            .ok()?
            .filter_map(|entry| {
                let entry = entry.ok()?;
                let id = entry.file_name().into_string().ok()?;
                let dir = self.run_dir(&id);
                if dir.state_path().exists() {
                    return None;
                }
                if let Some(plan) = plan
                    && dir.copied_plan_name().is_some_and(|name| name != plan)
                {
                    return None;
                }
                Some((id, entry.metadata().ok()?.modified().ok()?))
            })
            .max_by_key(|(_, changed)| *changed)?;
        let (runs, _) = self.runs();
        let later = runs
            .iter()
            .filter(|(_, state)| plan.is_none_or(|plan| state.plan_name == plan))
            .any(|(_, state)| {
                changed
                    <= std::time::UNIX_EPOCH + std::time::Duration::from_millis(state.started_at)
            });
        (!later).then_some(newest)
    }

    /// The last run started here (of any plan), if there is one.
    pub fn current(&self) -> Result<Option<(RunDir, RunState)>> {
        let Some(id) = self.current_run_id() else {
            return Ok(None);
        };
        let dir = self.run_dir(&id);
        if !dir.state_path().exists() {
            return Ok(None);
        }
        let state = dir.load()?;
        Ok(Some((dir, state)))
    }

    /// Every run recorded here whose state reads, oldest first (by start, then id); and a line
    /// for each run directory whose state does not (it is left alone).
    pub fn runs(&self) -> (Vec<(RunDir, RunState)>, Vec<String>) {
        let mut runs = Vec::new();
        let mut unreadable = Vec::new();
        let Ok(entries) = std::fs::read_dir(self.runs_dir()) else {
            return (runs, unreadable);
        };
        for entry in entries.filter_map(|e| e.ok()) {
            let dir = RunDir::at(entry.path());
            if !dir.state_path().exists() {
                continue;
            }
            match dir.load() {
                Ok(state) => runs.push((dir, state)),
                Err(e) => unreadable.push(e.to_string()),
            }
        }
        runs.sort_by(|(_, a), (_, b)| (a.started_at, &a.run_id).cmp(&(b.started_at, &b.run_id)));
        unreadable.sort();
        (runs, unreadable)
    }

    /// The last run of plan `plan`, if it ever ran here.
    pub fn last_of_plan(&self, plan: &str) -> Option<(RunDir, RunState)> {
        self.runs()
            .0
            .into_iter()
            .rev()
            .find(|(_, state)| state.plan_name == plan)
    }
}

/// One run's directory.
#[derive(Clone, Debug)]
pub struct RunDir {
    path: PathBuf,
}

impl RunDir {
    pub fn at(path: PathBuf) -> RunDir {
        RunDir { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn state_path(&self) -> PathBuf {
        self.path.join("state.json")
    }

    /// The name its copy of the plan gives (read for that name alone), if it has a readable
    /// one: for a run whose state was never saved.
    fn copied_plan_name(&self) -> Option<String> {
        #[derive(serde::Deserialize)]
        struct Copy {
            plan: Named,
        }
        #[derive(serde::Deserialize)]
        struct Named {
            name: String,
        }
        let text = std::fs::read_to_string(self.plan_copy_path()).ok()?;
        toml::from_str::<Copy>(&text).ok().map(|c| c.plan.name)
    }

    pub fn journal_path(&self) -> PathBuf {
        self.path.join("journal.ndjson")
    }

    pub fn plan_copy_path(&self) -> PathBuf {
        self.path.join("plan.toml")
    }

    pub fn log_path(&self, stream: &str, task: usize) -> PathBuf {
        self.path
            .join("logs")
            .join(stream)
            .join(format!("{}.log", task + 1))
    }

    /// The log of a stream's `n`-th check run (one-based), beside its task logs.
    pub fn check_log_path(&self, stream: &str, n: usize) -> PathBuf {
        self.path
            .join("logs")
            .join(stream)
            .join(format!("check-{n}.log"))
    }

    /// The log of the run's `n`-th gate run (one-based). `logs/.gate` cannot be a stream's
    /// directory: stream names cannot start with a dot.
    pub fn gate_log_path(&self, n: usize) -> PathBuf {
        self.path
            .join("logs")
            .join(".gate")
            .join(format!("gate-{n}.log"))
    }

    /// A task's private temp dir (its agent's `TMPDIR` when sandboxed).
    /// The log of a stream's workspace `setup`: `logs/<stream>/setup.log`.
    pub fn setup_log_path(&self, stream: &str) -> PathBuf {
        self.path.join("logs").join(stream).join("setup.log")
    }

    pub fn tmp_path(&self, stream: &str, task: usize) -> PathBuf {
        self.path
            .join("tmp")
            .join(stream)
            .join((task + 1).to_string())
    }

    /// A task's own home for its preset's CLI (its configuration folder, seeded from the
    /// user's; see `agent::home`), kept across the task's attempts so a session can resume.
    pub fn agent_home_path(&self, stream: &str, task: usize) -> PathBuf {
        self.path
            .join("homes")
            .join(stream)
            .join((task + 1).to_string())
    }

    pub fn prompt_path(&self, stream: &str, task: usize) -> PathBuf {
        self.path
            .join("prompts")
            .join(stream)
            .join(format!("{}.md", task + 1))
    }

    /// The copy of a task's `prompt_file`, taken when the run started.
    pub fn prompt_source_path(&self, stream: &str, task: usize) -> PathBuf {
        self.path
            .join("prompt-files")
            .join(stream)
            .join(format!("{}.md", task + 1))
    }

    /// `streams stop`'s request to stop `stream` (see [`RunDir::stop_requests`]).
    pub fn stop_request_path(&self, stream: &str) -> PathBuf {
        self.path.join("stop").join(stream)
    }

    /// The streams `streams stop` asked the coordinator to stop, not yet acted on.
    pub fn stop_requests(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.path.join("stop"))
            .map(|entries| {
                entries
                    .filter_map(|e| e.ok())
                    .filter_map(|e| e.file_name().to_str().map(str::to_string))
                    .filter(|name| !name.starts_with('.'))
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }

    pub fn conflicts_dir(&self, stream: &str) -> PathBuf {
        self.path.join("conflicts").join(stream)
    }

    pub fn report_json_path(&self) -> PathBuf {
        self.path.join("report.json")
    }

    pub fn report_md_path(&self) -> PathBuf {
        self.path.join("report.md")
    }

    /// The run's JUnit XML, for CI systems.
    pub fn report_xml_path(&self) -> PathBuf {
        self.path.join("report.xml")
    }

    pub fn create(&self) -> Result<()> {
        std::fs::create_dir_all(&self.path).map_err(|e| {
            Error::io(
                format!("could not create the run directory {}", self.path.display()),
                e,
            )
        })
    }

    /// Replaces `state.json` atomically. On any failure the previous file is intact. Only
    /// [`StateStore`] calls this: every write of run state goes through it.
    fn write_state(&self, state: &RunState) -> Result<()> {
        let json = serde_json::to_vec_pretty(state)
            .map_err(|e| Error::Internal(format!("could not serialise the run state: {e}")))?;
        failpoint::io("state-save")
            .and_then(|()| write_atomic(&self.state_path(), &json))
            .map_err(|e| {
                Error::io(
                    format!(
                        "could not save the run state to {}",
                        self.state_path().display()
                    ),
                    e,
                )
            })?;
        failpoint::hit("after-state-save");
        Ok(())
    }

    /// Loads `state.json`, upgrading older format versions.
    pub fn load(&self) -> Result<RunState> {
        let path = self.state_path();
        let text = std::fs::read(&path).map_err(|e| {
            Error::io(
                format!("could not read the run state {}", path.display()),
                e,
            )
        })?;
        parse_state(&text).map_err(|message| {
            Error::state(
                format!("the run state {} is unreadable: {message}", path.display()),
                format!(
                    "the refs under {} and the stream branches still hold every commit; \
                     `streams abort` can reset the run",
                    crate::layout::KEPT_ROOT
                ),
            )
        })
    }
}

/// The one door through which run state reaches disk.
///
/// Run state has one writer at a time: the engine (`exec::dispatcher`) while a session runs, and
/// the start and abort use cases (`ops::start`, `ops::abort`) before and after one. Each holds a
/// `StateStore` for the run's directory and saves through it; nothing else writes `state.json`.
/// Readers (`status`, `clean`, the commands that pick a run up) use [`StateDir::current`] and
/// [`RunDir::load`].
#[derive(Clone, Debug)]
pub struct StateStore {
    dir: RunDir,
}

impl StateStore {
    pub fn new(dir: RunDir) -> StateStore {
        StateStore { dir }
    }

    pub fn dir(&self) -> &RunDir {
        &self.dir
    }

    /// Saves a new run's first state as it is (its times were just set by its creator).
    pub fn create(&self, state: &RunState) -> Result<()> {
        self.dir.write_state(state)
    }

    /// Stamps `updated_at` and replaces `state.json` atomically.
    pub fn save(&self, state: &mut RunState) -> Result<()> {
        state.updated_at = now_ms();
        self.dir.write_state(state)
    }
}

/// Parses any known version of the state format.
pub fn parse_state(text: &[u8]) -> std::result::Result<RunState, String> {
    let value: serde_json::Value = serde_json::from_slice(text).map_err(|e| e.to_string())?;
    let version = value
        .get("version")
        .and_then(|v| v.as_u64())
        .ok_or("no `version` field")?;
    if version > u64::from(STATE_VERSION) {
        return Err(format!(
            "it was written by a newer streams (format {version}; this one reads up to {STATE_VERSION})"
        ));
    }
    // Each older version is upgraded to the next, in turn, as a `Value`.
    let mut value = value;
    if version < 2 {
        value = upgrade_v1(value);
    }
    if version < 3 {
        value = upgrade_v2(value)?;
    }
    if version < 4 {
        value = upgrade_v3(value);
    }
    if version < 5 {
        value = upgrade_v4(value);
    }
    serde_json::from_value(value).map_err(|e| e.to_string())
}

/// Version 1 to 2 (runs side by side): version 2 only adds (the `stopped` stream state, the
/// optional `merged` and `retries`), so a version 1 run reads as it is. What changed around
/// the state file is handled where it is read: the plan's lock is `locks/<plan>` now (version
/// 1's one lock for the repository is left alone), and a run's plan is found by scanning
/// `runs/` (version 1 kept only the repository's last run in `current`).
fn upgrade_v1(mut value: serde_json::Value) -> serde_json::Value {
    value["version"] = serde_json::Value::from(2);
    value
}

/// Version 3 to 4 (agents known by preset): version 4 only adds (a task's usage per attempt,
/// its wait on a usage limit, the `stopped` task state and the `reported`/`no changes` failure
/// reasons), so a version 3 run reads as it is. The number changes so that a streams of version
/// 3 reading a run of this one says it was written by a newer streams instead of failing to
/// parse a state it does not know.
fn upgrade_v3(mut value: serde_json::Value) -> serde_json::Value {
    value["version"] = serde_json::Value::from(4);
    value
}

/// Version 4 to 5: version 5 only adds the `unreachable` failure reason, so a version 4 run
/// reads as it is; the number changes so that a streams of version 4 reading a run of this one
/// says it was written by a newer streams instead of failing on an unknown variant.
fn upgrade_v4(mut value: serde_json::Value) -> serde_json::Value {
    value["version"] = serde_json::Value::from(5);
    value
}

/// Version 2 to 3: a run halted on a conflict held the conflict in its phase, with the halted
/// unit still queued and its stream active; version 3 parks the stream with the conflict
/// (nothing else moved while version 2 was halted, so the stream parked when the run halted).
fn upgrade_v2(mut value: serde_json::Value) -> Result<serde_json::Value, String> {
    use serde_json::{Value, json};
    value["version"] = json!(3);
    if value["phase"]["phase"] != "halted" {
        return Ok(value);
    }
    let Value::Object(mut halt) = value["phase"].take() else {
        return Err("a halted phase that is not an object".into());
    };
    halt.remove("phase");
    let unit = halt.get("unit").cloned().ok_or("a halt without its unit")?;
    let s = unit["stream"]
        .as_u64()
        .ok_or("a halted unit without its stream")? as usize;
    let stream = value["streams"]
        .get_mut(s)
        .ok_or("the halted stream is not in the run")?;
    let started_at = stream["state"]["started_at"].clone();
    halt.insert("state".into(), json!("parked"));
    halt.insert("started_at".into(), started_at);
    halt.insert("parked_at".into(), value["updated_at"].clone());
    value["streams"][s]["state"] = Value::Object(halt);
    if let Some(queue) = value["queue"].as_array_mut() {
        queue.retain(|u| *u != unit);
    }
    value["phase"] = json!({ "phase": "halted" });
    Ok(value)
}

/// Writes a file so that readers see either the old or the new contents, never a mix, and the
/// new contents survive a crash once this returns.
pub fn write_atomic(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    // A temp file is private (0600); what replaces `path` is an ordinary file (a report a CI
    // step or a colleague reads), so it gets the mode any new file gets under the umask.
    let mut tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666))
        .tempfile_in(dir)?;
    tmp.write_all(contents)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    // The rename is only durable once the directory entry is.
    File::open(dir)?.sync_all()?;
    Ok(())
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// A new run id: the UTC start time plus four hex digits, e.g. `20261121-140405-a3f9`.
pub fn new_run_id() -> String {
    let now = std::time::SystemTime::now();
    let stamp = humantime::format_rfc3339_seconds(now).to_string();
    // 2026-11-21T14:04:05Z -> 20261121-140405
    let digits: String = stamp.chars().filter(|c| c.is_ascii_digit()).collect();
    let nanos = now
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let salt = (nanos ^ std::process::id().rotate_left(16)) & 0xffff;
    format!("{}-{}-{salt:04x}", &digits[..8], &digits[8..14])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::RunPhase;

    fn fixture() -> RunState {
        let text = include_bytes!("../../fixtures/state/v1.json");
        parse_state(text).expect("the v1 fixture loads")
    }

    #[test]
    fn the_store_stamps_each_save_and_the_file_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::new(RunDir::at(dir.path().join("run")));
        let mut state = fixture();
        state.updated_at = 0;
        store.create(&state).unwrap();
        assert_eq!(
            store.dir().load().unwrap().updated_at,
            0,
            "create saves as is"
        );
        store.save(&mut state).unwrap();
        assert!(state.updated_at > 0);
        assert_eq!(store.dir().load().unwrap().updated_at, state.updated_at);
    }

    #[test]
    fn a_version_1_state_is_upgraded_to_the_current_version() {
        let state = fixture();
        assert_eq!(state.version, STATE_VERSION);
        assert_eq!(state.streams.len(), 3);
        assert!(state.merged.is_none() && state.retries.is_empty());
    }

    #[test]
    fn a_run_halted_under_version_1_loads_with_its_stream_parked() {
        let text = include_bytes!("../../fixtures/state/v1-halted.json");
        let state = parse_state(text).expect("the v1 halted fixture loads");
        assert_eq!(state.version, STATE_VERSION);
        assert_eq!(state.phase, RunPhase::Halted);
        let parked = state.parked();
        assert_eq!(parked.len(), 1);
        let (s, record, park) = parked[0];
        assert_eq!((s, record.name.as_str()), (1, "db"));
        assert_eq!(park.files, ["SHARED.md"]);
        assert_eq!(park.ours.as_str(), "@API@");
        assert_eq!(park.theirs.as_str(), "@DB@");
        assert!(park.started_at > 0 && park.parked_at >= park.started_at);
        // Its unit left the queue; ui's, queued behind it while the line stopped, is still there.
        assert_eq!(state.queue.len(), 1);
        assert_eq!(state.queue[0].stream, 2);
    }

    #[test]
    fn a_run_halted_under_version_2_loads_with_its_stream_parked_as_version_1s_does() {
        // Version 2 (runs side by side) kept version 1's halted phase as it was: the same run
        // written by it differs only in its version, and is upgraded from there.
        let text = include_bytes!("../../fixtures/state/v1-halted.json");
        let mut value: serde_json::Value = serde_json::from_slice(text).unwrap();
        value["version"] = serde_json::json!(2);
        let v2 = parse_state(&serde_json::to_vec(&value).unwrap()).expect("a v2 halted run loads");
        let v1 = parse_state(text).unwrap();
        assert_eq!(v2.version, STATE_VERSION);
        assert_eq!(v2.phase, RunPhase::Halted);
        let (parked1, parked2) = (v1.parked(), v2.parked());
        assert_eq!(parked2.len(), 1);
        assert_eq!((parked2[0].0, parked2[0].2), (parked1[0].0, parked1[0].2));
        assert_eq!(v2.queue, v1.queue);
    }

    #[test]
    fn a_version_3_state_loads_as_version_4_and_a_newer_one_is_refused_by_name() {
        let text = include_bytes!("../../fixtures/state/v1.json");
        let mut value: serde_json::Value = serde_json::from_slice(text).unwrap();
        value["version"] = serde_json::json!(3);
        let v3 = parse_state(&serde_json::to_vec(&value).unwrap()).expect("a v3 run loads");
        assert_eq!(v3.version, STATE_VERSION);
        assert_eq!(v3.streams.len(), 3);
        value["version"] = serde_json::json!(STATE_VERSION + 1);
        let newer = parse_state(&serde_json::to_vec(&value).unwrap()).unwrap_err();
        assert!(newer.contains("written by a newer streams"), "{newer}");
    }

    #[test]
    fn a_version_4_state_loads_as_it_is_and_the_unreachable_failure_is_version_5s() {
        let text = include_bytes!("../../fixtures/state/v1.json");
        let mut value: serde_json::Value = serde_json::from_slice(text).unwrap();
        value["version"] = serde_json::json!(4);
        let v4 = parse_state(&serde_json::to_vec(&value).unwrap()).expect("a v4 run loads");
        assert_eq!(v4.version, STATE_VERSION);
        assert_eq!(STATE_VERSION, 5);
    }

    #[test]
    fn a_running_run_nobody_holds_is_seen_as_interrupted() {
        assert_eq!(RunPhase::Running.seen(true), "running");
        assert_eq!(RunPhase::Running.seen(false), "interrupted");
        assert_eq!(RunPhase::Finished.seen(false), "finished");
    }
}

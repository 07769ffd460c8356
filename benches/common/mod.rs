//! What every benchmark shares: hermetic repositories built fast, the real `streams` binary run
//! against them, and one way of printing a figure beside its baseline.
//!
//! Every repository lives in its own temporary directory with its own HOME, under the hermetic git
//! environment the integration tests use (`tests/support/hermetic.rs`), so the user's git setup
//! (hooks, fsmonitor, signing) never changes a figure. Repositories are written with
//! `git fast-import` (no checkout), so a 100,000-file repository costs well under a second.
//!
//! Benchmarks print figures; they never fail on a slow figure (machines are noisy). They do fail
//! when a run does not do what it should (a stream not integrated), since then the figure would
//! measure something else.

#![allow(dead_code)]

pub mod overhead;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

// The hermetic environment is the integration tests' own.
#[path = "../../tests/support/hermetic.rs"]
mod hermetic;

/// `STREAMS_BENCH_QUICK=1`: small sizes, one trial; a smoke run of the harness, not a measurement.
pub fn quick() -> bool {
    std::env::var("STREAMS_BENCH_QUICK").is_ok_and(|v| !v.is_empty() && v != "0")
}

/// How many times each timed run is repeated (the median is reported).
pub fn trials(default: usize) -> usize {
    if quick() {
        return 1;
    }
    std::env::var("STREAMS_BENCH_TRIALS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
        .max(1)
}

/// The release binary built with the benchmarks, or `STREAMS_BENCH_BIN` (to compare builds).
pub fn streams_bin() -> PathBuf {
    std::env::var_os("STREAMS_BENCH_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_streams")))
}

/// A temporary directory holding a HOME and any number of repositories.
pub struct Sandbox {
    tmp: tempfile::TempDir,
    pub home: PathBuf,
}

impl Sandbox {
    pub fn new(name: &str) -> Sandbox {
        // STREAMS_BENCH_DIR moves the repositories (to another disk, or a tmpfs).
        let parent = std::env::var_os("STREAMS_BENCH_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(std::env::temp_dir);
        let tmp = tempfile::Builder::new()
            .prefix(&format!("streams-bench-{name}-"))
            .tempdir_in(parent)
            .expect("temporary directory");
        let home = tmp.path().canonicalize().unwrap().join("home");
        hermetic::init_home(&home);
        Sandbox { tmp, home }
    }

    pub fn path(&self) -> PathBuf {
        self.tmp.path().canonicalize().unwrap()
    }

    /// A new directory under the sandbox.
    pub fn dir(&self, name: &str) -> PathBuf {
        let dir = self.path().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// Applies the hermetic environment to a command.
    pub fn hermetic(&self, cmd: &mut Command) {
        hermetic::apply(cmd, &self.home);
        // Figures are read from piped output: no colour codes in it.
        cmd.env("NO_COLOR", "1");
    }

    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>, dir: &Path) -> Command {
        let mut cmd = Command::new(program);
        cmd.current_dir(dir);
        self.hermetic(&mut cmd);
        cmd
    }

    /// Runs git in `dir`; panics on failure.
    pub fn git(&self, dir: &Path, args: &[&str]) -> String {
        let out = self.command("git", dir).args(args).output().unwrap();
        assert!(
            out.status.success(),
            "git {args:?} failed in {}: {}",
            dir.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim_end().to_string()
    }
}

/// What the files of a generated repository hold.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Contents {
    /// `file <n>`: one blob per file, like a real repository.
    Distinct,
    /// Every file empty (one blob): checkouts of 50 worktrees of 100,000 files stay within the
    /// disk; integration cost does not depend on file contents.
    Empty,
}

/// A repository with `files` files under `src/` (100 per directory, 100 directories per module)
/// plus `streams/<name>/README.md` for each stream, committed on `main` in one commit. The main
/// checkout is left empty (HEAD on `main`, nothing checked out): streams never touches it.
pub fn build_repo(sb: &Sandbox, root: &Path, files: usize, contents: Contents, streams: &[String]) {
    std::fs::create_dir_all(root).unwrap();
    sb.git(root, &["init", "-q", "-b", "main"]);
    let mut data = Vec::with_capacity(files * 64);
    if contents == Contents::Empty {
        data.extend_from_slice(b"blob\nmark :1\ndata 0\n\n");
    }
    let who = format!(
        "{} <{}> {} +0000",
        hermetic::USER_NAME,
        hermetic::USER_EMAIL,
        hermetic::DATE_EPOCH
    );
    let _ = write!(
        data,
        "commit refs/heads/main\nauthor {who}\ncommitter {who}\ndata 15\ninitial commit\n"
    );
    for i in 0..files {
        let path = format!("src/m{}/d{}/f{i}.txt", i / 10_000, (i / 100) % 100);
        match contents {
            Contents::Empty => {
                let _ = writeln!(data, "M 100644 :1 {path}");
            }
            Contents::Distinct => {
                let text = format!("file {i}\n");
                let _ = write!(
                    data,
                    "M 100644 inline {path}\ndata {}\n{text}\n",
                    text.len()
                );
            }
        }
    }
    for name in streams {
        let text = format!("stream {name}\n");
        let _ = write!(
            data,
            "M 100644 inline streams/{name}/README.md\ndata {}\n{text}\n",
            text.len()
        );
    }
    data.extend_from_slice(b"\n");
    let mut child = sb
        .command("git", root)
        .args(["fast-import", "--quiet"])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&data).unwrap();
    assert!(child.wait().unwrap().success(), "git fast-import failed");
    // HEAD on main with a matching index, no files written: `git status` in the main checkout
    // would show deletions, which nothing here looks at.
    sb.git(root, &["read-tree", "main"]);
}

/// Stream names `s001`, `s002`, ...
pub fn stream_names(n: usize) -> Vec<String> {
    (1..=n).map(|i| format!("s{i:03}")).collect()
}

/// TOML string.
/// A plan named `name` where each stream owns `streams/<stream>/**` and has one trivial task:
/// the `act` agent writes `streams/<stream>/out.txt`.
pub fn one_file_plan(name: &str, streams: &[String], jobs: usize) -> String {
    let mut plan = format!(
        "[plan]\nname = {}\nbase = \"main\"\njobs = {jobs}\n",
        q(name)
    );
    for s in streams {
        plan.push_str(&format!(
            "\n[[stream]]\nname = {}\nowns = [{}]\ntasks = [\"Write out.txt\"]\nagent = {}\n",
            q(s),
            q(&format!("streams/{s}/**")),
            arr(&[
                "act".into(),
                "write".into(),
                format!("streams/{s}/out.txt"),
                format!("done by {s}"),
            ])
        ));
    }
    plan
}

pub fn q(s: &str) -> String {
    format!("{s:?}")
}

/// TOML array of strings.
pub fn arr(items: &[String]) -> String {
    format!(
        "[{}]",
        items.iter().map(|s| q(s)).collect::<Vec<_>>().join(", ")
    )
}

/// One NDJSON event of `streams run --json`.
#[derive(Clone, Debug)]
pub struct Event {
    pub name: String,
    pub at: u64,
    pub value: serde_json::Value,
}

impl Event {
    pub fn stream(&self) -> &str {
        self.value["stream"].as_str().unwrap_or("")
    }
}

/// What one `streams run` did.
pub struct RunOutcome {
    pub wall: Duration,
    pub code: i32,
    pub events: Vec<Event>,
    pub stderr: String,
    /// The coordinator's peak resident set (VmHWM), sampled while it ran; kB.
    pub peak_rss_kb: u64,
}

impl RunOutcome {
    pub fn events_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Event> + 'a {
        self.events.iter().filter(move |e| e.name == name)
    }

    /// Panics unless the run integrated every one of `streams` streams.
    pub fn assert_integrated(&self, streams: usize) {
        let done = self.events_named("stream_done").count();
        assert!(
            self.code == 0 && done == streams,
            "streams run exited {} with {done}/{streams} streams done:\n{}",
            self.code,
            self.stderr
        );
    }
}

/// Flushes dirty pages before a timed run, so one run's writeback does not land in the next
/// one's time.
pub fn settle() {
    let _ = Command::new("sync").status();
}

/// Runs `streams run --json PLAN` in `repo` and times it from spawn to exit.
pub fn run_streams(sb: &Sandbox, repo: &Path, plan: &Path, extra: &[&str]) -> RunOutcome {
    settle();
    let mut cmd = sb.command(streams_bin(), repo);
    // STREAMS_BENCH_LOG=DIR: each run's own log (`STREAMS_LOG=streams=debug`: every git process
    // with its time) kept in DIR, to see where the time goes. It costs a little time itself.
    let log_dir = std::env::var_os("STREAMS_BENCH_LOG").map(PathBuf::from);
    if log_dir.is_some() {
        cmd.env("STREAMS_LOG", "streams=debug");
    }
    cmd.args(["--no-progress", "run", "--json"])
        .args(extra)
        .arg(plan)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let started = Instant::now();
    let child = cmd.spawn().expect("streams runs");
    let pid = child.id();
    let sampler = std::thread::spawn(move || {
        // VmHWM is a high-water mark: the last reading before exit is (nearly) the peak.
        let mut peak = 0u64;
        while let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) {
            let Some(kb) = status
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            else {
                break; // a zombie has no memory left to report
            };
            peak = peak.max(kb);
            std::thread::sleep(Duration::from_millis(10));
        }
        peak
    });
    let out = child.wait_with_output().unwrap();
    let wall = started.elapsed();
    let peak_rss_kb = sampler.join().unwrap_or(0);
    if let Some(dir) = log_dir {
        std::fs::create_dir_all(&dir).unwrap();
        let n = std::fs::read_dir(&dir).map_or(0, |d| d.count());
        let name = format!("{n:03}-{}.log", plan.file_stem().unwrap().to_string_lossy());
        std::fs::write(dir.join(name), &out.stderr).unwrap();
    }
    let events = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .map(|value| Event {
            name: value["event"].as_str().unwrap_or("").to_string(),
            at: value["at"].as_u64().unwrap_or(0),
            value,
        })
        .collect();
    RunOutcome {
        wall,
        code: out.status.code().unwrap_or(-1),
        events,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        peak_rss_kb,
    }
}

/// Runs a shell script (`sh -e SCRIPT ARGS`) and times it; panics on failure.
pub fn run_script(sb: &Sandbox, dir: &Path, script: &Path, args: &[&str]) -> Duration {
    settle();
    let started = Instant::now();
    let out = sb
        .command("sh", dir)
        .arg("-e")
        .arg(script)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let wall = started.elapsed();
    assert!(
        out.status.success(),
        "{} failed: {}{}",
        script.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    wall
}

pub fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

pub fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// How a figure is judged against its baseline.
#[derive(Clone, Copy)]
pub enum Target {
    /// ratio = value / baseline must be at most this.
    RatioAtMost(f64),
    /// No target: the figure is context.
    None,
}

/// The figures of one benchmark, printed as one table at the end (and as they come).
pub struct Report {
    title: String,
    rows: Vec<Row>,
}

struct Row {
    figure: String,
    value: String,
    baseline: String,
    ratio: Option<f64>,
    target: Target,
}

impl Report {
    pub fn new(title: &str) -> Report {
        println!("\n== {title}{}", if quick() { " (quick mode)" } else { "" });
        Report {
            title: title.to_string(),
            rows: Vec::new(),
        }
    }

    /// Progress and context lines (sizes, what is being run).
    pub fn note(&self, text: impl AsRef<str>) {
        println!("   {}", text.as_ref());
        // A benchmark's own report (clippy.toml keeps stdout for streams' printer).
        #[allow(clippy::disallowed_methods)]
        let _ = std::io::stdout().flush();
    }

    /// A figure: `value` against `baseline`, both already formatted; `ratio` = value / baseline.
    pub fn figure(
        &mut self,
        figure: impl Into<String>,
        value: impl Into<String>,
        baseline: impl Into<String>,
        ratio: Option<f64>,
        target: Target,
    ) {
        let row = Row {
            figure: figure.into(),
            value: value.into(),
            baseline: baseline.into(),
            ratio,
            target,
        };
        println!(
            "   {}: {} | baseline {} | ratio {} | {}",
            row.figure,
            row.value,
            row.baseline,
            fmt_ratio(row.ratio),
            verdict(row.ratio, row.target)
        );
        self.rows.push(row);
    }

    pub fn print(&self) {
        let w = |f: &dyn Fn(&Row) -> usize, min: usize| {
            self.rows.iter().map(f).max().unwrap_or(0).max(min)
        };
        let (wf, wv, wb) = (
            w(&|r| r.figure.len(), 6),
            w(&|r| r.value.len(), 5),
            w(&|r| r.baseline.len(), 8),
        );
        println!(
            "\n{}{}",
            self.title,
            if quick() { " (quick mode)" } else { "" }
        );
        println!(
            "  {:wf$}  {:>wv$}  {:wb$}  {:>6}  target",
            "figure", "value", "baseline", "ratio"
        );
        for r in &self.rows {
            println!(
                "  {:wf$}  {:>wv$}  {:wb$}  {:>6}  {}",
                r.figure,
                r.value,
                r.baseline,
                fmt_ratio(r.ratio),
                verdict(r.ratio, r.target)
            );
        }
        println!();
    }
}

fn fmt_ratio(ratio: Option<f64>) -> String {
    ratio.map_or("-".into(), |r| format!("{r:.2}x"))
}

fn verdict(ratio: Option<f64>, target: Target) -> String {
    match (target, ratio) {
        (Target::None, _) => "(context)".into(),
        (Target::RatioAtMost(max), Some(r)) if r <= max => format!("<= {max:.2}x: met"),
        (Target::RatioAtMost(max), _) => format!("<= {max:.2}x: MISSED"),
    }
}

pub fn ms(d: f64) -> String {
    format!("{:.1} ms", d * 1000.0)
}

pub fn s(d: f64) -> String {
    format!("{d:.2} s")
}

//! Benchmark (not a test): `streams plan` on a plan of 200 streams against a repository of
//! 100,000 tracked files. Target: well under one second end to end.
//!
//! Run with `cargo bench --bench plan`. It prints the median of several runs of
//!
//! - the baseline, `git ls-tree -r` of the same commit (listing the files is the least any
//!   ownership check must do), measured in the same run so the ratio means something on any
//!   machine;
//! - `streams plan` end to end (the release binary: git version check, repository discovery,
//!   base resolution, listing, validation, analysis, output);
//! - the validation alone, in process (parse, rules, one GlobSet pass over every tracked file,
//!   and the pairwise overlap check of every pattern).
//!
//! The repository is built without a checkout: one blob, an index written with
//! `git update-index --index-info` pointing every path at it, then `write-tree` and `commit-tree`.
//!
//! Then how validation grows with the number of patterns: plans of 1,000 to 20,000 patterns
//! (four per stream, each matching one tracked file), validated in process. It prints each
//! size's time per pattern and its growth against 1,000 (linear is 1.0x per pattern; checking
//! every pair of patterns made it grow with the square, 20,000 taking minutes). Target: 20,000
//! patterns in under 2 s. `cargo bench --bench plan -- growth` runs this part alone.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::Sandbox;
use streams::plan::{self, Repository};

const STREAMS: usize = 200;
/// Per stream: module files, test files, and one doc page.
const MODULE_FILES: usize = 399;
const TEST_FILES: usize = 99;
/// Files no stream owns, so the total is exactly 100,000.
const TOOL_FILES: usize = 100_000 - STREAMS * (MODULE_FILES + TEST_FILES + 1) - 2;
const RUNS: usize = 7;

fn main() {
    if std::env::args().skip(1).any(|arg| arg == "growth") {
        growth();
        return;
    }
    repository_of_100k();
    growth();
}

/// The number of patterns of each plan [`growth`] validates.
const GROWTH_SIZES: [usize; 5] = [1_000, 2_000, 5_000, 10_000, 20_000];

/// Validation time against the number of patterns: per pattern, it should stay about flat.
fn growth() {
    println!("plan validation against the number of patterns (median of {RUNS} runs each)");
    let mut first: Option<f64> = None;
    let mut largest = Duration::ZERO;
    for patterns in GROWTH_SIZES {
        let streams = patterns / 4;
        let mut text = String::from(
            "[plan]\nname = \"growth\"\nbase = \"main\"\nagent = [\"true\", \"{prompt}\"]\n",
        );
        let mut files = Vec::with_capacity(patterns);
        for s in 0..streams {
            text.push_str(&format!(
                "\n[[stream]]\nname = \"s{s}\"\nowns = [\"s{s}/**\", \"tests/s{s}/*.rs\", \"docs/s{s}.md\", \"ci/s{s}.{{yml,yaml}}\"]\ntasks = [\"t\"]\n"
            ));
            files.push(format!("s{s}/src/lib.rs"));
            files.push(format!("tests/s{s}/case.rs"));
            files.push(format!("docs/s{s}.md"));
            files.push(format!("ci/s{s}.yml"));
        }
        files.sort();
        let mut facts = Facts {
            commit: "0".repeat(40),
            files,
        };
        let took = median(|| {
            let checked = plan::check(&text, &mut facts).expect("valid plan");
            assert_eq!(checked.ownership.tracked_files, patterns);
        });
        let per_pattern = took.as_secs_f64() / patterns as f64;
        let growth = per_pattern / *first.get_or_insert(per_pattern);
        println!(
            "  {:6} patterns ({:4} KB)  {:8.1} ms   {:6.1} µs per pattern   {growth:4.2}x the per-pattern time of 1,000",
            patterns,
            text.len() / 1024,
            took.as_secs_f64() * 1000.0,
            per_pattern * 1e6,
        );
        largest = took;
    }
    let verdict = if largest < Duration::from_secs(2) {
        "met"
    } else {
        "MISSED"
    };
    println!("  target (20,000 patterns under 2 s): {verdict}");
}

/// `streams plan` on 200 streams and 100,000 tracked files, against `git ls-tree`.
fn repository_of_100k() {
    let sb = Sandbox::new("plan");
    let root = sb.dir("repo");

    let started = Instant::now();
    let files = file_list();
    let commit = build_repository(&sb, &root, &files);
    let plan_text = plan_text();
    std::fs::write(root.join("streams.toml"), &plan_text).unwrap();
    // Three `owns` patterns per stream, two `shared`.
    let patterns = STREAMS * 3 + 2;
    println!(
        "streams plan benchmark: {STREAMS} streams, {patterns} patterns, {} tracked files \
         (repository built in {:.1}s)",
        files.len(),
        started.elapsed().as_secs_f64()
    );

    // Warm the page cache and check that the plan is valid before timing anything.
    let out = streams(&sb, &root).output().unwrap();
    assert!(
        out.status.success(),
        "the benchmark plan is invalid:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["ownership"]["tracked_files"], files.len());

    let baseline = median(|| {
        let out = git(&sb, &root)
            .args(["ls-tree", "-r", "-z", "--name-only", "--full-tree", &commit])
            .output()
            .unwrap();
        assert!(out.status.success());
    });
    let end_to_end = median(|| {
        let out = streams(&sb, &root).output().unwrap();
        assert!(out.status.success());
    });
    let mut facts = Facts {
        commit: commit.clone(),
        files: files.clone(),
    };
    let in_process = median(|| {
        let checked = plan::check(&plan_text, &mut facts).expect("valid plan");
        assert_eq!(checked.ownership.tracked_files, files.len());
    });

    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!("  (median of {RUNS} runs each)");
    println!("  git ls-tree -r (baseline)     {:8.1} ms", ms(baseline));
    println!(
        "  streams plan, end to end      {:8.1} ms   {:.2}x baseline",
        ms(end_to_end),
        end_to_end.as_secs_f64() / baseline.as_secs_f64()
    );
    println!(
        "  validation alone, in process  {:8.1} ms   {:.2}x baseline",
        ms(in_process),
        in_process.as_secs_f64() / baseline.as_secs_f64()
    );
    let verdict = if end_to_end < Duration::from_millis(500) {
        "met"
    } else if end_to_end < Duration::from_secs(1) {
        "under 1 s, but not well under"
    } else {
        "MISSED"
    };
    println!("  target (well under 1 s end to end): {verdict}");
}

/// The repository as the validator sees it, with the answers already known.
struct Facts {
    commit: String,
    files: Vec<String>,
}

impl Repository for Facts {
    type Error = std::convert::Infallible;

    fn root(&self) -> Option<String> {
        None
    }

    fn resolve(&mut self, _rev: &str) -> Result<Option<String>, Self::Error> {
        Ok(Some(self.commit.clone()))
    }

    fn tracked_files(&mut self, _commit: &str) -> Result<Vec<String>, Self::Error> {
        Ok(self.files.clone())
    }

    fn prompt_file_exists(&mut self, _path: &str) -> bool {
        true
    }

    fn agent_program(
        &mut self,
        _program: &str,
        _commit: &str,
        _path: Option<&str>,
    ) -> Result<streams::plan::ProgramCheck, Self::Error> {
        Ok(streams::plan::ProgramCheck::Found)
    }
}

fn median(mut run: impl FnMut()) -> Duration {
    let mut times: Vec<Duration> = (0..RUNS)
        .map(|_| {
            let start = Instant::now();
            run();
            start.elapsed()
        })
        .collect();
    times.sort();
    times[RUNS / 2]
}

/// 100,000 paths: for each stream a module with nested directories, its tests and a doc page;
/// tools nobody owns; two shared files at the root.
fn file_list() -> Vec<String> {
    let mut files = Vec::with_capacity(100_000);
    for s in 0..STREAMS {
        for f in 0..MODULE_FILES {
            files.push(format!("mod{s:03}/src/part{}/file{f}.rs", f % 7));
        }
        for f in 0..TEST_FILES {
            files.push(format!("tests/mod{s:03}/case{f}.rs"));
        }
        files.push(format!("docs/mod{s:03}.md"));
    }
    for f in 0..TOOL_FILES {
        files.push(format!("tools/script{f}.sh"));
    }
    files.push("Cargo.lock".into());
    files.push("README.md".into());
    files.sort();
    files
}

/// 200 streams, each owning its module, its tests and its doc page; chains of dependencies
/// ten streams long; a couple of shared files.
fn plan_text() -> String {
    let mut text = String::from(
        "[plan]\nname = \"bench\"\nbase = \"main\"\njobs = 8\nagent = [\"true\", \"{prompt}\"]\nshared = [\"Cargo.lock\", \"README.md\"]\n",
    );
    for s in 0..STREAMS {
        text.push_str(&format!(
            "\n[[stream]]\nname = \"mod{s:03}\"\nowns = [\"mod{s:03}/**\", \"tests/mod{s:03}/*.rs\", \"docs/mod{s:03}.md\"]\n"
        ));
        if s % 10 != 0 {
            text.push_str(&format!("depends_on = [\"mod{:03}\"]\n", s - 1));
        }
        text.push_str(&format!(
            "tasks = [\"Refactor module {s}\", \"Test module {s}\"]\nestimate = {}\n",
            1 + s % 4
        ));
    }
    text
}

fn git(sb: &Sandbox, dir: &Path) -> Command {
    sb.command("git", dir)
}

fn streams(sb: &Sandbox, root: &Path) -> Command {
    let mut cmd = sb.command(common::streams_bin(), root);
    cmd.args(["plan", "--json"]);
    cmd
}

fn run(cmd: &mut Command, stdin: Option<&[u8]>) -> String {
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("git runs");
    if let Some(input) = stdin {
        child.stdin.take().unwrap().write_all(input).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// A repository whose `main` has every path in `files`, all pointing at one blob; no checkout.
fn build_repository(sb: &Sandbox, root: &Path, files: &[String]) -> String {
    run(git(sb, root).args(["init", "-q", "-b", "main"]), None);
    let blob = run(
        git(sb, root).args(["hash-object", "-w", "--stdin"]),
        Some(b"content\n"),
    );
    let index: PathBuf = root.join(".git/bench-index");
    let mut info = String::with_capacity(files.len() * 80);
    for path in files {
        info.push_str(&format!("100644 {blob}\t{path}\n"));
    }
    run(
        git(sb, root)
            .env("GIT_INDEX_FILE", &index)
            .args(["update-index", "--index-info"]),
        Some(info.as_bytes()),
    );
    let tree = run(
        git(sb, root)
            .env("GIT_INDEX_FILE", &index)
            .args(["write-tree"]),
        None,
    );
    let commit = run(
        git(sb, root).args(["commit-tree", &tree, "-m", "100,000 files"]),
        None,
    );
    run(
        git(sb, root).args(["update-ref", "refs/heads/main", &commit]),
        None,
    );
    std::fs::remove_file(index).unwrap();
    commit
}

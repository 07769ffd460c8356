//! What the integration did: the checks and gates run, flaky gate verdicts, bisections of red
//! batches, the units of work waiting in the queue and those that landed.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::ids::Oid;

/// One run of a stream's `check`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CheckRun {
    pub stream: String,
    /// One-based.
    pub task: usize,
    /// The stream's commit it ran on.
    pub commit: Oid,
    /// That commit's tree (absent in state files written before it was recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tree: Option<Oid>,
    pub command: Vec<String>,
    pub passed: bool,
    /// How it ended, in words ("exited with code 1", "timed out after 5s").
    pub result: String,
    pub ms: u64,
    pub log: PathBuf,
    pub at: u64,
}

/// One run of the plan's `gate` on a candidate integration result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GateRun {
    pub command: Vec<String>,
    /// The integration tip the candidate was built on.
    pub tip: Oid,
    /// The candidate commit and its tree (results are looked up by tree: the same files give
    /// the same verdict, whatever the commit dates).
    pub commit: Oid,
    pub tree: Oid,
    /// The streams added on top of `tip`, in order (empty: the tip alone).
    pub streams: Vec<String>,
    pub passed: bool,
    pub result: String,
    pub ms: u64,
    pub log: PathBuf,
    pub at: u64,
    /// Run to check a verdict again (a red batch before it is bisected, the green subset
    /// bisection found before it lands), not taken from an earlier run on the same tree.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub again: bool,
}

/// A gate whose verdict flipped on the same candidate tree: flaky. No stream is blamed for it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FlakyGate {
    /// The streams on top of the tip in that candidate.
    pub streams: Vec<String>,
    pub commit: Oid,
    pub tree: Oid,
    /// Each run on that tree, in order: whether it passed, how it ended, and its log (kept).
    pub runs: Vec<FlakyRun>,
    /// What the run did about it: `landed` (the latest verdict passed) or `stopped` (a green
    /// subset turned red when checked again: nothing of the batch was integrated).
    pub outcome: String,
    pub at: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FlakyRun {
    pub passed: bool,
    pub result: String,
    pub log: PathBuf,
}

/// A unit that landed on the integration branch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Landing {
    pub stream: String,
    /// Zero-based task indices, inclusive.
    pub first: usize,
    pub last: usize,
    /// The integration tip once it landed.
    pub tip: Oid,
    pub at: u64,
    /// It was parked on a conflict before it landed (a person's resolution, or the conflict
    /// went away by the time they ran `streams continue`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub parked: bool,
    /// The resolver agent whose resolution (a commit of its own) it landed with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolver: Option<String>,
}

/// A red batch bisected to the stream that turns the gate red.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Bisection {
    pub culprit: String,
    /// The batch, in order, and the tip it was built on.
    pub batch: Vec<String>,
    pub tip: Oid,
    /// The largest green prefix (the culprit is added to it); `tip` when it is empty.
    pub green: Oid,
    /// Each prefix gated, as the streams it holds, and its result.
    pub steps: Vec<(Vec<String>, bool)>,
}

/// A stream's work ready to be integrated: tasks `first..=last`, whose commits are the
/// first-parent chain from `from` (exclusive) to `to` (inclusive).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncUnit {
    pub stream: usize,
    /// Zero-based task indices, inclusive.
    pub first: usize,
    pub last: usize,
    pub from: Oid,
    pub to: Oid,
}

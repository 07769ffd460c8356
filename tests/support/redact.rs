//! The one normaliser of what the tests snapshot: what varies from one run to the next (run ids,
//! durations, pids, commit ids) becomes a stable marker, so a snapshot changes only when what a
//! person reads changes. Temporary paths are known only to the repository that made them:
//! `common::CmdOutput` replaces them (`[REPO]`, `[HOME]`, `[TMP]`, `[AGENTS]`) before this runs.

use crate::common::CmdOutput;

/// Durations, run ids and pids vary between runs; replace them with stable markers.
pub fn redact_volatile(text: &str) -> String {
    use std::sync::OnceLock;
    static FILTERS: OnceLock<Vec<(regex_lite::Regex, &'static str)>> = OnceLock::new();
    let filters = FILTERS.get_or_init(|| {
        [
            // Run ids: 20260101-000000-1a2b
            (r"\b\d{8}-\d{6}-[0-9a-f]{4}\b", "[RUN]"),
            // Durations: 12.3s, 0.1s, 1m02s, 250ms. In a right-aligned column the padding before
            // one depends on its length: it goes too (the column's two-space gap stays).
            (r"  +\d+m\d{2}s\b", "  [TIME]"),
            (r"  +\d+(\.\d+)?m?s\b", "  [TIME]"),
            (r"\b\d+m\d{2}s\b", "[TIME]"),
            (r"\b\d+(\.\d+)?m?s\b", "[TIME]"),
            // Speedup factors: 1.9x
            (r"\b\d+\.\d+x\b", "[N]x"),
            (r"\bpid \d+\b", "pid [PID]"),
        ]
        .into_iter()
        .map(|(re, to)| (regex_lite::Regex::new(re).unwrap(), to))
        .collect()
    });
    let mut text = text.to_string();
    for (re, to) in filters {
        text = re.replace_all(&text, *to).into_owned();
    }
    text
}

/// Turns the outputs of one scenario into snapshot text: paths, run ids, times and pids redacted
/// as `CmdOutput` does, and commit ids (7 to 40 hex digits) replaced by `[OID1]`, `[OID2]`, ... in
/// order of first appearance across every output of the scenario, so the same commit keeps its
/// label from one command to the next (the base of a run, then in `status`, then in `clean`).
#[derive(Default)]
pub struct Redactor {
    oids: Vec<String>,
}

impl Redactor {
    pub fn new() -> Self {
        Self::default()
    }

    /// The whole output (exit code, stdout, stderr), fully redacted.
    pub fn output(&mut self, out: &CmdOutput) -> String {
        self.text(&out.to_string())
    }

    /// Any text (a report file, a README), fully redacted. Paths are not known here: redact
    /// them first (as `CmdOutput` does).
    pub fn text(&mut self, text: &str) -> String {
        use std::sync::OnceLock;
        static OID: OnceLock<regex_lite::Regex> = OnceLock::new();
        let oid = OID.get_or_init(|| regex_lite::Regex::new(r"\b[0-9a-f]{7,40}\b").unwrap());
        let text = redact_volatile(text);
        oid.replace_all(&text, |caps: &regex_lite::Captures<'_>| {
            let hex = &caps[0];
            // A number is not a commit id (an oid of only digits is rare enough to accept).
            if hex.bytes().all(|b| b.is_ascii_digit()) {
                return hex.to_string();
            }
            // A short id and the full id of the same commit share one label.
            let index = match self
                .oids
                .iter()
                .position(|known| known.starts_with(hex) || hex.starts_with(known.as_str()))
            {
                Some(i) => {
                    if hex.len() > self.oids[i].len() {
                        self.oids[i] = hex.to_string();
                    }
                    i
                }
                None => {
                    self.oids.push(hex.to_string());
                    self.oids.len() - 1
                }
            };
            format!("[OID{}]", index + 1)
        })
        .into_owned()
    }
}

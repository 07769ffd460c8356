//! What an agent has used so far, read line by line from its output as it streams: what a
//! per-task budget is checked against the moment a line arrives, and what a run that ended
//! without its final report is recorded with ("unknown: at least this much").
//!
//! A preset's CLI is read by its own rules (`docs/agents.md`, "Usage"): its final event, when
//! it comes, replaces everything seen before it (tokens are counted once, never the sum of the
//! message events and the result); before it, Claude Code's and Qwen Code's `assistant` events
//! give each message's prompt figures (their output figure is the stream's first, 1), Codex's
//! `turn.completed` the thread's running total, aider's `Tokens:` lines one exchange each.
//!
//! Any other program reports in the generic form: a JSON line on stdout,
//! `{"streams_usage": {"input_tokens": 1200, "output_tokens": 300, "cost_usd": 0.01}}`, each
//! one the run's total so far (the last one counts), or the same object written to the file
//! its `{usage_file}` placeholder names (read when it ends; it wins over the lines).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::agent::events;
use crate::agent::{Cli, Usage};

/// The key of the generic form's JSON line.
pub const GENERIC_KEY: &str = "streams_usage";

/// Usage read line by line.
#[derive(Clone, Debug, Default)]
pub struct Meter {
    cli: Option<Cli>,
    /// For a CLI whose figures are a session's running total: what the session had reported
    /// before this run.
    before: Option<Usage>,
    /// What the lines have shown so far.
    seen: Usage,
    /// The messages already counted (Claude's events repeat a message's id per block).
    messages: BTreeSet<String>,
    /// The output figure each message counted in `seen` had in its event (Claude Code: the
    /// stream's first, 1), by message id: what a transcript's final figure replaces.
    seen_outputs: BTreeMap<String, u64>,
    /// The prompt figures of the main conversation's messages (not a subagent's), counted on
    /// after the final report too: the least an honest final report can say.
    main_messages: Usage,
    /// The final report came: `seen` is it.
    reported: bool,
    /// A partial line carried over to the next chunk.
    pending: String,
}

impl Meter {
    /// A meter for `cli`'s output (`None`: the generic form). `before`: what the session this
    /// run continues had reported, for a CLI that reports running totals.
    pub fn new(cli: Option<Cli>, before: Option<Usage>) -> Meter {
        Meter {
            cli,
            before,
            ..Meter::default()
        }
    }

    /// Reads a chunk of output (lines may be cut anywhere). True when the usage changed.
    pub fn chunk(&mut self, bytes: &[u8]) -> bool {
        self.pending.push_str(&String::from_utf8_lossy(bytes));
        let mut changed = false;
        while let Some(end) = self.pending.find('\n') {
            let line: String = self.pending.drain(..=end).collect();
            changed |= self.line(line.trim_end());
        }
        // A line longer than any event is not one: drop it rather than grow without end.
        if self.pending.len() > 16 * 1024 * 1024 {
            self.pending.clear();
        }
        changed
    }

    /// Reads one line. True when the usage changed.
    pub fn line(&mut self, line: &str) -> bool {
        let line = line.trim();
        if !line.starts_with('{') && !line.starts_with("Tokens: ") {
            return false;
        }
        let Some(cli) = self.cli else {
            return match generic_line(line) {
                Some(usage) => {
                    self.seen = usage;
                    self.reported = true;
                    true
                }
                None => false,
            };
        };
        match cli {
            Cli::Claude | Cli::Qwen => self.claude_line(cli, line),
            Cli::Codex => match events::observe(cli, line, None, 0).usage {
                Some(total) => {
                    self.seen = match &self.before {
                        Some(before) => total.since(before),
                        None => total,
                    };
                    self.reported = true;
                    true
                }
                None => false,
            },
            Cli::Aider => match events::observe(cli, line, None, 0).usage {
                Some(exchange) => {
                    self.seen = self.seen.add(&exchange);
                    self.seen.turns = Some(self.seen.turns.unwrap_or(0) + 1);
                    self.reported = true;
                    true
                }
                None => false,
            },
            Cli::Gemini => match events::observe(cli, line, None, 0).usage {
                Some(usage) => {
                    self.seen = usage;
                    self.reported = true;
                    true
                }
                None => false,
            },
        }
    }

    fn claude_line(&mut self, cli: Cli, line: &str) -> bool {
        let Ok(event) = serde_json::from_str::<Value>(line) else {
            return false;
        };
        match event["type"].as_str() {
            Some("result") => match events::observe(cli, line, None, 0).usage {
                Some(usage) => {
                    self.seen = usage;
                    self.reported = true;
                    true
                }
                None => false,
            },
            Some("assistant") => {
                let message = &event["message"];
                let id = message["id"]
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| format!("#{}", self.messages.len()));
                if !self.messages.insert(id.clone()) {
                    return false;
                }
                let u = &message["usage"];
                let n = |k: &str| u[k].as_u64().unwrap_or(0);
                let (read, write) = (
                    n("cache_read_input_tokens"),
                    n("cache_creation_input_tokens"),
                );
                let input = match cli {
                    Cli::Qwen => n("input_tokens").saturating_sub(read + write),
                    _ => n("input_tokens"),
                };
                let message_usage = Usage {
                    input,
                    cache_read: read,
                    cache_write: write,
                    output: n("output_tokens"),
                    turns: Some(1),
                    models: message["model"]
                        .as_str()
                        .filter(|m| *m != "<synthetic>")
                        .map(|m| vec![m.to_string()])
                        .unwrap_or_default(),
                    ..Usage::default()
                };
                if event["parent_tool_use_id"].is_null() {
                    self.main_messages = self.main_messages.add(&message_usage);
                }
                if self.reported {
                    return false;
                }
                self.seen_outputs.insert(id, message_usage.output);
                self.seen = self.seen.add(&message_usage);
                true
            }
            _ => false,
        }
    }

    /// What the output has shown so far.
    pub fn so_far(&self) -> &Usage {
        &self.seen
    }

    /// Whether anything was seen at all.
    pub fn saw_any(&self) -> bool {
        self.reported || !self.messages.is_empty()
    }

    /// The output tokens of the messages counted before the final report, each at its final
    /// figure where Claude Code's session transcript has it (else its event's), by that transcript (`projects/<dir>/<session>.jsonl` in its
    /// configuration folder: one line per message block, each with the message's final usage;
    /// a subagent's lines are `isSidechain`). Messages of earlier runs of the session are in it
    /// too: only those this output showed count.
    pub fn transcript_output(&self, transcript: &str) -> u64 {
        let mut finals: BTreeMap<String, u64> = BTreeMap::new();
        for line in transcript.lines() {
            let Ok(entry) = serde_json::from_str::<Value>(line) else {
                continue;
            };
            if entry["type"] != "assistant" || entry["isSidechain"] == true {
                continue;
            }
            let message = &entry["message"];
            if let (Some(id), Some(output)) = (
                message["id"].as_str(),
                message["usage"]["output_tokens"].as_u64(),
            ) {
                finals.insert(id.to_string(), output);
            }
        }
        self.seen_outputs
            .iter()
            .map(|(id, seen)| finals.get(id).map_or(*seen, |last| (*last).max(*seen)))
            .sum()
    }

    /// Claude Code's final report says less than its own message events did: interrupted
    /// (SIGINT) just as a message ended, Claude Code 2.1.197 can print a `result` with
    /// `error_during_execution` and zero usage although the model had answered (seen in
    /// `agents::scenes`). Such a report is no report: what was seen is kept instead, as the
    /// least the run used. Only the prompt figures are compared (the message events' output
    /// figure is the stream's first, not the message's).
    pub fn short_report(&self) -> Option<Usage> {
        if !self.reported || self.cli != Some(Cli::Claude) {
            return None;
        }
        let (report, main) = (&self.seen, &self.main_messages);
        let short = report.input < main.input
            || report.cache_read < main.cache_read
            || report.cache_write < main.cache_write;
        short.then(|| report.at_least(main))
    }
}

/// What a preset's run used, given its final report (`None`: it ended without one) and its
/// output: `(usage, seen)`, exactly one of them set when anything was seen. `seen` is the least
/// the run used when its report is missing or short of its own message events
/// ([`Meter::short_report`]): "unknown", never zero; for Claude Code with each message's output
/// at its final figure where its session's transcript has it ([`Meter::transcript_output`]).
/// `before`: what the session this run continues had reported, for a CLI that reports running
/// totals. `output` and `transcript` are read only when needed.
pub fn settle(
    cli: Cli,
    report: Option<Usage>,
    before: Option<Usage>,
    output: impl FnOnce() -> String,
    transcript: impl FnOnce() -> Option<String>,
) -> (Option<Usage>, Option<Usage>) {
    if report.is_some() && cli != Cli::Claude {
        return (report, None);
    }
    let mut meter = Meter::new(Some(cli), before);
    for line in output().lines() {
        meter.line(line);
    }
    let least = match report {
        None => meter.saw_any().then(|| meter.so_far().clone()),
        Some(report) => match meter.short_report() {
            Some(least) => Some(least),
            None => return (Some(report), None),
        },
    };
    let least = least.map(|mut least| {
        if cli == Cli::Claude
            && let Some(output) = transcript().map(|t| meter.transcript_output(&t))
        {
            least.output = least.output.max(output);
        }
        least
    });
    (None, least)
}

/// What an output has shown so far, whichever agent printed it (for `status`, which knows the
/// run's state, not its agents): each preset's rules, then the generic form; the first that
/// sees anything. `None`: nothing was reported yet.
pub fn read_any(output: &str) -> Option<Usage> {
    let clis = [
        Some(Cli::Claude),
        Some(Cli::Codex),
        Some(Cli::Gemini),
        Some(Cli::Aider),
        None,
    ];
    clis.into_iter().find_map(|cli| {
        let mut meter = Meter::new(cli, None);
        for line in output.lines() {
            meter.line(line);
        }
        meter.saw_any().then(|| meter.so_far().clone())
    })
}

/// The usage a generic JSON line reports: `{"streams_usage": {...}}`.
pub fn generic_line(line: &str) -> Option<Usage> {
    if !line.contains(GENERIC_KEY) {
        return None;
    }
    let value: Value = serde_json::from_str(line).ok()?;
    generic_object(&value[GENERIC_KEY])
}

/// The usage of the generic form's object; the file form may leave out the `streams_usage`
/// wrapper.
pub fn generic_file(text: &str) -> Option<Usage> {
    let value: Value = serde_json::from_str(text.trim()).ok()?;
    if value.get(GENERIC_KEY).is_some() {
        generic_object(&value[GENERIC_KEY])
    } else {
        generic_object(&value)
    }
}

/// `input_tokens` (uncached), `output_tokens`, `cache_read_tokens`, `cache_write_tokens`,
/// `cost_usd`, `turns`, `model` or `models`.
fn generic_object(value: &Value) -> Option<Usage> {
    let object = value.as_object()?;
    let n = |k: &str| object.get(k).and_then(Value::as_u64).unwrap_or(0);
    let mut models: Vec<String> = match object.get("models") {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
        _ => Vec::new(),
    };
    if let Some(model) = object.get("model").and_then(Value::as_str) {
        models.insert(0, model.to_string());
    }
    Some(Usage {
        input: n("input_tokens"),
        output: n("output_tokens"),
        cache_read: n("cache_read_tokens"),
        cache_write: n("cache_write_tokens"),
        cost_usd: object.get("cost_usd").and_then(Value::as_f64),
        turns: object
            .get("turns")
            .and_then(Value::as_u64)
            .map(|t| t as u32),
        models,
        estimated: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generic_lines_are_running_totals_and_lines_may_be_cut() {
        let mut meter = Meter::new(None, None);
        assert!(!meter.chunk(b"hello\n{\"streams_usage\": {\"input_tok"));
        assert!(meter.chunk(b"ens\": 100, \"output_tokens\": 20, \"model\": \"m\"}}\n"));
        assert!(meter.chunk(b"{\"streams_usage\": {\"input_tokens\": 150, \"output_tokens\": 30, \"cost_usd\": 0.5}}\n"));
        let u = meter.so_far();
        assert_eq!((u.input, u.output, u.cost_usd), (150, 30, Some(0.5)));
        assert_eq!(
            generic_file("{\"input_tokens\": 7, \"turns\": 2}").map(|u| (u.input, u.turns)),
            Some((7, Some(2)))
        );
    }

    #[test]
    fn claude_messages_count_once_and_the_result_replaces_them() {
        let mut meter = Meter::new(Some(Cli::Claude), None);
        let assistant = r#"{"type":"assistant","message":{"id":"m1","model":"claude-sonnet-4-5","content":[],"usage":{"input_tokens":1000,"cache_read_input_tokens":300,"cache_creation_input_tokens":40,"output_tokens":1}}}"#;
        meter.line(assistant);
        meter.line(assistant);
        assert_eq!(meter.so_far().input, 1000);
        assert_eq!(meter.so_far().turns, Some(1));
        meter.line(r#"{"type":"result","subtype":"success","num_turns":3,"total_cost_usd":0.01209,"usage":{"input_tokens":3500,"output_tokens":90,"cache_read_input_tokens":300,"cache_creation_input_tokens":40}}"#);
        let u = meter.so_far();
        assert_eq!((u.input, u.output, u.cost_usd), (3500, 90, Some(0.01209)));
    }

    #[test]
    fn a_claude_report_short_of_its_own_messages_is_no_report() {
        let assistant = |id: &str, parent: &str| {
            format!(
                r#"{{"type":"assistant","parent_tool_use_id":{parent},"message":{{"id":"{id}","model":"claude-sonnet-4-5","content":[],"usage":{{"input_tokens":1000,"cache_read_input_tokens":300,"cache_creation_input_tokens":40,"output_tokens":1}}}}}}"#
            )
        };
        let output = |result: &str| format!("{}\n{result}\n", assistant("m1", "null"));
        // Interrupted as the message ended: a result that says nothing was used.
        let zero = r#"{"type":"result","subtype":"error_during_execution","is_error":true,"num_turns":1,"total_cost_usd":0,"usage":{"input_tokens":0,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":0}}"#;
        let report = Some(Usage::default());
        let (usage, seen) = settle(Cli::Claude, report, None, || output(zero), || None);
        assert_eq!(usage, None);
        let seen = seen.unwrap();
        assert_eq!(
            (seen.input, seen.cache_read, seen.cache_write, seen.output),
            (1000, 300, 40, 1)
        );
        assert_eq!((seen.cost_usd, seen.turns), (None, Some(1)));
        // A whole report is the usage, even when it leaves out a subagent's messages.
        let whole = r#"{"type":"result","subtype":"error_during_execution","num_turns":2,"total_cost_usd":0.004,"usage":{"input_tokens":1000,"cache_creation_input_tokens":40,"cache_read_input_tokens":300,"output_tokens":50}}"#;
        let text = format!("{}{}\n", output(""), assistant("sub1", "\"toolu_1\""));
        let text = text.replace("\n\n", "\n") + whole + "\n";
        let reported = Usage {
            input: 1000,
            output: 50,
            ..Usage::default()
        };
        let (usage, seen) = settle(Cli::Claude, Some(reported.clone()), None, || text, || None);
        assert_eq!((usage, seen), (Some(reported), None));
    }

    #[test]
    fn a_claude_run_without_its_result_takes_each_messages_output_from_its_transcript() {
        let event = |id: &str| {
            format!(
                r#"{{"type":"assistant","parent_tool_use_id":null,"message":{{"id":"{id}","model":"claude-sonnet-4-5","content":[],"usage":{{"input_tokens":1000,"cache_read_input_tokens":0,"cache_creation_input_tokens":0,"output_tokens":1}}}}}}"#
            )
        };
        let line = |id: &str, output: u64, sidechain: bool| {
            format!(
                r#"{{"isSidechain":{sidechain},"type":"assistant","message":{{"id":"{id}","usage":{{"input_tokens":1000,"output_tokens":{output}}}}}}}"#
            )
        };
        // m0 is an earlier run's (the session resumed), m1 this run's, m2 only in its events
        // (interrupted before the transcript had it); a subagent's line does not count.
        let transcript = [
            line("m0", 900, false),
            line("m1", 50, false),
            line("m1", 50, false),
            line("s1", 700, true),
        ]
        .join("\n");
        let output = format!("{}\n{}\n", event("m1"), event("m2"));
        let (usage, seen) = settle(Cli::Claude, None, None, || output, || Some(transcript));
        assert_eq!(usage, None);
        let seen = seen.unwrap();
        assert_eq!((seen.input, seen.output, seen.turns), (2000, 51, Some(2)));
    }
}

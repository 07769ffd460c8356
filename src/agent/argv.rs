//! An agent's command line: the placeholders it may use and the argv with them filled in.
//!
//! The plan's validation refuses a placeholder not in [`PLACEHOLDERS`]; a run and `run
//! --dry-run` fill them in with [`Placeholders::argv`] and [`Placeholders::argv_shown`], so the
//! dry run shows exactly what a run would execute.

/// The placeholders an `agent` argv may use.
pub const PLACEHOLDERS: &[&str] = &[
    "prompt",
    "prompt_file",
    "stream",
    "task",
    "task_index",
    "worktree",
    "slot",
    "port",
    "check_output",
    "check_output_file",
    "usage_file",
];

/// Stands for the prompt in an argv shown to a person, where the whole prompt would not fit.
const PROMPT_MARK: &str = "\u{0}PROMPT\u{0}";

/// Values for the placeholders in an agent's argv.
#[derive(Clone, Copy)]
pub struct Placeholders<'a> {
    pub prompt: &'a str,
    pub prompt_file: &'a str,
    pub stream: &'a str,
    pub task: &'a str,
    pub task_index: usize,
    pub worktree: &'a str,
    /// `{slot}` and `{port}`; `None` leaves them as written (a dry run does not know them).
    pub slot: Option<&'a str>,
    pub port: Option<&'a str>,
    /// The tail of a failed check's output and its log, when the agent is fixing one (empty
    /// otherwise).
    pub check_output: &'a str,
    pub check_output_file: &'a str,
    /// `{usage_file}`: where a program that is not a preset may write its usage (the generic
    /// form of `ledger::meter`); `None` leaves it as written (a dry run).
    pub usage_file: Option<&'a str>,
}

impl Placeholders<'_> {
    /// The argv to run: the agent command with every placeholder filled in.
    pub fn argv(&self, agent: &[String]) -> Vec<String> {
        expand(agent, self)
    }

    /// The argv as a person is shown it: `{prompt}` stays where the prompt would go.
    pub fn argv_shown(&self, agent: &[String]) -> Vec<String> {
        let marked = Placeholders {
            prompt: PROMPT_MARK,
            ..*self
        };
        expand(agent, &marked)
            .into_iter()
            .map(|a| a.replace(PROMPT_MARK, "{prompt}"))
            .collect()
    }
}

/// Replaces `{prompt}`, `{prompt_file}`, `{stream}`, `{task}`, `{task_index}`, `{worktree}`,
/// `{slot}` and `{port}` in
/// each argument, in one pass (a prompt that itself contains `{stream}` stays as written).
/// Anything else in braces is left alone, so JSON arguments stay intact.
pub fn expand(argv: &[String], values: &Placeholders) -> Vec<String> {
    let index = values.task_index.to_string();
    let lookup = |name: &str| -> Option<&str> {
        Some(match name {
            "prompt" => values.prompt,
            "prompt_file" => values.prompt_file,
            "stream" => values.stream,
            "task" => values.task,
            "task_index" => &index,
            "worktree" => values.worktree,
            "slot" => values.slot?,
            "port" => values.port?,
            "check_output" => values.check_output,
            "check_output_file" => values.check_output_file,
            "usage_file" => values.usage_file?,
            _ => return None,
        })
    };
    argv.iter()
        .map(|arg| {
            let mut out = String::with_capacity(arg.len());
            let mut rest = arg.as_str();
            while let Some(open) = rest.find('{') {
                out.push_str(&rest[..open]);
                let after = &rest[open + 1..];
                match after
                    .find('}')
                    .and_then(|close| lookup(&after[..close]).map(|v| (close, v)))
                {
                    Some((close, value)) => {
                        out.push_str(value);
                        rest = &after[close + 1..];
                    }
                    None => {
                        out.push('{');
                        rest = after;
                    }
                }
            }
            out.push_str(rest);
            out
        })
        .collect()
}

/// The `{name}` placeholders in an argument.
pub fn placeholders_in(arg: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let bytes = arg.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'{' {
            let rest = &arg[i + 1..];
            let len = rest
                .bytes()
                .take_while(|b| b.is_ascii_lowercase() || *b == b'_')
                .count();
            if len > 0 && rest.as_bytes().get(len) == Some(&b'}') {
                out.push(&rest[..len]);
                i += len + 2;
                continue;
            }
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values() -> Placeholders<'static> {
        Placeholders {
            prompt: "say {stream}",
            prompt_file: "/p.md",
            stream: "api",
            task: "t",
            task_index: 2,
            worktree: "/wt",
            slot: Some("3"),
            port: None,
            check_output: "",
            check_output_file: "",
            usage_file: None,
        }
    }

    #[test]
    fn placeholders_expand_once() {
        let argv: Vec<String> = [
            "agent",
            "-p",
            "{prompt}",
            "--in={worktree}",
            "{\"json\": 1}",
            "{task_index}{stream}",
            "--slot={slot}",
            "--port={port}",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(
            expand(&argv, &values()),
            vec![
                "agent",
                "-p",
                "say {stream}",
                "--in=/wt",
                "{\"json\": 1}",
                "2api",
                "--slot=3",
                "--port={port}",
            ]
        );
    }

    #[test]
    fn every_placeholder_the_plan_accepts_is_filled_in() {
        let values = Placeholders {
            port: Some("8000"),
            usage_file: Some("/tmp/usage.json"),
            ..values()
        };
        for name in PLACEHOLDERS {
            let arg = format!("{{{name}}}");
            assert_eq!(placeholders_in(&arg), [*name]);
            assert_ne!(expand(std::slice::from_ref(&arg), &values), [arg], "{name}");
        }
    }
}

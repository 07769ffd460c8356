//! Secrets kept out of what people are shown: the one place that decides what is a secret and
//! how it is hidden, for the web view (`streams ui`) and `report.html`.
//!
//! An agent's log is its raw output, and an agent may print its environment (a debugging
//! `env`, a stack trace with the request it made). A secret is the value of an environment
//! variable the agent got whose name says it is one (`*_API_KEY`, `*_TOKEN`, and the other
//! suffixes in [`is_secret_name`]), from the plan's `env` (plan, stream and task) and from the
//! environment of the process that ran the agents, plus variables a caller names explicitly.
//! Every occurrence of such a value is replaced by `[redacted NAME]`.

use std::borrow::Cow;

/// Values shorter than this are not redacted: `TOKEN=1` would blank every `1` of a log while
/// hiding nothing worth hiding.
pub const MIN_SECRET_LEN: usize = 6;

/// Whether a variable of this name holds a secret by its name.
pub fn is_secret_name(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    const SUFFIXES: [&str; 6] = [
        "_API_KEY",
        "_TOKEN",
        "_SECRET",
        "_PASSWORD",
        "_ACCESS_KEY",
        "_SECRET_KEY",
    ];
    SUFFIXES
        .iter()
        .any(|s| upper.ends_with(s) || upper == s[1..])
}

/// The secrets to hide, longest first (a secret that contains another is replaced whole).
#[derive(Clone, Debug, Default)]
pub struct Redactor {
    secrets: Vec<(String, String)>,
}

impl Redactor {
    /// No secrets: text passes unchanged.
    pub fn none() -> Redactor {
        Redactor::default()
    }

    /// The secrets among `vars` (name, value): those whose name [`is_secret_name`] or is in
    /// `named` (a plan's own list of secret variables, when it has one).
    pub fn from_vars<'a>(
        vars: impl IntoIterator<Item = (&'a str, &'a str)>,
        named: &[String],
    ) -> Redactor {
        let mut secrets: Vec<(String, String)> = vars
            .into_iter()
            .filter(|(name, value)| {
                (is_secret_name(name) || named.iter().any(|n| n == name))
                    && value.len() >= MIN_SECRET_LEN
            })
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect();
        secrets.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then_with(|| a.0.cmp(&b.0)));
        secrets.dedup_by(|a, b| a.1 == b.1);
        Redactor { secrets }
    }

    /// The secrets of a plan (its `env`, every stream's and task's) and of this process's
    /// environment (which the agents of a run started here inherit).
    pub fn for_plan(plan: Option<&crate::plan::Plan>) -> Redactor {
        let process: Vec<(String, String)> = std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .collect();
        let mut vars: Vec<(&str, &str)> = process
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        if let Some(plan) = plan {
            vars.extend(plan.env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
            for stream in &plan.streams {
                vars.extend(stream.env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
            }
        }
        Redactor::from_vars(vars, &[])
    }

    /// How many secrets it hides.
    pub fn len(&self) -> usize {
        self.secrets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.secrets.is_empty()
    }

    /// `text` with every secret replaced by `[redacted NAME]`.
    pub fn redact<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let mut out = Cow::Borrowed(text);
        for (name, value) in &self.secrets {
            if out.contains(value.as_str()) {
                out = Cow::Owned(out.replace(value.as_str(), &format!("[redacted {name}]")));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_hold_secrets() {
        for name in [
            "OPENAI_API_KEY",
            "GH_TOKEN",
            "github_token",
            "DB_PASSWORD",
            "TOKEN",
        ] {
            assert!(is_secret_name(name), "{name}");
        }
        for name in ["PATH", "TOKENIZER", "API_KEYS_FILE", "HOME"] {
            assert!(!is_secret_name(name), "{name}");
        }
    }

    #[test]
    fn values_are_replaced_longest_first_and_short_ones_left() {
        let r = Redactor::from_vars(
            [
                ("A_TOKEN", "abcdef"),
                ("B_API_KEY", "abcdef-123456"),
                ("SHORT_TOKEN", "xy"),
                ("PATH", "/usr/bin:/bin"),
                ("MINE", "hunter22"),
            ],
            &["MINE".to_string()],
        );
        assert_eq!(r.len(), 3);
        assert_eq!(
            r.redact("key abcdef-123456 and abcdef, xy in /usr/bin:/bin, hunter22"),
            "key [redacted B_API_KEY] and [redacted A_TOKEN], xy in /usr/bin:/bin, [redacted MINE]"
        );
        assert!(matches!(r.redact("nothing here"), Cow::Borrowed(_)));
    }
}

//! One reader per kind of value (string, command, duration, ports, env, ...): each checks its
//! type and format and reports what is wrong where it was written.

use std::collections::BTreeMap;
use std::time::Duration;

use toml::de::{DeArray, DeValue};

use super::*;
use crate::agent::argv::placeholders_in;
use crate::agent::{AgentSpec, Cli, PLACEHOLDERS, Preset};
use crate::plan::diagnostic::{Diagnostic, Span};
use crate::plan::model::{ResolveMode, SandboxMode};

impl Walker<'_> {
    pub(super) fn wrong_type(
        &mut self,
        (key, value): Entry<'_, '_>,
        expected: &str,
        found: &DeValue<'_>,
    ) {
        let name = key.get_ref();
        let mut diagnostic = Diagnostic::error(format!(
            "wrong type for `{name}`: expected {expected}, found {}",
            a_type(found)
        ))
        .at(value.span(), format!("expected {expected}"));
        if let (DeValue::String(s), true) = (found, expected.starts_with("an array")) {
            diagnostic = diagnostic.help(format!("write `{name} = [\"{s}\"]`"));
        }
        self.error(diagnostic);
    }

    pub(super) fn string(&mut self, entry: Entry<'_, '_>) -> Option<Sp<String>> {
        let (_, value) = entry;
        match value.get_ref() {
            DeValue::String(s) => Some(Sp {
                value: s.to_string(),
                span: value.span(),
            }),
            other => {
                self.wrong_type(entry, "a string", other);
                None
            }
        }
    }

    pub(super) fn string_array(&mut self, entry: Entry<'_, '_>) -> Option<Vec<Sp<String>>> {
        let (key, value) = entry;
        let DeValue::Array(items) = value.get_ref() else {
            self.wrong_type(entry, "an array of strings", value.get_ref());
            return None;
        };
        Some(self.strings_in(key.get_ref(), items))
    }

    pub(super) fn strings_in(&mut self, key: &str, items: &DeArray<'_>) -> Vec<Sp<String>> {
        let mut out = Vec::new();
        for item in items.iter() {
            match item.get_ref() {
                DeValue::String(s) => out.push(Sp {
                    value: s.to_string(),
                    span: item.span(),
                }),
                other => self.error(
                    Diagnostic::error(format!(
                        "wrong type in `{key}`: expected a string, found {}",
                        a_type(other)
                    ))
                    .at(item.span(), "expected a string"),
                ),
            }
        }
        out
    }

    /// `agent`: an argv (a non-empty array of strings, placeholders known), a preset's name
    /// (`"claude"`), or a preset with the plan's choices (`{ preset = "codex", model = "...",
    /// args = [...], env = {...} }`). Also returns the program, with where it was written.
    pub(super) fn agent(&mut self, entry: Entry<'_, '_>) -> Option<(AgentSpec, Sp<String>)> {
        let (_, value) = entry;
        let items = match value.get_ref() {
            DeValue::Array(items) => self.strings_in("agent", items),
            DeValue::String(s) => {
                let span = value.span();
                return match Cli::from_name(s.trim()) {
                    Some(cli) => Some((
                        AgentSpec::Preset(Preset::new(cli)),
                        Sp {
                            value: cli.program().to_string(),
                            span,
                        },
                    )),
                    None => {
                        self.unknown_preset(s, span);
                        None
                    }
                };
            }
            DeValue::Table(table) => return self.preset_table(table, value.span()),
            other => {
                self.wrong_type(entry, "an array of strings (an argv) or a preset", other);
                return None;
            }
        };
        if items.is_empty() {
            self.error(
                Diagnostic::error("`agent` is empty")
                    .at(value.span(), "expected the program and its arguments")
                    .help("e.g. `agent = \"claude\"` (a preset) or `agent = [\"my-agent\", \"{prompt}\"]`"),
            );
            return None;
        }
        if items[0].value.trim().is_empty() {
            self.error(
                Diagnostic::error("`agent` names no program")
                    .at(items[0].span.clone(), "expected a program name"),
            );
        }
        self.check_placeholders(&items);
        let program = items[0].clone();
        Some((
            AgentSpec::Argv(items.into_iter().map(|s| s.value).collect()),
            program,
        ))
    }

    /// A string `agent` that names no preset.
    fn unknown_preset(&mut self, name: &str, span: Span) {
        let presets: Vec<&str> = Cli::ALL.iter().map(|c| c.name()).collect();
        let words: Vec<String> = name.split_whitespace().map(|w| format!("{w:?}")).collect();
        let help = match suggest(name, &presets) {
            // A command line in one string: the preset, or that command as an argv.
            Some(best) if words.len() > 1 => format!(
                "did you mean the preset `{best}`? A command runs without a shell, one string per argument: `agent = [{}]`",
                words.join(", ")
            ),
            Some(best) => format!("did you mean the preset `{best}`?"),
            None => format!(
                "the presets are {}; any other program is an argv, run without a shell, one string per argument: `agent = [{}]`",
                presets.join(", "),
                words.join(", ")
            ),
        };
        self.error(
            Diagnostic::error(format!("`agent` names no preset: \"{name}\""))
                .at(span, "not a preset")
                .help(help),
        );
    }

    /// `agent = { preset = "codex", model = "...", args = [...], env = {...} }`.
    fn preset_table(
        &mut self,
        table: &toml::de::DeTable<'_>,
        span: Span,
    ) -> Option<(AgentSpec, Sp<String>)> {
        let (mut cli, mut named) = (None, false);
        let (mut model, mut args, mut env) = (None, Vec::new(), BTreeMap::new());
        for sub in table.iter() {
            match sub.0.get_ref().as_ref() {
                "preset" => {
                    named = true;
                    if let Some(name) = self.string(sub) {
                        match Cli::from_name(name.value.trim()) {
                            Some(c) => cli = Some(c),
                            None => self.unknown_preset(&name.value, name.span),
                        }
                    }
                }
                "model" => model = self.string(sub).map(|m| m.value),
                "args" => {
                    let items = self.string_array(sub).unwrap_or_default();
                    self.check_placeholders(&items);
                    args = items.into_iter().map(|i| i.value).collect();
                }
                "env" => env = self.env(sub),
                other => self.error(
                    Diagnostic::error(format!("unknown key `{other}` in `agent`"))
                        .at(sub.0.span(), "unknown key")
                        .help("a preset table has `preset`, `model`, `args` and `env`"),
                ),
            }
        }
        if !named {
            self.error(
                Diagnostic::error("`agent` is a table without `preset`")
                    .at(span.clone(), "no `preset` here")
                    .help(format!(
                        "name the CLI: `preset = \"claude\"` (one of {})",
                        Cli::ALL.map(|c| c.name()).join(", ")
                    )),
            );
        }
        let cli = cli?;
        let preset = Preset {
            cli,
            model,
            args,
            env,
        };
        Some((
            AgentSpec::Preset(preset),
            Sp {
                value: cli.program().to_string(),
                span,
            },
        ))
    }

    /// Every `{name}` in these arguments is a placeholder streams fills in.
    fn check_placeholders(&mut self, items: &[Sp<String>]) {
        for item in items {
            for name in placeholders_in(&item.value) {
                if PLACEHOLDERS.contains(&name) {
                    continue;
                }
                // Point at the placeholder itself when the source spells it as the value does
                // (no escapes in the way); otherwise at the whole argument.
                let written = format!("{{{name}}}");
                let span = self
                    .text
                    .get(item.span.clone())
                    .and_then(|source| source.find(&written))
                    .map(|at| item.span.start + at..item.span.start + at + written.len())
                    .unwrap_or_else(|| item.span.clone());
                let help = match suggest(name, PLACEHOLDERS) {
                    Some(best) => format!("did you mean `{{{best}}}`?"),
                    None => format!(
                        "the placeholders are {}",
                        PLACEHOLDERS
                            .iter()
                            .map(|p| format!("{{{p}}}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                };
                self.error(
                    Diagnostic::error(format!("unknown placeholder `{{{name}}}` in `agent`"))
                        .at(span, "unknown placeholder")
                        .help(help),
                );
            }
        }
    }

    /// A boolean such as `allow_empty = true`.
    pub(super) fn boolean(&mut self, entry: Entry<'_, '_>) -> Option<bool> {
        let (_, value) = entry;
        match value.get_ref() {
            DeValue::Boolean(b) => Some(*b),
            other => {
                self.wrong_type(entry, "`true` or `false`", other);
                None
            }
        }
    }

    /// A `check` or `gate`: an argv (no shell, no placeholders) naming a program.
    pub(super) fn command(&mut self, entry: Entry<'_, '_>) -> Option<Vec<String>> {
        let (key, value) = entry;
        let key = key.get_ref().as_ref();
        let items = match value.get_ref() {
            DeValue::Array(items) => self.strings_in(key, items),
            DeValue::String(s) => {
                let words: Vec<String> = s.split_whitespace().map(|w| format!("{w:?}")).collect();
                self.error(
                    Diagnostic::error(format!(
                        "wrong type for `{key}`: expected an array of strings (an argv), found a string"
                    ))
                    .at(value.span(), "expected an array")
                    .help(format!(
                        "it runs without a shell, one string per argument: `{key} = [{}]`",
                        words.join(", ")
                    )),
                );
                return None;
            }
            other => {
                self.wrong_type(entry, "an array of strings", other);
                return None;
            }
        };
        if items.first().is_none_or(|p| p.value.trim().is_empty()) {
            self.error(
                Diagnostic::error(format!("`{key}` names no program"))
                    .at(value.span(), "expected the program and its arguments")
                    .help(format!("e.g. `{key} = [\"cargo\", \"test\"]`")),
            );
            return None;
        }
        Some(items.into_iter().map(|s| s.value).collect())
    }

    pub(super) fn integer(&mut self, entry: Entry<'_, '_>, min: i64, max: i64) -> Option<i64> {
        let (key, value) = entry;
        let expected = if min == 1 {
            "a positive integer".to_string()
        } else if min == 0 {
            "a non-negative integer".to_string()
        } else {
            "an integer".to_string()
        };
        let DeValue::Integer(n) = value.get_ref() else {
            self.wrong_type(entry, &expected, value.get_ref());
            return None;
        };
        match i64::from_str_radix(n.as_str(), n.radix()) {
            Ok(n) if (min..=max).contains(&n) => Some(n),
            _ => {
                self.error(
                    Diagnostic::error(format!(
                        "`{}` is out of range: expected {min} to {max}",
                        key.get_ref()
                    ))
                    .at(value.span(), format!("expected {expected}")),
                );
                None
            }
        }
    }

    /// `retry_on`: exit codes (1 to 255) and strings looked for in the agent's last lines.
    pub(super) fn retry_on(&mut self, entry: Entry<'_, '_>) -> (Vec<i32>, Vec<String>) {
        let (_, value) = entry;
        let DeValue::Array(items) = value.get_ref() else {
            self.wrong_type(
                entry,
                "an array of exit codes and output patterns",
                value.get_ref(),
            );
            return (Vec::new(), Vec::new());
        };
        let (mut codes, mut patterns) = (Vec::new(), Vec::new());
        for item in items.iter() {
            match item.get_ref() {
                DeValue::String(text) if !text.trim().is_empty() => {
                    patterns.push(text.to_string())
                }
                DeValue::String(_) => self.error(
                    Diagnostic::error("`retry_on` has an empty pattern")
                        .at(item.span(), "this would match any output")
                        .help("write words the agent prints when it is worth retrying, e.g. \"rate limit\""),
                ),
                DeValue::Integer(n) => match i64::from_str_radix(n.as_str(), n.radix()) {
                    Ok(code @ 1..=255) => codes.push(code as i32),
                    _ => self.error(
                        Diagnostic::error("`retry_on` lists exit codes from 1 to 255")
                            .at(item.span(), "expected an exit code from 1 to 255"),
                    ),
                },
                other => self.error(
                    Diagnostic::error(format!(
                        "`retry_on` lists exit codes and output patterns, found {}",
                        a_type(other)
                    ))
                    .at(item.span(), "expected an exit code or a string"),
                ),
            }
        }
        (codes, patterns)
    }

    /// `setup`: an argv (no shell), like `agent`.
    pub(super) fn setup(&mut self, entry: Entry<'_, '_>) -> Option<Vec<String>> {
        let (_, value) = entry;
        let DeValue::Array(array) = value.get_ref() else {
            self.wrong_type(entry, "an array of strings (an argv)", value.get_ref());
            return None;
        };
        let items = self.strings_in("setup", array);
        if items.first().is_none_or(|p| p.value.trim().is_empty()) {
            self.error(
                Diagnostic::error("`setup` names no program")
                    .at(value.span(), "expected the program and its arguments")
                    .help("e.g. `setup = [\"npm\", \"ci\"]`, or `[\"sh\", \"-c\", \"...\"]` for a shell"),
            );
            return None;
        }
        Some(items.into_iter().map(|i| i.value).collect())
    }

    /// `ports = { base = 20000, per_slot = 10 }`: each slot's first port and how many it has.
    pub(super) fn ports(&mut self, entry: Entry<'_, '_>) -> Option<(u16, u16)> {
        let (_, value) = entry;
        let DeValue::Table(table) = value.get_ref() else {
            self.wrong_type(
                entry,
                "a table `{ base = 20000, per_slot = 10 }`",
                value.get_ref(),
            );
            return None;
        };
        let (mut base, mut per_slot) = (
            Some(i64::from(crate::plan::DEFAULT_PORTS.0)),
            Some(i64::from(crate::plan::DEFAULT_PORTS.1)),
        );
        for sub in table.iter() {
            match sub.0.get_ref().as_ref() {
                "base" => base = self.integer(sub, 1024, 65535),
                "per_slot" => per_slot = self.integer(sub, 1, 1000),
                other => self.error(
                    Diagnostic::error(format!("unknown key `{other}` in `ports`"))
                        .at(sub.0.span(), "unknown key")
                        .help("`ports` has `base` (the first port of slot 0) and `per_slot`"),
                ),
            }
        }
        Some((base? as u16, per_slot? as u16))
    }

    /// `resolve = { agent = ..., mode = "propose" }`: the resolver agent (a preset or an argv,
    /// as a task's `agent`) and what its accepted resolutions do (`propose` unless written);
    /// with the program it starts, where it is written.
    pub(super) fn resolver(&mut self, entry: Entry<'_, '_>) -> Option<(Resolver, Sp<String>)> {
        let (_, value) = entry;
        let DeValue::Table(table) = value.get_ref() else {
            self.wrong_type(
                entry,
                "a table `{ agent = [...], mode = \"propose\" }`",
                value.get_ref(),
            );
            return None;
        };
        let (mut agent, mut mode, mut agent_given) = (None, Some(ResolveMode::Propose), false);
        for sub in table.iter() {
            match sub.0.get_ref().as_ref() {
                "agent" => {
                    agent_given = true;
                    agent = self.agent(sub);
                }
                "mode" => {
                    mode = self
                        .choice(sub, &["propose", "accept"])
                        .map(|i| [ResolveMode::Propose, ResolveMode::Accept][i])
                }
                other => self.error(
                    Diagnostic::error(format!("unknown key `{other}` in `resolve`"))
                        .at(sub.0.span(), "unknown key")
                        .help("`resolve` has `agent` (a preset such as \"claude\", or an argv) and `mode` (\"propose\" or \"accept\")"),
                ),
            }
        }
        if !agent_given {
            self.error(
                Diagnostic::error("`resolve` has no `agent`")
                    .at(value.span(), "expected `agent = ...` here")
                    .help("e.g. `resolve = { agent = \"claude\", mode = \"propose\" }` (a preset), or an argv: `agent = [\"my-resolver\", \"{prompt_file}\"]`"),
            );
        }
        let (agent, program) = agent?;
        Some((Resolver { agent, mode: mode? }, program))
    }

    /// `budget = { usd = 5, tokens = 2_000_000, turns = 60, time = "30m" }`: each limit
    /// optional, at least one given.
    pub(super) fn budget(&mut self, entry: Entry<'_, '_>) -> Option<crate::plan::model::Budget> {
        let (_, value) = entry;
        let DeValue::Table(table) = value.get_ref() else {
            self.wrong_type(
                entry,
                "a table such as `{ usd = 5, tokens = 2_000_000, turns = 60, time = \"30m\" }`",
                value.get_ref(),
            );
            return None;
        };
        let mut budget = crate::plan::model::Budget::default();
        for sub in table.iter() {
            match sub.0.get_ref().as_ref() {
                "usd" => budget.usd = self.amount(sub),
                "tokens" => budget.tokens = self.integer(sub, 1, i64::MAX).map(|n| n as u64),
                "turns" => {
                    budget.turns = self.integer(sub, 1, i64::from(u32::MAX)).map(|n| n as u32)
                }
                "time" => budget.time = self.duration(sub, false),
                other => self.error(
                    Diagnostic::error(format!("unknown key `{other}` in `budget`"))
                        .at(sub.0.span(), "unknown key")
                        .help("`budget` has `usd`, `tokens`, `turns` and `time`"),
                ),
            }
        }
        if budget.is_empty() {
            self.error(
                Diagnostic::error("`budget` sets no limit")
                    .at(value.span(), "empty")
                    .help("give at least one of `usd`, `tokens`, `turns`, `time`, or leave it out"),
            );
            return None;
        }
        Some(budget)
    }

    /// A positive amount of money (an integer or a float).
    fn amount(&mut self, entry: Entry<'_, '_>) -> Option<f64> {
        let (key, value) = entry;
        let n = match value.get_ref() {
            DeValue::Integer(n) => n.as_str().replace('_', "").parse::<f64>().ok(),
            DeValue::Float(f) => f.as_str().replace('_', "").parse::<f64>().ok(),
            other => {
                self.wrong_type(entry, "a number of US dollars", other);
                return None;
            }
        };
        match n {
            Some(n) if n >= 0.0 && n.is_finite() => Some(n),
            _ => {
                self.error(
                    Diagnostic::error(format!("`{}` must be a positive number", key.get_ref()))
                        .at(value.span(), "expected a number such as 5 or 0.25"),
                );
                None
            }
        }
    }

    /// `[prices]`: per model, `{ input, output, cache_read, cache_write }` in US dollars per
    /// million tokens.
    pub(super) fn prices(
        &mut self,
        entry: Entry<'_, '_>,
    ) -> Vec<(String, crate::plan::model::Price)> {
        let (_, value) = entry;
        let DeValue::Table(table) = value.get_ref() else {
            self.wrong_type(entry, "a table of models", value.get_ref());
            return Vec::new();
        };
        let mut prices = Vec::new();
        for model in table.iter() {
            let DeValue::Table(fields) = model.1.get_ref() else {
                self.wrong_type(
                    model,
                    "a table such as `{ input = 3.0, output = 15.0 }` (USD per million tokens)",
                    model.1.get_ref(),
                );
                continue;
            };
            let mut price = crate::plan::model::Price::default();
            for field in fields.iter() {
                let slot = match field.0.get_ref().as_ref() {
                    "input" => &mut price.input,
                    "output" => &mut price.output,
                    "cache_read" => &mut price.cache_read,
                    "cache_write" => &mut price.cache_write,
                    other => {
                        self.error(
                            Diagnostic::error(format!("unknown key `{other}` in a price"))
                                .at(field.0.span(), "unknown key")
                                .help("a price has `input`, `output`, `cache_read` and `cache_write` (USD per million tokens)"),
                        );
                        continue;
                    }
                };
                if let Some(n) = self.amount(field) {
                    *slot = n;
                }
            }
            prices.push((model.0.get_ref().to_string(), price));
        }
        prices
    }

    /// `[plan.limits]`: a table of group names to the most agents of the group at once.
    pub(super) fn limits(&mut self, entry: Entry<'_, '_>) -> Vec<(Sp<String>, usize)> {
        let (_, value) = entry;
        let DeValue::Table(table) = value.get_ref() else {
            self.wrong_type(entry, "a table such as `{ claude = 2 }`", value.get_ref());
            return Vec::new();
        };
        let mut limits = Vec::new();
        for sub in table.iter() {
            if let Some(n) = self.integer(sub, 1, i64::from(u16::MAX)) {
                let name = Sp {
                    value: sub.0.get_ref().to_string(),
                    span: sub.0.span(),
                };
                limits.push((name, n as usize));
            }
        }
        limits
    }

    pub(super) fn choice(&mut self, entry: Entry<'_, '_>, choices: &[&str]) -> Option<usize> {
        let (key, value) = entry;
        let expected = choices
            .iter()
            .map(|c| format!("\"{c}\""))
            .collect::<Vec<_>>()
            .join(", ");
        let DeValue::String(s) = value.get_ref() else {
            self.wrong_type(entry, &format!("one of {expected}"), value.get_ref());
            return None;
        };
        if let Some(i) = choices.iter().position(|c| *c == s.as_ref()) {
            return Some(i);
        }
        let mut diagnostic = Diagnostic::error(format!("invalid `{}`: \"{s}\"", key.get_ref()))
            .at(value.span(), format!("expected one of {expected}"));
        if let Some(best) = suggest(s, choices) {
            diagnostic = diagnostic.help(format!("did you mean \"{best}\"?"));
        }
        self.error(diagnostic);
        None
    }

    pub(super) fn sandbox(&mut self, entry: Entry<'_, '_>) -> Option<SandboxMode> {
        self.choice(entry, &["off", "auto", "landlock"])
            .map(|i| [SandboxMode::Off, SandboxMode::Auto, SandboxMode::Landlock][i])
    }

    /// `sandbox_writable`: absolute paths or paths under the home directory (`~/...`). A
    /// relative path would depend on where streams runs, and `~user` on another account.
    pub(super) fn writable_paths(&mut self, entry: Entry<'_, '_>) -> Vec<String> {
        let Some(items) = self.string_array(entry) else {
            return Vec::new();
        };
        let mut paths = Vec::new();
        for item in items {
            let path = item.value.as_str();
            if path == "~" || path.starts_with("~/") || path.starts_with('/') {
                paths.push(item.value);
                continue;
            }
            let (label, help) = if path.is_empty() {
                (
                    "empty",
                    "write a directory, e.g. `\"~/.cache\"`".to_string(),
                )
            } else if path.starts_with('~') {
                (
                    "another user's home",
                    "only your own home is expanded: write `~/...` or an absolute path".to_string(),
                )
            } else {
                (
                    "a relative path",
                    "write an absolute path, or `~/...` for one under your home".to_string(),
                )
            };
            self.error(
                Diagnostic::error(format!(
                    "`sandbox_writable` needs absolute paths or `~/...`, found \"{path}\""
                ))
                .at(item.span, label)
                .help(help),
            );
        }
        paths
    }

    pub(super) fn duration(&mut self, entry: Entry<'_, '_>, zero_ok: bool) -> Option<Duration> {
        let (key, value) = entry;
        let text = match value.get_ref() {
            DeValue::String(s) => s,
            DeValue::Integer(n) => {
                self.error(
                    Diagnostic::error(format!(
                        "wrong type for `{}`: expected a duration, found an integer",
                        key.get_ref()
                    ))
                    .at(value.span(), "expected a duration string")
                    .help(format!(
                        "durations carry a unit: write `{} = \"{}\"`",
                        key.get_ref(),
                        seconds_text(n.as_str())
                    )),
                );
                return None;
            }
            other => {
                self.wrong_type(entry, "a duration such as \"10m\"", other);
                return None;
            }
        };
        match humantime::parse_duration(text) {
            Ok(d) if d.is_zero() && !zero_ok => {
                self.error(
                    Diagnostic::error(format!("`{}` must be longer than zero", key.get_ref()))
                        .at(value.span(), "zero")
                        .help("leave the key out for no limit"),
                );
                None
            }
            Ok(d) => Some(d),
            Err(err) => {
                let mut diagnostic = Diagnostic::error(format!(
                    "invalid duration for `{}`: \"{text}\"",
                    key.get_ref()
                ))
                .at(
                    value.span(),
                    "expected a number and a unit, such as \"10m\" or \"1h30m\"",
                );
                if let humantime::DurationError::UnknownUnit { unit, .. } = &err {
                    diagnostic = diagnostic.help(format!(
                        "`{unit}` is not a unit: use s, m, h or d (or sec, min, hours, days)"
                    ));
                }
                self.error(diagnostic);
                None
            }
        }
    }

    pub(super) fn estimate(&mut self, entry: Entry<'_, '_>) -> Option<RawEstimate> {
        let (_, value) = entry;
        let span = value.span();
        let positive = |this: &mut Walker<'_>, n: f64| {
            if n > 0.0 && n.is_finite() {
                Some(n)
            } else {
                this.error(
                    Diagnostic::error("`estimate` must be more than zero")
                        .at(span.clone(), "expected a positive number or a duration"),
                );
                None
            }
        };
        let (n, is_duration) = match value.get_ref() {
            DeValue::Integer(n) => (
                positive(
                    self,
                    i64::from_str_radix(n.as_str(), n.radix()).unwrap_or(0) as f64,
                )?,
                false,
            ),
            DeValue::Float(f) => (
                positive(self, f.as_str().parse::<f64>().unwrap_or(0.0))?,
                false,
            ),
            DeValue::String(_) => (self.duration(entry, false)?.as_secs_f64(), true),
            other => {
                self.wrong_type(entry, "a duration (\"10m\") or a number of units", other);
                return None;
            }
        };
        Some(RawEstimate {
            value: n,
            is_duration,
            span,
        })
    }

    pub(super) fn env(&mut self, entry: Entry<'_, '_>) -> BTreeMap<String, String> {
        let (_, value) = entry;
        let mut env = BTreeMap::new();
        let DeValue::Table(table) = value.get_ref() else {
            self.wrong_type(entry, "a table of strings", value.get_ref());
            return env;
        };
        for (key, value) in table.iter() {
            let name = key.get_ref().as_ref();
            let valid = !name.is_empty()
                && !name.starts_with(|c: char| c.is_ascii_digit())
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !valid {
                self.error(
                    Diagnostic::error(format!("invalid environment variable name `{name}`")).at(
                        key.span(),
                        "expected letters, digits and `_`, not starting with a digit",
                    ),
                );
                continue;
            }
            if let Some(why) = crate::git_env::refused_in_plan(name) {
                self.error(
                    Diagnostic::error(format!("`env` may not set `{name}`: {why}"))
                        .at(key.span(), "not allowed in a plan")
                        .help("streams gives every agent its own workspace and repository: remove this variable"),
                );
                continue;
            }
            match value.get_ref() {
                DeValue::String(s) => {
                    env.insert(name.to_string(), s.to_string());
                }
                other => {
                    let mut diagnostic = Diagnostic::error(format!(
                        "wrong type for env `{name}`: expected a string, found {}",
                        a_type(other)
                    ))
                    .at(value.span(), "expected a string");
                    if matches!(
                        other,
                        DeValue::Integer(_) | DeValue::Float(_) | DeValue::Boolean(_)
                    ) {
                        let text = match other {
                            DeValue::Integer(n) => n.to_string(),
                            DeValue::Float(f) => f.to_string(),
                            DeValue::Boolean(b) => b.to_string(),
                            _ => unreachable!(),
                        };
                        diagnostic = diagnostic.help(format!("quote it: `{name} = \"{text}\"`"));
                    }
                    self.error(diagnostic);
                }
            }
        }
        env
    }
}

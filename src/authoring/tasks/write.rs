//! The plan's TOML, written by hand so that every stream carries a comment saying which tasks
//! it holds and why (a TOML serializer would drop comments). Strings go through `toml` for
//! their quoting.

use std::fmt::Write as _;

use super::parse::TaskList;
use super::{Grouping, Options, RepoView};
use crate::plan::diagnostic::count;

pub fn write(
    list: &TaskList,
    grouping: &Grouping,
    name: &str,
    view: &RepoView,
    options: &Options,
) -> String {
    let mut out = String::new();
    let tasks: usize = grouping.streams.iter().map(|s| s.tasks.len()).sum();
    let _ = writeln!(
        out,
        "# Written by `streams init --from {}`: {} in {}.",
        options.source,
        count(tasks, "task"),
        count(grouping.streams.len(), "stream")
    );
    out.push_str(
        "# The comment above each stream says which tasks it holds and why. Look for REVIEW,\n\
         # then check the plan with `streams plan` and start it with `streams run`.\n",
    );
    if !list.done.is_empty() {
        let _ = writeln!(
            out,
            "# Left out, already checked off: {}.",
            list.done.join(", ")
        );
    }
    out.push_str("\n[plan]\n");
    let _ = writeln!(out, "name = {}", quote(name));
    let _ = writeln!(out, "base = {}", quote(&view.base));
    out.push_str(&crate::authoring::init::agent_lines(options.agent));

    for stream in &grouping.streams {
        out.push('\n');
        for note in &stream.notes {
            comment(&mut out, note);
        }
        for (from, why) in &stream.depends_on {
            comment(
                &mut out,
                &format!("after `{}`: {why}", grouping.streams[*from].name),
            );
        }
        out.push_str("[[stream]]\n");
        let _ = writeln!(out, "name = {}", quote(&stream.name));
        let owns: Vec<String> = stream.owns.iter().map(|p| quote(p)).collect();
        let _ = writeln!(out, "owns = [{}]", owns.join(", "));
        if !stream.depends_on.is_empty() {
            let deps: Vec<String> = stream
                .depends_on
                .iter()
                .map(|(from, _)| quote(&grouping.streams[*from].name))
                .collect();
            let _ = writeln!(out, "depends_on = [{}]", deps.join(", "));
        }
        if let Some(priority) = stream.priority {
            let _ = writeln!(out, "priority = {priority}");
        }
        out.push_str("tasks = [\n");
        for &t in &stream.tasks {
            let _ = writeln!(out, "    {},", quote(&list.tasks[t].text));
        }
        out.push_str("]\n");
    }
    out
}

/// Comment lines wrapped before column 100; continuation lines indented.
fn comment(out: &mut String, text: &str) {
    const WIDTH: usize = 98;
    let mut line = String::from("#");
    for word in text.split(' ') {
        if line.len() + 1 + word.len() > WIDTH && line.trim_start_matches('#').trim() != "" {
            let _ = writeln!(out, "{line}");
            line = String::from("#  ");
        }
        line.push(' ');
        line.push_str(word);
    }
    let _ = writeln!(out, "{line}");
}

/// A TOML basic string (multi-line text keeps its line breaks as `\n`).
fn quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::quote;

    #[test]
    fn quoted_strings_read_back() {
        for text in [
            "plain",
            "a \"quote\" and \\ back",
            "two\nlines\ttab",
            "bell\u{7}",
        ] {
            let toml_text = format!("x = {}", quote(text));
            let value: toml::Table = toml::from_str(&toml_text).unwrap();
            assert_eq!(value["x"].as_str(), Some(text));
        }
    }
}

//! `report.html`: the run's report as one self-contained page, for a CI artifact or a browser
//! without `streams ui`: the graph and timeline (SVG drawn in Rust), a table of streams, and per
//! stream its tasks, refused files and kept work, checks, log tail and whole diff; the conflict
//! when the run halted.
//!
//! Guarantees: nothing is fetched (styles and the highlighter are inlined; a Content Security
//! Policy forbids any load); everything but the syntax colours shows with scripts off
//! (collapsing uses `<details>`); every text from the run, its logs and its files is escaped
//! here, in [`escape`], and never reaches the page as markup.

use std::fmt::Write as _;

use super::fmt_duration_ms;
use super::page::{ConflictPage, DiffLine, FileDiff, RunPage, StreamPage};
use super::svg;
use crate::state::RunState;
use crate::text::short;

/// The look both pages share.
pub const PAGE_CSS: &str = include_str!("assets/page.css");
/// highlight.js 11.11.1 (BSD-3-Clause), vendored from npm: see assets/vendor/highlight.js/.
pub const HIGHLIGHT_JS: &str = include_str!("assets/vendor/highlight.js/highlight.min.js");
pub const HIGHLIGHT_CSS: &str = include_str!("assets/vendor/highlight.js/github.min.css");
pub const HIGHLIGHT_LICENSE: &str = include_str!("assets/vendor/highlight.js/LICENSE");

/// Colours the code of diff tables once the page has loaded (report.html only: the web view
/// does the same in its own script). highlight.js escapes the text it is given.
const HIGHLIGHT_DIFFS: &str = r#"
document.querySelectorAll("table.diff[data-lang]").forEach(function (table) {
  var lang = table.getAttribute("data-lang");
  if (!hljs.getLanguage(lang)) return;
  table.querySelectorAll("td.code code").forEach(function (code) {
    code.innerHTML = hljs.highlight(code.textContent, { language: lang, ignoreIllegals: true }).value;
  });
});
"#;

/// Text made safe to place in HTML or SVG, as element content or in a quoted attribute.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The whole page.
pub fn render(page: &RunPage, state: &RunState) -> String {
    let mut out = String::with_capacity(64 * 1024);
    let title = format!(
        "streams run {} of plan {}: {}",
        page.run.id, page.run.plan, page.outcome
    );
    let _ = write!(
        out,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:\">\
         <title>{}</title><style>{PAGE_CSS}</style><style>{HIGHLIGHT_CSS}</style></head><body>",
        escape(&title)
    );
    header(&mut out, page, state);
    out.push_str("<main>");
    out.push_str("<h2>Streams</h2><div class=\"card pictures\" id=\"graph\">");
    out.push_str(&svg::graph(state));
    out.push_str("</div>");
    if let Some(timeline) = svg::timeline(state, page.at) {
        out.push_str("<h2>Timeline</h2><div class=\"card pictures\" id=\"timeline\">");
        out.push_str(&timeline);
        out.push_str("</div>");
    }
    for conflict in &page.conflicts {
        conflict_section(&mut out, conflict);
    }
    summary_table(&mut out, page);
    out.push_str("<h2>Each stream</h2>");
    for s in &page.streams {
        stream_section(&mut out, s);
    }
    let _ = write!(
        out,
        "<footer>Written by streams {} at the end of the run; its directory: <code>{}</code>. \
         Syntax colours by highlight.js (BSD-3-Clause).</footer></main>",
        env!("CARGO_PKG_VERSION"),
        escape(&page.run.dir)
    );
    let _ = writeln!(
        out,
        "<script>{HIGHLIGHT_JS}</script><script>{HIGHLIGHT_DIFFS}</script></body></html>"
    );
    out
}

fn header(out: &mut String, page: &RunPage, state: &RunState) {
    let wall = fmt_duration_ms(state.previous_wall_ms);
    let _ = write!(
        out,
        "<header class=\"run\"><h1>streams run <code>{}</code> of plan <code>{}</code></h1>\
         <span class=\"badge {}\" id=\"outcome\">{}</span>\
         <span class=\"facts\">base <code>{}</code> · integration branch <code>{}</code> at <code>{}</code> · wall time {wall}</span></header>",
        escape(&page.run.id),
        escape(&page.run.plan),
        svg::state_class(outcome_word(&page.outcome)),
        escape(&page.outcome),
        escape(short(&page.run.base)),
        escape(&page.run.integration_branch),
        escape(short(&page.run.integration_tip)),
    );
}

/// The state colour an outcome reads as.
fn outcome_word(outcome: &str) -> &str {
    match outcome {
        "halted" => "conflict",
        "running" => "running",
        other => other,
    }
}

fn summary_table(out: &mut String, page: &RunPage) {
    out.push_str(
        "<h2>Summary</h2><table class=\"summary card\"><thead><tr><th>stream</th><th>state</th>\
         <th>tasks done</th><th>commits</th><th>files</th><th>+/&minus;</th><th>agent time</th></tr></thead><tbody>",
    );
    for s in &page.streams {
        let done = s
            .show
            .tasks
            .iter()
            .filter(|t| t.status == "committed" || t.status == "integrated")
            .count();
        let time: u64 = s.show.tasks.iter().map(|t| t.time_ms).sum();
        let _ = write!(
            out,
            "<tr><td><a href=\"#stream-{}\">{}</a></td><td><span class=\"badge {}\">{}</span></td>\
             <td class=\"num\">{done}/{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">+{}/&minus;{}</td><td class=\"num\">{}</td></tr>",
            escape(&anchor(&s.show.name)),
            escape(&s.show.name),
            svg::state_class(&s.word),
            escape(&s.word),
            s.show.tasks.len(),
            s.show.commits.len(),
            s.show.files.len(),
            s.show.insertions,
            s.show.deletions,
            fmt_duration_ms(time),
        );
    }
    out.push_str("</tbody></table>");
}

/// An id fragment for a stream (names are ref components: no spaces, but maybe `.` or `-`).
fn anchor(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect()
}

fn stream_section(out: &mut String, s: &StreamPage) {
    let show = &s.show;
    let open = if matches!(s.word.as_str(), "failed" | "conflict") {
        " open"
    } else {
        ""
    };
    let _ = write!(
        out,
        "<details class=\"stream\" id=\"stream-{}\"{open}><summary><strong>{}</strong>\
         <span class=\"badge {}\">{}</span><span class=\"muted\">{} task(s) · +{}/&minus;{} in {} file(s)</span>",
        escape(&anchor(&show.name)),
        escape(&show.name),
        svg::state_class(&s.word),
        escape(&s.word),
        show.tasks.len(),
        show.insertions,
        show.deletions,
        show.files.len(),
    );
    if let Some(cost) = &s.cost {
        let _ = write!(
            out,
            "<span class=\"muted\">cost {}</span>",
            escape(&cost.to_string())
        );
    }
    out.push_str("</summary><div class=\"body\">");
    if let Some(reason) = &show.reason {
        let _ = write!(out, "<p class=\"reason\">{}</p>", escape(reason));
    }
    let _ = write!(
        out,
        "<p class=\"muted\">branch <code>{}</code>",
        escape(&show.branch)
    );
    if !show.depends_on.is_empty() {
        let _ = write!(out, " · after {}", escape(&show.depends_on.join(", ")));
    }
    out.push_str("</p><h3>Tasks</h3><ol class=\"tasks\">");
    for t in &show.tasks {
        let _ = write!(
            out,
            "<li>{} — <span class=\"badge {}\">{}</span> <span class=\"muted\">{} attempt(s), {}</span>",
            escape(&t.text),
            svg::state_class(task_word(&t.status)),
            escape(&t.status),
            t.attempts,
            fmt_duration_ms(t.time_ms)
        );
        if let Some(reason) = &t.reason {
            let _ = write!(out, "<div class=\"reason\">{}</div>", escape(reason));
        }
        out.push_str("</li>");
    }
    out.push_str("</ol>");
    if !show.rejections.is_empty() {
        out.push_str("<h3>Refused files</h3><ul class=\"plain\">");
        for r in &show.rejections {
            let paths = r.paths_and_owners();
            let _ = write!(
                out,
                "<li>task {}: <code>{}</code>; its work is kept on <code>{}</code></li>",
                r.task,
                escape(&paths.join(", ")),
                escape(&r.kept)
            );
        }
        out.push_str("</ul>");
    }
    if !show.kept.is_empty() {
        out.push_str("<h3>Work kept aside</h3><ul class=\"plain\">");
        for k in &show.kept {
            let _ = write!(
                out,
                "<li><code>{}</code> at <code>{}</code></li>",
                escape(&k.name),
                escape(short(&k.commit))
            );
        }
        out.push_str("</ul>");
    }
    if !show.checks.is_empty() {
        out.push_str("<h3>Checks</h3><ul class=\"plain\">");
        for c in &show.checks {
            let _ = write!(
                out,
                "<li>{}: <span class=\"badge {}\">{}</span> <span class=\"muted\">{}</span>{}</li>",
                escape(&c.kind),
                svg::state_class(if c.outcome == "ok" { "ok" } else { "failed" }),
                escape(&c.outcome),
                fmt_duration_ms(c.time_ms),
                c.reason
                    .as_deref()
                    .map(|r| format!(" <span class=\"reason\">{}</span>", escape(r)))
                    .unwrap_or_default()
            );
        }
        out.push_str("</ul>");
    }
    if let Some(conflict) = &show.conflict {
        let _ = write!(
            out,
            "<h3>Conflict</h3><p>in <code>{}</code>{}; bundle <code>{}</code></p>",
            escape(&conflict.files.join(", ")),
            conflict
                .resolution
                .as_deref()
                .map(|c| format!(", resolved by <code>{}</code>", escape(short(c))))
                .unwrap_or_default(),
            escape(&conflict.bundle)
        );
    }
    if !show.notes.is_empty() {
        out.push_str("<h3>Notes</h3><ul class=\"plain\">");
        for n in &show.notes {
            let _ = write!(out, "<li>{}</li>", escape(n));
        }
        out.push_str("</ul>");
    }
    if !s.log_tail.is_empty() {
        let _ = write!(
            out,
            "<h3>Log of task {} (last lines)</h3><pre class=\"log\">{}</pre>",
            s.log_task.unwrap_or(1),
            escape(&s.log_tail.join("\n"))
        );
    }
    if let Some(diff) = &s.diff
        && !diff.files.is_empty()
    {
        out.push_str("<h3>Diff</h3>");
        for f in &diff.files {
            file_diff(out, f);
        }
        if diff.truncated {
            out.push_str(
                "<p class=\"muted\">The diff is cut here; `streams diff` shows it whole.</p>",
            );
        }
    }
    out.push_str("</div></details>");
}

/// The colour of a task's status.
fn task_word(status: &str) -> &str {
    match status {
        "committed" | "integrated" => "integrated",
        other => other,
    }
}

fn file_diff(out: &mut String, f: &FileDiff) {
    let name = match &f.renamed_from {
        Some(from) => format!("{from} → {}", f.path),
        None => f.path.clone(),
    };
    let adds = f.lines.iter().filter(|l| l.kind == "add").count();
    let dels = f.lines.iter().filter(|l| l.kind == "del").count();
    let _ = write!(
        out,
        "<details class=\"file\" open><summary>{} <span class=\"muted\">+{adds}/&minus;{dels}</span></summary>",
        escape(&name)
    );
    if f.binary {
        out.push_str("<p class=\"muted\">&nbsp;binary file</p>");
    } else {
        diff_table(out, &f.lines, f.lang);
    }
    out.push_str("</details>");
}

/// Lines of a diff as a table: a sign column and the code (highlighted by the page's script
/// when it knows the language).
fn diff_table(out: &mut String, lines: &[DiffLine], lang: Option<&str>) {
    match lang {
        Some(lang) => {
            let _ = write!(out, "<table class=\"diff\" data-lang=\"{}\">", escape(lang));
        }
        None => out.push_str("<table class=\"diff\">"),
    }
    for l in lines {
        let sign = match l.kind {
            "add" => "+",
            "del" => "−",
            _ => "",
        };
        if l.kind == "hunk" || l.kind == "meta" {
            let _ = write!(
                out,
                "<tr class=\"{}\"><td class=\"sign\"></td><td>{}</td></tr>",
                l.kind,
                escape(&l.text)
            );
        } else {
            let _ = write!(
                out,
                "<tr class=\"{}\"><td class=\"sign\">{sign}</td><td class=\"code\"><code>{}</code></td></tr>",
                l.kind,
                escape(&l.text)
            );
        }
    }
    out.push_str("</table>");
}

fn conflict_section(out: &mut String, c: &ConflictPage) {
    let _ = write!(
        out,
        "<h2>Conflict</h2><div class=\"card conflict\" id=\"conflict-{}\"><p>The run waits on a conflict in stream <strong>{}</strong>. \
         Resolve it in <code>{}</code>, then run <code>streams continue</code>.</p>",
        escape(&anchor(&c.stream)),
        escape(&c.stream),
        escape(&c.resolution_worktree)
    );
    for f in &c.files {
        let lang = f.lang;
        let _ = write!(
            out,
            "<h3><code>{}</code></h3><div class=\"sides\"><div><div class=\"muted\">what the integration branch did</div>",
            escape(&f.path)
        );
        diff_table(out, &f.integration, lang);
        let _ = write!(
            out,
            "</div><div><div class=\"muted\">what <strong>{}</strong> did</div>",
            escape(&c.stream)
        );
        diff_table(out, &f.stream, lang);
        let _ = write!(
            out,
            "</div></div><details class=\"file\"><summary>the file with conflict markers</summary><pre class=\"text\">{}</pre></details>",
            escape(&f.conflicted)
        );
    }
    let _ = write!(
        out,
        "<details class=\"file\"><summary>the bundle's README ({})</summary><pre class=\"text\">{}</pre></details></div>",
        escape(&c.bundle),
        escape(&c.readme)
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_covers_markup_and_quotes() {
        assert_eq!(
            escape(r#"<script>"a" & 'b'</script>"#),
            "&lt;script&gt;&quot;a&quot; &amp; &#39;b&#39;&lt;/script&gt;"
        );
    }

    #[test]
    fn the_vendored_script_can_be_inlined() {
        // Inlined in a <script> element: its text must not close the element.
        assert!(!HIGHLIGHT_JS.to_ascii_lowercase().contains("</script"));
        assert!(HIGHLIGHT_LICENSE.contains("BSD 3-Clause"));
    }
}

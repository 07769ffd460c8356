//! Problems found in a plan, each pointing at the text it is about, and their rendering with
//! file:line:column and carets (annotate-snippets, in rustc's style).

use std::ops::Range;

use annotate_snippets::renderer::DecorStyle;
use annotate_snippets::{AnnotationKind, Group, Level, Renderer, Snippet};

/// A byte range in the plan text.
pub type Span = Range<usize>;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Label {
    pub span: Span,
    pub text: String,
    /// The primary label decides the reported file:line:column; others give context.
    pub primary: bool,
}

/// One problem: a message, where it is, and optionally notes and a hint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    pub message: String,
    pub labels: Vec<Label>,
    pub notes: Vec<String>,
    pub help: Option<String>,
}

impl Diagnostic {
    pub fn error(message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Error,
            message: message.into(),
            labels: Vec::new(),
            notes: Vec::new(),
            help: None,
        }
    }

    pub fn warning(message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(message)
        }
    }

    /// Where the problem is.
    pub fn at(mut self, span: Span, label: impl Into<String>) -> Self {
        self.labels.push(Label {
            span,
            text: label.into(),
            primary: true,
        });
        self
    }

    /// Another place that explains the problem.
    pub fn also(mut self, span: Span, label: impl Into<String>) -> Self {
        self.labels.push(Label {
            span,
            text: label.into(),
            primary: false,
        });
        self
    }

    pub fn note(mut self, note: impl Into<String>) -> Self {
        self.notes.push(note.into());
        self
    }

    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    pub fn help_opt(mut self, help: Option<String>) -> Self {
        self.help = help;
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// Where the primary label starts, for sorting into reading order.
    pub fn position(&self) -> Option<usize> {
        self.labels
            .iter()
            .find(|l| l.primary)
            .or(self.labels.first())
            .map(|l| l.span.start)
    }
}

/// Every problem found in one plan.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Diagnostics {
    pub items: Vec<Diagnostic>,
}

impl Diagnostics {
    pub fn push(&mut self, diagnostic: Diagnostic) {
        self.items.push(diagnostic);
    }

    pub fn errors(&self) -> usize {
        self.items.iter().filter(|d| d.is_error()).count()
    }

    pub fn warnings(&self) -> usize {
        self.items.len() - self.errors()
    }

    pub fn has_errors(&self) -> bool {
        self.items.iter().any(Diagnostic::is_error)
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Reading order: by position in the file; problems about no place in particular last.
    pub fn sort(&mut self) {
        self.items
            .sort_by_key(|d| (d.position().is_none(), d.position().unwrap_or(0)));
    }

    /// Renders every problem against `text`, naming the file `path` (as it should be shown),
    /// followed by a one-line summary when there are errors.
    pub fn render(&self, text: &str, path: &str, color: bool) -> String {
        let renderer = if color {
            Renderer::styled()
        } else {
            Renderer::plain()
        }
        .decor_style(DecorStyle::Ascii);
        let mut out = String::new();
        for diagnostic in &self.items {
            out.push_str(&render_one(&renderer, diagnostic, text, path));
            out.push_str("\n\n");
        }
        if self.has_errors() {
            let summary = format!(
                "invalid plan {path}: {}{}; nothing was changed",
                count(self.errors(), "error"),
                match self.warnings() {
                    0 => String::new(),
                    n => format!(", {}", count(n, "warning")),
                }
            );
            let title = Level::ERROR.primary_title(summary);
            out.push_str(&renderer.render(&[Group::with_title(title)]));
            out.push('\n');
        }
        out
    }
}

/// "1 error", "3 errors".
pub fn count(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("{n} {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

fn render_one(renderer: &Renderer, d: &Diagnostic, text: &str, path: &str) -> String {
    let level = match d.severity {
        Severity::Error => Level::ERROR,
        Severity::Warning => Level::WARNING,
    };
    let mut group = Group::with_title(level.primary_title(d.message.as_str()));
    if !d.labels.is_empty() {
        // The primary label first: annotate-snippets reports the first primary annotation's
        // position in the `-->` line.
        let mut snippet = Snippet::source(text).path(path).fold(true);
        for label in &d.labels {
            let kind = if label.primary {
                AnnotationKind::Primary
            } else {
                AnnotationKind::Context
            };
            snippet = snippet.annotation(kind.span(clamp(&label.span, text)).label(&label.text));
        }
        group = group.element(snippet);
    } else {
        group = group.element(annotate_snippets::Origin::path(path));
    }
    for note in &d.notes {
        group = group.element(Level::NOTE.message(note.as_str()));
    }
    if let Some(help) = &d.help {
        group = group.element(Level::HELP.message(help.as_str()));
    }
    renderer.render(&[group])
}

/// Keeps a span inside the text and on character boundaries (spans of recovered syntax errors
/// can point just past the end).
fn clamp(span: &Span, text: &str) -> Span {
    let mut start = span.start.min(text.len());
    let mut end = span.end.clamp(start, text.len());
    while !text.is_char_boundary(start) {
        start -= 1;
    }
    while !text.is_char_boundary(end) {
        end += 1;
    }
    start..end
}

//! Text for people, usable from every layer: quoting, escaping, sanitising, short ids.
//!
//! File names are chosen by agents and by whoever committed them: anything but `/` and NUL. A
//! name holding an escape sequence, a newline or a bidirectional override, printed raw, can redraw
//! the terminal (a fake "ok" line, a hidden path). Every path shown to a person goes through
//! [`quote_path`]; every path in a command shown to be pasted goes through [`shell_quote`], which
//! uses [`ansi_c_quote`] for such names; agent output goes through [`sanitize`]; other text a
//! person reads that may hold such names (a reason, a note, a commit subject) goes through
//! [`escape_unsafe`].
//!
//! Markdown (a pull request's title and body, `report.md`, the GitHub step summary) is read by a
//! renderer first: a name there is [`quote_path`]d, then put in a code span no backtick inside
//! can close ([`md_code`], or [`md_code_cell`] in a table), and other text is [`md_text`]: every
//! character Markdown gives a meaning to is escaped, so no name or reason can add a heading, an
//! image, a link or an @-mention.

use std::borrow::Cow;
use std::fmt::Write as _;

/// Characters that change how the text around them is drawn: C0/C1 controls (escape, newline,
/// carriage return, backspace...), the Unicode line and paragraph separators, and the
/// bidirectional embeddings, overrides and isolates.
pub fn is_unsafe_char(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// A path as a person reads it: unchanged when it is plain, otherwise in double quotes with each
/// unsafe character escaped as git does (`"a/\033[32mok"`), so what is shown is what is there.
pub fn quote_path(path: &str) -> Cow<'_, str> {
    // A plain path holding a quote stays as it is: only paths that need escapes are quoted, and
    // then their quotes and backslashes are escaped too so the quoting cannot be ended early.
    if !path.chars().any(is_unsafe_char) {
        return Cow::Borrowed(path);
    }
    let mut out = String::with_capacity(path.len() + 8);
    out.push('"');
    for c in path.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if is_unsafe_char(c) => push_escape(&mut out, c),
            c => out.push(c),
        }
    }
    out.push('"');
    Cow::Owned(out)
}

/// Text that names paths inside it (a message from git): each unsafe character escaped where it
/// stands, the rest as it is.
pub fn escape_unsafe(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_unsafe_char) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if is_unsafe_char(c) {
            push_escape(&mut out, c);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Paths for a sentence: each quoted as needed, joined with `, `.
pub fn quote_paths<S: AsRef<str>>(paths: &[S]) -> String {
    paths
        .iter()
        .map(|p| quote_path(p.as_ref()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `$'...'` quoting (bash, zsh, ksh, and POSIX sh since 2024) for a word holding unsafe
/// characters: it pastes back as the same bytes and prints nothing raw.
pub fn ansi_c_quote(word: &str) -> String {
    let mut out = String::with_capacity(word.len() + 8);
    out.push_str("$'");
    for c in word.chars() {
        match c {
            '\'' => out.push_str("\\'"),
            '\\' => out.push_str("\\\\"),
            c if is_unsafe_char(c) => push_escape(&mut out, c),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// An argv as a person would type it in a shell: each word quoted when it needs it
/// (`sh -c 'cargo test'`, not `sh -c cargo test`).
pub fn shell_words<S: AsRef<str>>(argv: &[S]) -> String {
    argv.iter()
        .map(|w| shell_quote(w.as_ref()))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Quotes a word for a POSIX shell when it needs it, for commands shown to people (a path with
/// a space in a printed `cd` must still work when pasted).
pub fn shell_quote(word: &str) -> String {
    if word.chars().any(is_unsafe_char) {
        return ansi_c_quote(word);
    }
    if !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,@%+{}".contains(c))
    {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// Agent output is arbitrary bytes: keep printable text and tabs, drop escape sequences and
/// other control characters before anything reaches a terminal.
pub fn sanitize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' => {
                // CSI sequences: ESC [ ... final byte in @..~
                if chars.peek() == Some(&'[') {
                    chars.next();
                    for c in chars.by_ref() {
                        if ('@'..='~').contains(&c) {
                            break;
                        }
                    }
                }
            }
            '\t' => out.push(' '),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// Text for Markdown as it is, within a line: each character that starts something inline
/// escaped with a backslash (no emphasis, code, link, image, HTML, entity, strikethrough, table
/// cell, @-mention or #-reference can start in it), and each unsafe character escaped as
/// [`escape_unsafe`] does (a newline above all: on a line of its own, anything could start a
/// heading, a list or a quote).
pub fn md_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if MARKDOWN_INLINE.contains(c) {
            out.push('\\');
            out.push(c);
        } else if is_unsafe_char(c) {
            // `\n` would read as an escaped `n` to Markdown: the backslash itself is escaped.
            let mut escaped = String::new();
            push_escape(&mut escaped, c);
            out.push_str(&escaped.replace('\\', "\\\\"));
        } else {
            out.push(c);
        }
    }
    out
}

/// What [`md_text`] escapes.
const MARKDOWN_INLINE: &str = "\\`*_[]!<>&~|@#";

/// A name (a path, a branch) in a Markdown code span that nothing inside can close: quoted as
/// [`quote_path`] does (no newline reaches the Markdown), fenced with more backticks than the
/// longest run inside, and padded with a space where it starts or ends with a backtick or a
/// space (Markdown takes one such space off each side).
pub fn md_code(name: &str) -> String {
    let shown = quote_path(name);
    let mut longest = 0;
    let mut run = 0;
    for c in shown.chars() {
        run = if c == '`' { run + 1 } else { 0 };
        longest = longest.max(run);
    }
    let fence = "`".repeat(longest + 1);
    let pad = if shown.starts_with('`')
        || shown.ends_with('`')
        || (shown.starts_with(' ') && shown.ends_with(' '))
    {
        " "
    } else {
        ""
    };
    format!("{fence}{pad}{shown}{pad}{fence}")
}

/// [`md_code`] for a table cell: a `|` would end the cell even inside the code span, unless
/// escaped (GitHub's tables take the backslash out again).
pub fn md_code_cell(name: &str) -> String {
    md_code(name).replace('|', "\\|")
}

/// The short form of a commit id (or of another hex digest), as messages show it: its first 10
/// characters.
pub fn short(id: &str) -> &str {
    first_chars(id, 10)
}

/// git's own short form, 7 characters: what the messages about remotes and machines show.
pub fn short7(id: &str) -> &str {
    first_chars(id, 7)
}

/// The first `n` characters of `text` (all of it when shorter).
fn first_chars(text: &str, n: usize) -> &str {
    match text.char_indices().nth(n) {
        Some((end, _)) => &text[..end],
        None => text,
    }
}

fn push_escape(out: &mut String, c: char) {
    match c {
        '\n' => out.push_str("\\n"),
        '\t' => out.push_str("\\t"),
        '\r' => out.push_str("\\r"),
        // Octal bytes for the rest, as git prints them (`\033`), for every byte of the
        // character's UTF-8 form.
        c => {
            let mut buf = [0; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                let _ = write!(out, "\\{b:03o}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_paths_are_unchanged() {
        assert_eq!(quote_path("a/b c/é.txt"), "a/b c/é.txt");
        assert_eq!(quote_path("say \"hi\".txt"), "say \"hi\".txt");
    }

    #[test]
    fn unsafe_characters_are_escaped_inside_quotes() {
        assert_eq!(
            quote_path("c/\u{1b}[32mok\n\"x\\"),
            r#""c/\033[32mok\n\"x\\""#
        );
        assert_eq!(
            quote_path("a/\u{202e}txt.exe"),
            r#""a/\342\200\256txt.exe""#
        );
    }

    #[test]
    fn sanitizes_escapes() {
        assert_eq!(sanitize("\u{1b}[31mred\u{1b}[0m\tok\u{7}"), "red ok");
    }

    #[test]
    fn short_ids_are_cut_to_10_or_7_characters() {
        let oid = "0123456789abcdef0123456789abcdef01234567";
        assert_eq!(short(oid), "0123456789");
        assert_eq!(short7(oid), "0123456");
        assert_eq!(short("abc"), "abc");
        assert_eq!(short7(""), "");
    }

    #[test]
    fn markdown_text_cannot_start_anything() {
        assert_eq!(
            md_text("## Approved by @security ![x](y)\n<b> *a* `c` &amp; ~~s~~ | \\"),
            r"\#\# Approved by \@security \!\[x\](y)\\n\<b\> \*a\* \`c\` \&amp; \~\~s\~\~ \| \\"
        );
        assert_eq!(
            md_text("Add /login (v2.1) - fast"),
            "Add /login (v2.1) - fast"
        );
    }

    #[test]
    fn markdown_code_spans_cannot_be_closed() {
        assert_eq!(md_code("src/a.rs"), "`src/a.rs`");
        assert_eq!(md_code("a`b``c"), "```a`b``c```");
        assert_eq!(md_code("`x"), "`` `x ``");
        assert_eq!(md_code(" x "), "`  x  `");
        // A newline never reaches the Markdown: the name is quoted as everywhere else.
        assert_eq!(md_code("a\n## b"), r#"`"a\n## b"`"#);
        assert_eq!(md_code_cell("a|b"), r"`a\|b`");
    }

    #[test]
    fn ansi_c_quoting_escapes_quotes_and_controls() {
        assert_eq!(ansi_c_quote("a'\u{1b}b"), r"$'a\'\033b'");
    }
}

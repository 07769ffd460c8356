//! File names are chosen by agents and by whoever committed them: anything but `/` and NUL. A
//! name holding an escape sequence, a newline or a bidirectional override, printed raw, can redraw
//! the terminal (a fake "ok" line, a hidden path). Every path shown to a person goes through
//! [`quote_path`]; every path in a command shown to be pasted goes through `shell_quote`, which
//! uses [`ansi_c_quote`] for such names.

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
    fn ansi_c_quoting_escapes_quotes_and_controls() {
        assert_eq!(ansi_c_quote("a'\u{1b}b"), r"$'a\'\033b'");
    }
}

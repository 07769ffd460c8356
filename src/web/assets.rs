//! The page's files, built into the binary: nothing is fetched at build or run time, nothing
//! to install beside `streams`. The look and the highlighter are report.html's
//! (`report::html`), so both pages read alike.

use crate::report::html::{HIGHLIGHT_CSS, HIGHLIGHT_JS, HIGHLIGHT_LICENSE, PAGE_CSS};

const INDEX_HTML: &str = include_str!("assets/index.html");
const APP_JS: &str = include_str!("assets/app.js");
const APP_CSS: &str = include_str!("assets/app.css");

/// The page, with the token its script sends with every change (the page is only served to
/// a holder of the token; the token is hex, safe in an attribute).
pub fn index(token: &str) -> String {
    INDEX_HTML.replace("{{TOKEN}}", token)
}

/// An asset by name, with its media type.
pub fn get(name: &str) -> Option<(&'static str, &'static str)> {
    Some(match name {
        "app.js" => ("text/javascript; charset=utf-8", APP_JS),
        "app.css" => ("text/css; charset=utf-8", APP_CSS),
        "page.css" => ("text/css; charset=utf-8", PAGE_CSS),
        "highlight.js" => ("text/javascript; charset=utf-8", HIGHLIGHT_JS),
        "highlight.css" => ("text/css; charset=utf-8", HIGHLIGHT_CSS),
        "highlight.LICENSE.txt" => ("text/plain; charset=utf-8", HIGHLIGHT_LICENSE),
        _ => return None,
    })
}

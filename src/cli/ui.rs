//! `streams ui`: serve the repository's runs as a local web page (see `crate::web`).

use crate::error::{ExitCode, Result};

use super::{Context, UiArgs};

pub fn ui(ctx: &Context, args: UiArgs) -> Result<ExitCode> {
    let repo = crate::ops::load::open_repo(&ctx.cwd)?;
    // An unknown run or plan is refused now, with the runs there are, not on the page.
    let selector =
        crate::ops::runs::Selector::new(&ctx.cwd, args.plan.as_deref(), args.run.as_deref())?;
    if selector.run.is_some() || selector.plan.is_some() {
        crate::ops::show::find_run(&repo, &selector)?;
    }
    let options = crate::web::Options {
        port: args.port.unwrap_or(0),
        run: selector.run,
        plan: selector.plan,
    };
    crate::web::serve(repo, options, |url| {
        // The address is the command's data: stdout, one line, for a script to read.
        if let Err(e) = crate::report::print_data(&format!("{url}\n")) {
            ctx.ui.warn(format!("could not print the address: {e}"));
        }
        ctx.ui.info(format!(
            "serving this repository's runs at {url} (this machine only; Ctrl-C stops it)"
        ));
        if args.open {
            open_browser(ctx, url);
        }
    })?;
    Ok(ExitCode::Success)
}

/// Opens the address in the person's browser, or says how to.
fn open_browser(ctx: &Context, url: &str) {
    let opener = if cfg!(target_os = "macos") {
        "open"
    } else {
        "xdg-open"
    };
    let started = std::process::Command::new(opener)
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
    if let Err(e) = started {
        ctx.ui.warn(format!(
            "could not open a browser with `{opener}` ({e}): open the address above yourself"
        ));
    }
}

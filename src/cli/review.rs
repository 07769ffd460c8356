//! `streams show`, `diff`, `logs` and `pr`: reviewing what a run's streams did.

use crate::error::{ExitCode, Result};
use crate::ops;
use crate::report::{print_data, print_json, printer, show_view};

use super::{ColorChoice, Context, DiffArgs, LogsArgs, PrArgs, ShowArgs};

pub fn show(ctx: &Context, args: ShowArgs) -> Result<ExitCode> {
    let repo = ops::load::open_repo(&ctx.cwd)?;
    let picked = ops::show::find_run(&repo, &ctx.selector(&args.which)?)?;
    ctx.say_choice("show", picked.choice.as_ref());
    let (dir, state) = (picked.dir, picked.state);
    let show = ops::show::show(&repo, &dir, &state, args.stream.as_deref())?;
    if args.json {
        print_json(&show)?;
    } else {
        print_data(&show_view::render(&show))?;
    }
    Ok(ExitCode::Success)
}

pub fn diff(ctx: &Context, args: DiffArgs) -> Result<ExitCode> {
    let repo = ops::load::open_repo(&ctx.cwd)?;
    let picked = ops::show::find_run(&repo, &ctx.selector(&args.which)?)?;
    ctx.say_choice("diff", picked.choice.as_ref());
    let state = picked.state;
    let range = match (&args.stream, args.resolution) {
        (Some(stream), true) => ops::diff::resolution_range(&state, stream)?,
        _ => ops::diff::range(&repo, &state, args.stream.as_deref())?,
    };
    // git decides under `auto` (its config, whether stdout is a terminal), as for `git diff`;
    // NO_COLOR is streams' convention, which git does not read.
    let color = match ctx.color {
        ColorChoice::Always => Some(true),
        ColorChoice::Never => Some(false),
        ColorChoice::Auto => std::env::var_os("NO_COLOR")
            .is_some_and(|v| !v.is_empty())
            .then_some(false),
    };
    let code = ops::diff::show(
        &range,
        &ops::diff::DiffOptions {
            dir: &ctx.cwd,
            stat: args.stat,
            paths: &args.paths,
            color,
        },
    )?;
    // git has said what went wrong on stderr already.
    Ok(if code == 0 {
        ExitCode::Success
    } else {
        ExitCode::Internal
    })
}

/// How often `logs -f` looks at the log and the run state.
const FOLLOW_INTERVAL: std::time::Duration = std::time::Duration::from_millis(100);

pub fn logs(ctx: &Context, args: LogsArgs) -> Result<ExitCode> {
    let repo = ops::load::open_repo(&ctx.cwd)?;
    let picked = ops::show::find_run(&repo, &ctx.selector(&args.which)?)?;
    ctx.say_choice("logs", picked.choice.as_ref());
    let (dir, state) = (picked.dir, picked.state);
    let log = ops::logs::task_log(&dir, &state, &args.stream, args.task)?;
    if !args.follow && !log.path.exists() {
        return Err(ops::logs::no_log(&log));
    }
    // A log is the agent's raw output: sanitised for a terminal, passed on as is to a pipe.
    let terminal = printer::stdout_is_terminal();
    let write = |bytes: &[u8]| -> std::io::Result<()> {
        if terminal {
            let text = String::from_utf8_lossy(bytes);
            let clean: Vec<String> = text.split('\n').map(crate::report::sanitize).collect();
            printer::write_stdout(clean.join("\n").as_bytes())
        } else {
            printer::write_stdout(bytes)
        }
    };
    let mut follower = ops::logs::Follower::new(&repo, dir, log);
    if args.follow {
        ctx.ui.detail(format!(
            "following {} (task {} of {}) until the task ends",
            follower.log().path.display(),
            follower.log().task + 1,
            follower.log().stream
        ));
    }
    loop {
        match follower.poll()? {
            ops::logs::Poll::Data(bytes) => {
                if let Err(e) = write(&bytes) {
                    // The reader went away (`| head`): that is the end, not an error.
                    if e.kind() == std::io::ErrorKind::BrokenPipe {
                        return Ok(ExitCode::Success);
                    }
                    return Err(crate::error::Error::io("could not write the log", e));
                }
            }
            ops::logs::Poll::Waiting if args.follow => std::thread::sleep(FOLLOW_INTERVAL),
            ops::logs::Poll::Waiting | ops::logs::Poll::Ended => return Ok(ExitCode::Success),
        }
    }
}

pub fn pr(ctx: &Context, args: PrArgs) -> Result<ExitCode> {
    let repo = ops::load::open_repo(&ctx.cwd)?;
    let picked = ops::show::find_run(&repo, &ctx.selector(&args.which)?)?;
    ctx.say_choice("pr", picked.choice.as_ref());
    let (dir, state) = (picked.dir, picked.state);
    let outcome = ops::pr::pr(
        &repo,
        &dir,
        &state,
        &ops::pr::PrRequest {
            streams: &args.streams,
            remote: &args.remote,
            integration: args.integration,
            base: args.base.as_deref(),
            draft: args.draft,
            dry_run: args.dry_run,
        },
    )?;
    print_data(&crate::report::pr_view::render_outcome(&outcome))?;
    if let crate::report::pr_view::PrOutcome::DryRun {
        gh_missing: true, ..
    } = outcome
    {
        ctx.ui.warn(crate::report::pr_view::GH_MISSING);
    }
    Ok(ExitCode::Success)
}

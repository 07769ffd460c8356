//! `streams demo`: a whole run on a throwaway repository, no setup needed.

use crate::error::{ExitCode, Result};
use crate::ops;

use super::{Context, DemoArgs, RunArgs};

pub fn demo(ctx: &Context, args: DemoArgs) -> Result<ExitCode> {
    let dir = ops::demo::directory(&ctx.cwd, args.dir.as_deref())?;
    ops::demo::create(&dir)?;
    ctx.ui.info(format!("demo repository: {}", dir.display()));
    ctx.ui.info(
        "plan: streams.toml (db -> api -> docs, and ui beside them); agent: scripts/agent.sh\n",
    );
    let demo_ctx = Context {
        cwd: dir.clone(),
        ui: ctx.ui.clone(),
        color: ctx.color,
    };
    let code = super::run::run(
        &demo_ctx,
        RunArgs {
            plan: None,
            jobs: Some(args.jobs),
            json: false,
            dry_run: false,
            fail_fast: false,
            restart: false,
            prompts: false,
            no_check: false,
            no_gate: false,
            machine: Default::default(),
            report: Default::default(),
        },
    )?;
    let workspaces = ops::demo::workspaces_dir(&dir);
    for line in crate::report::hints::demo_closing(&dir, &workspaces, &streams_command()) {
        ctx.ui.info(line);
    }
    Ok(code)
}

/// How to run this `streams` from anywhere: `streams` when that name on PATH is this binary,
/// else the binary's full path (a `cargo run` build, say, is on no PATH).
fn streams_command() -> String {
    let Ok(me) = std::env::current_exe().and_then(|p| p.canonicalize()) else {
        return "streams".to_string();
    };
    let on_path = std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path).any(|dir| {
            dir.join("streams")
                .canonicalize()
                .is_ok_and(|found| found == me)
        })
    });
    if on_path {
        "streams".to_string()
    } else {
        crate::report::shell_quote(&me.display().to_string())
    }
}

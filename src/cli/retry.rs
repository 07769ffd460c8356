//! `streams retry`: run streams of a finished run again on top of its integration branch.

use crate::error::{ExitCode, Result};
use crate::ops;

use super::session;
use super::{Context, RetryArgs};

pub fn retry(ctx: &Context, args: RetryArgs) -> Result<ExitCode> {
    let current = ops::session::current(ops::load::open_repo(&ctx.cwd)?, "retry")?;
    let (mut parts, _lock) = ops::session::engine_parts(current)?;
    let reopened = ops::retry::reopen(
        &parts.repo,
        &parts.plan,
        &mut parts.state,
        &args.streams,
        args.with_dependents,
    )?;
    crate::report::session_view::retrying(
        &ctx.ui,
        &parts.state,
        &reopened.streams,
        &reopened
            .kept
            .iter()
            .map(|(name, oid)| (name.clone(), oid.to_string()))
            .collect::<Vec<_>>(),
    );
    let ended = session::start(ctx, parts, "retry", args.json, None).run()?;
    session::conclude(ctx, ended, args.report.junit.as_deref())
}

use super::{Context, ResumeArgs, SkipArgs};
use crate::error::{Error, ExitCode, Result};
pub fn continue_run(_ctx: &Context) -> Result<ExitCode> {
    Err(Error::Internal("not built yet".into()))
}
pub fn skip(_ctx: &Context, _a: SkipArgs) -> Result<ExitCode> {
    Err(Error::Internal("not built yet".into()))
}
pub fn abort(_ctx: &Context) -> Result<ExitCode> {
    Err(Error::Internal("not built yet".into()))
}
pub fn resume(_ctx: &Context, _a: ResumeArgs) -> Result<ExitCode> {
    Err(Error::Internal("not built yet".into()))
}

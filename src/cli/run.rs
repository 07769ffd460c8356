use super::{Context, RunArgs};
use crate::error::{Error, ExitCode, Result};
pub fn run(_ctx: &Context, _args: RunArgs) -> Result<ExitCode> {
    Err(Error::Internal("run: not built yet".into()))
}

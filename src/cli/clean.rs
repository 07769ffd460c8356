use super::{CleanArgs, Context};
use crate::error::{Error, ExitCode, Result};
pub fn clean(_ctx: &Context, _args: CleanArgs) -> Result<ExitCode> {
    Err(Error::Internal("clean: not built yet".into()))
}

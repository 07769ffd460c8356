use super::{Context, StatusArgs};
use crate::error::{Error, ExitCode, Result};
pub fn status(_ctx: &Context, _args: StatusArgs) -> Result<ExitCode> {
    Err(Error::Internal("status: not built yet".into()))
}

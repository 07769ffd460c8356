use super::{Context, DemoArgs};
use crate::error::{Error, ExitCode, Result};
pub fn demo(_ctx: &Context, _args: DemoArgs) -> Result<ExitCode> {
    Err(Error::Internal("demo: not built yet".into()))
}

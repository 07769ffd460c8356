//! The one integration-test binary: every test drives the real `streams` binary against a
//! temporary, hermetic git repository (see `common`).

mod abort;
mod clean;
mod common;
mod coordinator;
mod crash;
mod plan;
mod private;
mod run;
mod scenarios;
mod status;

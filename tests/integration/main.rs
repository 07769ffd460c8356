//! The one integration-test binary: every test drives the real `streams` binary against a
//! temporary, hermetic git repository (see `common`), with the builders and the normaliser
//! several files share in `support` (`tests/support/`).

mod abort;
mod agents;
mod ahead;
mod ci;
mod ci_github;
mod clean;
mod cli;
mod common;
mod coordinator;
mod counted;
mod crash;
mod cwd;
mod edges;
mod forgery;
mod gate;
mod init;
mod init_from;
mod layering;
mod learn;
mod ledger;
mod machines;
mod output;
mod park;
mod plan;
mod presets;
mod private;
mod reading;
mod rerun;
mod resolve;
mod review;
mod run;
mod runs;
mod sandbox;
mod scenarios;
mod scenes;
mod smaller;
mod sparse;
mod state_shown;
mod status;
#[path = "../support/mod.rs"]
mod support;
mod web;
mod workspace;

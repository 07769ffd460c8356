//! The one integration-test binary: every test drives the real `streams` binary against a
//! temporary, hermetic git repository (see `common`).

mod abort;
mod agents;
mod ahead;
mod ci;
mod ci_github;
mod clean;
mod cli;
mod common;
mod coordinator;
mod crash;
mod forgery;
mod gate;
mod init;
mod init_from;
mod layering;
mod learn;
mod ledger;
mod machines;
mod output;
mod plan;
mod presets;
mod private;
mod rerun;
mod review;
mod run;
mod runs;
mod sandbox;
mod scenarios;
mod sparse;
mod status;
mod web;
mod workspace;

//! What the integration tests share besides `common`'s repository and binary: the builders
//! several test files use (one module per kind), the hermetic git environment and the one
//! normaliser that makes whole outputs snapshottable.
//!
//! A builder lives here as soon as a second test file needs it; a builder one file uses stays
//! in that file.

#![allow(dead_code)]

pub mod hermetic;
pub mod interrupt;
pub mod plans;
pub mod redact;
pub mod repos;
pub mod runs;
pub mod trial;

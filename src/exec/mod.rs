//! Running agents.

//! Sync points: integrate a stream's commits onto the integration branch.

//! Run state.

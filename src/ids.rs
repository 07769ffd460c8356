//! Ids the layers pass each other instead of bare indices (a leaf: any layer may use it).
//!
//! A run's streams are in the plan's order, in the plan and in the run's state alike (both are
//! built from the run's copy of the plan), so one [`StreamId`] names a stream in either; a
//! [`TaskId`] names a task of a stream by its place in it.

/// A stream, by its place in the plan (and in its run's state).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StreamId(usize);

impl StreamId {
    pub fn new(index: usize) -> StreamId {
        StreamId(index)
    }

    /// Its place in the plan's (and the state's) list of streams.
    pub fn index(self) -> usize {
        self.0
    }

    /// Its task at `index` (zero-based).
    pub fn task(self, index: usize) -> TaskId {
        TaskId {
            stream: self,
            index,
        }
    }
}

/// A task of a stream, by its place in the stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TaskId {
    pub stream: StreamId,
    /// Zero-based; people count from 1 ([`TaskId::number`]).
    pub index: usize,
}

impl TaskId {
    /// The task's number as people read it (`task 1` is the first).
    pub fn number(self) -> usize {
        self.index + 1
    }
}

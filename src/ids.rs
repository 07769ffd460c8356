//! Ids every layer passes around, as plain data (a leaf: any layer may use it): no layer needs
//! the one that made an id to hold, compare or print it.
//!
//! A commit's [`Oid`]. A run's streams are in the plan's order, in the plan and in the run's
//! state alike (both are built from the run's copy of the plan), so one [`StreamId`] names a
//! stream in either; a [`TaskId`] names a task of a stream by its place in it, instead of bare
//! indices.

/// A commit, tree or blob id as 40 hex characters. Its own type so that an id is never mixed up
/// with a ref name or a path; kept as text inside (it crosses into state files, events and
/// messages far more often than into git2) and serialized as a plain string, so state files
/// are the same as when it was a `String`.
#[derive(
    Clone,
    Debug,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(transparent)]
pub struct Oid(String);

impl Oid {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::ops::Deref for Oid {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for Oid {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::borrow::Borrow<str> for Oid {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Oid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<String> for Oid {
    fn from(text: String) -> Oid {
        Oid(text)
    }
}

impl From<&str> for Oid {
    fn from(text: &str) -> Oid {
        Oid(text.to_string())
    }
}

impl From<Oid> for String {
    fn from(oid: Oid) -> String {
        oid.0
    }
}

impl PartialEq<str> for Oid {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for Oid {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl PartialEq<String> for Oid {
    fn eq(&self, other: &String) -> bool {
        &self.0 == other
    }
}

impl PartialEq<Oid> for str {
    fn eq(&self, other: &Oid) -> bool {
        self == other.0
    }
}

impl PartialEq<Oid> for &str {
    fn eq(&self, other: &Oid) -> bool {
        *self == other.0
    }
}

impl PartialEq<Oid> for String {
    fn eq(&self, other: &Oid) -> bool {
        *self == other.0
    }
}

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

//! Ids every layer passes around, as plain data: no layer needs the one that made an id to
//! hold, compare or print it.

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

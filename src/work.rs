//! What a piece of work amounts to, as plain data every layer may hold: its size, one file's
//! change, the ignored files an agent wrote. `git` measures them, `state` keeps them, `report`
//! shows them; none of those needs the one that made them.

/// What a task's work amounts to.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct WorkStats {
    pub commits: usize,
    pub files: usize,
    pub insertions: usize,
    pub deletions: usize,
}

impl WorkStats {
    pub fn add(&mut self, other: &WorkStats) {
        self.commits += other.commits;
        self.files += other.files;
        self.insertions += other.insertions;
        self.deletions += other.deletions;
    }
}

/// One file's change between two commits, as `git diff --numstat` counts it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct FileChange {
    pub path: String,
    /// The path before a rename, when git saw one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub renamed_from: Option<String>,
    /// Lines added and removed; `None` for a binary file.
    pub insertions: Option<usize>,
    pub deletions: Option<usize>,
}

/// Ignored paths an agent wrote: how many, and the first few in path order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IgnoredFiles {
    pub count: usize,
    pub examples: Vec<String>,
}

//! Who owns which path: compiled globsets, `owner_of`, and checking an agent's changed paths.
//!
//! Patterns are gitignore-style globs matched against the whole path from the repository root
//! (`*` stays within one directory, `**` crosses them). All patterns of a plan are compiled into
//! one `GlobSet`, so classifying a path costs one automaton pass however many streams there are.

use globset::{Glob, GlobSet, GlobSetBuilder};

use crate::plan::{Pattern, Plan};

/// Who may change a path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Owner {
    /// Owned by exactly this stream (index into `plan.streams`).
    Stream(usize),
    /// Listed in the plan's `shared`: any stream may edit it.
    Shared,
    /// Owned by no stream: read-only for every agent.
    Nobody,
}

/// A changed path a stream was not allowed to touch, and who does own it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    pub path: String,
    pub owner: Owner,
}

/// Compiles one pattern the way every part of streams does (the plan validator uses the same
/// function, so what it checked is what the engine enforces).
pub fn compile(glob: &str) -> Result<Glob, globset::Error> {
    crate::plan::pattern::compile(glob)
}

pub struct Ownership {
    set: GlobSet,
    /// For each glob in `set`, who it belongs to.
    owners: Vec<Owner>,
}

impl Ownership {
    /// Compiles the plan's patterns. The plan was validated, so every pattern compiles.
    pub fn new(plan: &Plan) -> Ownership {
        let mut builder = GlobSetBuilder::new();
        let mut owners = Vec::new();
        let mut add = |pattern: &Pattern, owner: Owner| {
            if let Ok(glob) = compile(&pattern.glob) {
                builder.add(glob);
                owners.push(owner);
            }
        };
        for (index, stream) in plan.streams.iter().enumerate() {
            for pattern in &stream.owns {
                add(pattern, Owner::Stream(index));
            }
        }
        for pattern in &plan.shared {
            add(pattern, Owner::Shared);
        }
        let set = builder.build().unwrap_or_else(|_| GlobSet::empty());
        Ownership { set, owners }
    }

    /// Who owns `path`. A stream's ownership wins over `shared` (validation forbids the overlap
    /// for tracked files; this order only matters for paths created later).
    pub fn owner_of(&self, path: &str) -> Owner {
        let mut shared = false;
        for index in self.set.matches(path) {
            match &self.owners[index] {
                owner @ Owner::Stream(_) => return owner.clone(),
                Owner::Shared => shared = true,
                Owner::Nobody => {}
            }
        }
        if shared { Owner::Shared } else { Owner::Nobody }
    }

    /// The paths among `changed` that `stream` may not change, with their owners.
    pub fn check<'a>(
        &self,
        stream: usize,
        changed: impl IntoIterator<Item = &'a str>,
    ) -> Vec<Violation> {
        changed
            .into_iter()
            .filter_map(|path| match self.owner_of(path) {
                Owner::Stream(s) if s == stream => None,
                Owner::Shared => None,
                owner => Some(Violation {
                    path: path.to_string(),
                    owner,
                }),
            })
            .collect()
    }
}

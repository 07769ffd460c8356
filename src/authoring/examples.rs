//! The example plans in `streams/`, built into the binary so that `cargo install` users have them
//! (`streams init --example NAME`), with the files they refer to.

/// An example plan shipped in the binary, with the files it refers to.
pub struct Example {
    pub name: &'static str,
    pub text: &'static str,
    /// Files the plan names (prompt files), relative to the plan's directory.
    pub files: &'static [(&'static str, &'static str)],
}

impl Example {
    /// What the example is: the first sentence of its opening comment.
    pub fn summary(&self) -> String {
        let comment: Vec<&str> = self
            .text
            .lines()
            .map_while(|l| l.strip_prefix('#'))
            .map(str::trim)
            .collect();
        let comment = comment.join(" ");
        match comment.find(". ") {
            Some(end) => comment[..=end].to_string(),
            None => comment,
        }
    }
}

/// The plans in `streams/`, embedded so that `cargo install` users have them
/// (`streams init --example NAME`).
pub const EXAMPLES: &[Example] = &[
    Example {
        name: "agents",
        text: include_str!("../../streams/agents.toml"),
        files: &[(
            "prompts/db-indexes.md",
            include_str!("../../streams/prompts/db-indexes.md"),
        )],
    },
    Example {
        name: "node",
        text: include_str!("../../streams/node.toml"),
        files: &[(
            ".worktreeinclude",
            include_str!("../../streams/node.worktreeinclude"),
        )],
    },
    Example {
        name: "script",
        text: include_str!("../../streams/script.toml"),
        files: &[],
    },
    Example {
        name: "webapp",
        text: include_str!("../../streams/webapp.toml"),
        files: &[],
    },
];

pub fn example(name: &str) -> Option<&'static Example> {
    EXAMPLES.iter().find(|e| e.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_plan_in_streams_is_embedded() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("streams");
        let mut on_disk: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter_map(|n| n.strip_suffix(".toml").map(str::to_string))
            .collect();
        on_disk.sort();
        let embedded: Vec<&str> = EXAMPLES.iter().map(|e| e.name).collect();
        assert_eq!(on_disk, embedded);
        for e in EXAMPLES {
            assert!(!e.summary().is_empty(), "{} has no summary line", e.name);
        }
    }
}

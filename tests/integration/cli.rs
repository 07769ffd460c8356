//! The command line itself: shell completions, the man page, and how `--help` reads.

use crate::common::TestRepo;

/// Every subcommand a user can type.
const SUBCOMMANDS: &[&str] = &[
    "plan",
    "run",
    "status",
    "continue",
    "skip",
    "abort",
    "resume",
    "retry",
    "merge",
    "clean",
    "ui",
    "demo",
    "init",
    "completions",
    "man",
];

#[test]
fn completions_for_every_shell_name_the_subcommands() {
    let repo = TestRepo::empty();
    let help = repo.streams(&["--help"]).stdout;
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        // What `--help` says it supports is what it takes.
        assert!(
            help.contains(shell),
            "`streams --help` does not name {shell}"
        );
        let out = repo.streams(&["completions", shell]);
        out.assert_code(0);
        assert_eq!(out.stderr, "", "{shell}");
        for sub in SUBCOMMANDS {
            assert!(out.stdout.contains(sub), "{shell} completions lack `{sub}`");
        }
        // Flags of subcommands too, not just their names.
        assert!(out.stdout.contains("dry-run"), "{shell}");
    }
    repo.streams(&["completions", "tcsh"]).assert_code(2);
}

#[test]
fn man_page_lists_the_subcommands() {
    let repo = TestRepo::empty();
    let out = repo.streams(&["man"]);
    out.assert_code(0);
    assert!(
        out.stdout.starts_with(".ie"),
        "not roff:\n{}",
        &out.stdout[..200.min(out.stdout.len())]
    );
    assert!(out.stdout.contains(".TH streams 1"), "no title header");
    for sub in SUBCOMMANDS {
        assert!(out.stdout.contains(sub), "the man page lacks `{sub}`");
    }
}

/// Global flags under their own heading, apart from what `run` itself takes.
#[test]
fn subcommand_help_keeps_global_flags_apart() {
    let repo = TestRepo::empty();
    let out = repo.streams(&["run", "--help"]);
    out.assert_code(0);
    insta::assert_snapshot!(out.to_string());
}

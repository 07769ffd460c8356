//! Each parser against the real streams recorded in `fixtures/agents/recorded/` (see the README
//! there): what each scenario must read as.

use super::*;

fn recorded(cli: Cli, scenario: &str) -> String {
    let ext = if cli == Cli::Aider { "txt" } else { "jsonl" };
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/agents/recorded")
        .join(cli.name())
        .join(format!("{scenario}.{ext}"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// 2026-12-07 13:14:00 UTC, when the fixtures were recorded.
const NOW: u64 = 1_796_649_240;

fn seen(cli: Cli, scenario: &str) -> Observed {
    observe(
        cli,
        &recorded(cli, scenario),
        Some(Path::new("[TMP]/repo")),
        NOW,
    )
}

fn usage(input: u64, output: u64, cache_read: u64, cache_write: u64) -> (u64, u64, u64, u64) {
    (input, output, cache_read, cache_write)
}

fn tokens(observed: &Observed) -> (u64, u64, u64, u64) {
    let u = observed.usage.as_ref().expect("usage");
    (u.input, u.output, u.cache_read, u.cache_write)
}

/// The scripted figures of the recording (README there): 1000 in, 300 cache read, 40 cache
/// write, 50 out; 1200 in, 30 out; 1300 in, 10 out.
const EDIT_AND_COMMIT: (u64, u64, u64, u64) = (3500, 90, 300, 40);

#[test]
fn a_finished_run_reads_as_finished_with_its_usage_session_and_last_action() {
    let claude = seen(Cli::Claude, "edit-and-commit");
    assert!(claude.finished && claude.failure.is_none() && claude.refusals.is_empty());
    assert_eq!(tokens(&claude), EDIT_AND_COMMIT);
    let u = claude.usage.as_ref().unwrap();
    assert_eq!(u.turns, Some(3));
    assert_eq!(u.models, ["claude-sonnet-4-5"]);
    assert!((u.cost_usd.unwrap() - 0.01209).abs() < 1e-9);
    assert_eq!(
        claude.session.as_deref(),
        Some("d468ab8c-dc5b-446c-945a-4bed8844ba56")
    );
    assert_eq!(
        claude.activity.as_ref().unwrap().to_string(),
        "Bash git add -A && git commit -q -m 'Add hello'"
    );
    assert!(!claude.troubled());

    let codex = seen(Cli::Codex, "edit-and-commit");
    assert!(codex.finished && codex.failure.is_none());
    // Codex cannot tell a cache write from uncached input: it is in the input.
    assert_eq!(tokens(&codex), usage(3540, 90, 300, 0));
    assert_eq!(
        codex.session.as_deref(),
        Some("01a250a3-f48e-7d92-8b8e-07208549d9f3")
    );
    assert_eq!(
        codex.activity.as_ref().unwrap().to_string(),
        "exec git add -A && git commit -q -m 'Add hello'"
    );
    assert_eq!(
        codex.answer.as_deref(),
        Some("Created and committed src/a/hello.txt.")
    );

    let gemini = seen(Cli::Gemini, "edit-and-commit");
    assert!(gemini.finished && gemini.failure.is_none());
    assert_eq!(tokens(&gemini), usage(3540, 90, 300, 0));
    assert_eq!(gemini.usage.as_ref().unwrap().models, ["gemini-2.5-pro"]);
    assert_eq!(
        gemini.activity.as_ref().unwrap().to_string(),
        "run_shell_command git add -A && git commit -q -m 'Add hello'"
    );

    let qwen = seen(Cli::Qwen, "edit-and-commit");
    assert!(qwen.finished && qwen.failure.is_none());
    assert_eq!(tokens(&qwen), usage(3540, 90, 300, 0));
    assert_eq!(
        qwen.session.as_deref(),
        Some("65a94488-ccc1-40b8-bd62-a24b7457fa46")
    );

    let aider = seen(Cli::Aider, "edit-and-commit");
    assert!(aider.finished && aider.failure.is_none());
    // "1.3k sent, 50 received": aider's own rounding.
    assert_eq!(tokens(&aider), usage(1300, 50, 0, 0));
    assert_eq!(aider.usage.as_ref().unwrap().cost_usd, Some(0.0026));
    assert_eq!(
        aider.activity.as_ref().unwrap().to_string(),
        "commit Add hello"
    );
    assert_eq!(aider.session.as_deref(), Some(aider::HISTORY_SESSION));
}

#[test]
fn activity_targets_are_shown_relative_to_the_workspace() {
    let output = recorded(Cli::Claude, "sigterm-waiting");
    let activity = last_activity(Cli::Claude, &output, Some(Path::new("[TMP]/repo"))).unwrap();
    assert_eq!(activity.to_string(), "Write src/a/hello.txt");
    let codex = last_activity(
        Cli::Codex,
        &recorded(Cli::Codex, "sigint-waiting"),
        Some(Path::new("[TMP]/repo")),
    )
    .unwrap();
    assert_eq!(codex.to_string(), "edit src/a/hello.txt");
}

#[test]
fn refusals_are_read_and_quoted() {
    let claude = seen(Cli::Claude, "refusal");
    assert!(claude.troubled());
    assert_eq!(claude.failure, None, "a refusal, not an error");
    // Claude Code's `result` holds its own fixed text; the model's words, in the assistant
    // message before it, come first.
    assert!(
        claude.said()[0].starts_with(
            "refused: the model said \"I can't help with that request.\" (API Error: Claude Code \
             is unable to respond to this request"
        ),
        "{:?}",
        claude.said()
    );
    assert_eq!(claude.refusals.len(), 1, "{:?}", claude.refusals);
    // Ended before its result (killed): the refusal event and the model's words are all there is.
    let output = recorded(Cli::Claude, "refusal");
    let cut: String = output
        .lines()
        .take_while(|l| !l.contains("\"type\":\"result\""))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(
        observe(Cli::Claude, &cut, None, NOW).refusals,
        ["the model said \"I can't help with that request.\""]
    );
    // Words followed by an action are not what it refused with.
    let acted = output.replacen(
        "\"type\":\"system\",\"subtype\":\"model_refusal_no_fallback\"",
        "\"type\":\"user\",\"message\":{\"content\":[]},\"subtype\":\"model_refusal_no_fallback\"",
        1,
    );
    let acted = observe(Cli::Claude, &acted, None, NOW);
    assert!(
        acted.refusals[0].starts_with("API Error: Claude Code is unable"),
        "{:?}",
        acted.refusals
    );
    // The others say it in plain text: what a person is shown is the model's message.
    for cli in [Cli::Gemini, Cli::Qwen, Cli::Aider] {
        let observed = seen(cli, "refusal");
        assert!(observed.finished, "{cli:?}");
        assert_eq!(
            observed.said(),
            ["its last message: I can't help with that request."],
            "{cli:?}"
        );
    }
    // Codex drops a refusal: no message at all.
    assert_eq!(
        seen(Cli::Codex, "refusal").said(),
        ["its model gave no answer"]
    );
}

#[test]
fn permission_denials_and_failed_commands_are_read() {
    let claude = seen(Cli::Claude, "permission-denied");
    assert!(claude.finished && claude.failure.is_none());
    assert_eq!(
        claude.refusals,
        ["permission denied: Bash git add -A && git commit -q -m 'Add hello'"]
    );
    assert!(claude.errors[0].contains("require approval"), "{claude:?}");
    let codex = seen(Cli::Codex, "permission-denied");
    assert!(codex.finished && codex.refusals.is_empty());
    assert_eq!(
        codex.errors,
        [
            "`git add -A && git commit -q -m 'Add hello'` failed (exit 128): fatal: Unable to create '[TMP]/repo/.git/index.lock': Read-only file system"
        ]
    );
}

#[test]
fn api_errors_fail_the_run_whatever_its_exit_code() {
    let expect = |cli: Cli, message: &str| {
        let observed = seen(cli, "error");
        assert_eq!(observed.failure.as_deref(), Some(message), "{cli:?}");
        assert!(observed.troubled() && observed.limit.is_none(), "{cli:?}");
    };
    expect(Cli::Claude, "API Error: 400 scripted invalid request");
    expect(Cli::Codex, "scripted invalid request");
    expect(Cli::Gemini, "scripted invalid request");
    // Qwen calls it a success.
    expect(Cli::Qwen, "[API Error: 400 scripted invalid request]");
    // aider exits 0 with no answer.
    let aider = seen(Cli::Aider, "error");
    assert!(!aider.finished);
    assert_eq!(
        aider.failure.as_deref(),
        Some("OpenAIException - scripted invalid request")
    );
}

#[test]
fn usage_limits_are_recognised_with_their_reset_time_where_the_cli_gives_one() {
    let claude = seen(Cli::Claude, "usage-limit");
    let limit = claude.limit.as_ref().expect("a limit");
    assert!(
        limit
            .message
            .starts_with("API Error: Request rejected (429)")
    );
    assert_eq!(limit.resets_at, None, "an API key gets no reset time");
    assert_eq!(claude.failure, None);
    let subscription = seen(Cli::Claude, "usage-limit-subscription");
    assert_eq!(
        subscription.limit.as_ref().unwrap().resets_at,
        Some(1_796_652_886)
    );
    let codex = seen(Cli::Codex, "usage-limit");
    // "try again at 2:14 PM" (UTC), recorded at 13:14.
    assert_eq!(codex.limit.as_ref().unwrap().resets_at, Some(NOW + 3600));
    assert_eq!(codex.failure, None);
    let gemini = seen(Cli::Gemini, "usage-limit");
    assert!(
        gemini
            .limit
            .as_ref()
            .unwrap()
            .message
            .contains("exhausted your daily quota")
    );
    let aider = seen(Cli::Aider, "usage-limit");
    assert!(aider.limit.is_some() && !aider.finished);
    // Qwen retries on its own and never says: nothing but its start.
    let qwen = seen(Cli::Qwen, "usage-limit");
    assert!(!qwen.finished && qwen.limit.is_none());
}

#[test]
fn codex_reset_times_name_the_next_such_time() {
    use codex::reset_time;
    // 2026-12-07 13:14:00 UTC
    let at = |text: &str| reset_time(&format!("... or try again at {text}."), NOW);
    assert_eq!(at("2:14 PM"), Some(NOW + 3600));
    assert_eq!(at("1:14 PM"), Some(NOW), "the current minute: now");
    assert_eq!(at("1:00 PM"), Some(NOW + 86_400 - 14 * 60), "tomorrow");
    assert_eq!(
        at("Dec 9th, 2026 8:12 PM"),
        Some(NOW + 2 * 86_400 + 7 * 3600 - 2 * 60)
    );
    assert_eq!(reset_time("no time here", NOW), None);
}

#[test]
fn a_run_stopped_by_a_signal_did_not_finish() {
    for (cli, scenario) in [
        (Cli::Claude, "sigint-waiting"),
        (Cli::Claude, "sigterm-in-tool"),
        (Cli::Codex, "sigint-in-tool"),
        (Cli::Gemini, "sigint-waiting"),
        (Cli::Qwen, "sigterm-in-tool"),
        (Cli::Aider, "sigint-waiting"),
    ] {
        let observed = seen(cli, scenario);
        assert!(!observed.finished, "{cli:?} {scenario}");
        assert!(
            observed
                .said()
                .contains(&"it ended without its final report".to_string()),
            "{cli:?} {scenario}: {:?}",
            observed.said()
        );
    }
    // Claude interrupted in a tool still reports, as a failed run with the usage so far.
    let claude = seen(Cli::Claude, "sigint-in-tool");
    assert!(claude.finished);
    assert_eq!(claude.failure.as_deref(), Some("interrupted"));
    assert_eq!(tokens(&claude), usage(1100, 70, 300, 40));
}

#[test]
fn a_resumed_run_keeps_its_session_and_reports_its_own_usage() {
    let claude = seen(Cli::Claude, "resume");
    assert_eq!(tokens(&claude), usage(200, 40, 0, 0));
    assert_eq!(claude.answer.as_deref(), Some("Fixed."));
    let codex = seen(Cli::Codex, "resume");
    // The thread's running total: the caller subtracts the earlier run's.
    assert_eq!(tokens(&codex), usage(1400, 130, 0, 0));
    let aider = seen(Cli::Aider, "resume");
    assert_eq!(tokens(&aider), usage(200, 40, 0, 0));
    assert_eq!(aider.usage.as_ref().unwrap().turns, Some(2));
}

/// The beats of every line a recording printed, stdout then stderr.
fn beats(cli: Cli, scenario: &str) -> Vec<Beat> {
    let errors = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/agents/recorded")
        .join(cli.name())
        .join(format!("{scenario}.stderr.txt"));
    let errors = std::fs::read_to_string(errors).unwrap_or_default();
    let out = recorded(cli, scenario);
    out.lines()
        .chain(errors.lines())
        .filter_map(|line| beat(cli, line))
        .collect()
}

#[test]
fn a_model_out_of_reach_is_told_from_a_run_that_moves() {
    for (cli, retries) in [(Cli::Codex, 4), (Cli::Claude, 7), (Cli::Gemini, 4)] {
        let retrying = beats(cli, "unreachable");
        assert_eq!(retrying.len(), retries, "{cli:?}: {retrying:?}");
        assert!(
            retrying.iter().all(|b| matches!(b, Beat::Unreachable(_))),
            "{cli:?}: {retrying:?}"
        );
        // A run that works moves, and nothing in it reads as a model out of reach; nor does
        // an answer with an HTTP error (the server answered).
        for scenario in ["edit-and-commit", "usage-limit", "error"] {
            let seen = beats(cli, scenario);
            assert!(
                !seen.iter().any(|b| matches!(b, Beat::Unreachable(_))),
                "{cli:?} {scenario}: {seen:?}"
            );
        }
        assert!(beats(cli, "edit-and-commit").contains(&Beat::Progress));
    }
}

/// Codex says "Reconnecting..." as well when a stream was cut off or the server answered with
/// a 5xx, and when it waits out a retry: only "waiting for network" is a model out of reach.
#[test]
fn codex_reconnecting_after_an_answer_is_not_a_model_out_of_reach() {
    let error = |message: &str| format!(r#"{{"type":"error","message":"{message}"}}"#);
    for message in [
        "Reconnecting... 2/5",
        "Reconnecting... 2/5 (stream disconnected before completion)",
        "Reconnecting... retry 3 (waiting 20s)",
    ] {
        assert_eq!(beat(Cli::Codex, &error(message)), None, "{message}");
    }
    let out_of_reach =
        "Reconnecting... waiting for network (Connection failed: error sending request)";
    assert_eq!(
        beat(Cli::Codex, &error(out_of_reach)),
        Some(Beat::Unreachable(out_of_reach.to_string()))
    );
}

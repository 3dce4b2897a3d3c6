//! Cedar decision time per request, for the example policies and for 1,000 generated ones.
//! Prints numbers; asserts nothing (the machine is shared and noisy). Run with
//! `cargo bench -p jit-core --bench cedar`.
// A benchmark may unwrap: a failure is a crash with a message, which is what we want here.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::panic, clippy::indexing_slicing)]

use std::collections::HashMap;
use std::hint::black_box;
use std::path::Path;
use std::time::Instant;

use jit_core::clock::Timestamp;
use jit_core::domain::{OnCall, TargetId};
use jit_core::identity::Caller;
use jit_core::policy::{AccessContext, Action, Rules, Window};

/// Wednesday 2027-01-13, 10:00 UTC.
const AT: Timestamp = Timestamp::from_unix_seconds(1_799_834_400);

fn caller(sub: &str, groups: &[&str]) -> Caller {
    let claims = HashMap::from([
        ("sub".to_owned(), sub.to_owned()),
        ("groups".to_owned(), serde_json::to_string(groups).unwrap()),
    ]);
    Caller::from_claims(&claims, "groups").unwrap()
}

fn context(duration_secs: u32) -> AccessContext {
    AccessContext {
        duration_secs,
        reason: "investigating INC-42 in production".to_owned(),
        ticket: Some("INC-42".to_owned()),
        break_glass: false,
        at: AT,
        window: Window::of(None, AT, duration_secs),
        on_call: OnCall::not_asked(),
    }
}

/// Runs `questions` round-robin for about `iterations` decisions; prints per-decision times.
fn measure(
    label: &str,
    rules: &Rules,
    questions: &[(Caller, Action, TargetId, AccessContext)],
    iterations: usize,
) {
    for q in questions.iter().cycle().take(questions.len() * 50) {
        black_box(rules.decide(&q.0, q.1, &q.2, &q.3));
    }
    let mut samples = Vec::with_capacity(iterations);
    let mut allowed = 0;
    let started = Instant::now();
    for q in questions.iter().cycle().take(iterations) {
        let t = Instant::now();
        let d = black_box(rules.decide(&q.0, q.1, &q.2, &q.3));
        samples.push(t.elapsed().as_nanos() as f64 / 1000.0);
        allowed += usize::from(d.allowed);
    }
    let total = started.elapsed().as_secs_f64();
    samples.sort_by(|a, b| a.total_cmp(b));
    let pct = |p: f64| samples[((samples.len() as f64 - 1.0) * p) as usize];
    println!(
        "{label:<34} policies {:>5}  decisions {iterations:>6}  mean {:>8.1} µs  p50 {:>8.1} µs  p99 {:>8.1} µs  ({allowed} allowed)",
        rules.policy_count(),
        total * 1e6 / iterations as f64,
        pct(0.5),
        pct(0.99),
    );
}

/// `count` policies over 200 teams, 4 actions and 3 tiers. With `scoped`, each names its team
/// in the principal scope (`principal in Group`); without, in the `when` condition, which the
/// index cannot use (the worst case: every policy of the action is evaluated).
fn generated(count: usize, example: &Path, scoped: bool) -> Rules {
    let schema = std::fs::read_to_string(example.join("schema.cedarschema")).unwrap();
    let targets = std::fs::read_to_string(example.join("targets.json")).unwrap();
    let tiers = ["read-only", "write", "admin"];
    let mut text = String::new();
    for i in 0..count {
        let action = ["Request", "AutoApprove", "Approve", "Revoke"][i % 4];
        let team = format!("Jit::Group::\"team-{}\"", i % 200);
        let (scope, guard) = if scoped {
            (format!("principal in {team}"), String::new())
        } else {
            ("principal".to_owned(), format!("principal in {team} && "))
        };
        text.push_str(&format!(
            "@id(\"generated-{i}\")\npermit ({scope}, action == Jit::Action::\"{action}\", resource)\nwhen {{ {guard}resource.tier == \"{}\" && context.duration_secs <= {} && context has ticket }};\n",
            tiers[i % 3],
            900 + (i % 12) * 900,
        ));
    }
    Rules::from_sources(
        &schema,
        vec![("generated.cedar".to_owned(), text)],
        &targets,
    )
    .unwrap()
}

fn main() {
    let example = workspace_root().join("infra/policies");
    let rules = Rules::load_dir(&example).unwrap();
    let t = |id: &str| TargetId::parse(id).unwrap();
    let questions = vec![
        (
            caller("alice", &["engineers"]),
            Action::Request,
            t("prod-logs-ro"),
            context(3600),
        ),
        (
            caller("sam", &["sre"]),
            Action::AutoApprove,
            t("prod-logs-ro"),
            context(1800),
        ),
        (
            caller("dan", &["dba"]),
            Action::Request,
            t("prod-db-admin"),
            context(3600),
        ),
        (
            caller("lee", &["dba-leads", "engineers"]),
            Action::Approve,
            t("prod-db-admin"),
            context(3600),
        ),
        (
            caller("eve", &["engineers"]),
            Action::Request,
            t("break-glass-admin"),
            context(3600),
        ),
        (
            caller("sue", &["security", "engineers", "oncall"]),
            Action::Revoke,
            t("prod-deploy"),
            context(3600),
        ),
    ];
    measure("example policies", &rules, &questions, 50_000);

    let big = generated(1000, &example, true);
    let unscoped = generated(1000, &example, false);
    let many_groups: Vec<String> = (0..20).map(|g| format!("team-{}", g * 7)).collect();
    let many: Vec<&str> = many_groups.iter().map(String::as_str).collect();
    let questions = vec![
        (
            caller("a", &["team-3"]),
            Action::Request,
            t("prod-logs-ro"),
            context(3600),
        ),
        (
            caller("b", &["team-150"]),
            Action::Approve,
            t("prod-db-admin"),
            context(900),
        ),
        (
            caller("c", &many),
            Action::AutoApprove,
            t("prod-deploy"),
            context(7200),
        ),
        (
            caller("d", &["nobody"]),
            Action::Revoke,
            t("break-glass-admin"),
            context(3600),
        ),
    ];
    measure("1,000 generated, group-scoped", &big, &questions, 5_000);
    measure("1,000 generated, unscoped", &unscoped, &questions, 5_000);
}

/// The workspace root, from this crate's manifest directory (`shared/core/`).
fn workspace_root() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

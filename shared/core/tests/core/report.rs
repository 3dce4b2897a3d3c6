//! Reports (`jit_core::report`) over a seeded period: six grants, intake's log and one call
//! no grant accounts for. The exceptions are exactly the ones the seeding makes, each named;
//! the rows and totals say what the records say; CSV cells cannot run as formulas.

use std::collections::BTreeMap;

use crate::support::*;
use jit_core::clock::Timestamp;
use jit_core::domain::audit::AuditRecord;
use jit_core::domain::{Command, Grant, GrantId, Reason};
use jit_core::report::{ExceptionKind, Refusal, ReportInput, Unattributed, build, csv};

const DAY: i64 = 86_400;

/// Applies `commands` (each by an actor, at seconds after `T0`) to a new request; the grant's
/// id and records.
fn life(
    requester: &str,
    target: &str,
    break_glass: bool,
    reason: &str,
    steps: Vec<(Command, jit_core::domain::Actor, i64)>,
) -> (GrantId, Vec<AuditRecord>) {
    let mut ask = request(requester, target, 3600);
    ask.break_glass = break_glass;
    ask.reason = Reason::parse(reason).unwrap();
    life_of(ask, steps)
}

/// Applies `steps` (as [`life`] does) to the request `ask` opened at `T0`.
fn life_of(
    ask: jit_core::domain::NewRequest,
    steps: Vec<(Command, jit_core::domain::Actor, i64)>,
) -> (GrantId, Vec<AuditRecord>) {
    let created = Grant::open(GrantId::generate(T0), ask, T0);
    let mut records = vec![created.audit().clone()];
    let mut grant = created.grant().clone();
    for (command, actor, secs) in steps {
        let change = grant.apply(command, &actor, T0.plus_secs(secs)).unwrap();
        records.push(change.audit().clone());
        grant = change.grant().clone();
    }
    (grant.id, records)
}

fn break_glass() -> Command {
    Command::BreakGlass {
        policies: vec!["break-glass-oncall".to_owned()],
        policy_hash: "policy-hash-2".to_owned(),
        on_call: Default::default(),
    }
}

fn post_review() -> Command {
    Command::PostReview {
        comment: Some("checked the session's calls".to_owned()),
    }
}

fn refused_line(at: Timestamp, requester: &str) -> String {
    format!(
        "[intake#1] {{\"_aws\":{{\"Timestamp\":{},\"CloudWatchMetrics\":[{{\"Namespace\":\"JitAccess\",\
         \"Dimensions\":[[\"Target\"]],\"Metrics\":[{{\"Name\":\"RequestRefused\",\"Unit\":\"Count\"}}]}}]}},\
         \"RequestRefused\":1,\"Target\":\"prod-db-admin\",\"event\":\"request refused by the rules\",\
         \"requester\":\"{requester}\",\"duration_secs\":\"7200\",\"break_glass\":\"false\",\
         \"policies\":\"no-admin-for-contractors\",\"why\":\"forbidden\"}}",
        at.unix_seconds() * 1000
    )
}

#[test]
fn a_seeded_period_reports_exactly_its_exceptions() {
    let (normal, mut records) = life(
        "alice@example.com",
        "prod-logs-ro",
        false,
        "=HYPERLINK(\"http://evil\") checking logs, again",
        vec![
            (auto_approve(), approver(), 1),
            (issue(T0.plus_secs(1800)), as_user("alice@example.com"), 2),
            (
                issue(T0.plus_secs(3000)),
                as_user("alice@example.com"),
                1200,
            ),
            (Command::Expire, sweeper(), 3601),
        ],
    );
    let (unreviewed, more) = life(
        "bob@example.com",
        "prod-db-admin",
        true,
        "database down, paging did not reach the DBA",
        vec![(break_glass(), approver(), 10)],
    );
    records.extend(more);
    let (late, more) = life(
        "carol@example.com",
        "prod-db-admin",
        true,
        "replica lag, on call alone tonight",
        vec![
            (break_glass(), approver(), 20),
            (post_review(), as_user("sue@example.com"), 30 * 3600),
        ],
    );
    records.extend(more);
    let (reviewed, more) = life(
        "dave@example.com",
        "prod-db-admin",
        true,
        "restoring a dropped table",
        vec![
            (break_glass(), approver(), 30),
            (post_review(), as_user("sue@example.com"), 3600),
        ],
    );
    records.extend(more);
    let (guarded, more) = life(
        "erin@example.com",
        "prod-logs-ro",
        false,
        "reading audit logs for INC-9",
        vec![
            (auto_approve(), approver(), 40),
            (issue(T0.plus_secs(1800)), as_user("erin@example.com"), 41),
            (
                Command::Revoke {
                    reason: Reason::parse("guardrail revoke-on-iam-or-key-destruction fired")
                        .unwrap(),
                },
                sweeper(),
                100,
            ),
        ],
    );
    records.extend(more);
    let (by_person, more) = life(
        "frank@example.com",
        "prod-logs-ro",
        false,
        "reading logs for INC-10",
        vec![
            (await_review(1), approver(), 1),
            (
                review(jit_core::domain::ReviewDecision::Approve),
                as_user("sue@example.com"),
                50,
            ),
            (revoke(), as_user("sue@example.com"), 650),
        ],
    );
    records.extend(more);
    // A grant wholly outside the period is not reported.
    let (_, outside) = life(
        "gus@example.com",
        "prod-logs-ro",
        false,
        "old work from last month",
        vec![],
    );
    let outside: Vec<AuditRecord> = outside
        .into_iter()
        .map(|mut r| {
            r.at = T0.plus_secs(-DAY);
            r
        })
        .collect();
    records.extend(outside);

    let mut write = call("e-2", T0.plus_secs(5));
    write.read_only = Some(false);
    write.action = "PutObject".to_owned();
    let mut refused = call("e-3", T0.plus_secs(6));
    refused.error_code = Some("AccessDenied".to_owned());
    let activity = BTreeMap::from([(
        normal.clone(),
        vec![call("e-1", T0.plus_secs(4)), write, refused],
    )]);
    let log = [
        refused_line(T0.plus_secs(500), "mallory@example.com"),
        refused_line(T0.plus_secs(-DAY), "old@example.com"),
        "[intake#1] {\"level\":\"INFO\",\"message\":\"request created\"}".to_owned(),
    ];
    let refusals: Vec<Refusal> = log
        .iter()
        .filter_map(|l| Refusal::from_log_line(l))
        .collect();
    assert_eq!(refusals.len(), 2, "only RequestRefused lines are refusals");
    let mut stray = call("e-9", T0.plus_secs(700));
    stray.action = "DeleteBucket".to_owned();
    let input = ReportInput {
        from: Some(T0),
        to: Some(T0.plus_secs(DAY)),
        as_of: Some(T0.plus_secs(2 * DAY)),
        records,
        activity,
        refusals: Some(refusals),
        unattributed: Some(vec![Unattributed {
            activity: stray,
            why: "no session of a grant has this name".to_owned(),
        }]),
        review_within_secs: DAY,
    };
    let report = build(&input);

    let found: Vec<(ExceptionKind, String, String)> = report
        .exceptions
        .iter()
        .map(|e| (e.kind, e.grant_id.clone(), e.who.clone()))
        .collect();
    let id = |g: &GrantId| g.to_string();
    let expected = vec![
        (
            ExceptionKind::RevokedByGuardrail,
            id(&guarded),
            "erin@example.com".to_owned(),
        ),
        (
            ExceptionKind::RefusedByRules,
            String::new(),
            "mallory@example.com".to_owned(),
        ),
        (
            ExceptionKind::UnattributedActivity,
            String::new(),
            String::new(),
        ),
        (
            ExceptionKind::BreakGlassReviewMissing,
            id(&unreviewed),
            "bob@example.com".to_owned(),
        ),
        (
            ExceptionKind::BreakGlassReviewLate,
            id(&late),
            "carol@example.com".to_owned(),
        ),
    ];
    assert_eq!(found, expected, "{:#?}", report.exceptions);
    assert!(report.not_included.is_empty());
    // The missing review was due a day after its activation; the late one names its reviewer.
    assert_eq!(report.exceptions[3].at, T0.plus_secs(10 + DAY));
    assert!(report.exceptions[4].detail.contains("user:sue@example.com"));
    assert!(report.exceptions[2].detail.contains("DeleteBucket"));

    // Rows: six grants of the period, by request time; gus's is outside it.
    assert_eq!(report.grants.len(), 6);
    assert!(
        !report
            .grants
            .iter()
            .any(|g| g.requester == "gus@example.com")
    );
    let row = |g: &GrantId| report.grants.iter().find(|r| r.grant_id == id(g)).unwrap();
    let alice = row(&normal);
    assert_eq!(
        (
            alice.policies.as_str(),
            alice.sessions,
            alice.used_secs,
            alice.requested_secs,
            (alice.calls, alice.writes, alice.denied),
            alice.ended.as_str(),
            alice.ended_by.as_str(),
        ),
        (
            "sre-read-only",
            2,
            Some(3600),
            Some(3600),
            (Some(3), Some(1), Some(1)),
            "EXPIRED",
            "service:sweeper",
        )
    );
    let frank = row(&by_person);
    assert_eq!(
        (
            frank.approvals_required,
            frank.approvers.as_str(),
            frank.used_secs,
            frank.ended.as_str(),
            frank.ended_by.as_str(),
            frank.end_reason.as_str(),
            frank.calls,
        ),
        (
            Some(1),
            "sue@example.com",
            Some(600),
            "REVOKED",
            "user:sue@example.com",
            "incident closed, access no longer needed",
            None,
        )
    );
    // Bob's grant is not yet swept: used until its time ran out.
    assert_eq!(row(&unreviewed).used_secs, Some(3600));
    assert_eq!(row(&reviewed).state, "ACTIVE");

    // Totals: prod-db-admin had three break-glass grants and mallory's refusal.
    let db = report
        .by_target
        .iter()
        .find(|t| t.name == "prod-db-admin")
        .unwrap();
    assert_eq!((db.grants, db.break_glass, db.refused), (3, 3, 1));
    let logs = report
        .by_target
        .iter()
        .find(|t| t.name == "prod-logs-ro")
        .unwrap();
    assert_eq!(
        (logs.grants, logs.activated, logs.sessions, logs.used_secs),
        (3, 3, 3, 3600 + 60 + 600)
    );
    assert_eq!(report.by_person.len(), 7, "six requesters and mallory");

    // CSV: a header, one line per grant; the reason that starts with `=` is quoted and
    // defused, its inner quotes doubled.
    let grants = csv(&report, "grants").unwrap();
    let lines: Vec<&str> = grants.split("\r\n").filter(|l| !l.is_empty()).collect();
    assert_eq!(lines.len(), 7);
    assert!(lines[0].starts_with("grant_id,requester,target,reason,"));
    assert!(
        grants.contains("\"'=HYPERLINK(\"\"http://evil\"\") checking logs, again\""),
        "{grants}"
    );
    let exceptions = csv(&report, "exceptions").unwrap();
    assert!(
        exceptions.contains("break_glass_review_missing,"),
        "{exceptions}"
    );
    assert!(csv(&report, "nothing").is_none());
    // Every column is a field of its rows, and every field a column: none is left blank.
    let fields = |v: serde_json::Value| -> Vec<String> {
        let mut keys: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        keys
    };
    let sorted = |columns: &[&str]| -> Vec<String> {
        let mut c: Vec<String> = columns.iter().map(|c| (*c).to_owned()).collect();
        c.sort();
        c
    };
    use jit_core::report::{EXCEPTION_COLUMNS, GRANT_COLUMNS, TOTALS_COLUMNS};
    assert_eq!(
        fields(serde_json::to_value(&report.grants[0]).unwrap()),
        sorted(&GRANT_COLUMNS)
    );
    assert_eq!(
        fields(serde_json::to_value(&report.by_target[0]).unwrap()),
        sorted(&TOTALS_COLUMNS)
    );
    assert_eq!(
        fields(serde_json::to_value(&report.exceptions[0]).unwrap()),
        sorted(&EXCEPTION_COLUMNS)
    );
}

#[test]
fn a_report_says_what_it_could_not_include() {
    let report = build(&ReportInput {
        from: Some(T0),
        to: Some(T0.plus_secs(DAY)),
        as_of: Some(T0.plus_secs(DAY)),
        review_within_secs: DAY,
        ..ReportInput::default()
    });
    assert_eq!(report.not_included.len(), 2, "{:?}", report.not_included);
    assert!(report.grants.is_empty() && report.exceptions.is_empty());
}

#[test]
fn a_scheduled_grant_counts_from_its_start_and_one_cancelled_before_it_counts_none() {
    // Both granted a minute after asking, opening an hour after asking.
    let scheduled = |steps: Vec<(Command, jit_core::domain::Actor, i64)>| {
        let mut ask = request("alice", "prod-logs", 3600);
        ask.starts_at = Some(T0.plus_secs(3600));
        life_of(ask, steps)
    };
    let (used, mut records) = scheduled(vec![
        (auto_approve(), approver(), 60),
        (Command::Expire, sweeper(), 7200),
    ]);
    let (cancelled, more) = scheduled(vec![
        (auto_approve(), approver(), 60),
        (Command::Cancel, as_user("alice"), 600),
    ]);
    records.extend(more);
    let report = build(&ReportInput {
        from: Some(T0),
        to: Some(T0.plus_secs(DAY)),
        as_of: Some(T0.plus_secs(DAY)),
        records,
        activity: BTreeMap::new(),
        refusals: Some(Vec::new()),
        unattributed: Some(Vec::new()),
        review_within_secs: DAY,
    });
    let row = |id: &GrantId| {
        report
            .grants
            .iter()
            .find(|r| r.grant_id == id.as_str())
            .unwrap()
    };
    // Open from its start (an hour after asking) to its end: the hour, not the granted wait.
    assert_eq!(row(&used).starts_at, Some(T0.plus_secs(3600)));
    assert_eq!(row(&used).used_secs, Some(3600));
    assert_eq!(row(&cancelled).ended, "CANCELLED");
    assert_eq!(row(&cancelled).used_secs, Some(0));
    let text = csv(&report, "grants").unwrap();
    assert!(
        text.lines()
            .next()
            .unwrap()
            .contains("activated_at,starts_at,used_secs")
    );
}

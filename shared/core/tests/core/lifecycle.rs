//! The lifecycle's rules, as a table: every state × command × actor, and the special cases.

use crate::support::*;
use jit_core::clock::Timestamp;
use jit_core::domain::audit::AuditAction;
use jit_core::domain::{
    Actor, Command, Grant, GrantId, GrantState, OnCall, Requirement, ReviewDecision, Service,
    TransitionError, requirements_met,
};

/// A grant brought to a named situation through legal transitions only.
fn grant_in(situation: &str) -> Grant {
    let t = |s| T0.plus_secs(s);
    let mut req = request("alice", "prod-logs", 3600);
    req.break_glass = situation == "pending-break-glass";
    if situation.starts_with("scheduled") {
        req.starts_at = Some(SCHEDULED_START);
    }
    let g = Grant::open(GrantId::generate(T0), req, T0).grant().clone();
    let step = |g: &Grant, c: Command, a: &Actor, at: Timestamp| {
        g.apply(c, a, at).unwrap().grant().clone()
    };
    match situation {
        "pending-new" | "pending-break-glass" | "scheduled-pending" => g,
        "scheduled-active" => step(&g, auto_approve(), &approver(), t(1)),
        "pending-review" => step(&g, await_review(2), &approver(), t(1)),
        "active" => step(&g, auto_approve(), &approver(), t(1)),
        "extension-waiting" => {
            let g = step(&g, auto_approve(), &approver(), t(1));
            step(&g, extend(1), &as_user("alice"), t(2))
        }
        "denied" => {
            let g = step(&g, await_review(1), &approver(), t(1));
            step(&g, review(ReviewDecision::Deny), &as_user("rob"), t(2))
        }
        "cancelled" => step(&g, Command::Cancel, &as_user("alice"), t(1)),
        "timed-out" => step(&g, Command::TimeOut, &sweeper(), t(WINDOW)),
        "expired" => {
            let g = step(&g, auto_approve(), &approver(), t(1));
            step(&g, Command::Expire, &sweeper(), t(1 + 3600))
        }
        "revoked" => {
            let g = step(&g, auto_approve(), &approver(), t(1));
            step(&g, revoke(), &as_user("sam"), t(2))
        }
        other => panic!("unknown situation {other}"),
    }
}

/// When the scheduled situations' access opens: after the table's early time, before its late.
const SCHEDULED_START: Timestamp = T0.plus_secs(1800);

const SITUATIONS: [&str; 12] = [
    "pending-new",
    "scheduled-pending",
    "scheduled-active",
    "pending-break-glass",
    "pending-review",
    "active",
    "extension-waiting",
    "denied",
    "cancelled",
    "timed-out",
    "expired",
    "revoked",
];

fn commands() -> Vec<(&'static str, Command)> {
    vec![
        ("await-review", await_review(1)),
        ("auto-approve", auto_approve()),
        (
            "break-glass",
            Command::BreakGlass {
                policies: vec!["break-glass".to_owned()],
                policy_hash: "h".to_owned(),
                on_call: Default::default(),
            },
        ),
        ("extend-at-once", extend(0)),
        ("extend-for-review", extend(2)),
        ("approve", review(ReviewDecision::Approve)),
        ("deny", review(ReviewDecision::Deny)),
        ("cancel", Command::Cancel),
        ("time-out", Command::TimeOut),
        ("expire", Command::Expire),
        ("revoke", revoke()),
        ("issue", issue(T0.plus_secs(20_000))),
        ("post-review", Command::PostReview { comment: None }),
        (
            "note-fallback",
            Command::NoteRevocationFallback { issued_before: T0 },
        ),
        (
            "note-repaired",
            Command::NoteRevocationRepaired {
                found: "no revocation policy on the role".to_owned(),
            },
        ),
        (
            "cover-activity",
            Command::CoverActivity {
                count: 3,
                digest: "ab".repeat(32),
                through: T0,
            },
        ),
    ]
}

fn actors() -> Vec<(&'static str, Actor)> {
    vec![
        ("requester", as_user("alice")),
        ("other-user", as_user("rob")),
        ("approver", Actor::Service(Service::Approver)),
        ("sweeper", Actor::Service(Service::Sweeper)),
        ("issuer", Actor::Service(Service::Issuer)),
        ("intake", Actor::Service(Service::Intake)),
    ]
}

/// The specification: which (situation, command, actor) is legal, early (before every
/// deadline) or late (after the decision deadline and the grant's end).
fn legal(situation: &str, command: &str, actor: &str, late: bool) -> bool {
    // A scheduled grant before its start: its requester may still cancel it, and nobody may
    // use it; past its start it is an active grant like any other.
    match (situation, command, actor) {
        ("scheduled-active", "cancel", "requester") => return !late,
        ("scheduled-active", "issue", _) => return false,
        _ => {}
    }
    let situation = match situation {
        "scheduled-pending" => "pending-new",
        "scheduled-active" => "active",
        other => other,
    };
    match (situation, command, actor) {
        ("pending-new" | "pending-break-glass", "await-review", "approver") => true,
        // The rules cannot open a request whose decision deadline passed unseen.
        ("pending-new" | "pending-break-glass", "auto-approve", "approver") => !late,
        ("pending-break-glass", "break-glass", "approver") => !late,
        ("pending-review", "approve" | "deny", "other-user") => !late,
        (s, "cancel", "requester") if s.starts_with("pending") => true,
        (s, "time-out", "sweeper") if s.starts_with("pending") => late,
        // An extension waiting for reviewers: another person decides it before the end.
        ("extension-waiting", "approve" | "deny", "other-user") => !late,
        ("active" | "extension-waiting", "expire", "sweeper") => late,
        // People revoke; the sweeper does when a revoking guardrail fired on the grant's
        // activity.
        ("active" | "extension-waiting", "revoke", "requester" | "other-user" | "sweeper") => true,
        ("active" | "extension-waiting", "issue", "requester") => !late,
        // Only the requester extends, before the end, one extension at a time.
        ("active", "extend-at-once" | "extend-for-review", "requester") => !late,
        (_, "note-fallback" | "note-repaired", "sweeper") => true,
        // Only a grant that was active has activity to cover; any time after, whatever its
        // state.
        ("active" | "extension-waiting" | "expired" | "revoked", "cover-activity", "sweeper") => {
            true
        }
        _ => false,
    }
}

#[test]
fn every_state_command_and_actor_follows_the_table() {
    let mut checked = 0;
    for situation in SITUATIONS {
        let grant = grant_in(situation);
        for late in [false, true] {
            let at = if late {
                T0.plus_secs(10 * 3600)
            } else {
                T0.plus_secs(60)
            };
            for (command_name, command) in commands() {
                for (actor_name, actor) in actors() {
                    let result = grant.apply(command.clone(), &actor, at);
                    assert_eq!(
                        result.is_ok(),
                        legal(situation, command_name, actor_name, late),
                        "{situation} / {command_name} by {actor_name} (late: {late}): {:?}",
                        result.as_ref().err()
                    );
                    let annotation = [
                        "post-review",
                        "note-fallback",
                        "note-repaired",
                        "cover-activity",
                    ]
                    .contains(&command_name);
                    if grant.state.is_terminal() && !annotation {
                        assert!(matches!(result, Err(TransitionError::Terminal { .. })));
                    }
                    checked += 1;
                }
            }
        }
    }
    assert_eq!(checked, 12 * 2 * 16 * 6);
}

#[test]
fn each_change_advances_version_and_chain_by_one() {
    let g = grant_in("pending-new");
    let change = g
        .apply(auto_approve(), &approver(), T0.plus_secs(5))
        .unwrap();
    assert_eq!(change.expected_version(), g.version);
    assert_eq!(change.grant().version, g.version + 1);
    let audit = change.audit();
    assert_eq!(audit.seq, g.audit_head.seq + 1);
    assert_eq!(audit.prev_hash, g.audit_head.hash);
    assert_eq!(change.grant().audit_head, audit.head());
    assert_eq!(
        (audit.action, audit.from, audit.to),
        (
            AuditAction::AutoApproved,
            Some(GrantState::Pending),
            GrantState::Active
        )
    );
    assert_eq!(audit.policy_hash.as_deref(), Some("policy-hash-2"));
    assert_eq!(audit.detail["policies"], "sre-read-only");
    assert_eq!(change.grant().ends_at, Some(T0.plus_secs(5 + 3600)));
}

#[test]
fn approvals_must_come_from_distinct_people_other_than_the_requester() {
    let g = grant_in("pending-review");
    let at = T0.plus_secs(10);
    let own = g.apply(review(ReviewDecision::Approve), &as_user("alice"), at);
    assert_eq!(
        own.unwrap_err().to_string(),
        format!(
            "user:alice may not approve request `{}`: a requester cannot review their own request",
            g.id
        )
    );
    let g = g
        .apply(review(ReviewDecision::Approve), &as_user("rob"), at)
        .unwrap()
        .grant()
        .clone();
    assert_eq!((g.state, g.approval_count()), (GrantState::Pending, 1));
    let twice = g.apply(review(ReviewDecision::Approve), &as_user("rob"), at);
    assert!(matches!(
        twice,
        Err(TransitionError::AlreadyReviewed { .. })
    ));
    let second = g
        .apply(review(ReviewDecision::Approve), &as_user("ria"), at)
        .unwrap();
    assert_eq!(second.grant().state, GrantState::Active);
    assert_eq!(second.audit().detail["approvals"], "2/2");
}

#[test]
fn reviews_wait_for_the_rules_and_stop_at_the_deadline() {
    let g = grant_in("pending-new");
    let early = g.apply(
        review(ReviewDecision::Approve),
        &as_user("rob"),
        T0.plus_secs(1),
    );
    assert!(matches!(
        early,
        Err(TransitionError::NotYetEvaluated { .. })
    ));
    let g = grant_in("pending-review");
    let late = g.apply(
        review(ReviewDecision::Approve),
        &as_user("rob"),
        g.decide_by,
    );
    assert!(matches!(late, Err(TransitionError::TimeRanOut { .. })));
    // A redelivered rules decision is refused, so the approver can treat it as done.
    let again = g.apply(await_review(1), &approver(), T0.plus_secs(2));
    assert!(matches!(
        again,
        Err(TransitionError::AlreadyEvaluated { .. })
    ));
}

#[test]
fn the_rules_cannot_open_a_request_after_its_decision_deadline() {
    // A stream record that arrives late (the request timed out unseen) must not activate it:
    // at the deadline and after, auto-approval and break-glass are refused, and only the
    // sweeper's time-out applies.
    for (state, command) in [
        ("pending-new", auto_approve()),
        (
            "pending-break-glass",
            Command::BreakGlass {
                policies: vec!["break-glass".to_owned()],
                policy_hash: "h".to_owned(),
                on_call: Default::default(),
            },
        ),
    ] {
        let g = grant_in(state);
        for at in [g.decide_by, g.decide_by.plus_secs(600)] {
            let late = g.apply(command.clone(), &approver(), at);
            assert!(
                matches!(late, Err(TransitionError::TimeRanOut { .. })),
                "{state} at {at}: {late:?}"
            );
        }
        let just_in_time = g.apply(command.clone(), &approver(), g.decide_by.plus_secs(-1));
        assert_eq!(just_in_time.unwrap().grant().state, GrantState::Active);
        let timed_out = g.apply(Command::TimeOut, &sweeper(), g.decide_by).unwrap();
        assert_eq!(timed_out.grant().state, GrantState::TimedOut);
    }
}

#[test]
fn a_grant_the_rules_open_because_of_on_call_ends_with_the_shift_and_says_so() {
    let at = T0.plus_secs(1);
    let shift = |end: Option<Timestamp>, end_with_shift: bool| OnCall {
        asked: true,
        level: Some(1),
        shift_ends_at: end,
        end_with_shift,
        said: "pagerduty: on call at level 1".to_owned(),
    };
    let open =
        |command: Command, state: &str| grant_in(state).apply(command, &approver(), at).unwrap();
    let auto = |on_call: OnCall| Command::AutoApprove {
        policies: vec!["on-call".to_owned()],
        policy_hash: "h".to_owned(),
        on_call,
    };
    let asked_end = open(auto(OnCall::not_asked()), "pending-new")
        .grant()
        .ends_at
        .unwrap();
    let soon = at.plus_secs(600);
    // (on-call answer, the end the grant gets, what the record says about the shift)
    let cases = [
        (shift(Some(soon), true), soon, Some(soon.to_string())),
        (shift(Some(soon), false), asked_end, None),
        (shift(None, true), asked_end, None),
        (shift(Some(asked_end.plus_secs(60)), true), asked_end, None),
    ];
    for (on_call, end, recorded) in cases {
        let change = open(auto(on_call.clone()), "pending-new");
        assert_eq!(change.grant().ends_at, Some(end), "{on_call:?}");
        let detail = &change.audit().detail;
        assert_eq!(
            detail.get("shift_ends_at"),
            recorded.as_ref(),
            "{on_call:?}"
        );
        assert_eq!(detail["on_call"], "pagerduty: on call at level 1");
    }
    // Not cut short: break-glass, and a decision that waits for reviewers.
    let glass = open(
        Command::BreakGlass {
            policies: vec!["break-glass".to_owned()],
            policy_hash: "h".to_owned(),
            on_call: shift(Some(soon), true),
        },
        "pending-break-glass",
    );
    assert!(glass.grant().ends_at.unwrap() > soon);
    let waits = open(
        Command::AwaitReview {
            approvals_required: 1,
            requirements: vec![],
            policy_hash: "h".to_owned(),
            rules_said: String::new(),
            on_call: shift(Some(soon), true),
        },
        "pending-new",
    );
    assert_eq!(waits.grant().ends_at, None);
    assert_eq!(
        waits.audit().detail["on_call"],
        "pagerduty: on call at level 1"
    );
    // A target that does not ask records nothing about on-call.
    assert!(
        !open(auto(OnCall::not_asked()), "pending-new")
            .audit()
            .detail
            .contains_key("on_call")
    );
}

#[test]
fn break_glass_activates_at_once_and_owes_a_review() {
    let g = grant_in("pending-break-glass");
    let change = g
        .apply(
            Command::BreakGlass {
                policies: vec!["break-glass".to_owned()],
                policy_hash: "h".to_owned(),
                on_call: Default::default(),
            },
            &approver(),
            T0.plus_secs(1),
        )
        .unwrap();
    assert_eq!(change.grant().state, GrantState::Active);
    assert!(change.grant().review_owed);
    assert_eq!(change.audit().action, AuditAction::BreakGlassActivated);
    let not_asked = grant_in("pending-new").apply(
        Command::BreakGlass {
            policies: vec![],
            policy_hash: "h".to_owned(),
            on_call: Default::default(),
        },
        &approver(),
        T0.plus_secs(1),
    );
    assert!(matches!(
        not_asked,
        Err(TransitionError::NotBreakGlass { .. })
    ));
}

#[test]
fn a_break_glass_review_is_owed_until_someone_else_records_it_even_after_the_end() {
    let g = grant_in("pending-break-glass")
        .apply(
            Command::BreakGlass {
                policies: vec!["break-glass".to_owned()],
                policy_hash: "h".to_owned(),
                on_call: Default::default(),
            },
            &approver(),
            T0.plus_secs(1),
        )
        .unwrap()
        .grant()
        .clone();
    let expired = g
        .apply(Command::Expire, &sweeper(), T0.plus_secs(1 + 3600))
        .unwrap()
        .grant()
        .clone();
    for grant in [&g, &expired] {
        let own = grant.apply(
            Command::PostReview { comment: None },
            &as_user("alice"),
            T0.plus_secs(4000),
        );
        assert!(matches!(own, Err(TransitionError::NotPermitted { .. })));
        let by_system = grant.apply(
            Command::PostReview { comment: None },
            &approver(),
            T0.plus_secs(4000),
        );
        assert!(matches!(
            by_system,
            Err(TransitionError::NotPermitted { .. })
        ));
        let review = grant
            .apply(
                Command::PostReview {
                    comment: Some("justified: INC-9".to_owned()),
                },
                &as_user("sue"),
                T0.plus_secs(4000),
            )
            .unwrap();
        assert_eq!(review.grant().state, grant.state, "the state never changes");
        assert!(!review.grant().review_owed);
        assert_eq!(review.audit().action, AuditAction::PostReviewed);
        assert!(!review.closes());
        let again = review.grant().apply(
            Command::PostReview { comment: None },
            &as_user("sue"),
            T0.plus_secs(4001),
        );
        assert!(matches!(again, Err(TransitionError::NoReviewOwed { .. })));
    }
}

#[test]
fn sessions_raise_the_revocation_horizon_and_only_outliving_sessions_are_revoked() {
    let g = grant_in("active");
    let requester = as_user("alice");
    let g1 = g
        .apply(issue(T0.plus_secs(2000)), &requester, T0.plus_secs(100))
        .unwrap()
        .grant()
        .clone();
    // An earlier-expiring session does not lower the horizon.
    let g2 = g1
        .apply(issue(T0.plus_secs(1500)), &requester, T0.plus_secs(200))
        .unwrap()
        .grant()
        .clone();
    assert_eq!(
        (g2.sessions_issued, g2.sessions_valid_until),
        (2, Some(T0.plus_secs(2000)))
    );
    let live = g2
        .apply(revoke(), &as_user("sam"), T0.plus_secs(300))
        .unwrap();
    let entry = live.revocation().unwrap();
    assert_eq!(
        (entry.until, &entry.grant_id, &entry.role_arn),
        (T0.plus_secs(2000), &g.id, &g.role_arn)
    );
    assert_eq!(
        live.audit().detail["revoke_sessions_until"],
        T0.plus_secs(2000).to_string()
    );
    // Sessions already dead: nothing to cut.
    let dead = g2
        .apply(revoke(), &as_user("sam"), T0.plus_secs(2000))
        .unwrap();
    assert!(dead.revocation().is_none());
    // No session at all: nothing to cut either.
    assert!(
        g.apply(revoke(), &as_user("sam"), T0.plus_secs(300))
            .unwrap()
            .revocation()
            .is_none()
    );
    // A session that would already be expired is refused.
    let past = g.apply(issue(T0.plus_secs(100)), &requester, T0.plus_secs(100));
    assert!(matches!(past, Err(TransitionError::SessionInPast { .. })));
}

#[test]
fn refusals_say_what_state_the_request_is_in() {
    let g = grant_in("cancelled");
    let err = g.apply(Command::Cancel, &as_user("alice"), T0).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "cannot cancel request `{}`: it is CANCELLED, which is final",
            g.id
        )
    );
    let g = grant_in("active");
    let err = g.apply(Command::Cancel, &as_user("alice"), T0).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "cannot cancel request `{}`: it is ACTIVE and was not scheduled ahead; revoke it instead",
            g.id
        )
    );
}

/// A request whose target names two requirements: R1 (dba-lead) that A and B may fill, R2
/// (security) that only A may fill.
fn needing_two_requirements() -> Grant {
    let g = grant_in("pending-new");
    let requirements = vec![
        Requirement {
            name: "dba-lead".to_owned(),
            approvals: 1,
        },
        Requirement {
            name: "security".to_owned(),
            approvals: 1,
        },
    ];
    let command = Command::AwaitReview {
        approvals_required: 2,
        requirements,
        policy_hash: "h".to_owned(),
        rules_said: String::new(),
        on_call: Default::default(),
    };
    g.apply(command, &approver(), T0.plus_secs(1))
        .unwrap()
        .grant()
        .clone()
}

fn approve_filling(g: &Grant, who: &str, fills: &[&str], at: i64) -> Grant {
    let command = Command::Review {
        decision: ReviewDecision::Approve,
        comment: None,
        fills: fills.iter().map(|f| (*f).to_owned()).collect(),
        slack: None,
    };
    g.apply(command, &as_user(who), T0.plus_secs(at))
        .unwrap()
        .grant()
        .clone()
}

#[test]
fn named_requirements_are_met_by_an_assignment_of_distinct_approvers() {
    let both: &[&str] = &["dba-lead", "security"];
    // A (who may fill either) first, then B (dba-lead only): A must fill security for both to
    // be met, whatever came first.
    let g = needing_two_requirements();
    let g = approve_filling(&g, "ann", both, 2);
    assert_eq!(
        g.state,
        GrantState::Pending,
        "one approver fills one requirement"
    );
    assert_eq!(g.requirements_met(), [1, 0]);
    let g = approve_filling(&g, "ben", &["dba-lead"], 3);
    assert_eq!(g.state, GrantState::Active);
    assert_eq!(g.requirements_met(), [1, 1]);
    // The other order.
    let g = needing_two_requirements();
    let g = approve_filling(&g, "ben", &["dba-lead"], 2);
    let g = approve_filling(&g, "ann", both, 3);
    assert_eq!(g.state, GrantState::Active);
    // Two who may only fill dba-lead never make the security approval.
    let g = needing_two_requirements();
    let g = approve_filling(&g, "ben", &["dba-lead"], 2);
    let g = approve_filling(&g, "bea", &["dba-lead"], 3);
    assert_eq!(g.state, GrantState::Pending);
    assert_eq!(g.requirements_met(), [1, 0]);
    let last = g
        .apply(
            Command::Review {
                decision: ReviewDecision::Approve,
                comment: None,
                fills: vec!["security".to_owned()],
                slack: None,
            },
            &as_user("sue"),
            T0.plus_secs(4),
        )
        .unwrap();
    assert_eq!(last.grant().state, GrantState::Active);
    assert_eq!(last.audit().detail["fills"], "security");
    assert_eq!(
        last.audit().detail["requirements_met"],
        "dba-lead 1/1, security 1/1"
    );
    // Someone the rules let fill none of them cannot approve; the requester never, whatever
    // they may fill.
    let g = needing_two_requirements();
    let none = Command::Review {
        decision: ReviewDecision::Approve,
        comment: None,
        fills: Vec::new(),
        slack: None,
    };
    let refused = g.apply(none, &as_user("rob"), T0.plus_secs(2)).unwrap_err();
    assert!(
        refused
            .to_string()
            .ends_with("the rules let you fill none of this request's requirements"),
        "{refused}"
    );
    let own = Command::Review {
        decision: ReviewDecision::Approve,
        comment: None,
        fills: vec!["security".to_owned()],
        slack: None,
    };
    assert!(g.apply(own, &as_user("alice"), T0.plus_secs(2)).is_err());
}

#[test]
fn the_matching_finds_an_assignment_whenever_one_exists() {
    let req = |name: &str, approvals| Requirement {
        name: name.to_owned(),
        approvals,
    };
    let s = |names: &[&str]| names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>();
    let (a, b, c) = (s(&["r1", "r2"]), s(&["r1"]), s(&["r2", "r3"]));
    let three = [req("r1", 1), req("r2", 1), req("r3", 1)];
    // Each approver in an order that a first-come assignment would get wrong.
    assert_eq!(requirements_met(&three, &[&a, &b, &c]), [1, 1, 1]);
    assert_eq!(requirements_met(&three, &[&a, &c, &b]), [1, 1, 1]);
    assert_eq!(requirements_met(&three, &[&a, &b]), [1, 1, 0]);
    // Two approvals of one requirement and one of another.
    let two_one = [req("r1", 2), req("r2", 1)];
    assert_eq!(requirements_met(&two_one, &[&a, &a, &b]), [2, 1]);
    assert_eq!(requirements_met(&two_one, &[&b, &b]), [2, 0]);
    assert_eq!(requirements_met(&two_one, &[]), [0, 0]);
}

#[test]
fn an_extension_is_reviewed_once_per_person_before_the_end_and_its_last_approval_moves_the_end() {
    let g = grant_in("active");
    let end = g.ends_at.unwrap();
    let waiting = g
        .apply(extend(2), &as_user("alice"), T0.plus_secs(10))
        .unwrap();
    assert_eq!(waiting.audit().action, AuditAction::ExtensionRequested);
    let g = waiting.grant().clone();
    assert_eq!(g.ends_at, Some(end), "not moved while it waits");
    let first = g
        .apply(
            review(ReviewDecision::Approve),
            &as_user("rob"),
            T0.plus_secs(20),
        )
        .unwrap();
    assert_eq!(first.audit().action, AuditAction::ExtensionApproved);
    assert_eq!(first.audit().detail["approvals"], "1/2");
    let g = first.grant().clone();
    let again = g.apply(
        review(ReviewDecision::Approve),
        &as_user("rob"),
        T0.plus_secs(30),
    );
    assert!(
        matches!(again, Err(TransitionError::AlreadyReviewed { .. })),
        "{again:?}"
    );
    // Past the grant's current end, nobody decides it any more.
    let late = g.apply(review(ReviewDecision::Approve), &as_user("ria"), end);
    assert!(
        matches!(late, Err(TransitionError::TimeRanOut { at, .. }) if at == end),
        "{late:?}"
    );
    let last = g
        .apply(
            review(ReviewDecision::Approve),
            &as_user("ria"),
            T0.plus_secs(40),
        )
        .unwrap();
    assert_eq!(last.audit().action, AuditAction::Extended);
    assert_eq!(last.grant().ends_at, Some(end.plus_secs(1800)));
    assert_eq!(last.grant().extension, None);
}

#[test]
fn a_scheduled_grant_opens_at_its_start_and_can_be_cancelled_until_then() {
    let alice = as_user("alice");
    let g = grant_in("scheduled-pending");
    // Reviewers decide before access is to open: the deadline is the start, not the window.
    assert_eq!(g.decide_by, SCHEDULED_START);
    let late = g.apply(auto_approve(), &approver(), SCHEDULED_START);
    assert!(matches!(late, Err(TransitionError::TimeRanOut { .. })));

    let change = g
        .apply(auto_approve(), &approver(), T0.plus_secs(1))
        .unwrap();
    let end = SCHEDULED_START.plus_secs(3600);
    // Granted now, ending an hour after the start; the approver's record signs the window.
    assert_eq!(change.grant().state, GrantState::Active);
    assert_eq!(change.grant().activated_at, Some(T0.plus_secs(1)));
    assert_eq!(change.grant().ends_at, Some(end));
    assert_eq!(
        change.audit().detail["starts_at"],
        SCHEDULED_START.to_string()
    );
    assert_eq!(change.audit().detail["ends_at"], end.to_string());
    let g = change.grant().clone();

    // No credentials before the start, and the refusal says when they open.
    let early = g
        .apply(issue(end), &alice, SCHEDULED_START.plus_secs(-1))
        .unwrap_err();
    assert_eq!(
        early.to_string(),
        format!(
            "access under request `{}` opens at {}; no credentials before then",
            g.id, SCHEDULED_START
        )
    );
    let used = g
        .apply(issue(end), &alice, SCHEDULED_START)
        .unwrap()
        .grant()
        .clone();
    assert_eq!(used.sessions_issued, 1);

    // Before the start, the requester (only) may cancel: nothing was issued, nothing to cut.
    let before = SCHEDULED_START.plus_secs(-60);
    let rob = g.apply(Command::Cancel, &as_user("rob"), before);
    assert!(matches!(rob, Err(TransitionError::NotPermitted { .. })));
    let cancelled = g.apply(Command::Cancel, &alice, before).unwrap();
    assert_eq!(cancelled.grant().state, GrantState::Cancelled);
    assert!(cancelled.revocation().is_none());
    assert_eq!(
        (cancelled.audit().from, cancelled.audit().to),
        (Some(GrantState::Active), GrantState::Cancelled)
    );
    // From the start on it is revoked like any grant, not cancelled.
    let at_start = g
        .apply(Command::Cancel, &alice, SCHEDULED_START)
        .unwrap_err();
    assert_eq!(
        at_start.to_string(),
        format!(
            "cannot cancel request `{}`: it is ACTIVE and its scheduled start has passed; revoke it instead",
            g.id
        )
    );
    // A function whose clock runs behind cannot cancel what another already issued for.
    let skewed = used.apply(Command::Cancel, &alice, before).unwrap_err();
    assert!(
        skewed.to_string().contains("credentials were issued"),
        "{skewed}"
    );

    // The longest total counts from the start: an extension before it is measured from it.
    assert_eq!(g.opens_at(), Some(SCHEDULED_START));
    assert!(g.not_yet_open(before) && !g.not_yet_open(SCHEDULED_START));
}

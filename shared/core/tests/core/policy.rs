//! The example rules in `infra/policies/`, and what loading refuses.

use std::collections::HashMap;
use std::path::PathBuf;

use jit_core::clock::Timestamp;
use jit_core::domain::{OnCall, TargetId};
use jit_core::identity::Caller;
use jit_core::policy::{AccessContext, Action, PolicyError, Rules, Window};

fn dir() -> PathBuf {
    jit_local::workspace_root().join("infra/policies")
}

fn rules() -> Rules {
    Rules::load_dir(&dir()).unwrap()
}

fn caller(sub: &str, groups: &str) -> Caller {
    let claims = HashMap::from([
        ("sub".to_owned(), sub.to_owned()),
        (
            "groups".to_owned(),
            serde_json::to_string(&groups.split_whitespace().collect::<Vec<_>>()).unwrap(),
        ),
    ]);
    Caller::from_claims(&claims, "groups").unwrap()
}

/// Wednesday 2027-01-13, 10:00 UTC.
use jit_test_support::WEDNESDAY_10;

fn ctx(
    duration_secs: u32,
    ticket: Option<&str>,
    break_glass: bool,
    at: Timestamp,
) -> AccessContext {
    AccessContext {
        duration_secs,
        reason: "investigating INC-42".to_owned(),
        ticket: ticket.map(str::to_owned),
        break_glass,
        at,
        window: Window::of(None, at, duration_secs),
        on_call: OnCall::not_asked(),
    }
}

/// The same context, asked at `at` for a window scheduled to start at `start`.
fn scheduled(mut context: AccessContext, start: Timestamp) -> AccessContext {
    context.window = Window::of(Some(start), context.at, context.duration_secs);
    context
}

fn target(id: &str) -> TargetId {
    TargetId::parse(id).unwrap()
}

#[test]
fn the_example_rules_load_with_their_hash() {
    let r = rules();
    assert_eq!(r.hash().len(), 64);
    assert_eq!(r.targets().count(), 4);
    assert!(r.policy_count() >= 10);
    let logs = r.target(&target("prod-logs-ro")).unwrap();
    let policy = logs.binding.session_policy.as_deref().unwrap();
    assert!(
        policy.contains("\"Version\":\"2012-10-17\"") && !policy.contains('\n'),
        "{policy}"
    );
}

#[test]
fn who_may_request_what() {
    let r = rules();
    let at = WEDNESDAY_10;
    let ask =
        |who: &Caller, t: &str, c: AccessContext| r.decide(who, Action::Request, &target(t), &c);
    let engineer = caller("eve", "engineers");
    let sre = caller("sam", "sre");
    let dba = caller("dan", "dba");

    let d = ask(&engineer, "prod-logs-ro", ctx(3600, None, false, at));
    assert!(d.allowed);
    assert_eq!(
        d.policies,
        ["engineers-may-request-prod-read-only-and-deploy"]
    );

    let d = ask(
        &engineer,
        "prod-db-admin",
        ctx(3600, Some("INC-1"), false, at),
    );
    assert!(!d.allowed);
    assert_eq!(
        d.explain_denial(Action::Request, "prod-db-admin"),
        "no policy permits you to Request on target `prod-db-admin`"
    );

    assert!(ask(&dba, "prod-db-admin", ctx(3600, Some("CHG-7"), false, at)).allowed);
    let d = ask(&dba, "prod-db-admin", ctx(3600, None, false, at));
    assert!(!d.allowed);
    assert_eq!(
        d.explain_denial(Action::Request, "prod-db-admin"),
        "admin access needs a ticket (policy admin-needs-a-ticket)"
    );

    // Write access only in business hours, unless break-glass.
    let saturday = WEDNESDAY_10.plus_secs(3 * 86_400);
    let late = WEDNESDAY_10.plus_secs(10 * 3600);
    assert!(ask(&sre, "prod-deploy", ctx(3600, None, false, at)).allowed);
    for when in [saturday, late] {
        let d = ask(&sre, "prod-deploy", ctx(3600, None, false, when));
        assert!(!d.allowed);
        assert_eq!(d.policies, ["write-access-in-business-hours"]);
    }
    assert!(ask(&sre, "prod-deploy", ctx(3600, None, true, saturday)).allowed);

    // The rules judge the window the access covers, not the moment of asking.
    let friday_evening = WEDNESDAY_10.plus_secs(2 * 86_400 + 8 * 3600); // Fri 18:00
    let sunday_night = WEDNESDAY_10.plus_secs(4 * 86_400 + 12 * 3600); // Sun 22:00
    let monday_morning = WEDNESDAY_10.plus_secs(5 * 86_400 - 3600); // Mon 09:00
    let friday_late = friday_evening.plus_secs(2 * 3600); // Fri 20:00
    // Asked in business hours, for Sunday night: a Sunday-night request.
    let d = ask(
        &sre,
        "prod-deploy",
        scheduled(ctx(3600, None, false, friday_evening), sunday_night),
    );
    assert!(!d.allowed, "judged by Sunday night, not by Friday 18:00");
    assert_eq!(d.policies, ["write-access-in-business-hours"]);
    // Asked out of hours, for Monday morning: a Monday-morning request.
    assert!(!ask(&sre, "prod-deploy", ctx(3600, None, false, friday_late)).allowed);
    assert!(
        ask(
            &sre,
            "prod-deploy",
            scheduled(ctx(3600, None, false, friday_late), monday_morning)
        )
        .allowed
    );
    // The whole window counts: an hour from Friday 18:30 runs past 19:00.
    let d = ask(
        &sre,
        "prod-deploy",
        ctx(3600, None, false, friday_evening.plus_secs(1800)),
    );
    assert!(!d.allowed, "18:30 for an hour ends after 19:00");
    // Ending exactly at 19:00 is inside.
    assert!(ask(&sre, "prod-deploy", ctx(3600, None, false, friday_evening)).allowed);

    // Nobody without a group, and nobody for a target that does not exist.
    assert!(!ask(&caller("x", ""), "prod-logs-ro", ctx(3600, None, false, at)).allowed);
    assert!(!ask(&sre, "no-such-target", ctx(3600, None, false, at)).allowed);
}

#[test]
fn what_is_approved_at_once() {
    let r = rules();
    let at = WEDNESDAY_10;
    let sre = caller("sam", "sre");
    let auto = |c: AccessContext| r.decide(&sre, Action::AutoApprove, &target("prod-logs-ro"), &c);
    let d = auto(ctx(3600, Some("INC-9"), false, at));
    assert!(d.allowed);
    assert_eq!(d.policies, ["sre-read-only-with-ticket"]);
    assert!(!auto(ctx(3600, None, false, at)).allowed, "no ticket");
    assert!(
        !auto(ctx(7200, Some("INC-9"), false, at)).allowed,
        "too long"
    );
    let engineer = caller("eve", "engineers");
    assert!(
        !r.decide(
            &engineer,
            Action::AutoApprove,
            &target("prod-logs-ro"),
            &ctx(600, Some("INC-9"), false, at)
        )
        .allowed
    );
    // The SRE on call: at once without a ticket, at the first two escalation levels only;
    // not on call, no answer, or a target that does not ask: as anyone else.
    let on_call = |level: Option<u32>, asked: bool| {
        let mut c = ctx(3 * 3600, None, false, at);
        c.on_call = OnCall {
            asked,
            level,
            said: "as the provider said".to_owned(),
            ..OnCall::default()
        };
        c
    };
    let d = auto(on_call(Some(1), true));
    assert!(d.allowed);
    assert_eq!(d.policies, ["on-call-sre-read-only"]);
    assert!(auto(on_call(Some(2), true)).allowed);
    assert!(!auto(on_call(Some(3), true)).allowed, "third in line");
    assert!(!auto(on_call(None, true)).allowed, "not on call");
    assert!(!auto(on_call(None, false)).allowed, "not asked");
    assert!(
        !r.decide(
            &engineer,
            Action::AutoApprove,
            &target("prod-logs-ro"),
            &on_call(Some(1), true)
        )
        .allowed,
        "on call, but not an SRE"
    );
    assert!(
        !r.decide(
            &sre,
            Action::AutoApprove,
            &target("prod-deploy"),
            &on_call(Some(1), true)
        )
        .allowed,
        "on call, but not read-only"
    );
    let bg = |who: &Caller, t: &str| {
        r.decide(
            who,
            Action::BreakGlass,
            &target(t),
            &ctx(1800, Some("INC-9"), true, at),
        )
    };
    assert!(bg(&sre, "break-glass-admin").allowed);
    assert!(!bg(&sre, "prod-db-admin").allowed);
    assert!(!bg(&engineer, "break-glass-admin").allowed);
}

#[test]
fn who_may_approve_revoke_and_audit() {
    let r = rules();
    let at = WEDNESDAY_10;
    let c = ctx(3600, Some("INC-1"), false, at);
    let may = |who: &Caller, action, t: &str| r.decide(who, action, &target(t), &c).allowed;
    let sre = caller("sam", "sre");
    let lead = caller("lee", "dba-leads");
    let security = caller("sue", "security");
    let engineer = caller("eve", "engineers");
    assert!(may(&sre, Action::Approve, "prod-logs-ro"));
    assert!(!may(&sre, Action::Approve, "prod-db-admin"));
    assert!(may(&lead, Action::Approve, "prod-db-admin"));
    assert!(may(&security, Action::Approve, "break-glass-admin"));
    assert!(!may(&engineer, Action::Approve, "prod-logs-ro"));
    assert!(may(&sre, Action::Revoke, "prod-db-admin"));
    assert!(!may(&engineer, Action::Revoke, "prod-logs-ro"));
    assert!(r.decide_audit(&security, at).allowed);
    assert!(
        r.decide_read(&security, &target("prod-db-admin"), at)
            .allowed
    );
    assert!(!r.decide_audit(&sre, at).allowed);
    assert!(
        !r.decide_read(&engineer, &target("prod-logs-ro"), at)
            .allowed
    );
}

fn sources() -> (String, Vec<(String, String)>, String) {
    let read = |name: &str| std::fs::read_to_string(dir().join(name)).unwrap();
    let policies = ["access.cedar", "auto-approve.cedar"]
        .iter()
        .map(|n| ((*n).to_owned(), read(n)))
        .collect();
    (read("schema.cedarschema"), policies, read("targets.json"))
}

fn load_with(extra: &str) -> Result<Rules, PolicyError> {
    let (schema, mut policies, targets) = sources();
    policies.push(("bad.cedar".to_owned(), extra.to_owned()));
    Rules::from_sources(&schema, policies, &targets)
}

#[test]
fn a_syntax_error_names_the_file_and_line() {
    let err =
        load_with("// fine\n\npermit (principal, action, resource) when { resource.tier == };\n")
            .unwrap_err();
    let PolicyError::Invalid { location, .. } = &err else {
        panic!("{err}")
    };
    assert_eq!(location, "bad.cedar:3", "{err}");
}

#[test]
fn a_policy_the_schema_does_not_allow_names_the_file_and_line() {
    let err = load_with(
        "@id(\"typo\")\npermit (\n  principal,\n  action == Jit::Action::\"Request\",\n  resource\n)\nwhen { resource.teir == \"admin\" };\n",
    )
    .unwrap_err();
    let PolicyError::Invalid { location, why } = &err else {
        panic!("{err}")
    };
    assert_eq!(location, "bad.cedar:7", "{err}");
    assert!(why.contains("typo") && why.contains("teir"), "{why}");
    let err =
        load_with("permit (principal, action == Jit::Action::\"Fly\", resource);").unwrap_err();
    assert!(err.to_string().starts_with("bad.cedar:1"), "{err}");
}

#[test]
fn duplicate_ids_empty_sets_and_bad_targets_are_refused() {
    let err = load_with("@id(\"sre-may-request-anything\")\npermit (principal, action, resource);")
        .unwrap_err();
    assert!(
        err.to_string().contains("is also used in `access.cedar`"),
        "{err}"
    );

    let (schema, _, targets) = sources();
    let err = Rules::from_sources(&schema, vec![], &targets).unwrap_err();
    assert!(err.to_string().contains("no policies found"), "{err}");

    let (schema, policies, targets) = sources();
    let bad_targets = targets.replacen("\"approvals_required\": 1", "\"approvals_required\": 0", 1);
    let err = Rules::from_sources(&schema, policies.clone(), &bad_targets).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("targets.json: target `prod-logs-ro`"),
        "{err}"
    );

    let err = Rules::from_sources("namespace Jit { entity ; }", policies, &targets).unwrap_err();
    assert!(err.to_string().starts_with("schema.cedarschema:1"), "{err}");

    let err = Rules::load_dir(&dir().join("missing")).unwrap_err();
    assert!(matches!(err, PolicyError::Read { .. }));

    // Cedar does not look at annotations; the loader checks each @requirement names one a
    // target declares, on a permit.
    let misspelt = "@id(\"leads\")\n@requirement(\"dba-leads\")\npermit (principal, action == Jit::Action::\"Approve\", resource);";
    let err = load_with(misspelt).unwrap_err().to_string();
    assert!(
        err.contains(
            "policy `leads`: @requirement(\"dba-leads\") names no requirement of any target in targets.json (declared: dba-lead, security)"
        ),
        "{err}"
    );
    let on_forbid = "@id(\"no\")\n@requirement(\"security\")\nforbid (principal, action == Jit::Action::\"Approve\", resource);";
    let err = load_with(on_forbid).unwrap_err().to_string();
    assert!(err.contains("only means something on a permit"), "{err}");
}

#[test]
fn the_hash_follows_the_content() {
    let (schema, policies, targets) = sources();
    let a = Rules::from_sources(&schema, policies.clone(), &targets).unwrap();
    let mut reordered = policies.clone();
    reordered.reverse();
    let b = Rules::from_sources(&schema, reordered, &targets).unwrap();
    assert_eq!(a.hash(), b.hash(), "file order does not matter");
    let mut edited = policies;
    edited[0].1.push_str("\n// a comment is a change too\n");
    let c = Rules::from_sources(&schema, edited, &targets).unwrap();
    assert_ne!(a.hash(), c.hash());
}

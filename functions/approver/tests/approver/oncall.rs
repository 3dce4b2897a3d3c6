//! On-call as a rule input: the approver asks the PagerDuty stand-in (its documented
//! `GET /oncalls`, token from Secrets Manager on the emulator), the example rule
//! `on-call-sre-read-only` decides, and the decision's record says what was answered. No
//! answer in time, a refused token or a person not in the mapping is "not on call".

use std::sync::Arc;
use std::time::Duration;

use crate::support::*;
use jit_approver::OnCallAsker;
use jit_approver::oncall::{PagerDuty, TokenSource};
use jit_core::clock::{Clock, Timestamp};
use jit_core::domain::GrantState;
use jit_core::domain::audit::AuditAction;
use jit_core::store::GrantStore;
use jit_local::{PagerDutyStandIn, RosterEntry};
use serde_json::json;

const SRE: &[&str] = &["sre"];
const TOKEN: &str = "pd-test-token-1";

/// The stand-in, and a secret on the emulator holding `token`, named after `label`.
async fn provider(label: &str, token: &str, deadline: Duration) -> (PagerDutyStandIn, OnCallAsker) {
    let standin = PagerDutyStandIn::start(TOKEN).await.unwrap();
    let emulator = tokio::task::spawn_blocking(jit_local::Emulator::shared)
        .await
        .unwrap()
        .unwrap();
    let client = aws_sdk_secretsmanager::Client::new(&emulator.sdk_config().await);
    let id = format!("jit/pagerduty-{label}");
    client
        .create_secret()
        .name(&id)
        .secret_string(format!("{token}\n"))
        .send()
        .await
        .unwrap();
    let source = TokenSource::Secret { client, id };
    let pd = PagerDuty::new(&standin.url, source, deadline + Duration::from_secs(1));
    let asker = OnCallAsker {
        provider: Some(Arc::new(pd)),
        deadline,
    };
    (standin, asker)
}

fn on_call(user: &str, level: u32, start: Timestamp, end: Option<Timestamp>) -> RosterEntry {
    RosterEntry::permanent(user, "PSRE001", level)
        .between(Some(start.unix_seconds()), end.map(Timestamp::unix_seconds))
}

/// A harness whose approver asks `asker`.
async fn harness(label: &str, asker: OnCallAsker) -> Harness {
    let mut h = Harness::new(label).await;
    h.approver.on_call = asker;
    h
}

/// `who` (an SRE) asks for two hours of read-only logs without a ticket; the rules decide.
async fn decide(h: &Harness, who: &str) -> jit_core::domain::Grant {
    let g = h.request(who, SRE, "prod-logs-ro", "2h", None, false).await;
    let record = h.insert_record(&g.id).await;
    assert_eq!(
        h.deliver(vec![record]).await,
        json!({"batchItemFailures": []})
    );
    h.grant(&g.id).await
}

#[tokio::test]
async fn the_sre_on_call_is_approved_at_once_until_the_shift_ends_and_the_evidence_holds() {
    let (pd, asker) = provider("shift", TOKEN, Duration::from_secs(2)).await;
    let h = harness("oncall-shift", asker).await;
    let now = h.clock.now();
    let shift_end = now.plus_secs(45 * 60);
    pd.set_roster(vec![on_call(
        "PSAM001",
        1,
        now.plus_secs(-3600),
        Some(shift_end),
    )]);

    let g = decide(&h, "sam").await;
    assert_eq!(g.state, GrantState::Active);
    assert_eq!(
        g.ends_at,
        Some(shift_end),
        "two hours asked, 45 minutes of shift left: it ends with the shift"
    );
    let last = jit_test_support::last_audit(h.store(), &g.id).await;
    assert_eq!(last.action, AuditAction::AutoApproved);
    assert_eq!(last.detail["policies"], "on-call-sre-read-only");
    assert_eq!(
        last.detail["on_call"],
        format!("pagerduty: on call at level 1 (escalation policy PSRE001) until {shift_end}")
    );
    assert_eq!(last.detail["shift_ends_at"], shift_end.to_string());

    // PagerDuty was asked as it documents, with the token read from Secrets Manager.
    let queries = pd.take_queries();
    assert_eq!(queries.len(), 1, "{queries:?}");
    let params: Vec<(String, String)> = url::form_urlencoded::parse(queries[0].as_bytes())
        .into_owned()
        .collect();
    for wanted in [
        ("user_ids[]", "PSAM001"),
        ("escalation_policy_ids[]", "PSRE001"),
        ("earliest", "true"),
        ("include[]", "users"),
    ] {
        assert!(
            params.iter().any(|(k, v)| k == wanted.0 && v == wanted.1),
            "{wanted:?} in {params:?}"
        );
    }

    // The issuer's evidence check accepts the shortened end the approver signed, and refuses
    // an end moved past it.
    let (grant, records) = h.store().evidence(&g.id).await.unwrap().unwrap();
    let ring = h.approver.keys.ring().await.unwrap();
    jit_core::trust::check_grant(&grant, &records, ring).unwrap();
    let mut edited = grant.clone();
    edited.ends_at = Some(now.plus_secs(2 * 3600));
    let refused = jit_core::trust::check_grant(&edited, &records, ring).unwrap_err();
    assert!(refused.to_string().contains("end time"), "{refused}");
}

#[tokio::test]
async fn a_permanent_entry_does_not_shorten_the_grant() {
    let (pd, asker) = provider("permanent", TOKEN, Duration::from_secs(2)).await;
    let h = harness("oncall-permanent", asker).await;
    let now = h.clock.now();
    pd.set_roster(vec![RosterEntry::permanent("PSAM001", "PSRE001", 2)]);

    let g = decide(&h, "sam").await;
    assert_eq!(g.state, GrantState::Active);
    assert_eq!(g.ends_at, Some(now.plus_secs(2 * 3600)));
    let last = jit_test_support::last_audit(h.store(), &g.id).await;
    assert_eq!(
        last.detail["on_call"],
        "pagerduty: on call at level 2 (escalation policy PSRE001) with no end"
    );
    assert!(!last.detail.contains_key("shift_ends_at"));
}

#[tokio::test]
async fn who_is_not_on_call_or_too_far_down_the_escalation_waits_for_reviewers() {
    let (pd, asker) = provider("levels", TOKEN, Duration::from_secs(2)).await;
    let h = harness("oncall-levels", asker).await;
    let now = h.clock.now();
    let later = Some(now.plus_secs(3600));
    pd.set_roster(vec![
        // Olive is on call, but third in line; Omar's shift starts in an hour; Sam's ended.
        on_call("POLIVE1", 3, now.plus_secs(-60), later),
        on_call("POMAR01", 1, now.plus_secs(3600), Some(now.plus_secs(7200))),
        on_call("PSAM001", 1, now.plus_secs(-7200), Some(now)),
    ]);
    let cases = [
        (
            "olive",
            "pagerduty: on call at level 3 (escalation policy PSRE001) until",
        ),
        ("omar", "pagerduty: not on call"),
        ("sam", "pagerduty: not on call"),
    ];
    for (who, said) in cases {
        let g = decide(&h, who).await;
        assert_eq!(g.state, GrantState::Pending, "{who}");
        let last = jit_test_support::last_audit(h.store(), &g.id).await;
        assert_eq!(last.action, AuditAction::AwaitingReview, "{who}");
        assert!(
            last.detail["on_call"].starts_with(said),
            "{who}: {}",
            last.detail["on_call"]
        );
    }
}

#[tokio::test]
async fn a_provider_that_does_not_answer_in_time_is_not_on_call_and_the_batch_goes_on() {
    let (pd, asker) = provider("slow", TOKEN, Duration::from_millis(300)).await;
    let h = harness("oncall-slow", asker).await;
    let now = h.clock.now();
    pd.set_roster(vec![on_call("PSAM001", 1, now.plus_secs(-60), None)]);
    pd.set_delay(Duration::from_secs(5));
    // In the same batch, a request the rules approve on other grounds (a ticket).
    let slow = h
        .request("sam", SRE, "prod-logs-ro", "2h", None, false)
        .await;
    let other = h
        .request("pat", SRE, "prod-logs-ro", "30m", Some("INC-7"), false)
        .await;
    let batch = vec![
        h.insert_record(&slow.id).await,
        h.insert_record(&other.id).await,
    ];
    let started = std::time::Instant::now();
    assert_eq!(h.deliver(batch).await, json!({"batchItemFailures": []}));
    let took = started.elapsed();

    assert_eq!(h.grant(&slow.id).await.state, GrantState::Pending);
    let last = jit_test_support::last_audit(h.store(), &slow.id).await;
    assert_eq!(
        last.detail["on_call"],
        "pagerduty did not answer within 300 ms; not on call"
    );
    assert_eq!(h.grant(&other.id).await.state, GrantState::Active);
    println!("a batch with an on-call provider 5 s slow, deadline 300 ms, took {took:?}");
}

#[tokio::test]
async fn a_refused_token_or_a_person_not_in_the_mapping_is_not_on_call() {
    // The secret holds a token PagerDuty does not accept.
    let (pd, asker) = provider("refused", "revoked-token", Duration::from_secs(2)).await;
    let h = harness("oncall-refused", asker).await;
    let now = h.clock.now();
    pd.set_roster(vec![on_call("PSAM001", 1, now.plus_secs(-60), None)]);
    let g = decide(&h, "sam").await;
    assert_eq!(g.state, GrantState::Pending);
    let last = jit_test_support::last_audit(h.store(), &g.id).await;
    assert_eq!(
        last.detail["on_call"],
        "pagerduty gave no answer (GET /oncalls answered 401 Unauthorized); not on call"
    );
    pd.take_queries();

    // Ursula is not in targets.json's on_call.people: nobody is asked about her, whatever
    // PagerDuty holds.
    let g = decide(&h, "ursula").await;
    assert_eq!(g.state, GrantState::Pending);
    let last = jit_test_support::last_audit(h.store(), &g.id).await;
    assert_eq!(
        last.detail["on_call"],
        "the requester is not in targets.json's on_call.people; not on call"
    );
    assert!(pd.take_queries().is_empty());
}

#[tokio::test]
async fn entries_are_read_page_by_page_and_each_question_is_asked_once_a_batch() {
    let (pd, asker) = provider("pages", TOKEN, Duration::from_secs(2)).await;
    let h = harness("oncall-pages", asker).await;
    let now = h.clock.now();
    // Third in line on one escalation, first on another entry of the same policy: the
    // lowest level counts, wherever its page.
    let mut second = on_call("PSAM001", 1, now.plus_secs(-60), None);
    second.schedule = Some("PSCHED1".to_owned());
    pd.set_roster(vec![
        on_call("PSAM001", 3, now.plus_secs(-60), None),
        second,
    ]);
    pd.set_page_size(1);
    let g = h
        .request("sam", SRE, "prod-logs-ro", "1h", None, false)
        .await;
    let record = h.insert_record(&g.id).await;
    // The same record twice in one batch (a redelivery): one question.
    h.deliver(vec![record.clone(), record]).await;
    assert_eq!(h.grant(&g.id).await.state, GrantState::Active);
    let offsets: Vec<String> = pd
        .take_queries()
        .iter()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .find(|(k, _)| k == "offset")
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default()
        })
        .collect();
    assert_eq!(offsets, ["0", "1"], "two pages, each read once");
}

#[tokio::test]
async fn a_scheduled_request_is_not_judged_by_who_is_on_call_now() {
    let (pd, asker) = provider("scheduled", TOKEN, Duration::from_secs(2)).await;
    let h = harness("oncall-scheduled", asker).await;
    let now = h.clock.now();
    pd.set_roster(vec![on_call("PSAM001", 1, now.plus_secs(-60), None)]);
    let mut new = jit_test_support::request(&h.approver.rules, "sam", SRE, "prod-logs-ro", "1h");
    new.starts_at = Some(now.plus_secs(6 * 3600));
    let g = jit_test_support::create(h.store(), new, now).await;
    let record = h.insert_record(&g.id).await;
    h.deliver(vec![record]).await;
    assert_eq!(h.grant(&g.id).await.state, GrantState::Pending);
    let last = jit_test_support::last_audit(h.store(), &g.id).await;
    assert!(
        last.detail["on_call"].starts_with("not asked: the request is scheduled ahead"),
        "{}",
        last.detail["on_call"]
    );
    assert!(pd.take_queries().is_empty());
}

#[tokio::test]
async fn the_sre_on_call_extends_at_once_within_the_shift_and_through_reviewers_past_it() {
    let (pd, asker) = provider("extend", TOKEN, Duration::from_secs(2)).await;
    let h = harness("oncall-extend", asker).await;
    let now = h.clock.now();
    let shift_end = now.plus_secs(3 * 3600);
    pd.set_roster(vec![on_call(
        "PSAM001",
        1,
        now.plus_secs(-60),
        Some(shift_end),
    )]);
    // An hour, at once for the SRE on call.
    let g = h
        .request("sam", SRE, "prod-logs-ro", "1h", None, false)
        .await;
    let record = h.insert_record(&g.id).await;
    h.deliver(vec![record]).await;
    assert_eq!(h.grant(&g.id).await.ends_at, Some(now.plus_secs(3600)));
    // An hour more stays within the shift: at once, as a fresh request would be.
    let at_once = extend(&h, &g.id, "1h").await;
    assert_eq!(at_once.status, 200, "{}", at_once.body);
    let last = jit_test_support::last_audit(h.store(), &g.id).await;
    assert_eq!(last.action, AuditAction::Extended);
    assert_eq!(last.detail["policies"], "on-call-sre-read-only");
    assert!(last.detail["on_call"].starts_with("pagerduty: on call at level 1"));
    // Two hours more would run past the shift: reviewers decide, and the record says why.
    let waits = extend(&h, &g.id, "2h").await;
    assert_eq!(waits.status, 202, "{}", waits.body);
    let last = jit_test_support::last_audit(h.store(), &g.id).await;
    assert_eq!(last.action, AuditAction::ExtensionRequested);
    assert!(
        last.detail["on_call"]
            .ends_with("the extension would run past the shift's end, so not on call for it"),
        "{}",
        last.detail["on_call"]
    );
}

/// Sam asks for `duration` more on grant `id`.
async fn extend(h: &Harness, id: &jit_core::domain::GrantId, duration: &str) -> Reply {
    let body = json!({"duration": duration, "reason": "the incident is still open"});
    h.call(
        Some(("sam", SRE)),
        "POST /grants/{id}/extend",
        &format!("/grants/{id}/extend"),
        Some(&body.to_string()),
    )
    .await
}

#[tokio::test]
async fn an_unreachable_provider_is_not_on_call_and_the_record_names_nobody() {
    let (pd, asker) = provider("unreachable", TOKEN, Duration::from_secs(2)).await;
    let h = harness("oncall-unreachable", asker).await;
    // Nothing listens where PagerDuty was.
    drop(pd);
    let g = decide(&h, "sam").await;
    assert_eq!(g.state, GrantState::Pending);
    let said = jit_test_support::last_audit(h.store(), &g.id).await.detail["on_call"].clone();
    assert!(
        said.starts_with("pagerduty gave no answer (GET /oncalls failed")
            && said.ends_with("; not on call"),
        "{said}"
    );
    assert!(!said.contains("PSAM001") && !said.contains("sam"), "{said}");
}

#[test]
fn the_token_goes_only_over_https_or_to_loopback() {
    for (base, allowed) in [
        ("https://api.pagerduty.com", true),
        ("https://api.eu.pagerduty.com/", true),
        ("http://127.0.0.1:40123", true),
        ("http://localhost:8080", true),
        ("http://api.pagerduty.com", false),
        ("http://10.0.0.8:80", false),
        ("http://127.0.0.1.example.com", false),
        ("ftp://api.pagerduty.com", false),
        ("not a url", false),
    ] {
        let checked = jit_approver::oncall::check_base(base);
        assert_eq!(checked.is_ok(), allowed, "{base}: {checked:?}");
    }
}

//! On-call as a rule input, end to end: the real approver binary asks the stack's PagerDuty
//! stand-in (its token read from Secrets Manager on the emulator), the example rule
//! `on-call-sre-read-only` opens read-only access at once for the SRE on call, ending with the
//! shift, and the issuer's evidence check accepts that end; an SRE who is not on call, and one
//! whom the provider does not answer for in time, wait for reviewers, and the decision's
//! record says why.

use std::time::Duration;

use jit_core::clock::{Clock, SystemClock, Timestamp};
use jit_core::domain::GrantState;
use jit_e2e::shared;
use jit_local::RosterEntry;
use serde_json::Value;

use super::{api, ask, asking, pull, revoke, send};

/// `user` on call at `level` since an hour ago, until `end`.
fn entry(user: &str, level: u32, end: Option<Timestamp>) -> RosterEntry {
    let started = SystemClock.now().plus_secs(-3600).unix_seconds();
    RosterEntry::permanent(user, "PSRE001", level)
        .between(Some(started), end.map(Timestamp::unix_seconds))
}

/// The record the approver's decision made, from the request's trail.
async fn decision(api: &jit_e2e::Api, id: &str, token: &str) -> Value {
    let trail = send(
        api,
        ("GET".to_owned(), format!("/requests/{id}/audit")),
        token,
        None,
    )
    .await;
    assert_eq!(trail.status, 200, "{}", trail.body);
    trail.body["records"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["actor"] == "service:approver")
        .cloned()
        .unwrap_or_else(|| panic!("no decision in {}", trail.body))
}

#[tokio::test]
async fn the_sre_on_call_gets_read_access_until_the_shift_ends_and_no_answer_is_not_on_call() {
    let stack = shared().unwrap();
    let api = api(stack);
    let api = &api;
    let olive = stack.token("olive", &["sre"]);
    let omar = stack.token("omar", &["sre"]);
    let pd = stack.pagerduty();
    // Olive is first in line for another 40 minutes; Omar is on call, but third in line.
    let shift_end = Timestamp::from_unix_seconds(SystemClock.now().unix_seconds() + 40 * 60);
    pd.set_roster(vec![
        entry("POLIVE1", 1, Some(shift_end)),
        entry("POMAR01", 3, None),
    ]);

    // Two hours of read-only logs without a ticket: at once for Olive, until her shift ends.
    let mut request = asking("prod-logs-ro", "2h");
    request.ticket = None;
    let id = ask(api, &olive, request.clone()).await;
    let g = api
        .wait_for(&id, &olive, Duration::from_secs(30), |g| {
            g.state != GrantState::Pending
        })
        .await
        .unwrap();
    assert_eq!(g.state, GrantState::Active, "{g:?}");
    assert_eq!(g.ends_at, Some(shift_end.to_string()), "{g:?}");
    let d = decision(api, &id, &olive).await;
    assert_eq!(d["action"], "AUTO_APPROVED");
    assert_eq!(d["detail"]["policies"], "on-call-sre-read-only");
    assert_eq!(
        d["detail"]["on_call"],
        format!("pagerduty: on call at level 1 (escalation policy PSRE001) until {shift_end}")
    );
    // The record names nobody: the audit bucket holds people only by pseudonym.
    let text = d["detail"].to_string();
    assert!(
        !text.contains("olive") && !text.contains("POLIVE1"),
        "{text}"
    );
    // The issuer's evidence check takes the end the approver signed: credentials, lasting no
    // longer than the grant.
    let c = pull(api, &id, &olive).await;
    assert_eq!(c.status, 200, "{}", c.body);
    let expiration = Timestamp::parse_rfc3339(c.body["Expiration"].as_str().unwrap()).unwrap();
    assert!(expiration <= shift_end, "{expiration} after {shift_end}");

    // Omar is on call, but third in line: the rule does not reach him; reviewers decide.
    let waiting = ask(api, &omar, request.clone()).await;
    api.wait_looked_at(&waiting, &omar).await.unwrap();
    let d = decision(api, &waiting, &omar).await;
    assert_eq!(d["action"], "AWAITING_REVIEW");
    assert_eq!(
        d["detail"]["on_call"],
        "pagerduty: on call at level 3 (escalation policy PSRE001) with no end"
    );

    // PagerDuty too slow: not on call. The approver waits 2 s (the template's deadline) and
    // decides; the request goes to reviewers.
    assert_eq!(revoke(api, &id, &olive).await.status, 200);
    pd.set_delay(Duration::from_secs(8));
    let slow = ask(api, &olive, request).await;
    let looked_at = api.wait_looked_at(&slow, &olive).await;
    pd.set_delay(Duration::ZERO);
    looked_at.unwrap();
    let d = decision(api, &slow, &olive).await;
    assert_eq!(d["action"], "AWAITING_REVIEW");
    assert_eq!(
        d["detail"]["on_call"],
        "pagerduty did not answer within 2000 ms; not on call"
    );
}

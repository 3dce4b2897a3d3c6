//! Approvals in Slack, at the edges the end-to-end test cannot reach in real time: how old the
//! groups a click is decided on may be (12 h, 1 h for admin targets), links and seen groups
//! signed by anyone but intake, and the stream's second reader when Slack is down, comes back,
//! and delivers a change twice. Against DynamoDB on the emulator, the Slack stand-in, and the
//! bot token in the emulator's Secrets Manager.

use jit_approver::oncall::{CachedSecret, TokenSource};
use jit_approver::slack::{SlackApi, SlackApp};
use jit_core::clock::Clock;
use jit_core::domain::audit::AuditAction;
use jit_core::domain::{GrantState, GroupName, Service, UserId};
use jit_core::slack::{SeenGroups, SlackLink, SlackUser};
use jit_local::{SlackMember, SlackStandIn};

use crate::support::*;

const TEAM: &str = "T0JITDEMO";
const HOUR: i64 = 3600;

/// The stand-in, and the Slack function over `h`'s table and rules, its bot token in the
/// emulator's Secrets Manager under a name made from `label`.
async fn slack(h: &Harness, label: &str) -> (SlackStandIn, SlackApp) {
    let standin = SlackStandIn::start(TEAM, "xoxb-test", "signing-test")
        .await
        .unwrap();
    let emulator = tokio::task::spawn_blocking(jit_local::Emulator::shared)
        .await
        .unwrap()
        .unwrap();
    let client = aws_sdk_secretsmanager::Client::new(&emulator.sdk_config().await);
    let mut secrets = Vec::new();
    for (name, value) in [("bot", "xoxb-test"), ("signing", "signing-test")] {
        let id = format!("jit/slack-{name}-{label}");
        client
            .create_secret()
            .name(&id)
            .secret_string(value)
            .send()
            .await
            .unwrap();
        secrets.push(TokenSource::Secret {
            client: client.clone(),
            id,
        });
    }
    let signing = CachedSecret::new(secrets.pop().unwrap());
    let api = SlackApi::new(&standin.api_url(), secrets.pop().unwrap());
    let app = SlackApp {
        store: h.store().clone(),
        rules: h.approver.rules.clone(),
        clock: h.clock.clone(),
        keys: h.approver.keys.clone(),
        api,
        signing_secret: signing,
        web_url: Some("https://jit.example.com".into()),
    };
    (standin, app)
}

fn user(id: &str) -> SlackUser {
    SlackUser {
        team_id: TEAM.into(),
        enterprise_id: None,
        user_id: id.into(),
    }
}

/// Links `slack` to `sub` and records `groups` as seen `ago` seconds before now, both signed
/// by `signer` (intake, as deployed).
async fn linked(h: &Harness, slack: &str, sub: &str, groups: &[&str], ago: i64, signer: Service) {
    let store = h.store();
    let link = SlackLink {
        slack: user(slack),
        sub: UserId::parse(sub).unwrap(),
        linked_at: h.clock.now(),
    };
    let signature = store.key().sign(signer, link.message()).await.unwrap();
    store.inner().put_link(&link, &signature).await.unwrap();
    seen(h, sub, groups, ago, signer).await;
}

async fn seen(h: &Harness, sub: &str, groups: &[&str], ago: i64, signer: Service) {
    let store = h.store();
    let seen = SeenGroups {
        sub: UserId::parse(sub).unwrap(),
        groups: groups
            .iter()
            .map(|g| GroupName::parse(*g).unwrap())
            .collect(),
        at: h.clock.now().plus_secs(-ago),
    };
    let signature = store.key().sign(signer, seen.message()).await.unwrap();
    store.inner().put_seen(&seen, &signature).await.unwrap();
}

/// A request the rules send to reviewers.
async fn waiting(h: &Harness, who: &str, groups: &[&str], target: &str) -> jit_core::domain::Grant {
    let g = h
        .request(who, groups, target, "1h", Some("INC-7"), false)
        .await;
    let record = h.insert_record(&g.id).await;
    h.deliver(vec![record]).await;
    let g = h.grant(&g.id).await;
    assert_eq!(g.state, GrantState::Pending);
    assert!(g.approvals_required.is_some());
    g
}

#[tokio::test]
async fn a_click_counts_on_groups_seen_recently_enough_and_signed_by_intake_only() {
    let h = Harness::new("slack-age").await;
    let (standin, app) = slack(&h, "age").await;
    standin.add_users(["U1SAM", "U1LEE", "U1ROB"].map(|u| SlackMember::member(u, TEAM)));
    let now = h.clock.now();

    // Read-only logs, no ticket: one SRE approval. Sam's groups were seen 13 hours ago.
    let mut g = h
        .request("erin", &["engineers"], "prod-logs-ro", "1h", None, false)
        .await;
    h.deliver(vec![h.insert_record(&g.id).await]).await;
    linked(&h, "U1SAM", "sam", &["sre"], 13 * HOUR, Service::Intake).await;
    let answer = app.click(&user("U1SAM"), true, g.id.as_str(), now).await.0;
    assert!(answer.contains("more than 12 h ago"), "{answer}");
    // The answer is a link to the web page carrying a token; the table keeps only its digest,
    // with the request and the person it is for.
    let token = answer
        .split("https://jit.example.com/#/slack/")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .unwrap_or_else(|| panic!("{answer}"));
    assert_eq!(token.len(), 64, "{answer}");
    let (handoff, expires) = h
        .store()
        .inner()
        .take_handoff(&jit_core::slack::handoff_digest(token))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (handoff.grant, handoff.sub.as_str(), handoff.clicked_at),
        (g.id.clone(), "sam", now)
    );
    assert_eq!(expires, now.plus_secs(600));
    assert!(h.grant(&g.id).await.reviews.is_empty());

    // Seen 11 hours ago, signed by intake: the click is Sam's approval, and says so on record.
    seen(&h, "sam", &["sre"], 11 * HOUR, Service::Intake).await;
    let answer = app.click(&user("U1SAM"), true, g.id.as_str(), now).await.0;
    assert!(answer.starts_with("You approved"), "{answer}");
    g = h.grant(&g.id).await;
    assert_eq!(g.state, GrantState::Active);
    let last = jit_test_support::last_audit(h.store(), &g.id).await;
    assert_eq!(last.action, AuditAction::Approved);
    assert_eq!(last.actor.to_string(), "user:sam");
    assert_eq!(
        (
            last.detail["via"].as_str(),
            last.detail["slack_team"].as_str(),
            last.detail["slack_user"].as_str()
        ),
        ("slack", TEAM, "U1SAM")
    );

    // A link signed by anyone but intake links nobody.
    let db = waiting(&h, "dan", &["dba"], "prod-db-admin").await;
    linked(&h, "U1ROB", "rob", &["security"], 60, Service::Approver).await;
    let answer = app.click(&user("U1ROB"), true, db.id.as_str(), now).await.0;
    assert!(answer.contains("not linked"), "{answer}");

    // An admin target: groups seen 2 hours ago are too old (1 h), 5 minutes ago are not.
    linked(
        &h,
        "U1LEE",
        "lee",
        &["dba-leads"],
        2 * HOUR,
        Service::Intake,
    )
    .await;
    let answer = app.click(&user("U1LEE"), true, db.id.as_str(), now).await.0;
    assert!(answer.contains("more than 1 h ago"), "{answer}");
    // Groups seen by a signer other than intake are no groups at all, however recent.
    seen(&h, "lee", &["dba-leads"], 10 * 60, Service::Approver).await;
    let answer = app.click(&user("U1LEE"), true, db.id.as_str(), now).await.0;
    assert!(answer.contains("more than 1 h ago"), "{answer}");
    seen(&h, "lee", &["dba-leads"], 5 * 60, Service::Intake).await;
    let answer = app.click(&user("U1LEE"), true, db.id.as_str(), now).await.0;
    assert!(answer.starts_with("You approved"), "{answer}");
    let db = h.grant(&db.id).await;
    assert_eq!((db.state, db.reviews.len()), (GrantState::Pending, 1));
}

#[tokio::test]
async fn messages_wait_for_slack_and_follow_each_change_once() {
    let h = Harness::new("slack-stream").await;
    let (standin, app) = slack(&h, "stream").await;
    let g = waiting(&h, "erin", &["engineers"], "prod-logs-ro").await;
    let batch = |records| serde_json::from_value(jit_local::stream_batch(records)).unwrap();
    let first = h.insert_record(&g.id).await;

    // Slack down: the record is reported for retry and nothing is recorded as posted.
    standin.set_down(true);
    let answer = app.handle_stream(batch(vec![first.clone()])).await;
    assert_eq!(answer.batch_item_failures.len(), 1);
    assert!(standin.message_about(g.id.as_str()).is_none());
    assert!(
        h.store()
            .inner()
            .posted_message(&g.id)
            .await
            .unwrap()
            .is_none()
    );

    // Back: the retry posts it, with its buttons, to the target's channel.
    standin.set_down(false);
    let answer = app.handle_stream(batch(vec![first.clone()])).await;
    assert!(answer.batch_item_failures.is_empty());
    let posted = standin.message_about(g.id.as_str()).unwrap();
    assert_eq!(posted.channel, "C0REVIEWS");
    assert_eq!(posted.buttons(), ["jit_approve", "jit_deny"]);

    // Denied: the same message is updated, without buttons; a limited first try (Retry-After
    // 1 s) is waited out. Delivered again, neither record changes anything.
    let cases = jit_core::cases::Cases::new(h.store(), &h.approver.rules, &h.approver.keys);
    let sam = jit_core::identity::Caller {
        user: UserId::parse("sam").unwrap(),
        email: None,
        groups: vec![GroupName::parse("sre").unwrap()],
    };
    cases
        .review(
            &sam,
            g.id.as_str(),
            jit_core::domain::ReviewDecision::Deny,
            None,
            h.clock.now(),
        )
        .await
        .unwrap();
    let denied = h.insert_record(&g.id).await;
    standin.limit_next(1, 1);
    let answer = app.handle_stream(batch(vec![denied.clone()])).await;
    assert!(answer.batch_item_failures.is_empty());
    let updated = standin.message_about(g.id.as_str()).unwrap();
    assert_eq!(
        (updated.ts.as_str(), updated.updates),
        (posted.ts.as_str(), 1)
    );
    assert!(updated.buttons().is_empty());
    assert!(updated.text.contains("Closed: denied"), "{}", updated.text);
    app.handle_stream(batch(vec![first, denied])).await;
    let again = standin.message_about(g.id.as_str()).unwrap();
    assert_eq!((again.updates, standin.channel("C0REVIEWS").len()), (1, 1));
    assert_eq!(
        standin
            .calls()
            .iter()
            .filter(|(m, s)| m == "chat.postMessage" && *s == 200)
            .count(),
        1
    );
}

#[tokio::test]
async fn a_deleted_message_is_posted_again_and_a_closed_channel_holds_up_no_other_request() {
    let h = Harness::new("slack-gone").await;
    let (standin, app) = slack(&h, "gone").await;
    let batch = |records| serde_json::from_value(jit_local::stream_batch(records)).unwrap();
    let g = waiting(&h, "erin", &["engineers"], "prod-logs-ro").await;
    let answer = app
        .handle_stream(batch(vec![h.insert_record(&g.id).await]))
        .await;
    assert!(answer.batch_item_failures.is_empty());
    let first = standin.message_about(g.id.as_str()).unwrap();

    // Someone deletes the message in Slack. The request's next change posts it again as it
    // stands, and the message after that is an update of the new one.
    standin.delete_message(&first.ts);
    let cases = jit_core::cases::Cases::new(h.store(), &h.approver.rules, &h.approver.keys);
    let erin = jit_core::identity::Caller {
        user: UserId::parse("erin").unwrap(),
        email: None,
        groups: vec![GroupName::parse("engineers").unwrap()],
    };
    cases
        .cancel(&erin, g.id.as_str(), h.clock.now())
        .await
        .unwrap();
    let answer = app
        .handle_stream(batch(vec![h.insert_record(&g.id).await]))
        .await;
    assert!(answer.batch_item_failures.is_empty());
    let again = standin.message_about(g.id.as_str()).unwrap();
    assert_ne!(again.ts, first.ts);
    assert!(again.text.contains("Closed: cancelled"), "{}", again.text);
    assert!(again.buttons().is_empty());
    let stored = h.store().inner().posted_message(&g.id).await.unwrap();
    assert_eq!(stored.map(|p| p.ts), Some(again.ts));

    // The databases' channel is archived: their request's message cannot land. Its record is
    // passed over, not retried for a day ahead of the shard's other records, so the next
    // request in the same batch, for another channel, is posted.
    standin.archive("C0DBA");
    let db = waiting(&h, "dan", &["dba"], "prod-db-admin").await;
    let logs = waiting(&h, "eve", &["engineers"], "prod-logs-ro").await;
    let records = vec![
        h.insert_record(&db.id).await,
        h.insert_record(&logs.id).await,
    ];
    let answer = app.handle_stream(batch(records)).await;
    assert!(answer.batch_item_failures.is_empty());
    assert!(standin.message_about(db.id.as_str()).is_none());
    assert!(standin.message_about(logs.id.as_str()).is_some());
    // Its claim is given back: once the channel is back, the request's next change posts it.
    assert!(
        h.store()
            .inner()
            .posted_message(&db.id)
            .await
            .unwrap()
            .is_none()
    );
}

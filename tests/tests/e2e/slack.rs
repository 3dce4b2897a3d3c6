//! Approvals in Slack, end to end: the real Slack binary behind the gateway, with its signing
//! secret and bot token in the emulator's Secrets Manager, the stack's Slack stand-in posting
//! signed clicks and slash commands as Slack does, and the stand-in's channel showing what the
//! stream's second reader posted. A click is exactly as trustworthy as a review through the
//! API: forged, stale and replayed requests change nothing; only a linked, current member of
//! the workspace reviews, as the person they are linked to, with the groups of that person's
//! last authenticated call; and Slack down or limiting delays a message, never a decision.

use std::time::{Duration, Instant};

use jit_api::{CreateRequest, GrantView};
use jit_core::domain::GrantState;
use jit_e2e::shared;
use jit_local::slack::{SignedInteraction, post_form};
use jit_local::{SlackMember, SlackStandIn};
use serde_json::Value;

use super::{api, ask, asking, send};

const TEAM: &str = "T0JITDEMO";

/// Sends `signed` to the broker as Slack does: (status, answer). The route's own throttle
/// (burst 20) is shared with schemathesis on this stack: a 429 is sent again shortly.
async fn deliver(url: &str, signed: &SignedInteraction) -> (u16, Value) {
    for _ in 0..20 {
        let (status, body) = post_form(&format!("{url}/slack/interactions"), signed)
            .await
            .unwrap();
        if status != 429 {
            return (
                status,
                serde_json::from_str(&body).unwrap_or(Value::String(body)),
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!("the Slack route stayed throttled for 5 s");
}

/// The text the person is shown.
fn said(answer: &Value) -> String {
    answer["text"].as_str().unwrap_or_default().to_owned()
}

/// Waits (up to `within`) for the message about `grant` to satisfy `done`.
async fn message_when(
    slack: &SlackStandIn,
    grant: &str,
    within: Duration,
    done: impl Fn(&jit_local::slack::PostedMessage) -> bool,
) -> jit_local::slack::PostedMessage {
    let until = Instant::now() + within;
    loop {
        let last = slack.message_about(grant);
        if let Some(m) = &last
            && done(m)
        {
            return m.clone();
        }
        assert!(
            Instant::now() < until,
            "the message about {grant} did not get there in {within:?}: {last:?}; calls: {:?}; channel: {:?}",
            slack.calls(),
            slack.channel("C0REVIEWS").last()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A request for read-only logs without a ticket: it waits for one reviewer.
fn needs_review() -> CreateRequest {
    CreateRequest {
        ticket: None,
        ..asking("prod-logs-ro", "1h")
    }
}

async fn link(
    stack: &jit_stack::Stack,
    api: &jit_e2e::Api,
    user: &str,
    token: &str,
) -> jit_api::SlackLinkView {
    let slack = stack.slack();
    let (status, answer) = deliver(&stack.api_url, &slack.command(user, TEAM, "link")).await;
    assert_eq!(status, 200, "{answer}");
    let text = said(&answer);
    let code = text
        .split('`')
        .nth(1)
        .unwrap_or_else(|| panic!("no code in {text}"))
        .to_owned();
    assert_eq!(code.len(), 10, "{text}");
    let linked = api.as_user(token).link_slack(&code).await.unwrap();
    // A code serves once.
    let again = send(
        api,
        ("POST".into(), "/slack/links".into()),
        token,
        Some(serde_json::json!({"code": code})),
    )
    .await;
    assert_eq!(again.status, 404, "{}", again.body);
    linked
}

#[tokio::test]
async fn a_click_in_slack_is_a_review_only_for_a_linked_member_and_messages_follow_every_change() {
    let stack = shared().unwrap();
    let api = api(stack);
    let api = &api;
    let slack = stack.slack();
    slack.add_users([
        SlackMember::member("U0SAM", TEAM),
        SlackMember::member("U0ERIN", TEAM),
        SlackMember::member("U0SUE", TEAM),
        SlackMember {
            is_restricted: true,
            ..SlackMember::member("U0GUEST", TEAM)
        },
        SlackMember {
            deleted: true,
            ..SlackMember::member("U0GONE", TEAM)
        },
    ]);
    let erin = stack.token("erin-slack", &["engineers"]);
    let sam = stack.token("sam-slack", &["sre"]);
    let sue = stack.token("sue-slack", &["security"]);
    let url = stack.api_url.clone();

    // A request that waits for a reviewer is posted with its buttons.
    let id = ask(api, &erin, needs_review()).await;
    let posted = message_when(slack, &id, Duration::from_secs(30), |m| {
        m.buttons() == ["jit_approve", "jit_deny"]
    })
    .await;
    assert_eq!(posted.channel, "C0REVIEWS");
    for shown in [
        "erin-slack",
        "prod-logs-ro",
        "333333333333",
        "0 of 1 approvals",
        "*Rules:* no rule approves this at once",
    ] {
        assert!(posted.all_text().contains(shown), "{shown}: {posted:?}");
    }
    let pending = |g: &GrantView| g.state == GrantState::Pending && g.reviews.is_empty();
    // The API says the same as the message why the rules did not approve it at once.
    assert_eq!(
        api.as_user(&erin)
            .get_request(&id)
            .await
            .unwrap()
            .rules_said
            .as_deref(),
        Some("no rule approves this at once")
    );

    // Forged, stale and malformed requests are refused and change nothing.
    let honest = slack.click("U0SAM", TEAM, "jit_approve", &id);
    let mut forged = honest.clone();
    forged.signature =
        jit_local::slack::slack_signature("not-the-secret", &honest.timestamp, &honest.body);
    let mut stale = slack.click("U0SAM", TEAM, "jit_approve", &id);
    let old = (time::OffsetDateTime::now_utc().unix_timestamp() - 600).to_string();
    stale.signature = jit_local::slack::slack_signature(&slack.signing_secret, &old, &stale.body);
    stale.timestamp = old;
    let mut edited = honest.clone();
    edited.body = edited.body.replacen("U0SAM", "U0SUE", 1);
    for (name, request) in [("forged", &forged), ("stale", &stale), ("edited", &edited)] {
        let (status, answer) = deliver(&url, request).await;
        assert_eq!(status, 401, "{name}: {answer}");
    }
    assert!(pending(&api.as_user(&erin).get_request(&id).await.unwrap()));

    // An unlinked user, a guest, a deactivated user and another workspace are refused.
    let (status, answer) = deliver(&url, &honest).await;
    assert_eq!(status, 200);
    assert!(said(&answer).contains("not linked"), "{answer}");
    assert!(said(&answer).contains("/jit link"), "{answer}");
    for (user, team, why) in [
        ("U0GUEST", TEAM, "guests"),
        ("U0GONE", TEAM, "deactivated"),
        ("U0SAM", "T0ELSEWHERE", "not the one"),
    ] {
        let (_, answer) = deliver(&url, &slack.click(user, team, "jit_approve", &id)).await;
        assert!(said(&answer).contains(why), "{user}: {answer}");
    }
    assert!(pending(&api.as_user(&erin).get_request(&id).await.unwrap()));

    // Linking: a one-time code from the slash command, redeemed signed in.
    let linked = link(stack, api, "U0SAM", &sam).await;
    assert_eq!(
        (
            linked.team_id.as_str(),
            linked.user_id.as_str(),
            linked.sub.as_str()
        ),
        (TEAM, "U0SAM", "sam-slack")
    );
    link(stack, api, "U0ERIN", &erin).await;

    // A linked requester cannot approve their own request from Slack either: not Erin, whom
    // the rules do not let approve at all, nor Sam, an SRE, on a request of his.
    let (_, answer) = deliver(&url, &slack.click("U0ERIN", TEAM, "jit_approve", &id)).await;
    assert!(
        said(&answer).starts_with("Refused: no policy permits"),
        "{answer}"
    );
    let his = ask(api, &sam, needs_review()).await;
    api.wait_looked_at(&his, &sam).await.unwrap();
    let (_, answer) = deliver(&url, &slack.click("U0SAM", TEAM, "jit_approve", &his)).await;
    assert!(said(&answer).contains("own request"), "{answer}");
    let g = api.as_user(&sam).cancel(&his).await.unwrap();
    assert!(g.reviews.is_empty(), "{g:?}");

    // A double click makes one review; a replay of the first click changes nothing.
    let first = slack.click("U0SAM", TEAM, "jit_approve", &id);
    let second = slack.click("U0SAM", TEAM, "jit_approve", &id);
    let (a, b) = tokio::join!(deliver(&url, &first), deliver(&url, &second));
    let answers = [said(&a.1), said(&b.1)];
    assert_eq!(
        answers
            .iter()
            .filter(|t| t.starts_with("You approved"))
            .count(),
        1,
        "{answers:?}"
    );
    let (_, replayed) = deliver(&url, &first).await;
    assert!(said(&replayed).contains("already handled"), "{replayed}");
    let g = api.as_user(&erin).get_request(&id).await.unwrap();
    assert_eq!((g.state, g.reviews.len()), (GrantState::Active, 1), "{g:?}");
    assert_eq!(g.reviews[0].reviewer, "sam-slack");
    let trail = send(
        api,
        ("GET".into(), format!("/requests/{id}/audit")),
        &erin,
        None,
    )
    .await;
    let approved: Vec<&Value> = trail.body["records"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["action"] == "APPROVED")
        .collect();
    assert_eq!(approved.len(), 1, "{}", trail.body);
    assert_eq!(approved[0]["actor"], "user:sam-slack");
    assert_eq!(approved[0]["detail"]["via"], "slack");
    assert_eq!(approved[0]["detail"]["slack_user"], "U0SAM");
    assert_eq!(approved[0]["detail"]["slack_team"], TEAM);
    // The reviewer was told in Slack; the message lost its buttons and says it is active.
    assert!(
        slack
            .ephemeral_to("U0SAM")
            .iter()
            .any(|t| t.starts_with("You approved"))
    );
    let done = message_when(slack, &id, Duration::from_secs(30), |m| {
        m.buttons().is_empty() && m.text.contains("Approved")
    })
    .await;
    assert_eq!(done.ts, posted.ts, "updated, not posted again");

    // Slack limiting, then down: decisions go on at once; the messages follow once it is back.
    let eve = stack.token("eve-slack", &["engineers"]);
    slack.limit_next(1, 5);
    let limited = ask(api, &eve, needs_review()).await;
    api.wait_looked_at(&limited, &eve).await.unwrap();
    slack.set_down(true);
    let cancelled = api.as_user(&eve).cancel(&limited).await.unwrap();
    assert_eq!(
        cancelled.state,
        GrantState::Cancelled,
        "not held up by Slack"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    slack.set_down(false);
    message_when(slack, &limited, Duration::from_secs(60), |m| {
        m.buttons().is_empty() && m.text.contains("Closed: cancelled")
    })
    .await;
    assert!(
        slack.calls().iter().any(|(_, status)| *status == 429)
            && slack.calls().iter().any(|(_, status)| *status == 503),
        "{:?}",
        slack.calls()
    );

    // Groups as last seen on an authenticated call: once Sam's token says he is no longer an
    // SRE, a click of his is decided on that, and refused.
    let finn = stack.token("finn-slack", &["engineers"]);
    let next = ask(api, &finn, needs_review()).await;
    api.wait_looked_at(&next, &finn).await.unwrap();
    let sam_now = stack.token("sam-slack", &["engineers"]);
    api.as_user(&sam_now).targets().await.unwrap();
    // Intake records them in the background: wait until the table holds them.
    let store =
        jit_core::store::DynamoStore::new(aws_sdk_dynamodb::Client::new(&stack.aws), &stack.table);
    let sam_sub = jit_core::domain::UserId::parse("sam-slack").unwrap();
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        let seen = store.seen(&sam_sub).await.unwrap().unwrap();
        let groups: Vec<&str> = seen.value.groups.iter().map(|g| g.as_str()).collect();
        if groups == ["engineers"] {
            break;
        }
        assert!(Instant::now() < until, "{groups:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Finn never linked a Slack user, so none of his calls (his came first) recorded groups.
    let finn_sub = jit_core::domain::UserId::parse("finn-slack").unwrap();
    assert!(
        store.seen(&finn_sub).await.unwrap().is_none(),
        "groups recorded for a caller who never linked"
    );
    let (_, answer) = deliver(&url, &slack.click("U0SAM", TEAM, "jit_deny", &next)).await;
    assert!(said(&answer).starts_with("Refused"), "{answer}");
    assert!(pending(
        &api.as_user(&finn).get_request(&next).await.unwrap()
    ));
    // Another SRE, linked, denies it from Slack.
    let sid = stack.token("sid-slack", &["sre"]);
    slack.add_users([SlackMember::member("U0SID", TEAM)]);
    link(stack, api, "U0SID", &sid).await;
    let (_, answer) = deliver(&url, &slack.click("U0SID", TEAM, "jit_deny", &next)).await;
    assert!(said(&answer).starts_with("You denied"), "{answer}");
    assert_eq!(
        api.as_user(&finn).get_request(&next).await.unwrap().state,
        GrantState::Denied
    );

    // A target that needs a fresh sign-in is never decided from Slack: Sue, linked and a
    // reviewer of admin targets, is sent to the web page.
    api.as_user(&sue).targets().await.unwrap();
    link(stack, api, "U0SUE", &sue).await;
    let mut admin = asking("break-glass-admin", "30m");
    admin.reason = "end-to-end test: a target Slack never decides".into();
    let fresh = ask(api, &sam, admin).await;
    api.wait_looked_at(&fresh, &sam).await.unwrap();
    // The answer is a link to the web page for Sue only, opened once, within 10 minutes, after
    // a sign-in made after the click.
    let click_for_link = || async {
        let (_, answer) = deliver(&url, &slack.click("U0SUE", TEAM, "jit_approve", &fresh)).await;
        let text = said(&answer);
        assert!(text.contains("fresh sign-in"), "{text}");
        text.split(&format!("{url}/#/slack/"))
            .nth(1)
            .and_then(|rest| rest.split(' ').next())
            .unwrap_or_else(|| panic!("no link to the web page: {text}"))
            .to_owned()
    };
    let refused = |r: Result<jit_api::HandoffView, jit_api::ApiError>| {
        let e = r.unwrap_err();
        (e.status().unwrap_or(0), e.detail())
    };
    // A token that is no token is refused as such.
    let (status, why) = refused(api.as_user(&sue).open_slack_handoff("   ").await);
    assert_eq!(status, 422, "{why}");
    assert!(why.contains("the one in the link"), "{why}");
    // Sue's sign-in from the start of the test (two seconds and more before the click) does
    // not do; the link is spent all the same.
    let token = click_for_link().await;
    let (status, why) = refused(api.as_user(&sue).open_slack_handoff(&token).await);
    assert_eq!(status, 403, "{why}");
    assert!(why.contains("sign-in made after the click"), "{why}");
    let sue_now = stack.token("sue-slack", &["security"]);
    let (status, why) = refused(api.as_user(&sue_now).open_slack_handoff(&token).await);
    assert_eq!(status, 404, "{why}");
    assert!(why.contains("opened already"), "{why}");
    // Someone else, freshly signed in, is refused, and spends it too.
    let token = click_for_link().await;
    let sam_now = stack.token("sam-slack", &["sre"]);
    let (status, why) = refused(api.as_user(&sam_now).open_slack_handoff(&token).await);
    assert_eq!(status, 403, "{why}");
    assert!(why.contains("not you"), "{why}");
    let sue_now = stack.token("sue-slack", &["security"]);
    let (status, _) = refused(api.as_user(&sue_now).open_slack_handoff(&token).await);
    assert_eq!(status, 404);
    // Sue, signed in after the click, opens it once: it names the request.
    let token = click_for_link().await;
    let sue_now = stack.token("sue-slack", &["security"]);
    let opened = api
        .as_user(&sue_now)
        .open_slack_handoff(&token)
        .await
        .unwrap();
    assert_eq!(opened.request_id, fresh);
    let (status, _) = refused(api.as_user(&sue_now).open_slack_handoff(&token).await);
    assert_eq!(status, 404, "once only");
    // Past its 10 minutes, a link no longer opens.
    let old = jit_core::clock::Timestamp::from_unix_seconds(
        time::OffsetDateTime::now_utc().unix_timestamp() - 700,
    );
    let handoff = jit_core::slack::Handoff {
        grant: jit_core::domain::GrantId::parse(&fresh).unwrap(),
        sub: jit_core::domain::UserId::parse("sue-slack").unwrap(),
        clicked_at: old,
    };
    store
        .put_handoff(
            &jit_core::slack::handoff_digest("an-old-link"),
            &handoff,
            old.plus_secs(jit_core::slack::HANDOFF_SECS),
        )
        .await
        .unwrap();
    let (status, why) = refused(
        api.as_user(&sue_now)
            .open_slack_handoff("an-old-link")
            .await,
    );
    assert_eq!(status, 404, "{why}");
    assert!(why.contains("expired"), "{why}");
    let g = api.as_user(&sam).get_request(&fresh).await.unwrap();
    assert!(g.reviews.is_empty(), "{g:?}");
    api.as_user(&sam).cancel(&fresh).await.unwrap();

    // A request of several targets is one message, its items side by side, each with its
    // own buttons while it waits; cancelling an item updates that one message.
    let hal = stack.token("hal-slack", &["sre"]);
    let bundle = api
        .as_user(&hal)
        .create_bundle(&jit_api::CreateBundle {
            targets: vec!["prod-logs-ro".into(), "break-glass-admin".into()],
            duration: jit_api::DurationInput::Text("30m".into()),
            reason: "end-to-end test: two targets, one message".into(),
            ticket: Some("INC-2".into()),
            starts_at: None,
        })
        .await
        .unwrap();
    let items: Vec<String> = bundle.items.iter().map(|g| g.id.clone()).collect();
    let both = message_when(slack, &items[1], Duration::from_secs(30), |m| {
        let text = m.all_text();
        text.contains(&items[0])
            && text.contains("prod-logs-ro")
            && text.contains("break-glass-admin")
            && m.buttons() == ["jit_approve", "jit_deny"]
    })
    .await;
    let about_bundle = |m: &jit_local::slack::PostedMessage| {
        items.iter().any(|i| m.all_text().contains(i.as_str()))
    };
    assert_eq!(
        slack
            .channel(&both.channel)
            .iter()
            .filter(|m| about_bundle(m))
            .count(),
        1,
        "one message for the request of two targets"
    );
    api.as_user(&hal).cancel(&items[1]).await.unwrap();
    let after = message_when(slack, &items[1], Duration::from_secs(30), |m| {
        m.buttons().is_empty() && m.text.contains("break-glass-admin: Closed: cancelled")
    })
    .await;
    assert_eq!(after.ts, both.ts);

    // A flood of forged requests meets the route's own throttle (burst 20, 10 a second) at
    // the gateway, and what gets through is refused by the Slack function; meanwhile a request
    // the rules approve at once is decided at once: the approver does not answer Slack.
    let interactions = format!("{url}/slack/interactions");
    let flood = futures::future::join_all((0..60).map(|_| post_form(&interactions, &forged)));
    let gus = stack.token("gus-slack", &["sre"]);
    let started = Instant::now();
    let (answers, quick) = tokio::join!(flood, async {
        let id = ask(api, &gus, asking("prod-logs-ro", "15m")).await;
        api.wait_for(&id, &gus, Duration::from_secs(30), |g| {
            g.state == GrantState::Active
        })
        .await
        .unwrap();
        started.elapsed()
    });
    let statuses: Vec<u16> = answers.into_iter().map(|a| a.unwrap().0).collect();
    assert!(
        statuses.iter().all(|s| *s == 401 || *s == 429),
        "{statuses:?}"
    );
    assert!(
        statuses.contains(&429),
        "60 at once all passed a burst of 20"
    );
    eprintln!(
        "a flood of 60 forged Slack requests ({} throttled); auto-approval meanwhile took {quick:?}",
        statuses.iter().filter(|s| **s == 429).count()
    );
}

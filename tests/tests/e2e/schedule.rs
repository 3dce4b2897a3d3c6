//! Access scheduled ahead, end to end on a stack of its own whose functions run on a movable
//! clock (nothing else may see its time jump): granted before its start yet no credentials
//! until then (the refusal says when), usable from the start to its end, cancelled before it
//! by its requester only, a scheduled request nobody decided timing out at its start, and the
//! rules judging the window asked for rather than the moment of asking.

use jit_core::clock::{Clock, SystemClock, Timestamp};
use jit_core::domain::GrantState;
use jit_e2e::{options, start};
use jit_stack::StackOptions;
use serde_json::json;

use super::{ask, asking, post, pull, send, state_of};

/// The first whole minute at least `secs` after `now`, as the API takes it.
fn minute_after(now: Timestamp, secs: i64) -> Timestamp {
    let t = now.plus_secs(secs).unix_seconds();
    Timestamp::from_unix_seconds((t + 59).div_euclid(60) * 60)
}

/// The first hour on `weekday` (ISO, 1 = Monday) whose UTC hour is within `hours`, at least
/// five minutes after `now`: never more than 7 days ahead when `hours` spans a few hours.
fn next(now: Timestamp, weekday: i64, hours: std::ops::RangeInclusive<i64>) -> Timestamp {
    let mut t = Timestamp::from_unix_seconds(now.unix_seconds().div_euclid(3600) * 3600);
    loop {
        t = t.plus_secs(3600);
        let secs = t.unix_seconds();
        let day = (secs.div_euclid(86_400) + 3).rem_euclid(7) + 1;
        if day == weekday
            && hours.contains(&(secs.rem_euclid(86_400) / 3600))
            && t > now.plus_secs(300)
        {
            return t;
        }
    }
}

#[tokio::test]
async fn scheduled_access_opens_at_its_start_is_cancelled_before_it_and_is_judged_by_its_window() {
    let stack = start(StackOptions {
        movable_clock: true,
        ..options("schedule")
    })
    .unwrap();
    let api = jit_e2e::Api::new(&stack.api_url);
    let api = &api;
    let alice = stack.token("alice-later", &["engineers", "sre"]);
    let bob = stack.token("bob-later", &["engineers", "sre"]);
    let dan = stack.token("dan-later", &["dba"]);
    let now = SystemClock.now();

    // Asked for three minutes ahead: the rules grant it at once (an SRE, read-only, with a
    // ticket), to run ten minutes from its start.
    let start_at = minute_after(now, 180);
    let mut later = asking("prod-logs-ro", "10m");
    later.starts_at = Some(start_at.to_rfc3339());
    let id = ask(api, &alice, later).await;
    api.wait_looked_at(&id, &alice).await.unwrap();
    let g = state_of(api, &id, &alice).await;
    assert_eq!(g.state, GrantState::Active, "{g:?}");
    assert_eq!(g.starts_at.as_deref(), Some(start_at.to_rfc3339().as_str()));
    assert_eq!(
        g.ends_at.as_deref(),
        Some(start_at.plus_secs(600).to_rfc3339().as_str()),
        "it ends ten minutes after its start, not after its approval"
    );

    // Before its start: no credentials and no console link, each saying when they open.
    for route in ["credentials", "console"] {
        let early = send(api, post(format!("/grants/{id}/{route}")), &alice, None).await;
        assert_eq!(early.status, 409, "{route}: {}", early.body);
        assert!(
            early.body["type"]
                .as_str()
                .unwrap()
                .ends_with("not-yet-open"),
            "{}",
            early.body
        );
        assert_eq!(
            early.body["opens_at"],
            start_at.to_rfc3339(),
            "{}",
            early.body
        );
        assert!(
            early.body["detail"]
                .as_str()
                .unwrap()
                .contains(&format!("opens at {start_at}")),
            "{}",
            early.body
        );
    }

    // Bob's own scheduled grant: another person cannot cancel it; he can, before its start.
    let mut bobs = asking("prod-logs-ro", "10m");
    bobs.starts_at = Some(minute_after(now, 3600).to_rfc3339());
    let bobs = ask(api, &bob, bobs).await;
    api.wait_looked_at(&bobs, &bob).await.unwrap();
    assert_eq!(state_of(api, &bobs, &bob).await.state, GrantState::Active);
    let cancel = |id: &str, who: &str| {
        let path = post(format!("/requests/{id}/cancel"));
        let who = who.to_owned();
        async move { send(api, path, &who, None).await }
    };
    let not_yours = cancel(&bobs, &alice).await;
    assert_eq!(not_yours.status, 403, "{}", not_yours.body);
    let cancelled = cancel(&bobs, &bob).await;
    assert_eq!(cancelled.status, 200, "{}", cancelled.body);
    assert_eq!(cancelled.body["state"], "CANCELLED");
    let gone = pull(api, &bobs, &bob).await;
    assert_eq!(gone.status, 409, "{}", gone.body);

    // A scheduled request the reviewers must decide before it starts: dan's prod-db-admin
    // (a dba-lead and security) at the same start, which nobody decides.
    let mut dans = asking("prod-db-admin", "1h");
    dans.starts_at = Some(start_at.to_rfc3339());
    let dans = ask(api, &dan, dans).await;
    api.wait_looked_at(&dans, &dan).await.unwrap();
    let pending = state_of(api, &dans, &dan).await;
    assert_eq!(pending.state, GrantState::Pending);
    assert_eq!(pending.decide_by, pending.starts_at.clone().unwrap());

    // The rules judge the window: write access for a Sunday is refused whenever it is asked;
    // for a Monday in business hours it is not, even when asked at night or on a weekend.
    let write_at = |at: Timestamp| {
        let mut asked = asking("prod-deploy", "1h");
        asked.ticket = None;
        asked.starts_at = Some(at.to_rfc3339());
        serde_json::to_value(asked).unwrap()
    };
    let sunday = send(
        api,
        post("/requests".to_owned()),
        &alice,
        Some(write_at(next(now, 7, 0..=23))),
    )
    .await;
    assert_eq!(sunday.status, 403, "{}", sunday.body);
    assert_eq!(
        sunday.body["policies"],
        json!(["write-access-in-business-hours"])
    );
    let monday = send(
        api,
        post("/requests".to_owned()),
        &alice,
        Some(write_at(next(now, 1, 8..=16))),
    )
    .await;
    assert_eq!(monday.status, 201, "{}", monday.body);

    // The functions' time moves past the start: alice's credentials now come, and STS takes
    // them; dan's request timed out when it was to start.
    let ahead = start_at.unix_seconds() - now.unix_seconds() + 5 + 60;
    stack.advance_clock(ahead).unwrap();
    let opened = pull(api, &id, &alice).await;
    assert_eq!(opened.status, 200, "{}", opened.body);
    let credentials: jit_api::Credentials = serde_json::from_value(opened.body).unwrap();
    let sts = jit_stack::demo::session_client(&stack.aws, &credentials);
    let arn = sts.get_caller_identity().send().await.unwrap().arn.unwrap();
    assert!(arn.contains(":assumed-role/prod-logs-ro/"), "{arn}");
    let too_late = cancel(&id, &alice).await;
    assert_eq!(too_late.status, 409, "{}", too_late.body);
    assert!(
        too_late.body["detail"]
            .as_str()
            .unwrap()
            .contains("its scheduled start has passed; revoke it instead"),
        "{}",
        too_late.body
    );
    stack.sweep().await.unwrap();
    assert_eq!(state_of(api, &dans, &dan).await.state, GrantState::TimedOut);

    // Past its end the sweep expires it, and nothing more is handed out.
    stack.advance_clock(600).unwrap();
    stack.sweep().await.unwrap();
    assert_eq!(state_of(api, &id, &alice).await.state, GrantState::Expired);
    let ended = pull(api, &id, &alice).await;
    assert_eq!(ended.status, 409, "{}", ended.body);
    // Its trail: requested with the start, approved with the window signed, one session.
    let trail = send(
        api,
        ("GET".to_owned(), format!("/requests/{id}/audit")),
        &alice,
        None,
    )
    .await;
    let records = trail.body["records"].as_array().unwrap();
    let actions: Vec<&str> = records
        .iter()
        .map(|r| r["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        ["REQUESTED", "AUTO_APPROVED", "SESSION_ISSUED", "EXPIRED"]
    );
    assert_eq!(records[0]["detail"]["starts_at"], start_at.to_rfc3339());
    assert_eq!(records[1]["detail"]["starts_at"], start_at.to_rfc3339());
    assert_eq!(
        records[1]["detail"]["ends_at"],
        start_at.plus_secs(600).to_rfc3339()
    );
}

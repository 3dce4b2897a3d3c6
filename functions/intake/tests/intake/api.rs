//! The intake API end to end through the handler: real API Gateway events, DynamoDB on the
//! emulator, the example rules.

use crate::support::*;
use jit_core::domain::GrantId;
use jit_core::domain::audit::{AuditRecord, verify_against_head};
use jit_core::store::GrantStore;
use serde_json::json;

fn body(target: &str, duration: &str) -> String {
    json!({"target": target, "duration": duration, "reason": "investigating INC-42 in production", "ticket": "INC-42"})
        .to_string()
}

#[tokio::test]
async fn a_permitted_request_is_created_pending_with_its_audit_record() {
    let h = Harness::new("create").await;
    h.writes();
    let reply = h
        .call(
            ALICE,
            "POST /requests",
            "/requests",
            Some(&body("prod-logs-ro", "1h")),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    assert_eq!(h.writes(), 1, "one transaction");
    let b = &reply.body;
    assert_eq!(
        (b["state"].as_str(), b["requester"].as_str()),
        (Some("PENDING"), Some("alice"))
    );
    assert_eq!(
        b["role_arn"],
        "arn:aws:iam::333333333333:role/jit/prod-logs-ro"
    );
    assert_eq!(
        (b["duration_secs"].as_u64(), b["ticket"].as_str()),
        (Some(3600), Some("INC-42"))
    );
    assert_eq!(
        b["decide_by"], "2027-01-13T12:00:00Z",
        "the target's two-hour window"
    );
    let id = b["id"].as_str().unwrap();
    assert_eq!(
        reply.headers["location"],
        format!("/requests/{id}").as_str()
    );
    let id = GrantId::parse(id).unwrap();
    let records = jit_test_support::audit(&h.app.store, &id).await;
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].policy_hash.as_deref(), Some(h.app.rules.hash()));
    assert_eq!(records[0].actor.to_string(), "user:alice");
}

#[tokio::test]
async fn bad_input_is_refused_with_what_to_fix_and_writes_nothing() {
    let h = Harness::new("bad-input").await;
    let long = "x".repeat(17 * 1024);
    let cases: Vec<(String, u16, &str)> = vec![
        ("{\"target\": ".to_owned(), 400, "not valid JSON"),
        ("[1,2]".to_owned(), 400, "expected fields"),
        (json!({"target": "prod-logs-ro", "duration": "1h", "reason": "investigating INC-42", "requester": "mallory"}).to_string(), 400, "unknown field `requester`"),
        (json!({"target": 5, "duration": "1h", "reason": "investigating INC-42"}).to_string(), 400, "invalid type"),
        (json!({"duration": "1h", "reason": "investigating INC-42"}).to_string(), 400, "missing field `target`"),
        (json!({"target": "prod-logs-ro", "duration": "1h"}).to_string(), 400, "missing field `reason`"),
        (json!({"target": "prod-logs-ro", "duration": true, "reason": "investigating INC-42"}).to_string(), 422, "duration must be a number of seconds"),
        (json!({"target": "prod-logs-ro", "duration": "forever", "reason": "investigating INC-42"}).to_string(), 422, "`forever` is not valid"),
        (json!({"target": "prod-logs-ro", "duration": 60, "reason": "investigating INC-42"}).to_string(), 422, "between 5m and 12h"),
        (json!({"target": "prod-logs-ro", "duration": "5h", "reason": "investigating INC-42"}).to_string(), 422, "longer than target `prod-logs-ro` allows (4h)"),
        (json!({"target": "prod-nothing", "duration": "1h", "reason": "investigating INC-42"}).to_string(), 422, "unknown target `prod-nothing`; known targets: break-glass-admin"),
        (json!({"target": "Prod Logs", "duration": "1h", "reason": "investigating INC-42"}).to_string(), 422, "target `Prod Logs` is not valid"),
        (json!({"target": "prod-logs-ro", "duration": "1h", "reason": "fix"}).to_string(), 422, "reason must be at least 10 characters"),
        (json!({"target": "prod-logs-ro", "duration": "1h", "reason": "   "}).to_string(), 422, "reason must not be empty"),
        (json!({"target": "prod-logs-ro", "duration": "1h", "reason": "investigating INC-42", "ticket": "see slack"}).to_string(), 422, "ticket `see slack` is not valid"),
        (json!({"target": "prod-logs-ro", "duration": "1h", "reason": "investigating INC-42", "ticket": "inc42"}).to_string(), 422, "does not look like a ticket here (expected [A-Z]+-[0-9]+)"),
        (json!({"target": "prod-logs-ro", "duration": "1h", "reason": long}).to_string(), 413, "at most 16384 are accepted"),
        (json!({"target": "prod-logs-ro", "duration": "1h", "reason": "investigating INC-42", "starts_at": "tomorrow"}).to_string(), 422, "starts_at `tomorrow` is not an RFC 3339 time"),
        (json!({"target": "prod-logs-ro", "duration": "1h", "reason": "investigating INC-42", "starts_at": "2020-01-01T09:00:00Z"}).to_string(), 422, "starts_at 2020-01-01T09:00:00Z is not in the future"),
        (json!({"target": "prod-logs-ro", "duration": "1h", "reason": "investigating INC-42", "starts_at": "2099-01-01T09:00:00Z"}).to_string(), 422, "more than 7 days ahead"),
        (json!({"target": "prod-logs-ro", "duration": "1h", "reason": "investigating INC-42", "starts_at": "2099-01-01T09:00:30Z"}).to_string(), 422, "must be a whole minute"),
        (json!({"target": "break-glass-admin", "duration": "1h", "reason": "investigating INC-42", "ticket": "INC-42", "break_glass": true, "starts_at": "2099-01-01T09:00:00Z"}).to_string(), 422, "cannot be scheduled"),
    ];
    h.writes();
    for (payload, status, detail) in cases {
        let reply = h
            .call(ALICE, "POST /requests", "/requests", Some(&payload))
            .await;
        assert_eq!(reply.status, status, "{payload:.80}: {}", reply.body);
        assert!(
            reply.detail().contains(detail),
            "{payload:.80}: `{}` lacks `{detail}`",
            reply.detail()
        );
        assert_eq!(h.writes(), 0, "{payload:.80} wrote something");
    }
    let plain = h
        .call_event(&event(
            ALICE,
            "POST /requests",
            "/requests",
            Some(&body("prod-logs-ro", "1h")),
            &[("content-type", "text/plain")],
        ))
        .await;
    assert_eq!(plain.status, 415);
    let bad_key = h
        .call_event(&event(
            ALICE,
            "POST /requests",
            "/requests",
            Some(&body("prod-logs-ro", "1h")),
            &[("idempotency-key", "a#b")],
        ))
        .await;
    bad_key.assert_refused(400, "idempotency key");
    assert_eq!(h.writes(), 0);
}

#[tokio::test]
async fn requests_the_rules_do_not_permit_get_403_with_cedars_reason() {
    let h = Harness::new("forbidden").await;
    let reply = h
        .call(
            ALICE,
            "POST /requests",
            "/requests",
            Some(&body("prod-db-admin", "1h")),
        )
        .await;
    reply.assert_detail(
        403,
        "no policy permits you to Request on target `prod-db-admin`",
    );
    let no_ticket =
        json!({"target": "prod-db-admin", "duration": "1h", "reason": "rotating credentials"})
            .to_string();
    let reply = h
        .call(DAN_DBA, "POST /requests", "/requests", Some(&no_ticket))
        .await;
    reply.assert_detail(
        403,
        "admin access needs a ticket (policy admin-needs-a-ticket)",
    );
    assert_eq!(reply.body["policies"], json!(["admin-needs-a-ticket"]));
    // Outside business hours, write access is refused too.
    h.clock.advance(10 * 3600);
    let reply = h
        .call(
            ALICE,
            "POST /requests",
            "/requests",
            Some(&body("prod-deploy", "1h")),
        )
        .await;
    assert_eq!(reply.status, 403);
    assert!(
        reply.detail().starts_with(
            "write access is for Monday to Friday, 07:00-19:00 UTC (the whole window)"
        ),
        "{}",
        reply.detail()
    );
    assert_eq!(h.writes(), 0);
}

#[tokio::test]
async fn break_glass_lifts_the_rules_only_for_those_permitted_to_break_glass() {
    let h = Harness::new("break-glass").await;
    let ask = |target: &str, ticket: Option<&str>| {
        let mut body = json!({"target": target, "duration": "1h",
            "reason": "production is down, paging everyone", "break_glass": true});
        if let Some(ticket) = ticket {
            body["ticket"] = json!(ticket);
        }
        body.to_string()
    };
    // Saturday night: write access is forbidden outside business hours, admin needs a ticket.
    h.clock.advance(3 * 86_400 + 12 * 3600);
    for (who, target, ticket, says) in [
        (
            ALICE,
            "prod-deploy",
            None,
            "break-glass is not permitted here: no policy permits you to BreakGlass on target `prod-deploy`",
        ),
        (
            DAN_DBA,
            "prod-db-admin",
            None,
            "break-glass is not permitted here: no policy permits you to BreakGlass on target `prod-db-admin`",
        ),
        // Permitted to break the glass on one target only, and only with a ticket.
        (
            SAM_SRE,
            "prod-deploy",
            Some("INC-7"),
            "no policy permits you to BreakGlass on target `prod-deploy`",
        ),
        (
            SAM_SRE,
            "break-glass-admin",
            None,
            "no policy permits you to BreakGlass on target `break-glass-admin`",
        ),
    ] {
        let reply = h
            .call(
                who,
                "POST /requests",
                "/requests",
                Some(&ask(target, ticket)),
            )
            .await;
        assert_eq!(reply.status, 403, "{target}: {}", reply.body);
        assert!(
            reply.detail().contains(says)
                && reply
                    .detail()
                    .ends_with("ask without break_glass to go through review"),
            "{target}: {}",
            reply.detail()
        );
    }
    assert_eq!(h.writes(), 0, "no refused request was written");
    // Without the flag, the same requests meet the rules they would have skipped.
    let reply = h
        .call(
            ALICE,
            "POST /requests",
            "/requests",
            Some(&body("prod-deploy", "1h")),
        )
        .await;
    assert_eq!(reply.status, 403);
    assert!(
        reply.detail().starts_with(
            "write access is for Monday to Friday, 07:00-19:00 UTC (the whole window)"
        )
    );
    // Those the rules permit break the glass, past the business-hours and ticket rules.
    let reply = h
        .call(
            SAM_SRE,
            "POST /requests",
            "/requests",
            Some(&ask("break-glass-admin", Some("INC-7"))),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    assert_eq!(reply.body["break_glass"], true);
}

#[tokio::test]
async fn an_idempotent_retry_returns_the_first_result_and_a_second_open_request_conflicts() {
    let h = Harness::new("idem").await;
    let key = [("idempotency-key", "retry-7f3a")];
    let first = h
        .call_event(&event(
            ALICE,
            "POST /requests",
            "/requests",
            Some(&body("prod-logs-ro", "1h")),
            &key,
        ))
        .await;
    assert_eq!(first.status, 201);
    h.clock.advance(5);
    let retry = h
        .call_event(&event(
            ALICE,
            "POST /requests",
            "/requests",
            Some(&body("prod-logs-ro", "1h")),
            &key,
        ))
        .await;
    assert_eq!(retry.status, 201);
    assert_eq!(retry.body["id"], first.body["id"]);
    assert_eq!(retry.headers["idempotent-replayed"], "true");
    let changed = h
        .call_event(&event(
            ALICE,
            "POST /requests",
            "/requests",
            Some(&body("prod-logs-ro", "2h")),
            &key,
        ))
        .await;
    changed.assert_detail(
        422,
        "idempotency key `retry-7f3a` was already used for a different request",
    );
    // The same key is bob's own.
    let bobs = h
        .call_event(&event(
            BOB,
            "POST /requests",
            "/requests",
            Some(&body("prod-logs-ro", "1h")),
            &key,
        ))
        .await;
    assert_eq!(bobs.status, 201);
    assert_ne!(bobs.body["id"], first.body["id"]);
    // Without a key, a second open request for the same target is a conflict naming the first.
    let again = h
        .call(
            ALICE,
            "POST /requests",
            "/requests",
            Some(&body("prod-logs-ro", "30m")),
        )
        .await;
    assert_eq!(again.status, 409);
    assert_eq!(again.body["existing"], first.body["id"]);
    assert!(again.detail().contains(first.body["id"].as_str().unwrap()));
}

#[tokio::test]
async fn a_request_is_visible_to_its_requester_approvers_and_auditors_only() {
    let h = Harness::new("read").await;
    let id = h.request(ALICE, "prod-logs-ro", "1h").await;
    let path = format!("/requests/{id}");
    for (who, status) in SEES_ALICES_REQUEST {
        let reply = h.call(who, "GET /requests/{id}", &path, None).await;
        assert_eq!(reply.status, status, "{who:?}: {}", reply.body);
        if status == 200 {
            assert_eq!(reply.body["id"], id.as_str());
        }
    }
    // Unknown and malformed ids look the same as invisible ones.
    let unknown = GrantId::generate(WEDNESDAY_10);
    for path in [
        format!("/requests/{unknown}"),
        "/requests/..%2Fetc".to_owned(),
    ] {
        let reply = h.call(ALICE, "GET /requests/{id}", &path, None).await;
        reply.assert_detail(404, "no request with that id is visible to you");
    }
}

#[tokio::test]
async fn listings_page_and_filter_and_reviewable_shows_what_one_may_approve() {
    let h = Harness::new("list").await;
    let logs = h.request(ALICE, "prod-logs-ro", "1h").await;
    h.clock.advance(1);
    let deploy = h.request(ALICE, "prod-deploy", "1h").await;
    h.clock.advance(1);
    let bobs = h.request(BOB, "prod-logs-ro", "1h").await;
    let cancel = h
        .call(
            ALICE,
            "POST /requests/{id}/cancel",
            &format!("/requests/{deploy}/cancel"),
            None,
        )
        .await;
    assert_eq!(cancel.status, 200);

    let mut seen = Vec::new();
    let mut path = "/requests?scope=mine&limit=1".to_owned();
    loop {
        let reply = h.call(ALICE, "GET /requests", &path, None).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        let items = reply.body["items"].as_array().unwrap();
        assert!(items.len() <= 1);
        seen.extend(items.iter().map(|i| i["id"].as_str().unwrap().to_owned()));
        match reply.body["next"].as_str() {
            Some(next) => path = format!("/requests?scope=mine&limit=1&next={next}"),
            None => break,
        }
    }
    assert_eq!(
        seen,
        [deploy.clone(), logs.clone()],
        "newest first, only alice's"
    );
    let pending = h
        .call(ALICE, "GET /requests", "/requests?state=PENDING", None)
        .await;
    let ids: Vec<_> = pending.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].clone())
        .collect();
    assert_eq!(ids, [json!(logs)]);

    // An SRE may approve both pending read-only requests; a security reviewer neither.
    let reviewable = h
        .call(SAM_SRE, "GET /requests", "/requests?scope=reviewable", None)
        .await;
    let ids: Vec<_> = reviewable.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].clone())
        .collect();
    assert_eq!(ids, [json!(logs), json!(bobs)]);
    let page = h
        .call(
            SAM_SRE,
            "GET /requests",
            "/requests?scope=reviewable&limit=1",
            None,
        )
        .await;
    assert_eq!(page.body["items"].as_array().unwrap().len(), 1);
    let next = page.body["next"].as_str().unwrap();
    let rest = h
        .call(
            SAM_SRE,
            "GET /requests",
            &format!("/requests?scope=reviewable&limit=1&next={next}"),
            None,
        )
        .await;
    assert_eq!(rest.body["items"][0]["id"], json!(bobs));
    let none = h
        .call(
            SUE_SECURITY,
            "GET /requests",
            "/requests?scope=reviewable",
            None,
        )
        .await;
    assert!(none.body["items"].as_array().unwrap().is_empty());
    // Nobody reviews their own request: bob, were he an SRE, would not see his own.
    let own = h
        .call(
            Who::User("bob", "sre"),
            "GET /requests",
            "/requests?scope=reviewable",
            None,
        )
        .await;
    let ids: Vec<_> = own.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].clone())
        .collect();
    assert_eq!(ids, [json!(logs)]);

    for (query, detail) in [
        (
            "scope=everyone",
            "scope `everyone` is not `mine` or `reviewable`",
        ),
        ("limit=0", "limit `0` must be a number from 1 to 100"),
        ("limit=abc", "limit `abc` must be a number from 1 to 100"),
        ("state=OPEN", "state `OPEN` is not one of PENDING, ACTIVE"),
        ("next=garbage", "the page cursor is not valid"),
        (
            "scope=reviewable&next=garbage",
            "the page cursor is not valid",
        ),
    ] {
        let reply = h
            .call(ALICE, "GET /requests", &format!("/requests?{query}"), None)
            .await;
        assert_eq!(reply.status, 400, "{query}");
        assert!(
            reply.detail().starts_with(detail),
            "{query}: {}",
            reply.detail()
        );
    }
}

#[tokio::test]
async fn a_reviewable_listing_costs_a_bounded_number_of_queries_per_call() {
    let h = Harness::new("list-bounded").await;
    // Twenty pending requests sue (security) may not approve, then one she may.
    for n in 0..20 {
        let who: &'static str = Box::leak(format!("user{n}").into_boxed_str());
        h.request(Who::User(who, "engineers"), "prod-logs-ro", "1h")
            .await;
        h.clock.advance(1);
    }
    let hers = h.request(SAM_SRE, "break-glass-admin", "1h").await;
    h.table.calls.take();
    let mut seen = Vec::new();
    let mut calls = 0;
    let mut path = "/requests?scope=reviewable&limit=1".to_owned();
    loop {
        calls += 1;
        assert!(calls < 30, "the listing does not end");
        let reply = h.call(SUE_SECURITY, "GET /requests", &path, None).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        let queries = h.table.calls.take().get("Query").copied().unwrap_or(0);
        assert!(queries <= 8, "one call made {queries} queries");
        seen.extend(
            reply.body["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["id"].as_str().unwrap().to_owned()),
        );
        match reply.body["next"].as_str() {
            Some(next) => path = format!("/requests?scope=reviewable&limit=1&next={next}"),
            None => break,
        }
    }
    assert_eq!(seen, [hers], "paging on finds what she may approve");
    assert!(calls > 1, "twenty refusals were not read in one call");
}

#[tokio::test]
async fn only_the_requester_cancels_and_only_while_pending() {
    let h = Harness::new("cancel").await;
    let id = h.request(ALICE, "prod-logs-ro", "1h").await;
    let path = format!("/requests/{id}/cancel");
    let route = "POST /requests/{id}/cancel";
    h.writes();
    assert_eq!(h.call(BOB, route, &path, None).await.status, 404);
    let approver = h.call(SAM_SRE, route, &path, None).await;
    assert_eq!(
        (approver.status, approver.detail()),
        (403, "only the requester may cancel a request")
    );
    assert_eq!(h.call(NOBODY, route, &path, None).await.status, 401);
    let bad = h.call(ALICE, route, &path, Some("{\"force\": true}")).await;
    assert_eq!(bad.status, 400);
    assert_eq!(h.writes(), 0);

    let done = h.call(ALICE, route, &path, Some("{}")).await;
    assert_eq!(done.status, 200);
    assert_eq!(done.body["state"], "CANCELLED");
    let again = h.call(ALICE, route, &path, None).await;
    again.assert_detail(
        409,
        &format!("cannot cancel request `{id}`: it is CANCELLED, which is final"),
    );

    let grant = h
        .app
        .store
        .get(&GrantId::parse(&id).unwrap())
        .await
        .unwrap()
        .unwrap();
    let records = jit_test_support::audit(&h.app.store, &grant.id).await;
    verify_against_head(&grant.id, &records, &grant.audit_head).unwrap();
    assert_eq!(records.len(), 2);
}

#[tokio::test]
async fn auditors_export_records_that_verify_and_others_are_refused() {
    let h = Harness::new("audit").await;
    let id = h.request(ALICE, "prod-logs-ro", "1h").await;
    h.clock.advance(60);
    h.call(
        ALICE,
        "POST /requests/{id}/cancel",
        &format!("/requests/{id}/cancel"),
        None,
    )
    .await;
    let range = "from=2027-01-13T00:00:00Z&to=2027-01-14T00:00:00Z";
    let reply = h
        .call(SUE_SECURITY, "GET /audit", &format!("/audit?{range}"), None)
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let records: Vec<AuditRecord> = reply.body["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| serde_json::from_value(r.clone()).unwrap())
        .collect();
    assert_eq!(records.len(), 2);
    let grant = h
        .app
        .store
        .get(&GrantId::parse(&id).unwrap())
        .await
        .unwrap()
        .unwrap();
    verify_against_head(&grant.id, &records, &grant.audit_head).unwrap();
    assert_eq!(reply.body["records"][0]["time"], "2027-01-13T10:00:00Z");
    // The page carries what an offline check needs: signatures, heads and keys; it verifies
    // as it is, and not once a record is edited.
    let export: jit_core::trust::AuditExport = serde_json::from_value(reply.body.clone()).unwrap();
    assert_eq!(export.keys.len(), 4);
    assert_eq!(export.heads.len(), 1);
    assert!(export.records.iter().all(|r| r.signature.is_some()));
    // It says how the trail is cut into periods and when it was made; no sweeper runs in this
    // harness, so the hours of the day already closed have no checkpoint and the check says
    // so, while the open hour of the records verifies.
    assert_eq!(
        export.checkpoint_period,
        Some(jit_core::trust::CheckpointPeriod::HOURLY)
    );
    assert_eq!(
        export.exported_at,
        Some(jit_core::clock::Clock::now(&*h.clock))
    );
    let day_start = jit_core::clock::Timestamp::parse_rfc3339("2027-01-13T00:00:00Z").unwrap();
    assert_eq!(
        jit_core::trust::verify_export(&export, None, jit_core::clock::Clock::now(&*h.clock)),
        Err(jit_core::trust::ExportBreak::NoCheckpoints {
            start: day_start,
            end: day_start.plus_secs(3600),
        })
    );
    let mut open_hour = export.clone();
    open_hour.from = Some(day_start.plus_secs(10 * 3600));
    let summary =
        jit_core::trust::verify_export(&open_hour, None, jit_core::clock::Clock::now(&*h.clock))
            .unwrap();
    assert_eq!((summary.grants, summary.records), (1, 2));
    let mut edited = export.clone();
    edited.records[1]
        .detail
        .insert("reason".to_owned(), "nothing to see".to_owned());
    assert!(matches!(
        jit_core::trust::verify_export(&edited, None, jit_core::clock::Clock::now(&*h.clock)),
        Err(jit_core::trust::ExportBreak::Record { seq: 2, .. })
    ));

    assert_eq!(
        h.call(SAM_SRE, "GET /audit", &format!("/audit?{range}"), None)
            .await
            .status,
        403
    );
    assert_eq!(
        h.call(NOBODY, "GET /audit", &format!("/audit?{range}"), None)
            .await
            .status,
        401
    );
    for (query, detail) in [
        ("to=2027-01-14T00:00:00Z", "`from` is required"),
        (
            "from=yesterday&to=2027-01-14T00:00:00Z",
            "`from` = `yesterday` is not an RFC 3339 time",
        ),
        (
            "from=2027-01-14T00:00:00Z&to=2027-01-13T00:00:00Z",
            "`to` must be after `from`",
        ),
        (
            "from=2026-01-01T00:00:00Z&to=2027-01-14T00:00:00Z",
            "the range may span at most 31 days",
        ),
        (
            "from=2027-01-13T00:00:00Z&to=2027-01-14T00:00:00Z&limit=1000",
            "limit `1000`",
        ),
    ] {
        let reply = h
            .call(SUE_SECURITY, "GET /audit", &format!("/audit?{query}"), None)
            .await;
        assert_eq!(reply.status, 400, "{query}");
        assert!(
            reply.detail().starts_with(detail),
            "{query}: {}",
            reply.detail()
        );
    }
}

/// For each route and each kind of caller, the status they get.
#[tokio::test]
async fn authorization_table() {
    let h = Harness::new("authz").await;
    let id = h.request(ALICE, "prod-logs-ro", "1h").await;
    let one = format!("/requests/{id}");
    let cancel = format!("/requests/{id}/cancel");
    let audit = "/audit?from=2027-01-13T00:00:00Z&to=2027-01-14T00:00:00Z";
    let new_body = body("prod-logs-ro", "30m");
    // (route, path, body); callers: requester, approver, auditor, stranger, no identity.
    let table: Vec<(&str, &str, Option<&str>, [u16; 5])> = vec![
        ("GET /requests/{id}", &one, None, [200, 200, 200, 404, 401]),
        (
            "GET /requests",
            "/requests",
            None,
            [200, 200, 200, 200, 401],
        ),
        (
            "GET /requests",
            "/requests?scope=reviewable",
            None,
            [200, 200, 200, 200, 401],
        ),
        ("GET /audit", audit, None, [403, 403, 200, 403, 401]),
        (
            "GET /audit/unattributed",
            "/audit/unattributed?day=2027-01-13",
            None,
            [403, 403, 200, 403, 401],
        ),
        // Requester: already has one open (409); approver and auditor are not permitted by
        // the example rules for this target (sre may request: 201); stranger bob may (201).
        (
            "POST /requests",
            "/requests",
            Some(&new_body),
            [409, 201, 403, 201, 401],
        ),
        (
            "POST /requests/{id}/cancel",
            &cancel,
            None,
            [200, 403, 403, 404, 401],
        ),
    ];
    let callers = [ALICE, SAM_SRE, SUE_SECURITY, BOB, NOBODY];
    for (route, path, body, expected) in table {
        for (who, want) in callers.iter().zip(expected) {
            let reply = h.call(*who, route, path, body).await;
            assert_eq!(reply.status, want, "{route} by {who:?}: {}", reply.body);
        }
    }
}

#[tokio::test]
async fn a_target_the_deployment_does_not_isolate_from_the_broker_takes_no_request() {
    let mut h = Harness::new("isolation").await;
    // The broker in the example targets' account (333333333333), without the opt-in: a
    // session there could change the broker. prod-db-admin (222222222222, with its revoker
    // role) is still fine.
    let placed = |opted_in| {
        std::sync::Arc::new(jit_test_support::example_rules().with_isolation(
            jit_core::policy::Isolation {
                broker_account: Some("333333333333".into()),
                targets_in_broker_account: opted_in,
            },
        ))
    };
    h.app.rules = placed(false);
    let reply = h
        .call(
            ALICE,
            "POST /requests",
            "/requests",
            Some(&body("prod-logs-ro", "1h")),
        )
        .await;
    reply.assert_problem(409, "target-not-isolated");
    reply.assert_detail_spans("target `prod-logs-ro` (targets.json:4): its role is in the broker's own account 333333333333", "no request was made");
    assert_eq!(h.writes(), 0, "nothing written");
    let reply = h
        .call(
            DAN_DBA,
            "POST /requests",
            "/requests",
            Some(&body("prod-db-admin", "1h")),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    h.app.rules = placed(true);
    let reply = h
        .call(
            ALICE,
            "POST /requests",
            "/requests",
            Some(&body("prod-logs-ro", "1h")),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
}

#[tokio::test]
async fn a_group_name_with_a_space_is_one_group_not_two() {
    let h = Harness::new("group-space").await;
    // The identity provider says carl is in one group, "Contractors sre"; API Gateway passes
    // it as "[Contractors sre]". Read as two groups, carl would be in `sre` and could break
    // the glass on the admin role.
    let carl = jit_local::Claims {
        sub: "carl",
        groups: &["Contractors sre"],
    };
    let ask = json!({"target": "break-glass-admin", "duration": "1h", "ticket": "INC-7",
        "reason": "production is down, paging everyone", "break_glass": true})
    .to_string();
    let event =
        jit_local::http_api_event(Some(carl), "POST /requests", "/requests", Some(&ask), &[]);
    assert_eq!(
        event["requestContext"]["authorizer"]["jwt"]["claims"]["groups"],
        "[Contractors sre]"
    );
    let reply = h.call_event(&event).await;
    reply.assert_refused(403, "no policy permits you");
    // The same request from sam, who is in `sre`, breaks the glass: the refusal above is the
    // group's name, not the request.
    let sam = jit_local::Claims {
        sub: "sam",
        groups: &["sre", "Contractors sre"],
    };
    let event =
        jit_local::http_api_event(Some(sam), "POST /requests", "/requests", Some(&ask), &[]);
    assert_eq!(h.call_event(&event).await.status, 201);
    // Without the token the authorizer verified (none, another one, two headers joined), the
    // flattened list is not split: 401 saying what to send.
    let other = jit_local::bearer(&json!({"sub": "carl", "groups": ["sre"]}));
    let joined = format!("{other}, {other}");
    for header in ["", "Basic Y2FybDpwdw==", other.as_str(), joined.as_str()] {
        let event = jit_local::http_api_event(
            Some(carl),
            "POST /requests",
            "/requests",
            Some(&ask),
            &[("authorization", header)],
        );
        let reply = h.call_event(&event).await;
        assert_eq!(reply.status, 401, "{header}: {}", reply.body);
        assert!(
            reply
                .detail()
                .contains("exactly one `Authorization` header"),
            "{}",
            reply.detail()
        );
    }
    assert_eq!(h.writes(), 1, "only sam's request was written");
}

#[tokio::test]
async fn identity_comes_only_from_the_authorizer() {
    let h = Harness::new("identity").await;
    // Headers that look like identity change nothing; without the authorizer there is none.
    let headers = [("x-user", "alice"), ("x-amzn-oidc-identity", "alice")];
    let reply = h
        .call_event(&event(NOBODY, "GET /requests", "/requests", None, &headers))
        .await;
    reply.assert_detail(
        401,
        "the request carries no verified identity; call through the API with a valid token",
    );
    let id = h.request(ALICE, "prod-logs-ro", "1h").await;
    let reply = h
        .call_event(&event(
            BOB,
            "GET /requests/{id}",
            &format!("/requests/{id}"),
            None,
            &[("x-user", "alice")],
        ))
        .await;
    assert_eq!(reply.status, 404);
    let unknown = h
        .call(
            ALICE,
            "DELETE /requests/{id}",
            &format!("/requests/{id}"),
            None,
        )
        .await;
    assert_eq!(unknown.status, 404);
    assert!(
        unknown.detail().starts_with("there is no route"),
        "{}",
        unknown.detail()
    );
}

#[tokio::test]
async fn targets_lists_what_each_caller_may_ask_for_and_when_a_ticket_is_needed() {
    let h = Harness::new("targets").await;
    let listed = |reply: &Reply| -> Vec<(String, bool)> {
        reply.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| {
                (
                    t["id"].as_str().unwrap().to_owned(),
                    t["ticket_required"].as_bool().unwrap(),
                )
            })
            .collect()
    };
    // Wednesday 10:00: write access is in business hours.
    let alice = h.call(ALICE, "GET /targets", "/targets", None).await;
    assert_eq!(alice.status, 200, "{}", alice.body);
    assert_eq!(
        listed(&alice),
        [
            ("prod-deploy".to_owned(), false),
            ("prod-logs-ro".to_owned(), false)
        ]
    );
    let dan = h.call(DAN_DBA, "GET /targets", "/targets", None).await;
    assert_eq!(listed(&dan), [("prod-db-admin".to_owned(), true)]);
    let sam = h.call(SAM_SRE, "GET /targets", "/targets", None).await;
    assert_eq!(listed(&sam).len(), 4);
    assert!(listed(&sam).contains(&("break-glass-admin".to_owned(), true)));
    // At night, write access is not offered.
    h.clock.set(jit_core::clock::Timestamp::from_unix_seconds(
        WEDNESDAY_10.unix_seconds() + 12 * 3600,
    ));
    let night = h.call(ALICE, "GET /targets", "/targets", None).await;
    assert_eq!(listed(&night), [("prod-logs-ro".to_owned(), false)]);
    let nobody = h.call(NOBODY, "GET /targets", "/targets", None).await;
    assert_eq!(nobody.status, 401, "{}", nobody.body);
}

#[tokio::test]
async fn a_grants_activity_is_paged_to_whoever_may_see_it_and_bad_pages_are_refused() {
    use jit_core::cases::{ActivityOutcome, record_activity};
    use jit_core::domain::{Command, SessionKind};

    let h = Harness::new("activity-route").await;
    let id = h.request(ALICE, "prod-logs-ro", "1h").await;
    // The rules' approval (as the approver commits it), then alice pulls a session; three
    // calls of hers arrive.
    let grant_id = GrantId::parse(&id).unwrap();
    let store = &h.app.store;
    let grant = store.get(&grant_id).await.unwrap().unwrap();
    let change = grant
        .apply(
            jit_test_support::auto_approve(),
            &jit_test_support::by_approver(),
            WEDNESDAY_10,
        )
        .unwrap();
    store.commit(&change).await.unwrap();
    let grant = change.grant().clone();
    let change = grant
        .apply(
            Command::IssueSession {
                kind: SessionKind::Cli,
                expires_at: WEDNESDAY_10.plus_secs(3600),
            },
            &jit_core::domain::Actor::User(grant.requester.clone()),
            WEDNESDAY_10,
        )
        .unwrap();
    store.commit(&change).await.unwrap();
    let grant = change.grant().clone();
    for (n, action) in ["ListTables", "DescribeTable", "Scan"].iter().enumerate() {
        let event = jit_test_support::cloudtrail_call(
            &grant,
            &format!("call-{n}"),
            action,
            WEDNESDAY_10.plus_secs(10 * n as i64),
        );
        let outcome = record_activity(
            store,
            &h.app.rules,
            &serde_json::from_value(event).unwrap(),
            WEDNESDAY_10.plus_secs(60),
        )
        .await
        .unwrap();
        assert!(
            matches!(outcome, ActivityOutcome::Attached { .. }),
            "{outcome:?}"
        );
    }

    // Whoever may see the request sees its activity; anyone else is told there is none.
    let path = format!("/requests/{id}/activity");
    for (who, status) in SEES_ALICES_REQUEST {
        let reply = h
            .call(who, "GET /requests/{id}/activity", &path, None)
            .await;
        assert_eq!(reply.status, status, "{who:?}: {}", reply.body);
        if status == 200 {
            assert_eq!(reply.body["stored"], 3);
            assert_eq!(reply.body["items"].as_array().unwrap().len(), 3);
        }
    }

    // Pages of two, oldest first, each with a cursor after its last event.
    let mut actions = Vec::new();
    let mut next: Option<String> = None;
    for _ in 0..3 {
        let query = match &next {
            Some(n) => format!("{path}?limit=2&next={n}"),
            None => format!("{path}?limit=2"),
        };
        let page = h
            .call(ALICE, "GET /requests/{id}/activity", &query, None)
            .await;
        assert_eq!(page.status, 200, "{}", page.body);
        let items = page.body["items"].as_array().unwrap();
        actions.extend(
            items
                .iter()
                .map(|i| i["action"].as_str().unwrap().to_owned()),
        );
        assert_eq!(
            page.body["next"].is_string(),
            !items.is_empty(),
            "{}",
            page.body
        );
        if items.is_empty() {
            break;
        }
        next = page.body["next"].as_str().map(str::to_owned);
    }
    assert_eq!(actions, ["ListTables", "DescribeTable", "Scan"]);

    for (query, detail) in [
        ("limit=0", "limit `0` must be a number from 1 to 100"),
        ("limit=101", "limit `101` must be a number from 1 to 100"),
        ("limit=abc", "limit `abc` must be a number from 1 to 100"),
        ("next=garbage", "the page cursor is not valid"),
        ("next=GRANT", "the page cursor is not valid"),
    ] {
        let reply = h
            .call(
                ALICE,
                "GET /requests/{id}/activity",
                &format!("{path}?{query}"),
                None,
            )
            .await;
        assert_eq!(reply.status, 400, "{query}: {}", reply.body);
        assert!(
            reply.detail().starts_with(detail),
            "{query}: {}",
            reply.detail()
        );
    }
    let unknown = GrantId::generate(WEDNESDAY_10);
    let reply = h
        .call(
            ALICE,
            "GET /requests/{id}/activity",
            &format!("/requests/{unknown}/activity"),
            None,
        )
        .await;
    reply.assert_detail(404, "no request with that id is visible to you");
}

/// `GET /audit/unattributed`: a call made with a grant's role before any session was issued is
/// kept as unattributed, and an auditor reads it by its UTC day; nobody else does, and a day
/// that is not one is refused.
#[tokio::test]
async fn an_auditor_reads_a_days_unattributed_calls_and_nobody_else_does() {
    use jit_core::cases::{ActivityOutcome, record_activity};

    let h = Harness::new("unattributed-route").await;
    let id = h.request(ALICE, "prod-logs-ro", "1h").await;
    let grant = h
        .app
        .store
        .get(&GrantId::parse(&id).unwrap())
        .await
        .unwrap()
        .unwrap();
    let event = jit_test_support::cloudtrail_call(
        &grant,
        "stray-1",
        "DeleteTable",
        WEDNESDAY_10.plus_secs(30),
    );
    let outcome = record_activity(
        &h.app.store,
        &h.app.rules,
        &serde_json::from_value(event).unwrap(),
        WEDNESDAY_10.plus_secs(60),
    )
    .await
    .unwrap();
    assert!(
        matches!(outcome, ActivityOutcome::Unattributed { .. }),
        "{outcome:?}"
    );
    let day = WEDNESDAY_10.utc_day();
    let route = "GET /audit/unattributed";
    let reply = h
        .call(
            SUE_SECURITY,
            route,
            &format!("/audit/unattributed?day={day}"),
            None,
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["day"], day.as_str());
    let items = reply.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{}", reply.body);
    assert_eq!(items[0]["event"]["event_id"], "stray-1");
    assert_eq!(items[0]["event"]["action"], "DeleteTable");
    assert_eq!(items[0]["role_arn"], grant.role_arn.as_str());
    assert!(
        !items[0]["why"].as_str().unwrap().is_empty(),
        "{}",
        reply.body
    );
    assert_eq!(reply.body["next"], serde_json::Value::Null);
    let next_day = WEDNESDAY_10.plus_secs(86_400).utc_day();
    let other = h
        .call(
            SUE_SECURITY,
            route,
            &format!("/audit/unattributed?day={next_day}"),
            None,
        )
        .await;
    assert_eq!(other.status, 200, "{}", other.body);
    assert_eq!(other.body["items"], serde_json::json!([]));

    let path = format!("/audit/unattributed?day={day}");
    assert_eq!(h.call(SAM_SRE, route, &path, None).await.status, 403);
    assert_eq!(h.call(NOBODY, route, &path, None).await.status, 401);
    for (query, detail) in [
        ("", "`day` is required"),
        ("day=2027-02-30", "`day` = `2027-02-30` is not a UTC day"),
        ("day=yesterday", "`day` = `yesterday` is not a UTC day"),
        (&format!("day={day}&limit=0") as &str, "limit `0`"),
    ] {
        let reply = h
            .call(
                SUE_SECURITY,
                route,
                &format!("/audit/unattributed?{query}"),
                None,
            )
            .await;
        assert_eq!(reply.status, 400, "{query}: {}", reply.body);
        assert!(
            reply.detail().starts_with(detail),
            "{query}: {}",
            reply.detail()
        );
    }
}

#[tokio::test]
async fn a_deployment_without_slack_refuses_its_links_and_handoffs_and_stores_nothing() {
    let h = Harness::new("no-slack").await;
    let writes = h.writes();
    for (route, path, body) in [
        (
            "POST /slack/links",
            "/slack/links",
            r#"{"code":"ABCDEFGHJK"}"#,
        ),
        (
            "POST /slack/handoffs",
            "/slack/handoffs",
            r#"{"token":"00ff"}"#,
        ),
    ] {
        let reply = h.call(SAM_SRE, route, path, Some(body)).await;
        assert_eq!(reply.status, 404, "{route}: {}", reply.body);
        assert!(
            reply.body["detail"]
                .as_str()
                .unwrap_or_default()
                .contains("not set up in this deployment"),
            "{route}: {}",
            reply.body
        );
    }
    assert_eq!(h.writes(), writes);
}

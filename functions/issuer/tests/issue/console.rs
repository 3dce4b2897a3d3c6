//! Console sign-in links through the federation endpoint.

use super::*;

#[tokio::test]
async fn the_console_link_comes_from_the_federation_endpoint() {
    let h = Harness::new("console").await;
    let g = h.active("alice", "prod-logs-ro", "1h").await;
    let body = json!({"destination": "https://eu-west-1.console.aws.amazon.com/cloudwatch/home"})
        .to_string();
    let reply = h
        .call(Some(("alice", ENGINEER)), CONSOLE, &g.id, Some(&body))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let link = url::Url::parse(reply.body["url"].as_str().unwrap()).unwrap();
    assert!(link.as_str().starts_with(&h.federation.endpoint));
    let q: BTreeMap<String, String> = link.query_pairs().into_owned().collect();
    assert_eq!(q["Action"], "login");
    assert_eq!(q["Issuer"], "jit-access");
    assert_eq!(
        q["Destination"],
        "https://eu-west-1.console.aws.amazon.com/cloudwatch/home"
    );
    assert_eq!(q["SigninToken"], "standin-token-1");
    let sessions = h.federation.log.sessions();
    assert_eq!(sessions.len(), 1);
    assert!(
        sessions[0]["sessionId"]
            .as_str()
            .unwrap()
            .starts_with("ASIA")
    );
    let records = jit_test_support::audit(h.store(), &g.id).await;
    let last = records.last().unwrap();
    assert_eq!(
        (last.action, last.detail["kind"].as_str()),
        (AuditAction::SessionIssued, "console")
    );

    // Only console destinations; nothing asked of STS for a bad one.
    h.calls();
    let evil = json!({"destination": "https://evil.example.com/phish"}).to_string();
    let reply = h
        .call(Some(("alice", ENGINEER)), CONSOLE, &g.id, Some(&evil))
        .await;
    reply.assert_refused(422, "is not an AWS console URL");
    assert!(h.calls().is_empty());

    // The federation endpoint failing: 502, and nothing recorded.
    *h.federation.fail_with.lock().unwrap() = Some(500);
    let before = h.grant(&g.id).await;
    let reply = h
        .call(Some(("alice", ENGINEER)), CONSOLE, &g.id, None)
        .await;
    reply.assert_refused(502, "federation endpoint failed");
    assert_eq!(h.grant(&g.id).await, before);
}

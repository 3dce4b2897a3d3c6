//! The web page's files (served without an authorizer, with a strict policy) and a grant's
//! own trail for whoever may see the grant.

use crate::support::*;
use jit_core::domain::GrantId;
use jit_core::domain::audit::{AuditRecord, verify_against_head};
use jit_core::trust::{KeyRing, PublicKey, author_of, record_message};

#[tokio::test]
async fn the_page_is_served_to_anyone_with_a_strict_policy_and_no_inline_script() {
    let h = Harness::new("web-files").await;
    let (status, headers, html) = h.call_text(NOBODY, "GET /", "/").await;
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], "text/html; charset=utf-8");
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("script-src 'self';"), "{csp}");
    assert!(csp.contains("default-src 'none'"), "{csp}");
    assert!(
        csp.contains("connect-src 'self' https://login.example.com;"),
        "{csp}"
    );
    assert!(!csp.contains("unsafe-"), "{csp}");
    assert_eq!(headers["x-frame-options"], "DENY");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["referrer-policy"], "no-referrer");
    // Every script is a file of this origin: no inline script, no inline handlers.
    let lower = html.to_ascii_lowercase();
    for tag in lower.split("<script").skip(1) {
        let open = tag.split('>').next().unwrap();
        assert!(
            open.contains("src=\"/web/"),
            "inline script: <script{open}>"
        );
    }
    assert!(
        !lower.contains(" onclick=") && !lower.contains(" onload="),
        "{html}"
    );
    assert!(!lower.contains("style=\""), "inline style in {html}");

    for (file, kind) in [
        ("app.js", "text/javascript; charset=utf-8"),
        ("verify.js", "text/javascript; charset=utf-8"),
        ("report.js", "text/javascript; charset=utf-8"),
        ("app.css", "text/css; charset=utf-8"),
        ("config.json", "application/json"),
    ] {
        let (status, headers, body) = h
            .call_text(NOBODY, "GET /web/{file}", &format!("/web/{file}"))
            .await;
        assert_eq!(status, 200, "{file}: {body}");
        assert_eq!(headers["content-type"], kind, "{file}");
        assert!(headers.contains_key("content-security-policy"), "{file}");
        if file == "verify.js" {
            // The page's verifier holds each action to the one function that writes it, as
            // the functions' own check does: a new action the page does not know would make
            // every trail holding it fail to verify there.
            for action in jit_core::domain::audit::AuditAction::ALL {
                let author = format!("{action}: \"{}\"", author_of(action));
                assert!(body.contains(&author), "verify.js lacks {author}");
            }
        }
        if file == "config.json" {
            let config: serde_json::Value = serde_json::from_str(&body).unwrap();
            assert_eq!(config["issuer"], "https://login.example.com/tenant");
            assert_eq!(config["client_id"], "jit-web");
            assert_eq!(
                config["slack"], false,
                "this intake takes no approvals in Slack"
            );
        }
    }
    // A deployment without sign-in settings says what to set, and still serves the page.
    let mut h = h;
    h.app.web.client_id = None;
    let (status, _, body) = h
        .call_text(NOBODY, "GET /web/{file}", "/web/config.json")
        .await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("JIT_WEB_CLIENT_ID"), "{body}");
    assert_eq!(h.call_text(NOBODY, "GET /", "/").await.0, 200);
    for file in ["index.html", "..%2FCargo.toml", "main.rs", "APP.JS"] {
        let (status, _, body) = h
            .call_text(NOBODY, "GET /web/{file}", &format!("/web/{file}"))
            .await;
        assert_eq!(status, 404, "{file}: {body}");
    }
}

#[tokio::test]
async fn a_grants_trail_is_shown_to_those_who_may_see_it_and_verifies_with_its_keys() {
    let h = Harness::new("web-trail").await;
    let id = h.request(ALICE, "prod-logs-ro", "1h").await;
    h.clock.advance(30);
    let cancel = format!("/requests/{id}/cancel");
    let reply = h
        .call(ALICE, "POST /requests/{id}/cancel", &cancel, None)
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);

    let path = format!("/requests/{id}/audit");
    for (who, status) in SEES_ALICES_REQUEST {
        let reply = h.call(who, "GET /requests/{id}/audit", &path, None).await;
        assert_eq!(reply.status, status, "{who:?}: {}", reply.body);
    }
    let reply = h.call(ALICE, "GET /requests/{id}/audit", &path, None).await;
    assert_eq!(reply.body["grant"]["state"], "CANCELLED");
    let records: Vec<AuditRecord> = serde_json::from_value(reply.body["records"].clone()).unwrap();
    let actions: Vec<&str> = records.iter().map(|r| r.action.as_str()).collect();
    assert_eq!(actions, ["REQUESTED", "CANCELLED"]);
    let grant_id = GrantId::parse(&id).unwrap();
    let head = jit_core::domain::audit::ChainHead {
        seq: reply.body["grant"]["audit_head"]["seq"].as_u64().unwrap(),
        hash: reply.body["grant"]["audit_head"]["hash"]
            .as_str()
            .unwrap()
            .to_owned(),
    };
    verify_against_head(&grant_id, &records, &head).unwrap();
    // The keys served with it check every signature, each by the function that writes it.
    let keys: Vec<PublicKey> = serde_json::from_value(reply.body["keys"].clone()).unwrap();
    let ring = KeyRing::new(keys);
    for r in &records {
        ring.verify(
            r.signature.as_ref(),
            author_of(r.action),
            &record_message(&r.hash),
        )
        .unwrap();
    }

    let unknown = GrantId::generate(WEDNESDAY_10);
    for path in [
        format!("/requests/{unknown}/audit"),
        "/requests/not-an-id/audit".to_owned(),
    ] {
        let reply = h.call(ALICE, "GET /requests/{id}/audit", &path, None).await;
        assert_eq!(reply.status, 404, "{path}");
    }
}

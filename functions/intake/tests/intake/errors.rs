//! What callers are told when DynamoDB itself fails, with DynamoDB's own error answers from a
//! loopback endpoint: a refusal retrying cannot fix is a 500 that names the misconfiguration
//! (and nothing of the resource), throttling is a 503 after the SDK's retries. And the same
//! for the functions' public keys, which KMS may refuse when they are first needed.

use std::sync::Arc;

use jit_core::domain::Service;
use jit_core::store::{DynamoStore, SignedStore};
use jit_core::trust::{LocalKeys, kms_public_keys};

use crate::support::*;

#[tokio::test]
async fn a_refusal_is_a_500_naming_the_misconfiguration_and_throttling_a_503() {
    let mut h = Harness::new("db-errors").await;
    let dynamo = jit_local::CannedEndpoint::start().await.unwrap();
    h.app.store = SignedStore::new(
        DynamoStore::new(dynamo.dynamodb_client(3).await, "jit-grants"),
        Arc::new(LocalKeys::generate()),
    );
    let list = || h.call(ALICE, "GET /requests", "/requests?scope=mine", None);
    dynamo.dynamodb_error(
        400,
        "AccessDeniedException",
        "User: arn:aws:sts::111111111111:assumed-role/jit-intake/intake is not authorized to perform: dynamodb:Query on resource: arn:aws:dynamodb:eu-west-1:111111111111:table/jit-grants/index/by_requester",
    );
    let reply = list().await;
    assert_eq!(reply.status, 500, "{}", reply.body);
    assert_eq!(reply.body["type"], "urn:jit-access:problem:misconfigured");
    assert!(
        reply.detail().contains("(AccessDeniedException)")
            && reply.detail().contains("retrying will not help"),
        "{}",
        reply.detail()
    );
    assert!(
        !reply.detail().contains("arn:aws"),
        "no resource leaks: {}",
        reply.detail()
    );
    assert_eq!(dynamo.requests(), 1, "a refusal is not retried");

    dynamo.dynamodb_error(
        400,
        "ThrottlingException",
        "Rate of requests exceeds the allowed throughput.",
    );
    let reply = list().await;
    assert_eq!(reply.status, 503, "{}", reply.body);
    assert!(reply.detail().ends_with("try again"), "{}", reply.detail());
    assert_eq!(
        dynamo.requests(),
        1 + 3,
        "throttling is retried by the SDK, then reported"
    );

    dynamo.dynamodb_error(500, "InternalServerError", "Internal server error");
    let reply = list().await;
    assert_eq!(reply.status, 503, "{}", reply.body);
}

#[tokio::test]
async fn keys_kms_does_not_know_refuse_what_needs_them_naming_the_misconfiguration() {
    let mut h = Harness::new("unknown-keys").await;
    let id = h.request(ALICE, "prod-logs-ro", "1h").await;
    // The deployment names keys the emulator's KMS does not hold: the function starts (it
    // reads them only when first needed), and what needs them says what is wrong.
    let emulator = jit_local::Emulator::shared().unwrap();
    let kms = aws_sdk_kms::Client::new(&emulator.sdk_config().await);
    let unknown = "11111111-2222-3333-4444-555555555555";
    let ids = Service::ALL.map(|s| (s, unknown.to_owned())).to_vec();
    h.app.keys = Arc::new(kms_public_keys(kms, ids));
    let trail = format!("/requests/{id}/audit");
    let range = "from=2027-01-13T00:00:00Z&to=2027-01-14T00:00:00Z";
    for (route, path) in [
        ("GET /requests/{id}/audit", trail.as_str()),
        ("GET /audit", &format!("/audit?{range}")),
    ] {
        let who = if route == "GET /audit" {
            SUE_SECURITY
        } else {
            ALICE
        };
        let reply = h.call(who, route, path, None).await;
        assert_eq!(reply.status, 500, "{route}: {}", reply.body);
        assert_eq!(reply.body["type"], "urn:jit-access:problem:misconfigured");
        let detail = reply.detail();
        assert!(
            detail.contains("public keys could not be read")
                && detail.contains("NotFoundException")
                && detail.contains("retrying will not help"),
            "{route}: {detail}"
        );
    }
    // What needs no keys goes on: the request is there, as it was.
    let reply = h
        .call(
            ALICE,
            "GET /requests/{id}",
            &format!("/requests/{id}"),
            None,
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["state"], "PENDING");
}

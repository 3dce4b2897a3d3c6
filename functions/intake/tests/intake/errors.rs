//! What callers are told when DynamoDB itself fails, with DynamoDB's own error answers from a
//! loopback endpoint: a refusal retrying cannot fix is a 500 that names the misconfiguration
//! (and nothing of the resource), throttling is a 503 after the SDK's retries.

use std::sync::Arc;

use jit_core::store::{DynamoStore, SignedStore};
use jit_core::trust::LocalKeys;

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

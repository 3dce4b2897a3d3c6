//! Issuance cost: handler time and AWS calls per `POST /grants/{id}/credentials`, against STS
//! and DynamoDB on the local emulator. Prints numbers; asserts nothing. Run with
//! `cargo bench -p jit-issuer --bench issuance`.
// A benchmark may unwrap: a failure is a crash with a message, which is what we want here.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::sync::Arc;
use std::time::Instant;

use jit_core::clock::{Clock, SystemClock};
use jit_core::domain::{Actor, Command, Grant, GrantId, Service};
use jit_core::policy::Rules;
use jit_core::store::{DynamoStore, GrantStore, SignedStore};
use jit_core::trust::LocalKeys;
use jit_issuer::{HttpFederation, Issuer, IssuerConfig, StsBroker};
use jit_local::{CallCounter, Claims, TestTable};

const GRANTS: usize = 50;

#[tokio::main]
async fn main() {
    let table = TestTable::create("bench-issue").await.unwrap();
    let config = jit_local::Emulator::shared().unwrap().sdk_config().await;
    let sts_calls = CallCounter::new();
    let sts = aws_sdk_sts::Client::from_conf(
        aws_sdk_sts::config::Builder::from(&config)
            .interceptor(sts_calls.clone())
            .build(),
    );
    let rules =
        Arc::new(Rules::load_dir(&jit_local::workspace_root().join("infra/policies")).unwrap());
    let clock = Arc::new(SystemClock);
    let keys = LocalKeys::generate();
    let store = SignedStore::new(
        DynamoStore::new(table.client.clone(), &table.name),
        Arc::new(keys.clone()),
    );
    let mut grants = Vec::new();
    for i in 0..GRANTS {
        let now = clock.now();
        let new = jit_test_support::request(
            &rules,
            &format!("user-{i}"),
            &["engineers"],
            "prod-logs-ro",
            "1h",
        );
        let creation = Grant::open(GrantId::generate(now), new, now);
        store.create(&creation, None).await.unwrap();
        let change = creation
            .grant()
            .apply(
                Command::AutoApprove {
                    policies: vec!["bench".into()],
                    policy_hash: "h".into(),
                    on_call: Default::default(),
                },
                &Actor::Service(Service::Approver),
                now,
            )
            .unwrap();
        store.commit(&change).await.unwrap();
        grants.push(change.grant().clone());
    }
    let issuer = Issuer {
        store,
        rules,
        clock,
        broker: StsBroker::new(sts),
        federation: HttpFederation::new(url::Url::parse("http://127.0.0.1:9/federation").unwrap()),
        config: IssuerConfig::default(),
        keys: Arc::new(keys.ring().into()),
    };
    let events: Vec<_> = grants
        .iter()
        .map(|g| {
            let path = format!("/grants/{}/credentials", g.id);
            let claims = Claims {
                sub: g.requester.as_str(),
                groups: &["engineers"],
            };
            jit_local::http_api_event(
                Some(claims),
                "POST /grants/{id}/credentials",
                &path,
                None,
                &[],
            )
        })
        .collect();
    table.calls.take();
    sts_calls.take();
    let started = Instant::now();
    let mut ok = 0;
    for event in &events {
        let response = issuer
            .handle(jit_http::into_request(
                serde_json::from_value(event.clone()).unwrap(),
            ))
            .await;
        ok += usize::from(response.status().is_success());
    }
    let elapsed = started.elapsed();
    let mut calls = table.calls.take();
    calls.extend(sts_calls.take());
    let total: u64 = calls.values().sum();
    println!(
        "issuances {GRANTS} ({ok} ok)  per issuance {:>7.1} ms  AWS calls per issuance {:.2} {calls:?}",
        elapsed.as_secs_f64() * 1e3 / GRANTS as f64,
        total as f64 / GRANTS as f64,
    );
}

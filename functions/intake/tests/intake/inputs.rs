//! Bad input, generated: bodies, path ids and query strings that no client should send, a
//! fixed number of cases each (stable Rust: `cargo fuzz` needs a nightly toolchain). Whatever
//! arrives, the answer is a documented status with a problem body (the harness checks the
//! shape), never a 5xx, and a refused request stores nothing.

use proptest::prelude::*;
use serde_json::{Value, json};

use crate::support::*;

const CASES: u32 = 200;

/// A JSON value of any shape, a few levels deep.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        ".{0,40}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map(".{0,12}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Request bodies: near-misses of a valid one (each field replaced by anything, unknown
/// fields added), arbitrary JSON, and arbitrary text.
fn bodies() -> impl Strategy<Value = String> {
    let field = |valid: Value| prop_oneof![3 => Just(valid), 1 => any_json()];
    let near_miss = (
        field(json!("prod-logs-ro")),
        field(json!("30m")),
        field(json!("investigating INC-42 in production")),
        field(json!("INC-42")),
        field(json!(false)),
        prop::option::of((".{1,10}", any_json())),
    )
        .prop_map(|(target, duration, reason, ticket, glass, extra)| {
            let mut body = json!({"target": target, "duration": duration, "reason": reason,
                "ticket": ticket, "break_glass": glass});
            if let Some((k, v)) = extra {
                body[k] = v;
            }
            body.to_string()
        });
    prop_oneof![
        4 => near_miss,
        1 => any_json().prop_map(|v| v.to_string()),
        1 => ".{0,200}",
    ]
}

fn documented(status: u16) -> bool {
    matches!(status, 200 | 201 | 400 | 403 | 404 | 409 | 413 | 415 | 422)
}

#[test]
fn generated_bodies_ids_and_queries_never_get_a_5xx_and_refusals_store_nothing() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let h = runtime.block_on(Harness::new("inputs"));
    let mine = |h: &Harness| {
        runtime.block_on(async {
            let r = h
                .call(BOB, "GET /requests", "/requests?scope=mine&limit=100", None)
                .await;
            r.body["items"].as_array().map_or(0, Vec::len)
        })
    };
    let config = ProptestConfig {
        cases: CASES,
        failure_persistence: None,
        ..ProptestConfig::default()
    };

    proptest!(config.clone(), |(body in bodies())| {
        let before = mine(&h);
        let reply = runtime.block_on(h.call(BOB, "POST /requests", "/requests", Some(&body)));
        prop_assert!(documented(reply.status), "{} for {body}: {}", reply.status, reply.body);
        if reply.status != 201 {
            prop_assert_eq!(mine(&h), before, "a refused request stored something: {}", body);
        } else {
            // Make room for the next case: one open request per target.
            let id = reply.body["id"].as_str().unwrap().to_owned();
            let cancel = runtime.block_on(h.call(
                BOB,
                "POST /requests/{id}/cancel",
                &format!("/requests/{id}/cancel"),
                None,
            ));
            prop_assert_eq!(cancel.status, 200);
        }
    });

    proptest!(config.clone(), |(id in ".{0,60}")| {
        let path = format!("/requests/{}", url::form_urlencoded::byte_serialize(id.as_bytes()).collect::<String>());
        let reply = runtime.block_on(h.call(BOB, "GET /requests/{id}", &path, None));
        prop_assert!(matches!(reply.status, 400 | 404), "{} for {id:?}: {}", reply.status, reply.body);
    });

    proptest!(config, |(scope in ".{0,12}", state in ".{0,12}", limit in ".{0,6}", next in ".{0,40}")| {
        let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        let path = format!(
            "/requests?scope={}&state={}&limit={}&next={}",
            enc(&scope), enc(&state), enc(&limit), enc(&next)
        );
        let reply = runtime.block_on(h.call(BOB, "GET /requests", &path, None));
        prop_assert!(documented(reply.status), "{} for {path}: {}", reply.status, reply.body);
    });
}

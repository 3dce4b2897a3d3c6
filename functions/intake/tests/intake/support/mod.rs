//! Drives the intake handler with real API Gateway HTTP API (payload 2.0) events, against
//! DynamoDB on the local emulator and the example rules.

use std::sync::Arc;

use jit_core::clock::ManualClock;
use jit_core::store::{DynamoStore, SignedStore};
use jit_intake::{App, IntakeConfig, WebConfig, ticket_pattern};
use jit_local::TestTable;
use lambda_http::http::HeaderMap;
use serde_json::{Value, json};

pub use jit_test_support::Reply;

/// Wednesday 2027-01-13, 10:00 UTC: inside business hours.
pub use jit_test_support::WEDNESDAY_10;

/// Who calls: a subject and its groups, or nobody.
#[derive(Debug, Clone, Copy)]
pub enum Who {
    /// A verified caller.
    User(&'static str, &'static str),
    /// No identity at all.
    Anonymous,
}

pub const ALICE: Who = Who::User("alice", "engineers");
pub const BOB: Who = Who::User("bob", "engineers");
pub const SAM_SRE: Who = Who::User("sam", "sre");
pub const SUE_SECURITY: Who = Who::User("sue", "security");
pub const DAN_DBA: Who = Who::User("dan", "dba");
pub const NOBODY: Who = Who::Anonymous;

/// Who sees alice's prod-logs-ro request (its requester, an approver, an auditor) and what
/// everyone else gets: 404 as if it did not exist, or 401 without an identity.
pub const SEES_ALICES_REQUEST: [(Who, u16); 6] = [
    (ALICE, 200),
    (SAM_SRE, 200),
    (SUE_SECURITY, 200),
    (BOB, 404),
    (DAN_DBA, 404),
    (NOBODY, 401),
];

pub struct Harness {
    pub app: App<SignedStore<DynamoStore>>,
    pub clock: Arc<ManualClock>,
    pub table: TestTable,
}

impl Harness {
    pub async fn new(label: &str) -> Self {
        let fixture = jit_test_support::signed_table(label).await;
        let clock = Arc::new(ManualClock::at(WEDNESDAY_10));
        let app = App {
            store: fixture.store,
            rules: fixture.rules,
            clock: clock.clone(),
            config: IntakeConfig {
                ticket_pattern: Some(ticket_pattern("[A-Z]+-[0-9]+").unwrap()),
                ..IntakeConfig::default()
            },
            keys: fixture.ring,
            web: WebConfig {
                issuer: Some("https://login.example.com/tenant".into()),
                client_id: Some("jit-web".into()),
                groups_claim: "groups".into(),
                extra_origins: Vec::new(),
            },
            slack: None,
        };
        Self {
            app,
            clock,
            table: fixture.table,
        }
    }

    /// Sends `method path` (matched by API Gateway as `route`) with an optional body.
    pub async fn call(&self, who: Who, route: &str, path: &str, body: Option<&str>) -> Reply {
        self.call_event(&event(who, route, path, body, &[])).await
    }

    /// Sends an API Gateway event as it is.
    pub async fn call_event(&self, event: &Value) -> Reply {
        let request = lambda_http::request::from_str(&event.to_string()).unwrap();
        Reply::of(&self.app.handle(request).await)
    }

    /// Sends a request whose answer need not be JSON (the web page's files): status,
    /// headers and the body as text.
    pub async fn call_text(&self, who: Who, route: &str, path: &str) -> (u16, HeaderMap, String) {
        let event = event(who, route, path, None, &[]);
        let request = lambda_http::request::from_str(&event.to_string()).unwrap();
        let response = self.app.handle(request).await;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = String::from_utf8(response.body().as_ref().to_vec()).unwrap();
        (status, headers, body)
    }

    /// Creates a request as `who` and returns its id.
    pub async fn request(&self, who: Who, target: &str, duration: &str) -> String {
        let body = json!({
            "target": target,
            "duration": duration,
            "reason": "investigating INC-42 in production",
            "ticket": "INC-42",
        });
        let reply = self
            .call(who, "POST /requests", "/requests", Some(&body.to_string()))
            .await;
        assert_eq!(reply.status, 201, "{}", reply.body);
        reply.body["id"].as_str().unwrap().to_owned()
    }

    /// Transactions written since the last call.
    pub fn writes(&self) -> u64 {
        self.table
            .calls
            .take()
            .iter()
            .filter(|(op, _)| {
                op.contains("Write")
                    || op.contains("Put")
                    || op.contains("Delete")
                    || op.contains("Update")
            })
            .map(|(_, n)| n)
            .sum()
    }
}

/// An HTTP API event as API Gateway sends it, from the recorded fixture.
pub fn event(
    who: Who,
    route: &str,
    path: &str,
    body: Option<&str>,
    headers: &[(&str, &str)],
) -> Value {
    let groups: Vec<&str>;
    let claims = match who {
        Who::User(sub, list) => {
            groups = list.split_whitespace().collect();
            Some(jit_local::Claims {
                sub,
                groups: &groups,
            })
        }
        Who::Anonymous => None,
    };
    jit_local::http_api_event(claims, route, path, body, headers)
}

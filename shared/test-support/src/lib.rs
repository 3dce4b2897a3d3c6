//! What the tests and benchmarks of every crate share, in one place: a fixed clock reading,
//! the example rules, requests built the way intake builds them, audit look-ups, and the
//! reply of an HTTP handler.
// Helpers for tests: a broken fixture should stop the test where it is, loudly.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use jit_core::clock::Timestamp;
use jit_core::domain::audit::{AuditAction, AuditRecord};
use jit_core::domain::{
    Grant, GrantDuration, GrantId, GroupName, NewRequest, Reason, TargetId, Ticket, UserId,
};
use jit_core::policy::Rules;
use jit_core::store::{DynamoStore, GrantStore, PageRequest, SignedStore};
use jit_core::trust::LocalKeys;
use jit_local::TestTable;
use lambda_http::http::{HeaderMap, HeaderName, HeaderValue};
use serde_json::Value;

/// Who calls a handler in a test: a subject and their groups, or nobody.
pub type Who<'a> = Option<(&'a str, &'a [&'a str])>;

/// Wednesday 2027-01-13, 10:00 UTC: inside every business-hours rule.
pub const WEDNESDAY_10: Timestamp = Timestamp::from_unix_seconds(1_799_834_400);

/// A table of a test's own on the emulator, and the store every function's tests use on it:
/// DynamoDB, signing each record with its author's key from `keys` (fresh, one per function).
pub struct SignedTable {
    /// The table.
    pub table: TestTable,
    /// The store on it.
    pub store: SignedStore<DynamoStore>,
    /// The keys it signs with.
    pub keys: LocalKeys,
    /// Their public halves, as the functions trust them.
    pub ring: std::sync::Arc<jit_core::trust::PublicKeys>,
    /// The example rules.
    pub rules: std::sync::Arc<Rules>,
}

/// A fresh [`SignedTable`] named after `label`.
pub async fn signed_table(label: &str) -> SignedTable {
    let table = TestTable::create(label).await.unwrap();
    let keys = LocalKeys::generate();
    let store = SignedStore::new(
        DynamoStore::new(table.client.clone(), &table.name),
        std::sync::Arc::new(keys.clone()),
    );
    SignedTable {
        table,
        store,
        ring: std::sync::Arc::new(keys.ring().into()),
        keys,
        rules: std::sync::Arc::new(example_rules()),
    }
}

/// The approver's auto-approval, as a transition a test applies by hand.
pub fn auto_approve() -> jit_core::domain::Command {
    jit_core::domain::Command::AutoApprove {
        policies: vec!["test".into()],
        policy_hash: "h".into(),
        on_call: Default::default(),
    }
}

/// The approver function, the only author of activations.
pub fn by_approver() -> jit_core::domain::Actor {
    jit_core::domain::Actor::Service(jit_core::domain::Service::Approver)
}

/// The example rules of `infra/policies`.
pub fn example_rules() -> Rules {
    Rules::load_dir(&jit_local::workspace_root().join("infra/policies")).unwrap()
}

/// A request by `who` in `groups` for `target`, bound to the target as `rules` declare it, as
/// intake would make it: no ticket, no break-glass, the target's decision window. Set the
/// public fields for anything else.
pub fn request(
    rules: &Rules,
    who: &str,
    groups: &[&str],
    target: &str,
    duration: &str,
) -> NewRequest {
    let target = TargetId::parse(target).unwrap();
    let t = rules.target(&target).unwrap();
    NewRequest {
        requester: UserId::parse(who).unwrap(),
        requester_groups: groups
            .iter()
            .map(|g| GroupName::parse(*g).unwrap())
            .collect(),
        target: target.clone(),
        binding: t.binding(),
        duration: GrantDuration::parse(duration).unwrap(),
        reason: Reason::parse("investigating INC-42 in production").unwrap(),
        ticket: None,
        break_glass: false,
        decision_window_secs: i64::from(t.decision_window_secs),
        starts_at: None,
        bundle: None,
        policy_hash: rules.hash().to_owned(),
    }
}

/// The same request with a ticket.
pub fn with_ticket(mut request: NewRequest, ticket: &str) -> NewRequest {
    request.ticket = Some(Ticket::parse(ticket).unwrap());
    request
}

/// Stores `request` as new at `now`, as intake would, and returns the request.
pub async fn create<S: GrantStore>(store: &S, request: NewRequest, now: Timestamp) -> Grant {
    let creation = Grant::open(GrantId::generate(now), request, now);
    store.create(&creation, None).await.unwrap();
    creation.grant().clone()
}

/// A grant's audit records, in chain order.
pub async fn audit<S: GrantStore>(store: &S, id: &GrantId) -> Vec<AuditRecord> {
    store
        .audit_of_grant(id, &PageRequest::first(PageRequest::MAX_LIMIT))
        .await
        .unwrap()
        .items
}

/// The last audit record of a grant.
pub async fn last_audit<S: GrantStore>(store: &S, id: &GrantId) -> AuditRecord {
    audit(store, id)
        .await
        .pop()
        .expect("the grant has an audit trail")
}

/// What the audit records of a grant say happened, in order.
pub async fn actions<S: GrantStore>(store: &S, id: &GrantId) -> Vec<AuditAction> {
    audit(store, id).await.iter().map(|r| r.action).collect()
}

/// An HTTP handler's answer: status, headers and JSON body. Built from a handler's response
/// (or a Lambda proxy answer), where every 4xx and 5xx must be `application/problem+json`
/// carrying its own status.
#[derive(Debug, Clone)]
pub struct Reply {
    /// The status.
    pub status: u16,
    /// The headers.
    pub headers: HeaderMap,
    /// The body (`Null` when empty or not JSON).
    pub body: Value,
}

impl Reply {
    /// The problem's `detail`, or "".
    pub fn detail(&self) -> &str {
        self.body
            .get("detail")
            .and_then(Value::as_str)
            .unwrap_or("")
    }

    /// Asserts the reply is `status` with a problem `detail` that says `words`.
    #[track_caller]
    pub fn assert_refused(&self, status: u16, words: &str) {
        assert_eq!(self.status, status, "{}", self.body);
        assert!(self.detail().contains(words), "{}", self.detail());
    }

    /// Asserts the reply is 200 with the grant in `state`.
    #[track_caller]
    pub fn assert_state(&self, state: &str) {
        let found = (self.status, self.body["state"].as_str());
        assert_eq!(found, (200, Some(state)), "{}", self.body);
    }

    /// Asserts the reply is `status` with exactly `detail`.
    #[track_caller]
    pub fn assert_detail(&self, status: u16, detail: &str) {
        assert_eq!(
            (self.status, self.detail()),
            (status, detail),
            "{}",
            self.body
        );
    }

    /// Asserts the problem's `detail` starts with `start` and ends with `end`.
    #[track_caller]
    pub fn assert_detail_spans(&self, start: &str, end: &str) {
        let detail = self.detail();
        assert!(
            detail.starts_with(start) && detail.ends_with(end),
            "{detail}"
        );
    }

    /// Asserts the reply is `status` with a problem `type` ending in `kind`.
    #[track_caller]
    pub fn assert_problem(&self, status: u16, kind: &str) {
        assert_eq!(self.status, status, "{}", self.body);
        let found = self.body["type"].as_str().unwrap_or_default();
        assert!(
            found.ends_with(kind),
            "{found} is not {kind}: {}",
            self.body
        );
    }

    /// A handler's response, as a caller reads it.
    pub fn of(response: &lambda_http::Response<lambda_http::Body>) -> Self {
        Self::checked(
            response.status().as_u16(),
            response.headers().clone(),
            response.body().as_ref(),
        )
    }

    /// What the Lambda runtime sends back for an API Gateway event: `statusCode`, `headers`
    /// and the body as text.
    pub fn of_proxy(out: &Value) -> Self {
        let status = out["statusCode"].as_u64().expect("a statusCode") as u16;
        let mut headers = HeaderMap::new();
        for (name, value) in out["headers"].as_object().into_iter().flatten() {
            headers.insert(
                HeaderName::from_bytes(name.as_bytes()).expect("a header name"),
                HeaderValue::from_str(value.as_str().unwrap_or_default()).expect("a header"),
            );
        }
        Self::checked(
            status,
            headers,
            out["body"].as_str().unwrap_or("").as_bytes(),
        )
    }

    fn checked(status: u16, headers: HeaderMap, bytes: &[u8]) -> Self {
        let kind = headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let body = if bytes.is_empty() || !kind.contains("json") {
            Value::Null
        } else {
            serde_json::from_slice(bytes).unwrap_or_else(|e| {
                panic!(
                    "a {kind} body that is not JSON ({e}): {}",
                    String::from_utf8_lossy(bytes)
                )
            })
        };
        if status >= 400 {
            assert_eq!(kind, "application/problem+json", "{status}: {body}");
            assert_eq!(body["status"], status, "{body}");
        }
        Self {
            status,
            headers,
            body,
        }
    }
}

/// A call made at `at` with the session the issuer names for grant `g` (its role, requester
/// and source identity), as EventBridge delivers CloudTrail's record of it (the documented
/// `AWS API Call via CloudTrail` shape): a read-only DynamoDB `action` with event id `event_id`.
pub fn cloudtrail_call(g: &Grant, event_id: &str, action: &str, at: Timestamp) -> Value {
    let account = g.role_arn.account().unwrap().to_owned();
    let role = g.role_arn.as_str();
    let role_name = role.rsplit('/').next().unwrap();
    let session = jit_core::naming::role_session_name(&g.requester, &g.id);
    let time = at.to_rfc3339();
    serde_json::json!({
        "version": "0",
        "id": format!("envelope-{event_id}"),
        "detail-type": "AWS API Call via CloudTrail",
        "source": "aws.dynamodb",
        "account": account,
        "time": time,
        "region": "us-east-1",
        "resources": [],
        "detail": {
            "eventVersion": "1.09",
            "userIdentity": {
                "type": "AssumedRole",
                "principalId": format!("AROAEXAMPLEID:{session}"),
                "arn": format!("arn:aws:sts::{account}:assumed-role/{role_name}/{session}"),
                "accountId": account,
                "accessKeyId": "ASIAEXAMPLE",
                "sessionContext": {
                    "sessionIssuer": {
                        "type": "Role",
                        "principalId": "AROAEXAMPLEID",
                        "arn": role,
                        "accountId": account,
                        "userName": role_name
                    },
                    "sourceIdentity": jit_core::naming::source_identity(&g.requester),
                    "attributes": {"creationDate": time, "mfaAuthenticated": "false"}
                }
            },
            "eventTime": time,
            "eventSource": "dynamodb.amazonaws.com",
            "eventName": action,
            "awsRegion": "us-east-1",
            "sourceIPAddress": "203.0.113.7",
            "userAgent": "aws-cli/2.17.0",
            "requestParameters": null,
            "responseElements": null,
            "readOnly": true,
            "eventID": event_id,
            "eventType": "AwsApiCall",
            "managementEvent": true,
            "recipientAccountId": account,
            "eventCategory": "Management"
        }
    })
}

//! CloudTrail and the target accounts' forwarding rules, on loopback: a pass-through in front
//! of the emulator that turns each call made with an assumed role's session into the event
//! CloudTrail would record (`AWS API Call via CloudTrail`, as EventBridge delivers it) and
//! hands it to the functions the template's rule on the broker's bus feeds, when the rule's
//! pattern matches (only `/jit/` roles' sessions, as deployed).
//!
//! It learns sessions the way nothing else can forge locally: by watching `AssumeRole` pass
//! through it (the issuer's calls go through it too), keeping each new access key's role,
//! session name and source identity. A call signed with any other key is passed on and
//! recorded nowhere, as CloudTrail would record it in some other account's trail.
//!
//! Like CloudTrail, delivery is best effort and a little late: events go out after the call's
//! answer, each retried a few times, then written to a dead-letter file.
// Indexing JSON here reads (a missing key is `Null`) or writes into objects built here: it
// never panics (the lint cannot tell it from slice indexing).
#![allow(clippy::indexing_slicing)]

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::FunctionRuntime;

/// A session the trail saw made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// The role's ARN, with its path.
    pub role_arn: String,
    /// The role session name.
    pub session_name: String,
    /// The source identity set on it.
    pub source_identity: Option<String>,
}

impl Session {
    /// The session the issuer makes for `requester`'s grant `grant` of `role_arn`: its name
    /// and source identity as the broker sets them (`None` for ids that do not parse).
    pub fn of_grant(role_arn: &str, requester: &str, grant: &str) -> Option<Self> {
        let user = jit_core::domain::UserId::parse(requester).ok()?;
        let grant = jit_core::domain::GrantId::parse(grant).ok()?;
        Some(Self {
            role_arn: role_arn.to_owned(),
            session_name: jit_core::naming::role_session_name(&user, &grant),
            source_identity: Some(jit_core::naming::source_identity(&user)),
        })
    }

    /// The role's account.
    fn account(&self) -> &str {
        self.role_arn.split(':').nth(4).unwrap_or_default()
    }
}

/// One call as CloudTrail records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedCall {
    /// The signing name of the service (`s3`, `dynamodb`, `iam`, `sts`, `logs`).
    pub service: String,
    /// The operation (`GetObject`, `DeleteRole`).
    pub operation: String,
    /// The region it was signed for.
    pub region: String,
    /// The access key it was signed with.
    pub access_key: String,
    /// The error code, when the service refused it.
    pub error_code: Option<String>,
    /// The resources it named (ARNs).
    pub resources: Vec<String>,
    /// The caller's user agent.
    pub user_agent: Option<String>,
}

/// Whether an operation only reads, by CloudTrail's naming of read-only calls.
fn read_only(operation: &str) -> bool {
    [
        "Get", "List", "Describe", "Head", "Query", "Scan", "BatchGet", "Lookup", "Select",
        "Filter",
    ]
    .iter()
    .any(|p| operation.starts_with(p))
}

/// The `AWS API Call via CloudTrail` event of `call`, made with `session`, at `at` (RFC 3339).
pub fn api_call_event(session: &Session, call: &RecordedCall, at: &str) -> Value {
    let account = session.account();
    let role_name = session.role_arn.rsplit('/').next().unwrap_or_default();
    let mut context = json!({
        "sessionIssuer": {
            "type": "Role",
            "principalId": "AROALOCALSTACKROLE",
            "arn": session.role_arn,
            "accountId": account,
            "userName": role_name,
        },
        "attributes": {"creationDate": at, "mfaAuthenticated": "false"},
    });
    if let Some(source) = &session.source_identity {
        context["sourceIdentity"] = json!(source);
    }
    let mut detail = json!({
        "eventVersion": "1.09",
        "userIdentity": {
            "type": "AssumedRole",
            "principalId": format!("AROALOCALSTACKROLE:{}", session.session_name),
            "arn": format!("arn:aws:sts::{account}:assumed-role/{role_name}/{}", session.session_name),
            "accountId": account,
            "accessKeyId": call.access_key,
            "sessionContext": context,
        },
        "eventTime": at,
        "eventSource": format!("{}.amazonaws.com", call.service),
        "eventName": call.operation,
        "awsRegion": call.region,
        "sourceIPAddress": "127.0.0.1",
        "userAgent": call.user_agent,
        "requestParameters": null,
        "responseElements": null,
        "readOnly": read_only(&call.operation),
        "resources": call.resources.iter().map(|arn| json!({"ARN": arn})).collect::<Vec<_>>(),
        "eventID": uuid::Uuid::now_v7().to_string(),
        "eventType": "AwsApiCall",
        "managementEvent": call.service != "s3",
        "recipientAccountId": account,
        "eventCategory": if call.service == "s3" { "Data" } else { "Management" },
    });
    if let Some(code) = &call.error_code {
        detail["errorCode"] = json!(code);
        detail["errorMessage"] = json!(format!("{code} (as the emulator answered)"));
    }
    json!({
        "version": "0",
        "id": uuid::Uuid::now_v7().to_string(),
        "detail-type": "AWS API Call via CloudTrail",
        "source": format!("aws.{}", call.service),
        "account": account,
        "time": at,
        "region": call.region,
        "resources": [],
        "detail": detail,
    })
}

/// The trail: the sessions it saw made, and where their events go.
#[derive(Debug, Clone)]
pub struct Trail {
    sessions: Arc<Mutex<HashMap<String, Session>>>,
    events: mpsc::UnboundedSender<Value>,
}

impl Trail {
    fn session(&self, key: &str) -> Option<Session> {
        self.sessions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(key)
            .cloned()
    }

    fn learn(&self, key: String, session: Session) {
        self.sessions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(key, session);
    }
}

/// An S3 REST call's operation, from its method and path-style path.
fn s3_operation(method: &str, path: &str, query: &str) -> String {
    let mut segments = path.trim_start_matches('/').splitn(2, '/');
    let bucket = segments.next().unwrap_or_default();
    let key = segments.next().unwrap_or_default();
    let operation = match (method, bucket.is_empty(), key.is_empty()) {
        ("GET", true, _) => "ListBuckets",
        ("GET", false, true) if query.contains("list-type=2") => "ListObjectsV2",
        ("GET", false, true) => "ListObjects",
        ("PUT", false, true) => "CreateBucket",
        ("DELETE", false, true) => "DeleteBucket",
        ("HEAD", false, true) => "HeadBucket",
        ("GET", false, false) => "GetObject",
        ("PUT", false, false) => "PutObject",
        ("DELETE", false, false) => "DeleteObject",
        ("HEAD", false, false) => "HeadObject",
        _ => return format!("{method} {path}"),
    };
    operation.to_owned()
}

/// The resources an S3 or DynamoDB call names, as CloudTrail lists them.
fn resources(service: &str, path: &str, body: &Value, region: &str, account: &str) -> Vec<String> {
    match service {
        "s3" => {
            let mut segments = path.trim_start_matches('/').splitn(2, '/');
            let bucket = segments.next().unwrap_or_default();
            let key = segments.next().unwrap_or_default();
            let mut out = Vec::new();
            if !bucket.is_empty() {
                out.push(format!("arn:aws:s3:::{bucket}"));
            }
            if !key.is_empty() {
                out.push(format!("arn:aws:s3:::{bucket}/{key}"));
            }
            out
        }
        "dynamodb" => body["TableName"]
            .as_str()
            .map(|t| vec![format!("arn:aws:dynamodb:{region}:{account}:table/{t}")])
            .unwrap_or_default(),
        _ => Vec::new(),
    }
}

/// The error code of a refused call: JSON's `__type` (after any `#`) or XML's `<Code>`.
fn error_code(body: &[u8]) -> Option<String> {
    if let Ok(json) = serde_json::from_slice::<Value>(body) {
        let code = json["__type"].as_str().or(json["code"].as_str())?;
        return Some(code.rsplit('#').next().unwrap_or(code).to_owned());
    }
    let text = String::from_utf8_lossy(body);
    let start = text.find("<Code>")? + "<Code>".len();
    let end = text.get(start..)?.find("</Code>")? + start;
    text.get(start..end).map(str::to_owned)
}

/// The text of the first `<tag>` in an XML answer.
fn xml_field(body: &[u8], tag: &str) -> Option<String> {
    let text = String::from_utf8_lossy(body);
    let open = format!("<{tag}>");
    let start = text.find(&open)? + open.len();
    let end = text.get(start..)?.find(&format!("</{tag}>"))? + start;
    text.get(start..end).map(str::to_owned)
}

/// Starts the trail in front of `upstream`: its URL, the trail, the events it records (for
/// [`deliver`]) and the serving task.
pub(crate) async fn start(
    upstream: String,
) -> Result<
    (
        String,
        Trail,
        mpsc::UnboundedReceiver<Value>,
        JoinHandle<()>,
    ),
    String,
> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| format!("trail: {e}"))?;
    let port = listener
        .local_addr()
        .map_err(|e| format!("trail: {e}"))?
        .port();
    let (events, received) = mpsc::unbounded_channel();
    let trail = Trail {
        sessions: Arc::default(),
        events,
    };
    let client = reqwest::Client::new();
    let serving = trail.clone();
    let task = tokio::spawn(crate::serve(listener, move |request: Request<Incoming>| {
        let (trail, upstream, client) = (serving.clone(), upstream.clone(), client.clone());
        async move { pass(&trail, &upstream, &client, request).await }
    }));
    Ok((format!("http://127.0.0.1:{port}"), trail, received, task))
}

/// Passes one call on to `upstream`; learns the session an `AssumeRole` made, or records the
/// call of a session it learnt.
async fn pass(
    trail: &Trail,
    upstream: &str,
    client: &reqwest::Client,
    request: Request<Incoming>,
) -> Response<Full<Bytes>> {
    let (access_key, region, service) = crate::recorder::credential_scope(&request);
    let target = request
        .headers()
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let user_agent = request
        .headers()
        .get("user-agent")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let query = request.uri().query().unwrap_or_default().to_owned();
    let path_and_query = request
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "/".to_owned());
    let headers = request.headers().clone();
    let body = jit_local::http::body_bytes(request).await;
    let url = format!("{upstream}{path_and_query}");
    let sent = crate::recorder::forward(client, &url, method.clone(), &headers, body.clone());
    let reply = match sent.await {
        Ok(reply) => reply,
        Err(unreachable) => return unreachable,
    };
    let status = reply.status();
    let reply_headers = reply.headers().clone();
    let answer = reply.bytes().await.unwrap_or_default();

    let form: HashMap<String, String> = if target.is_none() {
        url::form_urlencoded::parse(&body).into_owned().collect()
    } else {
        HashMap::new()
    };
    let operation = match (&target, form.get("Action")) {
        (Some(t), _) => t.rsplit('.').next().unwrap_or_default().to_owned(),
        (None, Some(action)) => action.clone(),
        (None, None) if service == "s3" => s3_operation(method.as_str(), &path, &query),
        (None, None) => format!("{method} {path}"),
    };
    if service == "sts"
        && operation == "AssumeRole"
        && status.is_success()
        && let (Some(key), Some(role), Some(name)) = (
            xml_field(&answer, "AccessKeyId"),
            form.get("RoleArn"),
            form.get("RoleSessionName"),
        )
    {
        trail.learn(
            key,
            Session {
                role_arn: role.clone(),
                session_name: name.clone(),
                source_identity: form.get("SourceIdentity").cloned(),
            },
        );
    }
    if let Some(session) = trail.session(&access_key) {
        let json_body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let call = RecordedCall {
            resources: resources(&service, &path, &json_body, &region, session.account()),
            service,
            operation,
            region,
            access_key,
            error_code: (!status.is_success())
                .then(|| error_code(&answer).unwrap_or_else(|| status.as_u16().to_string())),
            user_agent,
        };
        let at = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        let _ = trail.events.send(api_call_event(&session, &call, &at));
    }
    crate::recorder::answer_of(status, &reply_headers, answer)
}

/// Hands each recorded event to every function whose bus rule matches it, as EventBridge
/// would: each delivery retried three times, a second apart, then written to
/// `<binary>-dead-letters.jsonl` under `state_dir`.
pub(crate) fn deliver(
    mut events: mpsc::UnboundedReceiver<Value>,
    targets: Vec<(FunctionRuntime, Value)>,
    state_dir: PathBuf,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            for (function, pattern) in &targets {
                if !crate::stream::matches(pattern, &event) {
                    continue;
                }
                let (function, event) = (function.clone(), event.clone());
                let dead_letters =
                    state_dir.join(format!("{}-dead-letters.jsonl", function.name()));
                tokio::spawn(async move {
                    let mut last = String::new();
                    for attempt in 0..4 {
                        if attempt > 0 {
                            tokio::time::sleep(Duration::from_secs(1)).await;
                        }
                        match function.invoke(event.clone()).await {
                            Ok(_) => return,
                            Err(e) => last = e.to_string(),
                        }
                    }
                    tracing::warn!(function = %function.name(), error = %last, "an activity event was not delivered; set aside");
                    let line = format!("{}\n", json!({"error": last, "event": event}));
                    if let Ok(mut file) = tokio::fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(&dead_letters)
                        .await
                    {
                        let _ =
                            tokio::io::AsyncWriteExt::write_all(&mut file, line.as_bytes()).await;
                    }
                });
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_calls_are_named_as_cloudtrail_names_them() {
        for (method, path, query, want) in [
            ("GET", "/", "", "ListBuckets"),
            ("GET", "/logs", "list-type=2", "ListObjectsV2"),
            ("PUT", "/logs", "", "CreateBucket"),
            ("GET", "/logs/app/1.log", "", "GetObject"),
            ("PUT", "/logs/app/1.log", "", "PutObject"),
            ("DELETE", "/logs/app/1.log", "", "DeleteObject"),
        ] {
            assert_eq!(s3_operation(method, path, query), want, "{method} {path}");
        }
        assert!(read_only("GetObject") && read_only("ListBuckets"));
        assert!(!read_only("PutObject") && !read_only("DeleteRole"));
    }

    #[test]
    fn error_codes_come_from_json_and_xml_answers() {
        let json = br#"{"__type":"com.amazonaws.dynamodb.v20120810#AccessDeniedException","message":"no"}"#;
        assert_eq!(error_code(json).as_deref(), Some("AccessDeniedException"));
        let xml = b"<ErrorResponse><Error><Code>NoSuchEntity</Code></Error></ErrorResponse>";
        assert_eq!(error_code(xml).as_deref(), Some("NoSuchEntity"));
        assert_eq!(error_code(b"gibberish"), None);
    }
}

//! A recording pass-through in front of the emulator, one per function: every AWS call a
//! function's processes make goes through it and is kept (service, operation, request), so a
//! test can hold what the real binaries call against what their IAM policies allow.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response};
use serde_json::{Map, Value, json};
use tokio::net::TcpListener;

/// One AWS call as a function made it.
#[derive(Debug, Clone, PartialEq)]
pub struct AwsCall {
    /// The service, as the request was signed for (`dynamodb`, `kms`, `sts`, `iam`).
    pub service: String,
    /// The operation (`TransactWriteItems`, `Sign`, `AssumeRole`, ...).
    pub operation: String,
    /// The access key the call was signed with: the function's own, or one it assumed.
    pub access_key: String,
    /// The request: its JSON body, or its form fields for the query protocol.
    pub request: Value,
}

/// A fault the pass-through puts on one call, the way AWS and networks fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The service fails (500 `InternalFailure`); nothing happened.
    Fail,
    /// The service throttles (400 `ThrottlingException`); nothing happened.
    Throttle,
    /// No answer comes; the client's own timeout must give up.
    Timeout,
    /// The call is carried out, and its answer is lost (500 after the work was done).
    LoseAnswer,
    /// The service is down for a moment: this call and the next two (the SDK's standard
    /// retries of it) fail, so the function sees the failure itself.
    Outage,
    /// The service is down until the plan is taken away: this call and every one after it
    /// fail, however often the function retries.
    Down,
    /// The call is held this many milliseconds, then carried out: a slow call that widens a
    /// race window on purpose.
    Delay(u64),
}

impl Fault {
    /// Every kind of fault.
    pub const ALL: [Self; 5] = [
        Self::Fail,
        Self::Throttle,
        Self::Timeout,
        Self::LoseAnswer,
        Self::Outage,
    ];
}

#[derive(Debug, Default)]
struct Plan {
    /// (binary, the call from arming that gets it (1-based), fault)
    armed: Option<(String, usize, Fault)>,
    /// Only calls of this operation count, when set.
    operation: Option<String>,
    /// Calls `armed`'s binary made since arming.
    seen: usize,
    /// Whether the armed fault was used.
    fired: bool,
}

/// The calls of every recorded function, by binary, and the fault planned for one of them.
#[derive(Debug, Clone, Default)]
pub struct AwsCalls {
    calls: Arc<Mutex<BTreeMap<String, Vec<AwsCall>>>>,
    plan: Arc<Mutex<Plan>>,
}

impl AwsCalls {
    /// Puts `fault` on the `nth` call (from 1) `binary` makes from now on; replaces any other.
    pub fn arm(&self, binary: &str, nth: usize, fault: Fault) {
        *self.plan.lock().unwrap_or_else(PoisonError::into_inner) = Plan {
            armed: Some((binary.to_owned(), nth, fault)),
            ..Plan::default()
        };
    }

    /// Puts `fault` on the next `operation` call (`TransactWriteItems`, `PutRolePolicy`, ...)
    /// `binary` makes; replaces any other plan.
    pub fn arm_on(&self, binary: &str, operation: &str, fault: Fault) {
        *self.plan.lock().unwrap_or_else(PoisonError::into_inner) = Plan {
            armed: Some((binary.to_owned(), 1, fault)),
            operation: Some(operation.to_owned()),
            ..Plan::default()
        };
    }

    /// Takes the plan away; whether its fault was used.
    pub fn disarm(&self) -> bool {
        let mut plan = self.plan.lock().unwrap_or_else(PoisonError::into_inner);
        let fired = plan.fired;
        *plan = Plan::default();
        fired
    }

    /// The fault for `binary`'s next call (of `operation`), if this is the planned one.
    fn fault_for(&self, binary: &str, operation: &str) -> Option<Fault> {
        let mut plan = self.plan.lock().unwrap_or_else(PoisonError::into_inner);
        let (armed, nth, fault) = plan.armed.clone()?;
        if armed != binary || plan.operation.as_deref().is_some_and(|o| o != operation) {
            return None;
        }
        plan.seen += 1;
        let hit = match fault {
            Fault::Outage => (nth..nth.saturating_add(3)).contains(&plan.seen),
            Fault::Down => plan.seen >= nth,
            _ => plan.seen == nth,
        };
        hit.then(|| {
            plan.fired = true;
            match fault {
                Fault::Outage | Fault::Down => Fault::Fail,
                other => other,
            }
        })
    }

    /// Every call `binary` made so far.
    pub fn of(&self, binary: &str) -> Vec<AwsCall> {
        self.calls
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(binary)
            .cloned()
            .unwrap_or_default()
    }

    pub(crate) fn push(&self, binary: &str, call: AwsCall) {
        self.calls
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(binary.to_owned())
            .or_default()
            .push(call);
    }
}

/// What a signed request says about itself: its service and access key, from the
/// `Authorization` header's credential scope (`Credential=AKID/date/region/service/...`).
fn scope(request: &Request<Incoming>) -> (String, String) {
    let (key, _, service) = credential_scope(request);
    (service, key)
}

/// A signed request's access key, region and service, from its credential scope
/// (`Credential=AKID/date/region/service/aws4_request`).
pub(crate) fn credential_scope(request: &Request<Incoming>) -> (String, String, String) {
    let auth = request
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let credential = auth
        .split("Credential=")
        .nth(1)
        .and_then(|c| c.split(',').next())
        .unwrap_or_default();
    let mut parts = credential.split('/');
    let key = parts.next().unwrap_or_default().to_owned();
    let region = parts.nth(1).unwrap_or_default().to_owned();
    let service = parts.next().unwrap_or_default().to_owned();
    (key, region, service)
}

fn parse(body: &[u8], target: Option<&str>) -> (Option<String>, Value) {
    if let Some(target) = target {
        let operation = target.rsplit('.').next().map(str::to_owned);
        return (
            operation,
            serde_json::from_slice(body).unwrap_or(Value::Null),
        );
    }
    let fields: Map<String, Value> = url::form_urlencoded::parse(body)
        .map(|(k, v)| (k.into_owned(), Value::String(v.into_owned())))
        .collect();
    let operation = fields
        .get("Action")
        .and_then(Value::as_str)
        .map(str::to_owned);
    (operation, Value::Object(fields))
}

/// An S3 call (REST: the operation is in the method, path and query; path-style addressing,
/// as the functions use on loopback): its operation and `{Bucket, Key, Query, Headers}` with
/// the `x-amz-*` and conditional headers IAM's condition keys are made of.
fn s3_call(
    method: &hyper::Method,
    path: &str,
    headers: &hyper::HeaderMap,
) -> (Option<String>, Value) {
    let (path, query) = path.split_once('?').unwrap_or((path, ""));
    let mut parts = path.trim_start_matches('/').splitn(2, '/');
    let bucket = parts.next().unwrap_or_default().to_owned();
    let key = parts.next().filter(|k| !k.is_empty()).map(|k| {
        url::form_urlencoded::parse(format!("k={k}").as_bytes())
            .next()
            .map_or_else(|| k.to_owned(), |(_, v)| v.into_owned())
    });
    let subresource =
        |name: &str| url::form_urlencoded::parse(query.as_bytes()).any(|(k, _)| k == name);
    let operation = match (method.as_str(), key.is_some()) {
        ("PUT", true) if subresource("retention") => "PutObjectRetention",
        ("PUT", true) => "PutObject",
        ("GET", true) => "GetObject",
        ("HEAD", true) => "HeadObject",
        ("DELETE", true) => "DeleteObject",
        ("GET", false) if subresource("versions") => "ListObjectVersions",
        ("GET", false) => "ListObjectsV2",
        (m, _) => return (Some(format!("{m}Bucket")), json!({"Bucket": bucket})),
    };
    let kept: Map<String, Value> = headers
        .iter()
        .filter(|(name, _)| {
            let name = name.as_str();
            name.starts_with("x-amz-") && name != "x-amz-content-sha256" || name == "if-none-match"
        })
        .map(|(name, value)| {
            (
                name.as_str().to_owned(),
                Value::String(value.to_str().unwrap_or_default().to_owned()),
            )
        })
        .collect();
    (
        Some(operation.to_owned()),
        json!({"Bucket": bucket, "Key": key, "Query": query, "Headers": kept}),
    )
}

/// The error answer of `fault` in the protocol of the call: JSON for the services that name
/// their operation in `X-Amz-Target` (DynamoDB, KMS), XML for the query protocol (STS, IAM).
fn fault_answer(fault: Fault, json_protocol: bool) -> Response<Full<Bytes>> {
    let (status, code) = match fault {
        Fault::Throttle => (400, "ThrottlingException"),
        _ => (500, "InternalFailure"),
    };
    let (body, kind) = if json_protocol {
        let code = if code == "InternalFailure" {
            "com.amazonaws.dynamodb.v20120810#InternalServerError"
        } else {
            "com.amazonaws.dynamodb.v20120810#ThrottlingException"
        };
        (
            serde_json::json!({"__type": code, "message": "injected by the test"}).to_string(),
            "application/x-amz-json-1.0",
        )
    } else {
        let code = if code == "ThrottlingException" {
            "Throttling"
        } else {
            code
        };
        (
            format!(
                "<ErrorResponse><Error><Type>Receiver</Type><Code>{code}</Code>\
                 <Message>injected by the test</Message></Error>\
                 <RequestId>00000000-0000-0000-0000-000000000000</RequestId></ErrorResponse>"
            ),
            "text/xml",
        )
    };
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::BAD_GATEWAY);
    r.headers_mut().insert(
        "content-type",
        hyper::header::HeaderValue::from_static(kind),
    );
    r
}

/// Starts a pass-through to `upstream` that records `binary`'s calls into `calls`, and puts
/// on them the fault `calls` plans; its URL.
pub async fn start(
    binary: String,
    upstream: String,
    calls: AwsCalls,
) -> Result<(String, tokio::task::JoinHandle<()>), String> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| format!("recorder: {e}"))?;
    let port = listener
        .local_addr()
        .map_err(|e| format!("recorder: {e}"))?
        .port();
    let client = reqwest::Client::new();
    let task = tokio::spawn(super::serve(listener, move |request: Request<Incoming>| {
        let (binary, upstream, calls, client) = (
            binary.clone(),
            upstream.clone(),
            calls.clone(),
            client.clone(),
        );
        async move { record(&binary, &upstream, &calls, &client, request).await }
    }));
    Ok((format!("http://127.0.0.1:{port}"), task))
}

/// Records one call of `binary`, applies any fault planned for it, and passes it on to
/// `upstream`.
async fn record(
    binary: &str,
    upstream: &str,
    calls: &AwsCalls,
    client: &reqwest::Client,
    request: Request<Incoming>,
) -> Response<Full<Bytes>> {
    let (service, access_key) = scope(&request);
    let target = request
        .headers()
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let method = request.method().clone();
    let path = request
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "/".to_owned());
    let headers = request.headers().clone();
    let body = jit_local::http::body_bytes(request).await;
    let (operation, parsed) = if service == "s3" {
        s3_call(&method, &path, &headers)
    } else {
        parse(&body, target.as_deref())
    };
    let operation = operation.unwrap_or_default();
    let fault = calls.fault_for(binary, &operation);
    calls.push(
        binary,
        AwsCall {
            service,
            operation,
            access_key,
            request: parsed,
        },
    );
    match fault {
        Some(Fault::Delay(ms)) => {
            tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
        }
        Some(Fault::Timeout) => {
            // Longer than any client waits: the caller's timeout ends it.
            tokio::time::sleep(std::time::Duration::from_secs(60)).await;
            return fault_answer(Fault::Fail, target.is_some());
        }
        Some(f @ (Fault::Fail | Fault::Throttle)) => {
            return fault_answer(f, target.is_some());
        }
        _ => {}
    }
    let reply = match forward(client, &format!("{upstream}{path}"), method, &headers, body).await {
        Ok(reply) => reply,
        Err(unreachable) => return unreachable,
    };
    if fault == Some(Fault::LoseAnswer) {
        // The work is done upstream; the answer never reaches the caller.
        drop(reply);
        return fault_answer(Fault::Fail, target.is_some());
    }
    passed_back(reply).await
}

/// Sends a call on to `url` as it came (its method, headers but the connection's, body); the
/// upstream's answer, or a 502 saying why it could not be reached.
pub(crate) async fn forward(
    client: &reqwest::Client,
    url: &str,
    method: hyper::Method,
    headers: &hyper::HeaderMap,
    body: Bytes,
) -> Result<reqwest::Response, Response<Full<Bytes>>> {
    let mut request = client.request(method, url);
    for (name, value) in headers {
        if name != "host" && name != "content-length" {
            request = request.header(name, value);
        }
    }
    request.body(body).send().await.map_err(|e| {
        let mut r = Response::new(Full::new(Bytes::from(e.to_string())));
        *r.status_mut() = hyper::StatusCode::BAD_GATEWAY;
        r
    })
}

/// The upstream's answer, as the caller receives it.
async fn passed_back(reply: reqwest::Response) -> Response<Full<Bytes>> {
    let status = reply.status();
    let headers = reply.headers().clone();
    let bytes = reply.bytes().await.unwrap_or_default();
    answer_of(status, &headers, bytes)
}

/// An answer with `status`, `headers` (less those of the connection it came on) and `body`.
pub(crate) fn answer_of(
    status: hyper::StatusCode,
    headers: &hyper::HeaderMap,
    body: Bytes,
) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    for (name, value) in headers {
        if name != "content-length" && name != "transfer-encoding" && name != "connection" {
            response.headers_mut().insert(name, value.clone());
        }
    }
    response
}

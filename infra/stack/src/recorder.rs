//! A recording pass-through in front of the emulator, one per function: every AWS call a
//! function's processes make goes through it and is kept (service, operation, request), so a
//! test can hold what the real binaries call against what their IAM policies allow.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use serde_json::{Map, Value};
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

/// The calls of every recorded function, by binary.
#[derive(Debug, Clone, Default)]
pub struct AwsCalls(Arc<Mutex<BTreeMap<String, Vec<AwsCall>>>>);

impl AwsCalls {
    /// Every call `binary` made so far.
    pub fn of(&self, binary: &str) -> Vec<AwsCall> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(binary)
            .cloned()
            .unwrap_or_default()
    }

    fn push(&self, binary: &str, call: AwsCall) {
        self.0
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
    let service = parts.nth(2).unwrap_or_default().to_owned();
    (service, key)
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

/// Starts a pass-through to `upstream` that records `binary`'s calls into `calls`; its URL.
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
        async move {
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
            let body = request
                .into_body()
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            let (operation, parsed) = parse(&body, target.as_deref());
            calls.push(
                &binary,
                AwsCall {
                    service,
                    operation: operation.unwrap_or_default(),
                    access_key,
                    request: parsed,
                },
            );
            let mut forward = client.request(method, format!("{upstream}{path}"));
            for (name, value) in &headers {
                if name != "host" && name != "content-length" {
                    forward = forward.header(name, value);
                }
            }
            let reply = match forward.body(body).send().await {
                Ok(reply) => reply,
                Err(e) => {
                    let mut r = Response::new(Full::new(Bytes::from(e.to_string())));
                    *r.status_mut() = hyper::StatusCode::BAD_GATEWAY;
                    return r;
                }
            };
            let status = reply.status();
            let reply_headers = reply.headers().clone();
            let bytes = reply.bytes().await.unwrap_or_default();
            let mut response = Response::new(Full::new(bytes));
            *response.status_mut() = status;
            for (name, value) in &reply_headers {
                if name != "content-length" && name != "transfer-encoding" && name != "connection" {
                    response.headers_mut().insert(name, value.clone());
                }
            }
            response
        }
    }));
    Ok((format!("http://127.0.0.1:{port}"), task))
}

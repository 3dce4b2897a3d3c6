//! The Runtime API one instance calls: the next invocation, its response or error, and the
//! init error of an instance that could not start.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Instant;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use serde_json::{Value, json};

use super::{FunctionError, Idle, Invocation, Shared, lock};

fn reply(status: StatusCode, body: Value) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    response
}

fn no_such_path() -> Response<Full<Bytes>> {
    reply(
        StatusCode::NOT_FOUND,
        json!({"errorMessage": "no such path"}),
    )
}

/// One Runtime API request from instance `instance`.
pub(super) async fn runtime_api(
    s: &Arc<Shared>,
    instance: u64,
    took_any: &AtomicUsize,
    finishing: &AtomicBool,
    request: Request<Incoming>,
) -> Response<Full<Bytes>> {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let Some(rest) = path.strip_prefix("/2018-06-01/runtime/") else {
        return no_such_path();
    };
    match (method.as_str(), rest) {
        ("GET", "invocation/next") => next_invocation(s, instance, took_any, finishing).await,
        ("POST", "init/error") => init_error(s, request).await,
        ("POST", rest) => {
            let Some((id, what)) = rest
                .strip_prefix("invocation/")
                .and_then(|r| r.split_once('/'))
            else {
                return no_such_path();
            };
            let (id, what) = (id.to_owned(), what.to_owned());
            invocation_result(s, finishing, &id, &what, request).await
        }
        _ => no_such_path(),
    }
}

/// `GET invocation/next`: waits for the next invocation (one past its deadline times out
/// unseen) and hands it over with Lambda's headers.
async fn next_invocation(
    s: &Arc<Shared>,
    instance: u64,
    took_any: &AtomicUsize,
    finishing: &AtomicBool,
) -> Response<Full<Bytes>> {
    if took_any.fetch_add(1, Ordering::SeqCst) == 0 {
        if let Some(start) = lock(&s.starts).get_mut(&instance) {
            start.ready = Some(Instant::now());
        }
        s.starting.fetch_sub(1, Ordering::SeqCst);
        // It started: an earlier instance's init error no longer describes the function.
        *lock(&s.init_error) = None;
    }
    if finishing.swap(false, Ordering::SeqCst) {
        s.finishing.fetch_sub(1, Ordering::SeqCst);
    }
    let idle = Idle::new(&s.idle);
    let invocation: Invocation = loop {
        let next = s.receiver.lock().await.recv().await;
        let Some(invocation) = next else {
            return reply(StatusCode::GONE, json!({"errorMessage": "shutting down"}));
        };
        s.waiting.fetch_sub(1, Ordering::SeqCst);
        if invocation.deadline <= Instant::now() {
            let _ = invocation
                .reply
                .send(Err(FunctionError::TimedOut(s.def.timeout)));
            continue;
        }
        break invocation;
    };
    drop(idle);
    let arn = format!(
        "arn:aws:lambda:us-east-1:123456789012:function:{}",
        s.def.logical_id
    );
    lock(&s.in_flight).insert(invocation.id.clone(), (instance, invocation.reply));
    if let Some(start) = lock(&s.starts).get_mut(&instance) {
        start.first_handed.get_or_insert_with(Instant::now);
    }
    let mut response = Response::new(Full::new(Bytes::from(invocation.payload.to_string())));
    let headers = response.headers_mut();
    for (name, value) in [
        ("lambda-runtime-aws-request-id", invocation.id.clone()),
        (
            "lambda-runtime-deadline-ms",
            invocation.deadline_ms.to_string(),
        ),
        ("lambda-runtime-invoked-function-arn", arn),
        (
            "lambda-runtime-trace-id",
            format!(
                "Root=1-{}-{instance};Sampled=0",
                invocation.id.get(..8).unwrap_or("0")
            ),
        ),
        ("content-type", "application/json".to_owned()),
    ] {
        if let Ok(value) = value.parse() {
            headers.insert(name, value);
        }
    }
    response
}

/// `POST init/error`: the instance could not start; the waiting invocations are failed with
/// this reason.
async fn init_error(s: &Arc<Shared>, request: Request<Incoming>) -> Response<Full<Bytes>> {
    let body = body_json(request).await;
    let why = format!(
        "{}: {}",
        body.get("errorType")
            .and_then(Value::as_str)
            .unwrap_or("Runtime.InitError"),
        body.get("errorMessage")
            .and_then(Value::as_str)
            .unwrap_or("")
    );
    tracing::warn!(function = %s.def.binary, error = %why, "init error");
    *lock(&s.init_error) = Some(why);
    reply(StatusCode::ACCEPTED, json!({"status": "OK"}))
}

/// `POST invocation/{id}/response` or `.../error`: the invocation's outcome, to its caller.
async fn invocation_result(
    s: &Arc<Shared>,
    finishing: &AtomicBool,
    id: &str,
    what: &str,
    request: Request<Incoming>,
) -> Response<Full<Bytes>> {
    let answered = Instant::now();
    let Some((instance, waiting)) = lock(&s.in_flight).remove(id) else {
        return reply(
            StatusCode::BAD_REQUEST,
            json!({"errorMessage": "no such invocation", "errorType": "InvalidRequestID"}),
        );
    };
    let outcome = match what {
        "response" => {
            let bytes = jit_local::http::body_bytes(request).await;
            Ok(serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned())))
        }
        "error" => {
            let kind = request
                .headers()
                .get("lambda-runtime-function-error-type")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let body = body_json(request).await;
            Err(FunctionError::Handled {
                error_type: body
                    .get("errorType")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
                    .or(kind)
                    .unwrap_or_else(|| "Unhandled".into()),
                message: body
                    .get("errorMessage")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned(),
            })
        }
        _ => return no_such_path(),
    };
    if let Some(start) = lock(&s.starts).get_mut(&instance) {
        start.first_answered.get_or_insert(answered);
    }
    if !finishing.swap(true, Ordering::SeqCst) {
        s.finishing.fetch_add(1, Ordering::SeqCst);
    }
    let _ = waiting.send(outcome);
    reply(StatusCode::ACCEPTED, json!({"status": "OK"}))
}

async fn body_json(request: Request<Incoming>) -> Value {
    serde_json::from_slice(&jit_local::http::body_bytes(request).await).unwrap_or(Value::Null)
}

//! Lambda's `Invoke` API on loopback, one listener per calling function (its
//! `AWS_ENDPOINT_URL_LAMBDA`), so a function that invokes another (the activity function
//! handing a guardrail's revocation to the sweeper) reaches the other's real binary, and the
//! recorder knows who called.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::recorder::{AwsCall, AwsCalls};
use crate::{FunctionError, FunctionRuntime, StackError};

/// A listener for one function's Lambda calls, and its URL.
pub(crate) async fn bind() -> Result<(TcpListener, String), StackError> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| StackError::Setup(format!("lambda API: {e}")))?;
    let url = crate::start::url_of(&listener);
    Ok((listener, url))
}

/// Serves `POST /2015-03-31/functions/{name}/invocations` on `listener` for `caller`: `name`
/// is a function's logical id, name or ARN. Each call is recorded into `calls` when given.
pub(crate) fn serve(
    listener: TcpListener,
    caller: String,
    functions: Arc<HashMap<String, FunctionRuntime>>,
    calls: Option<AwsCalls>,
) -> JoinHandle<()> {
    tokio::spawn(crate::serve(listener, move |request: Request<Incoming>| {
        let (caller, functions, calls) = (caller.clone(), Arc::clone(&functions), calls.clone());
        async move { invoke(&caller, &functions, calls.as_ref(), request).await }
    }))
}

fn answer(status: u16, body: &Value, headers: &[(&'static str, &str)]) -> Response<Full<Bytes>> {
    let mut r = jit_local::http::reply(status, "application/json", body.to_string());
    for (name, value) in headers {
        if let Ok(v) = hyper::header::HeaderValue::from_str(value) {
            r.headers_mut().insert(*name, v);
        }
    }
    r
}

async fn invoke(
    caller: &str,
    functions: &HashMap<String, FunctionRuntime>,
    calls: Option<&AwsCalls>,
    request: Request<Incoming>,
) -> Response<Full<Bytes>> {
    let path = request.uri().path().to_owned();
    let name = path
        .strip_prefix("/2015-03-31/functions/")
        .and_then(|rest| rest.strip_suffix("/invocations"))
        .map(|n| {
            let n = urlencoding_decode(n);
            n.rsplit(':').next().unwrap_or(&n).to_owned()
        });
    let kind = request
        .headers()
        .get("x-amz-invocation-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("RequestResponse")
        .to_owned();
    let access_key = request
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|a| a.split("Credential=").nth(1))
        .and_then(|c| c.split('/').next())
        .unwrap_or_default()
        .to_owned();
    let body = jit_local::http::body_bytes(request).await;
    let Some(name) = name else {
        let problem = json!({"Type": "User", "Message": format!("no such operation: {path}")});
        return answer(
            404,
            &problem,
            &[("x-amzn-errortype", "UnknownOperationException")],
        );
    };
    if let Some(calls) = calls {
        calls.push(
            caller,
            AwsCall {
                service: "lambda".into(),
                operation: "Invoke".into(),
                access_key,
                request: json!({"FunctionName": name, "InvocationType": kind}),
            },
        );
    }
    let Some(function) = functions.get(&name).cloned() else {
        let problem = json!({"Type": "User", "Message": format!("Function not found: {name}")});
        return answer(
            404,
            &problem,
            &[("x-amzn-errortype", "ResourceNotFoundException")],
        );
    };
    let payload: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    if kind == "Event" {
        tokio::spawn(async move {
            if let Err(e) = function.invoke(payload).await {
                tracing::warn!(function = %function.name(), error = %e, "an asynchronous invocation failed");
            }
        });
        return answer(202, &Value::Null, &[]);
    }
    match function.invoke(payload).await {
        Ok(result) => answer(200, &result, &[("x-amz-executed-version", "$LATEST")]),
        Err(e) => {
            let error_type = match &e {
                FunctionError::Handled { error_type, .. } => error_type.clone(),
                FunctionError::Crashed(_) => "Runtime.ExitError".to_owned(),
                FunctionError::TimedOut(_) => "Sandbox.Timedout".to_owned(),
                FunctionError::InitFailed(_) => "Runtime.InitError".to_owned(),
            };
            let message = match &e {
                FunctionError::Handled { message, .. } => message.clone(),
                other => other.to_string(),
            };
            let body = json!({"errorType": error_type, "errorMessage": message});
            answer(
                200,
                &body,
                &[
                    ("x-amz-function-error", "Unhandled"),
                    ("x-amz-executed-version", "$LATEST"),
                ],
            )
        }
    }
}

/// A path segment with its `%XX` escapes decoded (a function ARN is sent encoded).
fn urlencoding_decode(text: &str) -> String {
    url::form_urlencoded::parse(text.as_bytes())
        .map(|(k, _)| k.into_owned())
        .collect()
}

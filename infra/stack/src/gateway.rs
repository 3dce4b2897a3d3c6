//! The HTTP API as API Gateway serves it: routes from the template, the JWT authorizer on
//! every route, the template's route throttle, payload format 2.0 events to the function, and
//! its answers when something goes wrong (401, 404, 413, 429, 500, 503, each with API
//! Gateway's own small JSON body and nothing of the function's error).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use serde_json::{Map, Value, json};

use crate::oidc::{Authorizer, gateway_claims};
use crate::runtime::{FunctionError, FunctionRuntime};
use crate::template::{Template, Throttle};
use crate::timings::Timings;

/// The largest request body API Gateway accepts.
const MAX_BODY: usize = 10 * 1024 * 1024;

/// The gateway in front of the functions.
pub struct Gateway {
    pub(crate) template: Arc<Template>,
    pub(crate) functions: HashMap<String, FunctionRuntime>,
    pub(crate) authorizer: Authorizer,
    pub(crate) timings: Timings,
    pub(crate) throttles: Throttles,
}

/// Each route's token bucket, as API Gateway keeps one per route under `DefaultRouteSettings`
/// (before the authorizer: a flood of bad tokens is throttled like any other).
#[derive(Debug, Default)]
pub(crate) struct Throttles {
    limit: Option<Throttle>,
    /// Routes with a throttle of their own (`RouteSettings`), by route key.
    own: std::collections::BTreeMap<String, Throttle>,
    /// Route key → (tokens left, when it was last filled).
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

impl Throttles {
    /// Buckets of `limit`, or of a route's `own` (none at all: every request passes).
    pub(crate) fn new(
        limit: Option<Throttle>,
        own: std::collections::BTreeMap<String, Throttle>,
    ) -> Self {
        Self {
            limit,
            own,
            buckets: Mutex::default(),
        }
    }

    /// Whether route `key` may take one more request now.
    fn admit(&self, key: &str) -> bool {
        let Some(limit) = self.own.get(key).copied().or(self.limit) else {
            return true;
        };
        let burst = f64::from(limit.burst);
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        let (tokens, filled) = buckets.entry(key.to_owned()).or_insert((burst, now));
        *tokens = (*tokens + now.duration_since(*filled).as_secs_f64() * limit.rate).min(burst);
        *filled = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

fn message(status: StatusCode, text: &str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(
        json!({ "message": text }).to_string(),
    )));
    *response.status_mut() = status;
    response.headers_mut().insert(
        "content-type",
        hyper::header::HeaderValue::from_static("application/json"),
    );
    response
}

fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

impl Gateway {
    /// Serves one request.
    pub async fn handle(&self, request: Request<Incoming>) -> Response<Full<Bytes>> {
        let started = Instant::now();
        let request_id = uuid::Uuid::now_v7().to_string();
        let mut response = self.serve(request, &request_id, started).await;
        if let Ok(id) = request_id.parse() {
            response.headers_mut().insert("apigw-requestid", id);
        }
        response
    }

    async fn serve(
        &self,
        request: Request<Incoming>,
        request_id: &str,
        started: Instant,
    ) -> Response<Full<Bytes>> {
        let method = request.method().as_str().to_owned();
        let path = request.uri().path().to_owned();
        let query = request.uri().query().unwrap_or("").to_owned();
        let Some((function, route, params)) = self.template.route(&method, &path) else {
            return message(StatusCode::NOT_FOUND, "Not Found");
        };
        if !self.throttles.admit(&route.key()) {
            tracing::info!(route = %route.key(), "throttled: the route's bucket is empty");
            self.timings
                .record(&format!("throttled {}", route.key()), Duration::ZERO);
            return message(StatusCode::TOO_MANY_REQUESTS, "Too Many Requests");
        }
        let claims = match self.authorize(route, &request) {
            Ok(claims) => claims,
            Err(why) => {
                tracing::info!(route = %route.key(), why = %why, "authorizer refused the request");
                return unauthorized(&why);
            }
        };
        let (headers, cookies) = headers_of(&request);
        let body = match Limited::new(request.into_body(), MAX_BODY).collect().await {
            Ok(body) => body.to_bytes(),
            Err(_) => return message(StatusCode::PAYLOAD_TOO_LARGE, "Request Entity Too Large"),
        };
        let mut event = event(
            &route.key(),
            &method,
            &path,
            &query,
            &headers,
            &body,
            request_id,
        );
        if let Some(e) = event.as_object_mut() {
            if let Some(claims) = &claims
                && let Some(context) = e.get_mut("requestContext").and_then(Value::as_object_mut)
            {
                context.insert(
                    "authorizer".into(),
                    json!({"jwt": {"claims": gateway_claims(claims), "scopes": null}}),
                );
            }
            if !cookies.is_empty() {
                e.insert("cookies".into(), Value::Array(cookies));
            }
            let query_params = query_parameters(&query);
            if !query_params.is_empty() {
                e.insert("queryStringParameters".into(), Value::Object(query_params));
            }
            if !params.is_empty() {
                e.insert("pathParameters".into(), json!(params));
            }
        }
        self.invoke(&function.binary, &route.key(), event, started)
            .await
    }

    /// The authorizer's verdict on the request's token: its claims, none for a route with
    /// `Authorizer: NONE` (which runs whatever the request carries, and whose function sees
    /// no authorizer context at all, as API Gateway sends it), or why it was refused.
    fn authorize(
        &self,
        route: &crate::template::Route,
        request: &Request<Incoming>,
    ) -> Result<Option<Map<String, Value>>, String> {
        if route.public {
            return Ok(None);
        }
        let identity = request
            .headers()
            .get(self.template.identity_header.as_str())
            .and_then(|v| v.to_str().ok());
        self.authorizer
            .check(identity, now_unix())
            .map(Some)
            .map_err(|why| why.to_string())
    }

    /// Runs the route's function with `event` and answers as API Gateway does: the
    /// function's answer, a 503 when it ran out of time, a 500 when it failed.
    async fn invoke(
        &self,
        binary: &str,
        route_key: &str,
        event: Value,
        started: Instant,
    ) -> Response<Full<Bytes>> {
        let Some(runtime) = self.functions.get(binary) else {
            return message(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error");
        };
        let invoked = Instant::now();
        let outcome = runtime.invoke(event).await;
        self.timings
            .record(&format!("function:{binary}"), invoked.elapsed());
        let response = match outcome {
            Ok(value) => to_response(&value),
            Err(FunctionError::TimedOut(_)) => {
                message(StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable")
            }
            Err(e) => {
                tracing::warn!(route = %route_key, error = %e, "the function failed; answering 500");
                message(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error")
            }
        };
        self.timings.record(
            "gateway",
            started.elapsed().saturating_sub(invoked.elapsed()),
        );
        response
    }
}

/// API Gateway's 401, with the challenge naming why.
fn unauthorized(why: &str) -> Response<Full<Bytes>> {
    let mut response = message(StatusCode::UNAUTHORIZED, "Unauthorized");
    let challenge =
        format!("Bearer scope=\"\" error=\"invalid_token\" error_description=\"{why}\"");
    if let Ok(value) = challenge.parse() {
        response.headers_mut().insert("www-authenticate", value);
    }
    response
}

/// The request's headers as payload 2.0 carries them (repeated ones joined with commas), and
/// its cookies apart.
fn headers_of(request: &Request<Incoming>) -> (Map<String, Value>, Vec<Value>) {
    let mut headers: Map<String, Value> = Map::new();
    let mut cookies = Vec::new();
    for (name, value) in request.headers() {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        if name == "cookie" {
            cookies.extend(value.split(';').map(|c| Value::String(c.trim().to_owned())));
            continue;
        }
        match headers.get_mut(name.as_str()) {
            Some(Value::String(existing)) => {
                existing.push(',');
                existing.push_str(&value);
            }
            _ => {
                headers.insert(name.as_str().to_owned(), Value::String(value));
            }
        }
    }
    (headers, cookies)
}

/// The query string's parameters, repeated ones joined with commas.
fn query_parameters(query: &str) -> Map<String, Value> {
    let mut params: Map<String, Value> = Map::new();
    for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
        match params.get_mut(k.as_ref()) {
            Some(Value::String(existing)) => {
                existing.push(',');
                existing.push_str(&v);
            }
            _ => {
                params.insert(k.into_owned(), Value::String(v.into_owned()));
            }
        }
    }
    params
}

/// The payload 2.0 event for a request: the route, the raw path and query, the headers,
/// the request context, and the body (base64 when it is not UTF-8 text, or is a form, as an
/// HTTP API delivers Slack's requests).
fn event(
    route_key: &str,
    method: &str,
    path: &str,
    query: &str,
    headers: &Map<String, Value>,
    body: &[u8],
    request_id: &str,
) -> Value {
    let form = headers
        .get("content-type")
        .and_then(Value::as_str)
        .is_some_and(|t| t.starts_with("application/x-www-form-urlencoded"));
    let (body, encoded) = match std::str::from_utf8(body) {
        _ if body.is_empty() => (Value::Null, false),
        Ok(_) if form => (Value::String(STANDARD.encode(body)), true),
        Ok(text) => (Value::String(text.to_owned()), false),
        Err(_) => (Value::String(STANDARD.encode(body)), true),
    };
    let host = headers
        .get("host")
        .and_then(Value::as_str)
        .unwrap_or("127.0.0.1")
        .to_owned();
    let epoch_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    let time = time::OffsetDateTime::now_utc()
        .format(time::macros::format_description!(
            "[day]/[month repr:short]/[year]:[hour]:[minute]:[second] +0000"
        ))
        .unwrap_or_default();
    json!({
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": path,
        "rawQueryString": query,
        "headers": headers,
        "requestContext": {
            "accountId": "111111111111",
            "apiId": "local",
            "domainName": host,
            "domainPrefix": host.split('.').next().unwrap_or("local"),
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": headers.get("user-agent").cloned().unwrap_or(Value::Null),
            },
            "requestId": request_id,
            "routeKey": route_key,
            "stage": "$default",
            "time": time,
            "timeEpoch": epoch_ms,
        },
        "body": body,
        "isBase64Encoded": encoded,
    })
}

/// A payload 2.0 response as API Gateway turns it into HTTP: with `statusCode`, as given;
/// without, the whole value as a 200 JSON body; anything malformed, a 500.
fn to_response(value: &Value) -> Response<Full<Bytes>> {
    let Some(object) = value.as_object().filter(|o| o.contains_key("statusCode")) else {
        let mut response = Response::new(Full::new(Bytes::from(value.to_string())));
        response.headers_mut().insert(
            "content-type",
            hyper::header::HeaderValue::from_static("application/json"),
        );
        return response;
    };
    let malformed = || message(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error");
    let Some(status) = object
        .get("statusCode")
        .and_then(Value::as_u64)
        .and_then(|s| u16::try_from(s).ok())
        .and_then(|s| StatusCode::from_u16(s).ok())
    else {
        return malformed();
    };
    let body = object.get("body").and_then(Value::as_str).unwrap_or("");
    let body = if object.get("isBase64Encoded").and_then(Value::as_bool) == Some(true) {
        match STANDARD.decode(body) {
            Ok(bytes) => Bytes::from(bytes),
            Err(_) => return malformed(),
        }
    } else {
        Bytes::from(body.to_owned())
    };
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    if let Some(map) = object.get("headers").and_then(Value::as_object) {
        for (k, v) in map {
            let text = v.as_str().map_or_else(|| v.to_string(), str::to_owned);
            if let (Ok(name), Ok(value)) = (
                hyper::header::HeaderName::from_bytes(k.as_bytes()),
                text.parse(),
            ) {
                headers.insert(name, value);
            }
        }
    }
    if let Some(list) = object.get("cookies").and_then(Value::as_array) {
        for cookie in list.iter().filter_map(Value::as_str) {
            if let Ok(value) = cookie.parse() {
                headers.append("set-cookie", value);
            }
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn function_answers_become_http_as_api_gateway_makes_them() {
        let r = to_response(
            &json!({"statusCode": 201, "headers": {"content-type": "application/problem+json"}, "body": "{}"}),
        );
        assert_eq!(r.status(), 201);
        assert_eq!(r.headers()["content-type"], "application/problem+json");
        let r = to_response(&json!({"hello": "world"}));
        assert_eq!(r.status().as_u16(), 200);
        assert_eq!(r.headers()["content-type"], "application/json");
        for bad in [
            json!({"statusCode": "two hundred"}),
            json!({"statusCode": 99}),
            json!({"statusCode": 200, "isBase64Encoded": true, "body": "%%%"}),
        ] {
            assert_eq!(to_response(&bad).status(), 500, "{bad}");
        }
    }
}

//! Lambda events shaped exactly as AWS delivers them, built from recorded fixtures: API
//! Gateway HTTP API requests (payload 2.0, JWT authorizer) and DynamoDB stream records. Tests
//! use them to drive handlers; the local stack uses them to invoke the real functions.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value, json};

const HTTP_API_EVENT: &str = include_str!("../fixtures/http-api-jwt.json");
const STREAM_RECORD: &str = include_str!("../fixtures/dynamodb-stream-record.json");

/// A caller as the JWT authorizer would pass it: subject and groups.
#[derive(Debug, Clone, Copy)]
pub struct Claims<'a> {
    /// The `sub` claim.
    pub sub: &'a str,
    /// The groups, passed in API Gateway's bracketed form.
    pub groups: &'a [&'a str],
}

fn parse(fixture: &str) -> Value {
    // The fixtures are part of this crate and parsed by its tests; an error is a broken build.
    serde_json::from_str(fixture).unwrap_or(Value::Null)
}

/// Sets the member at `path`, making objects along the way (and replacing non-objects).
fn set(value: &mut Value, path: &[&str], new: Value) {
    let mut at = value;
    for key in path {
        if !at.is_object() {
            *at = Value::Object(Map::new());
        }
        let Some(object) = at.as_object_mut() else {
            return;
        };
        at = object.entry((*key).to_owned()).or_insert(Value::Null);
    }
    *at = new;
}

/// An HTTP API event for `route` on `path` with no caller, no body and no headers: what an
/// unauthenticated request would look like.
pub fn anonymous_event(route: &str, path: &str) -> Value {
    http_api_event(None, route, path, None, &[])
}

/// An HTTP API event for `route` (`POST /requests/{id}/cancel`) matched on `path` (which may
/// carry a query string), with `claims` from the authorizer or none at all.
pub fn http_api_event(
    claims: Option<Claims<'_>>,
    route: &str,
    path: &str,
    body: Option<&str>,
    headers: &[(&str, &str)],
) -> Value {
    let mut e = parse(HTTP_API_EVENT);
    let (method, template) = route.split_once(' ').unwrap_or(("GET", route));
    let (raw_path, raw_query) = path.split_once('?').unwrap_or((path, ""));
    set(&mut e, &["routeKey"], json!(route));
    set(&mut e, &["requestContext", "routeKey"], json!(route));
    set(&mut e, &["rawPath"], json!(raw_path));
    set(&mut e, &["requestContext", "http", "method"], json!(method));
    set(&mut e, &["requestContext", "http", "path"], json!(raw_path));
    set(&mut e, &["rawQueryString"], json!(raw_query));
    if !raw_query.is_empty() {
        let params: Map<String, Value> = raw_query
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_owned(), json!(v)))
            .collect();
        set(&mut e, &["queryStringParameters"], Value::Object(params));
    }
    let params: Map<String, Value> = template
        .split('/')
        .zip(raw_path.split('/'))
        .filter_map(|(t, p)| {
            let name = t.strip_prefix('{')?.strip_suffix('}')?;
            Some((name.to_owned(), json!(p)))
        })
        .collect();
    if !params.is_empty() {
        set(&mut e, &["pathParameters"], Value::Object(params));
    }
    match body {
        Some(b) => {
            set(&mut e, &["body"], json!(b));
            set(
                &mut e,
                &["headers", "content-length"],
                json!(b.len().to_string()),
            );
        }
        None => set(&mut e, &["body"], Value::Null),
    }
    for (k, v) in headers {
        set(&mut e, &["headers", k], json!(v));
    }
    authorize(&mut e, claims, headers);
    e
}

/// The authorizer's part of an event: the caller's claims and a bearer token carrying them
/// (unless `headers` give one), or, with no caller, neither.
fn authorize(e: &mut Value, claims: Option<Claims<'_>>, headers: &[(&str, &str)]) {
    match claims {
        Some(c) => {
            let claim = |name| ["requestContext", "authorizer", "jwt", "claims", name];
            set(e, &claim("sub"), json!(c.sub));
            set(e, &claim("email"), json!(format!("{}@example.com", c.sub)));
            set(
                e,
                &claim("groups"),
                json!(format!("[{}]", c.groups.join(" "))),
            );
            // The bearer token the authorizer verified, carrying the same claims (with the
            // groups as the array the identity provider sent); its signature is not read
            // past the authorizer.
            let mut payload = e
                .pointer("/requestContext/authorizer/jwt/claims")
                .cloned()
                .unwrap_or_default();
            for time in ["iat", "exp"] {
                let seconds = payload.get(time).and_then(Value::as_str);
                if let Some(n) = seconds.and_then(|t| t.parse::<u64>().ok()) {
                    set(&mut payload, &[time], json!(n));
                }
            }
            set(&mut payload, &["groups"], json!(c.groups));
            if !headers
                .iter()
                .any(|(k, _)| k.eq_ignore_ascii_case("authorization"))
            {
                set(e, &["headers", "authorization"], json!(bearer(&payload)));
            }
        }
        None => {
            if let Some(ctx) = e.get_mut("requestContext").and_then(Value::as_object_mut) {
                ctx.remove("authorizer");
            }
            if let Some(h) = e.get_mut("headers").and_then(Value::as_object_mut) {
                h.remove("authorization");
            }
        }
    }
}

/// `Bearer <token>` for a JWT with `payload` and a placeholder signature.
pub fn bearer(payload: &Value) -> String {
    let part = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
    format!(
        "Bearer {}.{}.c2lnbmF0dXJl",
        part(&json!({"alg": "RS256", "kid": "local"})),
        part(payload)
    )
}

/// An item in DynamoDB's JSON form (`{"S": "..."}`), as stream records carry it.
pub fn dynamodb_json(item: &HashMap<String, AttributeValue>) -> Value {
    let item: serde_dynamo::Item = item.clone().into();
    serde_json::to_value(item).unwrap_or(Value::Null)
}

/// One stream record: `event_name` (`INSERT`, `MODIFY`, `REMOVE`) of the item with `keys`,
/// with its new image (DynamoDB JSON) and sequence number.
pub fn stream_record(event_name: &str, keys: Value, new_image: Value, sequence: u64) -> Value {
    let mut r = parse(STREAM_RECORD);
    set(&mut r, &["eventID"], json!(format!("{sequence:032x}")));
    set(&mut r, &["eventName"], json!(event_name));
    set(&mut r, &["dynamodb", "Keys"], keys);
    set(&mut r, &["dynamodb", "NewImage"], new_image);
    set(
        &mut r,
        &["dynamodb", "SequenceNumber"],
        json!(format!("{sequence:028}")),
    );
    r
}

/// The record DynamoDB's stream carries for a newly put item.
pub fn stream_insert(item: &HashMap<String, AttributeValue>, sequence: u64) -> Value {
    let image = dynamodb_json(item);
    let key = |name: &str| image.get(name).cloned().unwrap_or(Value::Null);
    let keys = json!({"pk": key("pk"), "sk": key("sk")});
    stream_record("INSERT", keys, image, sequence)
}

/// A batch as Lambda delivers it to a stream-triggered function.
pub fn stream_batch(records: Vec<Value>) -> Value {
    json!({ "Records": records })
}

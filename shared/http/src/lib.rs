//! What every API function shares: the caller from API Gateway's JWT authorizer (and from
//! nowhere else), RFC 9457 problems, JSON bodies within a size limit, query parameters, and
//! the conversion between API Gateway's event and response JSON and `http` types.

pub mod metric;
mod problem;
pub mod startup;

use std::collections::HashMap;

use lambda_http::http::{HeaderValue, StatusCode};
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};
use serde::Deserialize;

use jit_core::clock::Timestamp;
use jit_core::identity::Caller;

pub use jit_api::Route;
pub use problem::Problem;

/// The largest request body accepted.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// The route API Gateway matched (`POST /requests/{id}/reviews`), if it says.
pub fn route_key(request: &Request) -> Option<&str> {
    match request.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(ctx)) => ctx.route_key.as_deref(),
        _ => None,
    }
}

/// The route this request is for, with its `{id}` or `{file}`: from the route key API Gateway
/// matched when it says, else by matching the method and path (for callers without a gateway).
pub fn route(request: &Request) -> Option<Route<'_>> {
    if let Some(key) = route_key(request).filter(|k| *k != "$default") {
        let parameter = path_parameter(request, "id").or_else(|| path_parameter(request, "file"));
        return Route::of_key(key, parameter);
    }
    Route::of_path(request.method().as_str(), request.uri().path())
}

/// What a handler answers: a response, or the problem that stopped it.
pub type Reply = Result<Response<Body>, Problem>;

/// One authenticated API call: the request, its caller (from the authorizer's claims only)
/// and the time it is judged at.
pub struct Call<'a> {
    /// The request as API Gateway passed it.
    pub request: &'a Request,
    /// Who is calling.
    pub caller: Caller,
    /// When the call is judged.
    pub now: Timestamp,
}

impl<'a> Call<'a> {
    /// The call, or 401 when the authorizer's claims name nobody.
    pub fn new(request: &'a Request, groups_claim: &str, now: Timestamp) -> Result<Self, Problem> {
        let caller = caller(request, groups_claim)?;
        Ok(Self {
            request,
            caller,
            now,
        })
    }
}

/// The response for a handler's outcome; server-side failures are logged.
pub fn respond(outcome: Reply) -> Response<Body> {
    match outcome {
        Ok(response) => response,
        Err(problem) => {
            if problem.status.is_server_error() {
                tracing::warn!(status = %problem.status, detail = %problem.detail, "request failed");
            }
            problem.into_response()
        }
    }
}

/// A path parameter API Gateway extracted.
pub fn path_parameter<'a>(request: &'a Request, name: &str) -> Option<&'a str> {
    request.path_parameters_ref().and_then(|p| p.first(name))
}

/// The claims API Gateway's JWT authorizer verified and passed in the request context.
fn authorizer_claims(request: &Request) -> Option<&HashMap<String, String>> {
    match request.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(ctx)) => ctx
            .authorizer
            .as_ref()
            .and_then(|a| a.jwt.as_ref())
            .map(|jwt| &jwt.claims),
        _ => None,
    }
}

/// A claim the JWT authorizer verified, as it passed it (a string).
pub fn claim<'a>(request: &'a Request, name: &str) -> Option<&'a str> {
    authorizer_claims(request)
        .and_then(|claims| claims.get(name))
        .map(String::as_str)
}

/// The caller, from the JWT authorizer's claims in the request context only.
pub fn caller(request: &Request, groups_claim: &str) -> Result<Caller, Problem> {
    let Some(claims) = authorizer_claims(request) else {
        return Err(Problem::unauthenticated(
            "the request carries no verified identity; call through the API with a valid token",
        ));
    };
    // API Gateway joins repeated headers with commas: only a single token can be the one the
    // authorizer verified.
    let mut headers = request.headers().get_all("authorization").iter();
    let authorization = match (headers.next(), headers.next()) {
        (Some(only), None) => only.to_str().ok().filter(|v| !v.contains(',')),
        _ => None,
    };
    Caller::from_authorizer(claims, authorization, groups_claim)
        .map_err(|e| Problem::unauthenticated(e.to_string()))
}

/// A JSON response with `status`.
pub fn json(status: StatusCode, value: &impl serde::Serialize) -> Response<Body> {
    // The wire types are plain data: serialising them cannot fail.
    let text = serde_json::to_string(value).unwrap_or_default();
    let mut response = Response::new(Body::from(text));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert("content-type", HeaderValue::from_static("application/json"));
    response
}

/// Whether a `Content-Type` value names JSON: the media type before any parameters is
/// `application/json`, compared without regard to case (RFC 9110 section 8.3.1).
fn is_json_media_type(value: &str) -> bool {
    let essence = value.split(';').next().unwrap_or("").trim();
    essence.eq_ignore_ascii_case("application/json")
}

/// The request body as text, refusing oversize or non-JSON bodies.
pub fn body_text(request: &Request) -> Result<&str, Problem> {
    if let Some(kind) = request.headers().get("content-type") {
        let kind = kind.to_str().unwrap_or("");
        if !kind.is_empty() && !is_json_media_type(kind) {
            return Err(Problem::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                format!("send the body as application/json, not `{kind}`"),
            ));
        }
    }
    let bytes: &[u8] = request.body().as_ref();
    if bytes.len() > MAX_BODY_BYTES {
        return Err(Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body-too-large",
            format!(
                "the body is {} bytes; at most {MAX_BODY_BYTES} are accepted",
                bytes.len()
            ),
        ));
    }
    std::str::from_utf8(bytes).map_err(|_| Problem::bad_request("the body is not UTF-8 text"))
}

/// Parses a JSON body, saying whether it was not JSON at all or had the wrong fields.
pub fn parse_body<T: for<'de> Deserialize<'de>>(text: &str) -> Result<T, Problem> {
    serde_json::from_str(text).map_err(|e| {
        let what = if e.is_syntax() || e.is_eof() {
            "the body is not valid JSON"
        } else {
            "the body does not have the expected fields"
        };
        Problem::bad_request(format!("{what}: {e}"))
    })
}

/// A JSON body that may be left out: an empty body reads as the default.
pub fn optional_body<T: Default + for<'de> Deserialize<'de>>(
    request: &Request,
) -> Result<T, Problem> {
    let text = body_text(request)?;
    if text.trim().is_empty() {
        Ok(T::default())
    } else {
        parse_body(text)
    }
}

/// A duration as a body gives it: a whole number of seconds, or text such as `1h30m`.
pub fn duration_of(value: &serde_json::Value) -> Result<jit_core::domain::GrantDuration, Problem> {
    use jit_core::domain::GrantDuration;
    use serde_json::Value;
    let parsed = match value {
        Value::Number(n) => match n.as_u64() {
            Some(secs) => GrantDuration::from_secs(secs),
            None => {
                return Err(Problem::invalid(format!(
                    "duration `{n}` is not a whole number of seconds"
                )));
            }
        },
        Value::String(text) => GrantDuration::parse(text),
        other => {
            return Err(Problem::invalid(format!(
                "duration must be a number of seconds or text such as `1h30m`, not `{other}`"
            )));
        }
    };
    parsed.map_err(|e| Problem::invalid(e.to_string()))
}

/// One query-string parameter, if given.
pub fn query<'a>(request: &'a Request, name: &str) -> Option<&'a str> {
    request
        .query_string_parameters_ref()
        .and_then(|q| q.first(name))
}

/// The 404 for a path no route serves.
pub fn no_such_route(request: &Request) -> Problem {
    Problem::new(
        StatusCode::NOT_FOUND,
        "no-such-route",
        format!(
            "there is no route `{} {}`",
            request.method(),
            request.uri().path()
        ),
    )
}

/// An HTTP API request (payload format 2.0) as Lambda delivers it, for the functions' typed
/// event enums.
pub use aws_lambda_events::event::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};

/// The `http` request a payload 2.0 event stands for.
pub fn into_request(event: ApiGatewayV2httpRequest) -> Request {
    lambda_http::request::LambdaRequest::ApiGatewayV2(event).into()
}

/// A response as the payload 2.0 answer API Gateway reads.
pub fn into_response_event(response: &Response<Body>) -> ApiGatewayV2httpResponse {
    let mut event = ApiGatewayV2httpResponse::default();
    event.status_code = i64::from(response.status().as_u16());
    event.headers = response.headers().clone();
    let body: &[u8] = response.body().as_ref();
    event.body = Some(Body::Text(String::from_utf8_lossy(body).into_owned()));
    event
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_media_types_are_matched_without_regard_to_case_and_parameters() {
        for (value, json) in [
            ("application/json", true),
            ("application/json; charset=utf-8", true),
            ("Application/JSON; charset=UTF-8", true),
            ("  APPLICATION/json ;charset=utf-8", true),
            ("application/jsonx", false),
            ("application/json-patch+json", false),
            ("text/json", false),
            ("application/x-www-form-urlencoded", false),
        ] {
            assert_eq!(is_json_media_type(value), json, "{value}");
        }
    }
}

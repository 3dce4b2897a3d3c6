//! RFC 9457 problem details: every refusal says what went wrong and what to fix.

use lambda_http::http::StatusCode;
use lambda_http::{Body, Response};
use serde_json::{Map, Value, json};

use jit_core::cases::Refusal;
use jit_core::clock::Timestamp;
use jit_core::domain::{Grant, TransitionError};
use jit_core::store::StoreError;
use jit_core::trust::{EvidenceBreak, SignError};

/// A refusal or failure, rendered as `application/problem+json`.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    /// The HTTP status.
    pub status: StatusCode,
    /// A short, stable name for the kind of problem (the end of its `type` URI).
    pub kind: &'static str,
    /// What happened and what to do, for this occurrence.
    pub detail: String,
    /// Extra members, such as the id of a conflicting request.
    pub extra: Map<String, Value>,
}

impl Problem {
    /// A problem of `kind` with `status` and `detail`.
    pub fn new(status: StatusCode, kind: &'static str, detail: impl Into<String>) -> Self {
        Self {
            status,
            kind,
            detail: detail.into(),
            extra: Map::new(),
        }
    }

    /// Adds a member to the problem body.
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.extra.insert(key.to_owned(), value.into());
        self
    }

    /// 400: the request itself is malformed.
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad-request", detail)
    }

    /// 422: well-formed, but a value is not acceptable.
    pub fn invalid(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid-value", detail)
    }

    /// 401: no verified identity.
    pub fn unauthenticated(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthenticated", detail)
    }

    /// 403: the rules do not permit it.
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", detail)
    }

    /// 404: nothing the caller may see is there.
    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not-found",
            format!("no {what} with that id is visible to you"),
        )
    }

    /// 409: the request's state does not allow it.
    pub fn conflict(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", detail)
    }

    /// 409 `target-not-isolated`: the deployment refuses the target (its role is in the
    /// broker's own account without the opt-in, or elsewhere without a revoker role); `detail`
    /// names where it is declared and what to change.
    pub fn target_not_isolated(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "target-not-isolated", detail)
    }

    /// 503: a dependency failed; nothing was changed.
    pub fn unavailable(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", detail)
    }

    /// The response to send.
    pub fn into_response(self) -> Response<Body> {
        let mut body = Map::new();
        body.insert(
            "type".into(),
            json!(format!("urn:jit-access:problem:{}", self.kind)),
        );
        body.insert(
            "title".into(),
            json!(self.status.canonical_reason().unwrap_or("Error")),
        );
        body.insert("status".into(), json!(self.status.as_u16()));
        body.insert("detail".into(), json!(self.detail));
        body.extend(self.extra);
        let mut response = Response::new(Body::from(Value::Object(body).to_string()));
        *response.status_mut() = self.status;
        response.headers_mut().insert(
            "content-type",
            lambda_http::http::HeaderValue::from_static("application/problem+json"),
        );
        response
    }
}

impl From<StoreError> for Problem {
    fn from(e: StoreError) -> Self {
        match &e {
            StoreError::Conflict { .. } => Self::conflict(e.to_string()),
            StoreError::AlreadyOpen { existing } => {
                Self::conflict(e.to_string()).with("existing", existing.as_str())
            }
            StoreError::AlreadyExists { .. } => Self::conflict(e.to_string()),
            StoreError::IdempotencyKeyReused { .. } => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency-key-reused",
                e.to_string(),
            ),
            StoreError::BadCursor => Self::bad_request(e.to_string()),
            StoreError::Corrupt { .. } => {
                tracing::error!(error = %e, "stored data cannot be read");
                Self::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "stored data could not be read; the operators have been alerted",
                )
            }
            StoreError::Unavailable { .. } => {
                tracing::warn!(error = %e, "database unavailable");
                Self::unavailable(e.to_string())
            }
            StoreError::Refused { cause } => {
                tracing::error!(error = %e, code = ?cause.code(), "the database refused the call: the deployment needs fixing");
                Self::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "misconfigured",
                    format!(
                        "the database refused the request ({}): the function's permissions or the table are misconfigured; the operators have been alerted, retrying will not help",
                        cause.code().unwrap_or("refused")
                    ),
                )
            }
            // Reconciles retry this themselves; should it ever reach a caller, retrying helps.
            StoreError::LedgerMoved { .. } | StoreError::CheckpointTaken { .. } => {
                Self::unavailable(e.to_string())
            }
        }
    }
}

impl From<TransitionError> for Problem {
    fn from(e: TransitionError) -> Self {
        match &e {
            TransitionError::NotPermitted { .. } => Self::forbidden(e.to_string()),
            // What was asked for is too much, whatever the grant's state.
            TransitionError::BeyondLimit { .. } => Self::invalid(e.to_string()),
            // Scheduled access: say when to come back.
            TransitionError::NotYetOpen { opens_at, .. } => {
                Self::new(StatusCode::CONFLICT, "not-yet-open", e.to_string())
                    .with("opens_at", opens_at.to_rfc3339())
            }
            _ => Self::conflict(e.to_string()),
        }
    }
}

impl From<Refusal> for Problem {
    fn from(refusal: Refusal) -> Self {
        match refusal {
            Refusal::Invalid(detail) => Self::invalid(detail),
            Refusal::NotFound(noun) => Self::not_found(noun.as_str()),
            Refusal::Forbidden { why, policies } => {
                let problem = Self::forbidden(why);
                match policies {
                    Some(policies) => problem.with("policies", policies),
                    None => problem,
                }
            }
            Refusal::Transition(e) => e.into(),
            Refusal::Unverified {
                grant,
                broken,
                at,
                nothing_done,
            } => evidence_refused(&grant, &broken, at, nothing_done),
            Refusal::NotIsolated(detail) => {
                tracing::error!(why = %detail, "refused: target not isolated from the broker");
                Self::target_not_isolated(detail)
            }
            Refusal::TargetChanged(detail) => {
                tracing::warn!(why = %detail, "grant refused: its target changed");
                Self::new(StatusCode::CONFLICT, "target-changed", detail)
            }
            refusal @ Refusal::KeptChanging(_) => Self::conflict(refusal.to_string()),
            refusal @ Refusal::KeysUnreadable {
                cause: SignError::Unavailable(_),
                ..
            } => {
                tracing::warn!(error = %refusal, "public keys unavailable");
                Self::unavailable(format!("{refusal}; try again"))
            }
            refusal @ Refusal::KeysUnreadable { .. } => {
                tracing::error!(error = %refusal, "KMS refused the public keys: the deployment needs fixing");
                Self::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "misconfigured",
                    format!(
                        "{refusal}: the function's permissions or the keys are misconfigured; the operators have been alerted, retrying will not help"
                    ),
                )
            }
            Refusal::Store(e) => e.into(),
        }
    }
}

/// Refuses to act on a grant whose evidence does not verify: an error log, the
/// `EvidenceRejected` metric (CloudWatch Embedded Metric Format, which the template alarms on),
/// and 409 `evidence-unverified` saying nothing was done.
fn evidence_refused(
    grant: &Grant,
    broken: &EvidenceBreak,
    now: Timestamp,
    nothing_done: &str,
) -> Problem {
    tracing::error!(
        grant = %grant.id,
        requester = %grant.requester,
        problem = %broken,
        "grant refused: its record failed verification; the table was written outside the functions"
    );
    let metric = crate::metric::count(
        "EvidenceRejected",
        1,
        now,
        &[],
        &[
            ("GrantId", grant.id.as_str()),
            ("Target", grant.target.as_str()),
        ],
    );
    println!("{metric}");
    Problem::new(
        StatusCode::CONFLICT,
        "evidence-unverified",
        format!(
            "this grant's record failed verification ({broken}); {nothing_done}. Its audit \
             trail was changed outside the system: tell your security team"
        ),
    )
}

//! The broker's HTTP API as the command sees it: where it is, who is calling, and every
//! failure turned into a message that says what to do and an exit code scripts can test.

use serde_json::Value;

/// Why a command failed; each maps to one documented exit code.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// Something the caller must fix in how they called `jit` or in its configuration.
    #[error("{0}")]
    Usage(String),
    /// No token, or the API refused it.
    #[error("{0}")]
    SignIn(String),
    /// The API refused: not permitted, or no such request or grant.
    #[error("{0}")]
    Refused(String),
    /// The request or grant is not in a state that allows this.
    #[error("{0}")]
    Conflict(String),
    /// The API could not be reached or was unavailable.
    #[error("{0}")]
    Unreachable(String),
    /// An audit export does not verify.
    #[error("{0}")]
    Tampered(String),
    /// The caller has no active grant for the target.
    #[error("{0}")]
    NoGrant(String),
    /// Anything else (a local file that cannot be written, an unexpected answer).
    #[error("{0}")]
    Other(String),
}

impl Failure {
    /// The exit code: documented in the README and in `jit --help`.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Other(_) => 1,
            Self::Usage(_) => 2,
            Self::SignIn(_) => 3,
            Self::Refused(_) => 4,
            Self::Conflict(_) => 5,
            Self::Unreachable(_) => 6,
            Self::Tampered(_) => 7,
            Self::NoGrant(_) => 8,
        }
    }
}

/// The API and the caller's token.
pub struct Api {
    base: String,
    token: Option<String>,
    http: reqwest::Client,
}

impl Api {
    /// The API at `base`, calling as `token`.
    pub fn new(base: &str, token: Option<String>) -> Result<Self, Failure> {
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(30))
            .build()
            .map_err(|e| Failure::Other(format!("cannot make an HTTP client: {e}")))?;
        Ok(Self {
            base: base.trim_end_matches('/').to_owned(),
            token,
            http,
        })
    }

    /// Calls `method path` with an optional JSON body; the answer's JSON on 2xx, otherwise the
    /// failure the API's problem describes.
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, Failure> {
        let token = self.token.as_deref().ok_or_else(|| {
            Failure::SignIn(
                "not signed in: run `jit login` (or set JIT_TOKEN, or `token_command` in the \
                 config file)"
                    .to_owned(),
            )
        })?;
        let method = reqwest::Method::from_bytes(method.as_bytes())
            .map_err(|e| Failure::Other(e.to_string()))?;
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.map_err(|e| {
            Failure::Unreachable(format!(
                "the jit API at {} cannot be reached ({}); check `api_url` or JIT_API_URL",
                self.base,
                e.without_url()
            ))
        })?;
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        let value: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if (200..300).contains(&status) {
            return Ok(value);
        }
        let detail = value["detail"]
            .as_str()
            .or_else(|| value["message"].as_str())
            .unwrap_or(text.as_str())
            .to_owned();
        Err(match status {
            401 => Failure::SignIn(format!(
                "the API refused your token ({detail}): it is missing, expired or not for this \
                 API; run `jit login`"
            )),
            403 | 404 => Failure::Refused(detail),
            409 => Failure::Conflict(detail),
            400 | 413 | 415 | 422 => Failure::Usage(detail),
            s if s >= 500 => Failure::Unreachable(format!(
                "the jit API is unavailable ({status}: {detail}); nothing was changed, try again"
            )),
            _ => Failure::Other(format!("{status}: {detail}")),
        })
    }
}

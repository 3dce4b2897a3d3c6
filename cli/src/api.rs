//! The broker's HTTP API as the command sees it (the typed client of `jit-api`): who is
//! calling, and every failure turned into a message that says what to do and an exit code
//! scripts can test.

use jit_api::{ApiError, Client};

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

impl Failure {
    /// What a failed call to the API at `base` means for the person: sign in again, fix the
    /// input, retry later, or nothing they can do.
    pub fn of_api(e: ApiError, base: &str) -> Self {
        let detail = e.detail();
        match e {
            ApiError::Unreachable { why, .. } => Self::Unreachable(format!(
                "the jit API at {base} cannot be reached ({why}); check `api_url` or JIT_API_URL"
            )),
            ApiError::Unexpected { .. } => Self::Other(detail),
            ApiError::Refused { status, .. } => match status {
                401 => Self::SignIn(format!(
                    "the API refused your token ({detail}): it is missing, expired or not for \
                     this API; run `jit login`"
                )),
                403 | 404 => Self::Refused(detail),
                409 => Self::Conflict(detail),
                // API Gateway's throttle, still there after the client's own retries.
                429 => Self::Unreachable(format!(
                    "the jit API is throttling requests ({detail}); nothing was changed, try again in a moment"
                )),
                400 | 413 | 415 | 422 => Self::Usage(detail),
                s if s >= 500 => Self::Unreachable(format!(
                    "the jit API is unavailable ({status}: {detail}); nothing was changed, try again"
                )),
                _ => Self::Other(format!("{status}: {detail}")),
            },
        }
    }
}

/// The API, as the caller (when signed in).
pub struct Api {
    client: Client,
    signed_in: bool,
}

impl Api {
    /// The API at `base`, calling as `token`.
    pub fn new(base: &str, token: Option<String>) -> Result<Self, Failure> {
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(30))
            .build()
            .map_err(|e| Failure::Other(format!("cannot make an HTTP client: {e}")))?;
        let client = Client::with_http(base, http);
        Ok(match token {
            Some(token) => Self {
                client: client.as_user(token),
                signed_in: true,
            },
            None => Self {
                client,
                signed_in: false,
            },
        })
    }

    /// Calls the API through `call`, as the signed-in caller; every failure as the person
    /// should read it.
    pub async fn call<'a, T, F>(&'a self, call: impl FnOnce(&'a Client) -> F) -> Result<T, Failure>
    where
        F: Future<Output = Result<T, ApiError>>,
    {
        if !self.signed_in {
            return Err(Failure::SignIn(
                "not signed in: run `jit login` (or set JIT_TOKEN, or `token_command` in the \
                 config file)"
                    .to_owned(),
            ));
        }
        call(&self.client)
            .await
            .map_err(|e| Failure::of_api(e, self.client.base()))
    }
}

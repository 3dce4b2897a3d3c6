//! Why a call to an AWS service failed, kept whole: the store's and the signer's errors carry
//! one.

/// Why a call to the database failed, kept whole: the service's error code when it gave one,
/// a readable description, and the underlying error as the source.
#[derive(Clone, Debug)]
pub struct Cause {
    code: Option<String>,
    text: String,
    source: Option<std::sync::Arc<dyn std::error::Error + Send + Sync>>,
}

impl Cause {
    /// A cause that is only a message.
    pub fn message(text: impl Into<String>) -> Self {
        Self {
            code: None,
            text: text.into(),
            source: None,
        }
    }

    /// A cause from an error, with the service's error code if it gave one.
    pub fn new(
        code: Option<&str>,
        text: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self {
            code: code.map(str::to_owned),
            text: text.into(),
            source: Some(std::sync::Arc::new(source)),
        }
    }

    /// The service's error code, such as `AccessDeniedException`.
    pub fn code(&self) -> Option<&str> {
        self.code.as_deref()
    }

    /// An AWS SDK error (of any service), kept whole, and whether a retry can help: the
    /// service unreachable, timed out, a 5xx, or one of its `transient_codes`. A request that
    /// could not even be built never is.
    #[cfg(feature = "aws")]
    pub(crate) fn of_sdk_error<E>(
        e: aws_sdk_dynamodb::error::SdkError<E, aws_sdk_dynamodb::config::http::HttpResponse>,
        transient_codes: &[&str],
    ) -> (Self, bool)
    where
        E: aws_sdk_dynamodb::error::ProvideErrorMetadata
            + std::error::Error
            + Send
            + Sync
            + 'static,
    {
        use aws_sdk_dynamodb::error::{DisplayErrorContext, SdkError};
        let text = DisplayErrorContext(&e).to_string();
        let (code, transient) = match &e {
            SdkError::ServiceError(service) => {
                let code = service.err().code().map(str::to_owned);
                let transient = service.raw().status().as_u16() >= 500
                    || code
                        .as_deref()
                        .is_some_and(|c| transient_codes.contains(&c));
                (code, transient)
            }
            SdkError::ConstructionFailure(_) => (None, false),
            _ => (None, true),
        };
        (Self::new(code.as_deref(), text, e), transient)
    }
}

impl std::fmt::Display for Cause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl std::error::Error for Cause {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// Causes are equal when they say the same: the source is kept for logs, not compared.
impl PartialEq for Cause {
    fn eq(&self, other: &Self) -> bool {
        self.code == other.code && self.text == other.text
    }
}

impl Eq for Cause {}

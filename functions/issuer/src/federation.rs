//! Console sign-in through the AWS federation endpoint: trade session credentials for a
//! sign-in token, then build the `login` URL. The endpoint's address is configuration, so
//! tests point it at a local stand-in.

use std::future::Future;

use serde::Deserialize;
use url::Url;

use crate::sts::SessionCredentials;

/// The real federation endpoint.
pub const AWS_FEDERATION_ENDPOINT: &str = "https://signin.aws.amazon.com/federation";

/// Where the console sends people when they name no destination.
pub const DEFAULT_DESTINATION: &str = "https://console.aws.amazon.com/";

/// Why no sign-in token was had.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the AWS federation endpoint failed: {0}")]
pub struct FederationError(pub String);

/// Trades session credentials for a console sign-in token.
pub trait SigninFederation: Send + Sync {
    /// A sign-in token for `credentials`.
    fn signin_token(
        &self,
        credentials: &SessionCredentials,
    ) -> impl Future<Output = Result<String, FederationError>> + Send;

    /// The endpoint, to build the login URL on.
    fn endpoint(&self) -> &Url;
}

/// The federation endpoint over HTTPS. Its HTTP client (TLS roots and all) is built for the
/// first console link, not at start: most invocations are credentials calls that never use it.
#[derive(Debug)]
pub struct HttpFederation {
    client: std::sync::OnceLock<reqwest::Client>,
    endpoint: Url,
}

impl HttpFederation {
    /// A client for `endpoint` (normally [`AWS_FEDERATION_ENDPOINT`]).
    pub fn new(endpoint: Url) -> Self {
        Self {
            client: std::sync::OnceLock::new(),
            endpoint,
        }
    }

    /// The HTTP client, built now if it was not yet.
    fn client(&self) -> Result<&reqwest::Client, FederationError> {
        if let Some(client) = self.client.get() {
            return Ok(client);
        }
        let client = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(5))
            .build()
            .map_err(|e| FederationError(e.to_string()))?;
        Ok(self.client.get_or_init(|| client))
    }
}

#[derive(Deserialize)]
struct TokenResponse {
    #[serde(rename = "SigninToken")]
    signin_token: String,
}

impl SigninFederation for HttpFederation {
    async fn signin_token(
        &self,
        credentials: &SessionCredentials,
    ) -> Result<String, FederationError> {
        let session = serde_json::json!({
            "sessionId": credentials.access_key_id,
            "sessionKey": credentials.secret_access_key,
            "sessionToken": credentials.session_token,
        });
        let mut url = self.endpoint.clone();
        url.query_pairs_mut()
            .append_pair("Action", "getSigninToken")
            .append_pair("Session", &session.to_string());
        let response = self
            .client()?
            .get(url)
            .send()
            .await
            .map_err(|e| FederationError(e.without_url().to_string()))?;
        let status = response.status();
        if !status.is_success() {
            return Err(FederationError(format!("it answered {status}")));
        }
        let bytes = response
            .bytes()
            .await
            .map_err(|e| FederationError(format!("unreadable answer: {}", e.without_url())))?;
        let body: TokenResponse = serde_json::from_slice(&bytes)
            .map_err(|e| FederationError(format!("unreadable answer: {e}")))?;
        Ok(body.signin_token)
    }

    fn endpoint(&self) -> &Url {
        &self.endpoint
    }
}

/// Checks a destination the caller asked for: an `https` AWS console URL, nothing else.
pub fn console_destination(asked: Option<&str>) -> Result<Url, String> {
    let text = asked.unwrap_or(DEFAULT_DESTINATION);
    let url = Url::parse(text).map_err(|e| format!("destination `{text}` is not a URL: {e}"))?;
    let host = url.host_str().unwrap_or("");
    let console = host == "console.aws.amazon.com" || host.ends_with(".console.aws.amazon.com");
    if url.scheme() != "https" || !console || url.port().is_some() || !url.username().is_empty() {
        return Err(format!(
            "destination `{text}` is not an AWS console URL (https://console.aws.amazon.com/... or https://<region>.console.aws.amazon.com/...)"
        ));
    }
    Ok(url)
}

/// The sign-in link: `login` on the federation endpoint with the token and destination.
pub fn login_url(endpoint: &Url, issuer: &str, destination: &Url, token: &str) -> Url {
    let mut url = endpoint.clone();
    url.query_pairs_mut()
        .append_pair("Action", "login")
        .append_pair("Issuer", issuer)
        .append_pair("Destination", destination.as_str())
        .append_pair("SigninToken", token);
    url
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_console_urls_are_destinations() {
        assert_eq!(
            console_destination(None).unwrap().as_str(),
            DEFAULT_DESTINATION
        );
        for good in [
            "https://console.aws.amazon.com/cloudwatch/home",
            "https://eu-west-1.console.aws.amazon.com/logs/home?region=eu-west-1#logsV2:",
        ] {
            assert!(console_destination(Some(good)).is_ok(), "{good}");
        }
        for bad in [
            "http://console.aws.amazon.com/",
            "https://evil.example.com/",
            "https://console.aws.amazon.com.evil.example.com/",
            "https://evilconsole.aws.amazon.com/",
            "https://user@console.aws.amazon.com/",
            "https://console.aws.amazon.com:8443/",
            "javascript:alert(1)",
            "//console.aws.amazon.com/",
        ] {
            assert!(console_destination(Some(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_login_url_carries_issuer_destination_and_token_encoded() {
        let endpoint = Url::parse(AWS_FEDERATION_ENDPOINT).unwrap();
        let destination =
            console_destination(Some("https://console.aws.amazon.com/s3/?a=b&c=d")).unwrap();
        let url = login_url(&endpoint, "jit-access", &destination, "tok&en");
        let pairs: Vec<(String, String)> = url.query_pairs().into_owned().collect();
        assert_eq!(
            pairs,
            [
                ("Action".into(), "login".into()),
                ("Issuer".into(), "jit-access".into()),
                (
                    "Destination".into(),
                    "https://console.aws.amazon.com/s3/?a=b&c=d".into()
                ),
                ("SigninToken".into(), "tok&en".into()),
            ]
        );
    }
}

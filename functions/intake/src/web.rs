//! The web page: static files from `web/`, embedded at build time and served from the API's
//! own domain by routes with no authorizer (so there is no CORS and no second deployment),
//! and `GET /requests/{id}/audit`, a grant's own trail for whoever may see the grant.
//!
//! Nothing served here is secret: the page signs in against the organisation's provider
//! (issuer and client id from `config.json`) and calls the API with the token it holds.

use lambda_http::http::{HeaderValue, StatusCode};
use lambda_http::{Body, Response};

use jit_api::{AuditRecordView, GrantTrail, GrantView};
use jit_core::domain::GrantId;
use jit_core::store::GrantStore;
use jit_http::startup::setting;
use jit_http::{Call, Problem, Reply, json};

use crate::App;

const INDEX_HTML: &str = include_str!("../../../web/index.html");
const APP_JS: &str = include_str!("../../../web/app.js");
const VERIFY_JS: &str = include_str!("../../../web/verify.js");
const REPORT_JS: &str = include_str!("../../../web/report.js");
const APP_CSS: &str = include_str!("../../../web/app.css");

/// Where the page signs in, served to it as `config.json`.
#[derive(Debug, Clone, Default)]
pub struct WebConfig {
    /// The provider's issuer URL (its discovery document lives beneath it).
    pub issuer: Option<String>,
    /// The page's OAuth client id (a public client: PKCE, no secret).
    pub client_id: Option<String>,
    /// The JWT claim that lists groups, so the page can say who is signed in.
    pub groups_claim: String,
    /// Origins besides the issuer's that the page may call (a provider whose token endpoint
    /// lives elsewhere, as Cognito's does).
    pub extra_origins: Vec<String>,
}

impl WebConfig {
    /// Reads `JIT_WEB_ISSUER`, `JIT_WEB_CLIENT_ID` and `JIT_WEB_ORIGINS` (comma-separated).
    pub fn from_env(groups_claim: &str) -> Self {
        Self {
            issuer: setting("JIT_WEB_ISSUER"),
            client_id: setting("JIT_WEB_CLIENT_ID"),
            groups_claim: groups_claim.to_owned(),
            extra_origins: setting("JIT_WEB_ORIGINS")
                .map(|s| {
                    s.split(',')
                        .filter_map(|o| origin_of(o.trim()))
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default(),
        }
    }

    /// The Content-Security-Policy every page answer carries: scripts and styles from this
    /// origin only (no inline script, no eval), calls to this origin and the provider's, no
    /// framing, no plugins, forms nowhere.
    pub fn content_security_policy(&self) -> String {
        let mut connect = vec!["'self'".to_owned()];
        connect.extend(self.issuer.as_deref().and_then(origin_of));
        connect.extend(self.extra_origins.iter().cloned());
        connect.dedup();
        format!(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             connect-src {}; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
            connect.join(" ")
        )
    }
}

/// `https://host[:port]` of a URL, when it is one (only http and https count, and nothing that
/// could break out of a CSP source list).
fn origin_of(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    if scheme != "https" && scheme != "http" {
        return None;
    }
    let authority = rest.split(['/', '?', '#']).next()?;
    let clean = !authority.is_empty()
        && authority
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'));
    clean.then(|| format!("{scheme}://{authority}"))
}

/// A static answer with the page's security headers.
fn asset(config: &WebConfig, body: &str, content_type: &'static str) -> Response<Body> {
    let mut response = Response::new(Body::from(body.to_owned()));
    let headers = response.headers_mut();
    headers.insert("content-type", HeaderValue::from_static(content_type));
    if let Ok(csp) = HeaderValue::from_str(&config.content_security_policy()) {
        headers.insert("content-security-policy", csp);
    }
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    headers.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    headers.insert("x-frame-options", HeaderValue::from_static("DENY"));
    headers.insert("cache-control", HeaderValue::from_static("no-cache"));
    response
}

impl<S: GrantStore> App<S> {
    /// `GET /`: the page.
    pub(crate) fn web_index(&self) -> Response<Body> {
        asset(&self.web, INDEX_HTML, "text/html; charset=utf-8")
    }

    /// `GET /web/{file}`: the page's script, styles and sign-in settings.
    pub(crate) fn web_file(&self, file: &str) -> Reply {
        Ok(match file {
            "app.js" => asset(&self.web, APP_JS, "text/javascript; charset=utf-8"),
            "verify.js" => asset(&self.web, VERIFY_JS, "text/javascript; charset=utf-8"),
            "report.js" => asset(&self.web, REPORT_JS, "text/javascript; charset=utf-8"),
            "app.css" => asset(&self.web, APP_CSS, "text/css; charset=utf-8"),
            "config.json" => {
                let (Some(issuer), Some(client_id)) = (&self.web.issuer, &self.web.client_id)
                else {
                    return Err(Problem::new(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "web-not-configured",
                        "the web page has no sign-in settings: set JIT_WEB_ISSUER and \
                         JIT_WEB_CLIENT_ID (the template's JwtIssuer and first JwtAudience)",
                    ));
                };
                let body = jit_api::WebConfig {
                    issuer: issuer.clone(),
                    client_id: client_id.clone(),
                    groups_claim: self.web.groups_claim.clone(),
                    slack: self.slack.is_some(),
                };
                let body = serde_json::to_string(&body).unwrap_or_default();
                asset(&self.web, &body, "application/json")
            }
            _ => {
                return Err(Problem::new(
                    StatusCode::NOT_FOUND,
                    "no-such-file",
                    "the web page has no such file (it has app.js, verify.js, report.js, app.css and config.json)",
                ));
            }
        })
    }

    /// `GET /requests/{id}/audit`: the grant's chain, for whoever may see the grant, with the
    /// functions' public keys so the caller can check every hash and signature.
    pub(crate) async fn grant_trail(&self, call: &Call<'_>, id: &str) -> Reply {
        let not_found = || Problem::not_found("request");
        let id = GrantId::parse(id).map_err(|_| not_found())?;
        let (grant, records) = self.store.evidence(&id).await?.ok_or_else(not_found)?;
        if !self.rules.may_see(&grant, &call.caller, call.now) {
            return Err(not_found());
        }
        let keys = jit_core::cases::ring(&self.keys, "the trail was not sent").await?;
        Ok(json(
            StatusCode::OK,
            &GrantTrail {
                grant: GrantView::from(&grant),
                records: records.iter().map(AuditRecordView::from).collect(),
                keys: keys.public_keys(),
            },
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_clean_http_origins_enter_the_policy() {
        let cases = [
            (
                "https://idp.example.com/realms/x",
                Some("https://idp.example.com"),
            ),
            ("http://127.0.0.1:9681", Some("http://127.0.0.1:9681")),
            (
                "https://a.example.com:8443?x",
                Some("https://a.example.com:8443"),
            ),
            ("javascript://alert(1)", None),
            ("https://evil.com; script-src *", None),
            ("https://", None),
            ("not a url", None),
        ];
        for (url, want) in cases {
            assert_eq!(origin_of(url).as_deref(), want, "{url}");
        }
    }

    #[test]
    fn the_policy_allows_no_inline_script_and_names_the_provider() {
        let config = WebConfig {
            issuer: Some("https://login.example.com/tenant".into()),
            client_id: Some("jit-web".into()),
            groups_claim: "groups".into(),
            extra_origins: vec!["https://auth.example.com".into()],
        };
        let csp = config.content_security_policy();
        assert!(csp.contains("script-src 'self';"), "{csp}");
        assert!(!csp.contains("unsafe"), "{csp}");
        assert!(
            csp.contains("connect-src 'self' https://login.example.com https://auth.example.com;"),
            "{csp}"
        );
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    }
}

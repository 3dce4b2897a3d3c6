//! How people sign in to the local provider, the way they would with the organisation's:
//! the authorization code flow with PKCE (S256) to a loopback redirect, the device
//! authorization flow for terminals without a browser, refresh tokens, and a page where a demo
//! person is picked instead of typing a password.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use aws_lc_rs::digest::{SHA256, digest};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use crate::DEMO_PEOPLE;
use crate::oidc::{Person, Provider};

/// How long a sign-in may take, and tokens last.
const CODE_TTL_SECS: i64 = 300;
const TOKEN_TTL_SECS: i64 = 3600;

/// An answer: status, content type, body, and a redirect location.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    /// The HTTP status.
    pub status: u16,
    /// The content type.
    pub content_type: &'static str,
    /// The body.
    pub body: String,
    /// Where to go next (302).
    pub location: Option<String>,
}

impl Answer {
    fn json(status: u16, value: &Value) -> Self {
        Self {
            status,
            content_type: "application/json",
            body: value.to_string(),
            location: None,
        }
    }

    fn error(error: &str, description: &str) -> Self {
        Self::json(
            400,
            &json!({"error": error, "error_description": description}),
        )
    }

    fn html(body: String) -> Self {
        Self {
            status: 200,
            content_type: "text/html; charset=utf-8",
            body,
            location: None,
        }
    }

    fn redirect(location: String) -> Self {
        Self {
            status: 302,
            content_type: "text/plain",
            body: String::new(),
            location: Some(location),
        }
    }
}

struct Code {
    person: Person,
    challenge: String,
    redirect_uri: String,
    client_id: String,
    expires: i64,
}

struct Device {
    user_code: String,
    person: Option<Person>,
    expires: i64,
}

/// The interactive side of the provider.
pub struct SignIn {
    provider: Arc<Provider>,
    codes: Mutex<HashMap<String, Code>>,
    devices: Mutex<HashMap<String, Device>>,
    refresh: Mutex<HashMap<String, Person>>,
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

fn random(bytes: usize) -> String {
    let mut buf = vec![0_u8; bytes];
    let _ = aws_lc_rs::rand::fill(&mut buf);
    URL_SAFE_NO_PAD.encode(buf)
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

fn person(sub: &str) -> Option<Person> {
    DEMO_PEOPLE
        .iter()
        .find(|(who, _, _)| *who == sub)
        .map(|(who, groups, _)| Person {
            sub: (*who).to_owned(),
            groups: groups.iter().map(|g| (*g).to_owned()).collect(),
        })
}

/// Only a loopback redirect: the provider never sends a code anywhere else.
fn loopback(uri: &str) -> bool {
    url::Url::parse(uri).is_ok_and(|u| {
        u.scheme() == "http" && matches!(u.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"))
    })
}

fn page(title: &str, intro: &str, links: &[(String, String)]) -> String {
    let items: String = links
        .iter()
        .map(|(href, label)| {
            format!(
                "<li><a href=\"{}\">{}</a></li>",
                escape(href),
                escape(label)
            )
        })
        .collect();
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title></head>\
         <body><main><h1>{}</h1><p>{}</p><ul>{items}</ul></main></body></html>",
        escape(title),
        escape(title),
        escape(intro)
    )
}

impl SignIn {
    /// Sign-in for `provider`'s people.
    pub fn new(provider: Arc<Provider>) -> Self {
        Self {
            provider,
            codes: Mutex::new(HashMap::new()),
            devices: Mutex::new(HashMap::new()),
            refresh: Mutex::new(HashMap::new()),
        }
    }

    fn tokens(&self, person: &Person) -> Answer {
        let token = self.provider.mint(person, now(), TOKEN_TTL_SECS);
        let refresh = random(32);
        self.refresh
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(refresh.clone(), person.clone());
        Answer::json(
            200,
            &json!({
                "access_token": token,
                "id_token": token,
                "refresh_token": refresh,
                "token_type": "Bearer",
                "expires_in": TOKEN_TTL_SECS,
            }),
        )
    }

    /// Answers `method path` with `query` (the URL's) and `form` (a POST body's) fields, or
    /// `None` for a path that is not a sign-in endpoint.
    pub fn handle(
        &self,
        method: &str,
        path: &str,
        query: &HashMap<String, String>,
        form: &HashMap<String, String>,
    ) -> Option<Answer> {
        Some(match (method, path) {
            ("GET", "/authorize") => self.authorize(query, false)?,
            ("GET", "/authorize/pick") => self.authorize(query, true)?,
            ("POST", "/device_authorization") => self.device_authorization(),
            ("GET", "/device") => device_page(query),
            ("GET", "/device/pick") => self.device_pick(query),
            ("POST", "/token") => match field(form, "grant_type").as_str() {
                "authorization_code" => self.redeem_code(form),
                "refresh_token" => self.refresh(form),
                "urn:ietf:params:oauth:grant-type:device_code" => self.redeem_device(form),
                _ => Answer::error("unsupported_grant_type", "unsupported grant_type"),
            },
            _ => return None,
        })
    }

    /// `GET /authorize`: the page of people to pick from; `GET /authorize/pick` (`picked`):
    /// a code for the person picked, sent back to the client's loopback address.
    fn authorize(&self, query: &HashMap<String, String>, picked: bool) -> Option<Answer> {
        if field(query, "response_type") != "code" {
            return Some(Answer::error("unsupported_response_type", "only `code`"));
        }
        let redirect_uri = field(query, "redirect_uri");
        if !loopback(&redirect_uri) {
            return Some(Answer::error(
                "invalid_request",
                "redirect_uri must be a loopback http address",
            ));
        }
        if field(query, "code_challenge_method") != "S256"
            || field(query, "code_challenge").len() < 43
        {
            return Some(Answer::error(
                "invalid_request",
                "PKCE with code_challenge_method S256 is required",
            ));
        }
        if !picked {
            let links = DEMO_PEOPLE
                .iter()
                .map(|(who, groups, role)| {
                    let mut q = url::form_urlencoded::Serializer::new(String::new());
                    for (k, v) in query {
                        q.append_pair(k, v);
                    }
                    q.append_pair("person", who);
                    (
                        format!("/authorize/pick?{}", q.finish()),
                        format!("{who} ({}): {role}", groups.join(", ")),
                    )
                })
                .collect::<Vec<_>>();
            return Some(Answer::html(page(
                "Sign in to jit-access (local)",
                "Pick who you are; the local provider has no passwords.",
                &links,
            )));
        }
        let Some(who) = person(&field(query, "person")) else {
            return Some(Answer::error("access_denied", "no such demo person"));
        };
        let code = random(32);
        self.codes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(
                code.clone(),
                Code {
                    person: who,
                    challenge: field(query, "code_challenge"),
                    redirect_uri: redirect_uri.clone(),
                    client_id: field(query, "client_id"),
                    expires: now() + CODE_TTL_SECS,
                },
            );
        let mut target = url::Url::parse(&redirect_uri).ok()?;
        target
            .query_pairs_mut()
            .append_pair("code", &code)
            .append_pair("state", &field(query, "state"));
        Some(Answer::redirect(target.to_string()))
    }

    /// `POST /device_authorization`: a device code and the user code a person enters.
    fn device_authorization(&self) -> Answer {
        let issuer = self.provider.issuer().to_owned();
        let device_code = random(32);
        let raw = random(6).to_ascii_uppercase().replace(['-', '_'], "X");
        let user_code = format!(
            "{}-{}",
            raw.get(..4).unwrap_or("AAAA"),
            raw.get(4..8).unwrap_or("BBBB")
        );
        self.devices
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(
                device_code.clone(),
                Device {
                    user_code: user_code.clone(),
                    person: None,
                    expires: now() + CODE_TTL_SECS,
                },
            );
        Answer::json(
            200,
            &json!({
                "device_code": device_code,
                "user_code": user_code,
                "verification_uri": format!("{issuer}/device"),
                "verification_uri_complete": format!("{issuer}/device?user_code={user_code}"),
                "expires_in": CODE_TTL_SECS,
                "interval": 1,
            }),
        )
    }

    /// `GET /device/pick`: the person picked signs the device with that user code in.
    fn device_pick(&self, query: &HashMap<String, String>) -> Answer {
        let user_code = field(query, "user_code");
        let Some(who) = person(&field(query, "person")) else {
            return Answer::error("access_denied", "no such demo person");
        };
        let mut devices = self.devices.lock().unwrap_or_else(PoisonError::into_inner);
        match devices
            .values_mut()
            .find(|d| d.user_code == user_code && d.expires > now())
        {
            Some(device) => {
                device.person = Some(who);
                Answer::html(page(
                    "Signed in",
                    "You can close this page and return to your terminal.",
                    &[],
                ))
            }
            None => Answer::error("invalid_grant", "unknown or expired code"),
        }
    }

    /// `POST /token` with an authorization code: tokens, once, for the verifier, client and
    /// redirect the code was made for.
    fn redeem_code(&self, form: &HashMap<String, String>) -> Answer {
        let Some(code) = self
            .codes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&field(form, "code"))
        else {
            return Answer::error("invalid_grant", "unknown or used code");
        };
        let verifier = field(form, "code_verifier");
        let derived = URL_SAFE_NO_PAD.encode(digest(&SHA256, verifier.as_bytes()));
        if code.expires < now()
            || code.redirect_uri != field(form, "redirect_uri")
            || code.client_id != field(form, "client_id")
            || derived != code.challenge
        {
            return Answer::error(
                "invalid_grant",
                "the code, its verifier, client or redirect do not match",
            );
        }
        self.tokens(&code.person)
    }

    /// `POST /token` with a refresh token: new tokens, once per refresh token (they rotate).
    fn refresh(&self, form: &HashMap<String, String>) -> Answer {
        let person = self
            .refresh
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&field(form, "refresh_token"));
        match person {
            Some(p) => self.tokens(&p),
            None => Answer::error("invalid_grant", "unknown refresh token"),
        }
    }

    /// `POST /token` with a device code: pending until someone signs the device in.
    fn redeem_device(&self, form: &HashMap<String, String>) -> Answer {
        let mut devices = self.devices.lock().unwrap_or_else(PoisonError::into_inner);
        let key = field(form, "device_code");
        match devices.get(&key) {
            None => Answer::error("invalid_grant", "unknown device code"),
            Some(d) if d.expires < now() => {
                Answer::error("expired_token", "the code expired; start again")
            }
            Some(Device { person: None, .. }) => {
                Answer::error("authorization_pending", "not signed in yet")
            }
            Some(Device {
                person: Some(p), ..
            }) => {
                let p = p.clone();
                devices.remove(&key);
                drop(devices);
                self.tokens(&p)
            }
        }
    }
}

/// A form or query field, empty when absent.
fn field(map: &HashMap<String, String>, key: &str) -> String {
    map.get(key).cloned().unwrap_or_default()
}

/// `GET /device`: the page of people to pick from for a user code.
fn device_page(query: &HashMap<String, String>) -> Answer {
    let user_code = field(query, "user_code");
    let links = DEMO_PEOPLE
        .iter()
        .map(|(who, groups, role)| {
            let q = url::form_urlencoded::Serializer::new(String::new())
                .append_pair("user_code", &user_code)
                .append_pair("person", who)
                .finish();
            (
                format!("/device/pick?{q}"),
                format!("{who} ({}): {role}", groups.join(", ")),
            )
        })
        .collect::<Vec<_>>();
    Answer::html(page(
        "Sign in a device to jit-access (local)",
        &format!("Code {user_code}: pick who you are."),
        &links,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_redirects_are_accepted() {
        assert!(loopback("http://127.0.0.1:5123/callback"));
        assert!(loopback("http://localhost:9/cb"));
        assert!(!loopback("https://127.0.0.1/cb"));
        assert!(!loopback("http://evil.example/cb"));
        assert!(!loopback("http://127.0.0.1.evil.example/cb"));
    }

    #[test]
    fn pages_escape_what_they_echo() {
        let html = page("t", "<script>", &[("/x?a=1&b=\"".into(), "<b>".into())]);
        assert!(!html.contains("<script>"));
        assert!(html.contains("&lt;script&gt;"));
        assert!(html.contains("/x?a=1&amp;b=&quot;"));
    }
}

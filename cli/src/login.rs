//! `jit login` and `jit logout`: a token from the organisation's OpenID provider, the way
//! `aws sso login` gets one. Authorization code with PKCE through the browser and a loopback
//! redirect; the device flow where there is no browser; refresh tokens used when offered. The
//! token is kept in one file readable by its owner only.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use aws_lc_rs::digest::{SHA256, digest};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::api::Failure;

/// A signed-in session as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Stored {
    access_token: String,
    refresh_token: Option<String>,
    expires_at: i64,
    token_endpoint: String,
    client_id: String,
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// 32 random bytes, base64url: a PKCE verifier or a state. A failing random source is an
/// error, never a predictable value.
fn random() -> Result<String, Failure> {
    let mut buf = [0_u8; 32];
    aws_lc_rs::rand::fill(&mut buf)
        .map_err(|_| Failure::Other("the system's random source failed".into()))?;
    Ok(URL_SAFE_NO_PAD.encode(buf))
}

/// Refuses a token path that is a symbolic link: the token would be written or read
/// wherever the link points.
fn not_a_link(path: &Path) -> Result<(), Failure> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => Err(Failure::Usage(format!(
            "{} is a symbolic link; the token is kept only in a regular file",
            path.display()
        ))),
        _ => Ok(()),
    }
}

/// Holds an exclusive lock on `<token file>.lock` while it lives, so that parallel `jit`
/// processes refresh the token one at a time (a refresh token spent twice can revoke the
/// whole sign-in at the provider).
struct TokenLock(std::fs::File);

impl TokenLock {
    fn take(path: &Path) -> Result<Self, Failure> {
        let lock_path = path.with_extension("lock");
        not_a_link(&lock_path)?;
        let mut options = std::fs::OpenOptions::new();
        options.read(true).write(true).create(true).truncate(false);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let file = options
            .open(&lock_path)
            .map_err(|e| Failure::Other(format!("{}: {e}", lock_path.display())))?;
        file.lock()
            .map_err(|e| Failure::Other(format!("{}: {e}", lock_path.display())))?;
        Ok(Self(file))
    }
}

impl Drop for TokenLock {
    fn drop(&mut self) {
        let _ = self.0.unlock();
    }
}

/// Where the token lives: `$JIT_TOKEN_FILE`, else the config directory's `token.json`.
pub fn path(config_dir: PathBuf) -> PathBuf {
    std::env::var_os("JIT_TOKEN_FILE").map_or_else(|| config_dir.join("token.json"), PathBuf::from)
}

fn http() -> Result<reqwest::Client, Failure> {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| Failure::Other(e.to_string()))
}

fn unreachable(what: &str, e: reqwest::Error) -> Failure {
    Failure::Unreachable(format!(
        "the identity provider's {what} cannot be reached ({})",
        e.without_url()
    ))
}

async fn discover(issuer: &str) -> Result<Value, Failure> {
    let url = format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    );
    http()?
        .get(&url)
        .send()
        .await
        .map_err(|e| unreachable("discovery document", e))?
        .json()
        .await
        .map_err(|e| Failure::Other(format!("{url} is not an OpenID discovery document: {e}")))
}

/// Posts `form` to the token endpoint: the tokens, or the provider's `error` code.
async fn token_call(
    endpoint: &str,
    form: &[(&str, &str)],
) -> Result<Result<Value, String>, Failure> {
    let answer = http()?
        .post(endpoint)
        .form(form)
        .send()
        .await
        .map_err(|e| unreachable("token endpoint", e))?;
    let ok = answer.status().is_success();
    let body: Value = answer.json().await.unwrap_or(Value::Null);
    if ok && body.get("access_token").and_then(Value::as_str).is_some() {
        Ok(Ok(body))
    } else {
        Ok(Err(body
            .get("error")
            .and_then(Value::as_str)
            .unwrap_or("refused")
            .to_owned()))
    }
}

fn stored(tokens: &Value, token_endpoint: &str, client_id: &str) -> Stored {
    let field = |k: &str| tokens.get(k).and_then(Value::as_str).map(str::to_owned);
    Stored {
        access_token: field("access_token").unwrap_or_default(),
        refresh_token: field("refresh_token"),
        expires_at: now()
            + tokens
                .get("expires_in")
                .and_then(Value::as_i64)
                .unwrap_or(3600),
        token_endpoint: token_endpoint.to_owned(),
        client_id: client_id.to_owned(),
    }
}

/// Stores `session`, readable by its owner only: written whole to a new file beside it
/// (mode 0600, in a directory only its owner may enter) and renamed over the old one, so a
/// reader never sees half a token and a link in its place is replaced, not followed.
pub fn save(path: &Path, session: &Stored) -> Result<(), Failure> {
    if let Some(dir) = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty() && !d.exists())
    {
        crate::cache::create_private_dir(dir).map_err(Failure::Other)?;
    }
    not_a_link(path)?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let text = serde_json::to_string(session).map_err(|e| Failure::Other(e.to_string()))?;
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    options
        .open(&tmp)
        .and_then(|mut f| f.write_all(text.as_bytes()).and_then(|()| f.sync_all()))
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            Failure::Other(format!("{}: {e}", path.display()))
        })
}

/// Reads the stored session; refuses a link, and takes back any access others were given.
fn read_stored(path: &Path) -> Result<Option<Stored>, Failure> {
    not_a_link(path)?;
    let Ok(text) = std::fs::read_to_string(path) else {
        return Ok(None);
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(m) = std::fs::metadata(path)
            && m.permissions().mode() & 0o077 != 0
        {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
                .map_err(|e| Failure::Other(format!("{}: {e}", path.display())))?;
        }
    }
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|_| Failure::SignIn("the stored sign-in is unreadable: run `jit login`".into()))
}

/// The stored token, refreshed first when it is about to expire and a refresh token is held.
/// Refreshes are serialised across processes: whoever waited reads the token the first one
/// stored rather than spending the refresh token again.
pub async fn current(path: &Path) -> Result<Option<String>, Failure> {
    let Some(session) = read_stored(path)? else {
        return Ok(None);
    };
    if session.expires_at > now() + 60 {
        return Ok(Some(session.access_token));
    }
    let _lock = TokenLock::take(path)?;
    let Some(session) = read_stored(path)? else {
        return Ok(None);
    };
    if session.expires_at > now() + 60 {
        return Ok(Some(session.access_token));
    }
    let Some(refresh) = &session.refresh_token else {
        return Err(Failure::SignIn(
            "your sign-in has expired: run `jit login`".into(),
        ));
    };
    match token_call(
        &session.token_endpoint,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh),
            ("client_id", &session.client_id),
        ],
    )
    .await?
    {
        Ok(tokens) => {
            let renewed = stored(&tokens, &session.token_endpoint, &session.client_id);
            save(path, &renewed)?;
            Ok(Some(renewed.access_token))
        }
        Err(_) => Err(Failure::SignIn(
            "your sign-in has expired and could not be renewed: run `jit login`".into(),
        )),
    }
}

/// Signs in through the browser (PKCE to a loopback redirect), or with `device`, by code.
pub async fn login(
    issuer: &str,
    client_id: &str,
    device: bool,
    open: bool,
) -> Result<Stored, Failure> {
    let discovery = discover(issuer).await?;
    let endpoint = |k: &str| {
        discovery
            .get(k)
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| Failure::Other(format!("the provider does not offer `{k}`")))
    };
    let token_endpoint = endpoint("token_endpoint")?;
    if device {
        return by_device(
            &endpoint("device_authorization_endpoint")?,
            &token_endpoint,
            client_id,
        )
        .await;
    }
    let authorization = endpoint("authorization_endpoint")?;
    let verifier = random()?;
    let challenge = URL_SAFE_NO_PAD.encode(digest(&SHA256, verifier.as_bytes()));
    let state = random()?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| Failure::Other(format!("cannot listen on loopback for the redirect: {e}")))?;
    let port = listener
        .local_addr()
        .map_err(|e| Failure::Other(e.to_string()))?
        .port();
    let redirect_uri = format!("http://127.0.0.1:{port}/callback");
    let mut url = url::Url::parse(&authorization)
        .map_err(|e| Failure::Other(format!("authorization_endpoint: {e}")))?;
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", client_id)
        .append_pair("redirect_uri", &redirect_uri)
        .append_pair("scope", "openid")
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256")
        .append_pair("state", &state);
    note!("Sign in in your browser. If it does not open, visit:\n{url}");
    if open {
        let _ = open_browser(url.as_str());
    }
    let code = tokio::time::timeout(Duration::from_secs(300), redirected(&listener, &state))
        .await
        .map_err(|_| {
            Failure::SignIn("no sign-in arrived within 5 minutes; run `jit login` again".into())
        })??;
    match token_call(
        &token_endpoint,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", &redirect_uri),
            ("client_id", client_id),
            ("code_verifier", &verifier),
        ],
    )
    .await?
    {
        Ok(tokens) => Ok(stored(&tokens, &token_endpoint, client_id)),
        Err(error) => Err(Failure::SignIn(format!(
            "the provider refused the sign-in: {error}"
        ))),
    }
}

/// Opens `url` in the person's browser, if there is one to open.
pub fn open_browser(url: &str) -> std::io::Result<()> {
    let opener = if cfg!(target_os = "macos") {
        "open"
    } else {
        "xdg-open"
    };
    std::process::Command::new(opener)
        .arg(url)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map(drop)
}

/// Waits for the browser's redirect to the loopback address; its code, once `state` matches.
async fn redirected(listener: &tokio::net::TcpListener, state: &str) -> Result<String, Failure> {
    loop {
        let (mut stream, _) = listener
            .accept()
            .await
            .map_err(|e| Failure::Other(e.to_string()))?;
        let mut buf = vec![0_u8; 8192];
        // A connection that sends nothing is dropped, not waited on forever.
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf))
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or(0);
        let request = String::from_utf8_lossy(buf.get(..n).unwrap_or_default()).into_owned();
        let target = request
            .split_whitespace()
            .nth(1)
            .unwrap_or_default()
            .to_owned();
        let Ok(url) = url::Url::parse(&format!("http://127.0.0.1{target}")) else {
            continue;
        };
        if url.path() != "/callback" {
            let _ = stream
                .write_all(
                    b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                )
                .await;
            continue;
        }
        let pairs: std::collections::HashMap<String, String> =
            url.query_pairs().into_owned().collect();
        let (status, message) = if pairs.get("state").map(String::as_str) != Some(state) {
            ("400 Bad Request", "This sign-in was not started here.")
        } else if pairs.contains_key("code") {
            ("200 OK", "Signed in to jit. You can close this tab.")
        } else {
            ("400 Bad Request", "The sign-in was refused.")
        };
        let body = format!("<!doctype html><title>jit</title><p>{message}</p>");
        let _ = stream
            .write_all(
                format!(
                    "HTTP/1.1 {status}\r\ncontent-type: text/html; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                )
                .as_bytes(),
            )
            .await;
        if pairs.get("state").map(String::as_str) != Some(state) {
            continue;
        }
        return match pairs.get("code") {
            Some(code) => Ok(code.clone()),
            None => Err(Failure::SignIn(format!(
                "the provider refused the sign-in: {}",
                pairs.get("error").map_or("no code", String::as_str)
            ))),
        };
    }
}

async fn by_device(
    device_endpoint: &str,
    token_endpoint: &str,
    client_id: &str,
) -> Result<Stored, Failure> {
    let start: Value = http()?
        .post(device_endpoint)
        .form(&[("client_id", client_id), ("scope", "openid")])
        .send()
        .await
        .map_err(|e| unreachable("device endpoint", e))?
        .json()
        .await
        .map_err(|e| Failure::Other(format!("the device endpoint answered: {e}")))?;
    let field = |k: &str| {
        start
            .get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let device_code = field("device_code");
    note!(
        "To sign in, open {} and enter the code {}\n(or open {})",
        field("verification_uri"),
        field("user_code"),
        field("verification_uri_complete")
    );
    let mut interval = start
        .get("interval")
        .and_then(Value::as_u64)
        .unwrap_or(5)
        .max(1);
    let deadline = now()
        + start
            .get("expires_in")
            .and_then(Value::as_i64)
            .unwrap_or(600);
    loop {
        tokio::time::sleep(Duration::from_secs(interval)).await;
        match token_call(
            token_endpoint,
            &[
                ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
                ("device_code", &device_code),
                ("client_id", client_id),
            ],
        )
        .await?
        {
            Ok(tokens) => return Ok(stored(&tokens, token_endpoint, client_id)),
            Err(e) if e == "authorization_pending" && now() < deadline => {}
            Err(e) if e == "slow_down" => interval += 5,
            Err(e) => {
                return Err(Failure::SignIn(format!(
                    "the device sign-in ended: {e}; run `jit login --no-browser` again"
                )));
            }
        }
    }
}

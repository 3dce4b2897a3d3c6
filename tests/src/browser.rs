//! A headless Chromium driven over the W3C WebDriver protocol (Debian's `chromium` and
//! `chromium-driver`, installed with apt-get when missing and the tests run as root): a real
//! browser, spoken to with the handful of WebDriver commands the page tests use.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{Value, json};

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";
use jit_local::prerequisites::{CHROMEDRIVER, CHROMIUM, ensure_chromium};

/// A browser session; the driver process ends with it.
pub struct Browser {
    driver: Child,
    base: String,
    http: reqwest::Client,
    /// Where screenshots go.
    pub shots: PathBuf,
}

/// An element of the page.
#[derive(Debug, Clone)]
pub struct Element(String);

fn free_port() -> Result<u16, String> {
    std::net::TcpListener::bind(("127.0.0.1", 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("a free port: {e}"))
}

impl Browser {
    /// Starts ChromeDriver and a headless Chromium session with a fresh profile.
    pub async fn start(shots: PathBuf) -> Result<Self, String> {
        ensure_chromium()?;
        std::fs::create_dir_all(&shots).map_err(|e| format!("{}: {e}", shots.display()))?;
        let port = free_port()?;
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("{CHROMEDRIVER}: {e}"))?;
        let http = reqwest::Client::new();
        let base = format!("http://127.0.0.1:{port}");
        let mut browser = Self {
            driver,
            base,
            http,
            shots,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while browser
            .http
            .get(format!("{}/status", browser.base))
            .send()
            .await
            .is_err()
        {
            if Instant::now() > deadline {
                return Err("chromedriver did not start in 20 s".into());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let profile = std::env::temp_dir().join(format!("jit-chromium-{port}"));
        let args = [
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--window-size=1200,900",
            &format!("--user-data-dir={}", profile.display()),
        ];
        let session = browser
            .raw(
                "POST",
                "/session",
                json!({"capabilities": {"alwaysMatch": {
                    "browserName": "chrome",
                    "goog:chromeOptions": {"binary": CHROMIUM, "args": args},
                    "goog:loggingPrefs": {"browser": "ALL"},
                }}}),
            )
            .await?;
        let id = session
            .get("sessionId")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("no session id in {session}"))?;
        browser.base = format!("{}/session/{id}", browser.base);
        Ok(browser)
    }

    async fn raw(&self, method: &str, path: &str, body: Value) -> Result<Value, String> {
        let url = format!("{}{path}", self.base);
        let request = match method {
            "GET" => self.http.get(&url),
            "DELETE" => self.http.delete(&url),
            _ => self.http.post(&url).json(&body),
        };
        let response = request
            .send()
            .await
            .map_err(|e| format!("webdriver {method} {path}: {e}"))?;
        let status = response.status();
        let value: Value = response
            .json()
            .await
            .map_err(|e| format!("webdriver {method} {path}: {e}"))?;
        if status.is_success() {
            Ok(value.get("value").cloned().unwrap_or(value))
        } else {
            Err(format!("webdriver {method} {path}: {status}: {value}"))
        }
    }

    /// Goes to `url`.
    pub async fn goto(&self, url: &str) -> Result<(), String> {
        self.raw("POST", "/url", json!({"url": url}))
            .await
            .map(drop)
    }

    /// The address the page is at.
    pub async fn url(&self) -> Result<String, String> {
        let v = self.raw("GET", "/url", Value::Null).await?;
        Ok(v.as_str().unwrap_or_default().to_owned())
    }

    /// Runs `script` (a function body) with `args`; its return value.
    pub async fn script(&self, script: &str, args: Value) -> Result<Value, String> {
        self.raw(
            "POST",
            "/execute/sync",
            json!({"script": script, "args": args}),
        )
        .await
    }

    /// Runs `script` (an async function body whose last argument is the callback that ends
    /// it) with `args`; what it passed to that callback.
    pub async fn script_async(&self, script: &str, args: Value) -> Result<Value, String> {
        self.raw(
            "POST",
            "/execute/async",
            json!({"script": script, "args": args}),
        )
        .await
    }

    /// The first element matching `css`, waiting up to 15 s for it to appear.
    pub async fn find(&self, css: &str) -> Result<Element, String> {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let found = self
                .raw(
                    "POST",
                    "/element",
                    json!({"using": "css selector", "value": css}),
                )
                .await;
            match found {
                Ok(v) if v.get(ELEMENT).is_some_and(Value::is_string) => {
                    let id = v.get(ELEMENT).and_then(Value::as_str).unwrap_or_default();
                    return Ok(Element(id.to_owned()));
                }
                _ if Instant::now() > deadline => {
                    let text = self.page_text().await.unwrap_or_default();
                    return Err(format!(
                        "no `{css}` on the page within 15 s; the page says: {text}"
                    ));
                }
                _ => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    /// The first link or button whose text contains `text`, waiting for it.
    pub async fn find_text(&self, css: &str, text: &str) -> Result<Element, String> {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let all = self
                .raw(
                    "POST",
                    "/elements",
                    json!({"using": "css selector", "value": css}),
                )
                .await?;
            for v in all.as_array().into_iter().flatten() {
                let id = v.get(ELEMENT).and_then(Value::as_str).unwrap_or_default();
                let el = Element(id.to_owned());
                if self.text(&el).await.unwrap_or_default().contains(text) {
                    return Ok(el);
                }
            }
            if Instant::now() > deadline {
                let page = self.page_text().await.unwrap_or_default();
                return Err(format!(
                    "no `{css}` saying `{text}` within 15 s; the page says: {page}"
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until the page's text contains `text`; the page's text.
    pub async fn wait_text(&self, text: &str) -> Result<String, String> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let page = self.page_text().await?;
            if page.contains(text) {
                return Ok(page);
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "the page never said `{text}` within 20 s; it says: {page}"
                ));
            }
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    }

    /// All the text the page shows.
    pub async fn page_text(&self) -> Result<String, String> {
        let v = self
            .script(
                "return document.body ? document.body.innerText : '';",
                json!([]),
            )
            .await?;
        Ok(v.as_str().unwrap_or_default().to_owned())
    }

    /// What `el` shows.
    pub async fn text(&self, el: &Element) -> Result<String, String> {
        let v = self
            .raw("GET", &format!("/element/{}/text", el.0), Value::Null)
            .await?;
        Ok(v.as_str().unwrap_or_default().to_owned())
    }

    /// An attribute of `el`.
    pub async fn attribute(&self, el: &Element, name: &str) -> Result<Option<String>, String> {
        let v = self
            .raw(
                "GET",
                &format!("/element/{}/attribute/{name}", el.0),
                Value::Null,
            )
            .await?;
        Ok(v.as_str().map(str::to_owned))
    }

    /// Clicks `el`.
    pub async fn click(&self, el: &Element) -> Result<(), String> {
        self.raw("POST", &format!("/element/{}/click", el.0), json!({}))
            .await
            .map(drop)
    }

    /// Types `text` into `el`.
    pub async fn type_into(&self, el: &Element, text: &str) -> Result<(), String> {
        self.raw(
            "POST",
            &format!("/element/{}/value", el.0),
            json!({"text": text}),
        )
        .await
        .map(drop)
    }

    /// Presses keys on whatever has focus (`\u{E004}` is Tab); the active element's id
    /// attribute afterwards.
    pub async fn keys(&self, keys: &str) -> Result<String, String> {
        let actions: Vec<Value> = keys
            .chars()
            .flat_map(|c| {
                [
                    json!({"type": "keyDown", "value": c.to_string()}),
                    json!({"type": "keyUp", "value": c.to_string()}),
                ]
            })
            .collect();
        self.raw(
            "POST",
            "/actions",
            json!({"actions": [{"type": "key", "id": "keyboard", "actions": actions}]}),
        )
        .await?;
        let v = self
            .script(
                "const a = document.activeElement; return a ? (a.id || a.textContent || a.tagName) : '';",
                json!([]),
            )
            .await?;
        Ok(v.as_str().unwrap_or_default().to_owned())
    }

    /// Writes a PNG of the page to `<shots>/<name>.png`.
    pub async fn screenshot(&self, name: &str) -> Result<PathBuf, String> {
        let v = self.raw("GET", "/screenshot", Value::Null).await?;
        let png = base64::engine::general_purpose::STANDARD
            .decode(v.as_str().unwrap_or_default())
            .map_err(|e| format!("screenshot: {e}"))?;
        let path = self.shots.join(format!("{name}.png"));
        std::fs::write(&path, png).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(path)
    }

    /// The browser console's errors since the last call (CSP refusals among them).
    pub async fn console_errors(&self) -> Result<Vec<String>, String> {
        let v = self
            .raw("POST", "/se/log", json!({"type": "browser"}))
            .await?;
        Ok(v.as_array()
            .into_iter()
            .flatten()
            .filter(|e| e.get("level").and_then(Value::as_str) == Some("SEVERE"))
            .map(|e| {
                e.get("message")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned()
            })
            .collect())
    }

    /// Ends the session and the driver.
    pub async fn quit(mut self) {
        let _ = self.raw("DELETE", "", Value::Null).await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

//! A headless Chromium driven over the W3C WebDriver protocol with `fantoccini` (Debian's
//! `chromium` and `chromium-driver`, installed when missing): a real browser, with the few
//! waits and look-ups the page tests share.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::actions::{InputSource, KeyAction, KeyActions};
use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};

use jit_local::prerequisites::{CHROMEDRIVER, CHROMIUM, ensure_chromium};

/// A browser session; the driver process ends with it.
pub struct Browser {
    driver: Child,
    client: Client,
    /// Where screenshots go.
    pub shots: PathBuf,
}

/// An element of the page.
#[derive(Debug, Clone)]
pub struct Element(fantoccini::elements::Element);

fn free_port() -> Result<u16, String> {
    std::net::TcpListener::bind(("127.0.0.1", 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("a free port: {e}"))
}

fn failed(what: &str) -> impl Fn(fantoccini::error::CmdError) -> String + '_ {
    move |e| format!("webdriver {what}: {e}")
}

/// ChromeDriver's browser log (`/se/log`), which the W3C protocol leaves out.
#[derive(Debug)]
struct BrowserLog;

impl WebDriverCompatibleCommand for BrowserLog {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/se/log",
            session_id.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        (
            http::Method::POST,
            Some(json!({"type": "browser"}).to_string()),
        )
    }
}

impl Browser {
    /// Starts ChromeDriver and a headless Chromium session with a fresh profile.
    pub async fn start(shots: PathBuf) -> Result<Self, String> {
        ensure_chromium()?;
        std::fs::create_dir_all(&shots).map_err(|e| format!("{}: {e}", shots.display()))?;
        let port = free_port()?;
        let mut driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("{CHROMEDRIVER}: {e}"))?;
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
        let capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": CHROMIUM, "args": args},
            "goog:loggingPrefs": {"browser": "ALL"},
        });
        let Value::Object(capabilities) = capabilities else {
            return Err("capabilities are an object".into());
        };
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        let client = loop {
            // Refused until the driver listens.
            match ClientBuilder::new(HttpConnector::new())
                .capabilities(capabilities.clone())
                .connect(&url)
                .await
            {
                Ok(client) => break client,
                Err(e) if Instant::now() > deadline => {
                    let _ = driver.kill();
                    return Err(format!("no browser session from chromedriver in 20 s: {e}"));
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        };
        Ok(Self {
            driver,
            client,
            shots,
        })
    }

    /// Goes to `url`.
    pub async fn goto(&self, url: &str) -> Result<(), String> {
        self.client.goto(url).await.map_err(failed("goto"))
    }

    /// The address the page is at.
    pub async fn url(&self) -> Result<String, String> {
        let url = self.client.current_url().await.map_err(failed("url"))?;
        Ok(url.to_string())
    }

    /// Runs `script` (a function body) with `args` (an array); its return value.
    pub async fn script(&self, script: &str, args: Value) -> Result<Value, String> {
        let args = args.as_array().cloned().unwrap_or_default();
        self.client
            .execute(script, args)
            .await
            .map_err(failed("execute"))
    }

    /// Runs `script` (an async function body whose last argument is the callback that ends
    /// it) with `args`; what it passed to that callback.
    pub async fn script_async(&self, script: &str, args: Value) -> Result<Value, String> {
        let args = args.as_array().cloned().unwrap_or_default();
        self.client
            .execute_async(script, args)
            .await
            .map_err(failed("execute async"))
    }

    /// Polls `look` every 100 ms until it finds something or `within_secs` pass; then
    /// `missing` with what the page says.
    async fn poll<T, F, Fut>(
        &self,
        within_secs: u64,
        look: F,
        missing: impl FnOnce(String) -> String,
    ) -> Result<T, String>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<Option<T>, String>>,
    {
        let deadline = Instant::now() + Duration::from_secs(within_secs);
        loop {
            if let Some(found) = look().await? {
                return Ok(found);
            }
            if Instant::now() > deadline {
                return Err(missing(self.page_text().await.unwrap_or_default()));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The first element matching `css`, waiting up to 15 s for it to appear.
    pub async fn find(&self, css: &str) -> Result<Element, String> {
        let look = || async { Ok(self.client.find(Locator::Css(css)).await.ok()) };
        let missing = |page| format!("no `{css}` on the page within 15 s; the page says: {page}");
        let found = self.poll(15, look, missing).await?;
        Ok(Element(found))
    }

    /// The first link or button whose text contains `text`, waiting for it.
    pub async fn find_text(&self, css: &str, text: &str) -> Result<Element, String> {
        let look = || async {
            let all = self
                .client
                .find_all(Locator::Css(css))
                .await
                .map_err(failed("find"))?;
            for el in all {
                if el.text().await.unwrap_or_default().contains(text) {
                    return Ok(Some(Element(el)));
                }
            }
            Ok(None)
        };
        let missing =
            |page| format!("no `{css}` saying `{text}` within 15 s; the page says: {page}");
        self.poll(15, look, missing).await
    }

    /// Waits until the page's text contains `text`; the page's text.
    pub async fn wait_text(&self, text: &str) -> Result<String, String> {
        let look = || async {
            let page = self.page_text().await?;
            Ok(page.contains(text).then_some(page))
        };
        let missing = |page| format!("the page never said `{text}` within 20 s; it says: {page}");
        self.poll(20, look, missing).await
    }

    /// All the text the page shows.
    pub async fn page_text(&self) -> Result<String, String> {
        self.script_text("return document.body ? document.body.innerText : '';")
            .await
    }

    /// The text `script` (a function body without arguments) returns; "" for anything else.
    async fn script_text(&self, script: &str) -> Result<String, String> {
        let v = self.script(script, json!([])).await?;
        Ok(v.as_str().unwrap_or_default().to_owned())
    }

    /// What the first element matching `css` shows, once there is one.
    pub async fn text_of(&self, css: &str) -> Result<String, String> {
        self.text(&self.find(css).await?).await
    }

    /// What `el` shows.
    pub async fn text(&self, el: &Element) -> Result<String, String> {
        el.0.text().await.map_err(failed("text"))
    }

    /// An attribute of `el`.
    pub async fn attribute(&self, el: &Element, name: &str) -> Result<Option<String>, String> {
        el.0.attr(name).await.map_err(failed("attribute"))
    }

    /// Clicks `el`.
    pub async fn click(&self, el: &Element) -> Result<(), String> {
        el.0.click().await.map_err(failed("click"))
    }

    /// Types `text` into `el`.
    pub async fn type_into(&self, el: &Element, text: &str) -> Result<(), String> {
        el.0.send_keys(text).await.map_err(failed("send keys"))
    }

    /// Presses keys on whatever has focus (`\u{E004}` is Tab); the active element's id
    /// attribute afterwards.
    pub async fn keys(&self, keys: &str) -> Result<String, String> {
        let mut actions = KeyActions::new("keyboard".into());
        for c in keys.chars() {
            actions = actions
                .then(KeyAction::Down { value: c })
                .then(KeyAction::Up { value: c });
        }
        self.client
            .perform_actions(actions)
            .await
            .map_err(failed("actions"))?;
        self.script_text(
            "const a = document.activeElement; return a ? (a.id || a.textContent || a.tagName) : '';",
        )
        .await
    }

    /// Writes a PNG of the page to `<shots>/<name>.png`.
    pub async fn screenshot(&self, name: &str) -> Result<PathBuf, String> {
        let png = self
            .client
            .screenshot()
            .await
            .map_err(failed("screenshot"))?;
        let path = self.shots.join(format!("{name}.png"));
        std::fs::write(&path, png).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(path)
    }

    /// The browser console's errors since the last call (CSP refusals among them).
    pub async fn console_errors(&self) -> Result<Vec<String>, String> {
        let v = self
            .client
            .issue_cmd(BrowserLog)
            .await
            .map_err(failed("log"))?;
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
        let _ = self.client.clone().close().await;
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

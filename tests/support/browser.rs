//! Headless Chromium for integration tests that look at a page as a person would: [`Browser::start`]
//! runs `/usr/bin/chromedriver` on a free loopback port and opens a W3C WebDriver session in a fresh
//! headless `/usr/bin/chromium` (Debian's chromium and chromium-driver, installed by scripts/test.sh).
//!
//! The WebDriver calls are written by hand over reqwest rather than taken from the `fantoccini` crate.
//! fantoccini 0.22 does build without TLS (`default-features = false`: no openssl, no aws-lc), but it
//! adds 29 crates to Cargo.lock (the `webdriver` crate with ICU segmentation data, `time`, two
//! `cookie`s, `http` 0.2, `thiserror` 1), while the dozen calls below need only reqwest, serde_json and
//! base64, which bankguard already depends on.
//!
//! Every failure panics with what was asked and what chromedriver answered. Dropping the [`Browser`]
//! ends the session (chromedriver quits Chromium and reaps it), then kills whatever is left in
//! chromedriver's process group and reaps chromedriver.

use std::fs::File;
use std::net::{Ipv4Addr, TcpListener};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use reqwest::Method;
use serde_json::{Value, json};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// Without the background-networking flags Chromium keeps trying hosts this machine cannot reach.
const CHROMIUM_ARGS: [&str; 9] = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1280,900",
];
/// How long chromedriver may take to answer `/status`.
const DRIVER_START: Duration = Duration::from_secs(10);
/// How long [`Browser::click`] and [`Browser::text`] wait for their element.
const ELEMENT_WAIT: Duration = Duration::from_secs(10);
const POLL: Duration = Duration::from_millis(50);
/// The key under which W3C WebDriver returns an element reference.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// Where a test keeps the screenshot `file` for people to look at (`target/tmp/screenshots/`).
pub fn screenshot_path(file: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(file)
}

/// A headless Chromium with one WebDriver session, ended and cleaned up on drop.
pub struct Browser {
    session: Session,
    // Dropped after `drop` has ended the session: kills chromedriver, then removes the profile.
    _driver: Driver,
}

/// An element of the current page, as found by [`Browser::wait_for`].
pub struct Element {
    session: Session,
    id: String,
    css: String,
}

impl Browser {
    /// Starts chromedriver and a headless Chromium with a new empty profile.
    pub async fn start() -> Browser {
        let http = bankguard::http_client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .expect("cannot build the WebDriver HTTP client");
        let mut driver = Driver::spawn();
        let base = format!("http://127.0.0.1:{}", driver.port);
        driver.wait_until_ready(&http, &base).await;

        let mut args: Vec<String> = CHROMIUM_ARGS.iter().map(|arg| arg.to_string()).collect();
        args.push(format!("--user-data-dir={}", driver.dir.path().join("profile").display()));
        let capabilities = json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            "pageLoadStrategy": "normal",
            "timeouts": { "implicit": 0, "pageLoad": 30_000, "script": 30_000 },
            "goog:chromeOptions": { "binary": CHROMIUM, "args": args },
        }}});
        let created = request(&http, Method::POST, &format!("{base}/session"), Some(capabilities)).await;
        let id = match created.as_ref().map(|value| value["sessionId"].as_str()) {
            Ok(Some(id)) => id.to_owned(),
            _ => panic!("chromedriver could not start {CHROMIUM}: {created:?}\nchromedriver log:\n{}", driver.log()),
        };
        Browser { session: Session { http, url: format!("{base}/session/{id}") }, _driver: driver }
    }

    /// Loads `url` and waits for its `load` event. An unreachable URL does not fail here (Chromium shows
    /// its error page), so wait for something the page should show.
    pub async fn goto(&self, url: &str) {
        self.session.expect(Method::POST, "/url", Some(json!({ "url": url })), &format!("go to {url}")).await;
    }

    /// Polls until an element matching `css` is present and displayed, and returns the first one.
    pub async fn wait_for(&self, css: &str, timeout: Duration) -> Element {
        let start = Instant::now();
        loop {
            if let Some(element) = self.find(css).await {
                // The page may replace the element between finding and asking: that is a "not yet".
                match element.session.call(Method::GET, &format!("/element/{}/displayed", element.id), None).await {
                    Ok(Value::Bool(true)) => return element,
                    Ok(_) => {}
                    Err(error) if error.contains("stale element reference") => {}
                    Err(error) => panic!("cannot tell whether `{css}` is displayed: {error}"),
                }
            }
            if start.elapsed() > timeout {
                let url = self.session.expect(Method::GET, "/url", None, "read the URL").await;
                panic!(
                    "no displayed element matches `{css}` within {timeout:?} on {url}; the page reads:\n{}",
                    self.page_text().await
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Polls until the visible text of the first displayed match of `css` contains `expected`.
    pub async fn wait_for_text(&self, css: &str, expected: &str, timeout: Duration) {
        let start = Instant::now();
        loop {
            let text = self.wait_for(css, timeout.saturating_sub(start.elapsed())).await.try_text().await;
            match text {
                Some(text) if text.contains(expected) => return,
                _ if start.elapsed() > timeout => {
                    panic!("`{css}` reads {text:?} after {timeout:?}, without {expected:?}")
                }
                _ => tokio::time::sleep(POLL).await,
            }
        }
    }

    /// The visible text of the first displayed match of `css` (waiting up to 10 s for it).
    pub async fn text(&self, css: &str) -> String {
        self.wait_for(css, ELEMENT_WAIT).await.text().await
    }

    /// Clicks the first displayed match of `css` (waiting up to 10 s for it).
    pub async fn click(&self, css: &str) {
        self.wait_for(css, ELEMENT_WAIT).await.click().await;
    }

    /// The page's visible text (`document.body.innerText`).
    pub async fn page_text(&self) -> String {
        match self.execute("return document.body ? document.body.innerText : '';", vec![]).await {
            Value::String(text) => text,
            other => panic!("document.body.innerText is not a string: {other}"),
        }
    }

    /// Runs `script` as the body of a function called with `args`, and returns what it returns.
    pub async fn execute(&self, script: &str, args: Vec<Value>) -> Value {
        let body = json!({ "script": script, "args": args });
        self.session.expect(Method::POST, "/execute/sync", Some(body), &format!("run script {script:?}")).await
    }

    /// Saves a PNG screenshot of the viewport to `path`.
    pub async fn screenshot(&self, path: &Path) {
        let encoded = self.session.expect(Method::GET, "/screenshot", None, "take a screenshot").await;
        let png = STANDARD
            .decode(encoded.as_str().unwrap_or_default())
            .unwrap_or_else(|error| panic!("the screenshot is not base64: {error}"));
        std::fs::write(path, png).unwrap_or_else(|error| panic!("cannot write {}: {error}", path.display()));
    }

    /// The first element matching `css`, if any.
    async fn find(&self, css: &str) -> Option<Element> {
        let query = json!({ "using": "css selector", "value": css });
        match self.session.call(Method::POST, "/element", Some(query)).await {
            Ok(found) => {
                let id = found[ELEMENT_KEY].as_str().unwrap_or_else(|| panic!("odd element for `{css}`: {found}"));
                Some(Element { session: self.session.clone(), id: id.to_owned(), css: css.to_owned() })
            }
            Err(error) if error.contains("no such element") => None,
            Err(error) => panic!("cannot look for `{css}`: {error}"),
        }
    }
}

impl Drop for Browser {
    /// Ends the session, best effort, so that chromedriver quits Chromium; `Driver` then kills what is left.
    /// Drop may run on the test's runtime, which cannot block on a future: the request gets its own.
    fn drop(&mut self) {
        let url = self.session.url.clone();
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
            runtime.block_on(async { bankguard::http_client::builder().build().ok()?.delete(url).send().await.ok() })
        })
        .join();
    }
}

impl Element {
    /// The element's visible text.
    pub async fn text(&self) -> String {
        let what = format!("read the text of `{}`", self.css);
        match self.session.expect(Method::GET, &format!("/element/{}/text", self.id), None, &what).await {
            Value::String(text) => text,
            other => panic!("the text of `{}` is not a string: {other}", self.css),
        }
    }

    /// Clicks the element's centre, as a mouse would.
    pub async fn click(&self) {
        let what = format!("click `{}`", self.css);
        self.session.expect(Method::POST, &format!("/element/{}/click", self.id), Some(json!({})), &what).await;
    }

    /// The text, or `None` if the page replaced the element meanwhile.
    async fn try_text(&self) -> Option<String> {
        match self.session.call(Method::GET, &format!("/element/{}/text", self.id), None).await {
            Ok(Value::String(text)) => Some(text),
            Err(error) if error.contains("stale element reference") => None,
            other => panic!("cannot read the text of `{}`: {other:?}", self.css),
        }
    }
}

/// The WebDriver session's URL and a client to call it with.
#[derive(Clone)]
struct Session {
    http: reqwest::Client,
    url: String,
}

impl Session {
    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Result<Value, String> {
        request(&self.http, method, &format!("{}{path}", self.url), body).await
    }

    /// [`Session::call`] that panics on failure, saying it was trying to `what`.
    async fn expect(&self, method: Method, path: &str, body: Option<Value>, what: &str) -> Value {
        self.call(method, path, body).await.unwrap_or_else(|error| panic!("the browser could not {what}: {error}"))
    }
}

/// One WebDriver call: its `value` on success, else `"<status> <error>: <message>"`.
async fn request(http: &reqwest::Client, method: Method, url: &str, body: Option<Value>) -> Result<Value, String> {
    let mut request = http.request(method.clone(), url);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.map_err(|error| format!("{method} {url}: {error}"))?;
    let status = response.status();
    let text = response.text().await.map_err(|error| format!("{method} {url}: {status}: {error}"))?;
    let mut answer: Value = serde_json::from_str(&text).map_err(|_| format!("{method} {url}: {status}: {text}"))?;
    let value = answer["value"].take();
    if status.is_success() {
        Ok(value)
    } else {
        Err(format!("{method} {url}: {status} {}: {}", value["error"], value["message"]))
    }
}

/// chromedriver in its own process group, with its log and Chromium's profile in a temp dir.
struct Driver {
    process: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Driver {
    fn spawn() -> Driver {
        let dir = tempfile::tempdir().expect("cannot create a temp dir for Chromium");
        let log = File::create(Self::log_path(&dir)).expect("cannot create chromedriver's log file");
        let port = free_port();
        let process = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("cannot share chromedriver's log file"))
            .stderr(log)
            .process_group(0)
            .spawn()
            .unwrap_or_else(|error| panic!("cannot run {CHROMEDRIVER} (scripts/test.sh installs it): {error}"));
        Driver { process, port, dir }
    }

    fn log_path(dir: &tempfile::TempDir) -> PathBuf {
        dir.path().join("chromedriver.log")
    }

    fn log(&self) -> String {
        std::fs::read_to_string(Self::log_path(&self.dir)).unwrap_or_default()
    }

    async fn wait_until_ready(&mut self, http: &reqwest::Client, base: &str) {
        let start = Instant::now();
        loop {
            let status = request(http, Method::GET, &format!("{base}/status"), None).await;
            if matches!(&status, Ok(value) if value["ready"] == true) {
                return;
            }
            if let Ok(Some(exit)) = self.process.try_wait() {
                panic!("chromedriver exited ({exit}) before it answered /status:\n{}", self.log());
            }
            if start.elapsed() > DRIVER_START {
                panic!("chromedriver did not start within {DRIVER_START:?} ({status:?}):\n{}", self.log());
            }
            tokio::time::sleep(POLL).await;
        }
    }
}

impl Drop for Driver {
    /// Kills chromedriver and anything of Chromium's still in its process group, and reaps chromedriver.
    fn drop(&mut self) {
        // Only while chromedriver is unreaped is its pid surely still its group's id.
        if let Ok(None) = self.process.try_wait() {
            let group = format!("-{}", self.process.id());
            let _ = Command::new("kill").args(["-KILL", "--", &group]).stderr(Stdio::null()).status();
        }
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

/// A loopback port nobody listens on now (chromedriver binds it a moment later).
fn free_port() -> u16 {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("cannot bind a loopback port");
    listener.local_addr().expect("cannot read the bound port").port()
}

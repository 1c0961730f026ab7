//! Real-browser tests: headless Chromium driven over WebDriver (chromedriver, from Debian's
//! `chromium` and `chromium-driver`) against the real `kakao-login` binary with its built-in
//! Kakao stand-in. Every page visited is screenshotted to `target/e2e/` and checked for console
//! errors, CSP violations and requests to any host other than the app's.
//!
//! Without Chromium these tests are compiled as ignored, with a reason that `cargo test`
//! prints ("the browser suite did NOT run"); under CI they are never ignored (a missing
//! Chromium fails them), and `.ci/run` installs it.

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

/// A child process stopped when the test ends, however it ends. `group` processes lead their
/// own process group and are stopped with everything they started (chromedriver's Chromium
/// and its helpers would otherwise outlive a failed test and keep using the CPU).
struct Process {
    child: Child,
    group: bool,
}

impl Drop for Process {
    fn drop(&mut self) {
        if self.group {
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", self.child.id())])
                .status();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

async fn wait_until_up(url: &str) {
    let client = awc::Client::default();
    for _ in 0..200 {
        if let Ok(res) = client.get(url).send().await
            && res.status().is_success()
        {
            return;
        }
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{url} did not come up");
}

/// The app (real binary, stand-in Kakao, SQLite in a temp folder) and chromedriver.
struct App {
    base: String,
    database_url: String,
    driver_port: u16,
    _app: Process,
    _driver: Process,
    dir: tempfile::TempDir,
}

impl App {
    async fn start() -> App {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let base = format!("http://127.0.0.1:{port}");
        let database_url = format!("sqlite://{}/e2e.db", dir.path().display());
        let app = Process {
            child: Command::new(env!("CARGO_BIN_EXE_kakao-login"))
                .env_clear()
                .env("PATH", std::env::var("PATH").unwrap_or_default())
                .env("BIND", format!("127.0.0.1:{port}"))
                .env("PUBLIC_URL", &base)
                .env("DATABASE_URL", &database_url)
                .env("DATA_DIR", dir.path())
                .env("CONFIG_DIR", "/nonexistent")
                .env("WORKERS", "2")
                .env("RUST_LOG", "warn")
                .stdout(Stdio::null())
                .spawn()
                .expect("start kakao-login"),
            group: false,
        };
        let driver_port = free_port();
        let driver = Process {
            child: Command::new("chromedriver")
                .arg(format!("--port={driver_port}"))
                .process_group(0)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start chromedriver (apt-get install chromium chromium-driver)"),
            group: true,
        };
        wait_until_up(&format!("{base}/healthz")).await;
        wait_until_up(&format!("http://127.0.0.1:{driver_port}/status")).await;
        App {
            base,
            database_url,
            driver_port,
            _app: app,
            _driver: driver,
            dir,
        }
    }

    /// Run `kakao-login` with this app's database (e.g. `createsuperuser`).
    fn cli(&self, args: &[&str]) {
        let out = Command::new(env!("CARGO_BIN_EXE_kakao-login"))
            .args(args)
            .env_clear()
            .env("DATABASE_URL", &self.database_url)
            .env("DATA_DIR", self.dir.path())
            .env("CONFIG_DIR", "/nonexistent")
            .output()
            .expect("run kakao-login");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// `createsuperuser` on the command line: the record a superuser's first Kakao sign-in
    /// claims.
    fn create_superuser(&self, email: &str, name: &str) {
        self.cli(&[
            "createsuperuser",
            "--email",
            email,
            "--name",
            name,
            "--noinput",
        ]);
    }

    /// A fresh browser (its own profile: no shared cookies) whose screenshots go under
    /// `target/e2e/{scenario}/`.
    async fn browser(&self, scenario: &str) -> E2e {
        self.browser_sized(scenario, (1100, 900)).await
    }

    /// [`App::browser`] with a viewport of `width` x `height` CSS pixels (a phone: 390 x 844).
    async fn browser_sized(&self, scenario: &str, (width, height): (u32, u32)) -> E2e {
        let profile = self.dir.path().join(format!("chromium-{scenario}"));
        let mut caps = serde_json::Map::new();
        let mut options = json!({
            "binary": "/usr/bin/chromium",
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync",
                "--disable-crash-reporter", "--disable-breakpad",
                "--disable-features=Translate,OptimizationHints,MediaRouter",
                "--lang=ko-KR", format!("--window-size={},{}", width.max(500), height),
                format!("--user-data-dir={}", profile.display()),
            ],
        });
        if width < 500 {
            // A window is at least 500 px wide; narrower viewports are device emulation.
            options["mobileEmulation"] = json!({
                "deviceMetrics": {"width": width, "height": height, "pixelRatio": 1.0}
            });
        }
        caps.insert("goog:chromeOptions".into(), options);
        caps.insert("goog:loggingPrefs".into(), json!({"browser": "ALL"}));
        // chromedriver is plain HTTP on loopback: no TLS stack needed.
        let browser = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{}", self.driver_port))
            .await
            .expect("WebDriver session");
        let shots = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("target")
            .join("e2e")
            .join(scenario);
        let _ = std::fs::remove_dir_all(&shots);
        std::fs::create_dir_all(&shots).expect("screenshot folder");
        E2e {
            base: self.base.clone(),
            browser,
            shots,
            step: std::cell::Cell::new(0),
        }
    }
}

/// One browser on the app, with the checks every visited page gets.
struct E2e {
    base: String,
    browser: Client,
    shots: PathBuf,
    step: std::cell::Cell<u32>,
}

impl E2e {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn path(&self) -> String {
        let url = self.browser.current_url().await.expect("url");
        match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_owned(),
        }
    }

    /// Wait until the browser is on `path` (a page load after a click).
    async fn wait_for_path(&self, prefix: &str) {
        for _ in 0..100 {
            if self.path().await.starts_with(prefix) {
                let ready = self
                    .browser
                    .execute("return document.readyState;", vec![])
                    .await
                    .expect("readyState");
                if ready == "complete" {
                    return;
                }
            }
            actix_web::rt::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("expected {prefix}, browser is at {}", self.path().await);
    }

    /// Go to `path` and wait until it has loaded.
    async fn open(&self, path: &str) {
        self.browser.goto(&self.url(path)).await.expect("open");
        self.wait_for_path(path).await;
    }

    async fn body_text(&self) -> String {
        self.browser
            .find(Locator::Css("body"))
            .await
            .expect("body")
            .text()
            .await
            .expect("text")
    }

    /// Screenshot the page and check what a person cannot see: console errors, CSP
    /// violations, and requests to other hosts.
    async fn check_page(&self, name: &str) {
        let n = self.step.get() + 1;
        self.step.set(n);
        let png = self.browser.screenshot().await.expect("screenshot");
        std::fs::write(self.shots.join(format!("{n:02}-{name}.png")), png).expect("write png");

        let logs = self
            .browser
            .issue_cmd(BrowserLog)
            .await
            .expect("browser log");
        let problems: Vec<&Value> = logs
            .as_array()
            .map(|entries| {
                entries
                    .iter()
                    .filter(|e| {
                        let level = e["level"].as_str().unwrap_or_default();
                        let message = e["message"].as_str().unwrap_or_default();
                        level == "SEVERE"
                            || message.contains("Content Security Policy")
                            || message.contains("Refused to")
                    })
                    // The 4xx/5xx pages we visit on purpose log their own status; that is not a fault.
                    .filter(|e| {
                        !e["message"]
                            .as_str()
                            .unwrap_or_default()
                            .contains("the server responded with a status of")
                    })
                    .collect()
            })
            .unwrap_or_default();
        assert!(
            problems.is_empty(),
            "{name}: console errors or CSP violations: {problems:?}"
        );

        let urls = self
            .browser
            .execute(
                "return [location.href].concat(performance.getEntriesByType('resource').map(e => e.name));",
                vec![],
            )
            .await
            .expect("resource list");
        for url in urls.as_array().into_iter().flatten() {
            let url = url.as_str().unwrap_or_default();
            assert!(
                url.starts_with(&self.base),
                "{name}: request to another host: {url}"
            );
        }
    }

    async fn click(&self, css: &str) {
        self.browser
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css}: {e}"))
            .click()
            .await
            .unwrap_or_else(|e| panic!("click {css}: {e}"));
    }

    async fn fill(&self, css: &str, value: &str) {
        let field = self
            .browser
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css}: {e}"));
        field.clear().await.expect("clear");
        field.send_keys(value).await.expect("type");
    }

    async fn set_checked(&self, css: &str, checked: bool) {
        let el = self
            .browser
            .find(Locator::Css(css))
            .await
            .expect("checkbox");
        let now = el.prop("checked").await.expect("prop").as_deref() == Some("true");
        if now != checked {
            el.click().await.expect("toggle");
        }
    }

    /// On the stand-in's consent page, type a new Kakao account.
    async fn consent_as_new(&self, nickname: &str, email: &str, share_email: bool) {
        self.click("input[name=account][value=new]").await;
        self.fill("input[name=new_nickname]", nickname).await;
        self.fill("input[name=new_email]", email).await;
        self.set_checked("input[name=share_email]", share_email)
            .await;
    }

    /// Sign up through the login page and the stand-in's consent page, sharing the email.
    async fn sign_up(&self, nickname: &str, email: &str) {
        self.browser.goto(&self.url("/")).await.expect("open");
        self.click("a[data-testid=kakao-login]").await;
        self.wait_for_path("/_kakao/oauth/authorize").await;
        self.consent_as_new(nickname, email, true).await;
        self.click("button[value=agree]").await;
        self.wait_for_path("/profile/").await;
    }

    /// Table cells and buttons (visible ones) narrower than their longest word, as `"word:
    /// needs Npx, cell has Mpx"`: what a person sees as one-word-wide columns and broken words.
    async fn cramped_cells(&self) -> Vec<String> {
        let found = self
            .browser
            .execute(
                r#"
                const out = [];
                // Each word measured in a nowrap span inside the element itself: the very font
                // and size the page uses.
                const probe = document.createElement('span');
                probe.style.whiteSpace = 'nowrap';
                probe.style.position = 'absolute';
                probe.style.visibility = 'hidden';
                for (const cell of document.querySelectorAll('table td, table th, button, .button')) {
                  let hidden = !cell.offsetParent;
                  for (let el = cell; el && !hidden; el = el.parentElement) {
                    const clip = getComputedStyle(el).clip;
                    hidden = el.getBoundingClientRect().width <= 1 || (clip && clip !== 'auto');
                  }
                  if (hidden) continue;
                  const style = getComputedStyle(cell);
                  const px = name => parseFloat(style[name]) || 0;
                  let room = cell.getBoundingClientRect().width - px('paddingLeft') - px('paddingRight')
                    - px('borderLeftWidth') - px('borderRightWidth');
                  // A label drawn before the value (the phone layout's data-label) takes its
                  // width and the gap out of the value's room.
                  const label = getComputedStyle(cell, '::before');
                  if (label.content && label.content !== 'none' && label.content !== 'normal') {
                    room -= (parseFloat(label.width) || 0) + (parseFloat(style.columnGap) || 0);
                  }
                  for (const word of cell.textContent.split(/\s+/).filter(w => w.length)) {
                    probe.textContent = word;
                    cell.appendChild(probe);
                    const need = probe.getBoundingClientRect().width;
                    probe.remove();
                    if (need > room + 0.01) {
                      out.push(`${word}: needs ${need.toFixed(1)}px, cell has ${room.toFixed(1)}px`);
                    }
                  }
                }
                return out;
                "#,
                vec![],
            )
            .await
            .expect("measure cells");
        found
            .as_array()
            .into_iter()
            .flatten()
            .map(|v| v.as_str().unwrap_or_default().to_owned())
            .collect()
    }

    /// Check a staff page at phone width: laid out for the phone and no cramped cell.
    async fn check_phone_page(&self, name: &str) {
        let width = self
            .browser
            .execute("return window.innerWidth;", vec![])
            .await
            .expect("width");
        assert_eq!(width, 390, "{name}: the viewport is a phone's");
        let overflow = self
            .browser
            .execute(
                "return document.documentElement.scrollWidth - window.innerWidth;",
                vec![],
            )
            .await
            .expect("scroll width");
        assert!(
            overflow.as_i64().unwrap_or(1) <= 0,
            "{name}: the page scrolls sideways by {overflow}px"
        );
        let cramped = self.cramped_cells().await;
        assert!(
            cramped.is_empty(),
            "{name}: cells narrower than a word: {cramped:?}"
        );
        self.check_page(name).await;
    }

    async fn finish(self) {
        let _ = self.browser.close().await;
    }
}

/// Chromium's console log (`goog:loggingPrefs`), read through chromedriver's log endpoint.
#[derive(Debug)]
struct BrowserLog;

impl fantoccini::wd::WebDriverCompatibleCommand for BrowserLog {
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

#[actix_web::test]
#[cfg_attr(
    all(not(has_browser), not(ci)),
    ignore = "chromium and chromium-driver are not installed: the browser suite did NOT run \
              (apt-get install chromium chromium-driver)"
)]
async fn a_new_person_signs_in_edits_the_profile_and_signs_out() {
    let app = App::start().await;
    let e2e = app.browser("new-person").await;
    e2e.browser.goto(&e2e.url("/")).await.expect("open");
    assert!(e2e.body_text().await.contains("카카오 로그인"));
    e2e.check_page("login").await;

    e2e.click("a[data-testid=kakao-login]").await;
    e2e.wait_for_path("/_kakao/oauth/authorize").await;
    e2e.check_page("kakao-consent").await;
    e2e.consent_as_new("브라우저", "browser@example.com", true)
        .await;
    e2e.click("button[value=agree]").await;

    e2e.wait_for_path("/profile/").await;
    let text = e2e.body_text().await;
    assert!(text.contains("browser@example.com"), "{text}");
    assert_eq!(
        e2e.browser
            .find(Locator::Css("#name"))
            .await
            .expect("name field")
            .prop("value")
            .await
            .expect("value")
            .as_deref(),
        Some("브라우저")
    );
    e2e.check_page("profile").await;

    // A validation error is shown in the form...
    e2e.fill("#age", "삼십").await;
    e2e.click("form.form button[type=submit]").await;
    e2e.browser
        .wait()
        .for_element(Locator::Css("[data-error-for=age]"))
        .await
        .expect("age error shown");
    e2e.check_page("profile-error").await;
    // ...then a valid edit is saved.
    e2e.fill("#name", "새 이름").await;
    e2e.fill("#age", "30").await;
    e2e.click("form.form button[type=submit]").await;
    e2e.wait_for_path("/profile/?saved=1").await;
    let text = e2e.body_text().await;
    assert!(text.contains("저장했습니다"), "{text}");
    e2e.check_page("profile-saved").await;

    // Sign out through the confirmation form.
    e2e.click("a[href='/kakao/logout/']").await;
    e2e.wait_for_path("/kakao/logout/").await;
    e2e.check_page("logout-confirm").await;
    e2e.click("[data-testid=logout-confirm]").await;
    e2e.wait_for_path("/?logged_out=1").await;
    assert!(e2e.body_text().await.contains("로그아웃했습니다"));
    e2e.check_page("logged-out").await;

    e2e.browser.goto(&e2e.url("/profile/")).await.expect("open");
    e2e.wait_for_path("/?next=").await;
    e2e.check_page("profile-needs-login").await;
    e2e.finish().await;
}

#[actix_web::test]
#[cfg_attr(
    all(not(has_browser), not(ci)),
    ignore = "chromium and chromium-driver are not installed: the browser suite did NOT run \
              (apt-get install chromium chromium-driver)"
)]
async fn cancelling_and_declining_email_show_their_pages_and_asking_again_works() {
    let app = App::start().await;
    let e2e = app.browser("cancel-and-decline").await;
    e2e.browser.goto(&e2e.url("/")).await.expect("open");
    e2e.click("a[data-testid=kakao-login]").await;
    e2e.wait_for_path("/_kakao/oauth/authorize").await;
    e2e.click("button[value=cancel]").await;
    e2e.wait_for_path("/kakao/login/callback/").await;
    assert!(e2e.body_text().await.contains("로그인을 취소했습니다"));
    e2e.check_page("cancelled").await;

    // Try again, but decline the email.
    e2e.click(".error-card a.button").await;
    e2e.wait_for_path("/_kakao/oauth/authorize").await;
    e2e.consent_as_new("무메일", "decline@example.com", false)
        .await;
    e2e.check_page("consent-without-email").await;
    e2e.click("button[value=agree]").await;
    e2e.wait_for_path("/kakao/login/callback/").await;
    let text = e2e.body_text().await;
    assert!(text.contains("이메일 제공 동의가 필요합니다"), "{text}");
    e2e.check_page("email-required").await;

    // The page's button asks Kakao again, for the email only.
    e2e.click(".error-card a.button").await;
    e2e.wait_for_path("/_kakao/oauth/authorize").await;
    assert!(e2e.path().await.contains("scope=account_email"));
    e2e.browser
        .find(Locator::XPath(
            "//label[contains(., 'decline@example.com')]/input",
        ))
        .await
        .expect("the account from before is listed")
        .click()
        .await
        .expect("pick it");
    e2e.check_page("consent-again").await;
    e2e.click("button[value=agree]").await;
    e2e.wait_for_path("/profile/").await;
    assert!(e2e.body_text().await.contains("decline@example.com"));
    e2e.check_page("profile-after-consent").await;
    e2e.finish().await;
}

#[actix_web::test]
#[cfg_attr(
    all(not(has_browser), not(ci)),
    ignore = "chromium and chromium-driver are not installed: the browser suite did NOT run \
              (apt-get install chromium chromium-driver)"
)]
async fn staff_deactivate_a_user_and_that_users_open_session_ends() {
    let app = App::start().await;
    // The member signs in and keeps their browser open.
    let member = app.browser("staff-member").await;
    member.sign_up("회원", "member@example.com").await;
    member.check_page("member-profile").await;

    // A superuser made on the command line claims the account with their Kakao login.
    app.create_superuser("boss@example.com", "대표");
    let staff = app.browser("staff").await;
    staff.sign_up("대표", "boss@example.com").await;

    staff
        .browser
        .goto(&staff.url("/admin/"))
        .await
        .expect("open");
    staff.wait_for_path("/admin/").await;
    staff
        .browser
        .find(Locator::Css("svg"))
        .await
        .expect("the sign-ups chart is drawn");
    staff.check_page("dashboard").await;

    staff
        .browser
        .goto(&staff.url("/admin/users/"))
        .await
        .expect("open");
    staff.wait_for_path("/admin/users/").await;
    staff.fill("input[name=q]", "member@").await;
    staff.click("form.filters button[type=submit]").await;
    staff.wait_for_path("/admin/users/?").await;
    assert!(staff.body_text().await.contains("member@example.com"));
    assert!(
        !staff.body_text().await.contains("boss@example.com"),
        "the search filters"
    );
    staff.check_page("search").await;
    staff
        .browser
        .find(Locator::LinkText("member@example.com"))
        .await
        .expect("result link")
        .click()
        .await
        .expect("open the user");
    staff.wait_for_path("/admin/users/").await;
    staff.check_page("user-detail").await;
    staff
        .click("form[action$='/deactivate/'] button[type=submit]")
        .await;
    staff
        .browser
        .wait()
        .for_element(Locator::Css(
            "form[action$='/activate/'] button[type=submit]",
        ))
        .await
        .expect("the user is now inactive and can be activated again");
    staff.check_page("user-deactivated").await;

    // The member's next request finds them signed out.
    member
        .browser
        .goto(&member.url("/profile/"))
        .await
        .expect("open");
    member.wait_for_path("/?next=").await;
    member.check_page("member-signed-out").await;
    staff.finish().await;
    member.finish().await;
}

#[actix_web::test]
#[cfg_attr(
    all(not(has_browser), not(ci)),
    ignore = "chromium and chromium-driver are not installed: the browser suite did NOT run \
              (apt-get install chromium chromium-driver)"
)]
async fn log_out_of_kakao_too_come_back_with_another_account_and_leave() {
    let app = App::start().await;
    let e2e = app.browser("kakao-account").await;
    e2e.sign_up("떠날사람", "leaver@example.com").await;

    // Log out of this service and of the Kakao account in this browser.
    e2e.click("a[href='/kakao/logout/']").await;
    e2e.wait_for_path("/kakao/logout/").await;
    e2e.check_page("logout-choices").await;
    e2e.click("[data-testid=logout-kakao]").await;
    e2e.wait_for_path("/?logged_out=kakao").await;
    let text = e2e.body_text().await;
    assert!(text.contains("카카오계정에서도 로그아웃했습니다"), "{text}");
    e2e.check_page("logged-out-of-kakao").await;

    // "다른 카카오계정으로 로그인": Kakao's account chooser.
    e2e.click("a[data-testid=kakao-login-other]").await;
    e2e.wait_for_path("/_kakao/oauth/authorize").await;
    assert!(e2e.path().await.contains("prompt=select_account"));
    assert!(e2e.body_text().await.contains("select_account"));
    e2e.browser
        .find(Locator::XPath(
            "//label[contains(., 'leaver@example.com')]/input",
        ))
        .await
        .expect("the account from before is listed")
        .click()
        .await
        .expect("pick it");
    e2e.check_page("select-account").await;
    e2e.click("button[value=agree]").await;
    e2e.wait_for_path("/profile/").await;
    assert!(e2e.body_text().await.contains("leaver@example.com"));
    e2e.check_page("profile-consents").await;

    // Leave.
    e2e.click("a[data-testid=leave]").await;
    e2e.wait_for_path("/profile/leave/").await;
    e2e.check_page("leave-confirm").await;
    e2e.click("[data-testid=leave-confirm]").await;
    e2e.wait_for_path("/goodbye/").await;
    let text = e2e.body_text().await;
    assert!(text.contains("탈퇴했습니다"), "{text}");
    assert!(text.contains("카카오계정과의 연결도 끊었습니다"), "{text}");
    e2e.check_page("goodbye").await;
    e2e.browser.goto(&e2e.url("/profile/")).await.expect("open");
    e2e.wait_for_path("/?next=").await;
    e2e.finish().await;
}

#[actix_web::test]
#[cfg_attr(
    all(not(has_browser), not(ci)),
    ignore = "chromium and chromium-driver are not installed: the browser suite did NOT run \
              (apt-get install chromium chromium-driver)"
)]
async fn unlinking_at_kakao_signs_the_person_out_and_staff_see_it_on_a_phone() {
    let app = App::start().await;
    let person = app.browser("kakao-unlink").await;
    person.sign_up("끊을사람", "unlinker@example.com").await;
    person.check_page("signed-in").await;

    // At "Kakao": the consent page lists the linked account with "연결 끊기".
    person
        .browser
        .goto(&person.url("/kakao/login/"))
        .await
        .expect("open");
    person.wait_for_path("/_kakao/oauth/authorize").await;
    person.check_page("consent-with-unlink").await;
    person.click("button[data-unlink]").await;
    person.wait_for_path("/_kakao/oauth/unlink").await;
    let text = person.body_text().await;
    assert!(text.contains("앱과의 연결을 끊었습니다."), "{text}");
    assert!(text.contains("연결 해제 웹훅: HTTP 200"), "{text}");
    assert!(
        text.contains("계정 상태 변경 웹훅 (user-unlinked): HTTP 202"),
        "{text}"
    );
    person.check_page("unlinked-at-kakao").await;

    // The person's page now finds them signed out.
    person
        .browser
        .goto(&person.url("/profile/"))
        .await
        .expect("open");
    person.wait_for_path("/?next=").await;
    person.check_page("signed-out").await;
    person.finish().await;

    // Staff, on a phone: the list, the person's detail with the delivery, the deliveries.
    app.create_superuser("boss@example.com", "대표");
    let staff = app.browser_sized("staff-phone", (390, 844)).await;
    staff.sign_up("대표", "boss@example.com").await;
    staff.open("/admin/users/").await;
    staff.check_phone_page("users").await;
    let link = staff
        .browser
        .find(Locator::LinkText("unlinker@example.com"))
        .await
        .expect("the person is listed");
    let detail = link
        .attr("href")
        .await
        .expect("href")
        .expect("the link has an href");
    link.click().await.expect("open the person");
    staff.wait_for_path(&detail).await;
    staff
        .browser
        .find(Locator::Css("[data-outcome=applied]"))
        .await
        .expect("the applied delivery is on the person's page");
    staff.check_phone_page("user-detail").await;
    staff.open("/admin/webhooks/").await;
    let text = staff.body_text().await;
    assert!(text.contains("UNLINK_FROM_APPS"), "{text}");
    staff.check_phone_page("webhooks").await;
    staff.finish().await;
}

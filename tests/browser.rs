//! End to end in a real browser: Debian's Chromium (headless, driven over
//! WebDriver by chromedriver) against the real `nachweis serve` binary on a
//! SQLite database with a case made by the real pipeline. A caseworker signs
//! in, claims the case, corrects a classification, edits the letter,
//! approves it, downloads the PDF (checked with `pdftotext`, including the
//! position of the address field), and a second approval from another tab
//! and a double click change nothing.
//!
//! Needs `/usr/bin/chromium` and `/usr/bin/chromedriver` (the README test
//! command installs them). On failure a screenshot is written to
//! `target/browser-screenshots/` and its path printed.
use fantoccini::{Client, ClientBuilder, Locator};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nachweis::config::Settings;
use nachweis::extract::sandbox::{Limits, SandboxExtractor};
use nachweis::store::review::{Role, User};
use nachweis::worker::{Pipeline, Processed, process_one};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const PASSWORD: &str = "browser-test-passwort";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A child process killed when the test ends, however it ends.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn wait_for_port(port: u16, what: &str) {
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(start.elapsed() < Duration::from_secs(20), "{what} did not start listening on port {port}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Starts `nachweis serve` on the database and returns its address.
fn start_server(database_url: &str) -> (Guard, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_nachweis"))
        .arg("serve")
        .env("NACHWEIS_DATABASE_URL", database_url)
        .env("NACHWEIS_HTTP_ADDR", "127.0.0.1:0")
        .env("NACHWEIS_SCHEMAS_DIR", root().join("schemas"))
        .env("NACHWEIS_DEFAULT_TENANT", "lk-musterland")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("start nachweis serve");
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(rest) = line.split("http://").nth(1) {
                let _ = tx.send(rest.split('/').next().unwrap_or("").to_string());
            }
        }
    });
    let addr = rx.recv_timeout(Duration::from_secs(30)).expect("the server prints its address");
    (Guard(child), format!("http://{addr}"))
}

fn start_chromedriver() -> (Guard, u16) {
    for path in [CHROMIUM, CHROMEDRIVER] {
        assert!(
            Path::new(path).exists(),
            "{path} is missing: the browser tests need Debian's chromium and chromium-driver (bash scripts/test installs them)"
        );
    }
    let port = free_port();
    let child = Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromedriver");
    wait_for_port(port, "chromedriver");
    (Guard(child), port)
}

async fn browser(driver_port: u16, profile: &Path, downloads: &Path) -> Client {
    let caps = serde_json::json!({
        "browserName": "chrome",
        "goog:chromeOptions": {
            "binary": CHROMIUM,
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-quic", "--no-first-run", "--window-size=1366,768",
                format!("--user-data-dir={}", profile.display()),
            ],
            "prefs": {
                "download.default_directory": downloads.display().to_string(),
                "download.prompt_for_download": false,
                "plugins.always_open_pdf_externally": true,
            },
        },
    });
    let caps = caps.as_object().unwrap().clone().into_iter().collect();
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{driver_port}"))
        .await
        .expect("a WebDriver session with Chromium")
}

/// Runs one step; on failure saves a screenshot and the page source (with
/// `NACHWEIS_SCREENSHOTS` set, after every step, to look at the layout).
async fn step<T, F: std::future::Future<Output = Result<T, String>>>(client: &Client, name: &str, f: F) -> T {
    match f.await {
        Ok(v) => {
            if std::env::var_os("NACHWEIS_SCREENSHOTS").is_some() {
                let dir = root().join("target/browser-screenshots");
                std::fs::create_dir_all(&dir).ok();
                if let Ok(shot) = client.screenshot().await {
                    std::fs::write(dir.join(format!("{name}.png")), shot).ok();
                }
            }
            v
        }
        Err(e) => {
            let dir = root().join("target/browser-screenshots");
            std::fs::create_dir_all(&dir).ok();
            let png = dir.join(format!("{name}.png"));
            if let Ok(shot) = client.screenshot().await {
                std::fs::write(&png, shot).ok();
            }
            let html = client.source().await.unwrap_or_default();
            std::fs::write(dir.join(format!("{name}.html")), &html).ok();
            panic!("step {name:?} failed: {e}\n(screenshot: {})", png.display());
        }
    }
}

fn cmd<E: std::fmt::Display>(e: E) -> String {
    e.to_string()
}

async fn text_of(client: &Client, css: &str) -> Result<String, String> {
    client.find(Locator::Css(css)).await.map_err(cmd)?.text().await.map_err(cmd)
}

async fn wait_for_text(client: &Client, css: &str, needle: &str) -> Result<(), String> {
    let start = Instant::now();
    loop {
        if let Ok(t) = text_of(client, css).await
            && t.contains(needle)
        {
            return Ok(());
        }
        if start.elapsed() > Duration::from_secs(20) {
            let shown = text_of(client, "main").await.unwrap_or_default();
            return Err(format!("{css} never showed {needle:?}; the page shows: {shown}"));
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
}

/// The words `pdftotext -bbox-layout` finds, with their box in millimetres.
fn pdf_words(pdf: &Path) -> Vec<(String, f64, f64)> {
    let out = Command::new("pdftotext").arg("-bbox-layout").arg(pdf).arg("-").output().expect("pdftotext runs");
    let xml = String::from_utf8_lossy(&out.stdout).to_string();
    let pt = 25.4 / 72.0;
    xml.split("<word ")
        .skip(1)
        .filter_map(|w| {
            let attr = |name: &str| -> Option<f64> { w.split(&format!("{name}=\"")).nth(1)?.split('"').next()?.parse().ok() };
            let text = w.split('>').nth(1)?.split('<').next()?.to_string();
            Some((text, attr("xMin")? * pt, attr("yMin")? * pt))
        })
        .collect()
}

/// A SQLite database with one incomplete case (fixture `uvg-19`, checked
/// by the real pipeline) and a caseworker account of its Landkreis.
async fn seed_case(database_url: &str, username: &str, display_name: &str) -> (std::sync::Arc<dyn nachweis::store::Store>, String) {
    seed_fixture(database_url, "uvg-19-verschluesselt-leer-kaputt", username, display_name, Role::Caseworker).await
}

/// A SQLite database with the case of one fixture bundle (checked by the
/// real pipeline, no tenant: `lk-musterland`) and an account of that Landkreis.
async fn seed_fixture(
    database_url: &str,
    fixture: &str,
    username: &str,
    display_name: &str,
    role: Role,
) -> (std::sync::Arc<dyn nachweis::store::Store>, String) {
    let store = nachweis::store::connect(database_url).await.unwrap();
    let settings = Settings { default_tenant: "lk-musterland".into(), ..Settings::default() };
    let schemas = nachweis::startup::load_schemas(&root().join("schemas")).unwrap();
    let extractor = SandboxExtractor::new(PathBuf::from(env!("CARGO_BIN_EXE_nachweis")), Limits::default());
    let pipeline = Arc::new(Pipeline { schemas: schemas.into(), extractor: Arc::new(extractor), settings });
    let bundle = nachweis::intake::read_bundle_dir(&root().join("fixtures/bundles").join(fixture)).unwrap();
    let Processed::Recorded { case_id, .. } = process_one(pipeline, Arc::clone(&store), bundle, chrono::Utc::now().date_naive()).await.unwrap()
    else {
        panic!("the case is recorded")
    };
    store
        .add_user(&User {
            username: username.into(),
            display_name: display_name.into(),
            tenant: "lk-musterland".into(),
            role,
            password_hash: nachweis::web::auth::hash_password(PASSWORD).unwrap(),
            disabled: false,
            created_at: chrono::Utc::now(),
        })
        .await
        .unwrap();
    (store, case_id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caseworker_reviews_corrects_edits_and_approves_a_letter_in_the_browser() {
    let tmp = tempfile::tempdir().unwrap();
    let database_url = format!("sqlite://{}", tmp.path().join("browser.sqlite").display());
    let (_store, case_id) = seed_case(&database_url, "sachbearbeitung", "Sina Sachbearbeiterin").await;
    let (_server, base) = start_server(&database_url);
    let (_driver, driver_port) = start_chromedriver();
    let downloads = tmp.path().join("downloads");
    std::fs::create_dir_all(&downloads).unwrap();
    let client = browser(driver_port, &tmp.path().join("profile"), &downloads).await;

    step(&client, "01-sign-in", async {
        client.goto(&format!("{base}/faelle")).await.map_err(cmd)?;
        wait_for_text(&client, "h1", "nachweis").await?;
        client.find(Locator::Id("benutzername")).await.map_err(cmd)?.send_keys("sachbearbeitung").await.map_err(cmd)?;
        client.find(Locator::Id("passwort")).await.map_err(cmd)?.send_keys(PASSWORD).await.map_err(cmd)?;
        client.find(Locator::Css("button[type=submit]")).await.map_err(cmd)?.click().await.map_err(cmd)?;
        wait_for_text(&client, "h1", "Fallübersicht").await?;
        fits_width(&client, "the queue").await
    })
    .await;

    step(&client, "01b-keyboard-order", async {
        // The first Tab reaches the skip link; following it lands in the main content.
        let body = client.find(Locator::Css("body")).await.map_err(cmd)?;
        body.send_keys(&char::from(fantoccini::key::Key::Tab).to_string()).await.map_err(cmd)?;
        let first = client.active_element().await.map_err(cmd)?;
        let label = first.text().await.map_err(cmd)?;
        if label != "Zum Inhalt springen" {
            return Err(format!("the first focus stop is {label:?}, not the skip link"));
        }
        first.send_keys(&char::from(fantoccini::key::Key::Enter).to_string()).await.map_err(cmd)?;
        let after = client.active_element().await.map_err(cmd)?.attr("id").await.map_err(cmd)?;
        if after.as_deref() != Some("inhalt") {
            return Err(format!("after the skip link the focus is on {after:?}, not on the main content"));
        }
        // Then the filters, in reading order.
        let mut order = Vec::new();
        for _ in 0..3 {
            client.active_element().await.map_err(cmd)?.send_keys(&char::from(fantoccini::key::Key::Tab).to_string()).await.map_err(cmd)?;
            order.push(client.active_element().await.map_err(cmd)?.attr("id").await.map_err(cmd)?.unwrap_or_default());
        }
        if order != ["f-suche", "f-verfahren", "f-ergebnis"] {
            return Err(format!("focus order after the skip link: {order:?}"));
        }
        Ok(())
    })
    .await;

    step(&client, "02-claim-from-queue", async {
        let button = client.find(Locator::Css(&format!("button[aria-label='Fall {case_id} übernehmen']"))).await.map_err(cmd)?;
        button.click().await.map_err(cmd)?;
        wait_for_text(&client, "[role=status]", "Sie bearbeiten diesen Fall jetzt").await
    })
    .await;

    step(&client, "03-correct-classification", async {
        // The segment read as Vaterschaftsanerkennung is the proof of separation.
        let forms = client.find_all(Locator::Css("form.correction")).await.map_err(cmd)?;
        let mut target = None;
        for f in forms {
            let doc = f.find(Locator::Css("input[name=dokument]")).await.map_err(cmd)?.attr("value").await.map_err(cmd)?;
            if doc.as_deref() == Some("d6") {
                target = Some(f);
            }
        }
        let form = target.ok_or("no correction form for d6")?;
        form.find(Locator::Css("select")).await.map_err(cmd)?.select_by_value("trennungsnachweis").await.map_err(cmd)?;
        form.find(Locator::Css("button")).await.map_err(cmd)?.click().await.map_err(cmd)?;
        wait_for_text(&client, "[role=status]", "Die Zuordnung wurde korrigiert").await?;
        let page = text_of(&client, "main").await?;
        if !page.contains("korrigiert, vorher") {
            return Err("the corrected segment does not say what it was before".into());
        }
        Ok(())
    })
    .await;

    step(&client, "04-edit-and-second-tab", async {
        let area = client.find(Locator::Id("brieftext")).await.map_err(cmd)?;
        let text = area.prop("value").await.map_err(cmd)?.unwrap_or_default();
        if !text.contains("Vaterschaft") {
            return Err(format!("after the correction the letter should ask for the Vaterschaft proof: {text}"));
        }
        area.send_keys("\nPS: Bitte nennen Sie bei Rückfragen das Aktenzeichen.").await.map_err(cmd)?;
        Ok(())
    })
    .await;

    // A colleague's tab (same account) with the same draft open.
    let first = client.window().await.unwrap();
    let second = client.new_window(true).await.unwrap().handle;
    client.switch_to_window(second.clone()).await.unwrap();
    step(&client, "05-open-second-tab", async {
        client.goto(&format!("{base}/faelle/{case_id}")).await.map_err(cmd)?;
        wait_for_text(&client, "h1", &case_id).await
    })
    .await;
    client.switch_to_window(first).await.unwrap();

    step(&client, "06-approve", async {
        client.find(Locator::Css("button[formaction$='/freigabe']")).await.map_err(cmd)?.click().await.map_err(cmd)?;
        wait_for_text(&client, "[role=status]", "Das Schreiben ist freigegeben").await
    })
    .await;

    let pdf_path = step(&client, "07-download-pdf", async {
        client.find(Locator::LinkText("PDF herunterladen")).await.map_err(cmd)?.click().await.map_err(cmd)?;
        let start = Instant::now();
        loop {
            let done: Vec<PathBuf> = std::fs::read_dir(&downloads)
                .map_err(cmd)?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "pdf"))
                .collect();
            if let Some(p) = done.into_iter().next() {
                return Ok(p);
            }
            if start.elapsed() > Duration::from_secs(20) {
                return Err("no PDF arrived in the download directory".into());
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await;

    step(&client, "08-second-approval-does-nothing", async {
        client.switch_to_window(second.clone()).await.map_err(cmd)?;
        client.find(Locator::Css("button[formaction$='/freigabe']")).await.map_err(cmd)?.click().await.map_err(cmd)?;
        wait_for_text(&client, "[role=alert]", "bereits entschieden").await
    })
    .await;
    client.close().await.ok();

    // The downloaded letter: the edit, the deadline notice, the address in the field.
    let text = String::from_utf8(Command::new("pdftotext").arg("-layout").arg(&pdf_path).arg("-").output().unwrap().stdout).unwrap();
    assert!(text.contains("Bitte nennen Sie bei Rückfragen das Aktenzeichen."), "{text}");
    assert!(text.contains("§ 66 Abs. 3 SGB I"), "{text}");
    assert!(text.contains("Vaterschaft"), "{text}");
    let words = pdf_words(&pdf_path);
    let (_, x, y) = words.iter().find(|(w, _, _)| w == "Kerstin").cloned().expect("the applicant's name is on the letter");
    assert!((20.0..=105.0).contains(&x), "the address starts {x:.1} mm from the left");
    assert!((62.7..=90.0).contains(&y), "the recipient line is {y:.1} mm from the top, inside the Anschriftzone");

    // Exactly one letter and one event, whatever the browser sent.
    let pool = sqlx::SqlitePool::connect(&database_url).await.unwrap();
    let letters: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM letters").fetch_one(&pool).await.unwrap();
    let events: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE event_type = 'letter.approved'").fetch_one(&pool).await.unwrap();
    assert_eq!((letters, events), (1, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_double_click_on_approve_releases_one_letter() {
    let tmp = tempfile::tempdir().unwrap();
    let database_url = format!("sqlite://{}", tmp.path().join("browser.sqlite").display());
    let (store, case_id) = seed_case(&database_url, "sb", "SB").await;
    store.claim_case(nachweis::store::review::Scope { tenant: "lk-musterland", default_tenant: "lk-musterland" }, &case_id, "sb", false).await.unwrap();
    let (_server, base) = start_server(&database_url);
    let (_driver, driver_port) = start_chromedriver();
    let client = browser(driver_port, &tmp.path().join("profile"), tmp.path()).await;
    step(&client, "dc-01-sign-in", async {
        client.goto(&format!("{base}/faelle/{case_id}")).await.map_err(cmd)?;
        client.find(Locator::Id("benutzername")).await.map_err(cmd)?.send_keys("sb").await.map_err(cmd)?;
        client.find(Locator::Id("passwort")).await.map_err(cmd)?.send_keys(PASSWORD).await.map_err(cmd)?;
        client.find(Locator::Css("button[type=submit]")).await.map_err(cmd)?.click().await.map_err(cmd)?;
        wait_for_text(&client, "h1", &case_id).await
    })
    .await;
    step(&client, "dc-02-double-click", async {
        let button = client.find(Locator::Css("button[formaction$='/freigabe']")).await.map_err(cmd)?;
        use fantoccini::actions::InputSource as _;
        let actions = fantoccini::actions::MouseActions::new("maus".into())
            .then(fantoccini::actions::PointerAction::MoveToElement { element: button, duration: None, x: 5.0, y: 5.0 })
            .then(fantoccini::actions::PointerAction::Down { button: fantoccini::actions::MOUSE_BUTTON_LEFT })
            .then(fantoccini::actions::PointerAction::Up { button: fantoccini::actions::MOUSE_BUTTON_LEFT })
            .then(fantoccini::actions::PointerAction::Down { button: fantoccini::actions::MOUSE_BUTTON_LEFT })
            .then(fantoccini::actions::PointerAction::Up { button: fantoccini::actions::MOUSE_BUTTON_LEFT });
        client.perform_actions(actions).await.map_err(cmd)?;
        // Whichever request the browser kept, the page ends on the approved case.
        let start = Instant::now();
        loop {
            let main = text_of(&client, "main").await.unwrap_or_default();
            if main.contains("PDF herunterladen") {
                return Ok(());
            }
            if start.elapsed() > Duration::from_secs(20) {
                return Err(format!("the case never showed its letter: {main}"));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await;
    client.close().await.ok();
    let pool = sqlx::SqlitePool::connect(&database_url).await.unwrap();
    let letters: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM letters").fetch_one(&pool).await.unwrap();
    let events: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE event_type = 'letter.approved'").fetch_one(&pool).await.unwrap();
    let approvals: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE action = 'draft_approved'").fetch_one(&pool).await.unwrap();
    assert_eq!((letters, events, approvals), (1, 1, 1));
}

/// Replaces the content of a text field as a person would: select all, type.
async fn retype(client: &Client, id: &str, text: &str) -> Result<(), String> {
    let field = client.find(Locator::Id(id)).await.map_err(cmd)?;
    field.clear().await.map_err(cmd)?;
    field.send_keys(text).await.map_err(cmd)
}

/// The page fits the 1366 px window: no horizontal scrolling, neither of
/// the page nor of a table inside its scroll wrapper.
async fn fits_width(client: &Client, what: &str) -> Result<(), String> {
    let v = client
        .execute(
            "return [document.documentElement.scrollWidth, window.innerWidth,
                     Math.max(0, ...[...document.querySelectorAll('.table-scroll')].map(e => e.scrollWidth - e.clientWidth))];",
            vec![],
        )
        .await
        .map_err(cmd)?;
    let (scroll, inner, table) = (v[0].as_f64().unwrap_or(0.0), v[1].as_f64().unwrap_or(0.0), v[2].as_f64().unwrap_or(0.0));
    if scroll > inner + 1.0 {
        return Err(format!("{what} scrolls sideways: {scroll} px wide in a {inner} px window"));
    }
    if table > 1.0 {
        return Err(format!("a table of {what} scrolls sideways by {table} px"));
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_fixes_an_uploaded_schema_in_place_saves_replays_and_activates_it() {
    let tmp = tempfile::tempdir().unwrap();
    let database_url = format!("sqlite://{}", tmp.path().join("browser.sqlite").display());
    // A complete case of the admin's tenant (the bundle names none: the default).
    let (_store, case_id) = seed_fixture(&database_url, "uvg-11-buergergeld-statt-lohn", "verwaltung", "Vera Verwaltung", Role::Admin).await;
    let shipped = std::fs::read_to_string(root().join("schemas/procedures/uvg.toml")).unwrap();
    // The Unterhaltstitel asked for always, under a new label.
    let fixed = shipped
        .replacen("when = { fact = \"maintenance_title_exists\", equals = true }\n", "", 1)
        .replacen("version = \"2026.11.1\"", "version = \"2026.12.1\"", 1);
    let broken = fixed.replacen("match_child_name = true", "match_child_nme = true", 1);

    let (_server, base) = start_server(&database_url);
    let (_driver, driver_port) = start_chromedriver();
    let client = browser(driver_port, &tmp.path().join("profile"), tmp.path()).await;

    step(&client, "admin-01-sign-in", async {
        client.goto(&format!("{base}/verwaltung")).await.map_err(cmd)?;
        client.find(Locator::Id("benutzername")).await.map_err(cmd)?.send_keys("verwaltung").await.map_err(cmd)?;
        client.find(Locator::Id("passwort")).await.map_err(cmd)?.send_keys(PASSWORD).await.map_err(cmd)?;
        client.find(Locator::Css("button[type=submit]")).await.map_err(cmd)?.click().await.map_err(cmd)?;
        wait_for_text(&client, "h1", "Verfahren verwalten").await?;
        fits_width(&client, "the overview").await
    })
    .await;

    step(&client, "admin-02-upload-with-an-error", async {
        client.find(Locator::LinkText("Hochladen und prüfen")).await.map_err(cmd)?.click().await.map_err(cmd)?;
        wait_for_text(&client, "h1", "Schema hochladen").await?;
        retype(&client, "datei", "procedures/uvg.toml").await?;
        retype(&client, "text", &broken).await?;
        retype(&client, "kommentar", "Unterhaltstitel immer verlangen").await?;
        client.find(Locator::Css("form.upload button[type=submit]:not([formaction])")).await.map_err(cmd)?.click().await.map_err(cmd)?;
        wait_for_text(&client, "[role=alert]", "Die Datei ist nicht gültig").await?;
        // The message stands under the marked line; the list links to it.
        let marked = text_of(&client, "tr.line-error").await?;
        if !marked.contains("match_child_nme") {
            return Err(format!("the marked line is {marked:?}"));
        }
        let diag = text_of(&client, "tr.diag").await?;
        if !(diag.contains("Unbekannter Schlüssel „match_child_nme“") && diag.contains("Spalte 1")) {
            return Err(format!("the message under the line is {diag:?}"));
        }
        client.find(Locator::Css(".diag-list a")).await.map_err(cmd)?.click().await.map_err(cmd)?;
        let url = client.current_url().await.map_err(cmd)?;
        let line = broken.lines().position(|l| l.contains("match_child_nme")).unwrap() + 1;
        if url.fragment() != Some(format!("z{line}").as_str()) {
            return Err(format!("the error link went to {url}"));
        }
        fits_width(&client, "the check page").await
    })
    .await;

    step(&client, "admin-03-fix-and-save", async {
        // The form kept the text; the admin corrects it and checks again.
        let kept = client.find(Locator::Id("text")).await.map_err(cmd)?.prop("value").await.map_err(cmd)?.unwrap_or_default();
        if kept != broken {
            return Err("the textarea did not keep the submitted text".into());
        }
        retype(&client, "text", &fixed).await?;
        client.find(Locator::Css("form.upload button[type=submit]:not([formaction])")).await.map_err(cmd)?.click().await.map_err(cmd)?;
        wait_for_text(&client, "[role=status]", "Die Datei ist gültig").await?;
        client.find(Locator::Css("button[formaction='/verwaltung/speichern']")).await.map_err(cmd)?.click().await.map_err(cmd)?;
        wait_for_text(&client, "[role=status]", "Gespeichert als uvg@2 (von verwaltung)").await
    })
    .await;

    step(&client, "admin-04-replay", async {
        client.find(Locator::LinkText("Probelauf über die Fälle Ihres Landkreises")).await.map_err(cmd)?.click().await.map_err(cmd)?;
        client.find(Locator::Css("form[action='/verwaltung/probelauf'] button")).await.map_err(cmd)?.click().await.map_err(cmd)?;
        wait_for_text(&client, "[role=status]", "bei 1 das Gesamtergebnis").await?;
        let table = text_of(&client, "table.replay").await?;
        if !(table.contains(&case_id) && table.contains("vollständig → unvollständig") && table.contains("nicht nötig → fehlt")) {
            return Err(format!("the replay shows {table:?}"));
        }
        fits_width(&client, "the replay").await
    })
    .await;

    step(&client, "admin-05-activate", async {
        client.find(Locator::LinkText("uvg@2 für Ihren Landkreis aktivieren …")).await.map_err(cmd)?.click().await.map_err(cmd)?;
        wait_for_text(&client, "main", "Was sich für Ihren Landkreis ändert").await?;
        client.find(Locator::Css("form[action='/verwaltung/aktivieren'] button")).await.map_err(cmd)?.click().await.map_err(cmd)?;
        wait_for_text(&client, "[role=status]", "uvg@2 ist jetzt für Ihren Landkreis (lk-musterland) aktiv").await
    })
    .await;
    client.close().await.ok();

    let pool = sqlx::SqlitePool::connect(&database_url).await.unwrap();
    let (author, text): (String, String) =
        sqlx::query_as("SELECT author, json_extract(sources, '$.procedure.text') FROM schema_versions WHERE version_id = 'uvg@2'").fetch_one(&pool).await.unwrap();
    assert_eq!(author, "verwaltung");
    assert_eq!(text, fixed, "the stored text is the typed one, with LF line breaks");
    let active: String = sqlx::query_scalar("SELECT version_id FROM schema_activations WHERE subject = 'uvg' AND tenant = 'lk-musterland'").fetch_one(&pool).await.unwrap();
    assert_eq!(active, "uvg@2");
    let actions: Vec<String> = sqlx::query_scalar("SELECT action FROM audit_log WHERE actor = 'verwaltung' AND action LIKE 'schema_%' ORDER BY id").fetch_all(&pool).await.unwrap();
    assert_eq!(actions, ["schema_validated", "schema_validated", "schema_added", "schema_replayed", "schema_activated"]);
}

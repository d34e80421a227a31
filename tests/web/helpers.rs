//! `spawn_app()` and the small HTTP client the web tests share.
use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use std::path::PathBuf;
use std::sync::Arc;
use tower::ServiceExt as _;

use nachweis::config::Settings;
use nachweis::extract::sandbox::{Limits, SandboxExtractor};
use nachweis::store::Store;
use nachweis::store::review::{Role, User};
use nachweis::worker::{Pipeline, Processed, process_one};

pub const TENANT: &str = "lk-musterland";
pub const OTHER_TENANT: &str = "stadt-beispielburg";
pub const PASSWORD: &str = "ein-langes-test-passwort";

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The app on a fresh SQLite database, with the real schemas, fonts and
/// sandboxed page renderer.
pub struct TestApp {
    pub router: Router,
    pub store: Arc<dyn Store>,
    pub settings: Settings,
    _dir: tempfile::TempDir,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(configure: impl FnOnce(&mut Settings)) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = Settings {
        database_url: format!("sqlite://{}", dir.path().join("web.sqlite").display()),
        schemas_dir: root().join("schemas"),
        default_tenant: TENANT.into(),
        ..Settings::default()
    };
    configure(&mut settings);
    let (store, registry) = nachweis::store::connect_with_registry(&settings.database_url).await.unwrap();
    let mut state = nachweis::startup::web_state(&settings, Arc::clone(&store), registry, None).await.unwrap();
    // The page renderer is this crate's binary started as a child.
    let renderer = nachweis::extract::render::PageRenderer::new(
        PathBuf::from(env!("CARGO_BIN_EXE_nachweis")),
        nachweis::extract::render::PageRenderer::default_limits(),
    );
    let pages: Arc<dyn nachweis::web::PageImages> = Arc::new(nachweis::web::page_images::HighlightedPages::new(renderer));
    Arc::get_mut(&mut state).expect("fresh state").pages = Some(pages);
    TestApp { router: nachweis::web::app(state), store, settings, _dir: dir }
}

/// A response with its body read.
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl std::fmt::Debug for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status, self.text())
    }
}

impl Reply {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }

    pub fn location(&self) -> Option<String> {
        self.headers.get(header::LOCATION).map(|v| v.to_str().unwrap().to_string())
    }

    /// The value a `Set-Cookie` header gives the named cookie.
    pub fn cookie(&self, name: &str) -> Option<String> {
        self.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(|v| v.split(';').next())
            .filter_map(|kv| kv.split_once('='))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_string())
    }

    /// The first hidden `csrf` field of a page.
    pub fn csrf(&self) -> String {
        let text = self.text();
        let marker = "name=\"csrf\" value=\"";
        let start = text.find(marker).unwrap_or_else(|| panic!("no csrf field in {text}")) + marker.len();
        text[start..].split('"').next().unwrap().to_string()
    }
}

impl TestApp {
    pub async fn send(&self, request: Request<Body>) -> Reply {
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let body = axum::body::to_bytes(response.into_body(), 64 << 20).await.unwrap().to_vec();
        Reply { status, headers, body }
    }

    pub async fn get(&self, path: &str, cookie: Option<&str>) -> Reply {
        let mut req = Request::builder().uri(path);
        if let Some(c) = cookie {
            req = req.header(header::COOKIE, c);
        }
        self.send(req.body(Body::empty()).unwrap()).await
    }

    pub async fn post_form(&self, path: &str, cookie: Option<&str>, fields: &[(&str, &str)]) -> Reply {
        let body: String = fields.iter().map(|(k, v)| format!("{k}={}", urlencode(v))).collect::<Vec<_>>().join("&");
        let mut req = Request::builder().method(Method::POST).uri(path).header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        if let Some(c) = cookie {
            req = req.header(header::COOKIE, c);
        }
        self.send(req.body(Body::from(body)).unwrap()).await
    }

    pub async fn api(&self, method: Method, path: &str, auth: &Auth, body: Option<serde_json::Value>) -> Reply {
        let mut req = Request::builder().method(method).uri(path);
        match auth {
            Auth::Bearer(t) => req = req.header(header::AUTHORIZATION, format!("Bearer {t}")),
            Auth::Browser(b) => req = req.header(header::COOKIE, b.cookie.clone()).header("x-csrf-token", b.csrf.clone()),
            Auth::CookieOnly(b) => req = req.header(header::COOKIE, b.cookie.clone()),
        }
        let req = match body {
            Some(v) => req.header(header::CONTENT_TYPE, "application/json").body(Body::from(v.to_string())),
            None => req.body(Body::empty()),
        };
        self.send(req.unwrap()).await
    }

    /// Creates an account with `PASSWORD`.
    pub async fn add_user(&self, username: &str, role: Role, tenant: &str) {
        let user = User {
            username: username.into(),
            display_name: format!("{username} Test"),
            tenant: tenant.into(),
            role,
            password_hash: nachweis::web::auth::hash_password(PASSWORD).unwrap(),
            disabled: false,
            created_at: chrono::Utc::now(),
        };
        self.store.add_user(&user).await.unwrap();
    }

    /// Signs in through the form, as a browser does.
    pub async fn sign_in(&self, username: &str) -> Browser {
        self.try_sign_in(username, PASSWORD, None).await.expect("sign-in succeeds")
    }

    pub async fn try_sign_in(&self, username: &str, password: &str, extra_cookie: Option<&str>) -> Result<Browser, Reply> {
        let form = self.get("/anmelden", None).await;
        let login_cookie = form.cookie(nachweis::web::auth::login_cookie(self.settings.secure_cookies)).expect("login csrf cookie");
        let cookie_name = nachweis::web::auth::login_cookie(self.settings.secure_cookies);
        let mut cookie = format!("{cookie_name}={login_cookie}");
        if let Some(extra) = extra_cookie {
            cookie = format!("{cookie}; {extra}");
        }
        let reply = self
            .post_form("/anmelden", Some(&cookie), &[("benutzername", username), ("passwort", password), ("csrf", &form.csrf()), ("weiter", "/faelle")])
            .await;
        if reply.status != StatusCode::SEE_OTHER {
            return Err(reply);
        }
        let name = nachweis::web::auth::session_cookie(self.settings.secure_cookies);
        let token = reply.cookie(name).expect("session cookie");
        let cookie = format!("{name}={token}");
        let page = self.get("/faelle", Some(&cookie)).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.text());
        Ok(Browser { cookie, csrf: page.csrf() })
    }

    /// Runs a fixture bundle through the real pipeline into the store.
    pub async fn seed(&self, fixture: &str) -> String {
        let schemas = nachweis::startup::load_schemas(&root().join("schemas")).unwrap();
        let extractor = SandboxExtractor::new(PathBuf::from(env!("CARGO_BIN_EXE_nachweis")), Limits::default());
        let pipeline = Arc::new(Pipeline { schemas: schemas.into(), extractor: Arc::new(extractor), settings: self.settings.clone() });
        let bundle = nachweis::intake::read_bundle_dir(&root().join("fixtures/bundles").join(fixture)).unwrap();
        match process_one(pipeline, Arc::clone(&self.store), bundle, chrono::Utc::now().date_naive()).await.unwrap() {
            Processed::Recorded { case_id, .. } | Processed::AlreadyRecorded { case_id } => case_id,
        }
    }

    /// Signs in `username` as a caseworker of `TENANT` (creating the account).
    pub async fn caseworker(&self, username: &str) -> Browser {
        self.add_user(username, Role::Caseworker, TENANT).await;
        self.sign_in(username).await
    }

    /// The pending draft's id of a case.
    pub async fn pending_draft(&self, case_id: &str) -> i64 {
        let scope = nachweis::store::review::Scope { tenant: TENANT, default_tenant: TENANT };
        let detail = self.store.case_detail(scope, case_id).await.unwrap().expect("case");
        detail.pending_draft().expect("a pending draft").draft_id
    }

    /// Counts rows with a raw query on the test database.
    pub async fn count(&self, sql: &'static str) -> i64 {
        let pool = sqlx::SqlitePool::connect(&self.settings.database_url).await.unwrap();
        let n: i64 = sqlx::query_scalar(sql).fetch_one(&pool).await.unwrap();
        pool.close().await;
        n
    }
}

/// A signed-in browser: its session cookie and the session's CSRF token.
#[derive(Clone)]
pub struct Browser {
    pub cookie: String,
    pub csrf: String,
}

pub enum Auth {
    Bearer(String),
    Browser(Browser),
    CookieOnly(Browser),
}

pub fn urlencode(s: &str) -> String {
    nachweis::web::urlencode(s).replace('/', "%2F")
}

//! The review server (`nachweis serve`): server-rendered German pages for
//! caseworkers, auditors and admins (procedure schemas under `/verwaltung`),
//! the JSON API with its OpenAPI document, and the middleware every
//! response passes (security headers, server timing).
//!
//! `app(state)` builds the router; handlers live in `pages`, `api` and
//! `auth` and call the review service (`crate::review`) for every action.
use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post, put};
use std::sync::Arc;

use crate::config::Settings;
use crate::review::Review;
use crate::store::Store;

pub mod admin;
pub mod api;
pub mod auth;
pub mod error;
pub mod labels;
pub mod page_images;
pub mod pages;
pub mod templates;

/// Capability: a page of an upload as PNG with the given evidence phrases
/// highlighted (the rendering runs sandboxed; see `extract`).
pub trait PageImages: Send + Sync {
    /// `key` identifies the content (its SHA-256) for caching.
    fn page_png(&self, key: &str, bytes: &[u8], media_type: &str, page: u32, phrases: &[String]) -> Result<Vec<u8>, String>;
}

/// What every handler shares.
pub struct AppState {
    pub store: Arc<dyn Store>,
    /// Schema versions (the admin pages).
    pub registry: Arc<dyn crate::store::SchemaRegistry>,
    pub review: Arc<Review>,
    pub settings: Arc<Settings>,
    /// Absent where no renderer is configured: pages then show no images.
    pub pages: Option<Arc<dyn PageImages>>,
}

/// The stylesheet, compiled in.
const CSS: &str = include_str!("static/app.css");

/// The whole router: pages, API, static files, with the security headers.
pub fn app(state: Arc<AppState>) -> Router {
    let secure = state.settings.secure_cookies;
    Router::new()
        .route("/", get(|| async { Redirect::to("/faelle") }))
        .route("/anmelden", get(pages::login_page).post(pages::login))
        .route("/abmelden", post(pages::logout))
        .route("/faelle", get(pages::queue))
        .route("/faelle/{case_id}", get(pages::case))
        .route("/faelle/{case_id}/uebernehmen", post(pages::claim))
        .route("/faelle/{case_id}/zurueckgeben", post(pages::release))
        .route("/faelle/{case_id}/korrektur", post(pages::correct))
        .route("/faelle/{case_id}/entwurf", post(pages::save_draft))
        .route("/faelle/{case_id}/freigabe", post(pages::approve))
        .route("/faelle/{case_id}/ablehnung", post(pages::reject))
        .route("/faelle/{case_id}/abschluss", post(pages::close))
        .route("/faelle/{case_id}/schreiben/{file}", get(pages::letter))
        .route("/faelle/{case_id}/vorschau/{file}", get(pages::preview))
        .route("/faelle/{case_id}/dokumente/{index}/seiten/{file}", get(pages::page_image))
        .route("/faelle/{case_id}/protokoll", get(pages::case_audit))
        .route("/faelle/{case_id}/protokoll.jsonl", get(pages::case_audit_export))
        .route("/protokoll", get(pages::audit_index))
        .route("/verwaltung", get(admin::overview))
        .route("/verwaltung/hochladen", get(admin::upload_page))
        .route("/verwaltung/pruefen", post(admin::check))
        .route("/verwaltung/speichern", post(admin::save))
        .route("/verwaltung/versionen/{version_id}", get(admin::version))
        .route("/verwaltung/vergleich", get(admin::diff))
        .route("/verwaltung/probelauf", get(admin::replay_page).post(admin::replay))
        .route("/verwaltung/aktivieren", get(admin::activate_page).post(admin::activate))
        .route("/api/openapi.json", get(api::openapi))
        .route("/api/v1/cases", get(api::list_cases))
        .route("/api/v1/cases/{case_id}", get(api::get_case))
        .route("/api/v1/cases/{case_id}/claim", post(api::claim))
        .route("/api/v1/cases/{case_id}/release", post(api::release))
        .route("/api/v1/cases/{case_id}/corrections", post(api::correct))
        .route("/api/v1/cases/{case_id}/draft", put(api::edit))
        .route("/api/v1/cases/{case_id}/approve", post(api::approve))
        .route("/api/v1/cases/{case_id}/reject", post(api::reject))
        .route("/api/v1/cases/{case_id}/close", post(api::close))
        .route("/api/v1/cases/{case_id}/letters/{draft_id}", get(api::letter))
        .route("/api/v1/cases/{case_id}/audit", get(api::audit))
        .route("/static/app.css", get(css))
        .fallback(|| async { error::PageError::status(axum::http::StatusCode::NOT_FOUND, "Diese Seite gibt es nicht.") })
        .with_state(state)
        .layer(middleware::from_fn(move |req, next| security_headers(req, next, secure)))
}

async fn css() -> Response {
    let mut response = CSS.into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/css; charset=utf-8"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=3600"));
    response
}

/// Headers on every response: a strict CSP (no inline script or style, no
/// framing), no MIME sniffing, no referrer, HSTS over HTTPS, and the
/// server's own time for the request (`Server-Timing`), which the
/// benchmark reads.
async fn security_headers(request: Request, next: Next, secure: bool) -> Response {
    let started = std::time::Instant::now();
    let mut response = next.run(request).await;
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert("permissions-policy", HeaderValue::from_static("camera=(), microphone=(), geolocation=()"));
    h.insert("cross-origin-opener-policy", HeaderValue::from_static("same-origin"));
    if secure {
        h.insert(header::STRICT_TRANSPORT_SECURITY, HeaderValue::from_static("max-age=31536000"));
    }
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    if let Ok(v) = HeaderValue::from_str(&format!("app;dur={:.1}", started.elapsed().as_secs_f64() * 1000.0)) {
        h.insert("server-timing", v);
    }
    response
}

/// Counts every routed request in `metrics` by its route template (never
/// the path itself: case ids are not metric labels), method and status.
/// Applied with `Router::route_layer`, after routing, so the template is known.
pub fn with_request_metrics(router: Router, metrics: Arc<crate::metrics::Metrics>) -> Router {
    router.route_layer(middleware::from_fn(move |request: Request, next: Next| {
        let metrics = Arc::clone(&metrics);
        async move {
            let route = request.extensions().get::<axum::extract::MatchedPath>().map(|p| p.as_str().to_owned()).unwrap_or_else(|| "unmatched".into());
            let method = request.method().as_str().to_owned();
            let started = std::time::Instant::now();
            let response = next.run(request).await;
            metrics.http_request(&route, &method, response.status().as_u16(), started.elapsed());
            response
        }
    }))
}

/// Percent-encodes a value for a URL query or path segment.
pub fn urlencode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Serves the app on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router.into_make_service_with_connect_info::<std::net::SocketAddr>()).with_graceful_shutdown(shutdown).await
}

//! Operations endpoints: `/healthz` (the process is alive and answers),
//! `/readyz` (it can do its job: each registered check passes — database
//! reachable, broker connected and consuming, schemas loaded) and
//! `/metrics` (Prometheus, see `metrics`).
//!
//! `router` is a self-contained axum `Router` with its state already
//! applied, so `nachweis run` serves it alone and `nachweis serve` merges it.
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

use crate::metrics::{self, Metrics};
use crate::store::Store;

/// A readiness check that asks a component (the database, say) right now.
#[async_trait]
pub trait Probe: Send + Sync {
    /// `Err` carries a short reason for the `/readyz` body: no URLs, no
    /// credentials, no personal data.
    async fn probe(&self) -> Result<(), String>;
}

/// A readiness condition that a component sets and clears itself (the
/// broker session sets it while consuming). Clones share the flag.
#[derive(Debug, Clone, Default)]
pub struct ReadyFlag(Arc<AtomicBool>);

impl ReadyFlag {
    /// A flag that is already set (for conditions met before serving starts).
    pub fn ready() -> Self {
        let flag = ReadyFlag::default();
        flag.set(true);
        flag
    }

    pub fn set(&self, ready: bool) {
        self.0.store(ready, Ordering::SeqCst);
    }

    pub fn is_set(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

enum Check {
    Flag(ReadyFlag, &'static str),
    Probe(Arc<dyn Probe>),
}

/// The named checks behind `/readyz`; ready means every one passes.
#[derive(Default)]
pub struct Readiness {
    checks: Vec<(&'static str, Check)>,
}

/// How long one probe may take before `/readyz` counts it as failed: a
/// readiness endpoint that hangs is worse than one that says no.
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

impl Readiness {
    pub fn new() -> Self {
        Readiness::default()
    }

    /// Adds a flag; `unset` is what `/readyz` says while it is not set.
    pub fn flag(mut self, name: &'static str, flag: ReadyFlag, unset: &'static str) -> Self {
        self.checks.push((name, Check::Flag(flag, unset)));
        self
    }

    /// Adds a probe that is asked on every `/readyz` request.
    pub fn probe(mut self, name: &'static str, probe: Arc<dyn Probe>) -> Self {
        self.checks.push((name, Check::Probe(probe)));
        self
    }

    /// Runs every check (probes concurrently) and returns whether all
    /// passed, with each check's name and `"ok"` or its reason.
    pub async fn evaluate(&self) -> (bool, Vec<(&'static str, String)>) {
        let results = futures_util::future::join_all(self.checks.iter().map(|(name, check)| async move {
            let outcome = match check {
                Check::Flag(flag, unset) => if flag.is_set() { Ok(()) } else { Err((*unset).to_owned()) },
                Check::Probe(probe) => match tokio::time::timeout(PROBE_TIMEOUT, probe.probe()).await {
                    Ok(result) => result,
                    Err(_) => Err(format!("no answer within {} s", PROBE_TIMEOUT.as_secs())),
                },
            };
            (*name, outcome)
        }))
        .await;
        let ready = results.iter().all(|(_, r)| r.is_ok());
        (ready, results.into_iter().map(|(n, r)| (n, r.err().unwrap_or_else(|| "ok".to_owned()))).collect())
    }
}

/// Readiness of the store: a cheap query (the outbox backlog, which also
/// updates `nachweis_outbox_backlog`). Until the worker has opened the
/// store, the probe says so.
pub struct StoreProbe {
    store: OnceLock<Arc<dyn Store>>,
    metrics: Arc<Metrics>,
}

impl StoreProbe {
    pub fn new(metrics: Arc<Metrics>) -> Self {
        StoreProbe { store: OnceLock::new(), metrics }
    }

    /// Called once the store is open (the worker waits for the database).
    pub fn set_store(&self, store: Arc<dyn Store>) {
        let _ = self.store.set(store);
    }
}

#[async_trait]
impl Probe for StoreProbe {
    async fn probe(&self) -> Result<(), String> {
        let store = self.store.get().ok_or_else(|| "not connected yet".to_owned())?;
        match store.outbox_backlog().await {
            Ok(backlog) => {
                self.metrics.outbox_backlog.set(backlog);
                Ok(())
            }
            // The error kind only: sqlx messages can name hosts and users.
            Err(error) if error.is_transient() => Err("unreachable".to_owned()),
            Err(_) => Err("query failed".to_owned()),
        }
    }
}

/// What the handlers share.
#[derive(Clone)]
pub struct OpsState {
    pub metrics: Arc<Metrics>,
    pub readiness: Arc<Readiness>,
}

/// `/healthz`, `/readyz` and `/metrics`, with their state applied.
pub fn router(state: OpsState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .with_state(state)
}

/// Liveness: answering at all is the signal (a wedged runtime does not answer).
async fn healthz() -> Response {
    json_response(StatusCode::OK, json!({"status": "ok"}))
}

async fn readyz(State(state): State<OpsState>) -> Response {
    let (ready, checks) = state.readiness.evaluate().await;
    let checks: serde_json::Map<String, serde_json::Value> = checks.into_iter().map(|(n, r)| (n.to_owned(), r.into())).collect();
    let status = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    json_response(status, json!({"status": if ready { "ready" } else { "not_ready" }, "checks": checks}))
}

async fn metrics_text(State(state): State<OpsState>) -> Response {
    ([(header::CONTENT_TYPE, metrics::CONTENT_TYPE)], state.metrics.encode()).into_response()
}

fn json_response(status: StatusCode, body: serde_json::Value) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

/// Failures of the operations server.
#[derive(Debug, thiserror::Error)]
pub enum OpsError {
    #[error("cannot listen on {addr} (NACHWEIS_HTTP_ADDR): {source}")]
    Bind { addr: String, source: std::io::Error },
    #[error("the HTTP server stopped: {0}")]
    Serve(std::io::Error),
}

/// Binds the listener. Port 0 picks a free port (several workers on one
/// host); `local_addr` on the result says which.
pub async fn bind(addr: &str) -> Result<tokio::net::TcpListener, OpsError> {
    tokio::net::TcpListener::bind(addr).await.map_err(|source| OpsError::Bind { addr: addr.to_owned(), source })
}

/// Serves `router` on `listener` until `shutdown` resolves, then finishes
/// the requests in progress and returns.
pub async fn serve(listener: tokio::net::TcpListener, router: Router, shutdown: impl Future<Output = ()> + Send + 'static) -> Result<(), OpsError> {
    axum::serve(listener, router).with_graceful_shutdown(shutdown).await.map_err(OpsError::Serve)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt as _;

    struct Failing;

    #[async_trait]
    impl Probe for Failing {
        async fn probe(&self) -> Result<(), String> {
            Err("unreachable".into())
        }
    }

    async fn get_path(router: Router, path: &str) -> (StatusCode, String) {
        let response = router.oneshot(Request::get(path).body(Body::empty()).unwrap()).await.unwrap();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
        (status, String::from_utf8(bytes.to_vec()).unwrap())
    }

    fn state(readiness: Readiness) -> OpsState {
        OpsState { metrics: Arc::new(Metrics::new()), readiness: Arc::new(readiness) }
    }

    #[tokio::test]
    async fn readiness_fails_while_any_check_fails_and_says_which() {
        let broker = ReadyFlag::default();
        let readiness = Readiness::new()
            .flag("schemas", ReadyFlag::ready(), "not loaded")
            .flag("broker", broker.clone(), "not connected")
            .probe("database", Arc::new(Failing));
        let router = router(state(readiness));

        let (status, body) = get_path(router.clone(), "/readyz").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        let body: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(body["checks"]["schemas"], "ok");
        assert_eq!(body["checks"]["broker"], "not connected");
        assert_eq!(body["checks"]["database"], "unreachable");

        let (status, _) = get_path(router, "/healthz").await;
        assert_eq!(status, StatusCode::OK, "liveness does not depend on readiness");
    }

    #[tokio::test]
    async fn readiness_passes_when_every_flag_is_set() {
        let broker = ReadyFlag::default();
        let router = router(state(Readiness::new().flag("broker", broker.clone(), "not connected")));
        broker.set(true);
        let (status, body) = get_path(router, "/readyz").await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }

    #[tokio::test]
    async fn metrics_are_served_in_the_openmetrics_format() {
        let s = state(Readiness::new());
        s.metrics.bundles_duplicate.inc();
        let response = router(s).oneshot(Request::get("/metrics").body(Body::empty()).unwrap()).await.unwrap();
        assert_eq!(response.headers()[header::CONTENT_TYPE], metrics::CONTENT_TYPE);
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
        let text = String::from_utf8(bytes.to_vec()).unwrap();
        assert!(text.contains("nachweis_bundles_duplicate_total 1"), "{text}");
    }
}

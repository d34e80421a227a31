//! Server time of the review pages with 10 000 cases in the store.
//!
//! Seeds 10 000 cases of one Landkreis (and 2 000 of another) into SQLite —
//! and into PostgreSQL when `NACHWEIS_TEST_POSTGRES_URL` (or the default
//! local server) answers — each with the real report and draft of a fixture
//! bundle checked by the real pipeline, then times requests through the
//! router in-process (what `Server-Timing` reports: no network, no browser).
//! The baseline row is the sign-in page: a rendered template through the
//! same middleware, without the database; every other row is also given as
//! a multiple of it, which shows what the database queries add.
//!
//! Run: `cargo bench --bench web` (release build). Target: every page
//! under 100 ms at p95.
use axum::body::Body;
use axum::http::{Request, header};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tower::ServiceExt as _;

use nachweis::config::Settings;
use nachweis::extract::sandbox::{Limits, SandboxExtractor};
use nachweis::store::review::{Role, User};
use nachweis::worker::{Pipeline, Processed, process_one};

const CASES: usize = 10_000;
const OTHER_TENANT_CASES: usize = 2_000;
const REQUESTS: usize = 200;
const TENANT: &str = "lk-musterland";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A template case: the rows one real checked bundle produced.
struct Template {
    manifest: String,
    report: String,
    draft_text: String,
    draft_body: String,
    documents: Vec<(String, String, String, String, Option<String>, String)>,
}

async fn template() -> Template {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("t.sqlite").display());
    let store = nachweis::store::connect(&url).await.unwrap();
    let schemas = nachweis::startup::load_schemas(&root().join("schemas")).unwrap();
    let program = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/release/nachweis");
    let program = if program.exists() { program } else { std::env::current_exe().unwrap() };
    let extractor = SandboxExtractor::new(program, Limits::default());
    let pipeline = Arc::new(Pipeline { schemas: schemas.into(), extractor: Arc::new(extractor), settings: Settings::default() });
    let bundle = nachweis::intake::read_bundle_dir(&root().join("fixtures/bundles/uvg-19-verschluesselt-leer-kaputt")).unwrap();
    let Processed::Recorded { .. } = process_one(pipeline, store, bundle, chrono::Utc::now().date_naive()).await.expect("the template bundle is checked")
    else {
        panic!("recorded")
    };
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    let (manifest, report): (String, String) = sqlx::query_as("SELECT manifest, report FROM bundles").fetch_one(&pool).await.unwrap();
    let (draft_text, draft_body): (String, String) = sqlx::query_as("SELECT text, body FROM drafts").fetch_one(&pool).await.unwrap();
    let documents = sqlx::query_as("SELECT document_id, filename, media_type, sha256, declared_type, extracted FROM documents ORDER BY position")
        .fetch_all(&pool)
        .await
        .unwrap();
    Template { manifest, report, draft_text, draft_body, documents }
}

/// Inserts the cases in one transaction each batch (raw SQL: the bench
/// measures reading, and 12 000 recordings with fsync would take minutes).
macro_rules! seed {
    ($pool:expr, $t:expr, $ts:expr) => {{
        let verdicts = ["incomplete", "complete", "needs_review"];
        let base = chrono::Utc::now() - chrono::Duration::days(400);
        for batch in 0..((CASES + OTHER_TENANT_CASES) / 1000) {
            let mut tx = $pool.begin().await.unwrap();
            for i in batch * 1000..(batch + 1) * 1000 {
                let case_id = format!("case-bench{i:07}");
                let bundle_id = format!("bench-{i:07}");
                let tenant: Option<&str> = if i < CASES { if i % 2 == 0 { None } else { Some(TENANT) } } else { Some("lk-anderswo") };
                let verdict = verdicts[i % 3];
                let at = base + chrono::Duration::minutes(i as i64 * 47);
                let assignee: Option<String> = (i % 7 == 0).then(|| format!("sb{}", i % 5));
                sqlx::query("INSERT INTO cases (case_id, procedure, tenant, verdict, review_status, schema_version, created_at, updated_at, received_at, assignee)
                             VALUES ($1, 'uvg', $2, $3, $4, '2026.11.1', $5, $5, $5, $6)")
                    .bind(&case_id).bind(tenant).bind(verdict).bind(if i % 10 == 0 { "approved" } else { "pending_review" }).bind($ts(at)).bind(&assignee)
                    .execute(&mut *tx).await.unwrap();
                sqlx::query("INSERT INTO bundles (bundle_id, case_id, received_at, manifest, report, verdict, schema_version, recorded_at)
                             VALUES ($1, $2, $3, $4, $5, $6, '2026.11.1', $3)")
                    .bind(&bundle_id).bind(&case_id).bind($ts(at)).bind(serde_json::from_str::<serde_json::Value>(&$t.manifest).unwrap())
                    .bind(serde_json::from_str::<serde_json::Value>(&$t.report).unwrap()).bind(verdict)
                    .execute(&mut *tx).await.unwrap();
                for (pos, d) in $t.documents.iter().enumerate() {
                    sqlx::query("INSERT INTO documents (bundle_id, document_id, position, filename, media_type, sha256, declared_type, location, extracted)
                                 VALUES ($1, $2, $3, $4, $5, $6, $7, NULL, $8)")
                        .bind(&bundle_id).bind(&d.0).bind(pos as i64).bind(&d.1).bind(&d.2).bind(&d.3).bind(&d.4)
                        .bind(serde_json::from_str::<serde_json::Value>(&d.5).unwrap())
                        .execute(&mut *tx).await.unwrap();
                }
                sqlx::query("INSERT INTO drafts (case_id, bundle_id, version, kind, text, body, report, status, created_at)
                             VALUES ($1, $2, 1, 'letter', $3, $4, $5, $6, $7)")
                    .bind(&case_id).bind(&bundle_id).bind(&$t.draft_text).bind(serde_json::from_str::<serde_json::Value>(&$t.draft_body).unwrap())
                    .bind(serde_json::from_str::<serde_json::Value>(&$t.report).unwrap())
                    .bind(if i % 10 == 0 { "approved" } else { "pending_review" }).bind($ts(at))
                    .execute(&mut *tx).await.unwrap();
            }
            tx.commit().await.unwrap();
        }
    }};
}

fn sqlite_ts(at: chrono::DateTime<chrono::Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

fn pg_ts(at: chrono::DateTime<chrono::Utc>) -> chrono::DateTime<chrono::Utc> {
    at
}

struct Row {
    name: &'static str,
    p50: Duration,
    p95: Duration,
    max: Duration,
}

async fn measure(router: &axum::Router, cookie: &str, name: &'static str, path: &str) -> Row {
    let mut times = Vec::with_capacity(REQUESTS);
    for i in 0..REQUESTS + 10 {
        let req = Request::builder().uri(path).header(header::COOKIE, cookie).body(Body::empty()).unwrap();
        let start = Instant::now();
        let res = router.clone().oneshot(req).await.unwrap();
        let status = res.status();
        let _ = axum::body::to_bytes(res.into_body(), 64 << 20).await.unwrap();
        let took = start.elapsed();
        assert!(status.is_success(), "{name}: {path} answered {status}");
        if i >= 10 {
            times.push(took); // the first ten warm caches and connections
        }
    }
    times.sort();
    Row { name, p50: times[times.len() / 2], p95: times[times.len() * 95 / 100], max: *times.last().unwrap() }
}

async fn run(backend: &str, database_url: &str, t: &Template) {
    let settings = Settings {
        database_url: database_url.to_string(),
        schemas_dir: root().join("schemas"),
        default_tenant: TENANT.into(),
        ..Settings::default()
    };
    let (store, registry) = nachweis::store::connect_with_registry(database_url).await.unwrap();
    let started = Instant::now();
    if let Some(path) = database_url.strip_prefix("sqlite://") {
        let _ = path;
        let pool = sqlx::SqlitePool::connect(database_url).await.unwrap();
        seed!(pool, t, sqlite_ts);
    } else {
        let pool = sqlx::PgPool::connect(database_url).await.unwrap();
        seed!(pool, t, pg_ts);
        sqlx::query("ANALYZE").execute(&pool).await.unwrap();
    }
    let seeded = started.elapsed();
    let password = "bench-passwort-lang-genug";
    store
        .add_user(&User {
            username: "sb".into(),
            display_name: "SB".into(),
            tenant: TENANT.into(),
            role: Role::Caseworker,
            password_hash: nachweis::web::auth::hash_password(password).unwrap(),
            disabled: false,
            created_at: chrono::Utc::now(),
        })
        .await
        .unwrap();
    let state = nachweis::startup::web_state(&settings, Arc::clone(&store), registry, None).await.unwrap();
    let signed = match nachweis::web::auth::sign_in(&state, "sb", password, None).await.unwrap() {
        nachweis::web::auth::SignIn::Ok { token, .. } => token,
        _ => panic!("sign-in"),
    };
    let cookie = format!("{}={signed}", nachweis::web::auth::session_cookie(true));
    let router = nachweis::web::app(state);
    let rows = vec![
        measure(&router, &cookie, "baseline: sign-in page (no database)", "/anmelden").await,
        measure(&router, &cookie, "queue, first page", "/faelle").await,
        measure(&router, &cookie, "queue, filtered and sorted", "/faelle?ergebnis=incomplete&bearbeitung=niemand&sortierung=ergebnis&richtung=ab").await,
        measure(&router, &cookie, "queue, page 80 (offset 3950)", "/faelle?seite=80").await,
        measure(&router, &cookie, "queue, all statuses, older than 30 days", "/faelle?status=alle&aelter_als=30").await,
        measure(&router, &cookie, "case view", "/faelle/case-bench0004711").await,
        measure(&router, &cookie, "API: case list", "/api/v1/cases").await,
        measure(&router, &cookie, "API: case", "/api/v1/cases/case-bench0004711").await,
    ];
    let base = rows[0].p50.as_secs_f64().max(1e-6);
    println!("\n{backend}: {CASES} cases of the tenant (+{OTHER_TENANT_CASES} of another), seeded in {:.1} s; {REQUESTS} requests per row", seeded.as_secs_f64());
    println!("{:<44} {:>9} {:>9} {:>9} {:>12}", "request", "p50 ms", "p95 ms", "max ms", "p50 / base");
    for r in &rows {
        println!(
            "{:<44} {:>9.2} {:>9.2} {:>9.2} {:>11.1}×",
            r.name,
            r.p50.as_secs_f64() * 1e3,
            r.p95.as_secs_f64() * 1e3,
            r.max.as_secs_f64() * 1e3,
            r.p50.as_secs_f64() / base
        );
    }
}

#[tokio::main]
async fn main() {
    let t = template().await;
    let dir = tempfile::tempdir().unwrap();
    run("SQLite", &format!("sqlite://{}", dir.path().join("bench.sqlite").display()), &t).await;
    let admin = std::env::var("NACHWEIS_TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    match sqlx::PgPool::connect(&admin).await {
        Ok(pool) => {
            let name = format!("nachweis_bench_{}", std::process::id());
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&pool).await.unwrap();
            let base = admin.rsplit_once('/').map(|(b, _)| b.to_string()).unwrap_or(admin.clone());
            run("PostgreSQL", &format!("{base}/{name}"), &t).await;
            if std::env::var_os("NACHWEIS_BENCH_KEEP").is_some() {
                // For EXPLAIN ANALYZE on the seeded cases afterwards.
                println!("kept database {name}");
            } else {
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP DATABASE {name} WITH (FORCE)"))).execute(&pool).await.unwrap();
            }
        }
        Err(e) => println!("\nPostgreSQL at {admin} not reachable ({e}); only SQLite measured. Start it as the README's test command does."),
    }
}

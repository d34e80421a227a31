//! The JSON API: its OpenAPI document, a whole review over the API, and
//! concurrent approvals.
use axum::http::{Method, StatusCode};
use serde_json::json;
use std::collections::BTreeSet;

use crate::helpers::{Auth, spawn_app};

#[tokio::test]
async fn the_openapi_document_describes_every_api_route_and_nothing_else() {
    let app = spawn_app().await;
    let doc = app.get("/api/openapi.json", None).await.json();
    assert_eq!(doc["openapi"], "3.1.0");
    let documented: BTreeSet<String> = doc["paths"].as_object().unwrap().keys().cloned().collect();
    // The routes as the router declares them (src/web/mod.rs).
    let source = std::fs::read_to_string(crate::helpers::root().join("src/web/mod.rs")).unwrap();
    let routed: BTreeSet<String> = source
        .lines()
        .filter_map(|l| l.trim().strip_prefix(".route(\"/api/v1"))
        .map(|rest| format!("/api/v1{}", rest.split('"').next().unwrap()))
        .collect();
    assert!(!routed.is_empty());
    assert_eq!(documented, routed);
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            assert!(op["responses"]["401"].is_object(), "{method} {path} documents 401");
            assert!(op["summary"].is_string(), "{method} {path} has a summary");
        }
    }
}

#[tokio::test]
async fn a_whole_review_runs_over_the_api_with_a_bearer_token() {
    let app = spawn_app().await;
    let case = app.seed("uvg-19-verschluesselt-leer-kaputt").await;
    app.caseworker("anna").await;
    let user = app.store.user("anna").await.unwrap().unwrap();
    let token = Auth::Bearer(nachweis::web::auth::create_api_token(app.store.as_ref(), &user, "fachverfahren", 30).await.unwrap());

    let list = app.api(Method::GET, "/api/v1/cases?ergebnis=incomplete", &token, None).await;
    assert_eq!(list.status, StatusCode::OK);
    assert_eq!(list.json()["cases"][0]["case_id"], case.as_str());
    let detail = app.api(Method::GET, &format!("/api/v1/cases/{case}"), &token, None).await.json();
    let draft = detail["pending_draft"]["draft_id"].as_i64().unwrap();
    assert_eq!(detail["report"]["verdict"], "incomplete");
    assert_eq!(detail["pending_draft"]["approval_problems"], json!([]));

    let not_claimed = app.api(Method::POST, &format!("/api/v1/cases/{case}/approve"), &token, Some(json!({"draft_id": draft}))).await;
    assert_eq!(not_claimed.status, StatusCode::CONFLICT);
    assert_eq!(not_claimed.json()["error"], "conflict");
    assert_eq!(app.api(Method::POST, &format!("/api/v1/cases/{case}/claim"), &token, None).await.status, StatusCode::OK);
    let text = detail["pending_draft"]["text"].as_str().unwrap().replace("Guten Tag", "Sehr geehrte Damen und Herren, guten Tag");
    let edited = app.api(Method::PUT, &format!("/api/v1/cases/{case}/draft"), &token, Some(json!({"draft_id": draft, "text": text}))).await;
    assert_eq!(edited.status, StatusCode::OK, "{}", edited.text());
    let new_draft = edited.json()["draft_id"].as_i64().unwrap();
    let stale = app.api(Method::POST, &format!("/api/v1/cases/{case}/approve"), &token, Some(json!({"draft_id": draft}))).await;
    assert_eq!(stale.status, StatusCode::CONFLICT, "the old version cannot be approved");
    let bad = app.api(Method::POST, &format!("/api/v1/cases/{case}/corrections"), &token, Some(json!({"draft_id": new_draft, "document_id": "d6", "first_page": 1, "doc_type": "kein-typ"}))).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.json()["details"][0].as_str().unwrap().contains("kein-typ"));
    let approved = app.api(Method::POST, &format!("/api/v1/cases/{case}/approve"), &token, Some(json!({"draft_id": new_draft}))).await;
    assert_eq!(approved.status, StatusCode::OK, "{}", approved.text());
    let pdf = app.api(Method::GET, &format!("/api/v1/cases/{case}/letters/{new_draft}"), &token, None).await;
    assert_eq!(pdf.status, StatusCode::OK);
    assert!(pdf.body.starts_with(b"%PDF-"));
}

#[tokio::test]
async fn eight_approvals_of_one_draft_at_once_release_one_letter_and_one_event() {
    let app = spawn_app().await;
    let case = app.seed("uvg-19-verschluesselt-leer-kaputt").await;
    let anna = app.caseworker("anna").await;
    app.api(Method::POST, &format!("/api/v1/cases/{case}/claim"), &Auth::Browser(anna.clone()), None).await;
    let draft = app.pending_draft(&case).await;
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let router = app.router.clone();
        let (cookie, csrf, case) = (anna.cookie.clone(), anna.csrf.clone(), case.clone());
        tasks.push(tokio::spawn(async move {
            use tower::ServiceExt as _;
            let req = axum::http::Request::builder()
                .method(Method::POST)
                .uri(format!("/api/v1/cases/{case}/approve"))
                .header("cookie", cookie)
                .header("x-csrf-token", csrf)
                .header("content-type", "application/json")
                .body(axum::body::Body::from(json!({"draft_id": draft}).to_string()))
                .unwrap();
            router.oneshot(req).await.unwrap().status()
        }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    assert_eq!(statuses.iter().filter(|s| **s == StatusCode::OK).count(), 1, "{statuses:?}");
    assert!(statuses.iter().all(|s| *s == StatusCode::OK || *s == StatusCode::CONFLICT), "{statuses:?}");
    assert_eq!(app.count("SELECT COUNT(*) FROM letters").await, 1);
    assert_eq!(app.count("SELECT COUNT(*) FROM outbox WHERE event_type = 'letter.approved'").await, 1);
    assert_eq!(app.count("SELECT COUNT(*) FROM audit_log WHERE action = 'draft_approved'").await, 1);
}

#[tokio::test]
async fn request_metrics_count_route_templates_never_case_ids() {
    let app = spawn_app().await;
    let case = app.seed("uvg-19-verschluesselt-leer-kaputt").await;
    let anna = app.caseworker("anna").await;
    let metrics = std::sync::Arc::new(nachweis::metrics::Metrics::new());
    let router = nachweis::web::with_request_metrics(app.router.clone(), metrics.clone());
    use tower::ServiceExt as _;
    for path in [format!("/faelle/{case}"), format!("/faelle/{case}"), "/faelle/case-gibt-es-nicht".to_string()] {
        let req = axum::http::Request::builder().uri(path).header("cookie", anna.cookie.clone()).body(axum::body::Body::empty()).unwrap();
        router.clone().oneshot(req).await.unwrap();
    }
    let text = metrics.encode();
    assert!(text.contains(r#"nachweis_http_requests_total{route="/faelle/{case_id}",method="GET",status="2xx"} 2"#), "{text}");
    assert!(text.contains(r#"nachweis_http_requests_total{route="/faelle/{case_id}",method="GET",status="4xx"} 1"#), "{text}");
    assert!(!text.contains(&case) && !text.contains("gibt-es-nicht"), "no ids in labels");
}

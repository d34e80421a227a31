//! Security properties: headers, CSRF, no state change on GET, tenant
//! isolation by id, and roles.
use axum::http::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{Auth, OTHER_TENANT, TENANT, spawn_app};
use nachweis::store::review::Role;

#[tokio::test]
async fn every_response_carries_the_security_headers() {
    let app = spawn_app().await;
    for path in ["/anmelden", "/faelle", "/api/v1/cases", "/gibt-es-nicht", "/static/app.css"] {
        let r = app.get(path, None).await;
        let csp = r.headers.get("content-security-policy").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
        assert!(csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert_eq!(r.headers.get("x-content-type-options").unwrap(), "nosniff", "{path}");
        assert_eq!(r.headers.get("x-frame-options").unwrap(), "DENY", "{path}");
        assert_eq!(r.headers.get("referrer-policy").unwrap(), "no-referrer", "{path}");
        assert!(r.headers.get("strict-transport-security").is_some(), "{path}");
        assert!(r.headers.get("server-timing").is_some(), "{path}");
    }
}

#[tokio::test]
async fn a_post_without_the_sessions_csrf_token_changes_nothing() {
    let app = spawn_app().await;
    let case = app.seed("uvg-19-verschluesselt-leer-kaputt").await;
    let anna = app.caseworker("anna").await;
    let claim = format!("/faelle/{case}/uebernehmen");
    assert_eq!(app.post_form(&claim, Some(&anna.cookie), &[]).await.status, StatusCode::UNPROCESSABLE_ENTITY, "no token at all");
    let forged = app.post_form(&claim, Some(&anna.cookie), &[("csrf", "geraten")]).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert!(forged.text().contains("CSRF"));
    // Another session's token does not fit this one.
    let ben = app.caseworker("ben").await;
    assert_eq!(app.post_form(&claim, Some(&anna.cookie), &[("csrf", &ben.csrf)]).await.status, StatusCode::FORBIDDEN);
    assert_eq!(app.count("SELECT COUNT(*) FROM cases WHERE assignee IS NOT NULL").await, 0);
    assert_eq!(app.post_form(&claim, Some(&anna.cookie), &[("csrf", &anna.csrf)]).await.status, StatusCode::SEE_OTHER);
    assert_eq!(app.count("SELECT COUNT(*) FROM cases WHERE assignee = 'anna'").await, 1);
}

#[tokio::test]
async fn get_requests_never_change_state() {
    let app = spawn_app().await;
    let case = app.seed("uvg-19-verschluesselt-leer-kaputt").await;
    let anna = app.caseworker("anna").await;
    for action in ["uebernehmen", "zurueckgeben", "korrektur", "entwurf", "freigabe", "ablehnung", "abschluss"] {
        let r = app.get(&format!("/faelle/{case}/{action}"), Some(&anna.cookie)).await;
        assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED, "{action}");
    }
    assert_eq!(app.get("/abmelden", Some(&anna.cookie)).await.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(app.count("SELECT COUNT(*) FROM cases WHERE assignee IS NOT NULL").await, 0);
    assert_eq!(app.count("SELECT COUNT(*) FROM drafts").await, 1);
}

#[tokio::test]
async fn another_tenants_case_is_not_found_by_its_id_anywhere() {
    let app = spawn_app().await;
    let theirs = app.seed("uvg-20-pruefsumme-falsch-schwarzes-foto").await; // stadt-beispielburg
    let ours = app.seed("uvg-19-verschluesselt-leer-kaputt").await;
    let anna = app.caseworker("anna").await;
    app.add_user("prüferin", Role::Auditor, TENANT).await;
    let audit = app.sign_in("prüferin").await;
    let draft = app.store.current_draft(&theirs).await.unwrap().unwrap().draft_id;
    for path in [
        format!("/faelle/{theirs}"),
        format!("/faelle/{theirs}/protokoll"),
        format!("/faelle/{theirs}/dokumente/0/seiten/1.png"),
        format!("/faelle/{theirs}/schreiben/{draft}.pdf"),
        format!("/api/v1/cases/{theirs}"),
        format!("/api/v1/cases/{theirs}/letters/{draft}"),
    ] {
        assert_eq!(app.get(&path, Some(&anna.cookie)).await.status, StatusCode::NOT_FOUND, "{path}");
    }
    assert_eq!(app.get(&format!("/faelle/{theirs}/protokoll.jsonl"), Some(&audit.cookie)).await.status, StatusCode::NOT_FOUND);
    let claim = app.post_form(&format!("/faelle/{theirs}/uebernehmen"), Some(&anna.cookie), &[("csrf", &anna.csrf), ("uebernehmen", "ja")]).await;
    assert_eq!(claim.status, StatusCode::NOT_FOUND);
    let api_claim = app.api(Method::POST, &format!("/api/v1/cases/{theirs}/claim"), &Auth::Browser(anna.clone()), Some(json!({"take_over": true}))).await;
    assert_eq!(api_claim.status, StatusCode::NOT_FOUND);
    // The queue lists only the own tenant's case.
    let list = app.api(Method::GET, "/api/v1/cases?status=alle", &Auth::Browser(anna.clone()), None).await.json();
    let ids: Vec<&str> = list["cases"].as_array().unwrap().iter().map(|c| c["case_id"].as_str().unwrap()).collect();
    assert_eq!(ids, [ours.as_str()]);
    // Their own caseworker does see it.
    app.add_user("bea", Role::Caseworker, OTHER_TENANT).await;
    let bea = app.sign_in("bea").await;
    assert_eq!(app.get(&format!("/faelle/{theirs}"), Some(&bea.cookie)).await.status, StatusCode::OK);
    assert_eq!(app.count("SELECT COUNT(*) FROM cases WHERE assignee IS NOT NULL").await, 0);
}

#[tokio::test]
async fn roles_decide_who_may_claim_decide_and_export() {
    let app = spawn_app().await;
    let case = app.seed("uvg-19-verschluesselt-leer-kaputt").await;
    let draft = app.pending_draft(&case).await;
    app.add_user("revision", Role::Auditor, TENANT).await;
    app.add_user("admin", Role::Admin, TENANT).await;
    let auditor = app.sign_in("revision").await;
    let admin = app.sign_in("admin").await;
    let anna = app.caseworker("anna").await;
    let d = draft.to_string();

    // The auditor reads but changes nothing.
    assert_eq!(app.get(&format!("/faelle/{case}"), Some(&auditor.cookie)).await.status, StatusCode::OK);
    let claim = app.post_form(&format!("/faelle/{case}/uebernehmen"), Some(&auditor.cookie), &[("csrf", &auditor.csrf)]).await;
    assert_eq!(claim.status, StatusCode::FORBIDDEN);
    assert_eq!(app.get(&format!("/faelle/{case}/protokoll.jsonl"), Some(&auditor.cookie)).await.status, StatusCode::OK);

    // The administrator may take a case over but not decide a letter.
    assert_eq!(app.post_form(&format!("/faelle/{case}/uebernehmen"), Some(&admin.cookie), &[("csrf", &admin.csrf)]).await.status, StatusCode::SEE_OTHER);
    let text = app.store.current_draft(&case).await.unwrap().unwrap().text;
    let approve = app.post_form(&format!("/faelle/{case}/freigabe"), Some(&admin.cookie), &[("csrf", &admin.csrf), ("entwurf", &d), ("text", &text)]).await;
    assert_eq!(approve.status, StatusCode::FORBIDDEN);
    let api = app.api(Method::POST, &format!("/api/v1/cases/{case}/approve"), &Auth::Browser(admin.clone()), Some(json!({"draft_id": draft}))).await;
    assert_eq!(api.status, StatusCode::FORBIDDEN);

    // The caseworker may not export the audit trail.
    assert_eq!(app.get(&format!("/faelle/{case}/protokoll.jsonl"), Some(&anna.cookie)).await.status, StatusCode::FORBIDDEN);
    assert_eq!(app.api(Method::GET, &format!("/api/v1/cases/{case}/audit"), &Auth::Browser(anna.clone()), None).await.status, StatusCode::FORBIDDEN);
    assert_eq!(app.get("/protokoll", Some(&anna.cookie)).await.status, StatusCode::FORBIDDEN);
    assert_eq!(app.count("SELECT COUNT(*) FROM letters").await, 0);
}

#[tokio::test]
async fn the_api_takes_a_bearer_token_and_a_browser_session_only_with_its_csrf_header() {
    let app = spawn_app().await;
    let case = app.seed("uvg-19-verschluesselt-leer-kaputt").await;
    let anna = app.caseworker("anna").await;
    let claim = format!("/api/v1/cases/{case}/claim");
    let no_header = app.api(Method::POST, &claim, &Auth::CookieOnly(anna.clone()), None).await;
    assert_eq!(no_header.status, StatusCode::FORBIDDEN);
    assert_eq!(app.count("SELECT COUNT(*) FROM cases WHERE assignee IS NOT NULL").await, 0);
    // Reading needs no CSRF header.
    assert_eq!(app.api(Method::GET, &format!("/api/v1/cases/{case}"), &Auth::CookieOnly(anna.clone()), None).await.status, StatusCode::OK);

    let user = app.store.user("anna").await.unwrap().unwrap();
    let token = nachweis::web::auth::create_api_token(app.store.as_ref(), &user, "fachverfahren", 30).await.unwrap();
    let by_token = app.api(Method::POST, &claim, &Auth::Bearer(token.clone()), None).await;
    assert_eq!(by_token.status, StatusCode::OK, "{}", by_token.text());
    assert_eq!(app.count("SELECT COUNT(*) FROM cases WHERE assignee = 'anna'").await, 1);
    // An API token is no browser session, and a wrong token nothing at all.
    let as_cookie = format!("{}={token}", nachweis::web::auth::session_cookie(true));
    assert_eq!(app.get("/faelle", Some(&as_cookie)).await.status, StatusCode::SEE_OTHER);
    assert_eq!(app.api(Method::GET, "/api/v1/cases", &Auth::Bearer("falsch".into()), None).await.status, StatusCode::UNAUTHORIZED);
}

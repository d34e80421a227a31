//! Sign-in, sessions and throttling.
use axum::http::StatusCode;

use crate::helpers::{PASSWORD, TENANT, spawn_app};
use nachweis::store::review::Role;
use nachweis::web::auth::session_cookie;

#[tokio::test]
async fn signing_in_issues_a_fresh_secure_session_and_a_planted_cookie_is_worthless() {
    let app = spawn_app().await;
    app.add_user("anna", Role::Caseworker, TENANT).await;
    // An attacker plants a session id in the victim's browser before sign-in.
    let planted = format!("{}=angreifer-kennt-diesen-wert", session_cookie(true));
    let browser = app.try_sign_in("anna", PASSWORD, Some(&planted)).await.expect("signed in");
    assert!(!browser.cookie.contains("angreifer"), "the session is a new one: {}", browser.cookie);
    assert_eq!(app.get("/faelle", Some(&planted)).await.status, StatusCode::SEE_OTHER, "the planted id signs nobody in");

    let form = app.get("/anmelden", None).await;
    let set_cookie: Vec<String> = form.headers.get_all("set-cookie").iter().map(|v| v.to_str().unwrap().to_string()).collect();
    assert!(set_cookie.iter().any(|c| c.starts_with("__Host-") && c.contains("Secure") && c.contains("HttpOnly") && c.contains("SameSite=Lax")), "{set_cookie:?}");
    let audit = app.count("SELECT COUNT(*) FROM audit_log WHERE action = 'signed_in' AND actor = 'anna'").await;
    assert_eq!(audit, 1);
}

#[tokio::test]
async fn a_wrong_password_or_unknown_name_is_refused_alike_and_audited() {
    let app = spawn_app().await;
    app.add_user("anna", Role::Caseworker, TENANT).await;
    let wrong = app.try_sign_in("anna", "falsches-passwort-123", None).await.err().expect("refused");
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(wrong.text().contains("Benutzername oder Passwort ist falsch"), "{}", wrong.text());
    let unknown = app.try_sign_in("niemand", "falsches-passwort-123", None).await.err().expect("refused");
    assert_eq!(unknown.status, StatusCode::UNAUTHORIZED);
    assert!(unknown.text().contains("Benutzername oder Passwort ist falsch"));
    assert_eq!(app.count("SELECT COUNT(*) FROM audit_log WHERE action = 'sign_in_failed'").await, 2);
    // The typed password never reaches the audit log.
    assert_eq!(app.count("SELECT COUNT(*) FROM audit_log WHERE detail LIKE '%falsches%'").await, 0);
}

#[tokio::test]
async fn five_failures_lock_the_account_even_against_the_right_password() {
    let app = spawn_app().await;
    app.add_user("anna", Role::Caseworker, TENANT).await;
    for _ in 0..5 {
        let r = app.try_sign_in("anna", "falsches-passwort-123", None).await.err().expect("refused");
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    let locked = app.try_sign_in("anna", PASSWORD, None).await.err().expect("locked");
    assert_eq!(locked.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(locked.text().contains("Zu viele fehlgeschlagene Anmeldeversuche"), "{}", locked.text());
    // Another account is not affected by anna's lock.
    app.add_user("ben", Role::Caseworker, TENANT).await;
    assert!(app.try_sign_in("ben", PASSWORD, None).await.is_ok());
}

#[tokio::test]
async fn the_sign_in_form_refuses_a_post_without_its_csrf_cookie() {
    let app = spawn_app().await;
    app.add_user("anna", Role::Caseworker, TENANT).await;
    let form = app.get("/anmelden", None).await;
    // Login CSRF: a foreign page posts the victim's browser into the attacker's account.
    let reply = app.post_form("/anmelden", None, &[("benutzername", "anna"), ("passwort", PASSWORD), ("csrf", &form.csrf())]).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert!(reply.cookie(session_cookie(true)).is_none());
}

#[tokio::test]
async fn after_sign_in_only_local_paths_are_followed() {
    let app = spawn_app().await;
    app.add_user("anna", Role::Caseworker, TENANT).await;
    for (next, expected) in [("//evil.example/x", "/faelle"), ("https://evil.example", "/faelle"), ("/faelle?status=alle", "/faelle?status=alle")] {
        let form = app.get("/anmelden", None).await;
        let cookie = format!("{}={}", nachweis::web::auth::login_cookie(true), form.cookie(nachweis::web::auth::login_cookie(true)).unwrap());
        let reply = app
            .post_form("/anmelden", Some(&cookie), &[("benutzername", "anna"), ("passwort", PASSWORD), ("csrf", &form.csrf()), ("weiter", next)])
            .await;
        assert_eq!(reply.location().as_deref(), Some(expected), "{next}");
    }
}

#[tokio::test]
async fn signing_out_ends_the_session_and_pages_send_strangers_to_sign_in() {
    let app = spawn_app().await;
    let anna = app.caseworker("anna").await;
    let out = app.post_form("/abmelden", Some(&anna.cookie), &[("csrf", &anna.csrf)]).await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    let after = app.get("/faelle?status=alle", Some(&anna.cookie)).await;
    assert_eq!(after.status, StatusCode::SEE_OTHER);
    assert_eq!(after.location().as_deref(), Some("/anmelden?weiter=/faelle%3Fstatus%3Dalle"));
    let api = app.get("/api/v1/cases", Some(&anna.cookie)).await;
    assert_eq!(api.status, StatusCode::UNAUTHORIZED);
    assert_eq!(api.json()["error"], "unauthorized");
}

#[tokio::test]
async fn a_disabled_account_cannot_sign_in_and_loses_its_session() {
    let app = spawn_app().await;
    let anna = app.caseworker("anna").await;
    app.store.set_disabled("anna", true).await.unwrap();
    assert_eq!(app.get("/faelle", Some(&anna.cookie)).await.status, StatusCode::SEE_OTHER);
    assert_eq!(app.try_sign_in("anna", PASSWORD, None).await.err().expect("refused").status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_session_unused_for_longer_than_the_idle_limit_ends() {
    let app = spawn_app().await;
    let anna = app.caseworker("anna").await;
    let pool = sqlx::SqlitePool::connect(&app.settings.database_url).await.unwrap();
    // Last used two hours ago; the limit is an hour.
    let two_hours_ago = (chrono::Utc::now() - chrono::Duration::hours(2)).format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string();
    sqlx::query("UPDATE sessions SET last_seen_at = $1").bind(two_hours_ago).execute(&pool).await.unwrap();
    assert_eq!(app.get("/faelle", Some(&anna.cookie)).await.status, StatusCode::SEE_OTHER);
    assert_eq!(app.count("SELECT COUNT(*) FROM sessions").await, 0, "the idle session is deleted");
}

//! Sign-in, sessions and the checks every request passes: Argon2id password
//! hashes, random session tokens kept only as their SHA-256, a CSRF token
//! per session (and a double-submit cookie for the sign-in form itself),
//! sign-in throttling per account and per client address, and the
//! extractors that give handlers the signed-in account.
//!
//! A new session is created at every sign-in and any session cookie the
//! browser brought is discarded, so a planted cookie never becomes a
//! signed-in session (session fixation).
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, header};
use base64::Engine as _;
use chrono::{DateTime, Duration, Utc};
use sha2::{Digest, Sha256};
use std::net::SocketAddr;
use std::sync::Arc;
use subtle::ConstantTimeEq;

use super::AppState;
use super::error::{ApiError, PageError};
use crate::store::review::{Role, Session, SessionKind, User};
use crate::store::StoreError;

/// Failed sign-ins within this window add up.
const THROTTLE_WINDOW_MINUTES: i64 = 15;
/// Failures (per account or per address) before a lock.
const MAX_FAILURES: i64 = 5;
/// The first lock; it doubles with every further failure.
const LOCK_SECONDS: i64 = 60;

/// Errors of the password functions.
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("the password could not be hashed: {0}")]
    Hash(String),
    #[error("the password is too short (at least 12 characters)")]
    TooShort,
}

/// Hashes a password with Argon2id (the crate's defaults, OWASP's minimum).
pub fn hash_password(password: &str) -> Result<String, PasswordError> {
    if password.chars().count() < 12 {
        return Err(PasswordError::TooShort);
    }
    let mut salt = [0u8; 16];
    getrandom::getrandom(&mut salt).map_err(|e| PasswordError::Hash(e.to_string()))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| PasswordError::Hash(e.to_string()))?;
    Argon2::default().hash_password(password.as_bytes(), &salt).map(|h| h.to_string()).map_err(|e| PasswordError::Hash(e.to_string()))
}

/// Checks a password against a stored hash; a malformed hash never matches.
pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
}

/// A hash of a random password that no one knows: verifying against it for
/// unknown accounts makes a wrong name cost as long as a wrong password.
static DUMMY_HASH: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| hash_password(&random_token()).unwrap_or_default());

/// 32 random bytes, URL-safe base64: session tokens, CSRF tokens, API tokens.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    getrandom::getrandom(&mut bytes).expect("the operating system's random source works");
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A readable random password for demo and new accounts (20 characters).
pub fn random_password() -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut bytes = [0u8; 20];
    getrandom::getrandom(&mut bytes).expect("the operating system's random source works");
    let chars: Vec<char> = bytes.iter().map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char).collect();
    // Groups of five are easier to type from a printed page.
    chars.chunks(5).map(|c| c.iter().collect::<String>()).collect::<Vec<_>>().join("-")
}

/// What is stored of a token.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Constant-time comparison for tokens.
pub fn same_token(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// The session cookie's name: `__Host-` binds it to this origin over HTTPS.
pub fn session_cookie(secure: bool) -> &'static str {
    if secure { "__Host-nachweis_sitzung" } else { "nachweis_sitzung" }
}

/// The sign-in form's double-submit CSRF cookie.
pub fn login_cookie(secure: bool) -> &'static str {
    if secure { "__Host-nachweis_anmeldung" } else { "nachweis_anmeldung" }
}

/// A `Set-Cookie` value: HttpOnly, SameSite=Lax, path /, Secure if asked.
pub fn set_cookie(name: &str, value: &str, max_age_seconds: i64, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age_seconds}{secure}")
}

/// The value of a cookie sent by the browser.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// The client's address as the server saw it (no proxy headers are trusted).
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub Option<std::net::IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientAddr(parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip())))
    }
}

/// Finds the live session a request carries: the browser's session cookie
/// or an API bearer token. Ends sessions idle for too long.
pub async fn session_of(state: &AppState, headers: &HeaderMap) -> Result<Option<Session>, StoreError> {
    let token = match headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        Some(v) => match v.strip_prefix("Bearer ") {
            Some(t) => Some((t.trim(), SessionKind::Api)),
            None => None,
        },
        None => cookie(headers, session_cookie(state.settings.secure_cookies)).map(|t| (t, SessionKind::Browser)),
    };
    let Some((token, kind)) = token else { return Ok(None) };
    let hash = token_hash(token);
    let now = Utc::now();
    let Some(session) = state.store.session(&hash, now).await? else { return Ok(None) };
    if session.kind != kind {
        // A browser token sent as bearer (or the reverse) is refused: the
        // CSRF rules differ between the two.
        return Ok(None);
    }
    if kind == SessionKind::Browser && now - session.last_seen_at > Duration::minutes(i64::from(state.settings.session_idle_minutes)) {
        state.store.delete_session(&hash).await?;
        return Ok(None);
    }
    Ok(Some(session))
}

/// Handlers of HTML pages take this: the signed-in account, or a redirect
/// to the sign-in page that comes back here afterwards.
pub struct Signed(pub Session);

impl FromRequestParts<Arc<AppState>> for Signed {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<AppState>) -> Result<Self, Self::Rejection> {
        let next = parts.uri.path_and_query().map(|p| p.as_str().to_string()).unwrap_or_else(|| "/".into());
        match session_of(state, &parts.headers).await {
            Ok(Some(s)) if s.kind == SessionKind::Browser => Ok(Signed(s)),
            Ok(_) => Err(PageError::SignIn { next }),
            Err(e) => Err(e.into()),
        }
    }
}

/// Handlers of the JSON API take this: a bearer token, or a browser session
/// whose state-changing requests carry the CSRF token in `X-CSRF-Token`.
pub struct ApiUser(pub Session);

impl FromRequestParts<Arc<AppState>> for ApiUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<AppState>) -> Result<Self, Self::Rejection> {
        let session = session_of(state, &parts.headers).await?.ok_or_else(ApiError::unauthorized)?;
        if session.kind == SessionKind::Browser && !is_safe(&parts.method) {
            let sent = parts.headers.get("x-csrf-token").and_then(|v| v.to_str().ok()).unwrap_or("");
            if !same_token(sent, &session.csrf_token) {
                return Err(ApiError::forbidden("CSRF-Token fehlt oder ist ungültig."));
            }
        }
        Ok(ApiUser(session))
    }
}

fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Refuses a page form whose CSRF token is not the session's.
pub fn check_csrf(session: &Session, sent: &str) -> Result<(), PageError> {
    if same_token(sent, &session.csrf_token) {
        Ok(())
    } else {
        Err(PageError::status(
            axum::http::StatusCode::FORBIDDEN,
            "Das Formular ist abgelaufen oder stammt nicht von dieser Anwendung (CSRF-Schutz). Bitte laden Sie die Seite neu und versuchen Sie es noch einmal.",
        ))
    }
}

/// Refuses an account whose role is not among `roles`.
pub fn require_role(session: &Session, roles: &[Role]) -> Result<(), PageError> {
    if roles.contains(&session.user.role) {
        Ok(())
    } else {
        Err(PageError::status(axum::http::StatusCode::FORBIDDEN, "Für diese Seite fehlt Ihnen die Berechtigung."))
    }
}

/// The result of a sign-in attempt.
pub enum SignIn {
    /// Signed in: the new session's token (for the cookie).
    Ok { token: String, user: User },
    /// Wrong name or password (deliberately not saying which).
    Refused,
    /// Too many failures; try again after this moment.
    Locked(DateTime<Utc>),
}

/// Checks the credentials and opens a new browser session. Throttled per
/// account and per client address; every attempt is in the audit log.
pub async fn sign_in(state: &AppState, username: &str, password: &str, client: Option<std::net::IpAddr>) -> Result<SignIn, StoreError> {
    let username = username.trim();
    let keys: Vec<String> = std::iter::once(format!("user:{}", username.to_lowercase()))
        .chain(client.map(|ip| format!("ip:{ip}")))
        .collect();
    let now = Utc::now();
    for key in &keys {
        if let Some(until) = state.store.throttle_state(key).await?.locked_until.filter(|u| *u > now) {
            state
                .store
                .append_audit(username_for_log(username), "sign_in_locked", None, serde_json::json!({"until": until}), None)
                .await?;
            return Ok(SignIn::Locked(until));
        }
    }
    let user = state.store.user(username).await?;
    let hash = user.as_ref().filter(|u| !u.disabled).map(|u| u.password_hash.clone()).unwrap_or_else(|| DUMMY_HASH.clone());
    let candidate = password.to_string();
    let matches = tokio::task::spawn_blocking(move || verify_password(&candidate, &hash)).await.unwrap_or(false);
    let Some(user) = user.filter(|u| matches && !u.disabled) else {
        for key in &keys {
            state
                .store
                .register_failure(key, now, Duration::minutes(THROTTLE_WINDOW_MINUTES), MAX_FAILURES, Duration::seconds(LOCK_SECONDS))
                .await?;
        }
        state.store.append_audit(username_for_log(username), "sign_in_failed", None, serde_json::json!({}), None).await?;
        return Ok(SignIn::Refused);
    };
    for key in &keys {
        state.store.clear_failures(key).await?;
    }
    let token = random_token();
    let session = Session {
        token_hash: token_hash(&token),
        kind: SessionKind::Browser,
        csrf_token: random_token(),
        label: None,
        created_at: now,
        last_seen_at: now,
        expires_at: now + Duration::hours(i64::from(state.settings.session_hours)),
        user: user.clone(),
    };
    state.store.create_session(&session).await?;
    state.store.append_audit(&user.username, "signed_in", None, serde_json::json!({"tenant": user.tenant, "role": user.role.as_str()}), None).await?;
    Ok(SignIn::Ok { token, user })
}

/// A username as the audit log records a failed attempt: what was typed,
/// bounded, so an attacker cannot flood the log with long strings.
fn username_for_log(username: &str) -> &str {
    let end = username.char_indices().nth(64).map(|(i, _)| i).unwrap_or(username.len());
    &username[..end]
}

/// Creates an API token for an account (shown once; only its hash is kept).
pub async fn create_api_token(state_store: &dyn crate::store::Store, user: &User, label: &str, days: i64) -> Result<String, StoreError> {
    let token = random_token();
    let now = Utc::now();
    state_store
        .create_session(&Session {
            token_hash: token_hash(&token),
            kind: SessionKind::Api,
            csrf_token: random_token(),
            label: Some(label.to_string()),
            created_at: now,
            last_seen_at: now,
            expires_at: now + Duration::days(days),
            user: user.clone(),
        })
        .await?;
    state_store
        .append_audit(&user.username, "api_token_created", None, serde_json::json!({"label": label, "days": days}), None)
        .await?;
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_verifies_against_its_own_hash_only() {
        let hash = hash_password("richtig-lang-genug").unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password("richtig-lang-genug", &hash));
        assert!(!verify_password("falsch-lang-genug!", &hash));
        assert!(!verify_password("richtig-lang-genug", "kein hash"));
        assert!(matches!(hash_password("kurz"), Err(PasswordError::TooShort)));
    }

    #[test]
    fn cookies_are_found_among_several() {
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, "a=1; nachweis_sitzung=abc; b=2".parse().unwrap());
        assert_eq!(cookie(&h, "nachweis_sitzung"), Some("abc"));
        assert_eq!(cookie(&h, "c"), None);
    }

    #[test]
    fn random_passwords_are_long_and_differ() {
        let a = random_password();
        assert_eq!(a.len(), 23);
        assert_ne!(a, random_password());
    }
}

//! Errors at the HTTP boundary: `ApiError` for the JSON API and `PageError`
//! for HTML pages. Both show the caseworker's message (German) and never
//! internals; internal errors are logged once, by `log_internal`, with an
//! id the person can quote.
use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde_json::json;

use crate::review::ReviewError;
use crate::store::StoreError;

/// An error of the JSON API: a status, a stable code and a German message.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Field-level messages (validation).
    pub details: Vec<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError { status, code, message: message.into(), details: Vec::new() }
    }

    pub fn unauthorized() -> Self {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", "Bitte melden Sie sich an (Sitzung oder API-Token).")
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    pub fn not_found() -> Self {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", "Nicht gefunden.")
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }
}

impl From<ReviewError> for ApiError {
    fn from(e: ReviewError) -> Self {
        match e {
            ReviewError::NotFound => ApiError::new(StatusCode::NOT_FOUND, "not_found", e.to_string()),
            ReviewError::Forbidden(_) => ApiError::new(StatusCode::FORBIDDEN, "forbidden", e.to_string()),
            ReviewError::Conflict(_) => ApiError::new(StatusCode::CONFLICT, "conflict", e.to_string()),
            ReviewError::Invalid(ref messages) => ApiError {
                status: StatusCode::UNPROCESSABLE_ENTITY,
                code: "invalid",
                message: "Die Eingabe kann so nicht übernommen werden.".into(),
                details: messages.clone(),
            },
            ReviewError::Unavailable => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", e.to_string()),
            ReviewError::Internal(detail) => internal(&detail),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        ReviewError::from(e).into()
    }
}

/// Logs an internal error with a reference and returns the generic answer.
fn internal(detail: &str) -> ApiError {
    let reference = log_internal(detail);
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        format!("Ein interner Fehler ist aufgetreten (Referenz {reference}). Bitte wenden Sie sich an den IT-Betrieb."),
    )
}

/// Logs an internal error once and returns a short reference for the
/// person who saw it. The detail carries ids, never personal data.
pub fn log_internal(detail: &str) -> String {
    let mut bytes = [0u8; 4];
    let _ = getrandom::getrandom(&mut bytes);
    let reference = hex::encode(bytes);
    tracing::error!(message = "Internal error in a request.", reference = %reference, error = %detail);
    reference
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"error": self.code, "message": self.message, "details": self.details});
        (self.status, Json(body)).into_response()
    }
}

/// An error of an HTML page: either a redirect (to the sign-in page) or an
/// error page with a status and a German message.
#[derive(Debug)]
pub enum PageError {
    SignIn { next: String },
    Page { status: StatusCode, message: String },
}

impl PageError {
    pub fn status(status: StatusCode, message: impl Into<String>) -> Self {
        PageError::Page { status, message: message.into() }
    }
}

impl From<ReviewError> for PageError {
    fn from(e: ReviewError) -> Self {
        let api = ApiError::from(e);
        PageError::Page { status: api.status, message: std::iter::once(api.message).chain(api.details).collect::<Vec<_>>().join(" ") }
    }
}

impl From<StoreError> for PageError {
    fn from(e: StoreError) -> Self {
        ReviewError::from(e).into()
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        match self {
            PageError::SignIn { next } => {
                let target = format!("/anmelden?weiter={}", super::urlencode(&next));
                Redirect::to(&target).into_response()
            }
            PageError::Page { status, message } => {
                let html = super::templates::render_error(status, &message);
                (status, html).into_response()
            }
        }
    }
}

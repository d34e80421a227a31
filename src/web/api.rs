//! The JSON API for Fachverfahren integration: the same operations as the
//! pages, under the same rules (tenant scope, roles, claims, once-only
//! decisions), with a bearer token or a browser session plus
//! `X-CSRF-Token`. `openapi.json` (served at `/api/openapi.json`) documents it.
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::sync::Arc;

use super::AppState;
use super::auth::ApiUser;
use super::error::{ApiError, PageError};
use super::labels;
use super::pages::QueueParams;
use crate::review::{self as service, Done};
use crate::store::review::{Role, Session};

/// The OpenAPI document (3.1), kept beside the code it describes.
pub const OPENAPI: &str = include_str!("openapi.json");

pub async fn openapi() -> Response {
    let mut response = OPENAPI.into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

fn require(session: &Session, roles: &[Role]) -> Result<(), ApiError> {
    if roles.contains(&session.user.role) {
        Ok(())
    } else {
        Err(ApiError::forbidden("Für diese Aktion fehlt die Berechtigung."))
    }
}

/// `GET /api/v1/cases`: the review queue with the page's filters.
pub async fn list_cases(State(state): State<Arc<AppState>>, ApiUser(session): ApiUser, Query(params): Query<QueueParams>) -> Result<Json<Value>, ApiError> {
    require(&session, &[Role::Caseworker, Role::Admin, Role::Auditor])?;
    let query = params.to_query(&session.user.username);
    let page = state.store.review_queue(state.review.scope(&session.user), &query).await?;
    Ok(Json(json!({
        "total": page.total,
        "limit": query.limit,
        "offset": query.offset,
        "cases": page.rows.iter().map(|r| json!({
            "case_id": r.case_id,
            "applicant": r.applicant,
            "procedure": r.procedure,
            "tenant": r.tenant,
            "verdict": r.verdict,
            "verdict_label": labels::verdict(&r.verdict),
            "review_status": r.review_status,
            "assignee": r.assignee,
            "received_at": r.received_at,
            "updated_at": r.updated_at,
            "draft_id": r.draft_id,
            "draft_version": r.draft_version,
            "draft_kind": r.draft_kind,
        })).collect::<Vec<_>>(),
    })))
}

/// `GET /api/v1/cases/{case_id}`: the case with its current report, drafts,
/// corrections and letters.
pub async fn get_case(State(state): State<Arc<AppState>>, ApiUser(session): ApiUser, Path(case_id): Path<String>) -> Result<Json<Value>, ApiError> {
    require(&session, &[Role::Caseworker, Role::Admin, Role::Auditor])?;
    let detail = state.review.case(&session.user, &case_id).await?;
    let pending = detail.pending_draft();
    let shown = pending.or(detail.drafts.first());
    let problems: Vec<Value> = match pending {
        Some(d) if d.kind == "letter" => state.review.approval_problems(d)?.into_iter().map(|p| json!({"kind": p.kind, "message": p.message})).collect(),
        _ => Vec::new(),
    };
    Ok(Json(json!({
        "case": detail.case,
        "report": shown.and_then(|d| d.report.clone()),
        "pending_draft": pending.map(|d| json!({
            "draft_id": d.draft_id, "version": d.version, "kind": d.kind, "text": d.text,
            "created_by": d.created_by, "created_at": d.created_at, "approval_problems": problems,
        })),
        "drafts": detail.drafts.iter().map(|d| json!({
            "draft_id": d.draft_id, "version": d.version, "kind": d.kind, "status": d.status,
            "created_by": d.created_by, "created_at": d.created_at, "decided_by": d.decided_by,
            "decided_at": d.decided_at, "decision_note": d.decision_note,
        })).collect::<Vec<_>>(),
        "bundles": detail.bundles,
        "documents": detail.documents,
        "corrections": detail.corrections,
        "letters": detail.letters.iter().map(|l| json!({
            "draft_id": l.draft_id, "sha256": l.sha256, "approved_by": l.approved_by, "created_at": l.created_at,
            "href": format!("/api/v1/cases/{}/letters/{}", detail.case.case_id, l.draft_id),
        })).collect::<Vec<_>>(),
    })))
}

fn done(result: Done) -> Json<Value> {
    Json(match result {
        Done::Draft(id) if id > 0 => json!({"outcome": "done", "draft_id": id}),
        Done::Draft(_) => json!({"outcome": "done"}),
        Done::Nothing => json!({"outcome": "unchanged"}),
    })
}

#[derive(Deserialize)]
pub struct ClaimBody {
    #[serde(default)]
    take_over: bool,
}

pub async fn claim(State(state): State<Arc<AppState>>, ApiUser(session): ApiUser, Path(case_id): Path<String>, body: Option<Json<ClaimBody>>) -> Result<Json<Value>, ApiError> {
    let take_over = body.map(|b| b.take_over).unwrap_or(false);
    Ok(done(state.review.claim(&session.user, &case_id, take_over).await?))
}

pub async fn release(State(state): State<Arc<AppState>>, ApiUser(session): ApiUser, Path(case_id): Path<String>) -> Result<Json<Value>, ApiError> {
    Ok(done(state.review.release(&session.user, &case_id).await?))
}

#[derive(Deserialize)]
pub struct CorrectionBody {
    draft_id: i64,
    document_id: String,
    first_page: u32,
    doc_type: String,
}

pub async fn correct(State(state): State<Arc<AppState>>, ApiUser(session): ApiUser, Path(case_id): Path<String>, Json(b): Json<CorrectionBody>) -> Result<Json<Value>, ApiError> {
    let today = Utc::now().date_naive();
    Ok(done(state.review.correct(&session.user, &case_id, b.draft_id, &b.document_id, b.first_page, &b.doc_type, today).await?))
}

#[derive(Deserialize)]
pub struct DraftBody {
    draft_id: i64,
    text: String,
}

pub async fn edit(State(state): State<Arc<AppState>>, ApiUser(session): ApiUser, Path(case_id): Path<String>, Json(b): Json<DraftBody>) -> Result<Json<Value>, ApiError> {
    Ok(done(state.review.edit(&session.user, &case_id, b.draft_id, &b.text).await?))
}

#[derive(Deserialize)]
pub struct DecisionBody {
    draft_id: i64,
    #[serde(default)]
    reason: String,
}

pub async fn approve(State(state): State<Arc<AppState>>, ApiUser(session): ApiUser, Path(case_id): Path<String>, Json(b): Json<DecisionBody>) -> Result<Json<Value>, ApiError> {
    Ok(done(state.review.approve(&session.user, &case_id, b.draft_id).await?))
}

pub async fn reject(State(state): State<Arc<AppState>>, ApiUser(session): ApiUser, Path(case_id): Path<String>, Json(b): Json<DecisionBody>) -> Result<Json<Value>, ApiError> {
    Ok(done(state.review.reject(&session.user, &case_id, b.draft_id, &b.reason).await?))
}

pub async fn close(State(state): State<Arc<AppState>>, ApiUser(session): ApiUser, Path(case_id): Path<String>, Json(b): Json<DecisionBody>) -> Result<Json<Value>, ApiError> {
    Ok(done(state.review.close_complete(&session.user, &case_id, b.draft_id).await?))
}

pub async fn letter(State(state): State<Arc<AppState>>, ApiUser(session): ApiUser, Path((case_id, draft_id)): Path<(String, i64)>) -> Result<Response, ApiError> {
    require(&session, &[Role::Caseworker, Role::Admin, Role::Auditor])?;
    let pdf = state.store.letter_pdf(state.review.scope(&session.user), &case_id, draft_id).await?.ok_or_else(ApiError::not_found)?;
    Ok(super::pages::pdf_response(pdf, &format!("Nachforderung-{case_id}-{draft_id}.pdf")))
}

/// `GET /api/v1/cases/{case_id}/audit`: the case's audit trail (auditors).
pub async fn audit(State(state): State<Arc<AppState>>, ApiUser(session): ApiUser, Path(case_id): Path<String>) -> Result<Response, ApiError> {
    require(&session, &[Role::Auditor])?;
    let body = audit_export_lines(&state, &session, &case_id).await.map_err(|e| match e {
        PageError::Page { status, message } => ApiError::new(status, "error", message),
        PageError::SignIn { .. } => ApiError::unauthorized(),
    })?;
    let mut response = (StatusCode::OK, body).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/x-ndjson; charset=utf-8"));
    Ok(response)
}

/// One exported line: the entry as hashed, its stored hashes, and the
/// attachment texts it refers to, so the export can be verified offline.
#[derive(Serialize)]
struct ExportLine<'a> {
    id: i64,
    at: chrono::DateTime<Utc>,
    actor: &'a str,
    action: &'a str,
    case_id: Option<&'a str>,
    bundle_id: Option<&'a str>,
    schema_version: Option<&'a str>,
    detail: &'a Value,
    hash: &'a str,
    attachments: Vec<&'a str>,
}

/// The audit trail of a case as JSON lines; the export is itself audited.
pub async fn audit_export_lines(state: &AppState, session: &Session, case_id: &str) -> Result<String, PageError> {
    let (entries, attachments) = state.store.case_audit(state.review.scope(&session.user), case_id).await?;
    let mut out = String::new();
    for e in &entries {
        let line = ExportLine {
            id: e.id,
            at: e.at,
            actor: &e.actor,
            action: &e.action,
            case_id: e.case_id.as_deref(),
            bundle_id: e.bundle_id.as_deref(),
            schema_version: e.schema_version.as_deref(),
            detail: &e.detail,
            hash: &e.hash,
            attachments: ["diff_sha256", "reason_sha256"]
                .iter()
                .filter_map(|k| e.detail.get(*k).and_then(Value::as_str))
                .filter_map(|h| attachments.iter().find(|(a, _)| a == h).map(|(_, t)| t.as_str()))
                .collect(),
        };
        out.push_str(&serde_json::to_string(&line).map_err(|e| service::ReviewError::Internal(e.to_string()))?);
        out.push('\n');
    }
    state
        .store
        .append_audit(&session.user.username, "audit_exported", Some(case_id), json!({"case_id": case_id, "entries": entries.len()}), None)
        .await?;
    Ok(out)
}

//! The server-rendered pages caseworkers and auditors use: sign-in, the
//! review queue, the case view with verdicts, evidence, page images and the
//! editable letter, the actions on a case (all POST with a CSRF token), and
//! the audit trail. Handlers only translate between HTTP and `Review`.
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::Arc;

use super::AppState;
use super::auth::{self, ClientAddr, SignIn, Signed, check_csrf, require_role};
use super::error::PageError;
use super::labels;
use super::templates::render;
use crate::domain::Report;
use crate::domain::check::RequirementVerdict;
use crate::review::{self as service, Done, ReviewError};
use crate::store::review::{AssigneeFilter, CaseDetail, QueueQuery, QueueSort, Role, Session, StatusFilter};
use crate::worker::report_document_id;

/// What every page's layout shows of the signed-in account.
#[derive(Serialize)]
pub(super) struct Account {
    username: String,
    display_name: String,
    tenant: String,
    role: &'static str,
    role_label: &'static str,
    csrf: String,
}

pub(super) fn account(state: &AppState, s: &Session) -> Account {
    Account {
        username: s.user.username.clone(),
        display_name: s.user.display_name.clone(),
        // The authority's name from the tenant's letterhead reads better than its id.
        tenant: match state.settings.tenants.get(&s.user.tenant) {
            Some(letterhead) => letterhead.authority.clone(),
            None if s.user.tenant == state.settings.default_tenant => state.settings.letterhead.authority.clone(),
            None => s.user.tenant.clone(),
        },
        role: s.user.role.as_str(),
        role_label: s.user.role.label_de(),
        csrf: s.csrf_token.clone(),
    }
}

// ---------------------------------------------------------------------------
// Sign-in and sign-out.
// ---------------------------------------------------------------------------

#[derive(Deserialize)]
pub struct LoginQuery {
    weiter: Option<String>,
}

/// Only local paths are followed after sign-in (no open redirect).
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.starts_with("/\\") => n.to_string(),
        _ => "/faelle".to_string(),
    }
}

pub async fn login_page(State(state): State<Arc<AppState>>, Query(q): Query<LoginQuery>) -> Result<Response, PageError> {
    login_form(&state, &safe_next(q.weiter.as_deref()), "", None, StatusCode::OK)
}

/// The sign-in form with a fresh double-submit CSRF token.
fn login_form(state: &AppState, next: &str, username: &str, error: Option<String>, status: StatusCode) -> Result<Response, PageError> {
    let token = auth::random_token();
    let html = render(
        "login.html",
        minijinja::context! { next => next, username => username, error => error, csrf => token },
    )?;
    let mut response = (status, html).into_response();
    let cookie = auth::set_cookie(auth::login_cookie(state.settings.secure_cookies), &token, 3600, state.settings.secure_cookies);
    response.headers_mut().append(header::SET_COOKIE, header_value(&cookie));
    Ok(response)
}

#[derive(Deserialize)]
pub struct LoginForm {
    benutzername: String,
    passwort: String,
    csrf: String,
    weiter: Option<String>,
}

pub async fn login(
    State(state): State<Arc<AppState>>,
    ClientAddr(client): ClientAddr,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Result<Response, PageError> {
    let next = safe_next(form.weiter.as_deref());
    let cookie = auth::cookie(&headers, auth::login_cookie(state.settings.secure_cookies)).unwrap_or("");
    if cookie.is_empty() || !auth::same_token(cookie, &form.csrf) {
        return login_form(
            &state,
            &next,
            &form.benutzername,
            Some("Das Anmeldeformular ist abgelaufen. Bitte versuchen Sie es noch einmal.".into()),
            StatusCode::FORBIDDEN,
        );
    }
    match auth::sign_in(&state, &form.benutzername, &form.passwort, client).await? {
        SignIn::Ok { token, .. } => {
            // Any session the browser brought is ended: the new token is the
            // only one that counts from now on (no session fixation).
            if let Some(old) = auth::cookie(&headers, auth::session_cookie(state.settings.secure_cookies)) {
                state.store.delete_session(&auth::token_hash(old)).await?;
            }
            let mut response = Redirect::to(&next).into_response();
            let max_age = i64::from(state.settings.session_hours) * 3600;
            let secure = state.settings.secure_cookies;
            let h = response.headers_mut();
            h.append(header::SET_COOKIE, header_value(&auth::set_cookie(auth::session_cookie(secure), &token, max_age, secure)));
            h.append(header::SET_COOKIE, header_value(&auth::set_cookie(auth::login_cookie(secure), "", 0, secure)));
            Ok(response)
        }
        SignIn::Refused => login_form(
            &state,
            &next,
            &form.benutzername,
            Some("Benutzername oder Passwort ist falsch.".into()),
            StatusCode::UNAUTHORIZED,
        ),
        SignIn::Locked(until) => login_form(
            &state,
            &next,
            &form.benutzername,
            Some(format!(
                "Zu viele fehlgeschlagene Anmeldeversuche. Bitte warten Sie bis {} und versuchen Sie es dann erneut.",
                until.format("%H:%M:%S UTC")
            )),
            StatusCode::TOO_MANY_REQUESTS,
        ),
    }
}

#[derive(Deserialize)]
pub struct CsrfForm {
    csrf: String,
}

pub async fn logout(State(state): State<Arc<AppState>>, Signed(session): Signed, Form(form): Form<CsrfForm>) -> Result<Response, PageError> {
    check_csrf(&session, &form.csrf)?;
    state.store.delete_session(&session.token_hash).await?;
    let mut response = Redirect::to("/anmelden").into_response();
    let secure = state.settings.secure_cookies;
    response.headers_mut().append(header::SET_COOKIE, header_value(&auth::set_cookie(auth::session_cookie(secure), "", 0, secure)));
    Ok(response)
}

fn header_value(s: &str) -> HeaderValue {
    HeaderValue::from_str(s).expect("cookies are built from URL-safe tokens")
}

// ---------------------------------------------------------------------------
// The review queue.
// ---------------------------------------------------------------------------

/// Queue filters as they appear in the URL (German parameter names).
#[derive(Debug, Default, Deserialize, Serialize, Clone)]
pub struct QueueParams {
    #[serde(default)]
    pub verfahren: String,
    #[serde(default)]
    pub ergebnis: String,
    /// `offen` (default), `entschieden`, `alle`.
    #[serde(default)]
    pub status: String,
    /// `alle` (default), `ich`, `niemand`.
    #[serde(default)]
    pub bearbeitung: String,
    /// Only cases older than this many days.
    #[serde(default)]
    pub aelter_als: String,
    /// `eingang` (default), `aktualisiert`, `verfahren`, `ergebnis`, `bearbeitung`.
    #[serde(default)]
    pub sortierung: String,
    /// `auf` (default) or `ab`.
    #[serde(default)]
    pub richtung: String,
    #[serde(default)]
    pub seite: String,
    /// Case id, bundle id or part of the applicant's name or address.
    #[serde(default)]
    pub suche: String,
}

pub const PAGE_SIZE: i64 = 50;

impl QueueParams {
    pub fn to_query(&self, username: &str) -> QueueQuery {
        let page = self.seite.parse::<i64>().unwrap_or(1).clamp(1, 100_000);
        QueueQuery {
            procedure: Some(self.verfahren.clone()).filter(|s| !s.is_empty()),
            verdict: Some(self.ergebnis.clone()).filter(|s| ["complete", "incomplete", "needs_review"].contains(&s.as_str())),
            status: match self.status.as_str() {
                "entschieden" => StatusFilter::Decided,
                "alle" => StatusFilter::All,
                _ => StatusFilter::Open,
            },
            assignee: match self.bearbeitung.as_str() {
                "ich" => AssigneeFilter::User(username.to_string()),
                "niemand" => AssigneeFilter::Nobody,
                _ => AssigneeFilter::Anyone,
            },
            received_before: self.aelter_als.parse::<i64>().ok().filter(|d| *d > 0 && *d < 36_500).map(|d| Utc::now() - Duration::days(d)),
            received_after: None,
            search: Some(self.suche.trim().chars().take(100).collect::<String>()).filter(|s| !s.is_empty()),
            sort: match self.sortierung.as_str() {
                "aktualisiert" => QueueSort::Updated,
                "verfahren" => QueueSort::Procedure,
                "ergebnis" => QueueSort::Verdict,
                "bearbeitung" => QueueSort::Assignee,
                _ => QueueSort::Received,
            },
            descending: self.richtung == "ab",
            limit: PAGE_SIZE,
            offset: (page - 1) * PAGE_SIZE,
        }
    }

    /// The query string for the same filters with another sort or page.
    fn link(&self, sort: Option<&str>, page: Option<i64>) -> String {
        let mut p = self.clone();
        if let Some(s) = sort {
            p.richtung = if p.sortierung == s && p.richtung != "ab" { "ab".into() } else { "auf".into() };
            p.sortierung = s.into();
            p.seite = String::new();
        }
        if let Some(n) = page {
            p.seite = n.to_string();
        }
        let pairs = [
            ("verfahren", &p.verfahren),
            ("ergebnis", &p.ergebnis),
            ("status", &p.status),
            ("bearbeitung", &p.bearbeitung),
            ("aelter_als", &p.aelter_als),
            ("sortierung", &p.sortierung),
            ("richtung", &p.richtung),
            ("seite", &p.seite),
            ("suche", &p.suche),
        ];
        let q: Vec<String> = pairs.iter().filter(|(_, v)| !v.is_empty()).map(|(k, v)| format!("{k}={}", super::urlencode(v))).collect();
        format!("/faelle?{}", q.join("&"))
    }
}

#[derive(Serialize)]
struct QueueLine {
    case_id: String,
    applicant: String,
    procedure: String,
    verdict: String,
    verdict_label: &'static str,
    status_label: &'static str,
    received: String,
    age: String,
    assignee: Option<String>,
    mine: bool,
    draft_label: &'static str,
}

#[derive(Serialize)]
struct SortColumn {
    key: &'static str,
    label: &'static str,
    href: String,
    /// `ascending`, `descending` or `none` (aria-sort).
    aria: &'static str,
}

pub async fn queue(State(state): State<Arc<AppState>>, Signed(session): Signed, Query(params): Query<QueueParams>) -> Result<Response, PageError> {
    require_role(&session, &[Role::Caseworker, Role::Admin, Role::Auditor])?;
    let query = params.to_query(&session.user.username);
    let page = state.store.review_queue(state.review.scope(&session.user), &query).await?;
    let now = Utc::now();
    let lines: Vec<QueueLine> = page
        .rows
        .iter()
        .map(|r| QueueLine {
            case_id: r.case_id.clone(),
            applicant: r.applicant.clone().unwrap_or_default(),
            procedure: procedure_title(&state, &r.procedure),
            verdict: r.verdict.clone(),
            verdict_label: labels::verdict(&r.verdict),
            status_label: labels::review_status(&r.review_status),
            received: r.received_at.map(labels::date).unwrap_or_default(),
            age: r.received_at.map(|at| labels::age(at, now)).unwrap_or_default(),
            mine: r.assignee.as_deref() == Some(session.user.username.as_str()),
            assignee: r.assignee.clone(),
            draft_label: r.draft_kind.as_deref().map(labels::draft_kind).unwrap_or("—"),
        })
        .collect();
    let columns: Vec<SortColumn> = [
        ("eingang", "Eingang"),
        ("verfahren", "Verfahren"),
        ("ergebnis", "Ergebnis"),
        ("bearbeitung", "Bearbeitung"),
    ]
    .iter()
    .map(|(key, label)| {
        let active = params.sortierung == *key || (params.sortierung.is_empty() && *key == "eingang");
        SortColumn {
            key,
            label,
            href: params.link(Some(key), None),
            aria: match (active, params.richtung == "ab") {
                (false, _) => "none",
                (true, false) => "ascending",
                (true, true) => "descending",
            },
        }
    })
    .collect();
    let current_page = query.offset / PAGE_SIZE + 1;
    let pages = (page.total + PAGE_SIZE - 1) / PAGE_SIZE;
    let procedures: Vec<(String, String)> =
        state.review.schemas.current().procedures.values().map(|s| (s.procedure.id.clone(), s.procedure.title.clone())).collect();
    let html = render(
        "queue.html",
        minijinja::context! {
            account => account(&state, &session),
            lines => lines,
            total => page.total,
            params => params,
            columns => columns,
            procedures => procedures,
            page => current_page,
            pages => pages.max(1),
            previous => (current_page > 1).then(|| params.link(None, Some(current_page - 1))),
            next => (current_page < pages).then(|| params.link(None, Some(current_page + 1))),
            can_claim => session.user.role != Role::Auditor,
        },
    )?;
    Ok(html.into_response())
}

fn procedure_title(state: &AppState, id: &str) -> String {
    state.review.schemas.current().procedures.get(id).map(|s| s.procedure.title.clone()).unwrap_or_else(|| id.to_string())
}

// ---------------------------------------------------------------------------
// The case view.
// ---------------------------------------------------------------------------

#[derive(Serialize)]
struct RequirementLine {
    label: String,
    child: Option<String>,
    verdict: String,
    verdict_label: &'static str,
    reason: String,
    segments: Vec<usize>,
}

#[derive(Serialize)]
struct SegmentView {
    index: usize,
    first_page: u32,
    last_page: u32,
    doc_type: String,
    label: String,
    score: String,
    evidence: Vec<String>,
    text_source: &'static str,
    ocr_confidence: Option<String>,
    document_date: Option<String>,
    reason: Option<String>,
    readable: bool,
    declared_matches: Option<bool>,
    corrected_from: Option<String>,
    report_document_id: String,
}

#[derive(Serialize)]
struct DocumentView {
    index: usize,
    filename: String,
    media_type: String,
    declared_label: Option<String>,
    segments: Vec<SegmentView>,
    pages: Vec<PageImage>,
    notes: Vec<String>,
}

#[derive(Serialize)]
struct PageImage {
    number: u32,
    src: String,
    alt: String,
}

#[derive(Serialize)]
struct DraftLine {
    draft_id: i64,
    version: i64,
    kind_label: &'static str,
    status_label: &'static str,
    created_by: String,
    created_at: String,
    decided: Option<String>,
    note: Option<String>,
    letter: Option<String>,
}

/// Renders the case view; `message` is a confirmation, `error` a failure.
async fn case_page(
    state: &AppState,
    session: &Session,
    case_id: &str,
    message: Option<String>,
    error: Option<String>,
    status: StatusCode,
    edited_text: Option<String>,
) -> Result<Response, PageError> {
    require_role(session, &[Role::Caseworker, Role::Admin, Role::Auditor])?;
    let detail = state.review.case(&session.user, case_id).await?;
    let pending = detail.pending_draft();
    let shown = pending.or(detail.drafts.first());
    let report = shown.map(service::report_of).transpose()?;
    let structured = shown.map(service::draft_of).transpose()?;
    let mine = detail.case.assignee.as_deref() == Some(session.user.username.as_str());
    let is_caseworker = session.user.role == Role::Caseworker;
    let can_edit = pending.is_some() && mine && is_caseworker;
    let problems = match pending {
        Some(d) if d.kind == "letter" => state.review.approval_problems(d)?.into_iter().map(|p| p.message).collect(),
        _ => Vec::new(),
    };
    let manifests = state.store.case_manifests(case_id).await?;
    let children = children_of(manifests.last());
    let requirements: Vec<RequirementLine> = report
        .as_ref()
        .map(|r| {
            r.requirements
                .iter()
                .map(|f| RequirementLine {
                    label: f.label.clone(),
                    child: match (&f.list, f.person) {
                        (Some(list), Some(i)) => Some(person_of(manifests.last(), list, i)),
                        _ => f.child.map(|c| children.get(c).cloned().unwrap_or_else(|| format!("Kind {}", c + 1))),
                    },
                    verdict: verdict_id(f.verdict).to_string(),
                    verdict_label: labels::requirement(verdict_id(f.verdict)),
                    reason: f.reason.clone(),
                    segments: f.segments.clone(),
                })
                .collect()
        })
        .unwrap_or_default();
    let documents = document_views(state, &detail, report.as_ref(), case_id);
    let types: Vec<(String, String)> = state.review.schemas.current().catalogue.ids().map(|id| (id.to_string(), state.review.schemas.current().catalogue.label(id).to_string())).collect();
    let drafts: Vec<DraftLine> = detail
        .drafts
        .iter()
        .map(|d| DraftLine {
            draft_id: d.draft_id,
            version: d.version,
            kind_label: labels::draft_kind(&d.kind),
            status_label: labels::draft_status(&d.status),
            created_by: if d.created_by == "worker" { "automatische Prüfung".into() } else { d.created_by.clone() },
            created_at: labels::moment(d.created_at),
            decided: d.decided_by.as_ref().map(|by| format!("{by}, {}", d.decided_at.map(labels::moment).unwrap_or_default())),
            note: d.decision_note.clone(),
            letter: detail.letters.iter().any(|l| l.draft_id == d.draft_id).then(|| format!("/faelle/{case_id}/schreiben/{}.pdf", d.draft_id)),
        })
        .collect();
    let header = structured.as_ref().map(|d| {
        minijinja::context! {
            address => d.address,
            reference => d.reference,
            date => crate::domain::dates::date_de(d.date),
            deadline => crate::domain::dates::date_de(d.deadline),
            subject => d.subject,
            return_address => d.letterhead.return_address,
            enclosures => d.enclosures,
            received => d.received,
            review_notes => d.review_notes,
        }
    });
    let html = render(
        "case.html",
        minijinja::context! {
            account => account(state, session),
            case => minijinja::context! {
                id => detail.case.case_id,
                procedure => procedure_title(state, &detail.case.procedure),
                verdict => detail.case.verdict,
                verdict_label => labels::verdict(&detail.case.verdict),
                status_label => labels::review_status(&detail.case.review_status),
                schema_version => detail.case.schema_version,
                received => detail.case.received_at.map(labels::date),
                assignee => detail.case.assignee,
                bundles => detail.bundles.iter().map(|b| format!("{} ({})", b.bundle_id, labels::moment(b.received_at))).collect::<Vec<_>>(),
            },
            mine => mine,
            can_claim => session.user.role != Role::Auditor && !mine,
            can_release => mine,
            can_edit => can_edit,
            is_auditor => session.user.role == Role::Auditor,
            draft => pending.map(|d| minijinja::context! {
                id => d.draft_id,
                version => d.version,
                kind => d.kind,
                kind_label => labels::draft_kind(&d.kind),
                text => edited_text.clone().unwrap_or_else(|| d.text.clone()),
            }),
            letter_header => header,
            problems => problems,
            requirements => requirements,
            documents => documents,
            notes => report.as_ref().map(|r| r.notes.iter().map(|n| format!("{}: {}", n.document_id, n.detail)).collect::<Vec<_>>()).unwrap_or_default(),
            types => types,
            drafts => drafts,
            corrections => detail.corrections.iter().map(|c| format!(
                "{}: {} ab Seite {} von „{}“ zu „{}“ korrigiert ({})",
                labels::moment(c.created_at), c.document_id, c.first_page,
                state.review.schemas.current().catalogue.label(&c.previous_type), state.review.schemas.current().catalogue.label(&c.doc_type), c.username
            )).collect::<Vec<_>>(),
            message => message,
            error => error,
        },
    )?;
    let mut response = (status, html).into_response();
    // Case pages hold personal data: never cached, never indexed.
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

fn verdict_id(v: RequirementVerdict) -> &'static str {
    match v {
        RequirementVerdict::Satisfied => "satisfied",
        RequirementVerdict::Missing => "missing",
        RequirementVerdict::Expired => "expired",
        RequirementVerdict::Uncertain => "uncertain",
        RequirementVerdict::NotApplicable => "not_applicable",
    }
}

/// The name of person `index` of the manifest list `persons.<list>` (for
/// per-person requirements such as each household member's income).
fn person_of(manifest: Option<&Value>, list: &str, index: usize) -> String {
    manifest
        .and_then(|m| m.get("persons")?.get(list)?.get(index))
        .map(|p| {
            let part = |k: &str| p.get(k).and_then(Value::as_str).unwrap_or("").to_string();
            crate::domain::draft::clean(&format!("{} {}", part("given_name"), part("family_name")))
        })
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| format!("Person {}", index + 1))
}

/// The children's names for per-child requirements, from the newest
/// manifest (whose `children` the report's `child` indices refer to).
fn children_of(manifest: Option<&Value>) -> Vec<String> {
    manifest
        .and_then(|m| m.get("children"))
        .and_then(Value::as_array)
        .map(|children| {
            children
                .iter()
                .map(|c| {
                    let part = |k: &str| c.get(k).and_then(Value::as_str).unwrap_or("").to_string();
                    crate::domain::draft::clean(&format!("{} {}", part("given_name"), part("family_name")))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// One view per upload, with its segments of the shown report and its pages.
fn document_views(state: &AppState, detail: &CaseDetail, report: Option<&Report>, case_id: &str) -> Vec<DocumentView> {
    let current_bundle = report.map(|r| r.bundle_id.as_str()).unwrap_or("");
    detail
        .documents
        .iter()
        .enumerate()
        .map(|(index, d)| {
            let rid = report_document_id(current_bundle, &d.bundle_id, &d.document_id);
            let segments: Vec<SegmentView> = report
                .map(|r| {
                    r.segments
                        .iter()
                        .enumerate()
                        .filter(|(_, s)| s.document_id == rid)
                        .map(|(i, s)| SegmentView {
                            index: i,
                            first_page: s.first_page,
                            last_page: s.last_page,
                            doc_type: s.doc_type.clone(),
                            label: s.label.clone(),
                            score: format!("{:.0} %", s.score * 100.0),
                            evidence: s.evidence.clone(),
                            text_source: labels::text_source(match s.text_source {
                                crate::domain::document::TextSource::TextLayer => "text_layer",
                                crate::domain::document::TextSource::Ocr => "ocr",
                                crate::domain::document::TextSource::Mixed => "mixed",
                                crate::domain::document::TextSource::None => "none",
                            }),
                            ocr_confidence: s.ocr_confidence.map(|c| format!("{c:.0} %")),
                            document_date: s.document_date.map(crate::domain::dates::date_de),
                            reason: s.reason.clone(),
                            readable: s.is_readable(),
                            declared_matches: s.declared_type_matches,
                            corrected_from: s.corrected_from.as_ref().map(|t| state.review.schemas.current().catalogue.label(t).to_string()),
                            report_document_id: rid.clone(),
                        })
                        .collect()
                })
                .unwrap_or_default();
            let last_page = segments.iter().filter(|s| s.readable).map(|s| s.last_page).max().unwrap_or(0);
            let pages = if d.has_content && state.pages.is_some() {
                (1..=last_page.min(MAX_PAGES_SHOWN))
                    .map(|n| PageImage {
                        number: n,
                        src: format!("/faelle/{case_id}/dokumente/{index}/seiten/{n}.png"),
                        alt: format!(
                            "Seite {n} von „{}“{}",
                            d.filename,
                            segments
                                .iter()
                                .find(|s| s.first_page <= n && n <= s.last_page)
                                .map(|s| format!(", erkannt als {}; markiert: {}", s.label, if s.evidence.is_empty() { "nichts".into() } else { s.evidence.join(", ") }))
                                .unwrap_or_default()
                        ),
                    })
                    .collect()
            } else {
                Vec::new()
            };
            DocumentView {
                index,
                filename: d.filename.clone(),
                media_type: d.media_type.clone(),
                declared_label: d.declared_type.as_ref().map(|t| state.review.schemas.current().catalogue.label(t).to_string()),
                segments,
                pages,
                notes: report
                    .map(|r| r.notes.iter().filter(|n| n.document_id == rid).map(|n| n.detail.clone()).collect())
                    .unwrap_or_default(),
            }
        })
        .collect()
}

/// Pages beyond this are not shown as images (a 100-page upload would make
/// the case view unusable); the caseworker opens the file instead.
const MAX_PAGES_SHOWN: u32 = 12;

#[derive(Deserialize)]
pub struct CaseQuery {
    ok: Option<String>,
}

pub async fn case(State(state): State<Arc<AppState>>, Signed(session): Signed, Path(case_id): Path<String>, Query(q): Query<CaseQuery>) -> Result<Response, PageError> {
    let message = q.ok.as_deref().and_then(confirmation);
    case_page(&state, &session, &case_id, message, None, StatusCode::OK, None).await
}

/// Confirmation texts after a successful action (post/redirect/get).
fn confirmation(code: &str) -> Option<String> {
    Some(
        match code {
            "uebernommen" => "Sie bearbeiten diesen Fall jetzt.",
            "zurueckgegeben" => "Der Fall ist wieder für alle frei.",
            "korrigiert" => "Die Zuordnung wurde korrigiert; die Prüfung ist neu gelaufen und der Entwurf aktualisiert.",
            "gespeichert" => "Der Entwurf wurde als neue Fassung gespeichert.",
            "unveraendert" => "Der Text war unverändert; es wurde keine neue Fassung angelegt.",
            "freigegeben" => "Das Schreiben ist freigegeben und als PDF gespeichert.",
            "abgelehnt" => "Der Entwurf wurde abgelehnt.",
            "abgeschlossen" => "Der Fall wurde als vollständig abgeschlossen.",
            _ => return None,
        }
        .to_string(),
    )
}

/// After an action: back to the case with a confirmation, or the case page
/// again with the error (and the caseworker's unsaved text kept).
async fn after_action(
    state: &AppState,
    session: &Session,
    case_id: &str,
    result: Result<Done, ReviewError>,
    ok: &str,
    edited_text: Option<String>,
) -> Result<Response, PageError> {
    match result {
        Ok(_) => Ok(Redirect::to(&format!("/faelle/{}?ok={ok}", super::urlencode(case_id))).into_response()),
        Err(ReviewError::NotFound) => Err(ReviewError::NotFound.into()),
        Err(e @ (ReviewError::Unavailable | ReviewError::Internal(_))) => Err(e.into()),
        Err(e) => {
            let status = match e {
                ReviewError::Forbidden(_) => StatusCode::FORBIDDEN,
                ReviewError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
                _ => StatusCode::CONFLICT,
            };
            case_page(state, session, case_id, None, Some(e.to_string()), status, edited_text).await
        }
    }
}

#[derive(Deserialize)]
pub struct ClaimForm {
    csrf: String,
    #[serde(default)]
    uebernehmen: String,
    #[serde(default)]
    zurueck: String,
}

pub async fn claim(State(state): State<Arc<AppState>>, Signed(session): Signed, Path(case_id): Path<String>, Form(form): Form<ClaimForm>) -> Result<Response, PageError> {
    check_csrf(&session, &form.csrf)?;
    let result = state.review.claim(&session.user, &case_id, form.uebernehmen == "ja").await;
    // From the queue the caseworker goes on to the case; a failure shows on it.
    let _ = form.zurueck;
    after_action(&state, &session, &case_id, result, "uebernommen", None).await
}

pub async fn release(State(state): State<Arc<AppState>>, Signed(session): Signed, Path(case_id): Path<String>, Form(form): Form<CsrfForm>) -> Result<Response, PageError> {
    check_csrf(&session, &form.csrf)?;
    let result = state.review.release(&session.user, &case_id).await;
    after_action(&state, &session, &case_id, result, "zurueckgegeben", None).await
}

#[derive(Deserialize)]
pub struct CorrectionForm {
    csrf: String,
    entwurf: i64,
    dokument: String,
    seite: u32,
    typ: String,
}

pub async fn correct(State(state): State<Arc<AppState>>, Signed(session): Signed, Path(case_id): Path<String>, Form(form): Form<CorrectionForm>) -> Result<Response, PageError> {
    check_csrf(&session, &form.csrf)?;
    let today = Utc::now().date_naive();
    let result = state.review.correct(&session.user, &case_id, form.entwurf, &form.dokument, form.seite, &form.typ, today).await;
    after_action(&state, &session, &case_id, result, "korrigiert", None).await
}

#[derive(Deserialize)]
pub struct DraftForm {
    csrf: String,
    entwurf: i64,
    text: String,
}

pub async fn save_draft(State(state): State<Arc<AppState>>, Signed(session): Signed, Path(case_id): Path<String>, Form(form): Form<DraftForm>) -> Result<Response, PageError> {
    check_csrf(&session, &form.csrf)?;
    let result = state.review.edit(&session.user, &case_id, form.entwurf, &form.text).await;
    let ok = if matches!(result, Ok(Done::Nothing)) { "unveraendert" } else { "gespeichert" };
    after_action(&state, &session, &case_id, result, ok, Some(form.text)).await
}

/// "Speichern und freigeben": saves the text if it changed, then approves
/// the version that holds it.
pub async fn approve(State(state): State<Arc<AppState>>, Signed(session): Signed, Path(case_id): Path<String>, Form(form): Form<DraftForm>) -> Result<Response, PageError> {
    check_csrf(&session, &form.csrf)?;
    let result = match state.review.edit(&session.user, &case_id, form.entwurf, &form.text).await {
        Ok(Done::Draft(new_id)) => state.review.approve(&session.user, &case_id, new_id).await,
        Ok(Done::Nothing) => state.review.approve(&session.user, &case_id, form.entwurf).await,
        // A decided draft cannot be edited; let the approval say what happened.
        Err(ReviewError::Conflict(_)) => state.review.approve(&session.user, &case_id, form.entwurf).await,
        Err(e) => Err(e),
    };
    after_action(&state, &session, &case_id, result, "freigegeben", Some(form.text)).await
}

#[derive(Deserialize)]
pub struct RejectForm {
    csrf: String,
    entwurf: i64,
    grund: String,
}

pub async fn reject(State(state): State<Arc<AppState>>, Signed(session): Signed, Path(case_id): Path<String>, Form(form): Form<RejectForm>) -> Result<Response, PageError> {
    check_csrf(&session, &form.csrf)?;
    let result = state.review.reject(&session.user, &case_id, form.entwurf, &form.grund).await;
    after_action(&state, &session, &case_id, result, "abgelehnt", None).await
}

#[derive(Deserialize)]
pub struct CloseForm {
    csrf: String,
    entwurf: i64,
}

pub async fn close(State(state): State<Arc<AppState>>, Signed(session): Signed, Path(case_id): Path<String>, Form(form): Form<CloseForm>) -> Result<Response, PageError> {
    check_csrf(&session, &form.csrf)?;
    let result = state.review.close_complete(&session.user, &case_id, form.entwurf).await;
    after_action(&state, &session, &case_id, result, "abgeschlossen", None).await
}

/// The approved letter's PDF.
pub async fn letter(State(state): State<Arc<AppState>>, Signed(session): Signed, Path((case_id, file)): Path<(String, String)>) -> Result<Response, PageError> {
    require_role(&session, &[Role::Caseworker, Role::Auditor, Role::Admin])?;
    let draft_id: i64 = file.strip_suffix(".pdf").and_then(|n| n.parse().ok()).ok_or(ReviewError::NotFound)?;
    let pdf = state.store.letter_pdf(state.review.scope(&session.user), &case_id, draft_id).await?.ok_or(ReviewError::NotFound)?;
    Ok(pdf_response(pdf, &format!("Nachforderung-{case_id}-{draft_id}.pdf")))
}

/// The current text of a letter draft as PDF, before approval (inline,
/// so the browser shows it).
pub async fn preview(State(state): State<Arc<AppState>>, Signed(session): Signed, Path((case_id, file)): Path<(String, String)>) -> Result<Response, PageError> {
    require_role(&session, &[Role::Caseworker, Role::Auditor, Role::Admin])?;
    let draft_id: i64 = file.strip_suffix(".pdf").and_then(|n| n.parse().ok()).ok_or(ReviewError::NotFound)?;
    let pdf = state.review.preview(&session.user, &case_id, draft_id).await?;
    let mut response = pdf_response(pdf, &format!("Entwurf-{case_id}-{draft_id}.pdf"));
    if let Ok(v) = HeaderValue::from_str(&format!("inline; filename=\"Entwurf-{case_id}-{draft_id}.pdf\"")) {
        response.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(response)
}

pub fn pdf_response(pdf: Vec<u8>, filename: &str) -> Response {
    let mut response = pdf.into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/pdf"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{filename}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    response
}

/// A page of an upload as PNG, with the segment's evidence highlighted.
pub async fn page_image(
    State(state): State<Arc<AppState>>,
    Signed(session): Signed,
    Path((case_id, index, file)): Path<(String, usize, String)>,
) -> Result<Response, PageError> {
    require_role(&session, &[Role::Caseworker, Role::Auditor, Role::Admin])?;
    let page: u32 = file.strip_suffix(".png").and_then(|n| n.parse().ok()).filter(|n| *n >= 1).ok_or(ReviewError::NotFound)?;
    let Some(pages) = state.pages.clone() else { return Err(ReviewError::NotFound.into()) };
    let detail = state.review.case(&session.user, &case_id).await?;
    let doc = detail.documents.get(index).ok_or(ReviewError::NotFound)?;
    let shown = detail.pending_draft().or(detail.drafts.first()).ok_or(ReviewError::NotFound)?;
    let report = service::report_of(shown)?;
    let rid = report_document_id(&report.bundle_id, &doc.bundle_id, &doc.document_id);
    let phrases: Vec<String> = report
        .segments
        .iter()
        .find(|s| s.document_id == rid && s.first_page <= page && page <= s.last_page)
        .map(|s| s.evidence.clone())
        .unwrap_or_default();
    let bytes = state.store.document_content(state.review.scope(&session.user), &case_id, &doc.sha256).await?.ok_or(ReviewError::NotFound)?;
    let media_type = doc.media_type.clone();
    let sha = doc.sha256.clone();
    let png = tokio::task::spawn_blocking(move || pages.page_png(&sha, &bytes, &media_type, page, &phrases))
        .await
        .map_err(|e| ReviewError::Internal(format!("page rendering task failed: {e}")))?
        .map_err(|e| PageError::status(StatusCode::NOT_FOUND, format!("Die Seite kann nicht angezeigt werden: {e}")))?;
    let mut response = png.into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("image/png"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, max-age=600"));
    Ok(response)
}

// ---------------------------------------------------------------------------
// The audit trail.
// ---------------------------------------------------------------------------

#[derive(Serialize)]
struct AuditLine {
    id: i64,
    at: String,
    actor: String,
    action: String,
    schema_version: Option<String>,
    detail: String,
    attachment: Option<String>,
    hash: String,
}

/// The audit trail of one case, for auditors (and the case's caseworkers).
pub async fn case_audit(State(state): State<Arc<AppState>>, Signed(session): Signed, Path(case_id): Path<String>) -> Result<Response, PageError> {
    require_role(&session, &[Role::Auditor, Role::Caseworker])?;
    let (entries, attachments) = state.store.case_audit(state.review.scope(&session.user), &case_id).await?;
    let lines: Vec<AuditLine> = entries
        .iter()
        .map(|e| AuditLine {
            id: e.id,
            at: labels::moment(e.at),
            actor: e.actor.clone(),
            action: labels::audit_action(&e.action).to_string(),
            schema_version: e.schema_version.clone(),
            detail: serde_json::to_string(&e.detail).unwrap_or_default(),
            attachment: ["diff_sha256", "reason_sha256"]
                .iter()
                .filter_map(|k| e.detail.get(*k).and_then(Value::as_str))
                .find_map(|h| attachments.iter().find(|(a, _)| a == h).map(|(_, t)| t.clone())),
            hash: e.hash.chars().take(16).collect(),
        })
        .collect();
    let check = state.store.verify_audit_chain().await?;
    let html = render(
        "audit.html",
        minijinja::context! {
            account => account(&state, &session),
            case_id => case_id,
            lines => lines,
            intact => check.is_intact(),
            entries => check.entries,
            first_broken => check.first_broken,
            can_export => session.user.role == Role::Auditor,
        },
    )?;
    let mut response = html.into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// The auditor's start page: the chain's state and a case lookup.
pub async fn audit_index(State(state): State<Arc<AppState>>, Signed(session): Signed, Query(q): Query<AuditLookup>) -> Result<Response, PageError> {
    require_role(&session, &[Role::Auditor])?;
    if let Some(case_id) = q.fall.as_deref().map(str::trim).filter(|c| !c.is_empty()) {
        return Ok(Redirect::to(&format!("/faelle/{}/protokoll", super::urlencode(case_id))).into_response());
    }
    let check = state.store.verify_audit_chain().await?;
    let html = render(
        "audit_index.html",
        minijinja::context! { account => account(&state, &session), intact => check.is_intact(), entries => check.entries, first_broken => check.first_broken },
    )?;
    Ok(html.into_response())
}

#[derive(Deserialize)]
pub struct AuditLookup {
    fall: Option<String>,
}

/// The audit trail of one case as JSON lines (auditors only); the export
/// itself is audited.
pub async fn case_audit_export(State(state): State<Arc<AppState>>, Signed(session): Signed, Path(case_id): Path<String>) -> Result<Response, PageError> {
    require_role(&session, &[Role::Auditor])?;
    let body = super::api::audit_export_lines(&state, &session, &case_id).await?;
    let mut response = body.into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/x-ndjson; charset=utf-8"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"protokoll-{case_id}.jsonl\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(response)
}

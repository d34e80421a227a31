//! The admin pages for procedure schemas (`/verwaltung`, role admin only):
//! the stored versions and what serves the admin's tenant, upload with every
//! error shown in place in the submitted text, diff in words, a replay
//! preview over the admin's own tenant's cases, and activation for that
//! tenant. Handlers translate between HTTP and `crate::schemas`; every
//! step is in the audit log (validation here, the rest in the registry).
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::sync::Arc;

use super::AppState;
use super::auth::{Signed, check_csrf, require_role};
use super::error::PageError;
use super::labels;
use super::pages::account;
use super::templates::render;
use crate::domain::diagnostics::{Mark as SpanMark, Severity, SourceMap};
use crate::domain::schema::{FileKind, SchemaError, SourceFile, file_kind, overlay_target, procedure_id};
use crate::domain::schema_diff::ChangeKind;
use crate::review::ReviewError;
use crate::schemas::{self, ListedVersion, PlannedVersion, ReplayOptions, SchemaAdminError, VersionSources};
use crate::store::review::{Role, Session};
use crate::store::schema_registry::CATALOGUE_SUBJECT;

/// Upper bound of a submitted schema text (the shipped UVG file is 7 KB).
const MAX_TEXT_BYTES: usize = 256 * 1024;
/// Upper bound of a version comment.
const MAX_COMMENT_CHARS: usize = 500;

fn admin_only(session: &Session) -> Result<(), PageError> {
    require_role(session, &[Role::Admin])
}

/// A refused or failed admin operation as an error page (German message).
fn admin_error(e: SchemaAdminError) -> PageError {
    match e {
        SchemaAdminError::Refused(m) => PageError::status(StatusCode::UNPROCESSABLE_ENTITY, m),
        SchemaAdminError::Invalid(d) => PageError::status(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!(
                "Die Version ist mit dem, was sonst aktiv ist, nicht gültig: {}",
                d.iter().filter(|e| e.is_error()).map(|e| e.to_string()).collect::<Vec<_>>().join(" · ")
            ),
        ),
        SchemaAdminError::Store(e) => e.into(),
        other => ReviewError::Internal(other.to_string()).into(),
    }
}

/// The tenant an admin administers, as the pages name it.
#[derive(Serialize)]
struct TenantView {
    id: String,
    is_default: bool,
}

fn tenant_of(state: &AppState, session: &Session) -> TenantView {
    TenantView { id: session.user.tenant.clone(), is_default: session.user.tenant == state.settings.default_tenant }
}

/// Where a version is active, in words (`None`: the default for all).
fn active_words(active_for: &[Option<String>], own: &str) -> Vec<String> {
    active_for
        .iter()
        .map(|t| match t.as_deref() {
            None => "Standard (alle Landkreise ohne eigene Version)".to_string(),
            Some(t) if t == own => format!("Ihr Landkreis ({t})"),
            Some(t) => format!("Landkreis {t}"),
        })
        .collect()
}

/// The version that serves `tenant` for `subject`: its own activation, or
/// the default.
fn effective<'a>(listed: &'a [ListedVersion], subject: &str, tenant: &str) -> Option<&'a ListedVersion> {
    let of = |t: Option<&str>| listed.iter().find(|l| l.version.subject == subject && l.active_for.iter().any(|a| a.as_deref() == t));
    of(Some(tenant)).or_else(|| of(None))
}

// ---------------------------------------------------------------------------
// Übersicht.
// ---------------------------------------------------------------------------

#[derive(Serialize)]
struct ProcedureLine {
    id: String,
    title: String,
    default_version: Option<String>,
    own_version: Option<String>,
    /// The version the admin's tenant is checked with now.
    effective: Option<String>,
    /// That version has an overlay for the admin's tenant.
    own_overlay: bool,
}

#[derive(Serialize)]
struct VersionLine {
    version_id: String,
    subject: String,
    label: String,
    hash: String,
    hash_short: String,
    author: String,
    created: String,
    comment: String,
    active: Vec<String>,
    active_here: bool,
    overlays: Vec<String>,
}

impl VersionLine {
    /// One stored version as the pages show it to an admin of `tenant`;
    /// `active_here`: it is the version checking that tenant's cases now.
    fn of(l: &ListedVersion, tenant: &str, active_here: bool) -> Self {
        VersionLine {
            version_id: l.version.version_id.clone(),
            subject: l.version.subject.clone(),
            label: l.version.label.clone(),
            hash: l.version.content_hash.clone(),
            hash_short: l.version.content_hash.chars().take(12).collect(),
            author: l.version.author.clone(),
            created: labels::moment(l.version.created_at),
            comment: l.version.comment.clone(),
            active: active_words(&l.active_for, tenant),
            active_here,
            overlays: l.overlay_tenants.clone(),
        }
    }
}

#[derive(Serialize)]
struct SubjectGroup {
    subject: String,
    title: String,
    versions: Vec<VersionLine>,
}

#[derive(Deserialize)]
pub struct OverviewQuery {
    ok: Option<String>,
    version: Option<String>,
}

pub async fn overview(State(state): State<Arc<AppState>>, Signed(session): Signed, Query(q): Query<OverviewQuery>) -> Result<Response, PageError> {
    admin_only(&session)?;
    let tenant = session.user.tenant.clone();
    let listed = schemas::list(state.registry.as_ref()).await.map_err(admin_error)?;
    let live = state.review.schemas.current();
    let title_of = |subject: &str| -> String {
        if subject == CATALOGUE_SUBJECT {
            "Dokumentkatalog (alle Verfahren)".to_string()
        } else {
            live.procedures.get(subject).map(|p| p.procedure.title.clone()).unwrap_or_else(|| subject.to_string())
        }
    };
    let mut subjects: Vec<String> = Vec::new();
    for l in &listed {
        if !subjects.contains(&l.version.subject) {
            subjects.push(l.version.subject.clone());
        }
    }
    // The catalogue last: admins mostly look for their procedures.
    subjects.sort_by_key(|s| (s == CATALOGUE_SUBJECT, s.clone()));
    let procedures: Vec<ProcedureLine> = subjects
        .iter()
        .filter(|s| *s != CATALOGUE_SUBJECT)
        .map(|s| {
            let find = |t: Option<&str>| {
                listed.iter().find(|l| &l.version.subject == s && l.active_for.iter().any(|a| a.as_deref() == t)).map(|l| l.version.version_id.clone())
            };
            let eff = effective(&listed, s, &tenant);
            ProcedureLine {
                id: s.clone(),
                title: title_of(s),
                default_version: find(None),
                own_version: find(Some(&tenant)),
                effective: eff.map(|l| l.version.version_id.clone()),
                own_overlay: eff.is_some_and(|l| l.overlay_tenants.contains(&tenant)),
            }
        })
        .collect();
    let groups: Vec<SubjectGroup> = subjects
        .iter()
        .map(|s| SubjectGroup {
            subject: s.clone(),
            title: title_of(s),
            versions: listed
                .iter()
                .filter(|l| &l.version.subject == s)
                .rev()
                .map(|l| {
                    let here = effective(&listed, s, &tenant).is_some_and(|e| e.version.version_id == l.version.version_id);
                    VersionLine::of(l, &tenant, here)
                })
                .collect(),
        })
        .collect();
    let catalogue = effective(&listed, CATALOGUE_SUBJECT, &tenant).map(|l| l.version.version_id.clone());
    // A confirmation only for what really happened (the link could be forged).
    let message = match (q.ok.as_deref(), q.version.as_deref()) {
        (Some("aktiviert"), Some(v)) if listed.iter().any(|l| l.version.version_id == v && l.active_for.iter().any(|a| a.as_deref() == Some(tenant.as_str()))) => Some(format!(
            "{v} ist jetzt für Ihren Landkreis ({tenant}) aktiv. Die Korrekturen im Prüfserver verwenden sie ab sofort; Worker-Prozesse übernehmen sie beim nächsten Neuladen (spätestens nach {} Sekunden).",
            state.settings.schema_reload_secs
        )),
        _ => None,
    };
    let status = state.review.schemas.status();
    let html = render(
        "admin_overview.html",
        minijinja::context! {
            account => account(&state, &session),
            section => "uebersicht",
            tenant => tenant_of(&state, &session),
            procedures => procedures,
            groups => groups,
            catalogue => catalogue,
            message => message,
            serving => status.serving,
            refused => status.refused,
        },
    )?;
    Ok(html.into_response())
}

// ---------------------------------------------------------------------------
// Hochladen / Prüfen / Speichern.
// ---------------------------------------------------------------------------

/// A diagnostic as the page shows it.
#[derive(Serialize, Clone)]
struct Diagnostic {
    /// Id of the message in the listing (`m3`), if it is placed there.
    anchor: Option<String>,
    /// Where the list at the top links to: the line it is about (`z12`),
    /// so that the line and the message below it are both in view.
    link: Option<String>,
    severity: &'static str,
    severity_label: &'static str,
    /// `Zeile 12, Spalte 5`, `ohne Zeilenangabe`, or another file's name and position.
    location: String,
    line: usize,
    column: usize,
    /// Spaces up to the column, then `^` (monospace, under the line's text).
    caret: String,
    message: String,
}

/// One line of the submitted text with the diagnostics that point at it.
#[derive(Serialize)]
struct SourceLine {
    number: usize,
    text: String,
    marks: Vec<Diagnostic>,
    has_error: bool,
    has_warning: bool,
}

/// The diagnostics of one check, placed into the text they are about.
#[derive(Serialize, Default)]
struct Placed {
    lines: Vec<SourceLine>,
    /// About the submitted file as a whole (no line).
    general: Vec<Diagnostic>,
    /// About other files (the active base or overlays the upload is checked with).
    elsewhere: Vec<Diagnostic>,
    /// Every diagnostic in order, for the list at the top.
    all: Vec<Diagnostic>,
    errors: usize,
    warnings: usize,
}

fn severity(d: &SchemaError) -> (&'static str, &'static str) {
    match d.severity {
        Severity::Error => ("error", "Fehler"),
        Severity::Warning => ("warning", "Warnung"),
    }
}

fn caret(line_text: &str, column: usize) -> String {
    // Tabs stay tabs so that the caret lines up under a tab-indented line.
    let mut out: String = line_text.chars().take(column.saturating_sub(1)).map(|c| if c == '\t' { '\t' } else { ' ' }).collect();
    out.push('^');
    out
}

/// Places every diagnostic at its line of `text` (the file `origin`).
fn place(origin: &str, text: &str, diagnostics: &[SchemaError]) -> Placed {
    let source: Vec<&str> = if text.is_empty() { Vec::new() } else { text.split('\n').collect() };
    let mut lines: Vec<SourceLine> = source
        .iter()
        .enumerate()
        .map(|(i, t)| SourceLine { number: i + 1, text: t.to_string(), marks: Vec::new(), has_error: false, has_warning: false })
        .collect();
    let mut sorted: Vec<&SchemaError> = diagnostics.iter().collect();
    sorted.sort_by_key(|d| (d.origin != origin, d.origin.clone(), d.line, d.column, d.severity));
    let mut placed = Placed::default();
    for (i, d) in sorted.into_iter().enumerate() {
        let (sev, sev_label) = severity(d);
        if d.is_error() {
            placed.errors += 1;
        } else {
            placed.warnings += 1;
        }
        let mut diag = Diagnostic {
            anchor: None,
            link: None,
            severity: sev,
            severity_label: sev_label,
            location: String::new(),
            line: d.line,
            column: d.column,
            caret: String::new(),
            message: d.message.clone(),
        };
        if d.origin == origin && d.line >= 1 && !lines.is_empty() {
            // A position past the end (an unclosed table) marks the last line.
            let at = d.line.min(lines.len());
            let line = &mut lines[at - 1];
            diag.anchor = Some(format!("m{i}"));
            diag.link = Some(format!("z{at}"));
            diag.location = if d.column >= 1 { format!("Zeile {at}, Spalte {}", d.column) } else { format!("Zeile {at}") };
            diag.caret = if d.column >= 1 { caret(&line.text, d.column) } else { String::new() };
            line.has_error |= d.is_error();
            line.has_warning |= !d.is_error();
            line.marks.push(diag.clone());
        } else if d.origin == origin {
            diag.location = "ohne Zeilenangabe".to_string();
            placed.general.push(diag.clone());
        } else {
            diag.location = match (d.line, d.column) {
                (0, _) => format!("in {}", d.origin),
                (l, 0) => format!("in {}, Zeile {l}", d.origin),
                (l, c) => format!("in {}, Zeile {l}, Spalte {c}", d.origin),
            };
            placed.elsewhere.push(diag.clone());
        }
        placed.all.push(diag);
    }
    placed.lines = lines;
    placed
}

/// What the file name says the file is.
#[derive(Debug, PartialEq)]
enum NameKind {
    Catalogue,
    Procedure(String),
    /// (tenant, procedure)
    Overlay(String, String),
}

fn is_id(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

fn parse_name(name: &str) -> Option<NameKind> {
    if name == "document_types.toml" {
        return Some(NameKind::Catalogue);
    }
    let parts: Vec<&str> = name.split('/').collect();
    match parts.as_slice() {
        ["procedures", f] => f.strip_suffix(".toml").filter(|p| is_id(p)).map(|p| NameKind::Procedure(p.to_string())),
        ["overlays", t, f] if is_id(t) => f.strip_suffix(".toml").filter(|p| is_id(p)).map(|p| NameKind::Overlay(t.to_string(), p.to_string())),
        _ => None,
    }
}

fn name_of(kind: &NameKind) -> String {
    match kind {
        NameKind::Catalogue => "document_types.toml".into(),
        NameKind::Procedure(p) => format!("procedures/{p}.toml"),
        NameKind::Overlay(t, p) => format!("overlays/{t}/{p}.toml"),
    }
}

/// What the text itself says it is, if readable.
fn content_kind(text: &str) -> Option<NameKind> {
    match file_kind(text)? {
        FileKind::Catalogue => Some(NameKind::Catalogue),
        FileKind::Procedure => procedure_id(text).map(NameKind::Procedure),
        FileKind::Overlay => overlay_target(text).map(|(p, t)| NameKind::Overlay(t, p)),
    }
}

/// The submitted upload, normalised: browsers send CRLF from a textarea.
struct Upload {
    name: String,
    text: String,
    comment: String,
}

impl Upload {
    fn from_form(f: &UploadForm) -> Upload {
        let text = f.text.replace("\r\n", "\n").replace('\r', "\n");
        let comment: String = f.kommentar.trim().chars().take(MAX_COMMENT_CHARS).collect();
        let mut name = f.datei.trim().trim_start_matches("./").to_string();
        if name.is_empty() {
            // Without a name the text says what it is.
            name = content_kind(&text).map(|k| name_of(&k)).unwrap_or_else(|| "hochgeladen.toml".into());
        }
        Upload { name, text, comment }
    }

    /// Ties a successful check to exactly this name and text: "Speichern"
    /// stores only what was checked.
    fn checksum(&self) -> String {
        let mut h = Sha256::new();
        h.update(self.name.as_bytes());
        h.update([0]);
        h.update(self.text.as_bytes());
        hex::encode(h.finalize())
    }
}

/// Problems of the upload as this admin's upload, before any schema rule:
/// the file name must fit the text, and an overlay must be the admin's own
/// tenant's. Located in the text where possible.
fn upload_problems(u: &Upload, tenant: &str) -> Vec<SchemaError> {
    let mut out = Vec::new();
    let at = |path: &str, message: String| -> SchemaError {
        let (_, map, _) = SourceMap::parse(&u.name, &u.text);
        let (line, column) = map.locate(path, SpanMark::Value).unwrap_or((0, 0));
        SchemaError { line, column, path: path.to_string(), ..SchemaError::invalid(&u.name, &message) }
    };
    if u.text.trim().is_empty() {
        out.push(SchemaError::invalid(&u.name, "Der Text ist leer: bitte den Inhalt der TOML-Datei einfügen."));
        return out;
    }
    if u.text.len() > MAX_TEXT_BYTES {
        out.push(SchemaError::invalid(&u.name, &format!("Der Text ist zu lang (höchstens {} KB).", MAX_TEXT_BYTES / 1024)));
        return out;
    }
    let Some(named) = parse_name(&u.name) else {
        out.push(SchemaError::invalid(
            &u.name,
            &format!("Der Dateiname „{}“ ist keiner der erlaubten: procedures/<verfahren>.toml, overlays/<landkreis>/<verfahren>.toml oder document_types.toml.", u.name),
        ));
        return out;
    };
    let Some(content) = content_kind(&u.text) else {
        // Unreadable or of no kind: the schema check says why, with positions.
        return out;
    };
    if named != content {
        let (path, what) = match &content {
            NameKind::Catalogue => ("catalogue", "ein Dokumentkatalog".to_string()),
            NameKind::Procedure(p) => ("procedure.id", format!("das Verfahren „{p}“")),
            NameKind::Overlay(t, p) => {
                let path = if matches!(&named, NameKind::Overlay(nt, _) if nt == t) { "overlay.procedure" } else { "overlay.tenant" };
                (path, format!("ein Overlay für „{p}“ des Landkreises „{t}“"))
            }
        };
        out.push(at(path, format!("Der Dateiname „{}“ passt nicht zum Inhalt: die Datei ist {what} und gehört nach {}.", u.name, name_of(&content))));
    }
    if let NameKind::Overlay(t, _) = &content
        && t != tenant
    {
        out.push(at(
            "overlay.tenant",
            format!("Dieses Overlay gilt für den Landkreis „{t}“; Sie verwalten „{tenant}“. Overlays anderer Landkreise lädt deren Verwaltung hoch."),
        ));
    }
    out
}

/// Why a valid upload may still not be stored from these pages.
fn not_storable(u: &Upload) -> Option<&'static str> {
    matches!(content_kind(&u.text), Some(NameKind::Catalogue)).then_some(
        "Der Dokumentkatalog gilt für alle Landkreise und alle Verfahren: eine neue Fassung speichert und aktiviert der IT-Betrieb (nachweis schema add document_types.toml). Die Prüfung hier zeigt, ob sie gültig wäre.",
    )
}

/// A version `add` would store, as the page shows it.
#[derive(Serialize)]
struct PlannedView {
    subject: String,
    label: String,
    /// (tenant, variant label) for every overlay in the version.
    tenants: Vec<(String, String)>,
    /// The same texts are stored already as this version.
    same_as: Option<String>,
    /// Another stored version of the subject carries this label.
    label_reused_by: Option<String>,
}

fn overlay_version(text: &str) -> String {
    text.parse::<toml::Table>()
        .ok()
        .and_then(|t| t.get("overlay").and_then(|o| o.get("version")).and_then(|v| v.as_str().map(str::to_string)))
        .unwrap_or_else(|| "?".into())
}

fn planned_view(p: &PlannedVersion, listed: &[ListedVersion]) -> PlannedView {
    let hash = p.sources.content_hash();
    let tenants = p
        .sources
        .overlays
        .iter()
        .filter_map(|o| overlay_target(&o.text).map(|(_, t)| (t, o)))
        .map(|(t, o)| {
            let label = format!("{}+{t}.{}", p.label, overlay_version(&o.text));
            (t, label)
        })
        .collect();
    PlannedView {
        subject: p.subject.clone(),
        label: p.label.clone(),
        tenants,
        same_as: listed.iter().find(|l| l.version.subject == p.subject && l.version.content_hash == hash).map(|l| l.version.version_id.clone()),
        label_reused_by: listed
            .iter()
            .find(|l| l.version.subject == p.subject && l.version.label == p.label && l.version.content_hash != hash)
            .map(|l| l.version.version_id.clone()),
    }
}

#[derive(Deserialize, Default)]
pub struct UploadForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    datei: String,
    #[serde(default)]
    text: String,
    #[serde(default)]
    kommentar: String,
    /// The checksum of a successful check (see `Upload::checksum`).
    #[serde(default)]
    pruefsumme: String,
}

#[derive(Deserialize)]
pub struct UploadQuery {
    /// A stored version whose text to start from.
    vorlage: Option<String>,
    /// `overlay`: the admin's tenant's overlay of that version (or a new one).
    teil: Option<String>,
}

/// What the upload page shows below the form.
#[derive(Serialize, Default)]
struct CheckView {
    checked: bool,
    valid: bool,
    placed: Placed,
    planned: Vec<PlannedView>,
    /// The checksum to send with "Speichern" (only when it may be stored).
    checksum: Option<String>,
    /// Why it may not be stored from here although it is valid.
    not_storable: Option<&'static str>,
    /// A refusal or other notice (German).
    notice: Option<String>,
}

async fn upload_page_html(state: &AppState, session: &Session, u: &Upload, check: CheckView, status: StatusCode) -> Result<Response, PageError> {
    // Starting points: the texts that check the admin's cases now.
    let tenant = &session.user.tenant;
    let listed = schemas::list(state.registry.as_ref()).await.map_err(admin_error)?;
    let mut subjects: Vec<&str> = listed.iter().map(|l| l.version.subject.as_str()).filter(|s| *s != CATALOGUE_SUBJECT).collect();
    subjects.dedup();
    let mut starts: Vec<(String, String)> = Vec::new();
    for s in subjects {
        if let Some(e) = effective(&listed, s, tenant) {
            let id = &e.version.version_id;
            starts.push((format!("/verwaltung/hochladen?vorlage={}", super::urlencode(id)), format!("{s}: Basis aus {id}")));
            let what = if e.overlay_tenants.contains(tenant) { "Overlay Ihres Landkreises" } else { "neues Overlay Ihres Landkreises" };
            starts.push((format!("/verwaltung/hochladen?vorlage={}&teil=overlay", super::urlencode(id)), format!("{s}: {what}")));
        }
    }
    let html = render(
        "admin_upload.html",
        minijinja::context! {
            account => account(state, session),
            section => "hochladen",
            tenant => tenant_of(state, session),
            datei => u.name,
            text => u.text,
            kommentar => u.comment,
            check => check,
            starts => starts,
        },
    )?;
    Ok((status, html).into_response())
}

pub async fn upload_page(State(state): State<Arc<AppState>>, Signed(session): Signed, Query(q): Query<UploadQuery>) -> Result<Response, PageError> {
    admin_only(&session)?;
    let tenant = session.user.tenant.clone();
    let mut upload = Upload { name: String::new(), text: String::new(), comment: String::new() };
    let mut notice = None;
    if let Some(v) = q.vorlage.as_deref().filter(|v| !v.is_empty()) {
        match schemas::sources_of(state.registry.as_ref(), v).await {
            Ok(VersionSources { procedure: Some(p), overlays, .. }) => {
                let id = procedure_id(&p.text).unwrap_or_default();
                if q.teil.as_deref() == Some("overlay") {
                    upload.name = format!("overlays/{tenant}/{id}.toml");
                    upload.text = match overlays.iter().find(|o| overlay_target(&o.text).is_some_and(|(_, t)| t == tenant)) {
                        Some(o) => o.text.clone(),
                        None => format!(
                            "# Abweichungen Ihres Landkreises vom Verfahren „{id}“ (siehe docs/schemas.md, „Tenant overlays“).\n[overlay]\ntenant = \"{tenant}\"\nprocedure = \"{id}\"\nversion = \"1\"\n\n# Beispiel: Schulbescheinigung schon ab 12 Jahren\n# [requirements.schulbescheinigung.when]\n# child_age_at_least = 12\n"
                        ),
                    };
                } else {
                    upload.name = format!("procedures/{id}.toml");
                    upload.text = p.text;
                }
            }
            Ok(VersionSources { catalogue: Some(c), .. }) => {
                upload.name = "document_types.toml".into();
                upload.text = c.text;
            }
            Ok(_) => {}
            Err(SchemaAdminError::Refused(m)) => notice = Some(m),
            Err(e) => return Err(admin_error(e)),
        }
    }
    let check = CheckView { notice, ..Default::default() };
    upload_page_html(&state, &session, &upload, check, StatusCode::OK).await
}

/// Validates the upload as `add` would (against what is active), without
/// storing anything, and builds the page's view of the result.
async fn run_check(state: &AppState, session: &Session, u: &Upload) -> Result<CheckView, PageError> {
    let mut diagnostics = upload_problems(u, &session.user.tenant);
    let mut view = CheckView { checked: true, ..Default::default() };
    let blocking = diagnostics.iter().any(SchemaError::is_error) && (u.text.trim().is_empty() || u.text.len() > MAX_TEXT_BYTES || parse_name(&u.name).is_none());
    if !blocking {
        let files = vec![SourceFile { origin: u.name.clone(), text: u.text.clone() }];
        match schemas::plan(state.registry.as_ref(), files, &[]).await {
            Ok(planned) => {
                let listed = schemas::list(state.registry.as_ref()).await.map_err(admin_error)?;
                for p in &planned {
                    diagnostics.extend(p.warnings.iter().cloned());
                }
                view.planned = planned.iter().map(|p| planned_view(p, &listed)).collect();
            }
            Err(SchemaAdminError::Invalid(found)) => diagnostics.extend(found),
            Err(SchemaAdminError::Refused(m)) => view.notice = Some(m),
            Err(e) => return Err(admin_error(e)),
        }
    }
    view.valid = view.notice.is_none() && !diagnostics.iter().any(SchemaError::is_error) && !view.planned.is_empty();
    if !view.valid {
        view.planned.clear();
    }
    view.placed = place(&u.name, &u.text, &diagnostics);
    view.not_storable = if view.valid { not_storable(u) } else { None };
    if view.valid && view.not_storable.is_none() {
        view.checksum = Some(u.checksum());
    }
    Ok(view)
}

/// Records a validation in the audit log: the file name and the counts
/// (the schema text itself is in the version once it is stored).
async fn audit_validation(state: &AppState, session: &Session, u: &Upload, view: &CheckView, step: &str) -> Result<(), PageError> {
    let detail = serde_json::json!({
        "file": u.name,
        "step": step,
        "valid": view.valid,
        "errors": view.placed.errors,
        "warnings": view.placed.warnings,
        "refused": view.notice.is_some(),
        "tenant": session.user.tenant,
    });
    state.store.append_audit(&session.user.username, "schema_validated", None, detail, None).await?;
    Ok(())
}

/// "Prüfen": validates and shows every error and warning in place.
pub async fn check(State(state): State<Arc<AppState>>, Signed(session): Signed, Form(form): Form<UploadForm>) -> Result<Response, PageError> {
    admin_only(&session)?;
    check_csrf(&session, &form.csrf)?;
    let u = Upload::from_form(&form);
    let view = run_check(&state, &session, &u).await?;
    audit_validation(&state, &session, &u, &view, "check").await?;
    let status = if view.valid { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    upload_page_html(&state, &session, &u, view, status).await
}

/// "Speichern": stores exactly the checked text as a new version (author:
/// the signed-in admin); anything else shows the check page again.
pub async fn save(State(state): State<Arc<AppState>>, Signed(session): Signed, Form(form): Form<UploadForm>) -> Result<Response, PageError> {
    admin_only(&session)?;
    check_csrf(&session, &form.csrf)?;
    let u = Upload::from_form(&form);
    if form.pruefsumme != u.checksum() {
        let mut view = run_check(&state, &session, &u).await?;
        audit_validation(&state, &session, &u, &view, "save").await?;
        view.notice = Some("Nicht gespeichert: der Text oder Dateiname wurde nach der Prüfung geändert (oder nie geprüft). Das Ergebnis der neuen Prüfung steht unten; bitte erneut speichern.".into());
        return upload_page_html(&state, &session, &u, view, StatusCode::CONFLICT).await;
    }
    let problems = upload_problems(&u, &session.user.tenant);
    if let Some(why) = not_storable(&u).filter(|_| problems.is_empty()) {
        let mut view = run_check(&state, &session, &u).await?;
        view.checksum = None;
        view.notice = Some(why.to_string());
        return upload_page_html(&state, &session, &u, view, StatusCode::FORBIDDEN).await;
    }
    let files = vec![SourceFile { origin: u.name.clone(), text: u.text.clone() }];
    let result = if problems.iter().any(SchemaError::is_error) {
        Err(SchemaAdminError::Invalid(problems))
    } else {
        schemas::add(state.registry.as_ref(), files, &[], &session.user.username, &u.comment).await
    };
    match result {
        Ok(added) => {
            let Some(first) = added.first() else { return Err(ReviewError::Internal("add stored no version".into()).into()) };
            let ok = if first.new { "gespeichert" } else { "unveraendert" };
            Ok(Redirect::to(&format!("/verwaltung/versionen/{}?ok={ok}", super::urlencode(&first.version_id))).into_response())
        }
        Err(SchemaAdminError::Invalid(_) | SchemaAdminError::Refused(_)) => {
            // What is active changed since the check (or the check was bypassed).
            let mut view = run_check(&state, &session, &u).await?;
            audit_validation(&state, &session, &u, &view, "save").await?;
            view.notice.get_or_insert_with(|| "Nicht gespeichert: die Prüfung ergibt jetzt Fehler.".into());
            upload_page_html(&state, &session, &u, view, StatusCode::UNPROCESSABLE_ENTITY).await
        }
        Err(e) => Err(admin_error(e)),
    }
}

// ---------------------------------------------------------------------------
// One version.
// ---------------------------------------------------------------------------

#[derive(Serialize)]
struct FileView {
    origin: String,
    kind: &'static str,
    lines: Vec<SourceLine>,
    own: bool,
}

#[derive(Deserialize)]
pub struct VersionQuery {
    ok: Option<String>,
}

pub async fn version(
    State(state): State<Arc<AppState>>,
    Signed(session): Signed,
    Path(version_id): Path<String>,
    Query(q): Query<VersionQuery>,
) -> Result<Response, PageError> {
    admin_only(&session)?;
    let tenant = session.user.tenant.clone();
    let listed = schemas::list(state.registry.as_ref()).await.map_err(admin_error)?;
    let Some(l) = listed.iter().find(|l| l.version.version_id == version_id) else {
        return Err(PageError::status(StatusCode::NOT_FOUND, format!("Die Version „{version_id}“ gibt es nicht.")));
    };
    let sources = schemas::sources_of(state.registry.as_ref(), &version_id).await.map_err(admin_error)?;
    let lines = |t: &str| place("", t, &[]).lines;
    let mut files = Vec::new();
    if let Some(c) = &sources.catalogue {
        files.push(FileView { origin: c.origin.clone(), kind: "Dokumentkatalog", lines: lines(&c.text), own: true });
    }
    if let Some(p) = &sources.procedure {
        files.push(FileView { origin: p.origin.clone(), kind: "Verfahren (Basis)", lines: lines(&p.text), own: true });
    }
    for o in &sources.overlays {
        let own = overlay_target(&o.text).is_some_and(|(_, t)| t == tenant);
        files.push(FileView { origin: o.origin.clone(), kind: if own { "Overlay Ihres Landkreises" } else { "Overlay eines anderen Landkreises" }, lines: lines(&o.text), own });
    }
    let eff = effective(&listed, &l.version.subject, &tenant);
    let message = match q.ok.as_deref() {
        Some("gespeichert") => Some(format!("Gespeichert als {version_id} (von {}). Noch nicht aktiv: prüfen Sie die Wirkung im Probelauf und aktivieren Sie die Version dann für Ihren Landkreis.", l.version.author)),
        Some("unveraendert") => Some(format!("Dieselben Texte sind bereits als {version_id} gespeichert; es wurde keine neue Version angelegt.")),
        _ => None,
    };
    let html = render(
        "admin_version.html",
        minijinja::context! {
            account => account(&state, &session),
            section => "uebersicht",
            tenant => tenant_of(&state, &session),
            v => VersionLine::of(l, &tenant, eff.is_some_and(|e| e.version.version_id == version_id)),
            is_catalogue => l.version.subject == CATALOGUE_SUBJECT,
            effective => eff.map(|e| e.version.version_id.clone()),
            files => files,
            message => message,
        },
    )?;
    Ok(html.into_response())
}

// ---------------------------------------------------------------------------
// Vergleich.
// ---------------------------------------------------------------------------

#[derive(Deserialize)]
pub struct DiffQuery {
    a: Option<String>,
    b: Option<String>,
}

#[derive(Serialize)]
struct ChangeView {
    kind: &'static str,
    kind_label: &'static str,
    symbol: &'static str,
    text: String,
}

#[derive(Serialize)]
struct VariantView {
    heading: String,
    /// The base schema (tenants without an overlay).
    base: bool,
    own: bool,
    changes: Vec<ChangeView>,
}

#[derive(Serialize)]
struct VersionOption {
    version_id: String,
    label: String,
}

fn change_view(kind: ChangeKind, text: String) -> ChangeView {
    let (kind, kind_label, symbol) = match kind {
        ChangeKind::Added => ("added", "Neu", "+"),
        ChangeKind::Removed => ("removed", "Entfällt", "−"),
        ChangeKind::Changed => ("changed", "Geändert", "~"),
    };
    ChangeView { kind, kind_label, symbol, text }
}

/// The variants of a diff as the pages show them: the base and the own
/// tenant first.
async fn diff_views(state: &AppState, a: &str, b: &str, tenant: &str) -> Result<Vec<VariantView>, SchemaAdminError> {
    let diffs = schemas::diff(state.registry.as_ref(), a, b).await?;
    let mut out: Vec<VariantView> = diffs
        .into_iter()
        .map(|d| VariantView {
            heading: match d.tenant.as_deref() {
                None => "Basis (alle Landkreise ohne eigenes Overlay)".to_string(),
                Some(t) if t == tenant => format!("Ihr Landkreis ({t}, mit Overlay)"),
                Some(t) => format!("Landkreis {t} (mit Overlay)"),
            },
            base: d.tenant.is_none(),
            own: d.tenant.as_deref() == Some(tenant),
            changes: d.changes.into_iter().map(|c| change_view(c.kind, c.text)).collect(),
        })
        .collect();
    out.sort_by_key(|v| !v.own);
    Ok(out)
}

pub async fn diff(State(state): State<Arc<AppState>>, Signed(session): Signed, Query(q): Query<DiffQuery>) -> Result<Response, PageError> {
    admin_only(&session)?;
    let tenant = session.user.tenant.clone();
    let listed = schemas::list(state.registry.as_ref()).await.map_err(admin_error)?;
    let procedures: Vec<&ListedVersion> = listed.iter().filter(|l| l.version.subject != CATALOGUE_SUBJECT).collect();
    let known = |v: &str| procedures.iter().any(|l| l.version.version_id == v);
    let mut b = q.b.clone().filter(|v| !v.is_empty());
    let mut a = q.a.clone().filter(|v| !v.is_empty());
    // Only stored versions: `schemas::diff` would also read a file path.
    let mut error = None;
    for v in [&a, &b].into_iter().flatten() {
        if !known(v) {
            error = Some(format!("„{v}“ ist keine gespeicherte Verfahrensversion."));
        }
    }
    if error.is_some() {
        a = None;
        b = None;
    }
    // Without a first version: the one serving the admin's tenant now.
    if let (None, Some(bv)) = (&a, &b)
        && let Some(l) = procedures.iter().find(|l| &l.version.version_id == bv)
    {
        a = effective(&listed, &l.version.subject, &tenant).map(|e| e.version.version_id.clone());
    }
    let mut variants = Vec::new();
    if let (Some(av), Some(bv)) = (&a, &b) {
        match diff_views(&state, av, bv, &tenant).await {
            Ok(v) => variants = v,
            Err(SchemaAdminError::Refused(m)) => error = Some(m),
            Err(SchemaAdminError::Invalid(d)) => {
                error = Some(d.iter().filter(|e| e.is_error()).map(|e| e.to_string()).collect::<Vec<_>>().join(" · "));
            }
            Err(e) => return Err(admin_error(e)),
        }
    }
    let options: Vec<VersionOption> = procedures
        .iter()
        .rev()
        .map(|l| {
            let here = effective(&listed, &l.version.subject, &tenant).is_some_and(|e| e.version.version_id == l.version.version_id);
            VersionOption {
                version_id: l.version.version_id.clone(),
                label: format!("{} – {}{}", l.version.version_id, l.version.label, if here { " (aktiv für Ihren Landkreis)" } else { "" }),
            }
        })
        .collect();
    let html = render(
        "admin_diff.html",
        minijinja::context! {
            account => account(&state, &session),
            section => "vergleich",
            tenant => tenant_of(&state, &session),
            options => options,
            a => a,
            b => b,
            compared => !variants.is_empty(),
            variants => variants,
            error => error,
        },
    )?;
    let status = if error_status(&q, &variants) { StatusCode::UNPROCESSABLE_ENTITY } else { StatusCode::OK };
    Ok((status, html).into_response())
}

/// A diff that was asked for but could not be made answers 422.
fn error_status(q: &DiffQuery, variants: &[VariantView]) -> bool {
    q.b.as_deref().is_some_and(|b| !b.is_empty()) && variants.is_empty()
}

// ---------------------------------------------------------------------------
// Probelauf.
// ---------------------------------------------------------------------------

#[derive(Deserialize)]
pub struct ReplayQuery {
    version: Option<String>,
}

#[derive(Deserialize)]
pub struct ReplayForm {
    csrf: String,
    version: String,
    #[serde(default)]
    seit: String,
}

#[derive(Serialize)]
struct RequirementChangeView {
    label: String,
    key: String,
    old: String,
    new: String,
    reason: String,
}

#[derive(Serialize)]
struct CaseChangeView {
    case_id: String,
    bundle_id: String,
    old_schema_version: String,
    old_verdict: String,
    old_verdict_label: &'static str,
    new_verdict: String,
    new_verdict_label: &'static str,
    verdict_changes: bool,
    requirements: Vec<RequirementChangeView>,
}

#[derive(Serialize)]
struct ReplayView {
    version_id: String,
    since: Option<String>,
    cases_checked: usize,
    cases_changed: usize,
    bundle_verdicts_changed: usize,
    changes: Vec<CaseChangeView>,
    skipped: Vec<(String, String)>,
}

fn all_versions(listed: &[ListedVersion]) -> Vec<VersionOption> {
    listed.iter().rev().map(|l| VersionOption { version_id: l.version.version_id.clone(), label: format!("{} – {}", l.version.version_id, l.version.label) }).collect()
}

/// `2026-10-01` (the date input) or `01.10.2026`.
fn parse_day(s: &str) -> Option<NaiveDate> {
    let s = s.trim();
    NaiveDate::parse_from_str(s, "%Y-%m-%d").or_else(|_| NaiveDate::parse_from_str(s, "%d.%m.%Y")).ok()
}

#[allow(clippy::too_many_arguments)]
fn replay_page_html(
    state: &AppState,
    session: &Session,
    options: Vec<VersionOption>,
    version: &str,
    seit: &str,
    result: Option<ReplayView>,
    error: Option<String>,
    status: StatusCode,
) -> Result<Response, PageError> {
    let html = render(
        "admin_replay.html",
        minijinja::context! {
            account => account(state, session),
            section => "probelauf",
            tenant => tenant_of(state, session),
            options => options,
            version => version,
            seit => seit,
            result => result,
            error => error,
        },
    )?;
    Ok((status, html).into_response())
}

pub async fn replay_page(State(state): State<Arc<AppState>>, Signed(session): Signed, Query(q): Query<ReplayQuery>) -> Result<Response, PageError> {
    admin_only(&session)?;
    let listed = schemas::list(state.registry.as_ref()).await.map_err(admin_error)?;
    let version = q.version.unwrap_or_default();
    replay_page_html(&state, &session, all_versions(&listed), &version, "", None, None, StatusCode::OK)
}

/// Runs the replay over the admin's own tenant's cases only. A POST,
/// because the replay is recorded in the audit log; it changes no case.
pub async fn replay(State(state): State<Arc<AppState>>, Signed(session): Signed, Form(form): Form<ReplayForm>) -> Result<Response, PageError> {
    admin_only(&session)?;
    check_csrf(&session, &form.csrf)?;
    let listed = schemas::list(state.registry.as_ref()).await.map_err(admin_error)?;
    let options = all_versions(&listed);
    let since = match form.seit.trim() {
        "" => None,
        s => match parse_day(s) {
            Some(d) => Some(d),
            None => {
                let error = format!("„{s}“ ist kein Datum (TT.MM.JJJJ).");
                return replay_page_html(&state, &session, options, &form.version, &form.seit, None, Some(error), StatusCode::UNPROCESSABLE_ENTITY);
            }
        },
    };
    let opts = ReplayOptions { version_id: form.version.clone(), procedure: None, tenant: Some(session.user.tenant.clone()), since };
    let report = match schemas::replay(state.registry.as_ref(), &state.settings, &opts, &session.user.username).await {
        Ok(r) => r,
        Err(SchemaAdminError::Refused(m)) => {
            return replay_page_html(&state, &session, options, &form.version, &form.seit, None, Some(m), StatusCode::UNPROCESSABLE_ENTITY);
        }
        Err(e) => return Err(admin_error(e)),
    };
    let view = ReplayView {
        version_id: report.version_id.clone(),
        since: since.map(|d| d.format("%d.%m.%Y").to_string()),
        cases_checked: report.cases_checked,
        cases_changed: report.cases_changed,
        bundle_verdicts_changed: report.bundle_verdicts_changed,
        changes: report
            .changes
            .into_iter()
            .map(|c| CaseChangeView {
                verdict_changes: c.old_verdict != c.new_verdict,
                old_verdict_label: labels::verdict(&c.old_verdict),
                new_verdict_label: labels::verdict(&c.new_verdict),
                requirements: c
                    .requirements
                    .into_iter()
                    .map(|r| RequirementChangeView {
                        old: r.old.as_deref().map(labels::requirement).unwrap_or("(gab es nicht)").to_string(),
                        new: r.new.as_deref().map(labels::requirement).unwrap_or("(entfällt)").to_string(),
                        label: r.label,
                        key: r.key,
                        reason: r.reason,
                    })
                    .collect(),
                case_id: c.case_id,
                bundle_id: c.bundle_id,
                old_schema_version: c.old_schema_version,
                old_verdict: c.old_verdict,
                new_verdict: c.new_verdict,
            })
            .collect(),
        skipped: report.skipped,
    };
    replay_page_html(&state, &session, options, &form.version, &form.seit, Some(view), None, StatusCode::OK)
}

// ---------------------------------------------------------------------------
// Aktivieren.
// ---------------------------------------------------------------------------

#[derive(Deserialize)]
pub struct ActivateQuery {
    version: Option<String>,
}

#[derive(Deserialize)]
pub struct ActivateForm {
    csrf: String,
    version: String,
}

/// The confirmation step: what serves the tenant now, what would change.
pub async fn activate_page(State(state): State<Arc<AppState>>, Signed(session): Signed, Query(q): Query<ActivateQuery>) -> Result<Response, PageError> {
    admin_only(&session)?;
    let tenant = session.user.tenant.clone();
    let listed = schemas::list(state.registry.as_ref()).await.map_err(admin_error)?;
    let version = q.version.unwrap_or_default();
    let chosen = listed.iter().find(|l| l.version.version_id == version);
    let (current, variants, error, already) = match chosen {
        None if version.is_empty() => (None, Vec::new(), None, false),
        None => (None, Vec::new(), Some(format!("Die Version „{version}“ gibt es nicht.")), false),
        Some(l) => {
            let current = effective(&listed, &l.version.subject, &tenant).map(|e| e.version.version_id.clone());
            let already = current.as_deref() == Some(version.as_str()) && l.active_for.iter().any(|a| a.as_deref() == Some(tenant.as_str()));
            let mut variants = Vec::new();
            let mut error = None;
            if let Some(c) = current.as_deref().filter(|c| *c != version && l.version.subject != CATALOGUE_SUBJECT) {
                match diff_views(&state, c, &version, &tenant).await {
                    // Only what the tenant would see: its overlay, or the base.
                    Ok(v) => {
                        let own = v.iter().any(|x| x.own);
                        variants = v.into_iter().filter(|x| x.own || (!own && x.base)).collect();
                    }
                    Err(SchemaAdminError::Refused(m)) => error = Some(m),
                    Err(SchemaAdminError::Invalid(d)) => error = Some(d.iter().filter(|e| e.is_error()).map(|e| e.to_string()).collect::<Vec<_>>().join(" · ")),
                    Err(e) => return Err(admin_error(e)),
                }
            }
            (current, variants, error, already)
        }
    };
    let html = render(
        "admin_activate.html",
        minijinja::context! {
            account => account(&state, &session),
            section => "uebersicht",
            tenant => tenant_of(&state, &session),
            version => version,
            found => chosen.is_some(),
            is_catalogue => chosen.is_some_and(|l| l.version.subject == CATALOGUE_SUBJECT),
            subject => chosen.map(|l| l.version.subject.clone()),
            label => chosen.map(|l| l.version.label.clone()),
            current => current,
            already => already,
            variants => variants,
            error => error,
            options => all_versions(&listed).into_iter().filter(|o| !o.version_id.starts_with("catalogue@")).collect::<Vec<_>>(),
            reload_secs => state.settings.schema_reload_secs,
        },
    )?;
    let status = if chosen.is_none() && !version.is_empty() { StatusCode::NOT_FOUND } else { StatusCode::OK };
    Ok((status, html).into_response())
}

/// Activates a version for the admin's own tenant (never another's, never
/// the default for all) and reloads the server's live schemas at once.
pub async fn activate(State(state): State<Arc<AppState>>, Signed(session): Signed, Form(form): Form<ActivateForm>) -> Result<Response, PageError> {
    admin_only(&session)?;
    check_csrf(&session, &form.csrf)?;
    let tenant = session.user.tenant.clone();
    let listed = schemas::list(state.registry.as_ref()).await.map_err(admin_error)?;
    let Some(l) = listed.iter().find(|l| l.version.version_id == form.version) else {
        return Err(PageError::status(StatusCode::NOT_FOUND, format!("Die Version „{}“ gibt es nicht.", form.version)));
    };
    if l.version.subject == CATALOGUE_SUBJECT {
        return Err(PageError::status(
            StatusCode::FORBIDDEN,
            "Der Dokumentkatalog gilt für alle Landkreise; ihn aktiviert der IT-Betrieb (nachweis schema activate catalogue@N).",
        ));
    }
    if l.active_for.iter().any(|a| a.as_deref() == Some(tenant.as_str())) {
        return Err(PageError::status(StatusCode::CONFLICT, format!("{} ist für Ihren Landkreis bereits aktiv.", form.version)));
    }
    schemas::activate(state.registry.as_ref(), &form.version, Some(&tenant), &session.user.username).await.map_err(admin_error)?;
    // The server's own checks (corrections) use it at once; a failed reload
    // leaves the periodic one to pick it up and shows on the overview.
    if let Err(error) = schemas::reload(&state.review.schemas, state.registry.as_ref()).await {
        tracing::warn!(message = "Schema reload after activation failed; the periodic reload will retry.", %error);
    }
    Ok(Redirect::to(&format!("/verwaltung?ok=aktiviert&version={}", super::urlencode(&form.version))).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_are_one_of_the_three_kinds() {
        assert_eq!(parse_name("procedures/uvg.toml"), Some(NameKind::Procedure("uvg".into())));
        assert_eq!(parse_name("overlays/lk-a/uvg.toml"), Some(NameKind::Overlay("lk-a".into(), "uvg".into())));
        assert_eq!(parse_name("document_types.toml"), Some(NameKind::Catalogue));
        for bad in ["uvg.toml", "procedures/../uvg.toml", "/etc/passwd", "overlays/LK/uvg.toml", "procedures/uvg.txt"] {
            assert_eq!(parse_name(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_diagnostic_is_placed_under_its_line_with_a_caret_at_its_column() {
        let text = "[procedure]\nid = \"x\"\n  bad line";
        let d = SchemaError { line: 3, column: 3, ..SchemaError::invalid("f.toml", "kaputt") };
        let other = SchemaError { line: 2, column: 1, ..SchemaError::invalid("andere.toml", "dort") };
        let general = SchemaError::invalid("f.toml", "allgemein");
        let p = place("f.toml", text, &[d, other, general]);
        assert_eq!(p.lines.len(), 3);
        assert_eq!(p.lines[2].marks.len(), 1);
        assert_eq!(p.lines[2].marks[0].caret, "  ^");
        assert_eq!(p.lines[2].marks[0].location, "Zeile 3, Spalte 3");
        assert!(p.lines[2].has_error);
        assert_eq!(p.general.len(), 1);
        assert_eq!(p.elsewhere[0].location, "in andere.toml, Zeile 2, Spalte 1");
        assert_eq!(p.errors, 3);
    }

    #[test]
    fn an_overlay_of_another_tenant_or_a_wrong_file_name_is_refused() {
        let overlay = "[overlay]\ntenant = \"lk-b\"\nprocedure = \"uvg\"\nversion = \"1\"\n";
        let u = Upload { name: "overlays/lk-a/uvg.toml".into(), text: overlay.into(), comment: String::new() };
        let found = upload_problems(&u, "lk-a");
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(found.iter().all(|e| e.line == 2), "{found:?}");
        let u = Upload { name: "overlays/lk-b/uvg.toml".into(), text: overlay.into(), comment: String::new() };
        assert!(upload_problems(&u, "lk-b").is_empty());
    }
}

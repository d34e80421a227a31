//! Pieces both adapters share and that do not depend on the SQL dialect:
//! case ids, timestamps, audit details and the dialect-independent part of
//! the error classification.
use chrono::{DateTime, SubsecRound, Utc};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::audit::{AuditEntry, StoredEntry};
use super::{BundleResult, CaseSummary, OutboxEvent, StoreError, StoredDocument, StoredDraft};

/// Review status of a case (and of a draft) waiting for a caseworker.
pub(crate) const PENDING_REVIEW: &str = "pending_review";

/// The id of the case a bundle without `case_id` opens. It is derived from the
/// `bundle_id` rather than random, so that two workers recording the same
/// bundle at once collide on the primary key instead of opening two cases.
pub(crate) fn new_case_id(bundle_id: &str) -> String {
    let digest = Sha256::digest(bundle_id.as_bytes());
    format!("case-{}", &hex::encode(digest)[..12])
}

/// The current time at the precision both databases keep (microseconds), so
/// that what is hashed into the audit log is what is read back.
pub(crate) fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

/// Audit detail of `bundle_checked`: ids, verdict and document hashes only,
/// never names or extracted text.
pub(crate) fn bundle_checked_detail(result: &BundleResult, case_id: &str, new_case: bool) -> Value {
    let documents: Vec<Value> = result
        .documents
        .iter()
        .map(|d| json!({"document_id": d.document_id, "sha256": d.sha256}))
        .collect();
    json!({
        "bundle_id": result.bundle_id,
        "case_id": case_id,
        "new_case": new_case,
        "procedure": result.procedure,
        "verdict": result.verdict,
        "documents": documents,
    })
}

/// Audit detail of `draft_created`.
pub(crate) fn draft_created_detail(
    draft_id: i64,
    version: i64,
    kind: &str,
    superseded: &[i64],
) -> Value {
    json!({
        "draft_id": draft_id,
        "version": version,
        "kind": kind,
        "superseded_draft_ids": superseded,
    })
}

/// An outbox event about to be written by `record_bundle`.
pub(crate) struct NewEvent {
    pub(crate) event_id: String,
    pub(crate) event_type: &'static str,
    pub(crate) payload: Value,
}

/// The events a recorded bundle announces: `bundle.checked` and `draft.ready`.
/// Their ids derive from the `bundle_id` (recorded at most once), so a
/// consumer can deduplicate however often the relay publishes them. The
/// payloads hold ids, verdicts and versions only, never personal data.
pub(crate) fn bundle_events(
    result: &BundleResult,
    case_id: &str,
    draft_id: i64,
    version: i64,
) -> [NewEvent; 2] {
    let checked = format!("{}/bundle.checked", result.bundle_id);
    let ready = format!("{}/draft.ready", result.bundle_id);
    [
        NewEvent {
            payload: json!({
                "event_id": checked,
                "event_type": "bundle.checked",
                "bundle_id": result.bundle_id,
                "case_id": case_id,
                "procedure": result.procedure,
                "verdict": result.verdict,
                "schema_version": result.schema_version,
            }),
            event_id: checked,
            event_type: "bundle.checked",
        },
        NewEvent {
            payload: json!({
                "event_id": ready,
                "event_type": "draft.ready",
                "bundle_id": result.bundle_id,
                "case_id": case_id,
                "draft_id": draft_id,
                "draft_version": version,
                "kind": result.draft.kind,
            }),
            event_id: ready,
            event_type: "draft.ready",
        },
    ]
}

/// An audit entry written by a person (or the worker) about a case; the id
/// is assigned when it is appended.
pub(crate) fn audit_entry(
    actor: &str,
    action: &str,
    case_id: Option<&str>,
    bundle_id: Option<&str>,
    schema_version: Option<&str>,
    detail: Value,
    at: DateTime<Utc>,
) -> AuditEntry {
    AuditEntry {
        id: 0,
        at,
        actor: actor.to_owned(),
        action: action.to_owned(),
        case_id: case_id.map(str::to_owned),
        bundle_id: bundle_id.map(str::to_owned),
        schema_version: schema_version.map(str::to_owned),
        detail,
    }
}

/// `draft.ready` for a draft version a person made (an edit, or a re-check
/// after a correction). The id names the draft, which exists once.
pub(crate) fn draft_ready_event(case_id: &str, bundle_id: &str, draft_id: i64, version: i64, kind: &str) -> NewEvent {
    let event_id = format!("{case_id}/draft-{draft_id}/draft.ready");
    NewEvent {
        payload: json!({
            "event_id": event_id,
            "event_type": "draft.ready",
            "bundle_id": bundle_id,
            "case_id": case_id,
            "draft_id": draft_id,
            "draft_version": version,
            "kind": kind,
        }),
        event_id,
        event_type: "draft.ready",
    }
}

/// The event of a caseworker's decision on a draft (`letter.approved`,
/// `draft.rejected`, `case.closed_complete`). A draft is decided once, so
/// the id derived from it is unique; ids and hashes only, no personal data.
#[allow(clippy::too_many_arguments)]
pub(crate) fn decision_event(
    event_type: &'static str,
    case_id: &str,
    procedure: &str,
    tenant: Option<&str>,
    draft_id: i64,
    version: i64,
    letter_sha256: Option<&str>,
    at: DateTime<Utc>,
) -> NewEvent {
    let event_id = format!("{case_id}/draft-{draft_id}/{event_type}");
    let mut payload = json!({
        "event_id": event_id,
        "event_type": event_type,
        "case_id": case_id,
        "procedure": procedure,
        "tenant": tenant,
        "draft_id": draft_id,
        "draft_version": version,
        "decided_at": at,
    });
    if let Some(sha) = letter_sha256 {
        payload["letter_sha256"] = Value::String(sha.to_owned());
    }
    NewEvent { payload, event_id, event_type }
}

/// Checks that a late bundle belongs to the case it names: a bundle must not
/// move a case to another procedure or let one tenant add to another's case.
pub(crate) fn check_same_case(
    result: &BundleResult,
    case_id: &str,
    procedure: &str,
    tenant: Option<&str>,
) -> Result<(), StoreError> {
    if result.procedure != procedure {
        return Err(StoreError::Conflict(format!(
            "bundle {} names case {case_id} of procedure {procedure}, but is for {}",
            result.bundle_id, result.procedure
        )));
    }
    if result.tenant.as_deref() != tenant {
        return Err(StoreError::Conflict(format!(
            "bundle {} names case {case_id} of another tenant",
            result.bundle_id
        )));
    }
    Ok(())
}

/// A failure inside a recording transaction: either a database error, which
/// the caller inspects for a unique violation (a concurrent duplicate), or a
/// decision already made (`NotFound`, `Conflict`).
pub(crate) enum TxError {
    Sql(sqlx::Error),
    Store(StoreError),
}

impl From<sqlx::Error> for TxError {
    fn from(error: sqlx::Error) -> Self {
        TxError::Sql(error)
    }
}

impl From<StoreError> for TxError {
    fn from(error: StoreError) -> Self {
        TxError::Store(error)
    }
}

/// Whether the error is a unique or primary-key violation, the sign that a
/// concurrent worker recorded the same bundle first.
pub(crate) fn is_unique_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(db) if db.is_unique_violation())
}

/// Classifies the errors that do not carry a database-specific code.
/// Connection trouble is `Unavailable` (the worker retries); constraint
/// violations are `Conflict`; everything else is `Other`.
pub(crate) fn map_generic(error: sqlx::Error) -> StoreError {
    match error {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::BeginFailed => StoreError::Unavailable(error.to_string()),
        sqlx::Error::Migrate(e) => StoreError::Migration(e.to_string()),
        sqlx::Error::Database(ref db)
            if db.is_unique_violation() || db.is_foreign_key_violation() =>
        {
            StoreError::Conflict(error.to_string())
        }
        other => StoreError::Other(other.to_string()),
    }
}

/// A `list_cases` row; `bundle_ids` comes back as a JSON array in both dialects.
#[derive(sqlx::FromRow)]
pub(crate) struct CaseRow {
    case_id: String,
    bundle_ids: sqlx::types::Json<Vec<String>>,
    procedure: String,
    tenant: Option<String>,
    verdict: String,
    review_status: String,
    current_draft_id: Option<i64>,
    updated_at: DateTime<Utc>,
}

impl From<CaseRow> for CaseSummary {
    fn from(row: CaseRow) -> Self {
        CaseSummary {
            case_id: row.case_id,
            bundle_ids: row.bundle_ids.0,
            procedure: row.procedure,
            tenant: row.tenant,
            verdict: row.verdict,
            review_status: row.review_status,
            current_draft_id: row.current_draft_id,
            updated_at: row.updated_at,
        }
    }
}

/// A `drafts` row.
#[derive(sqlx::FromRow)]
pub(crate) struct DraftRow {
    draft_id: i64,
    case_id: String,
    version: i64,
    kind: String,
    text: String,
    body: Value,
    status: String,
    created_at: DateTime<Utc>,
}

impl From<DraftRow> for StoredDraft {
    fn from(row: DraftRow) -> Self {
        StoredDraft {
            draft_id: row.draft_id,
            case_id: row.case_id,
            version: row.version,
            kind: row.kind,
            text: row.text,
            body: row.body,
            status: row.status,
            created_at: row.created_at,
        }
    }
}

/// A `documents` row.
#[derive(sqlx::FromRow)]
pub(crate) struct DocumentRow {
    document_id: String,
    filename: String,
    media_type: String,
    sha256: String,
    declared_type: Option<String>,
    location: Option<String>,
    extracted: Value,
}

impl From<DocumentRow> for StoredDocument {
    fn from(row: DocumentRow) -> Self {
        StoredDocument {
            document_id: row.document_id,
            filename: row.filename,
            media_type: row.media_type,
            sha256: row.sha256,
            declared_type: row.declared_type,
            location: row.location,
            extracted: row.extracted,
            content: None,
        }
    }
}

/// An `outbox` row.
#[derive(sqlx::FromRow)]
pub(crate) struct OutboxRow {
    id: i64,
    event_id: String,
    event_type: String,
    payload: Value,
    created_at: DateTime<Utc>,
}

impl OutboxRow {
    pub(crate) fn id(&self) -> i64 {
        self.id
    }
}

impl From<OutboxRow> for OutboxEvent {
    fn from(row: OutboxRow) -> Self {
        OutboxEvent {
            id: row.id,
            event_id: row.event_id,
            event_type: row.event_type,
            payload: row.payload,
            created_at: row.created_at,
        }
    }
}

/// An `audit_log` row.
#[derive(sqlx::FromRow)]
pub(crate) struct AuditRow {
    id: i64,
    at: DateTime<Utc>,
    actor: String,
    action: String,
    case_id: Option<String>,
    bundle_id: Option<String>,
    schema_version: Option<String>,
    detail: Value,
    prev_hash: String,
    hash: String,
}

impl From<AuditRow> for StoredEntry {
    fn from(row: AuditRow) -> Self {
        StoredEntry {
            entry: AuditEntry {
                id: row.id,
                at: row.at,
                actor: row.actor,
                action: row.action,
                case_id: row.case_id,
                bundle_id: row.bundle_id,
                schema_version: row.schema_version,
                detail: row.detail,
            },
            prev_hash: row.prev_hash,
            hash: row.hash,
        }
    }
}

/// How many audit entries `verify_audit_chain` reads per query, so a long
/// log never sits in memory at once.
pub(crate) const AUDIT_PAGE: i64 = 1000;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_ids_are_readable_and_derived_from_the_bundle_id() {
        let id = new_case_id("uvg-2026-000123");
        assert_eq!(id, new_case_id("uvg-2026-000123"));
        assert_ne!(id, new_case_id("uvg-2026-000124"));
        assert_eq!(id.len(), "case-".len() + 12);
        assert!(id.starts_with("case-"));
    }

    #[test]
    fn pool_timeouts_and_io_errors_are_worth_a_retry() {
        assert!(map_generic(sqlx::Error::PoolTimedOut).is_transient());
        assert!(map_generic(sqlx::Error::PoolClosed).is_transient());
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        assert!(map_generic(sqlx::Error::Io(io)).is_transient());
        assert!(!map_generic(sqlx::Error::RowNotFound).is_transient());
    }
}

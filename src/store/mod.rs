//! Persistence of cases, their bundles, documents, check reports and draft
//! versions (the review queue), behind one `Store` trait with a SQLite
//! implementation (embedded default) and a PostgreSQL one (production).
//!
//! The store keeps the pipeline's results as JSON documents plus the few
//! columns that queries filter on; it makes no business decisions.
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

mod audit;
mod common;
pub mod postgres;
pub mod review;
pub mod schema_registry;
pub mod sqlite;

pub use review::ReviewStore;
pub use schema_registry::SchemaRegistry;

/// Errors at the storage boundary. `Unavailable` is worth a retry (the
/// database is down or the connection broke); the others are not.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("database schema migration failed: {0}")]
    Migration(String),
    #[error("unsupported database URL scheme (expected sqlite:// or postgres://)")]
    UnsupportedUrl,
    #[error("not found: {0}")]
    NotFound(String),
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("database error: {0}")]
    Other(String),
}

impl StoreError {
    /// Whether the same operation may succeed later (connection-level trouble).
    pub fn is_transient(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }
}

/// One uploaded document as stored (metadata only; text lives in the report).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredDocument {
    pub document_id: String,
    pub filename: String,
    pub media_type: String,
    /// SHA-256 of the bytes actually received (hex).
    pub sha256: String,
    pub declared_type: Option<String>,
    /// Where the bytes are kept for the review UI (path or object key), if kept.
    pub location: Option<String>,
    /// The extraction result (`ExtractedDocument` as JSON): derived text,
    /// kept so a late bundle can re-check the whole case without re-OCR.
    pub extracted: serde_json::Value,
    /// The bytes as received, kept (by `sha256`) for the review UI's page
    /// images. Only set when recording; never read back with the metadata.
    #[serde(skip)]
    pub content: Option<Vec<u8>>,
}

/// A drafted review item: a letter for an incomplete bundle, or a
/// "ready for processing" note for a complete one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewDraft {
    /// `letter` or `ready_for_processing`.
    pub kind: String,
    /// The draft's plain text as the caseworker will read and edit it.
    pub text: String,
    /// The structured draft (addressee, items, deadline …) as JSON.
    pub body: serde_json::Value,
}

/// Everything one processed bundle adds to the store, written in one transaction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BundleResult {
    pub bundle_id: String,
    /// The case this bundle adds to (late documents); `None` opens a new case.
    pub case_id: Option<String>,
    pub procedure: String,
    pub tenant: Option<String>,
    pub schema_version: String,
    pub received_at: DateTime<Utc>,
    /// `complete`, `incomplete` or `needs_review`.
    pub verdict: String,
    /// The manifest as received (holds personal data; needed to re-check and
    /// to address the letter, so it is stored, never logged).
    pub manifest: serde_json::Value,
    /// The full check report (the `check --json` document).
    pub report: serde_json::Value,
    pub documents: Vec<StoredDocument>,
    pub draft: NewDraft,
}

/// What `record_bundle` did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RecordOutcome {
    /// A new case was opened (or a late bundle added to one) and a draft stored.
    Recorded {
        case_id: String,
        draft_id: i64,
        draft_version: i64,
    },
    /// This `bundle_id` was recorded before; nothing changed (idempotency).
    AlreadyRecorded { case_id: String },
}

/// A line of `nachweis cases`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseSummary {
    pub case_id: String,
    pub bundle_ids: Vec<String>,
    pub procedure: String,
    pub tenant: Option<String>,
    pub verdict: String,
    /// `pending_review`, `approved`, `rejected`, `closed_complete`, `superseded`.
    pub review_status: String,
    pub current_draft_id: Option<i64>,
    pub updated_at: DateTime<Utc>,
}

/// A stored draft version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredDraft {
    pub draft_id: i64,
    pub case_id: String,
    pub version: i64,
    pub kind: String,
    pub text: String,
    pub body: serde_json::Value,
    /// `pending_review`, `approved`, `rejected`, `superseded`.
    pub status: String,
    pub created_at: DateTime<Utc>,
}

/// The result of recomputing the audit log's hash chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditCheck {
    /// How many entries the log holds (up to the chain head read at the start).
    pub entries: u64,
    /// The id of the first entry that does not verify: its hash or its link
    /// to the previous entry is wrong, or it is missing. `None` if intact.
    pub first_broken: Option<i64>,
}

impl AuditCheck {
    /// Whether every entry verified.
    pub fn is_intact(&self) -> bool {
        self.first_broken.is_none()
    }
}

/// An event in the transactional outbox: written in the same transaction as
/// the change it reports, published later by the worker's relay.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutboxEvent {
    /// Position in the outbox; events are published in this order.
    pub id: i64,
    /// Stable id that consumers deduplicate on (publication is at-least-once).
    pub event_id: String,
    /// `bundle.checked` or `draft.ready`; also the routing key on the events exchange.
    pub event_type: String,
    /// The event body: ids, verdicts and versions only, never personal data.
    pub payload: serde_json::Value,
    pub created_at: DateTime<Utc>,
}

/// Capability: durable storage of cases and the review queue. The review
/// side (accounts, claims, decisions) is the supertrait `ReviewStore`.
#[async_trait]
pub trait Store: ReviewStore + Send + Sync {
    /// Creates or upgrades the schema (idempotent).
    async fn migrate(&self) -> Result<(), StoreError>;
    /// Records a processed bundle atomically and idempotently by `bundle_id`:
    /// a bundle seen before changes nothing and returns `AlreadyRecorded`,
    /// also when another worker records it at the same moment.
    /// A bundle without `case_id` opens a case whose id derives from the
    /// `bundle_id`. A bundle with a known `case_id` adds to that case, stores
    /// the new report and draft, and marks the earlier pending draft
    /// `superseded`; an unknown `case_id` is `NotFound`, and one whose case has
    /// another procedure or tenant is a `Conflict`.
    /// Appends `bundle_checked` and `draft_created` to the audit log and
    /// `bundle.checked` and `draft.ready` to the outbox.
    async fn record_bundle(&self, result: &BundleResult) -> Result<RecordOutcome, StoreError>;
    /// The case a bundle was recorded under, if any.
    async fn case_of_bundle(&self, bundle_id: &str) -> Result<Option<String>, StoreError>;
    /// All cases, most recently updated first (ties by case id); bundle ids
    /// in arrival order; the current draft is the newest version.
    async fn list_cases(&self) -> Result<Vec<CaseSummary>, StoreError>;
    /// The current (newest) draft of a case.
    async fn current_draft(&self, case_id: &str) -> Result<Option<StoredDraft>, StoreError>;
    /// Every bundle's manifest of a case, oldest first (for re-checking with
    /// late documents). Empty for an unknown case.
    async fn case_manifests(&self, case_id: &str) -> Result<Vec<serde_json::Value>, StoreError>;
    /// Every document of a case across its bundles, in the order they arrived
    /// (bundles by `received_at`, documents in manifest order). Note that a
    /// `document_id` is unique only within its bundle.
    async fn case_documents(&self, case_id: &str) -> Result<Vec<StoredDocument>, StoreError>;
    /// Recomputes the audit log's hash chain from the first entry.
    async fn verify_audit_chain(&self) -> Result<AuditCheck, StoreError>;
    /// Claims up to `limit` unpublished outbox events for `relay` until
    /// `lease` from now and returns them oldest first. Events with a claim
    /// whose lease has not run out are skipped — by every relay, the holder
    /// included, so events that cannot be routed yet do not block the ones
    /// behind them (PostgreSQL: `FOR UPDATE SKIP LOCKED`, so concurrent relays
    /// do not publish the same event in the normal case). Every claim expires,
    /// so an event whose relay died is published later. `relay` is recorded
    /// for diagnosis only.
    async fn claim_events(&self, relay: &str, limit: i64, lease: std::time::Duration) -> Result<Vec<OutboxEvent>, StoreError>;
    /// How many outbox events are not yet published (for metrics; it is also
    /// the readiness probe's query).
    async fn outbox_backlog(&self) -> Result<i64, StoreError>;
    /// Notes that processing of a queue message starts (`message_key`: the
    /// SHA-256 of its body) and returns how many earlier starts of it never
    /// finished — the worker died meanwhile.
    async fn begin_attempt(&self, message_key: &str) -> Result<u32, StoreError>;
    /// Notes that processing of a message finished, whatever the outcome.
    async fn end_attempt(&self, message_key: &str) -> Result<(), StoreError>;
    /// Outbox events not yet published, oldest first, at most `limit`.
    /// `record_bundle` writes `bundle.checked` and `draft.ready`.
    async fn pending_events(&self, limit: i64) -> Result<Vec<OutboxEvent>, StoreError>;
    /// Marks an outbox event published, after the broker confirmed it.
    /// Marking it again changes nothing.
    async fn mark_event_published(&self, id: i64) -> Result<(), StoreError>;
}

/// Opens the store that the URL's scheme names and migrates it.
/// A SQLite database file is created if missing.
pub async fn connect(database_url: &str) -> Result<std::sync::Arc<dyn Store>, StoreError> {
    let store: std::sync::Arc<dyn Store> = if database_url.starts_with("sqlite:") {
        std::sync::Arc::new(sqlite::SqliteStore::connect(database_url).await?)
    } else if database_url.starts_with("postgres:") || database_url.starts_with("postgresql:") {
        std::sync::Arc::new(postgres::PostgresStore::connect(database_url).await?)
    } else {
        return Err(StoreError::UnsupportedUrl);
    };
    store.migrate().await?;
    Ok(store)
}

/// Opens the store and its schema registry over one connection pool, and
/// migrates the database (see `connect`).
pub async fn connect_with_registry(
    database_url: &str,
) -> Result<(std::sync::Arc<dyn Store>, std::sync::Arc<dyn SchemaRegistry>), StoreError> {
    if database_url.starts_with("sqlite:") {
        let s = std::sync::Arc::new(sqlite::SqliteStore::connect(database_url).await?);
        s.migrate().await?;
        Ok((s.clone(), s))
    } else if database_url.starts_with("postgres:") || database_url.starts_with("postgresql:") {
        let s = std::sync::Arc::new(postgres::PostgresStore::connect(database_url).await?);
        s.migrate().await?;
        Ok((s.clone(), s))
    } else {
        Err(StoreError::UnsupportedUrl)
    }
}

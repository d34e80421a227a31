//! SQLite implementation of `Store`: the embedded default, one file, no server.
//!
//! Every recording transaction starts with `BEGIN IMMEDIATE`, which takes the
//! database's single write lock up front (waiting up to the busy timeout), so
//! the idempotency check, the case's draft versions and the audit chain are
//! read and written by one writer at a time, also across processes.
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::SqliteConnection;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use super::audit::{AuditEntry, ChainVerifier, StoredEntry, WORKER_ACTOR};
use super::common::{
    self, AUDIT_PAGE, AuditRow, CaseRow, DocumentRow, DraftRow, OutboxRow, PENDING_REVIEW, TxError,
};
use super::{
    AuditCheck, BundleResult, CaseSummary, OutboxEvent, RecordOutcome, Store, StoreError,
    StoredDocument, StoredDraft,
};

/// How long a writer waits for another writer's lock before giving up with
/// `SQLITE_BUSY` (which then maps to `Unavailable`, so the job is retried).
const BUSY_TIMEOUT: Duration = Duration::from_secs(15);

/// A `Store` over one SQLite database file.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pub(super) pool: SqlitePool,
}

impl SqliteStore {
    /// Opens (and creates, if missing) the database at `url`
    /// (`sqlite://path/to/file.sqlite`). Does not migrate; see `Store::migrate`.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(map_err)?
            .create_if_missing(true)
            // WAL lets readers (the review UI) run while a worker writes.
            .journal_mode(SqliteJournalMode::Wal)
            // A commit must survive a power cut: the queue message is acked
            // right after it and will not be redelivered.
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .acquire_timeout(BUSY_TIMEOUT)
            .connect_with(options)
            .await
            .map_err(map_err)?;
        Ok(SqliteStore { pool })
    }

    async fn try_record(&self, result: &BundleResult) -> Result<RecordOutcome, TxError> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;

        let existing: Option<String> =
            sqlx::query_scalar("SELECT case_id FROM bundles WHERE bundle_id = $1")
                .bind(&result.bundle_id)
                .fetch_optional(&mut *tx)
                .await?;
        if let Some(case_id) = existing {
            // Dropping the transaction rolls it back: nothing was written.
            return Ok(RecordOutcome::AlreadyRecorded { case_id });
        }

        let now = common::now();
        let case_id = match &result.case_id {
            None => {
                let case_id = common::new_case_id(&result.bundle_id);
                sqlx::query(
                    "INSERT INTO cases (case_id, procedure, tenant, verdict, review_status,
                                        schema_version, created_at, updated_at, received_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $8)",
                )
                .bind(&case_id)
                .bind(&result.procedure)
                .bind(&result.tenant)
                .bind(&result.verdict)
                .bind(PENDING_REVIEW)
                .bind(&result.schema_version)
                .bind(ts(now))
                .bind(ts(result.received_at))
                .execute(&mut *tx)
                .await?;
                case_id
            }
            Some(case_id) => {
                let case: Option<(String, Option<String>)> =
                    sqlx::query_as("SELECT procedure, tenant FROM cases WHERE case_id = $1")
                        .bind(case_id)
                        .fetch_optional(&mut *tx)
                        .await?;
                let Some((procedure, tenant)) = case else {
                    return Err(StoreError::NotFound(format!("case {case_id}")).into());
                };
                common::check_same_case(result, case_id, &procedure, tenant.as_deref())?;
                sqlx::query(
                    "UPDATE cases SET verdict = $2, review_status = $3, schema_version = $4,
                                      updated_at = $5
                     WHERE case_id = $1",
                )
                .bind(case_id)
                .bind(&result.verdict)
                .bind(PENDING_REVIEW)
                .bind(&result.schema_version)
                .bind(ts(now))
                .execute(&mut *tx)
                .await?;
                case_id.clone()
            }
        };
        let new_case = result.case_id.is_none();

        sqlx::query(
            "INSERT INTO bundles (bundle_id, case_id, received_at, manifest, report, verdict,
                                  schema_version, recorded_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&result.bundle_id)
        .bind(&case_id)
        .bind(ts(result.received_at))
        .bind(&result.manifest)
        .bind(&result.report)
        .bind(&result.verdict)
        .bind(&result.schema_version)
        .bind(ts(now))
        .execute(&mut *tx)
        .await?;

        for (position, document) in result.documents.iter().enumerate() {
            sqlx::query(
                "INSERT INTO documents (bundle_id, document_id, position, filename, media_type,
                                        sha256, declared_type, location, extracted)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(&result.bundle_id)
            .bind(&document.document_id)
            .bind(position as i64)
            .bind(&document.filename)
            .bind(&document.media_type)
            .bind(&document.sha256)
            .bind(&document.declared_type)
            .bind(&document.location)
            .bind(&document.extracted)
            .execute(&mut *tx)
            .await?;
            if let Some(content) = &document.content {
                // Content-addressed: the same file in two bundles is kept once.
                sqlx::query(
                    "INSERT INTO document_contents (sha256, content, created_at) VALUES ($1, $2, $3)
                     ON CONFLICT (sha256) DO NOTHING",
                )
                .bind(&document.sha256)
                .bind(content.as_slice())
                .bind(ts(now))
                .execute(&mut *tx)
                .await?;
            }
        }

        let superseded: Vec<i64> = sqlx::query_scalar(
            "UPDATE drafts SET status = 'superseded'
             WHERE case_id = $1 AND status = 'pending_review'
             RETURNING draft_id",
        )
        .bind(&case_id)
        .fetch_all(&mut *tx)
        .await?;
        let version: i64 = sqlx::query_scalar(
            "SELECT COALESCE(MAX(version), 0) + 1 FROM drafts WHERE case_id = $1",
        )
        .bind(&case_id)
        .fetch_one(&mut *tx)
        .await?;
        let draft_id: i64 = sqlx::query_scalar(
            "INSERT INTO drafts (case_id, bundle_id, version, kind, text, body, status, created_at, report)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
             RETURNING draft_id",
        )
        .bind(&case_id)
        .bind(&result.bundle_id)
        .bind(version)
        .bind(&result.draft.kind)
        .bind(&result.draft.text)
        .bind(&result.draft.body)
        .bind(PENDING_REVIEW)
        .bind(ts(now))
        .bind(&result.report)
        .fetch_one(&mut *tx)
        .await?;

        // The events go out only if this transaction commits (outbox).
        for event in common::bundle_events(result, &case_id, draft_id, version) {
            sqlx::query(
                "INSERT INTO outbox (event_id, event_type, payload, created_at)
                 VALUES ($1, $2, $3, $4)",
            )
            .bind(&event.event_id)
            .bind(event.event_type)
            .bind(&event.payload)
            .bind(ts(now))
            .execute(&mut *tx)
            .await?;
        }

        let entry = |action: &str, detail| AuditEntry {
            id: 0,
            at: now,
            actor: WORKER_ACTOR.to_owned(),
            action: action.to_owned(),
            case_id: Some(case_id.clone()),
            bundle_id: Some(result.bundle_id.clone()),
            schema_version: Some(result.schema_version.clone()),
            detail,
        };
        append_audit(
            &mut tx,
            entry(
                "bundle_checked",
                common::bundle_checked_detail(result, &case_id, new_case),
            ),
        )
        .await?;
        append_audit(
            &mut tx,
            entry(
                "draft_created",
                common::draft_created_detail(draft_id, version, &result.draft.kind, &superseded),
            ),
        )
        .await?;

        tx.commit().await?;
        Ok(RecordOutcome::Recorded {
            case_id,
            draft_id,
            draft_version: version,
        })
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn migrate(&self) -> Result<(), StoreError> {
        sqlx::migrate!("src/store/migrations/sqlite")
            .run(&self.pool)
            .await
            .map_err(|e| StoreError::Migration(e.to_string()))
    }

    #[tracing::instrument(skip_all, fields(bundle_id = %result.bundle_id))]
    async fn record_bundle(&self, result: &BundleResult) -> Result<RecordOutcome, StoreError> {
        match self.try_record(result).await {
            Ok(outcome) => Ok(outcome),
            Err(TxError::Store(error)) => Err(error),
            // BEGIN IMMEDIATE makes this unlikely here, but a duplicate that
            // slips past the check is still a duplicate, not an error.
            Err(TxError::Sql(error)) if common::is_unique_violation(&error) => {
                match self.case_of_bundle(&result.bundle_id).await? {
                    Some(case_id) => Ok(RecordOutcome::AlreadyRecorded { case_id }),
                    None => Err(map_err(error)),
                }
            }
            Err(TxError::Sql(error)) => Err(map_err(error)),
        }
    }

    async fn case_of_bundle(&self, bundle_id: &str) -> Result<Option<String>, StoreError> {
        sqlx::query_scalar("SELECT case_id FROM bundles WHERE bundle_id = $1")
            .bind(bundle_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(map_err)
    }

    async fn list_cases(&self) -> Result<Vec<CaseSummary>, StoreError> {
        let rows: Vec<CaseRow> = sqlx::query_as(
            "SELECT c.case_id, c.procedure, c.tenant, c.verdict, c.review_status, c.updated_at,
                    (SELECT json_group_array(b.bundle_id ORDER BY b.received_at, b.recorded_at, b.bundle_id)
                       FROM bundles b WHERE b.case_id = c.case_id) AS bundle_ids,
                    (SELECT d.draft_id FROM drafts d WHERE d.case_id = c.case_id
                      ORDER BY d.version DESC LIMIT 1) AS current_draft_id
               FROM cases c
              ORDER BY c.updated_at DESC, c.case_id",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(rows.into_iter().map(CaseSummary::from).collect())
    }

    async fn current_draft(&self, case_id: &str) -> Result<Option<StoredDraft>, StoreError> {
        let row: Option<DraftRow> = sqlx::query_as(
            "SELECT draft_id, case_id, version, kind, text, body, status, created_at
               FROM drafts WHERE case_id = $1
              ORDER BY version DESC LIMIT 1",
        )
        .bind(case_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(row.map(StoredDraft::from))
    }

    async fn case_manifests(&self, case_id: &str) -> Result<Vec<serde_json::Value>, StoreError> {
        sqlx::query_scalar(
            "SELECT manifest FROM bundles WHERE case_id = $1
              ORDER BY received_at, recorded_at, bundle_id",
        )
        .bind(case_id)
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)
    }

    async fn case_documents(&self, case_id: &str) -> Result<Vec<StoredDocument>, StoreError> {
        let rows: Vec<DocumentRow> = sqlx::query_as(
            "SELECT d.document_id, d.filename, d.media_type, d.sha256, d.declared_type,
                    d.location, d.extracted
               FROM documents d JOIN bundles b ON b.bundle_id = d.bundle_id
              WHERE b.case_id = $1
              ORDER BY b.received_at, b.recorded_at, b.bundle_id, d.position",
        )
        .bind(case_id)
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(rows.into_iter().map(StoredDocument::from).collect())
    }

    async fn verify_audit_chain(&self) -> Result<AuditCheck, StoreError> {
        // The head first: entries appended while we walk lie beyond it and
        // are left for the next check.
        let (last_id, last_hash): (i64, String) =
            sqlx::query_as("SELECT last_id, last_hash FROM audit_head WHERE singleton = 1")
                .fetch_one(&self.pool)
                .await
                .map_err(map_err)?;
        let mut verifier = ChainVerifier::new();
        loop {
            let page: Vec<AuditRow> = sqlx::query_as(
                "SELECT id, at, actor, action, case_id, bundle_id, schema_version, detail,
                        prev_hash, hash
                   FROM audit_log WHERE id > $1 AND id <= $2
                  ORDER BY id LIMIT $3",
            )
            .bind(verifier.cursor())
            .bind(last_id)
            .bind(AUDIT_PAGE)
            .fetch_all(&self.pool)
            .await
            .map_err(map_err)?;
            let done = (page.len() as i64) < AUDIT_PAGE;
            for row in page {
                verifier.push(&StoredEntry::from(row));
            }
            if done {
                break;
            }
        }
        Ok(verifier.finish(last_id, &last_hash))
    }

    async fn claim_events(&self, relay: &str, limit: i64, lease: Duration) -> Result<Vec<OutboxEvent>, StoreError> {
        // One statement under SQLite's single write lock: two relays cannot
        // claim the same row. Timestamps are fixed-width text, so they compare
        // as strings.
        let now = common::now();
        let until = now + chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::MAX);
        let mut rows: Vec<OutboxRow> = sqlx::query_as(
            "UPDATE outbox SET claimed_by = $1, claimed_until = $2
              WHERE id IN (SELECT id FROM outbox
                            WHERE published_at IS NULL
                              AND (claimed_until IS NULL OR claimed_until < $3)
                            ORDER BY id LIMIT $4)
          RETURNING id, event_id, event_type, payload, created_at",
        )
        .bind(relay)
        .bind(ts(until))
        .bind(ts(now))
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        rows.sort_by_key(OutboxRow::id);
        Ok(rows.into_iter().map(OutboxEvent::from).collect())
    }

    async fn outbox_backlog(&self) -> Result<i64, StoreError> {
        sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE published_at IS NULL")
            .fetch_one(&self.pool)
            .await
            .map_err(map_err)
    }

    async fn begin_attempt(&self, message_key: &str) -> Result<u32, StoreError> {
        let started: i64 = sqlx::query_scalar(
            "INSERT INTO delivery_attempts (message_key, started, updated_at) VALUES ($1, 1, $2)
             ON CONFLICT (message_key) DO UPDATE
                SET started = delivery_attempts.started + 1, updated_at = excluded.updated_at
          RETURNING started",
        )
        .bind(message_key)
        .bind(ts(common::now()))
        .fetch_one(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(u32::try_from(started - 1).unwrap_or(0))
    }

    async fn end_attempt(&self, message_key: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM delivery_attempts WHERE message_key = $1")
            .bind(message_key)
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn pending_events(&self, limit: i64) -> Result<Vec<OutboxEvent>, StoreError> {
        let rows: Vec<OutboxRow> = sqlx::query_as(
            "SELECT id, event_id, event_type, payload, created_at
               FROM outbox WHERE published_at IS NULL
              ORDER BY id LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(rows.into_iter().map(OutboxEvent::from).collect())
    }

    async fn mark_event_published(&self, id: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE outbox SET published_at = $2 WHERE id = $1 AND published_at IS NULL")
            .bind(id)
            .bind(ts(common::now()))
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(())
    }
}

/// Appends one entry to the audit chain inside the caller's transaction.
/// The caller holds SQLite's write lock, so reading and advancing the head
/// cannot interleave with another writer.
pub(super) async fn append_audit(
    conn: &mut SqliteConnection,
    mut entry: AuditEntry,
) -> Result<(), sqlx::Error> {
    let (last_id, last_hash): (i64, String) =
        sqlx::query_as("SELECT last_id, last_hash FROM audit_head WHERE singleton = 1")
            .fetch_one(&mut *conn)
            .await?;
    entry.id = last_id + 1;
    let hash = entry.chain_hash(&last_hash);
    sqlx::query(
        "INSERT INTO audit_log (id, at, actor, action, case_id, bundle_id, schema_version,
                                detail, prev_hash, hash)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(entry.id)
    .bind(ts(entry.at))
    .bind(&entry.actor)
    .bind(&entry.action)
    .bind(&entry.case_id)
    .bind(&entry.bundle_id)
    .bind(&entry.schema_version)
    .bind(&entry.detail)
    .bind(&last_hash)
    .bind(&hash)
    .execute(&mut *conn)
    .await?;
    sqlx::query("UPDATE audit_head SET last_id = $1, last_hash = $2 WHERE singleton = 1")
        .bind(entry.id)
        .bind(&hash)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Timestamps are stored as fixed-width RFC 3339 text in UTC with
/// microseconds, so that ordering by the column orders by time.
pub(super) fn ts(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// SQLite result codes (primary, the low byte of the extended code) that mean
/// the database is busy or its file unreachable right now.
const SQLITE_BUSY: i64 = 5;
const SQLITE_LOCKED: i64 = 6;
const SQLITE_IOERR: i64 = 10;
const SQLITE_CANTOPEN: i64 = 14;

/// Maps a sqlx error to the store boundary: a lock held past the busy
/// timeout or an unreachable file is worth a retry, the rest is not.
pub(super) fn map_err(error: sqlx::Error) -> StoreError {
    if let sqlx::Error::Database(db) = &error {
        let primary = db
            .code()
            .and_then(|code| code.parse::<i64>().ok())
            .map(|code| code & 0xff);
        if matches!(
            primary,
            Some(SQLITE_BUSY | SQLITE_LOCKED | SQLITE_IOERR | SQLITE_CANTOPEN)
        ) {
            return StoreError::Unavailable(error.to_string());
        }
    }
    common::map_generic(error)
}

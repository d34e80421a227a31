//! PostgreSQL implementation of `Store`, for production with several worker
//! replicas sharing one database.
//!
//! Concurrency rests on the database: a duplicate bundle collides on a
//! primary key (and is reported as `AlreadyRecorded`), a late bundle locks its
//! case row, and audit appends lock the one-row chain head, so the chain
//! never forks however many workers write.
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::PgConnection;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

use super::audit::{AuditEntry, ChainVerifier, StoredEntry, WORKER_ACTOR};
use super::common::{
    self, AUDIT_PAGE, AuditRow, CaseRow, DocumentRow, DraftRow, OutboxRow, PENDING_REVIEW, TxError,
};
use super::{
    AuditCheck, BundleResult, CaseSummary, OutboxEvent, RecordOutcome, Store, StoreError,
    StoredDocument, StoredDraft,
};

/// How long to wait for a pooled connection before reporting the database
/// `Unavailable` (the job is then retried rather than hanging).
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

/// A `Store` over a PostgreSQL database.
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pub(super) pool: PgPool,
}

impl PostgresStore {
    /// Connects to the database at `url` (`postgres://user@host/db`).
    /// Does not migrate; see `Store::migrate`.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let options = PgConnectOptions::from_str(url).map_err(map_err)?;
        let pool = PgPoolOptions::new()
            .max_connections(10)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options)
            .await
            .map_err(map_err)?;
        Ok(PostgresStore { pool })
    }

    async fn try_record(&self, result: &BundleResult) -> Result<RecordOutcome, TxError> {
        let mut tx = self.pool.begin().await?;

        let existing: Option<String> =
            sqlx::query_scalar("SELECT case_id FROM bundles WHERE bundle_id = $1")
                .bind(&result.bundle_id)
                .fetch_optional(&mut *tx)
                .await?;
        if let Some(case_id) = existing {
            // Dropping the transaction rolls it back: nothing was written.
            // A concurrent duplicate that is not committed yet is not seen
            // here; it collides on the primary keys below instead.
            return Ok(RecordOutcome::AlreadyRecorded { case_id });
        }

        let now = common::now();
        let case_id = match &result.case_id {
            None => {
                // A concurrent worker with the same bundle blocks on this
                // insert until the first commits, then fails with a unique
                // violation, which record_bundle turns into AlreadyRecorded.
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
                .bind(now)
                .bind(result.received_at)
                .execute(&mut *tx)
                .await?;
                case_id
            }
            Some(case_id) => {
                // The row lock serialises late bundles for one case, so draft
                // versions and the single pending draft stay consistent.
                let case: Option<(String, Option<String>)> = sqlx::query_as(
                    "SELECT procedure, tenant FROM cases WHERE case_id = $1 FOR UPDATE",
                )
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
                .bind(now)
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
        .bind(result.received_at)
        .bind(&result.manifest)
        .bind(&result.report)
        .bind(&result.verdict)
        .bind(&result.schema_version)
        .bind(now)
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
            .bind(i32::try_from(position).unwrap_or(i32::MAX))
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
                .bind(now)
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
        .bind(now)
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
            .bind(now)
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
impl Store for PostgresStore {
    async fn migrate(&self) -> Result<(), StoreError> {
        sqlx::migrate!("src/store/migrations/postgres")
            .run(&self.pool)
            .await
            .map_err(|e| StoreError::Migration(e.to_string()))
    }

    #[tracing::instrument(skip_all, fields(bundle_id = %result.bundle_id))]
    async fn record_bundle(&self, result: &BundleResult) -> Result<RecordOutcome, StoreError> {
        match self.try_record(result).await {
            Ok(outcome) => Ok(outcome),
            Err(TxError::Store(error)) => Err(error),
            // Another worker recorded the same bundle between our check and
            // our insert: a duplicate, not an error.
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
                    COALESCE((SELECT jsonb_agg(b.bundle_id ORDER BY b.received_at, b.recorded_at, b.bundle_id)
                                FROM bundles b WHERE b.case_id = c.case_id), '[]'::jsonb) AS bundle_ids,
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
            sqlx::query_as("SELECT last_id, last_hash FROM audit_head WHERE singleton")
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
        // The database's clock, not the worker's: relays on several hosts
        // must agree on when a lease has run out.
        let mut rows: Vec<OutboxRow> = sqlx::query_as(
            "UPDATE outbox o
                SET claimed_by = $1, claimed_until = now() + make_interval(secs => $2)
               FROM (SELECT id FROM outbox
                      WHERE published_at IS NULL
                        AND (claimed_until IS NULL OR claimed_until < now())
                      ORDER BY id LIMIT $3
                      FOR UPDATE SKIP LOCKED) c
              WHERE o.id = c.id
          RETURNING o.id, o.event_id, o.event_type, o.payload, o.created_at",
        )
        .bind(relay)
        .bind(lease.as_secs_f64())
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
        let started: i32 = sqlx::query_scalar(
            "INSERT INTO delivery_attempts (message_key, started, updated_at) VALUES ($1, 1, now())
             ON CONFLICT (message_key) DO UPDATE
                SET started = delivery_attempts.started + 1, updated_at = now()
          RETURNING started",
        )
        .bind(message_key)
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
            .bind(common::now())
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(())
    }
}

/// Appends one entry to the audit chain inside the caller's transaction.
/// The head row stays locked until the caller commits, so concurrent
/// appenders take turns and each links to the previous committed entry.
pub(super) async fn append_audit(conn: &mut PgConnection, mut entry: AuditEntry) -> Result<(), sqlx::Error> {
    let (last_id, last_hash): (i64, String) =
        sqlx::query_as("SELECT last_id, last_hash FROM audit_head WHERE singleton FOR UPDATE")
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
    .bind(entry.at)
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
    sqlx::query("UPDATE audit_head SET last_id = $1, last_hash = $2 WHERE singleton")
        .bind(entry.id)
        .bind(&hash)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// SQLSTATEs that mean the server cannot serve us right now, so the job
/// should be retried: the connection exception class (08), an administrator
/// or crash shutdown or a server still starting (57P01-57P03), too many
/// connections (53300), a read-only standby after a failover (25006), and
/// the transaction rollbacks PostgreSQL itself asks to retry (40001, 40P01).
fn is_transient_sqlstate(code: &str) -> bool {
    code.starts_with("08")
        || matches!(
            code,
            "57P01" | "57P02" | "57P03" | "53300" | "25006" | "40001" | "40P01"
        )
}

/// Maps a sqlx error to the store boundary by SQLSTATE and error kind.
pub(super) fn map_err(error: sqlx::Error) -> StoreError {
    if let sqlx::Error::Database(db) = &error
        && db.code().is_some_and(|code| is_transient_sqlstate(&code))
    {
        return StoreError::Unavailable(error.to_string());
    }
    common::map_generic(error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shutdown_and_connection_sqlstates_are_transient() {
        for code in ["08006", "08001", "57P01", "57P02", "57P03", "40001"] {
            assert!(is_transient_sqlstate(code), "{code}");
        }
        for code in ["23505", "42P01", "22P02"] {
            assert!(!is_transient_sqlstate(code), "{code}");
        }
    }
}

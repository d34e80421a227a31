//! The `Store` contract, tested once and run against both adapters: SQLite
//! (a fresh file per test) and PostgreSQL (a fresh database per test).
//!
//! PostgreSQL is reached through `NACHWEIS_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`); the tests create
//! `nachweis_test_<random>` there and drop it afterwards. If the server is
//! unreachable the PostgreSQL tests fail and say how to start it.
use std::collections::BTreeSet;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::Utc;
use nachweis::store::{
    self, BundleResult, NewDraft, RecordOutcome, Store, StoreError, StoredDocument,
};
use serde_json::json;
use sqlx::postgres::PgPoolOptions;
use sqlx::sqlite::SqlitePoolOptions;
use sqlx::{PgPool, SqlitePool};
use tokio::sync::Barrier;

const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";
const START_POSTGRES: &str = "pg_ctlcluster --skip-systemctl-redirect 15 main start";

// ---------------------------------------------------------------------------
// The suite: every function below runs once per backend.
// ---------------------------------------------------------------------------

/// Declares one `#[tokio::test]` per backend for each suite function, as
/// `sqlite::<name>` and `postgres::<name>`.
macro_rules! store_suite {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    crate::Backend::Sqlite.run(crate::$name).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    crate::Backend::Postgres.run(crate::$name).await;
                }
            )*
        }
    };
}

store_suite!(
    recording_a_bundle_opens_a_case_with_a_pending_draft,
    a_redelivered_bundle_is_recorded_once,
    a_late_bundle_supersedes_the_pending_draft_and_bumps_the_version,
    a_bundle_naming_an_unknown_case_is_not_found_and_writes_nothing,
    a_late_bundle_from_another_tenant_is_a_conflict,
    eight_workers_recording_the_same_bundle_at_once_make_one_case_and_one_draft,
    concurrent_late_bundles_for_one_case_get_distinct_versions_and_one_pending_draft,
    the_audit_chain_verifies_and_reveals_a_tampered_entry,
    audit_entries_hold_ids_and_hashes_but_no_personal_data,
    cases_are_listed_most_recently_updated_first,
    a_recorded_bundle_leaves_its_events_in_the_outbox_until_they_are_published,
    relays_claiming_at_once_never_get_the_same_event,
    a_claimed_event_is_offered_again_only_after_its_lease_runs_out,
    the_outbox_backlog_counts_the_events_not_yet_published,
    unfinished_processing_starts_are_counted_until_one_finishes,
);

async fn recording_a_bundle_opens_a_case_with_a_pending_draft(db: TestDb) {
    let outcome = db
        .store
        .record_bundle(&bundle("uvg-1", None))
        .await
        .unwrap();

    let RecordOutcome::Recorded {
        case_id,
        draft_id,
        draft_version,
    } = outcome
    else {
        panic!("expected Recorded, got {outcome:?}");
    };
    assert!(case_id.starts_with("case-"), "{case_id}");
    assert_eq!(draft_version, 1);
    assert_eq!(
        db.store.case_of_bundle("uvg-1").await.unwrap(),
        Some(case_id.clone())
    );
    assert_eq!(db.store.case_of_bundle("uvg-unknown").await.unwrap(), None);

    let draft = db
        .store
        .current_draft(&case_id)
        .await
        .unwrap()
        .expect("a draft");
    assert_eq!(draft.draft_id, draft_id);
    assert_eq!(draft.status, "pending_review");
    assert_eq!(draft.kind, "letter");
    assert_eq!(draft.body, json!({"items": ["meldebescheinigung"]}));

    let cases = db.store.list_cases().await.unwrap();
    assert_eq!(cases.len(), 1);
    assert_eq!(cases[0].case_id, case_id);
    assert_eq!(cases[0].bundle_ids, vec!["uvg-1".to_owned()]);
    assert_eq!(cases[0].verdict, "incomplete");
    assert_eq!(cases[0].review_status, "pending_review");
    assert_eq!(cases[0].current_draft_id, Some(draft_id));
    assert_eq!(cases[0].tenant.as_deref(), Some("lk-musterstadt"));

    let manifests = db.store.case_manifests(&case_id).await.unwrap();
    assert_eq!(manifests, vec![bundle("uvg-1", None).manifest]);
    // Manifest order, not document_id order ("d10" sorts before "d2").
    let documents = db.store.case_documents(&case_id).await.unwrap();
    assert_eq!(document_ids(&documents), ["d2", "d10", "d1"]);
    assert_eq!(documents[0], bundle("uvg-1", None).documents[0]);
}

async fn a_redelivered_bundle_is_recorded_once(db: TestDb) {
    let first = db
        .store
        .record_bundle(&bundle("uvg-1", None))
        .await
        .unwrap();
    let RecordOutcome::Recorded { case_id, .. } = first else {
        panic!("{first:?}")
    };

    let again = db
        .store
        .record_bundle(&bundle("uvg-1", None))
        .await
        .unwrap();

    assert_eq!(again, RecordOutcome::AlreadyRecorded { case_id });
    assert_eq!(db.count(Table::Cases).await, 1);
    assert_eq!(db.count(Table::Bundles).await, 1);
    assert_eq!(db.count(Table::Drafts).await, 1);
    assert_eq!(db.count(Table::AuditLog).await, 2);
}

async fn a_late_bundle_supersedes_the_pending_draft_and_bumps_the_version(db: TestDb) {
    let first = db
        .store
        .record_bundle(&bundle("uvg-1", None))
        .await
        .unwrap();
    let RecordOutcome::Recorded {
        case_id,
        draft_id: first_draft,
        ..
    } = first
    else {
        panic!("{first:?}")
    };
    let mut late = bundle("uvg-2", Some(&case_id));
    late.verdict = "complete".into();
    late.draft.kind = "ready_for_processing".into();
    late.documents.truncate(1);
    late.documents[0].document_id = "late".into();

    let outcome = db.store.record_bundle(&late).await.unwrap();

    let RecordOutcome::Recorded {
        case_id: same_case,
        draft_id,
        draft_version,
    } = outcome
    else {
        panic!("{outcome:?}")
    };
    assert_eq!(same_case, case_id);
    assert_eq!(draft_version, 2);
    assert_ne!(draft_id, first_draft);
    let current = db.store.current_draft(&case_id).await.unwrap().unwrap();
    assert_eq!((current.draft_id, current.version), (draft_id, 2));
    assert_eq!(current.status, "pending_review");
    assert_eq!(db.count(Table::PendingDrafts).await, 1);
    assert_eq!(db.count(Table::SupersededDrafts).await, 1);

    let cases = db.store.list_cases().await.unwrap();
    assert_eq!(cases.len(), 1);
    assert_eq!(cases[0].bundle_ids, ["uvg-1", "uvg-2"]);
    assert_eq!(cases[0].verdict, "complete");
    assert_eq!(cases[0].current_draft_id, Some(draft_id));
    let manifests = db.store.case_manifests(&case_id).await.unwrap();
    assert_eq!(manifests[0]["bundle_id"], "uvg-1");
    assert_eq!(manifests[1]["bundle_id"], "uvg-2");
    let documents = db.store.case_documents(&case_id).await.unwrap();
    assert_eq!(document_ids(&documents), ["d2", "d10", "d1", "late"]);
    assert!(db.store.verify_audit_chain().await.unwrap().is_intact());
}

async fn a_bundle_naming_an_unknown_case_is_not_found_and_writes_nothing(db: TestDb) {
    let result = db
        .store
        .record_bundle(&bundle("uvg-1", Some("case-doesnotexist")))
        .await;

    assert!(matches!(result, Err(StoreError::NotFound(_))), "{result:?}");
    assert_eq!(db.count(Table::Bundles).await, 0);
    assert_eq!(db.count(Table::AuditLog).await, 0);
    assert_eq!(db.store.case_of_bundle("uvg-1").await.unwrap(), None);
}

async fn a_late_bundle_from_another_tenant_is_a_conflict(db: TestDb) {
    let first = db
        .store
        .record_bundle(&bundle("uvg-1", None))
        .await
        .unwrap();
    let RecordOutcome::Recorded { case_id, .. } = first else {
        panic!("{first:?}")
    };
    let mut foreign = bundle("uvg-2", Some(&case_id));
    foreign.tenant = Some("lk-anderswo".into());

    let result = db.store.record_bundle(&foreign).await;

    assert!(matches!(result, Err(StoreError::Conflict(_))), "{result:?}");
    assert_eq!(db.count(Table::Bundles).await, 1);
    assert_eq!(db.count(Table::Drafts).await, 1);
}

async fn eight_workers_recording_the_same_bundle_at_once_make_one_case_and_one_draft(db: TestDb) {
    // Each task opens its own store (own pool), like separate worker replicas.
    let barrier = Arc::new(Barrier::new(8));
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let url = db.url.clone();
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            let store = store::connect(&url).await.expect("connect");
            barrier.wait().await;
            store.record_bundle(&bundle("uvg-race", None)).await
        }));
    }
    let mut outcomes = Vec::new();
    for task in tasks {
        outcomes.push(task.await.unwrap().expect("no worker fails on a duplicate"));
    }

    let recorded: Vec<_> = outcomes
        .iter()
        .filter(|o| matches!(o, RecordOutcome::Recorded { .. }))
        .collect();
    assert_eq!(recorded.len(), 1, "{outcomes:?}");
    let case_ids: BTreeSet<&str> = outcomes
        .iter()
        .map(|o| match o {
            RecordOutcome::Recorded { case_id, .. }
            | RecordOutcome::AlreadyRecorded { case_id } => case_id.as_str(),
        })
        .collect();
    assert_eq!(case_ids.len(), 1, "{outcomes:?}");
    assert_eq!(db.count(Table::Cases).await, 1);
    assert_eq!(db.count(Table::Bundles).await, 1);
    assert_eq!(db.count(Table::Drafts).await, 1);
    assert_eq!(db.store.pending_events(100).await.unwrap().len(), 2);
    let check = db.store.verify_audit_chain().await.unwrap();
    assert_eq!((check.entries, check.first_broken), (2, None));
}

async fn concurrent_late_bundles_for_one_case_get_distinct_versions_and_one_pending_draft(
    db: TestDb,
) {
    let first = db
        .store
        .record_bundle(&bundle("uvg-0", None))
        .await
        .unwrap();
    let RecordOutcome::Recorded { case_id, .. } = first else {
        panic!("{first:?}")
    };
    let barrier = Arc::new(Barrier::new(8));
    let mut tasks = Vec::new();
    for i in 1..=8 {
        let url = db.url.clone();
        let barrier = barrier.clone();
        let late = bundle(&format!("uvg-{i}"), Some(&case_id));
        tasks.push(tokio::spawn(async move {
            let store = store::connect(&url).await.expect("connect");
            barrier.wait().await;
            store.record_bundle(&late).await
        }));
    }
    let mut versions = BTreeSet::new();
    for task in tasks {
        match task.await.unwrap().expect("late bundle recorded") {
            RecordOutcome::Recorded { draft_version, .. } => versions.insert(draft_version),
            other => panic!("{other:?}"),
        };
    }

    assert_eq!(versions, (2..=9).collect());
    assert_eq!(db.count(Table::PendingDrafts).await, 1);
    assert_eq!(
        db.store
            .current_draft(&case_id)
            .await
            .unwrap()
            .unwrap()
            .version,
        9
    );
    let check = db.store.verify_audit_chain().await.unwrap();
    assert_eq!((check.entries, check.first_broken), (18, None));
}

async fn the_audit_chain_verifies_and_reveals_a_tampered_entry(db: TestDb) {
    let first = db
        .store
        .record_bundle(&bundle("uvg-1", None))
        .await
        .unwrap();
    let RecordOutcome::Recorded { case_id, .. } = first else {
        panic!("{first:?}")
    };
    db.store
        .record_bundle(&bundle("uvg-2", Some(&case_id)))
        .await
        .unwrap();
    let check = db.store.verify_audit_chain().await.unwrap();
    assert_eq!((check.entries, check.first_broken), (4, None));

    assert!(
        db.update_audit_detail(3).await.is_err(),
        "the audit log is append-only"
    );
    db.tamper_with_audit_detail(3).await;

    let check = db.store.verify_audit_chain().await.unwrap();
    assert_eq!((check.entries, check.first_broken), (4, Some(3)));
    assert!(!check.is_intact());
}

async fn audit_entries_hold_ids_and_hashes_but_no_personal_data(db: TestDb) {
    let result = bundle("uvg-1", None);
    db.store.record_bundle(&result).await.unwrap();

    let details = db.audit_details().await;

    assert_eq!(details.len(), 2);
    for detail in &details {
        for personal in ["Beispiel", "Anna", "Lindenweg", "Geburtsurkunde"] {
            assert!(!detail.contains(personal), "{personal} in {detail}");
        }
    }
    assert!(
        details[0].contains(&result.documents[0].sha256),
        "{}",
        details[0]
    );
}

async fn cases_are_listed_most_recently_updated_first(db: TestDb) {
    let mut case_of = std::collections::HashMap::new();
    for id in ["uvg-a", "uvg-b", "uvg-c"] {
        match db.store.record_bundle(&bundle(id, None)).await.unwrap() {
            RecordOutcome::Recorded { case_id, .. } => case_of.insert(id, case_id),
            other => panic!("{other:?}"),
        };
    }
    // A late bundle makes the oldest case the most recently updated.
    db.store
        .record_bundle(&bundle("uvg-a2", Some(&case_of["uvg-a"])))
        .await
        .unwrap();

    let listed: Vec<String> = db
        .store
        .list_cases()
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.case_id)
        .collect();

    assert_eq!(
        listed,
        [&*case_of["uvg-a"], &*case_of["uvg-c"], &*case_of["uvg-b"]]
    );
}

async fn a_recorded_bundle_leaves_its_events_in_the_outbox_until_they_are_published(db: TestDb) {
    db.store
        .record_bundle(&bundle("uvg-1", None))
        .await
        .unwrap();
    // A redelivery announces nothing new.
    db.store
        .record_bundle(&bundle("uvg-1", None))
        .await
        .unwrap();

    let events = db.store.pending_events(10).await.unwrap();

    let types: Vec<&str> = events.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(types, ["bundle.checked", "draft.ready"]);
    assert_eq!(events[0].payload["verdict"], "incomplete");
    assert!(!events[0].payload.to_string().contains("Beispiel"));
    db.store.mark_event_published(events[0].id).await.unwrap();
    db.store.mark_event_published(events[0].id).await.unwrap();
    let left = db.store.pending_events(10).await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].event_type, "draft.ready");
}

async fn relays_claiming_at_once_never_get_the_same_event(db: TestDb) {
    for i in 0..20 {
        db.store.record_bundle(&bundle(&format!("uvg-{i}"), None)).await.unwrap();
    }
    let barrier = Arc::new(Barrier::new(8));
    let mut relays = Vec::new();
    for r in 0..8 {
        let store = db.store.clone();
        let barrier = barrier.clone();
        relays.push(tokio::spawn(async move {
            barrier.wait().await;
            let mut mine = Vec::new();
            loop {
                let batch = store.claim_events(&format!("relay-{r}"), 3, Duration::from_secs(60)).await.unwrap();
                if batch.is_empty() {
                    return mine;
                }
                mine.extend(batch.into_iter().map(|e| e.id));
            }
        }));
    }
    let mut all = Vec::new();
    for relay in relays {
        all.extend(relay.await.unwrap());
    }

    let distinct: BTreeSet<i64> = all.iter().copied().collect();
    assert_eq!(distinct.len(), all.len(), "an event was claimed twice: {all:?}");
    assert_eq!(distinct.len(), 40, "two events per bundle, every one claimed once");
}

async fn a_claimed_event_is_offered_again_only_after_its_lease_runs_out(db: TestDb) {
    db.store.record_bundle(&bundle("uvg-1", None)).await.unwrap();

    let first = db.store.claim_events("relay-a", 10, Duration::from_secs(60)).await.unwrap();
    let while_held = db.store.claim_events("relay-b", 10, Duration::from_secs(60)).await.unwrap();
    let by_the_holder = db.store.claim_events("relay-a", 10, Duration::from_secs(60)).await.unwrap();

    assert_eq!(first.iter().map(|e| e.event_type.as_str()).collect::<Vec<_>>(), ["bundle.checked", "draft.ready"]);
    assert!(while_held.is_empty(), "held by relay-a");
    assert!(by_the_holder.is_empty(), "a held claim is skipped by its holder too, so events nobody can route do not block the rest");

    // A relay that died: its claim runs out and another relay takes over.
    db.store.mark_event_published(first[0].id).await.unwrap();
    expire_claims(&db).await;
    let taken_over = db.store.claim_events("relay-c", 10, Duration::from_secs(60)).await.unwrap();
    assert_eq!(taken_over.len(), 1, "the published event is never offered again");
    assert_eq!(taken_over[0].event_type, "draft.ready");
}

async fn the_outbox_backlog_counts_the_events_not_yet_published(db: TestDb) {
    assert_eq!(db.store.outbox_backlog().await.unwrap(), 0);
    db.store.record_bundle(&bundle("uvg-1", None)).await.unwrap();
    db.store.record_bundle(&bundle("uvg-2", None)).await.unwrap();
    let claimed = db.store.claim_events("relay-a", 1, Duration::from_secs(60)).await.unwrap();

    assert_eq!(db.store.outbox_backlog().await.unwrap(), 4, "a claim is not a publication");
    db.store.mark_event_published(claimed[0].id).await.unwrap();
    assert_eq!(db.store.outbox_backlog().await.unwrap(), 3);
}

async fn unfinished_processing_starts_are_counted_until_one_finishes(db: TestDb) {
    let key = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

    let first = db.store.begin_attempt(key).await.unwrap();
    // The worker died: the next start sees one that never finished.
    let second = db.store.begin_attempt(key).await.unwrap();
    let other = db.store.begin_attempt("another message").await.unwrap();
    db.store.end_attempt(key).await.unwrap();
    let after_finishing = db.store.begin_attempt(key).await.unwrap();
    db.store.end_attempt("never started").await.unwrap();

    assert_eq!((first, second, other, after_finishing), (0, 1, 0, 0));
}

/// Moves every outbox claim into the past, as if their leases had run out.
async fn expire_claims(db: &TestDb) {
    match db.backend {
        Backend::Sqlite => {
            let pool = SqlitePoolOptions::new().connect(&db.url).await.unwrap();
            sqlx::query("UPDATE outbox SET claimed_until = '2000-01-01T00:00:00.000000Z' WHERE claimed_until IS NOT NULL")
                .execute(&pool)
                .await
                .unwrap();
            pool.close().await;
        }
        Backend::Postgres => {
            let pool = PgPoolOptions::new().connect(&db.url).await.unwrap();
            sqlx::query("UPDATE outbox SET claimed_until = now() - interval '1 hour' WHERE claimed_until IS NOT NULL")
                .execute(&pool)
                .await
                .unwrap();
            pool.close().await;
        }
    }
}

// Not part of the suite: it needs no database.
#[tokio::test]
async fn a_postgres_server_that_cannot_be_reached_is_unavailable() {
    // Port 1 is reserved and closed, so the connection is refused at once.
    let result = store::connect("postgres://postgres@127.0.0.1:1/nachweis").await;

    let error = result.err().expect("connecting to a closed port fails");
    assert!(error.is_transient(), "{error:?}");
}

// ---------------------------------------------------------------------------
// Fixtures.
// ---------------------------------------------------------------------------

/// A processed bundle as the worker would hand it to the store: an
/// incomplete UVG application from one applicant with three documents.
fn bundle(bundle_id: &str, case_id: Option<&str>) -> BundleResult {
    let documents = ["d2", "d10", "d1"]
        .iter()
        .map(|id| StoredDocument {
            document_id: (*id).to_owned(),
            filename: format!("{id}.pdf"),
            media_type: "application/pdf".into(),
            sha256: format!("{:0>64}", format!("{bundle_id}{id}").len()),
            declared_type: Some("geburtsurkunde".into()),
            location: Some(format!("{bundle_id}/{id}.pdf")),
            extracted: json!({"pages": [{"text": "Geburtsurkunde Lena Beispiel", "source": "ocr"}]}),
        })
        .collect();
    BundleResult {
        bundle_id: bundle_id.to_owned(),
        case_id: case_id.map(str::to_owned),
        procedure: "uvg".into(),
        tenant: Some("lk-musterstadt".into()),
        schema_version: "uvg@2026-11".into(),
        received_at: "2026-11-20T09:14:00Z".parse().unwrap(),
        verdict: "incomplete".into(),
        manifest: json!({
            "bundle_id": bundle_id,
            "procedure": "uvg",
            "applicant": {"given_name": "Anna", "family_name": "Beispiel",
                          "address": {"street": "Lindenweg 4", "postal_code": "12345", "city": "Musterstadt"}},
        }),
        report: json!({"bundle_id": bundle_id, "verdict": "incomplete", "requirements": []}),
        documents,
        draft: NewDraft {
            kind: "letter".into(),
            text: "Sehr geehrte Frau Beispiel, es fehlt die Meldebescheinigung.".into(),
            body: json!({"items": ["meldebescheinigung"]}),
        },
    }
}

fn document_ids(documents: &[StoredDocument]) -> Vec<&str> {
    documents.iter().map(|d| d.document_id.as_str()).collect()
}

// ---------------------------------------------------------------------------
// Harness: one fresh database per test, and raw SQL for what the trait hides.
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy)]
enum Backend {
    Sqlite,
    Postgres,
}

/// What a suite function gets: the store under test, its URL (to open more
/// stores, as more workers would) and raw access for counting and tampering.
struct TestDb {
    backend: Backend,
    url: String,
    store: Arc<dyn Store>,
}

/// What `TestDb::count` can count.
#[derive(Debug, Clone, Copy)]
enum Table {
    Cases,
    Bundles,
    Drafts,
    PendingDrafts,
    SupersededDrafts,
    AuditLog,
}

impl Table {
    fn count_query(self) -> &'static str {
        match self {
            Table::Cases => "SELECT COUNT(*) FROM cases",
            Table::Bundles => "SELECT COUNT(*) FROM bundles",
            Table::Drafts => "SELECT COUNT(*) FROM drafts",
            Table::PendingDrafts => "SELECT COUNT(*) FROM drafts WHERE status = 'pending_review'",
            Table::SupersededDrafts => "SELECT COUNT(*) FROM drafts WHERE status = 'superseded'",
            Table::AuditLog => "SELECT COUNT(*) FROM audit_log",
        }
    }
}

impl Backend {
    /// Runs one suite function on a fresh database of this backend and
    /// removes the database afterwards, also when the test panics.
    async fn run<F, Fut>(self, test: F)
    where
        F: FnOnce(TestDb) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        match self {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                // The file does not exist yet: connecting must create it.
                let url = format!("sqlite://{}", dir.path().join("nachweis.sqlite").display());
                let store = store::connect(&url).await.expect("open SQLite store");
                let outcome = tokio::spawn(test(TestDb {
                    backend: self,
                    url,
                    store,
                }))
                .await;
                drop(dir);
                if let Err(error) = outcome {
                    std::panic::resume_unwind(error.into_panic());
                }
            }
            Backend::Postgres => {
                let admin_url = std::env::var("NACHWEIS_TEST_POSTGRES_URL")
                    .unwrap_or_else(|_| DEFAULT_POSTGRES_URL.to_owned());
                let admin = PgPoolOptions::new()
                    .max_connections(1)
                    .acquire_timeout(Duration::from_secs(5))
                    .connect(&admin_url)
                    .await
                    .unwrap_or_else(|error| {
                        panic!(
                            "PostgreSQL at {admin_url} is unreachable ({error}). \
                             Start it with `{START_POSTGRES}` \
                             or point NACHWEIS_TEST_POSTGRES_URL at a server you may create databases on."
                        )
                    });
                let name = unique_database_name();
                // The name is ours (letters, digits, underscores), not input.
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .execute(&admin)
                    .await
                    .expect("create test database");
                let url = with_database(&admin_url, &name);
                let outcome = match store::connect(&url).await {
                    Ok(store) => {
                        tokio::spawn(test(TestDb {
                            backend: self,
                            url,
                            store,
                        }))
                        .await
                    }
                    Err(error) => {
                        tokio::spawn(async move { panic!("open Postgres store: {error}") }).await
                    }
                };
                // FORCE ends the pools the test left open.
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE {name} WITH (FORCE)"
                )))
                .execute(&admin)
                .await
                .expect("drop test database");
                admin.close().await;
                if let Err(error) = outcome {
                    std::panic::resume_unwind(error.into_panic());
                }
            }
        }
    }
}

impl TestDb {
    async fn sqlite(&self) -> SqlitePool {
        SqlitePoolOptions::new()
            .max_connections(1)
            .connect(&self.url)
            .await
            .expect("raw SQLite")
    }

    async fn postgres(&self) -> PgPool {
        PgPoolOptions::new()
            .max_connections(1)
            .connect(&self.url)
            .await
            .expect("raw Postgres")
    }

    async fn count(&self, table: Table) -> i64 {
        match self.backend {
            Backend::Sqlite => {
                sqlx::query_scalar::<_, i64>(table.count_query())
                    .fetch_one(&self.sqlite().await)
                    .await
            }
            Backend::Postgres => {
                sqlx::query_scalar::<_, i64>(table.count_query())
                    .fetch_one(&self.postgres().await)
                    .await
            }
        }
        .expect("count rows")
    }

    /// The audit entries' details as stored text, oldest first.
    async fn audit_details(&self) -> Vec<String> {
        match self.backend {
            Backend::Sqlite => {
                sqlx::query_scalar("SELECT detail FROM audit_log ORDER BY id")
                    .fetch_all(&self.sqlite().await)
                    .await
            }
            Backend::Postgres => {
                sqlx::query_scalar("SELECT detail::text FROM audit_log ORDER BY id")
                    .fetch_all(&self.postgres().await)
                    .await
            }
        }
        .expect("read audit details")
    }

    /// Tries an ordinary UPDATE of an audit entry, as a careless admin would.
    async fn update_audit_detail(&self, id: i64) -> Result<(), sqlx::Error> {
        let sql = "UPDATE audit_log SET detail = '{}' WHERE id = $1";
        match self.backend {
            Backend::Sqlite => sqlx::query(sql)
                .bind(id)
                .execute(&self.sqlite().await)
                .await
                .map(drop),
            Backend::Postgres => sqlx::query(sql)
                .bind(id)
                .execute(&self.postgres().await)
                .await
                .map(drop),
        }
    }

    /// Rewrites an audit entry's verdict behind the store's back, as someone
    /// with owner rights could: first remove the append-only guard.
    async fn tamper_with_audit_detail(&self, id: i64) {
        match self.backend {
            Backend::Sqlite => {
                let pool = self.sqlite().await;
                sqlx::raw_sql("DROP TRIGGER audit_log_no_update")
                    .execute(&pool)
                    .await
                    .unwrap();
                let done = sqlx::query(
                    "UPDATE audit_log SET detail = json_set(detail, '$.kind', 'tampered') WHERE id = $1",
                )
                .bind(id)
                .execute(&pool)
                .await
                .unwrap();
                assert_eq!(done.rows_affected(), 1);
            }
            Backend::Postgres => {
                let pool = self.postgres().await;
                sqlx::raw_sql("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only")
                    .execute(&pool)
                    .await
                    .unwrap();
                let done = sqlx::query(
                    r#"UPDATE audit_log SET detail = jsonb_set(detail, '{kind}', '"tampered"') WHERE id = $1"#,
                )
                .bind(id)
                .execute(&pool)
                .await
                .unwrap();
                assert_eq!(done.rows_affected(), 1);
            }
        }
    }
}

/// `nachweis_test_` plus a value unique to this process and moment.
fn unique_database_name() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = Utc::now().timestamp_nanos_opt().unwrap_or_default() as u64;
    let seed = format!(
        "{}-{nanos}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    let digest = <sha2::Sha256 as sha2::Digest>::digest(seed.as_bytes());
    format!("nachweis_test_{}", &hex::encode(digest)[..16])
}

/// The admin URL with its database replaced by `name` (query kept).
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let host_start = base.find("://").map_or(0, |i| i + 3);
    let base = match base[host_start..].find('/') {
        Some(slash) => &base[..host_start + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{base}/{name}?{query}"),
        None => format!("{base}/{name}"),
    }
}

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
use std::time::Duration;

use chrono::Utc;
use nachweis::store::review::{
    AssigneeFilter, ClaimOutcome, Decision, DecisionOutcome, DraftChange, NewDraftVersion, QueuePage, QueueQuery,
    QueueSort, Role, Scope, Session, SessionKind, StatusFilter, User,
};
use nachweis::store::{
    self, BundleResult, NewDraft, RecordOutcome, Store, StoreError, StoredDocument,
};
use serde_json::json;
use sqlx::postgres::PgPoolOptions;
use sqlx::sqlite::SqlitePoolOptions;
use sqlx::{PgPool, SqlitePool};
use tokio::sync::Barrier;

#[path = "support/postgres.rs"]
mod pg;
use pg::{DEFAULT_POSTGRES_URL, unique_database_name, with_database};
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
    accounts_sessions_and_sign_in_throttling_work,
    a_case_claimed_by_a_colleague_is_only_taken_over_on_purpose,
    approving_one_draft_at_once_from_many_requests_releases_one_letter_and_one_event,
    an_edit_makes_a_new_version_and_a_stale_edit_changes_nothing,
    a_correction_is_recorded_with_the_rechecked_draft_and_audited,
    cases_of_another_tenant_are_invisible_to_every_review_query,
    the_review_queue_filters_sorts_and_counts,
    a_complete_case_is_closed_and_a_rejection_keeps_its_reason,
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
    // The bytes are kept apart (by hash) and not read back with the metadata.
    let mut sent = bundle("uvg-1", None).documents[0].clone();
    assert!(sent.content.take().is_some());
    assert_eq!(documents[0], sent);
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

// ---------------------------------------------------------------------------
// The review side (`ReviewStore`).
// ---------------------------------------------------------------------------

const TENANT: &str = "lk-musterstadt";

fn scope() -> Scope<'static> {
    Scope { tenant: TENANT, default_tenant: "lk-default" }
}

fn user(name: &str, tenant: &str, role: Role) -> User {
    User {
        username: name.to_owned(),
        display_name: format!("{name} (Test)"),
        tenant: tenant.to_owned(),
        role,
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA".into(),
        disabled: false,
        created_at: "2026-11-20T09:00:00Z".parse().unwrap(),
    }
}

async fn recorded_case(db: &TestDb, bundle_id: &str) -> (String, i64) {
    match db.store.record_bundle(&bundle(bundle_id, None)).await.unwrap() {
        RecordOutcome::Recorded { case_id, draft_id, .. } => (case_id, draft_id),
        other => panic!("{other:?}"),
    }
}

fn edit(case_id: &str, replaces: i64, actor: &str, text: &str) -> NewDraftVersion {
    NewDraftVersion {
        case_id: case_id.to_owned(),
        replaces,
        actor: actor.to_owned(),
        kind: "letter".into(),
        text: text.to_owned(),
        body: json!({"items": ["meldebescheinigung"]}),
        report: json!({"verdict": "incomplete", "requirements": []}),
        verdict: "incomplete".into(),
        schema_version: "uvg@2026-11".into(),
        change: DraftChange::Edit { diff: format!("-alt\n+{text}\n") },
    }
}

async fn accounts_sessions_and_sign_in_throttling_work(db: TestDb) {
    let anna = user("anna", TENANT, Role::Caseworker);
    db.store.add_user(&anna).await.unwrap();
    let again = db.store.add_user(&anna).await.unwrap_err();
    assert!(matches!(again, StoreError::Conflict(_)), "{again:?}");
    assert_eq!(db.store.user("anna").await.unwrap().unwrap().role, Role::Caseworker);
    assert_eq!(db.store.user("nobody").await.unwrap(), None);

    let now: chrono::DateTime<Utc> = "2026-11-21T10:00:00Z".parse().unwrap();
    let session = Session {
        token_hash: "h1".into(),
        kind: SessionKind::Browser,
        csrf_token: "csrf".into(),
        label: None,
        created_at: now,
        last_seen_at: now,
        expires_at: now + chrono::Duration::hours(8),
        user: anna.clone(),
    };
    db.store.create_session(&session).await.unwrap();
    let found = db.store.session("h1", now + chrono::Duration::hours(1)).await.unwrap().expect("live session");
    assert_eq!(found.user.username, "anna");
    assert_eq!(found.csrf_token, "csrf");
    assert_eq!(db.store.session("h1", now + chrono::Duration::hours(9)).await.unwrap(), None, "expired");
    assert_eq!(db.store.session("other", now).await.unwrap(), None);

    db.store.set_disabled("anna", true).await.unwrap();
    assert_eq!(db.store.session("h1", now).await.unwrap(), None, "disabling ends sessions");
    db.store.set_disabled("anna", false).await.unwrap();
    assert!(matches!(db.store.set_password("nobody", "x").await, Err(StoreError::NotFound(_))));

    let window = chrono::Duration::minutes(15);
    let lock = chrono::Duration::minutes(1);
    for i in 1..=4 {
        let state = db.store.register_failure("user:anna", now, window, 5, lock).await.unwrap();
        assert_eq!((state.failures, state.locked_until), (i, None));
    }
    let fifth = db.store.register_failure("user:anna", now, window, 5, lock).await.unwrap();
    assert_eq!(fifth.locked_until, Some(now + lock));
    let sixth = db.store.register_failure("user:anna", now, window, 5, lock).await.unwrap();
    assert_eq!(sixth.locked_until, Some(now + lock * 2), "locks double");
    assert_eq!(db.store.throttle_state("user:anna").await.unwrap().failures, 6);
    // A failure after the window starts counting afresh.
    let later = db.store.register_failure("user:anna", now + window * 2, window, 5, lock).await.unwrap();
    assert_eq!((later.failures, later.locked_until), (1, None));
    db.store.clear_failures("user:anna").await.unwrap();
    assert_eq!(db.store.throttle_state("user:anna").await.unwrap().failures, 0);
}

async fn a_case_claimed_by_a_colleague_is_only_taken_over_on_purpose(db: TestDb) {
    let (case_id, _) = recorded_case(&db, "uvg-1").await;
    assert_eq!(db.store.claim_case(scope(), &case_id, "anna", false).await.unwrap(), ClaimOutcome::Claimed);
    assert_eq!(db.store.claim_case(scope(), &case_id, "anna", false).await.unwrap(), ClaimOutcome::AlreadyYours);
    assert_eq!(
        db.store.claim_case(scope(), &case_id, "ben", false).await.unwrap(),
        ClaimOutcome::HeldBy { username: "anna".into() }
    );
    let detail = db.store.case_detail(scope(), &case_id).await.unwrap().unwrap();
    assert_eq!(detail.case.assignee.as_deref(), Some("anna"));
    assert_eq!(db.store.claim_case(scope(), &case_id, "ben", true).await.unwrap(), ClaimOutcome::Claimed);
    assert!(!db.store.release_case(scope(), &case_id, "anna").await.unwrap(), "anna no longer holds it");
    assert!(db.store.release_case(scope(), &case_id, "ben").await.unwrap());

    // Eight colleagues claiming a free case at once: exactly one gets it.
    let barrier = Arc::new(Barrier::new(8));
    let mut tasks = Vec::new();
    for i in 0..8 {
        let store = store::connect(&db.url).await.unwrap();
        let (barrier, case_id) = (barrier.clone(), case_id.clone());
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            store.claim_case(scope(), &case_id, &format!("sb{i}"), false).await.unwrap()
        }));
    }
    let mut claimed = 0;
    for t in tasks {
        if t.await.unwrap() == ClaimOutcome::Claimed {
            claimed += 1;
        }
    }
    assert_eq!(claimed, 1);
    let check = db.store.verify_audit_chain().await.unwrap();
    assert!(check.is_intact(), "{check:?}");
}

async fn approving_one_draft_at_once_from_many_requests_releases_one_letter_and_one_event(db: TestDb) {
    let (case_id, draft_id) = recorded_case(&db, "uvg-1").await;
    let pdf = b"%PDF-1.7 letter".to_vec();
    let approve = Decision::Approve { pdf: pdf.clone(), sha256: "abc".into() };
    // Not claimed: nothing happens.
    assert_eq!(
        db.store.decide(scope(), &case_id, draft_id, "anna", &approve).await.unwrap(),
        DecisionOutcome::NotAssignee { assignee: None }
    );
    db.store.claim_case(scope(), &case_id, "anna", false).await.unwrap();

    let barrier = Arc::new(Barrier::new(8));
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let store = store::connect(&db.url).await.unwrap();
        let (barrier, case_id, approve) = (barrier.clone(), case_id.clone(), approve.clone());
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            store.decide(scope(), &case_id, draft_id, "anna", &approve).await.unwrap()
        }));
    }
    let mut outcomes = Vec::new();
    for t in tasks {
        outcomes.push(t.await.unwrap());
    }
    assert_eq!(outcomes.iter().filter(|o| matches!(o, DecisionOutcome::Done { .. })).count(), 1, "{outcomes:?}");
    assert!(outcomes.iter().all(|o| matches!(o, DecisionOutcome::Done { .. } | DecisionOutcome::AlreadyDecided { .. })), "{outcomes:?}");
    // A double click later changes nothing either.
    assert_eq!(
        db.store.decide(scope(), &case_id, draft_id, "anna", &approve).await.unwrap(),
        DecisionOutcome::AlreadyDecided { status: "approved".into() }
    );
    assert_eq!(db.count(Table::Letters).await, 1);
    assert_eq!(db.count(Table::LetterEvents).await, 1);
    assert_eq!(db.store.letter_pdf(scope(), &case_id, draft_id).await.unwrap(), Some(pdf));
    let detail = db.store.case_detail(scope(), &case_id).await.unwrap().unwrap();
    assert_eq!(detail.case.review_status, "approved");
    assert_eq!(detail.drafts[0].decided_by.as_deref(), Some("anna"));
    let events = db.store.pending_events(10).await.unwrap();
    let letter = events.iter().find(|e| e.event_type == "letter.approved").expect("letter.approved event");
    assert_eq!(letter.payload["letter_sha256"], "abc");
    assert!(!letter.payload.to_string().contains("Beispiel"));
    let (audit, _) = db.store.case_audit(scope(), &case_id).await.unwrap();
    let approvals: Vec<_> = audit.iter().filter(|e| e.action == "draft_approved").collect();
    assert_eq!(approvals.len(), 1);
    assert_eq!(approvals[0].actor, "anna");
    assert_eq!(approvals[0].detail["letter_sha256"], "abc");
    assert_eq!(approvals[0].detail["documents"].as_array().unwrap().len(), 3, "document hashes are in the entry");
    assert!(db.store.verify_audit_chain().await.unwrap().is_intact());
}

async fn an_edit_makes_a_new_version_and_a_stale_edit_changes_nothing(db: TestDb) {
    let (case_id, first) = recorded_case(&db, "uvg-1").await;
    assert_eq!(
        db.store.save_draft_version(scope(), &edit(&case_id, first, "anna", "neu")).await.unwrap(),
        DecisionOutcome::NotAssignee { assignee: None }
    );
    db.store.claim_case(scope(), &case_id, "anna", false).await.unwrap();
    let DecisionOutcome::Done { draft_id: second } =
        db.store.save_draft_version(scope(), &edit(&case_id, first, "anna", "neu")).await.unwrap()
    else {
        panic!("edit not saved")
    };
    // A second tab still showing the first version.
    assert_eq!(
        db.store.save_draft_version(scope(), &edit(&case_id, first, "anna", "anders")).await.unwrap(),
        DecisionOutcome::Stale { current_draft_id: Some(second) }
    );
    assert_eq!(
        db.store.decide(scope(), &case_id, first, "anna", &Decision::Approve { pdf: vec![1], sha256: "x".into() }).await.unwrap(),
        DecisionOutcome::Stale { current_draft_id: Some(second) },
        "only the current version can be approved"
    );
    let detail = db.store.case_detail(scope(), &case_id).await.unwrap().unwrap();
    assert_eq!(detail.drafts.len(), 2);
    assert_eq!(detail.pending_draft().unwrap().text, "neu");
    assert_eq!(detail.pending_draft().unwrap().version, 2);
    assert_eq!(detail.pending_draft().unwrap().created_by, "anna");
    assert_eq!(db.count(Table::PendingDrafts).await, 1);
    let (audit, attachments) = db.store.case_audit(scope(), &case_id).await.unwrap();
    let edited = audit.iter().find(|e| e.action == "draft_edited").expect("edit audited");
    let hash = edited.detail["diff_sha256"].as_str().unwrap();
    let diff = attachments.iter().find(|(h, _)| h == hash).map(|(_, t)| t.as_str());
    assert_eq!(diff, Some("-alt\n+neu\n"));
    assert!(!edited.detail.to_string().contains("neu"), "the chained entry keeps the hash, not the text");
    // A late bundle supersedes the edited draft; the edit stays in the history.
    db.store.record_bundle(&bundle("uvg-2", Some(&case_id))).await.unwrap();
    let detail = db.store.case_detail(scope(), &case_id).await.unwrap().unwrap();
    assert_eq!(detail.pending_draft().unwrap().version, 3);
    assert_eq!(detail.drafts.iter().find(|d| d.version == 2).unwrap().status, "superseded");
    assert!(db.store.verify_audit_chain().await.unwrap().is_intact());
}

async fn a_correction_is_recorded_with_the_rechecked_draft_and_audited(db: TestDb) {
    let (case_id, first) = recorded_case(&db, "uvg-1").await;
    db.store.claim_case(scope(), &case_id, "anna", false).await.unwrap();
    let mut v = edit(&case_id, first, "anna", "neu geprüft");
    v.verdict = "complete".into();
    v.kind = "ready_for_processing".into();
    v.change = DraftChange::Correction {
        bundle_id: "uvg-1".into(),
        document_id: "d2".into(),
        first_page: 1,
        doc_type: "meldebescheinigung".into(),
        previous_type: "geburtsurkunde".into(),
    };
    assert!(matches!(db.store.save_draft_version(scope(), &v).await.unwrap(), DecisionOutcome::Done { .. }));
    assert_eq!(db.count(Table::Corrections).await, 1);
    let detail = db.store.case_detail(scope(), &case_id).await.unwrap().unwrap();
    assert_eq!(detail.case.verdict, "complete");
    assert_eq!(detail.corrections[0].doc_type, "meldebescheinigung");
    assert_eq!(detail.corrections[0].username, "anna");
    let (audit, _) = db.store.case_audit(scope(), &case_id).await.unwrap();
    let entry = audit.iter().find(|e| e.action == "segment_corrected").expect("correction audited");
    assert_eq!(entry.detail["previous_type"], "geburtsurkunde");
    assert_eq!(entry.schema_version.as_deref(), Some("uvg@2026-11"));
}

async fn cases_of_another_tenant_are_invisible_to_every_review_query(db: TestDb) {
    let (case_id, draft_id) = recorded_case(&db, "uvg-1").await;
    let other = Scope { tenant: "lk-nachbar", default_tenant: "lk-default" };
    assert_eq!(db.store.case_detail(other, &case_id).await.unwrap(), None);
    assert!(matches!(db.store.claim_case(other, &case_id, "eve", true).await, Err(StoreError::NotFound(_))));
    assert!(matches!(db.store.decide(other, &case_id, draft_id, "eve", &Decision::CloseComplete).await, Err(StoreError::NotFound(_))));
    assert!(matches!(db.store.case_audit(other, &case_id).await, Err(StoreError::NotFound(_))));
    let sha = &bundle("uvg-1", None).documents[0].sha256;
    assert!(db.store.document_content(scope(), &case_id, sha).await.unwrap().is_some());
    assert_eq!(db.store.document_content(other, &case_id, sha).await.unwrap(), None);
    assert_eq!(db.store.review_queue(other, &QueueQuery::default()).await.unwrap().total, 0);
    assert_eq!(db.store.review_queue(scope(), &QueueQuery::default()).await.unwrap().total, 1);
    // A case whose bundle named no tenant belongs to the default tenant.
    let mut untenanted = bundle("uvg-9", None);
    untenanted.tenant = None;
    db.store.record_bundle(&untenanted).await.unwrap();
    let default = Scope { tenant: "lk-default", default_tenant: "lk-default" };
    assert_eq!(db.store.review_queue(default, &QueueQuery::default()).await.unwrap().total, 1);
}

async fn the_review_queue_filters_sorts_and_counts(db: TestDb) {
    let mut ids = Vec::new();
    for (i, verdict) in ["incomplete", "complete", "needs_review", "incomplete"].iter().enumerate() {
        let mut b = bundle(&format!("uvg-{i}"), None);
        b.verdict = (*verdict).into();
        b.received_at = format!("2026-11-{:02}T09:00:00Z", 10 + i).parse().unwrap();
        if i == 3 {
            b.procedure = "wohngeld".into();
        }
        match db.store.record_bundle(&b).await.unwrap() {
            RecordOutcome::Recorded { case_id, .. } => ids.push(case_id),
            other => panic!("{other:?}"),
        }
    }
    db.store.claim_case(scope(), &ids[0], "anna", false).await.unwrap();
    let q = |f: &dyn Fn(&mut QueueQuery)| {
        let mut q = QueueQuery::default();
        f(&mut q);
        q
    };
    let list = |page: QueuePage| page.rows.into_iter().map(|r| r.case_id).collect::<Vec<_>>();
    let all = db.store.review_queue(scope(), &QueueQuery::default()).await.unwrap();
    assert_eq!(all.total, 4);
    assert_eq!(list(all), ids, "oldest received first");
    let newest = db.store.review_queue(scope(), &q(&|q| q.descending = true)).await.unwrap();
    assert_eq!(newest.rows[0].case_id, ids[3]);
    let incomplete = db.store.review_queue(scope(), &q(&|q| q.verdict = Some("incomplete".into()))).await.unwrap();
    assert_eq!(list(incomplete), [ids[0].clone(), ids[3].clone()]);
    let wohngeld = db.store.review_queue(scope(), &q(&|q| q.procedure = Some("wohngeld".into()))).await.unwrap();
    assert_eq!(list(wohngeld), [ids[3].clone()]);
    let mine = db.store.review_queue(scope(), &q(&|q| q.assignee = AssigneeFilter::User("anna".into()))).await.unwrap();
    assert_eq!(list(mine), [ids[0].clone()]);
    let free = db.store.review_queue(scope(), &q(&|q| q.assignee = AssigneeFilter::Nobody)).await.unwrap();
    assert_eq!(free.total, 3);
    let old = db.store.review_queue(scope(), &q(&|q| q.received_before = Some("2026-11-11T12:00:00Z".parse().unwrap()))).await.unwrap();
    assert_eq!(list(old), [ids[0].clone(), ids[1].clone()]);
    let page2 = db.store.review_queue(scope(), &q(&|q| { q.limit = 2; q.offset = 2; })).await.unwrap();
    assert_eq!((page2.total, list(page2)), (4, vec![ids[2].clone(), ids[3].clone()]));
    let first = &db.store.review_queue(scope(), &QueueQuery::default()).await.unwrap().rows[0];
    assert_eq!(first.draft_kind.as_deref(), Some("letter"));
    assert_eq!(first.assignee.as_deref(), Some("anna"));
    let by_verdict = db.store.review_queue(scope(), &q(&|q| q.sort = QueueSort::Verdict)).await.unwrap();
    assert_eq!(by_verdict.rows[0].verdict, "complete");
    let decided = db.store.review_queue(scope(), &q(&|q| q.status = StatusFilter::Decided)).await.unwrap();
    assert_eq!(decided.total, 0);
    // Search: by case id, bundle id, or part of the applicant's name.
    let by_id = db.store.review_queue(scope(), &q(&|q| q.search = Some(ids[2].clone()))).await.unwrap();
    assert_eq!(list(by_id), [ids[2].clone()]);
    let by_bundle = db.store.review_queue(scope(), &q(&|q| q.search = Some("uvg-1".into()))).await.unwrap();
    assert_eq!(list(by_bundle), [ids[1].clone()]);
    let by_name = db.store.review_queue(scope(), &q(&|q| q.search = Some("BEISPIEL".into()))).await.unwrap();
    assert_eq!(by_name.total, 4);
    assert_eq!(by_name.rows[0].applicant.as_deref(), Some("Anna Beispiel"));
    let wildcard = db.store.review_queue(scope(), &q(&|q| q.search = Some("%".into()))).await.unwrap();
    assert_eq!(wildcard.total, 0, "LIKE wildcards are searched literally");
}

async fn a_complete_case_is_closed_and_a_rejection_keeps_its_reason(db: TestDb) {
    let mut complete = bundle("uvg-1", None);
    complete.verdict = "complete".into();
    complete.draft.kind = "ready_for_processing".into();
    let RecordOutcome::Recorded { case_id, draft_id, .. } = db.store.record_bundle(&complete).await.unwrap() else { panic!() };
    db.store.claim_case(scope(), &case_id, "anna", false).await.unwrap();
    assert!(
        matches!(
            db.store.decide(scope(), &case_id, draft_id, "anna", &Decision::Approve { pdf: vec![1], sha256: "x".into() }).await,
            Err(StoreError::Conflict(_))
        ),
        "a review note is not a letter to send"
    );
    assert_eq!(
        db.store.decide(scope(), &case_id, draft_id, "anna", &Decision::CloseComplete).await.unwrap(),
        DecisionOutcome::Done { draft_id }
    );
    assert_eq!(db.store.case_detail(scope(), &case_id).await.unwrap().unwrap().case.review_status, "closed_complete");
    assert_eq!(db.count(Table::Letters).await, 0);

    let (other, other_draft) = recorded_case(&db, "uvg-2").await;
    db.store.claim_case(scope(), &other, "anna", false).await.unwrap();
    assert!(matches!(db.store.decide(scope(), &other, other_draft, "anna", &Decision::CloseComplete).await, Err(StoreError::Conflict(_))));
    let reject = Decision::Reject { reason: "Antrag wurde zurückgenommen".into() };
    assert_eq!(db.store.decide(scope(), &other, other_draft, "anna", &reject).await.unwrap(), DecisionOutcome::Done { draft_id: other_draft });
    let detail = db.store.case_detail(scope(), &other).await.unwrap().unwrap();
    assert_eq!(detail.case.review_status, "rejected");
    assert_eq!(detail.drafts[0].decision_note.as_deref(), Some("Antrag wurde zurückgenommen"));
    let (audit, attachments) = db.store.case_audit(scope(), &other).await.unwrap();
    let rejected = audit.iter().find(|e| e.action == "draft_rejected").unwrap();
    assert!(attachments.iter().any(|(h, t)| h == rejected.detail["reason_sha256"].as_str().unwrap() && t.contains("zurückgenommen")));
    assert!(db.store.verify_audit_chain().await.unwrap().is_intact());
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
            content: Some(format!("%PDF-1.4 {bundle_id}/{id}").into_bytes()),
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
    Letters,
    LetterEvents,
    Corrections,
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
            Table::Letters => "SELECT COUNT(*) FROM letters",
            Table::LetterEvents => "SELECT COUNT(*) FROM outbox WHERE event_type = 'letter.approved'",
            Table::Corrections => "SELECT COUNT(*) FROM corrections",
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



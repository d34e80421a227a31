//! Schema versions end to end against both databases: seeding the shipped
//! files, adding and activating versions per tenant, refusing invalid ones,
//! diff, replay over stored cases (nothing changes, the replay is audited)
//! and a running worker's reload that never serves a broken version.
//!
//! PostgreSQL as in `tests/store.rs`: `NACHWEIS_TEST_POSTGRES_URL`, default
//! `postgres://postgres@127.0.0.1:5432/postgres`, one fresh database per test.
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::NaiveDate;
use nachweis::config::Settings;
use nachweis::domain::bundle::Manifest;
use nachweis::domain::document::{ExtractedDocument, ExtractedPage, TextSource};
use nachweis::domain::schema::SourceFile;
use nachweis::domain::{self, Context};
use nachweis::schemas::{self, LiveSchemas, ReplayOptions, SchemaAdminError, SchemaSources};
use nachweis::store::{self, BundleResult, NewDraft, SchemaRegistry, Store, StoredDocument};
use serde_json::json;
use sqlx::postgres::PgPoolOptions;

#[path = "support/postgres.rs"]
mod pg;
use pg::{DEFAULT_POSTGRES_URL, unique_database_name, with_database};

macro_rules! suite {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    crate::Backend::Sqlite.run(crate::$name).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    crate::Backend::Postgres.run(crate::$name).await;
                }
            )*
        }
    };
}

suite!(
    the_shipped_schemas_are_seeded_once_as_active_first_versions,
    adding_the_same_texts_twice_stores_one_version,
    an_invalid_version_is_refused_with_located_errors_and_nothing_is_stored,
    a_version_activated_for_one_tenant_serves_only_that_tenant,
    replay_reports_changed_verdicts_without_changing_any_case,
    replay_with_the_version_a_case_was_checked_with_changes_nothing,
    a_catalogue_that_would_break_an_active_procedure_is_refused,
    diff_names_the_changed_requirement_in_words,
    a_broken_active_version_never_replaces_the_serving_one,
    workers_seeding_a_fresh_database_at_once_store_each_version_once,
    adding_only_an_overlay_keeps_the_active_base_and_serves_that_tenant,
);

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn shipped() -> SchemaSources {
    SchemaSources::read_dir(&root().join("schemas")).expect("schemas/")
}

fn uvg_text() -> String {
    std::fs::read_to_string(root().join("schemas/procedures/uvg.toml")).unwrap()
}

/// The shipped UVG schema with the school certificate from 14 and a new label.
fn uvg_from_14() -> SourceFile {
    let text = uvg_text()
        .replacen("when = { child_age_at_least = 15 }", "when = { child_age_at_least = 14 }", 1)
        .replacen("version = \"2026.11.1\"", "version = \"2026.12.1\"", 1);
    SourceFile { origin: "uvg-ab-14.toml".into(), text }
}

async fn seeded(db: &TestDb) {
    schemas::seed(db.registry.as_ref(), &shipped()).await.expect("seed");
}

async fn the_shipped_schemas_are_seeded_once_as_active_first_versions(db: TestDb) {
    let added = schemas::seed(db.registry.as_ref(), &shipped()).await.unwrap();
    assert_eq!(added, ["catalogue@1", "kita@1", "uvg@1", "wohngeld@1"]);
    assert!(schemas::seed(db.registry.as_ref(), &shipped()).await.unwrap().is_empty(), "a second start adds nothing");
    let listed = schemas::list(db.registry.as_ref()).await.unwrap();
    assert_eq!(listed.len(), 4);
    assert!(listed.iter().all(|l| l.active_for == vec![None]));
    let uvg = listed.iter().find(|l| l.version.version_id == "uvg@1").unwrap();
    assert_eq!(uvg.overlay_tenants, ["lk-nordheide"]);
    assert_eq!(uvg.version.author, "system");
    let sources = schemas::sources_of(db.registry.as_ref(), "uvg@1").await.unwrap();
    assert_eq!(sources.procedure.unwrap().text, uvg_text(), "the stored text is the file's text");
}

async fn adding_the_same_texts_twice_stores_one_version(db: TestDb) {
    seeded(&db).await;
    // Planning (the web upload's check step) validates and stores nothing.
    let planned = schemas::plan(db.registry.as_ref(), vec![uvg_from_14()], &[]).await.unwrap();
    assert_eq!((planned.len(), planned[0].subject.as_str(), planned[0].label.as_str()), (1, "uvg", "2026.12.1"));
    assert_eq!(planned[0].sources.overlays.len(), 1, "the active version's overlay comes along");
    assert_eq!(db.registry.versions(Some("uvg")).await.unwrap().len(), 1);
    let first = schemas::add(db.registry.as_ref(), vec![uvg_from_14()], &[], "Frau Admin", "ab 14").await.unwrap();
    assert_eq!((first[0].version_id.as_str(), first[0].new), ("uvg@2", true));
    let again = schemas::add(db.registry.as_ref(), vec![uvg_from_14()], &[], "Frau Admin", "nochmal").await.unwrap();
    assert_eq!((again[0].version_id.as_str(), again[0].new), ("uvg@2", false));
    let v = db.registry.version("uvg@2").await.unwrap().unwrap();
    assert_eq!((v.author.as_str(), v.comment.as_str(), v.label.as_str()), ("Frau Admin", "ab 14", "2026.12.1"));
    assert_eq!(v.content_hash.len(), 64);
    // Adding does not activate.
    let active: Vec<String> = db.registry.activations().await.unwrap().into_iter().map(|a| a.version_id).collect();
    assert_eq!(active, ["catalogue@1", "kita@1", "uvg@1", "wohngeld@1"]);
    let actions = db.audit_actions().await;
    assert_eq!(actions.iter().filter(|a| *a == "schema_added").count(), 5, "{actions:?}");
    assert_eq!(actions.iter().filter(|a| *a == "schema_activated").count(), 4, "{actions:?}");
}

async fn an_invalid_version_is_refused_with_located_errors_and_nothing_is_stored(db: TestDb) {
    seeded(&db).await;
    let broken = SourceFile {
        origin: "kaputt.toml".into(),
        text: uvg_text().replacen("accepts = [\"antrag\"]", "accepts = [\"antrga\"]", 1).replacen("{kind}", "{kind_name}", 1),
    };
    let Err(SchemaAdminError::Invalid(errors)) = schemas::add(db.registry.as_ref(), vec![broken], &[], "a", "").await else {
        panic!("an invalid schema must be refused");
    };
    let located: Vec<(String, usize)> = errors.iter().map(|e| (e.origin.clone(), e.line)).collect();
    assert!(located.contains(&("kaputt.toml".to_string(), 18)), "{errors:#?}");
    assert!(errors.iter().any(|e| e.message.contains("{kind_name}")), "{errors:#?}");
    assert_eq!(db.registry.versions(Some("uvg")).await.unwrap().len(), 1);
}

async fn a_version_activated_for_one_tenant_serves_only_that_tenant(db: TestDb) {
    seeded(&db).await;
    schemas::add(db.registry.as_ref(), vec![uvg_from_14()], &[], "a", "").await.unwrap();
    let Err(SchemaAdminError::Refused(_)) = schemas::activate(db.registry.as_ref(), "uvg@9", None, "a").await else {
        panic!("an unknown version must be refused");
    };
    schemas::activate(db.registry.as_ref(), "uvg@2", Some("lk-sued"), "Frau Admin").await.unwrap();
    let live = LiveSchemas::from(shipped().build().unwrap());
    let status = schemas::reload(&live, db.registry.as_ref()).await.unwrap();
    assert!(status.refused.is_empty(), "{:?}", status.refused);
    let set = live.current();
    assert_eq!(set.for_bundle("uvg", Some("lk-sued")).unwrap().version_id.as_deref(), Some("uvg@2"));
    assert_eq!(set.for_bundle("uvg", Some("lk-sued")).unwrap().version, "2026.12.1");
    assert_eq!(set.for_bundle("uvg", None).unwrap().version_id.as_deref(), Some("uvg@1"));
    // The overlay tenant of the default version keeps its overlay.
    assert_eq!(set.for_bundle("uvg", Some("lk-nordheide")).unwrap().version, "2026.11.1+lk-nordheide.1");
    assert_eq!(set.catalogue.version_id.as_deref(), Some("catalogue@1"));
    let actions = db.audit_actions().await;
    assert_eq!(actions.last().map(String::as_str), Some("schema_activated"));
}

/// A UVG case recorded as the worker would: held-out page texts as the
/// extraction result, checked with the active schema, stored.
async fn record_case(db: &TestDb, bundle_id: &str, birth: &str, live: &LiveSchemas) -> serde_json::Value {
    record_case_as(db, bundle_id, birth, live, false).await
}

/// `inline`: stored as intake stores a bundle whose documents came inline
/// (`content_base64` removed from the stored manifest, so no source is left).
async fn record_case_as(db: &TestDb, bundle_id: &str, birth: &str, live: &LiveSchemas, inline: bool) -> serde_json::Value {
    let files: Vec<(&str, String)> = vec![("d1", holdout_first("antrag")), ("d2", holdout_first("meldebescheinigung")), ("d3", holdout_first("ausweis"))];
    let manifest = json!({
        "bundle_id": bundle_id, "procedure": "uvg", "received_at": "2026-11-20T10:00:00Z",
        "applicant": {"given_name": "Anna", "family_name": "Beispiel"},
        "facts": {"married_to_other_parent": true, "maintenance_title_exists": false},
        "children": [{"given_name": "Lena", "family_name": "Beispiel", "birth_date": birth}],
        "documents": files.iter().map(|(id, _)| json!({"document_id": id, "filename": format!("{id}.pdf"), "media_type": "application/pdf", "path": format!("{id}.pdf")})).collect::<Vec<_>>()
    });
    let m = Manifest::from_value(&manifest).unwrap();
    let docs: Vec<ExtractedDocument> = files
        .iter()
        .map(|(id, path)| ExtractedDocument {
            document_id: id.to_string(),
            pages: vec![ExtractedPage { number: 1, text: std::fs::read_to_string(root().join("fixtures/holdout").join(path)).unwrap(), source: TextSource::TextLayer, ocr_confidence: None }],
            problem: None,
        })
        .collect();
    let set = live.current();
    let schema = set.for_bundle("uvg", None).unwrap();
    let settings = Settings::default();
    let ctx = Context { schema, catalogue: &set.catalogue, letterhead: &settings.letterhead, today: NaiveDate::from_ymd_opt(2026, 11, 23).unwrap(), case_reference: "case-x" };
    let report = domain::process(&m, &docs, &ctx);
    let mut stored_manifest = manifest.clone();
    if inline {
        for d in stored_manifest["documents"].as_array_mut().unwrap() {
            d.as_object_mut().unwrap().remove("path");
        }
    }
    let result = BundleResult {
        bundle_id: bundle_id.into(),
        case_id: None,
        procedure: "uvg".into(),
        tenant: None,
        schema_version: report.schema_version_id.clone().unwrap(),
        received_at: m.received_at,
        verdict: report.verdict.as_str().into(),
        manifest: stored_manifest,
        report: serde_json::to_value(&report).unwrap(),
        documents: docs
            .iter()
            .map(|d| StoredDocument { document_id: d.document_id.clone(), filename: "x.pdf".into(), media_type: "application/pdf".into(), sha256: "00".repeat(32), declared_type: None, location: None, extracted: serde_json::to_value(d).unwrap(), content: None })
            .collect(),
        draft: NewDraft { kind: report.draft.kind.as_str().into(), text: report.draft.text.clone(), body: json!({}) },
    };
    db.store.record_bundle(&result).await.unwrap();
    result.report
}

/// The first held-out page of a type (by index order).
fn holdout_first(kind: &str) -> String {
    let index = std::fs::read_to_string(root().join("fixtures/holdout/INDEX.tsv")).unwrap();
    index
        .lines()
        .skip(1)
        .map(|l| l.split('\t').collect::<Vec<_>>())
        .find(|c| c.get(1) == Some(&kind) && !c[0].contains("seite2"))
        .map(|c| c[0].to_string())
        .unwrap_or_else(|| panic!("no held-out page of type {kind}"))
}

async fn live_from_registry(db: &TestDb) -> LiveSchemas {
    let live = LiveSchemas::from(shipped().build().unwrap());
    schemas::reload(&live, db.registry.as_ref()).await.unwrap();
    live
}

async fn replay_reports_changed_verdicts_without_changing_any_case(db: TestDb) {
    seeded(&db).await;
    let live = live_from_registry(&db).await;
    // Lena is 14 on receipt: the school certificate is not needed from 15,
    // but is from 14. Jonas is 10: nothing changes for him.
    let lena = record_case(&db, "uvg-replay-1", "2012-06-01", &live).await;
    record_case(&db, "uvg-replay-2", "2016-06-01", &live).await;
    let added = schemas::add(db.registry.as_ref(), vec![uvg_from_14()], &[], "a", "").await.unwrap();
    let before = db.store.list_cases().await.unwrap();
    let opts = ReplayOptions { version_id: added[0].version_id.clone(), ..Default::default() };
    let report = schemas::replay(db.registry.as_ref(), &Settings::default(), &opts, "Frau Admin").await.unwrap();
    assert_eq!((report.cases_checked, report.cases_changed), (2, 1), "{report:#?}");
    let change = &report.changes[0];
    let school = change.requirements.iter().find(|r| r.key == "schulbescheinigung#0").expect("school certificate changes");
    assert_eq!((school.old.as_deref(), school.new.as_deref()), (Some("not_applicable"), Some("missing")));
    assert!(school.reason.contains("Kein Dokument gefunden"), "{}", school.reason);
    assert_eq!(change.old_schema_version, "uvg@1");
    assert_eq!(change.old_verdict, lena["verdict"].as_str().unwrap());
    assert_eq!(change.new_verdict, "incomplete");
    // Nothing about the cases changed; the replay is in the audit log.
    assert_eq!(db.store.list_cases().await.unwrap(), before);
    let case = db.store.case_of_bundle("uvg-replay-1").await.unwrap().unwrap();
    assert_eq!(db.registry.case_bundles(&case).await.unwrap()[0].report, lena);
    assert_eq!(db.audit_actions().await.last().map(String::as_str), Some("schema_replayed"));
    // --since after both cases: nothing to look at.
    let later = ReplayOptions { since: NaiveDate::from_ymd_opt(2026, 11, 21), ..opts };
    assert_eq!(schemas::replay(db.registry.as_ref(), &Settings::default(), &later, "a").await.unwrap().cases_checked, 0);
}

async fn replay_with_the_version_a_case_was_checked_with_changes_nothing(db: TestDb) {
    seeded(&db).await;
    let live = live_from_registry(&db).await;
    record_case(&db, "uvg-same-1", "2012-06-01", &live).await;
    record_case(&db, "uvg-same-2", "2010-01-01", &live).await;
    record_case_as(&db, "uvg-same-inline", "2015-01-01", &live, true).await;
    let opts = ReplayOptions { version_id: "uvg@1".into(), ..Default::default() };
    let report = schemas::replay(db.registry.as_ref(), &Settings::default(), &opts, "a").await.unwrap();
    assert!(report.skipped.is_empty(), "{:?}", report.skipped);
    assert_eq!(report.cases_checked, 3);
    assert!(report.changes.is_empty(), "the stored version reproduces its checks: {:#?}", report.changes);
}

async fn a_catalogue_that_would_break_an_active_procedure_is_refused(db: TestDb) {
    seeded(&db).await;
    let text = std::fs::read_to_string(root().join("schemas/document_types.toml")).unwrap();
    // Rename the Unterhaltstitel type: uvg.toml still asks for it.
    let broken = SourceFile { origin: "katalog.toml".into(), text: text.replace("[types.unterhaltstitel", "[types.unterhaltstitel_neu") };
    let Err(SchemaAdminError::Invalid(errors)) = schemas::add(db.registry.as_ref(), vec![broken], &[], "a", "").await else {
        panic!("must be refused");
    };
    assert!(errors.iter().any(|e| e.message.contains("„unterhaltstitel“")), "{errors:#?}");
    assert_eq!(db.registry.versions(Some("catalogue")).await.unwrap().len(), 1);
}

async fn diff_names_the_changed_requirement_in_words(db: TestDb) {
    seeded(&db).await;
    schemas::add(db.registry.as_ref(), vec![uvg_from_14()], &[], "a", "").await.unwrap();
    let diffs = schemas::diff(db.registry.as_ref(), "uvg@1", "uvg@2").await.unwrap();
    let base = &diffs[0];
    assert_eq!(base.tenant, None);
    assert_eq!(base.changes.len(), 1, "{diffs:#?}");
    assert_eq!(base.changes[0].requirement.as_deref(), Some("schulbescheinigung"));
    assert!(base.changes[0].text.contains("mindestens 15 Jahre") && base.changes[0].text.contains("mindestens 14 Jahre"), "{}", base.changes[0].text);
}

async fn a_broken_active_version_never_replaces_the_serving_one(db: TestDb) {
    seeded(&db).await;
    schemas::add(db.registry.as_ref(), vec![uvg_from_14()], &[], "a", "").await.unwrap();
    let live = live_from_registry(&db).await;
    assert_eq!(live.current().for_bundle("uvg", None).unwrap().version_id.as_deref(), Some("uvg@1"));
    // A version that does not validate reaches the database without going
    // through `schema add` (an older release, a hand-made row): the
    // registry itself does not validate, the reload must.
    let broken = uvg_text().replacen("accepts = [\"antrag\"]", "accepts = [\"gibt_es_nicht\"]", 1);
    let sources = json!({"procedure": {"origin": "x.toml", "text": broken}, "overlays": []});
    let v = db
        .registry
        .add_version(&nachweis::store::schema_registry::NewSchemaVersion {
            subject: "uvg".into(),
            label: "kaputt".into(),
            content_hash: "f".repeat(64),
            sources,
            author: "a".into(),
            comment: String::new(),
        })
        .await
        .unwrap();
    db.registry.activate(&v.version().version_id, None, "a").await.unwrap();
    let status = schemas::reload(&live, db.registry.as_ref()).await.unwrap();
    assert_eq!(status.refused.len(), 1, "{status:?}");
    assert!(status.refused[0].1.contains("gibt_es_nicht"), "{:?}", status.refused);
    assert_eq!(live.current().for_bundle("uvg", None).unwrap().version_id.as_deref(), Some("uvg@1"), "the last good version keeps serving");
    // A good version activated afterwards is picked up.
    schemas::activate(db.registry.as_ref(), "uvg@2", None, "a").await.unwrap();
    let status = schemas::reload(&live, db.registry.as_ref()).await.unwrap();
    assert!(status.refused.is_empty());
    assert_eq!(live.current().for_bundle("uvg", None).unwrap().version_id.as_deref(), Some("uvg@2"));
}

async fn workers_seeding_a_fresh_database_at_once_store_each_version_once(db: TestDb) {
    // Four workers start together on an empty database, each with its own pool.
    let mut handles = Vec::new();
    for _ in 0..4 {
        let url = db.url.clone();
        handles.push(tokio::spawn(async move {
            let (_, registry) = store::connect_with_registry(&url).await.unwrap();
            schemas::seed(registry.as_ref(), &shipped()).await
        }));
    }
    for h in handles {
        h.await.unwrap().expect("every worker starts");
    }
    let ids: Vec<String> = db.registry.versions(None).await.unwrap().into_iter().map(|v| v.version_id).collect();
    assert_eq!(ids, ["catalogue@1", "kita@1", "uvg@1", "wohngeld@1"]);
    let active: Vec<String> = db.registry.activations().await.unwrap().into_iter().map(|a| a.version_id).collect();
    assert_eq!(active, ["catalogue@1", "kita@1", "uvg@1", "wohngeld@1"]);
}

async fn adding_only_an_overlay_keeps_the_active_base_and_serves_that_tenant(db: TestDb) {
    seeded(&db).await;
    let overlay = SourceFile {
        origin: "overlays/lk-sued/uvg.toml".into(),
        text: "[overlay]\ntenant = \"lk-sued\"\nprocedure = \"uvg\"\nversion = \"1\"\n\n[procedure]\ndeadline_days = 21\n\n[requirements.meldebescheinigung]\nenabled = false\n".into(),
    };
    let added = schemas::add(db.registry.as_ref(), vec![overlay], &[], "Herr Admin", "Süd: 3 Wochen, ohne Meldebescheinigung").await.unwrap();
    assert_eq!(added[0].version_id, "uvg@2");
    let v1 = schemas::sources_of(db.registry.as_ref(), "uvg@1").await.unwrap();
    let v2 = schemas::sources_of(db.registry.as_ref(), "uvg@2").await.unwrap();
    assert_eq!(v2.procedure, v1.procedure, "the active base is kept");
    assert_eq!(v2.overlays.len(), 2, "lk-nordheide's overlay stays, lk-sued's is added");
    schemas::activate(db.registry.as_ref(), "uvg@2", Some("lk-sued"), "Herr Admin").await.unwrap();
    let live = live_from_registry(&db).await;
    let set = live.current();
    let sued = set.for_bundle("uvg", Some("lk-sued")).unwrap();
    assert_eq!((sued.procedure.deadline_days, sued.version.as_str()), (21, "2026.11.1+lk-sued.1"));
    assert!(!sued.requirements.iter().any(|r| r.id == "meldebescheinigung"));
    let other = set.for_bundle("uvg", Some("lk-west")).unwrap();
    assert_eq!((other.procedure.deadline_days, other.version_id.as_deref()), (14, Some("uvg@1")));
    let diffs = schemas::diff(db.registry.as_ref(), "uvg@1", "uvg@2").await.unwrap();
    let sued_diff = diffs.iter().find(|d| d.tenant.as_deref() == Some("lk-sued")).expect("a diff for lk-sued");
    assert!(sued_diff.changes.iter().any(|c| c.text.contains("Frist im Schreiben: bisher 14 Tage, neu 21 Tage")), "{sued_diff:#?}");
    assert!(sued_diff.changes.iter().any(|c| c.requirement.as_deref() == Some("meldebescheinigung") && c.text.starts_with("Nicht mehr verlangt")), "{sued_diff:#?}");
    // The base catches up with lk-nordheide (school certificate from 12): the
    // redundant overlay is a warning, and can be left out of the new version.
    let base = SourceFile { origin: "uvg-ab-12.toml".into(), text: uvg_text().replacen("child_age_at_least = 15", "child_age_at_least = 12", 1) };
    let kept = schemas::plan(db.registry.as_ref(), vec![base.clone()], &[]).await.unwrap();
    assert!(kept[0].warnings.iter().any(|w| w.message.contains("ändert nichts mehr")), "{:#?}", kept[0].warnings);
    let dropped = schemas::add(db.registry.as_ref(), vec![base], &["lk-nordheide".to_string()], "a", "").await.unwrap();
    let v3 = schemas::sources_of(db.registry.as_ref(), &dropped[0].version_id).await.unwrap();
    let tenants: Vec<String> = v3.overlays.iter().filter_map(|o| nachweis::domain::schema::overlay_target(&o.text).map(|(_, t)| t)).collect();
    // The new version starts from the default active one (uvg@1: only
    // lk-nordheide's overlay; lk-sued's lives in uvg@2, active for lk-sued).
    assert!(tenants.is_empty(), "{tenants:?}");
    assert_eq!(schemas::sources_of(db.registry.as_ref(), "uvg@1").await.unwrap().overlays.len(), 1, "stored versions never change");
}

// ---------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy)]
enum Backend {
    Sqlite,
    Postgres,
}

struct TestDb {
    url: String,
    store: Arc<dyn Store>,
    registry: Arc<dyn SchemaRegistry>,
}

impl TestDb {
    async fn audit_actions(&self) -> Vec<String> {
        if self.url.starts_with("sqlite:") {
            let pool = sqlx::sqlite::SqlitePoolOptions::new().max_connections(1).connect(&self.url).await.unwrap();
            sqlx::query_scalar("SELECT action FROM audit_log ORDER BY id").fetch_all(&pool).await.unwrap()
        } else {
            let pool = PgPoolOptions::new().max_connections(1).connect(&self.url).await.unwrap();
            sqlx::query_scalar("SELECT action FROM audit_log ORDER BY id").fetch_all(&pool).await.unwrap()
        }
    }
}

impl Backend {
    async fn run<F, Fut>(self, test: F)
    where
        F: FnOnce(TestDb) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        match self {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().unwrap();
                let url = format!("sqlite://{}", dir.path().join("n.sqlite").display());
                let (store, registry) = store::connect_with_registry(&url).await.expect("open SQLite");
                let outcome = tokio::spawn(test(TestDb { url, store, registry })).await;
                drop(dir);
                if let Err(e) = outcome {
                    std::panic::resume_unwind(e.into_panic());
                }
            }
            Backend::Postgres => {
                let admin_url = std::env::var("NACHWEIS_TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_POSTGRES_URL.to_owned());
                let admin = PgPoolOptions::new()
                    .max_connections(1)
                    .acquire_timeout(Duration::from_secs(5))
                    .connect(&admin_url)
                    .await
                    .unwrap_or_else(|e| panic!("PostgreSQL at {admin_url} is unreachable ({e}); start it (see README, scripts/test) or set NACHWEIS_TEST_POSTGRES_URL"));
                let name = unique_database_name();
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&admin).await.unwrap();
                let url = with_database(&admin_url, &name);
                let outcome = match store::connect_with_registry(&url).await {
                    Ok((store, registry)) => tokio::spawn(test(TestDb { url, store, registry })).await,
                    Err(e) => tokio::spawn(async move { panic!("open Postgres: {e}") }).await,
                };
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP DATABASE {name} WITH (FORCE)"))).execute(&admin).await.unwrap();
                admin.close().await;
                if let Err(e) = outcome {
                    std::panic::resume_unwind(e.into_panic());
                }
            }
        }
    }
}



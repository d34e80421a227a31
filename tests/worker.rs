//! The worker shell end to end on the embedded default: fixture bundles go
//! through `process_one` (real sandboxed extraction, real SQLite store).
//! Covers idempotency by `bundle_id` and late documents added to a case.
use chrono::NaiveDate;
use serde_json::Value;
use std::path::PathBuf;
use std::sync::Arc;

use nachweis::config::Settings;
use nachweis::extract::sandbox::{Limits, SandboxExtractor};
use nachweis::store::Store;
use nachweis::worker::{Pipeline, Processed, process_one};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn pipeline() -> Arc<Pipeline> {
    let schemas = nachweis::startup::load_schemas(&root().join("schemas")).unwrap();
    let extractor = SandboxExtractor::new(PathBuf::from(env!("CARGO_BIN_EXE_nachweis")), Limits::default());
    Arc::new(Pipeline { schemas: schemas.into(), extractor: Arc::new(extractor), settings: Settings::default() })
}

async fn sqlite_store(dir: &tempfile::TempDir) -> Arc<dyn Store> {
    let url = format!("sqlite://{}", dir.path().join("test.sqlite").display());
    nachweis::store::connect(&url).await.unwrap()
}

fn bundle(name: &str) -> nachweis::intake::IntakeBundle {
    nachweis::intake::read_bundle_dir(&root().join("fixtures/bundles").join(name)).unwrap()
}

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 23).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bundle_processed_twice_yields_one_case_and_one_draft() {
    let tmp = tempfile::tempdir().unwrap();
    let store = sqlite_store(&tmp).await;
    let p = pipeline();
    let first = process_one(p.clone(), store.clone(), bundle("uvg-01-ledig-komplett"), today()).await.unwrap();
    let Processed::Recorded { case_id, draft_version, .. } = first else { panic!("first run must record") };
    assert_eq!(draft_version, 1);
    let second = process_one(p.clone(), store.clone(), bundle("uvg-01-ledig-komplett"), today()).await.unwrap();
    assert!(matches!(second, Processed::AlreadyRecorded { case_id: ref c } if *c == case_id));
    let cases = store.list_cases().await.unwrap();
    assert_eq!(cases.len(), 1);
    assert_eq!(store.current_draft(&case_id).await.unwrap().unwrap().version, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_documents_complete_the_earlier_case_and_supersede_its_letter() {
    let tmp = tempfile::tempdir().unwrap();
    let store = sqlite_store(&tmp).await;
    let p = pipeline();
    let first = process_one(p.clone(), store.clone(), bundle("uvg-03-viele-fehlen"), today()).await.unwrap();
    let Processed::Recorded { case_id, report, .. } = first else { panic!("must record") };
    assert_eq!(report.verdict.as_str(), "incomplete");
    let late = process_one(p.clone(), store.clone(), bundle("uvg-24-nachreichung-zu-03"), today()).await.unwrap();
    let Processed::Recorded { case_id: late_case, draft_version, report } = late else { panic!("late bundle must record") };
    assert_eq!(late_case, case_id, "the late bundle joins the earlier case");
    assert_eq!(draft_version, 2);
    let expected: Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("fixtures/bundles/uvg-24-nachreichung-zu-03/expected.json")).unwrap(),
    )
    .unwrap();
    let case = &expected["case"];
    assert_eq!(report.verdict.as_str(), case["verdict"].as_str().unwrap());
    for want in case["requirements"].as_array().unwrap() {
        let got = report
            .requirements
            .iter()
            .find(|f| f.id == want["id"].as_str().unwrap() && f.child.map(|c| c as u64) == want["child"].as_u64())
            .unwrap_or_else(|| panic!("no verdict for {want}"));
        assert_eq!(serde_json::to_value(got.verdict).unwrap(), want["verdict"], "{} — {}", got.id, got.reason);
    }
    let cases = store.list_cases().await.unwrap();
    assert_eq!(cases.len(), 1);
    assert_eq!(cases[0].bundle_ids.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_bundle_for_a_case_not_yet_recorded_is_retried_not_dropped() {
    let tmp = tempfile::tempdir().unwrap();
    let store = sqlite_store(&tmp).await;
    let err = process_one(pipeline(), store, bundle("uvg-24-nachreichung-zu-03"), today()).await.unwrap_err();
    assert!(matches!(err, nachweis::worker::JobError::Retry(_)), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bundle_is_retried_not_judged_when_the_extractor_cannot_be_started() {
    // As when the binary was replaced during an upgrade, or fork fails for
    // lack of processes: no upload was read, so none may be called unreadable.
    let tmp = tempfile::tempdir().unwrap();
    let store = sqlite_store(&tmp).await;
    let schemas = nachweis::startup::load_schemas(&root().join("schemas")).unwrap();
    let extractor = SandboxExtractor::new(tmp.path().join("no-such-nachweis-binary"), Limits::default());
    let p = Arc::new(Pipeline { schemas: schemas.into(), extractor: Arc::new(extractor), settings: Settings::default() });

    let result = process_one(p, store.clone(), bundle("uvg-01-ledig-komplett"), today()).await;

    assert!(
        matches!(&result, Err(nachweis::worker::JobError::Retry(reason)) if reason.starts_with("extraction unavailable")),
        "{result:?}"
    );
    assert!(store.list_cases().await.unwrap().is_empty(), "nothing is recorded");
}

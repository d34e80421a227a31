//! The shell around the pure core: `check_bundle` sequences intake →
//! extraction → `domain::process`, and `process_one` adds the store. It
//! makes no business decisions of its own.
//!
//! Extraction and classification are CPU work and run on blocking threads,
//! never on the async runtime's workers (they would starve AMQP heartbeats).
use chrono::NaiveDate;
use sha2::{Digest, Sha256};
use std::path::Path;
use std::sync::Arc;

use crate::config::Settings;
use crate::domain::bundle::Manifest;
use crate::domain::document::{ExtractedDocument, ProblemKind};
use crate::domain::review::Correction;
use crate::domain::schema::SchemaSet;
use crate::domain::{self, Context, Report};
use crate::extract::Extractor;
use crate::intake::{IntakeBundle, IntakeError};
use crate::store::{BundleResult, NewDraft, RecordOutcome, Store, StoreError, StoredDocument};

/// Everything needed to check a bundle, shared by all workers.
pub struct Pipeline {
    /// The schemas in force; a running worker's reloader swaps them (see
    /// `schemas::LiveSchemas`), each bundle is checked with one set.
    pub schemas: crate::schemas::LiveSchemas,
    pub extractor: Arc<dyn Extractor>,
    pub settings: Settings,
}

/// How a job failed, and so what the queue does with it.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// Worth another attempt (database or broker trouble): nack with requeue.
    #[error("temporary failure: {0}")]
    Retry(String),
    /// Will never succeed (invalid manifest, unknown procedure): dead-letter.
    #[error("rejected: {0}")]
    Reject(String),
}

impl JobError {
    /// A short reason id for metrics and dead-letter headers (no personal data).
    pub fn reason(&self) -> String {
        match self {
            JobError::Retry(m) | JobError::Reject(m) => m.clone(),
        }
    }
}

impl From<StoreError> for JobError {
    fn from(e: StoreError) -> Self {
        if e.is_transient() { JobError::Retry(e.to_string()) } else { JobError::Reject(e.to_string()) }
    }
}

impl From<IntakeError> for JobError {
    fn from(e: IntakeError) -> Self {
        match e {
            IntakeError::Io(io) => JobError::Retry(format!("intake I/O: {}", io.kind())),
            other => JobError::Reject(other.to_string()),
        }
    }
}

/// The case id a new bundle opens: derived from the bundle id, so two
/// workers handling the same bundle collide in the database instead of
/// opening two cases.
pub fn new_case_id(bundle_id: &str) -> String {
    format!("case-{}", &hex::encode(Sha256::digest(bundle_id.as_bytes()))[..12])
}

/// A caseworker's correction as the shell keeps it: the upload is named by
/// its bundle and its `document_id` there, which stays true however many
/// bundles the case receives later (the report's ids do not: an earlier
/// bundle's documents are reported as `<bundle_id>/<document_id>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseCorrection {
    pub bundle_id: String,
    pub document_id: String,
    pub first_page: u32,
    pub doc_type: String,
}

impl From<&crate::store::review::CorrectionRecord> for CaseCorrection {
    fn from(c: &crate::store::review::CorrectionRecord) -> Self {
        CaseCorrection {
            bundle_id: c.bundle_id.clone(),
            document_id: c.document_id.clone(),
            first_page: u32::try_from(c.first_page).unwrap_or(0),
            doc_type: c.doc_type.clone(),
        }
    }
}

/// The report's id of a document: plain for the bundle being checked,
/// qualified by its bundle for earlier ones.
pub fn report_document_id(current_bundle: &str, bundle_id: &str, document_id: &str) -> String {
    if bundle_id == current_bundle { document_id.to_string() } else { format!("{bundle_id}/{document_id}") }
}

/// The bundle and document a report's document id names (the inverse of
/// `report_document_id`), checked against the case's bundles.
pub fn split_report_document_id<'a>(current_bundle: &'a str, bundle_ids: &[&'a str], id: &'a str) -> Option<(&'a str, &'a str)> {
    bundle_ids
        .iter()
        .filter(|b| **b != current_bundle)
        .find_map(|b| id.strip_prefix(*b).and_then(|rest| rest.strip_prefix('/')).map(|doc| (*b, doc)))
        .or(Some((current_bundle, id)))
}

/// Extracts (unless given earlier extractions), classifies, checks and
/// drafts one bundle. Blocking: call from a blocking thread.
pub fn check_bundle(
    pipeline: &Pipeline,
    bundle: &IntakeBundle,
    earlier: &[(Manifest, ExtractedDocument)],
    case_reference: &str,
    today: NaiveDate,
) -> Result<(Report, Vec<ExtractedDocument>), JobError> {
    check_bundle_corrected(pipeline, bundle, earlier, &[], case_reference, today)
}

/// `check_bundle` with the case's corrections applied (a late bundle keeps
/// what caseworkers corrected on the earlier ones).
pub fn check_bundle_corrected(
    pipeline: &Pipeline,
    bundle: &IntakeBundle,
    earlier: &[(Manifest, ExtractedDocument)],
    corrections: &[CaseCorrection],
    case_reference: &str,
    today: NaiveDate,
) -> Result<(Report, Vec<ExtractedDocument>), JobError> {
    let mut extracted = pipeline.extractor.extract_all(&bundle.files_to_extract());
    // A document the worker could not even try to read says nothing about
    // the bundle: checking it now would ask the applicant for a copy they
    // already sent. Retried; bounded by the queue's delivery limit.
    if let Some(problem) = extracted.iter().filter_map(|d| d.problem.as_ref()).find(|p| p.kind == ProblemKind::ExtractorUnavailable) {
        return Err(JobError::Retry(format!("extraction unavailable: {}", problem.detail)));
    }
    extracted.extend(bundle.intake_failures());
    sanitise(&mut extracted);
    let schemas = pipeline.schemas.current();
    let report = check_case(&schemas, &pipeline.settings, &bundle.manifest, earlier, &extracted, corrections, case_reference, today)?;
    Ok((report, extracted))
}

/// Re-checks a stored case from its stored manifests and extraction
/// results (no extraction), with its corrections: what a correction in the
/// review UI triggers. The newest bundle is the one "being checked".
pub fn recheck_case(
    schemas: &SchemaSet,
    settings: &Settings,
    manifests: &[serde_json::Value],
    documents: &[StoredDocument],
    corrections: &[CaseCorrection],
    case_reference: &str,
    today: NaiveDate,
) -> Result<Report, JobError> {
    let all = pair_earlier_documents(manifests, documents);
    let current = manifests
        .last()
        .and_then(|m| Manifest::from_value(m).ok())
        .ok_or_else(|| JobError::Reject("the case has no readable manifest".into()))?;
    let (mine, earlier): (Vec<_>, Vec<_>) = all.into_iter().partition(|(m, _)| m.bundle_id == current.bundle_id);
    let extracted: Vec<ExtractedDocument> = mine.into_iter().map(|(_, e)| e).collect();
    check_case(schemas, settings, &current, &earlier, &extracted, corrections, case_reference, today)
}

/// Checks a case: the current bundle with its extraction results, after
/// the documents of its earlier bundles, with corrections applied.
#[allow(clippy::too_many_arguments)]
fn check_case(
    schemas: &SchemaSet,
    settings: &Settings,
    manifest: &Manifest,
    earlier: &[(Manifest, ExtractedDocument)],
    extracted: &[ExtractedDocument],
    corrections: &[CaseCorrection],
    case_reference: &str,
    today: NaiveDate,
) -> Result<Report, JobError> {
    // A bundle that names no tenant belongs to the default tenant: its
    // activated version (if it has one) serves it, as the review pages'
    // tenant scope counts such cases to it.
    let tenant = manifest.tenant.as_deref().unwrap_or(settings.default_tenant.as_str());
    let schema = schemas
        .for_bundle(&manifest.procedure, Some(tenant))
        .ok_or_else(|| JobError::Reject(format!("unknown procedure {:?}", manifest.procedure)))?;
    // Late documents: the case is checked as a whole, earlier uploads first.
    let (combined, all_docs) = domain::combine_case(manifest, extracted, earlier);
    let corrections: Vec<Correction> = corrections
        .iter()
        .map(|c| Correction {
            document_id: report_document_id(&manifest.bundle_id, &c.bundle_id, &c.document_id),
            first_page: c.first_page,
            doc_type: c.doc_type.clone(),
        })
        .collect();
    let letterhead = settings.letterhead_for(manifest.tenant.as_deref());
    let ctx = Context { schema, catalogue: &schemas.catalogue, letterhead, today, case_reference };
    // The core is pure and tested never to panic; should a bug still make it
    // panic on some input, that bundle is rejected (dead-lettered with the
    // reason) instead of being retried forever or taking the worker down.
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| domain::process_corrected(&combined, &all_docs, &ctx, &corrections)))
        .map_err(|_| JobError::Reject("internal error while checking the bundle (see worker log)".to_string()))
}

/// What `process_one` did with a bundle.
#[derive(Debug)]
pub enum Processed {
    /// Checked and recorded, with a new draft version.
    Recorded { case_id: String, draft_version: i64, report: Box<Report> },
    /// Recorded before (redelivery or re-sent bundle): nothing changed.
    AlreadyRecorded { case_id: String },
}

/// Processes one bundle end to end and records it. Idempotent by
/// `bundle_id`: a bundle recorded before is not processed again.
#[tracing::instrument(skip_all, fields(bundle_id = %bundle.manifest.bundle_id))]
pub async fn process_one(
    pipeline: Arc<Pipeline>,
    store: Arc<dyn Store>,
    bundle: IntakeBundle,
    today: NaiveDate,
) -> Result<Processed, JobError> {
    let bundle_id = bundle.manifest.bundle_id.clone();
    if let Some(case_id) = store.case_of_bundle(&bundle_id).await? {
        tracing::info!(message = "Bundle already recorded.", %case_id);
        return Ok(Processed::AlreadyRecorded { case_id });
    }
    let case_id = match &bundle.manifest.case_id {
        // Intake systems know bundle ids before they learn case ids, so a
        // `case_id` naming an earlier bundle means that bundle's case.
        Some(c) => match store.case_of_bundle(c).await? {
            Some(case_of_earlier_bundle) => case_of_earlier_bundle,
            None => c.clone(),
        },
        None => new_case_id(&bundle_id),
    };
    let mut earlier = Vec::new();
    let mut corrections = Vec::new();
    if bundle.manifest.case_id.is_some() {
        let manifests = store.case_manifests(&case_id).await?;
        if manifests.is_empty() {
            // Bundles can overtake each other in the queue; the earlier one
            // may still be in flight. Retrying is bounded by the queue's
            // delivery limit, after which the bundle is dead-lettered.
            return Err(JobError::Retry(format!("case_id {case_id} is not known (yet)")));
        }
        let docs = store.case_documents(&case_id).await?;
        earlier = pair_earlier_documents(&manifests, &docs);
        corrections = store.case_corrections(&case_id).await?.iter().map(CaseCorrection::from).collect();
    }
    let p = pipeline.clone();
    let reference = case_id.clone();
    let case_of_late_bundle = bundle.manifest.case_id.as_ref().map(|_| case_id.clone());
    // Checking, reading the uploads and turning the report and the extracted
    // text into JSON are CPU and file work: on a blocking thread, like
    // extraction (on the runtime's threads they would starve AMQP heartbeats).
    let (report, result) = tokio::task::spawn_blocking(move || {
        let (report, extracted) = check_bundle_corrected(&p, &bundle, &earlier, &corrections, &reference, today)?;
        let contents = read_contents(&bundle);
        let result = bundle_result(&bundle, &report, &extracted, contents, case_of_late_bundle)?;
        Ok::<_, JobError>((report, result))
    })
    .await
    .map_err(|e| JobError::Retry(format!("pipeline task failed: {e}")))??;
    match store.record_bundle(&result).await? {
        RecordOutcome::Recorded { case_id, draft_version, .. } => {
            tracing::info!(message = "Bundle checked.", %case_id, verdict = report.verdict.as_str(), schema_version = %report.schema_version);
            Ok(Processed::Recorded { case_id, draft_version, report: Box::new(report) })
        }
        // Another worker recorded the same bundle meanwhile.
        RecordOutcome::AlreadyRecorded { case_id } => Ok(Processed::AlreadyRecorded { case_id }),
    }
}

/// What `record_bundle` stores for a checked bundle: ids, the manifest, the
/// report, the documents with their bytes and extracted text, and the draft.
fn bundle_result(
    bundle: &IntakeBundle,
    report: &Report,
    extracted: &[ExtractedDocument],
    contents: Vec<Option<Vec<u8>>>,
    case_id: Option<String>,
) -> Result<BundleResult, JobError> {
    let has_inline =
        bundle.manifest.documents.iter().any(|m| matches!(m.source, crate::domain::bundle::DocumentSource::Inline(_)));
    let documents = bundle
        .documents
        .iter()
        .zip(contents)
        .map(|(d, content)| StoredDocument {
            document_id: d.reference.document_id.clone(),
            filename: d.reference.filename.clone(),
            media_type: d.reference.media_type.clone(),
            sha256: d.sha256.clone().unwrap_or_default(),
            declared_type: d.reference.declared_type.clone(),
            // Inline documents live in a scratch directory that is removed
            // after processing, so only files of path-based bundles have a
            // location worth keeping.
            location: d.file.as_ref().filter(|_| !has_inline).map(|p| p.display().to_string()),
            extracted: extracted
                .iter()
                .find(|e| e.document_id == d.reference.document_id)
                .map(|e| serde_json::to_value(e).unwrap_or_default())
                .unwrap_or_default(),
            content,
        })
        .collect();
    Ok(BundleResult {
        bundle_id: bundle.manifest.bundle_id.clone(),
        case_id,
        procedure: bundle.manifest.procedure.clone(),
        tenant: bundle.manifest.tenant.clone(),
        // The stored version id (`uvg@3`) when the schema came from the
        // registry: it names the exact text the check can be re-run with.
        schema_version: report.schema_version_id.clone().unwrap_or_else(|| report.schema_version.clone()),
        received_at: bundle.manifest.received_at,
        verdict: report.verdict.as_str().to_string(),
        manifest: bundle.raw_manifest.clone(),
        report: serde_json::to_value(report).map_err(|e| JobError::Reject(format!("report not serialisable: {e}")))?,
        documents,
        draft: NewDraft {
            kind: report.draft.kind.as_str().to_string(),
            // What the caseworker edits is the letter body; the structured
            // draft in `body` carries everything laid out around it.
            text: report.draft.body.clone(),
            body: serde_json::to_value(&report.draft).unwrap_or_default(),
        },
    })
}

/// The bytes of every upload that passed the intake checks, for the review
/// UI's page images (`None` for the others). Blocking.
fn read_contents(bundle: &IntakeBundle) -> Vec<Option<Vec<u8>>> {
    bundle.documents.iter().map(|d| d.file.as_ref().and_then(|p| std::fs::read(p).ok())).collect()
}

/// Pairs stored documents with the manifests of their bundles. Both come
/// in bundle order and documents in manifest order, and document ids are
/// unique only within a bundle, so they are matched by walking both lists.
fn pair_earlier_documents(manifests: &[serde_json::Value], docs: &[StoredDocument]) -> Vec<(Manifest, ExtractedDocument)> {
    let mut out = Vec::new();
    let mut next = 0;
    for value in manifests {
        let Ok(m) = Manifest::from_stored(value) else {
            tracing::warn!(message = "A stored manifest no longer parses; its documents are left out of the re-check.");
            continue;
        };
        let n = m.documents.len();
        let slice = docs.get(next..next + n).unwrap_or(&[]);
        if slice.len() != n || slice.iter().zip(&m.documents).any(|(d, r)| d.document_id != r.document_id) {
            tracing::warn!(message = "Stored documents do not line up with their manifest; they are left out of the re-check.", bundle_id = %m.bundle_id);
            continue;
        }
        next += n;
        for d in slice {
            if let Ok(e) = serde_json::from_value::<ExtractedDocument>(d.extracted.clone()) {
                out.push((m.clone(), e));
            }
        }
    }
    out
}

/// Removes NUL and other control characters (except line breaks and tabs)
/// from extracted text: PostgreSQL's JSONB refuses `\u0000`, and control
/// characters carry no meaning for classification.
fn sanitise(documents: &mut [ExtractedDocument]) {
    for d in documents {
        for p in &mut d.pages {
            if p.text.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
                p.text = p.text.chars().filter(|c| !c.is_control() || *c == '\n' || *c == '\t').collect();
            }
        }
    }
}

/// Writes a draft's text where a newcomer can read it (demo only).
pub fn write_draft_file(dir: &Path, case_id: &str, version: i64, text: &str) -> std::io::Result<std::path::PathBuf> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join(format!("{case_id}-v{version}.txt"));
    std::fs::write(&path, text)?;
    Ok(path)
}

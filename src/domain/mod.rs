//! The pure core: bundle → segments → findings → draft. No I/O, no clock,
//! no randomness: `process` is a function of its inputs, so every verdict
//! can be replayed and explained.
//!
//! Adapters (`extract`, `store`, `queue`, `worker`) sit around it.
pub mod bundle;
pub mod catalogue;
pub mod check;
pub mod classify;
pub mod dates;
pub mod diagnostics;
pub mod document;
pub mod draft;
pub mod highlight;
pub mod review;
pub mod replay;
pub mod schema;
pub mod schema_diff;
pub mod text;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use bundle::Manifest;
use catalogue::Catalogue;
use check::{BundleVerdict, Finding};
use classify::Segment;
use document::ExtractedDocument;
use draft::{Draft, Letterhead};
use schema::ProcedureSchema;

/// A remark about an upload as a whole, shown to the caseworker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DocumentNote {
    pub document_id: String,
    /// `declared_type_mismatch`, or a `ProblemKind` id for unreadable files.
    pub kind: String,
    pub detail: String,
}

/// The result of checking one bundle: the `check --json` document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub bundle_id: String,
    pub case_id: Option<String>,
    pub procedure: String,
    pub tenant: Option<String>,
    pub schema_version: String,
    pub schema_hash: String,
    /// The stored schema version (`uvg@3`) when the schema came from the
    /// database's registry; its text reproduces this check.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schema_version_id: Option<String>,
    pub catalogue_version: String,
    /// The stored catalogue version (`catalogue@2`), likewise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub catalogue_version_id: Option<String>,
    pub received_on: NaiveDate,
    pub verdict: BundleVerdict,
    pub segments: Vec<Segment>,
    pub requirements: Vec<Finding>,
    pub notes: Vec<DocumentNote>,
    pub draft: Draft,
}

/// Everything `process` needs besides the manifest and extracted text.
pub struct Context<'a> {
    pub schema: &'a ProcedureSchema,
    pub catalogue: &'a Catalogue,
    pub letterhead: &'a Letterhead,
    /// The letter's date (the shell passes today's date).
    pub today: NaiveDate,
    /// The case reference printed on the letter.
    pub case_reference: &'a str,
}

/// A case checked as a whole: the newest bundle's manifest with the
/// documents of the case's earlier bundles put first. Earlier document ids
/// are qualified as `<bundle_id>/<document_id>` (ids are unique only within
/// a bundle); `documents` are the newest bundle's extraction results.
pub fn combine_case(
    manifest: &Manifest,
    documents: &[ExtractedDocument],
    earlier: &[(Manifest, ExtractedDocument)],
) -> (Manifest, Vec<ExtractedDocument>) {
    let mut combined = manifest.clone();
    let mut all_docs = Vec::new();
    if !earlier.is_empty() {
        let mut docs = Vec::new();
        for (m, e) in earlier {
            if let Some(mut d) = m.documents.iter().find(|d| d.document_id == e.document_id).cloned() {
                let qualified = format!("{}/{}", m.bundle_id, d.document_id);
                d.document_id = qualified.clone();
                docs.push(d);
                all_docs.push(ExtractedDocument { document_id: qualified, ..e.clone() });
            }
        }
        docs.extend(manifest.documents.iter().cloned());
        combined.documents = docs;
    }
    all_docs.extend(documents.iter().cloned());
    (combined, all_docs)
}

/// Classifies, checks and drafts. `documents` must hold one entry per
/// manifest document (in any order); documents are segmented in manifest order.
pub fn process(manifest: &Manifest, documents: &[ExtractedDocument], ctx: &Context<'_>) -> Report {
    process_corrected(manifest, documents, ctx, &[])
}

/// `process` with caseworkers' corrections of document types applied after
/// classification and before the check, so the verdicts and the draft
/// follow the human's reading of the documents.
pub fn process_corrected(
    manifest: &Manifest,
    documents: &[ExtractedDocument],
    ctx: &Context<'_>,
    corrections: &[review::Correction],
) -> Report {
    let received = manifest.received_on();
    let mut segments: Vec<Segment> = Vec::new();
    let mut notes = Vec::new();
    for d in &manifest.documents {
        let declared = d.declared_type.as_deref();
        let Some(extracted) = documents.iter().find(|e| e.document_id == d.document_id) else {
            continue;
        };
        let mut segs = classify::segment_document(extracted, declared, ctx.catalogue, received);
        review::apply_corrections(&mut segs, corrections, ctx.catalogue);
        // The upload slot agrees if any part of the upload is of that type.
        if let Some(decl) = declared {
            let readable_types: Vec<String> =
                segs.iter().filter(|s| s.is_readable() && s.doc_type != catalogue::UNKNOWN).map(|s| s.doc_type.clone()).collect();
            if !readable_types.is_empty() {
                let agrees = readable_types.iter().any(|t| t == decl);
                for s in segs.iter_mut().filter(|s| s.is_readable() && s.doc_type != catalogue::UNKNOWN) {
                    s.declared_type_matches = Some(agrees);
                }
                if !agrees {
                    notes.push(DocumentNote {
                        document_id: d.document_id.clone(),
                        kind: "declared_type_mismatch".into(),
                        detail: format!(
                            "hochgeladen als „{}“, erkannt: {}",
                            ctx.catalogue.label(decl),
                            readable_types.iter().map(|t| ctx.catalogue.label(t)).collect::<Vec<_>>().join(", ")
                        ),
                    });
                }
            }
        }
        if let Some(p) = &extracted.problem {
            notes.push(DocumentNote {
                document_id: d.document_id.clone(),
                kind: p.kind.as_str().into(),
                detail: format!("{} ({})", p.kind.label_de(), p.detail),
            });
        }
        segments.extend(segs);
    }
    let findings = check::check(manifest, &segments, ctx.schema, ctx.catalogue);
    let verdict = check::bundle_verdict(&findings);
    let draft = draft::draft(
        manifest,
        ctx.case_reference,
        &findings,
        &segments,
        verdict,
        ctx.schema,
        ctx.catalogue,
        ctx.letterhead,
        ctx.today,
    );
    Report {
        bundle_id: manifest.bundle_id.clone(),
        case_id: manifest.case_id.clone(),
        procedure: manifest.procedure.clone(),
        tenant: manifest.tenant.clone(),
        schema_version: ctx.schema.version.clone(),
        schema_hash: ctx.schema.content_hash.clone(),
        schema_version_id: ctx.schema.version_id.clone(),
        catalogue_version: ctx.catalogue.version.clone(),
        catalogue_version_id: ctx.catalogue.version_id.clone(),
        received_on: received,
        verdict,
        segments,
        requirements: findings,
        notes,
        draft,
    }
}

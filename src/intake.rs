//! Intake: reads a bundle (a directory on disk, or an AMQP message with
//! inline or referenced documents) into a validated manifest plus local
//! files ready for extraction.
//!
//! Per-document trouble (missing file, wrong SHA-256, oversized upload)
//! becomes a `DocumentProblem` on that document, never an error for the
//! bundle: the applicant is asked for a readable copy instead.
use base64::Engine as _;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

use crate::domain::bundle::{DocumentRef, DocumentSource, Manifest, ManifestError};
use crate::domain::document::{DocumentProblem, ExtractedDocument, ProblemKind};
use crate::extract::DocumentFile;

/// Uploads larger than this are not read at all.
pub const MAX_DOCUMENT_BYTES: u64 = 50 * 1024 * 1024;

/// A manifest (with inline documents) larger than this is refused unread.
pub const MAX_MANIFEST_BYTES: u64 = 256 * 1024 * 1024;

/// Why a bundle as a whole is unusable.
#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    #[error("no manifest.json in {0}")]
    NoManifest(PathBuf),
    #[error("invalid manifest: {0}")]
    Manifest(#[from] ManifestError),
    #[error("cannot read bundle: {0}")]
    Io(#[from] std::io::Error),
}

/// One document of a bundle, with its local file or the reason it has none.
#[derive(Debug, Clone)]
pub struct PreparedDocument {
    pub reference: DocumentRef,
    /// The file to extract, when the document passed the intake checks.
    pub file: Option<PathBuf>,
    /// SHA-256 of the bytes received (hex), when there were bytes.
    pub sha256: Option<String>,
    pub problem: Option<DocumentProblem>,
}

/// A bundle ready for the pipeline. Inline documents live in a private
/// temporary directory that is removed when this value is dropped.
#[derive(Debug)]
pub struct IntakeBundle {
    pub manifest: Manifest,
    /// The manifest JSON as received, minus inline document bytes.
    pub raw_manifest: serde_json::Value,
    pub documents: Vec<PreparedDocument>,
    _scratch: Option<tempfile::TempDir>,
}

impl IntakeBundle {
    /// The documents that should go through extraction.
    pub fn files_to_extract(&self) -> Vec<DocumentFile> {
        self.documents
            .iter()
            .filter_map(|d| {
                d.file.as_ref().map(|p| DocumentFile {
                    document_id: d.reference.document_id.clone(),
                    media_type: d.reference.media_type.clone(),
                    path: p.clone(),
                })
            })
            .collect()
    }

    /// Extraction results for documents that failed intake checks.
    pub fn intake_failures(&self) -> Vec<ExtractedDocument> {
        self.documents
            .iter()
            .filter_map(|d| {
                d.problem.as_ref().map(|p| ExtractedDocument {
                    document_id: d.reference.document_id.clone(),
                    pages: Vec::new(),
                    problem: Some(p.clone()),
                })
            })
            .collect()
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn problem(kind: ProblemKind, detail: impl Into<String>) -> Option<DocumentProblem> {
    Some(DocumentProblem { kind, detail: detail.into() })
}

/// Checks one document's bytes against the manifest.
fn prepare(reference: DocumentRef, file: PathBuf, bytes: Option<Vec<u8>>) -> PreparedDocument {
    let bytes = match bytes {
        Some(b) => b,
        None => {
            // symlink_metadata: a link inside the bundle could point anywhere
            // on the worker's disk, so links are refused, not followed.
            let meta = std::fs::symlink_metadata(&file);
            match meta {
                Ok(m) if m.file_type().is_symlink() => {
                    return PreparedDocument { reference, file: None, sha256: None, problem: problem(ProblemKind::MissingFile, "symbolische Verknüpfung statt Datei") };
                }
                Err(_) => {
                    return PreparedDocument { reference, file: None, sha256: None, problem: problem(ProblemKind::MissingFile, "Datei nicht vorhanden") };
                }
                Ok(m) if !m.is_file() => {
                    return PreparedDocument { reference, file: None, sha256: None, problem: problem(ProblemKind::MissingFile, "keine reguläre Datei") };
                }
                Ok(m) if m.len() > MAX_DOCUMENT_BYTES => {
                    return PreparedDocument {
                        reference,
                        file: None,
                        sha256: None,
                        problem: problem(ProblemKind::TooLarge, format!("{} MB, höchstens {} MB", m.len() / 1_048_576, MAX_DOCUMENT_BYTES / 1_048_576)),
                    };
                }
                Ok(_) => match std::fs::read(&file) {
                    Ok(b) => b,
                    Err(e) => {
                        return PreparedDocument { reference, file: None, sha256: None, problem: problem(ProblemKind::MissingFile, format!("nicht lesbar: {}", e.kind())) };
                    }
                },
            }
        }
    };
    let actual = sha256_hex(&bytes);
    if let Some(expected) = &reference.sha256
        && *expected != actual
    {
        return PreparedDocument {
            reference,
            file: None,
            sha256: Some(actual),
            problem: problem(ProblemKind::HashMismatch, "SHA-256 weicht vom Manifest ab"),
        };
    }
    if bytes.is_empty() {
        return PreparedDocument { reference, file: None, sha256: Some(actual), problem: problem(ProblemKind::Damaged, "leere Datei (0 Byte)") };
    }
    PreparedDocument { reference, file: Some(file), sha256: Some(actual), problem: None }
}

/// Reads a bundle directory: `manifest.json` plus the files it names.
pub fn read_bundle_dir(dir: &Path) -> Result<IntakeBundle, IntakeError> {
    let manifest_path = dir.join("manifest.json");
    if let Ok(meta) = std::fs::metadata(&manifest_path)
        && !meta.is_file()
    {
        // A FIFO or device named manifest.json would block or never end.
        return Err(IntakeError::Manifest(ManifestError::Malformed {
            field: "manifest.json".into(),
            why: "is not a regular file".into(),
        }));
    }
    if let Ok(meta) = std::fs::metadata(&manifest_path)
        && meta.len() > MAX_MANIFEST_BYTES
    {
        return Err(IntakeError::Manifest(ManifestError::Malformed {
            field: "manifest.json".into(),
            why: format!("larger than {} MB", MAX_MANIFEST_BYTES / 1_048_576),
        }));
    }
    let bytes = match std::fs::read(&manifest_path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(IntakeError::NoManifest(dir.to_path_buf())),
        Err(e) => return Err(e.into()),
    };
    from_manifest_bytes(&bytes, dir)
}

/// Reads a manifest (from a directory or a queue message) whose `path`s are
/// relative to `root`; inline documents are written to a scratch directory.
pub fn from_manifest_bytes(bytes: &[u8], root: &Path) -> Result<IntakeBundle, IntakeError> {
    let manifest = Manifest::parse(bytes)?;
    let mut raw: serde_json::Value = serde_json::from_slice(crate::domain::bundle::without_bom(bytes)).map_err(|e| ManifestError::NotJson(e.to_string()))?;
    // Inline bytes are stored as documents, not inside the stored manifest.
    if let Some(docs) = raw.get_mut("documents").and_then(|d| d.as_array_mut()) {
        for d in docs {
            if let Some(o) = d.as_object_mut() {
                o.remove("content_base64");
            }
        }
    }
    let needs_scratch = manifest.documents.iter().any(|d| matches!(d.source, DocumentSource::Inline(_)));
    let scratch = if needs_scratch { Some(tempfile::Builder::new().prefix("nachweis-inline-").tempdir()?) } else { None };
    let mut documents = Vec::new();
    for (i, d) in manifest.documents.iter().enumerate() {
        let prepared = match &d.source {
            DocumentSource::Path(p) => prepare(d.clone(), root.join(p), None),
            DocumentSource::Inline(b64) => {
                let dir = scratch.as_ref().expect("scratch dir for inline documents").path();
                let cleaned: String = b64.chars().filter(|c| !c.is_whitespace()).collect();
                match base64::engine::general_purpose::STANDARD.decode(cleaned.as_bytes()) {
                    Ok(bytes) if bytes.len() as u64 > MAX_DOCUMENT_BYTES => PreparedDocument {
                        reference: d.clone(),
                        file: None,
                        sha256: None,
                        problem: problem(ProblemKind::TooLarge, "eingebettete Datei zu groß"),
                    },
                    Ok(bytes) => {
                        // The file name is ours (index-based), never the applicant's.
                        let path = dir.join(format!("doc-{i}"));
                        std::fs::write(&path, &bytes)?;
                        prepare(d.clone(), path, Some(bytes))
                    }
                    Err(_) => PreparedDocument {
                        reference: d.clone(),
                        file: None,
                        sha256: None,
                        problem: problem(ProblemKind::Damaged, "content_base64 ist kein gültiges Base64"),
                    },
                }
            }
        };
        documents.push(prepared);
    }
    Ok(IntakeBundle { manifest, raw_manifest: raw, documents, _scratch: scratch })
}

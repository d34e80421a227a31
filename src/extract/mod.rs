//! Extraction: turns uploaded files into page text (`ExtractedDocument`).
//!
//! Untrusted parsing (PDF, images, Tesseract) never runs in the worker
//! process: `SandboxExtractor` starts `nachweis sandbox-extract` as a child
//! with rlimits, a wall-clock timeout and no network, and reads JSON back.
//! `PageRenderer` renders page images for the case view the same way
//! (`nachweis sandbox-render`).
use crate::domain::document::ExtractedDocument;
use std::path::PathBuf;

pub mod child;
pub mod ocr;
pub mod pdf;
mod protocol;
pub mod raster;
pub mod render;
pub mod sandbox;
pub mod text_quality;

pub use render::{PageRenderer, RenderError, RenderedPage};
pub use sandbox::{Limits, RunStats, SandboxExtractor};

/// One file to extract. The file is on local disk (inline uploads are
/// written to a private temporary directory first by the caller).
#[derive(Debug, Clone)]
pub struct DocumentFile {
    pub document_id: String,
    pub media_type: String,
    pub path: PathBuf,
}

/// Capability: read the text of documents. Never fails as a whole: a file
/// that cannot be read comes back with `problem` set.
pub trait Extractor: Send + Sync {
    /// Extracts all documents, in parallel where the implementation can;
    /// the result has one entry per input, in input order.
    fn extract_all(&self, documents: &[DocumentFile]) -> Vec<ExtractedDocument>;
}

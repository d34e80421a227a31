//! What extraction hands to the pure core: the text of every page of every
//! document, where that text came from, and why a document could not be read.
//!
//! These types are the contract between `extract` (untrusted parsing in a
//! sandbox) and `domain::classify`; they carry text, never file handles.
use serde::{Deserialize, Serialize};

/// Where the text of a page came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TextSource {
    /// The PDF's own text layer, judged usable.
    TextLayer,
    /// Tesseract OCR of the page image.
    Ocr,
    /// A segment whose pages came from both sources.
    Mixed,
    /// No text could be obtained (the document failed as a whole).
    None,
}

/// The text of one page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExtractedPage {
    /// 1-based page number within the document.
    pub number: u32,
    pub text: String,
    pub source: TextSource,
    /// Mean Tesseract word confidence in 0..=100, for OCR'd pages only.
    pub ocr_confidence: Option<f32>,
}

/// Why a document yielded no usable text. The kinds are stable ids (they
/// appear in reports, metrics and dead-letter headers); the detail is for
/// people and must not contain personal data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemKind {
    /// The file named in the manifest is not in the bundle.
    MissingFile,
    /// The file's SHA-256 differs from the manifest's.
    HashMismatch,
    /// A media type nachweis does not read (e.g. Word documents).
    UnsupportedMediaType,
    /// The PDF is encrypted with a password we do not have.
    Encrypted,
    /// The file is damaged beyond what the parser could repair.
    Damaged,
    /// Too large: file size, page count, or pixel count above the limits.
    TooLarge,
    /// Parsing exceeded its time limit.
    Timeout,
    /// The sandbox process died (crash, memory limit, signal).
    ExtractorCrashed,
    /// The worker could not run extraction at all (the sandbox process could
    /// not be started): the worker's trouble, not the document's. The shell
    /// retries such a bundle instead of judging it.
    ExtractorUnavailable,
    /// The file was read but contains no recognisable text.
    NoText,
}

impl ProblemKind {
    /// German wording for caseworkers and letters ("die Datei ist …").
    pub fn label_de(self) -> &'static str {
        match self {
            ProblemKind::MissingFile => "die Datei fehlt in der Einreichung",
            ProblemKind::HashMismatch => "die Datei wurde bei der Übermittlung verändert (Prüfsumme stimmt nicht)",
            ProblemKind::UnsupportedMediaType => "das Dateiformat wird nicht unterstützt",
            ProblemKind::Encrypted => "die Datei ist mit einem Passwort geschützt",
            ProblemKind::Damaged => "die Datei ist beschädigt",
            ProblemKind::TooLarge => "die Datei ist zu groß",
            ProblemKind::Timeout => "die Datei konnte nicht in angemessener Zeit gelesen werden",
            ProblemKind::ExtractorCrashed => "die Datei konnte nicht gelesen werden",
            ProblemKind::ExtractorUnavailable => "die Datei konnte wegen einer technischen Störung noch nicht gelesen werden",
            ProblemKind::NoText => "auf dem Dokument ist kein lesbarer Text zu erkennen",
        }
    }

    /// The reason as a German subordinate clause, for "…, weil {}."
    /// in letters (verb last: "sie beschädigt ist").
    pub fn because_de(self) -> &'static str {
        match self {
            ProblemKind::MissingFile => "sie in der Einreichung fehlt",
            ProblemKind::HashMismatch => "sie bei der Übermittlung verändert wurde",
            ProblemKind::UnsupportedMediaType => "ihr Dateiformat nicht unterstützt wird (bitte PDF, JPEG, PNG oder TIFF)",
            ProblemKind::Encrypted => "sie mit einem Passwort geschützt ist",
            ProblemKind::Damaged => "sie beschädigt ist",
            ProblemKind::TooLarge => "sie zu groß ist",
            ProblemKind::Timeout | ProblemKind::ExtractorCrashed => "sie nicht gelesen werden konnte",
            ProblemKind::ExtractorUnavailable => "sie wegen einer technischen Störung nicht gelesen werden konnte",
            ProblemKind::NoText => "auf ihr kein lesbarer Text zu erkennen ist",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ProblemKind::MissingFile => "missing_file",
            ProblemKind::HashMismatch => "hash_mismatch",
            ProblemKind::UnsupportedMediaType => "unsupported_media_type",
            ProblemKind::Encrypted => "encrypted",
            ProblemKind::Damaged => "damaged",
            ProblemKind::TooLarge => "too_large",
            ProblemKind::Timeout => "timeout",
            ProblemKind::ExtractorCrashed => "extractor_crashed",
            ProblemKind::ExtractorUnavailable => "extractor_unavailable",
            ProblemKind::NoText => "no_text",
        }
    }
}

/// A document could not be read; `detail` says what exactly (no personal data).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DocumentProblem {
    pub kind: ProblemKind,
    pub detail: String,
}

/// Everything extraction learned about one uploaded document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExtractedDocument {
    /// The manifest's `document_id`.
    pub document_id: String,
    /// Pages with text; empty when `problem` is set for the whole file.
    pub pages: Vec<ExtractedPage>,
    /// Set when the document as a whole could not be read.
    pub problem: Option<DocumentProblem>,
}

//! The approved Nachforderungsschreiben as a PDF in DIN 5008 Form B layout,
//! with both fonts embedded as subsets and a ToUnicode map, rendered
//! deterministically so its hash can go into the audit log.
//!
//! Measures (DIN 5008:2020, Form B), as given by these public summaries:
//! address field 85 × 45 mm at 20 mm from the left and 45 mm from the top,
//! its Zusatz- und Vermerkzone (with the return address) 17.7 mm high and
//! the Anschriftzone below it 27.3 mm / six lines from 62.7 mm
//! (<https://www.din-5008-richtlinien.de/startseite/anschriftenfeld/>,
//! <https://www.sekretaria.de/bueroorganisation/korrespondenz/din-5008/absender/>);
//! information block from 125 mm to at most 10 mm before the right edge,
//! top at 50 mm (<https://www.sekretaria.de/bueroorganisation/korrespondenz/din-5008/informationsblock/>);
//! margins 25 mm left and 20 mm right
//! (<https://www.sekretaria.de/bueroorganisation/korrespondenz/din-5008/seitenrand/>);
//! fold marks at 105 and 210 mm and the hole mark at 148.5 mm
//! (<https://de.wiki.li/Falzmarke>, a copy of the German Wikipedia article,
//! citing DIN 5008:2020-03 section 19).
//!
//! Everything in a `LetterDocument` is data: applicant names and addresses
//! are printed as text, never interpreted. Entry points: `Fonts::load`
//! once at start-up, then `render_letter` per approval.
mod fonts;
mod layout;
mod pdf;

use chrono::NaiveDate;
use serde::Serialize;

use crate::domain::draft::{Draft, Letterhead, REVIEW_NOTES_HEADING};

pub use fonts::{BOLD_FILE, FontError, Fonts, REGULAR_FILE};

/// Everything printed on the letter.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LetterDocument {
    /// Authority, department, return address and the caseworker contact
    /// shown in the information block.
    pub letterhead: Letterhead,
    /// The recipient's lines (DIN 5008: at most six, no blank lines).
    pub address: Vec<String>,
    /// "Ihr Zeichen", when the applicant gave one.
    pub your_reference: Option<String>,
    /// "Unser Zeichen": the case id.
    pub reference: String,
    pub date: NaiveDate,
    /// Printed in bold above the body.
    pub subject: String,
    /// The text as the caseworker approved it, from the salutation to the
    /// signature: paragraphs separated by blank lines, line breaks kept,
    /// list items starting with "– " or "• ".
    pub body: String,
    /// The enclosure note after the closing ("Anlage"/"Anlagen" + lines);
    /// lines starting with "– " detail the enclosure before them.
    pub enclosures: Vec<String>,
}

impl LetterDocument {
    /// The letter for a draft, with the approved body text.
    pub fn from_draft(draft: &Draft, body: impl Into<String>, enclosures: Vec<String>) -> LetterDocument {
        LetterDocument {
            letterhead: draft.letterhead.clone(),
            address: draft.address.clone(),
            your_reference: None,
            reference: draft.reference.clone(),
            date: draft.date,
            subject: draft.subject.clone(),
            body: body.into(),
            enclosures,
        }
    }
}

/// The part of a draft that becomes the letter body and that the review
/// UI offers for editing: from the salutation to the signature, without
/// the header the PDF prints from the draft's fields and without the
/// caseworker-only notes. Drafts made before `Draft::body` existed are cut
/// out of their full text.
pub fn editable_body(draft: &Draft) -> String {
    if !draft.body.trim().is_empty() {
        return draft.body.trim().to_string();
    }
    let text = match draft.text.find(REVIEW_NOTES_HEADING) {
        Some(i) => &draft.text[..i],
        None => draft.text.as_str(),
    };
    let after_subject = text
        .match_indices(draft.subject.as_str())
        .find(|(i, _)| *i == 0 || text.as_bytes()[i - 1] == b'\n')
        .map(|(i, s)| &text[i + s.len()..])
        .unwrap_or(text);
    after_subject.trim().to_string()
}

/// Why a letter could not be rendered. Every variant is something the
/// caseworker can fix in the draft, except `Font`.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum LetterError {
    #[error("the letter has no recipient address")]
    EmptyAddress,
    #[error("the recipient address needs {lines} lines; the DIN 5008 address field holds {max}")]
    AddressTooLong { lines: usize, max: usize },
    #[error("the subject needs {lines} lines; at most {max} fit")]
    SubjectTooLong { lines: usize, max: usize },
    #[error("the letter has no text")]
    EmptyBody,
    #[error("the letter would be longer than {max_pages} pages")]
    TooLong { max_pages: usize },
    #[error("font problem: {0}")]
    Font(String),
}

impl LetterError {
    /// The message for the caseworker, in German.
    pub fn message_de(&self) -> String {
        match self {
            LetterError::EmptyAddress => "Das Schreiben hat keine Empfängeranschrift.".into(),
            LetterError::AddressTooLong { lines, max } => format!(
                "Die Anschrift braucht {lines} Zeilen; im Anschriftfeld nach DIN 5008 ist Platz für {max}. Bitte kürzen Sie die Anschrift."
            ),
            LetterError::SubjectTooLong { lines, max } => {
                format!("Der Betreff braucht {lines} Zeilen; es passen höchstens {max}. Bitte kürzen Sie den Betreff.")
            }
            LetterError::EmptyBody => "Das Schreiben hat keinen Text.".into(),
            LetterError::TooLong { max_pages } => {
                format!("Das Schreiben wäre länger als {max_pages} Seiten. Bitte kürzen Sie den Text.")
            }
            LetterError::Font(_) => "Die Schrift für das PDF konnte nicht eingebettet werden (Systemfehler).".into(),
        }
    }
}

/// Renders the letter as PDF bytes. Deterministic: the same document and
/// fonts give the same bytes.
pub fn render_letter(doc: &LetterDocument, fonts: &Fonts) -> Result<Vec<u8>, LetterError> {
    if doc.body.trim().is_empty() {
        return Err(LetterError::EmptyBody);
    }
    let pages = layout::layout(doc, fonts)?;
    let mut id_source = serde_json::to_vec(doc).unwrap_or_default();
    id_source.extend_from_slice(fonts.regular.postscript_name.as_bytes());
    id_source.extend_from_slice(fonts.bold.postscript_name.as_bytes());
    pdf::write(doc, &pages, fonts, &id_source)
}

/// How many pages the letter has, without writing the PDF (for previews).
pub fn page_count(doc: &LetterDocument, fonts: &Fonts) -> Result<usize, LetterError> {
    Ok(layout::layout(doc, fonts)?.len())
}

/// The review service's `LetterRenderer`: the approved body with the
/// draft's header fields, and as enclosure the overview of what arrived
/// (printed under the enclosure note, so the applicant sees what counted).
pub struct PdfLetters {
    pub fonts: Fonts,
}

impl crate::review::LetterRenderer for PdfLetters {
    fn render(&self, draft: &Draft, body: &str) -> Result<Vec<u8>, String> {
        let mut enclosures = draft.enclosures.clone();
        if enclosures.iter().any(|e| e == crate::domain::draft::ENCLOSURE_RECEIVED) && !draft.received.is_empty() {
            enclosures = enclosures
                .into_iter()
                .map(|e| if e == crate::domain::draft::ENCLOSURE_RECEIVED { format!("{e}:") } else { e })
                .collect();
            enclosures.extend(draft.received.iter().map(|r| format!("– {r}")));
        }
        let doc = LetterDocument::from_draft(draft, body, enclosures);
        render_letter(&doc, &self.fonts).map_err(|e| e.message_de())
    }
}

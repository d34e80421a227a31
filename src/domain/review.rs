//! What the pure core needs to know about caseworker decisions: corrections
//! of a segment's document type (applied before the check runs again), the
//! conditions an edited letter must still meet before it may be approved,
//! and the line diff of an edit that the audit log keeps.
//!
//! The human decides; these functions only make that decision explicit and
//! stop an approval that would send a legally incomplete request.
use serde::{Deserialize, Serialize};

use super::catalogue::{Catalogue, UNKNOWN};
use super::classify::Segment;
use super::dates::date_de;
use super::draft::{Draft, DraftKind};

/// A caseworker's statement that a segment is of another document type.
/// Segments are identified by their upload and first page, which stay the
/// same when the case is checked again from the same extracted text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Correction {
    /// The segment's `document_id` as it appears in the report (for late
    /// bundles qualified as `<bundle_id>/<document_id>`).
    pub document_id: String,
    pub first_page: u32,
    /// The catalogue id the caseworker chose.
    pub doc_type: String,
}

/// Why a correction cannot be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CorrectionError {
    #[error("unbekannter Dokumenttyp „{0}“")]
    UnknownType(String),
    #[error("kein Dokumentabschnitt {document_id} ab Seite {first_page} in diesem Fall")]
    NoSuchSegment { document_id: String, first_page: u32 },
    #[error("der Abschnitt ist nicht lesbar; ein Dokumenttyp kann ihm nicht zugewiesen werden")]
    Unreadable,
}

/// Checks a correction against the segments and the catalogue before it is
/// recorded, so that only corrections that will take effect are stored.
pub fn validate_correction(segments: &[Segment], correction: &Correction, catalogue: &Catalogue) -> Result<(), CorrectionError> {
    if !catalogue.knows(&correction.doc_type) {
        return Err(CorrectionError::UnknownType(correction.doc_type.clone()));
    }
    let seg = segments
        .iter()
        .find(|s| s.document_id == correction.document_id && s.first_page == correction.first_page)
        .ok_or_else(|| CorrectionError::NoSuchSegment {
            document_id: correction.document_id.clone(),
            first_page: correction.first_page,
        })?;
    if !seg.is_readable() {
        return Err(CorrectionError::Unreadable);
    }
    Ok(())
}

/// Applies corrections to classified segments; a later correction of the
/// same segment wins. Corrections that match no segment (or name an
/// unknown type) are ignored here: `validate_correction` refuses them
/// before they are stored. Returns the indices of corrected segments.
pub fn apply_corrections(segments: &mut [Segment], corrections: &[Correction], catalogue: &Catalogue) -> Vec<usize> {
    let mut corrected = Vec::new();
    for c in corrections {
        if !catalogue.knows(&c.doc_type) {
            continue;
        }
        let Some((i, seg)) = segments
            .iter_mut()
            .enumerate()
            .find(|(_, s)| s.document_id == c.document_id && s.first_page == c.first_page && s.is_readable())
        else {
            continue;
        };
        if seg.corrected_from.is_none() {
            seg.corrected_from = Some(seg.doc_type.clone());
        }
        seg.doc_type = c.doc_type.clone();
        seg.label = catalogue.label(&c.doc_type).to_string();
        // The caseworker's word is certain; the classifier's evidence stays
        // visible so the correction can be understood later.
        seg.score = 1.0;
        seg.reason = if c.doc_type == UNKNOWN { Some("von der Sachbearbeitung als nicht zuordenbar markiert".into()) } else { None };
        seg.declared_type_matches = seg.declared_type.as_ref().map(|d| *d == c.doc_type);
        if !corrected.contains(&i) {
            corrected.push(i);
        }
    }
    corrected
}

/// Something that stops an edited letter from being approved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApprovalProblem {
    /// Stable id (`empty`, `deadline_missing`, `notice_missing`, `notes_in_letter`, `placeholder_left`).
    pub kind: &'static str,
    /// What to fix, in German.
    pub message: String,
}

/// Checks that an edited letter still does what § 66 Abs. 3 SGB I requires
/// of a request for documents: it names the deadline and the consequence of
/// not cooperating. A caseworker may reword everything else.
pub fn approval_problems(draft: &Draft, body: &str) -> Vec<ApprovalProblem> {
    let mut out = Vec::new();
    if body.trim().is_empty() {
        out.push(ApprovalProblem { kind: "empty", message: "Das Schreiben ist leer.".into() });
        return out;
    }
    if draft.kind != DraftKind::Letter {
        return out;
    }
    let deadline = date_de(draft.deadline);
    if !body.contains(&deadline) {
        out.push(ApprovalProblem {
            kind: "deadline_missing",
            message: format!("Die Frist ({deadline}) steht nicht mehr im Schreiben. Eine Aufforderung zur Mitwirkung braucht eine angemessene Frist (§ 66 Abs. 3 SGB I)."),
        });
    }
    let folded: String = body.chars().filter(|c| !c.is_whitespace()).collect();
    if !folded.contains("§66") {
        out.push(ApprovalProblem {
            kind: "notice_missing",
            message: "Der Hinweis auf die Folgen fehlender Mitwirkung (§ 66 Abs. 3 SGB I) fehlt im Schreiben.".into(),
        });
    }
    if body.contains(super::draft::REVIEW_NOTES_HEADING) {
        out.push(ApprovalProblem {
            kind: "notes_in_letter",
            message: "Die Hinweise für die Sachbearbeitung gehören nicht in das Schreiben; bitte entfernen Sie sie.".into(),
        });
    }
    if let Some(p) = super::schema::placeholders(body).into_iter().find(|p| super::schema::LETTER_PLACEHOLDERS.contains(&p.as_str())) {
        out.push(ApprovalProblem {
            kind: "placeholder_left",
            message: format!("Im Schreiben steht noch der Platzhalter {{{p}}}."),
        });
    }
    out
}

/// A line diff of an edit in unified form (`-` removed, `+` added, two
/// lines of context), for the audit log and the caseworker's history view.
pub fn line_diff(old: &str, new: &str) -> String {
    let diff = similar::TextDiff::from_lines(old, new);
    diff.unified_diff().context_radius(2).header("vorher", "nachher").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_diff_shows_removed_and_added_lines() {
        let d = line_diff("a\nb\nc\n", "a\nB\nc\n");
        assert!(d.contains("-b\n"), "{d}");
        assert!(d.contains("+B\n"), "{d}");
    }

    #[test]
    fn an_unchanged_text_has_an_empty_diff() {
        assert_eq!(line_diff("a\nb\n", "a\nb\n"), "");
    }
}

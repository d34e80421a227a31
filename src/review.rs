//! The shell around caseworker decisions, shared by the HTML pages and the
//! JSON API: claim a case, correct a segment's type (the check re-runs),
//! edit the letter, approve (the letter is rendered and stored), reject, or
//! close a complete case. It sequences store, pure core and renderers and
//! enforces who may do what; the store makes each decision happen once.
use chrono::NaiveDate;
use std::sync::Arc;

use crate::config::Settings;
use crate::domain::Report;
use crate::domain::draft::{Draft, DraftKind};
use crate::domain::review::{self, ApprovalProblem, Correction};
use crate::store::review::{
    CaseDetail, ClaimOutcome, Decision, DecisionOutcome, DraftChange, DraftRecord, NewDraftVersion, Role, Scope, User,
};
use crate::store::{Store, StoreError};
use crate::worker::{self, CaseCorrection};

/// Capability: render an approved letter as PDF (DIN 5008). Given the
/// structured draft and the body text as the caseworker approved it.
pub trait LetterRenderer: Send + Sync {
    fn render(&self, draft: &Draft, body: &str) -> Result<Vec<u8>, String>;
}

/// Why a review action did not happen. Messages are German and meant for
/// the caseworker; they never carry internals.
#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    /// Unknown case, or one of another tenant (indistinguishable on purpose).
    #[error("Fall nicht gefunden.")]
    NotFound,
    #[error("{0}")]
    Forbidden(&'static str),
    /// The action conflicts with the case's state (claimed by a colleague,
    /// draft changed meanwhile, already decided).
    #[error("{0}")]
    Conflict(String),
    /// The input cannot be accepted; each message says what to fix.
    #[error("{}", .0.join(" "))]
    Invalid(Vec<String>),
    #[error("Die Datenbank ist gerade nicht erreichbar. Bitte versuchen Sie es gleich noch einmal.")]
    Unavailable,
    #[error("Interner Fehler: {0}")]
    Internal(String),
}

impl From<StoreError> for ReviewError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(_) => ReviewError::NotFound,
            StoreError::Unavailable(_) => ReviewError::Unavailable,
            StoreError::Conflict(m) => ReviewError::Conflict(conflict_de(&m)),
            other => ReviewError::Internal(other.to_string()),
        }
    }
}

/// A store conflict in the caseworker's words.
fn conflict_de(message: &str) -> String {
    if message.contains("not a letter") {
        "Dieser Entwurf ist kein Schreiben an die antragstellende Person und kann nicht freigegeben werden.".into()
    } else if message.contains("cannot close") {
        "Der Fall kann nicht als vollständig abgeschlossen werden, solange ein Nachforderungsschreiben vorliegt. Korrigieren Sie zuerst die Zuordnung der Dokumente.".into()
    } else {
        "Die Aktion widerspricht dem aktuellen Stand des Falls. Bitte laden Sie die Seite neu.".into()
    }
}

/// What a successful action did, for the confirmation message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Done {
    /// A new draft version (edit or re-check) or a decision on `draft_id`.
    Draft(i64),
    /// Nothing needed doing (an unchanged edit, a claim already held).
    Nothing,
}

/// The review service.
pub struct Review {
    pub store: Arc<dyn Store>,
    /// The schemas in force, shared with the periodic reload.
    pub schemas: crate::schemas::LiveSchemas,
    pub settings: Arc<Settings>,
    pub letters: Arc<dyn LetterRenderer>,
}

/// The longest letter text accepted (characters); a letter is a few pages.
const MAX_LETTER_CHARS: usize = 40_000;

/// The longest rejection reason accepted (characters).
const MAX_REASON_CHARS: usize = 2_000;

impl Review {
    /// Which cases `user` sees.
    pub fn scope<'a>(&'a self, user: &'a User) -> Scope<'a> {
        Scope { tenant: &user.tenant, default_tenant: &self.settings.default_tenant }
    }

    /// A case of the user's tenant.
    pub async fn case(&self, user: &User, case_id: &str) -> Result<CaseDetail, ReviewError> {
        self.store.case_detail(self.scope(user), case_id).await?.ok_or(ReviewError::NotFound)
    }

    pub async fn claim(&self, user: &User, case_id: &str, take_over: bool) -> Result<Done, ReviewError> {
        require(user, &[Role::Caseworker, Role::Admin], "Nur Sachbearbeitung und Administration können Fälle übernehmen.")?;
        match self.store.claim_case(self.scope(user), case_id, &user.username, take_over).await? {
            ClaimOutcome::Claimed => Ok(Done::Draft(0)),
            ClaimOutcome::AlreadyYours => Ok(Done::Nothing),
            ClaimOutcome::HeldBy { username } => Err(ReviewError::Conflict(format!(
                "Der Fall wird bereits von {username} bearbeitet. Sie können ihn ausdrücklich übernehmen."
            ))),
        }
    }

    pub async fn release(&self, user: &User, case_id: &str) -> Result<Done, ReviewError> {
        require(user, &[Role::Caseworker, Role::Admin], "Nur Sachbearbeitung und Administration können Fälle freigeben.")?;
        Ok(if self.store.release_case(self.scope(user), case_id, &user.username).await? { Done::Draft(0) } else { Done::Nothing })
    }

    /// Corrects the type of the segment starting at `first_page` of
    /// `document_id` (the report's id) and re-runs the check of the case.
    pub async fn correct(
        &self,
        user: &User,
        case_id: &str,
        draft_id: i64,
        document_id: &str,
        first_page: u32,
        doc_type: &str,
        today: NaiveDate,
    ) -> Result<Done, ReviewError> {
        require_caseworker(user)?;
        let detail = self.case(user, case_id).await?;
        let draft = current(&detail, draft_id)?;
        let report = report_of(draft)?;
        let correction = Correction { document_id: document_id.into(), first_page, doc_type: doc_type.into() };
        review::validate_correction(&report.segments, &correction, &self.schemas.current().catalogue)
            .map_err(|e| ReviewError::Invalid(vec![format!("Die Korrektur ist nicht möglich: {e}.")]))?;
        let previous = report
            .segments
            .iter()
            .find(|s| s.document_id == document_id && s.first_page == first_page)
            .map(|s| s.doc_type.clone())
            .unwrap_or_default();
        if previous == doc_type {
            return Ok(Done::Nothing);
        }
        let bundle_ids: Vec<&str> = detail.bundles.iter().map(|b| b.bundle_id.as_str()).collect();
        let (bundle_id, plain_id) = worker::split_report_document_id(&report.bundle_id, &bundle_ids, document_id)
            .ok_or_else(|| ReviewError::Invalid(vec!["Das Dokument gehört nicht zu diesem Fall.".into()]))?;
        let mut corrections: Vec<CaseCorrection> = detail.corrections.iter().map(CaseCorrection::from).collect();
        corrections.push(CaseCorrection {
            bundle_id: bundle_id.to_string(),
            document_id: plain_id.to_string(),
            first_page,
            doc_type: doc_type.to_string(),
        });
        let rechecked = self.recheck(case_id, &corrections, today).await?;
        let version = NewDraftVersion {
            case_id: case_id.to_string(),
            replaces: draft.draft_id,
            actor: user.username.clone(),
            kind: rechecked.draft.kind.as_str().to_string(),
            text: rechecked.draft.body.clone(),
            body: serde_json::to_value(&rechecked.draft).map_err(|e| ReviewError::Internal(e.to_string()))?,
            report: serde_json::to_value(&rechecked).map_err(|e| ReviewError::Internal(e.to_string()))?,
            verdict: rechecked.verdict.as_str().to_string(),
            schema_version: rechecked.schema_version.clone(),
            change: DraftChange::Correction {
                bundle_id: bundle_id.to_string(),
                document_id: plain_id.to_string(),
                first_page,
                doc_type: doc_type.to_string(),
                previous_type: previous,
            },
        };
        settle(self.store.save_draft_version(self.scope(user), &version).await?)
    }

    /// Saves an edited letter text as a new draft version.
    pub async fn edit(&self, user: &User, case_id: &str, draft_id: i64, text: &str) -> Result<Done, ReviewError> {
        require_caseworker(user)?;
        let text = normalise_text(text);
        if text.chars().count() > MAX_LETTER_CHARS {
            return Err(ReviewError::Invalid(vec![format!("Der Text ist zu lang (höchstens {MAX_LETTER_CHARS} Zeichen).")]));
        }
        if text.trim().is_empty() {
            return Err(ReviewError::Invalid(vec!["Der Text darf nicht leer sein.".into()]));
        }
        let detail = self.case(user, case_id).await?;
        let draft = current(&detail, draft_id)?;
        if draft.text == text {
            return Ok(Done::Nothing);
        }
        let report = draft.report.clone().unwrap_or_default();
        let version = NewDraftVersion {
            case_id: case_id.to_string(),
            replaces: draft.draft_id,
            actor: user.username.clone(),
            kind: draft.kind.clone(),
            text: text.clone(),
            body: draft.body.clone(),
            report,
            verdict: detail.case.verdict.clone(),
            schema_version: detail.case.schema_version.clone(),
            change: DraftChange::Edit { diff: review::line_diff(&draft.text, &text) },
        };
        settle(self.store.save_draft_version(self.scope(user), &version).await?)
    }

    /// What stops the current text of a draft from being approved.
    pub fn approval_problems(&self, draft: &DraftRecord) -> Result<Vec<ApprovalProblem>, ReviewError> {
        let structured = draft_of(draft)?;
        Ok(review::approval_problems(&structured, &draft.text))
    }

    /// Approves the pending letter `draft_id`: renders it and stores the PDF,
    /// once. A second approval (double click, a colleague) changes nothing.
    pub async fn approve(&self, user: &User, case_id: &str, draft_id: i64) -> Result<Done, ReviewError> {
        require_caseworker(user)?;
        let detail = self.case(user, case_id).await?;
        let Some(draft) = detail.drafts.iter().find(|d| d.draft_id == draft_id) else {
            return Err(ReviewError::NotFound);
        };
        if draft.status != "pending_review" {
            // Decided or replaced already: say so instead of rendering again.
            // A later version approved means this request repeats an
            // approval that went through (a double click on "save and approve").
            let later_approved = detail.drafts.iter().any(|d| d.version > draft.version && d.status == "approved");
            return settle(match draft.status.as_str() {
                "superseded" if later_approved => DecisionOutcome::AlreadyDecided { status: "approved".into() },
                "superseded" => DecisionOutcome::Stale { current_draft_id: detail.pending_draft().map(|d| d.draft_id) },
                status => DecisionOutcome::AlreadyDecided { status: status.to_string() },
            });
        }
        if draft.kind != DraftKind::Letter.as_str() {
            return Err(ReviewError::Conflict(conflict_de("not a letter")));
        }
        if detail.case.assignee.as_deref() != Some(user.username.as_str()) {
            return Err(not_assignee(detail.case.assignee.as_deref()));
        }
        let structured = draft_of(draft)?;
        let problems = review::approval_problems(&structured, &draft.text);
        if !problems.is_empty() {
            return Err(ReviewError::Invalid(problems.into_iter().map(|p| p.message).collect()));
        }
        let letters = Arc::clone(&self.letters);
        let body = draft.text.clone();
        let pdf = tokio::task::spawn_blocking(move || letters.render(&structured, &body))
            .await
            .map_err(|e| ReviewError::Internal(format!("letter rendering task failed: {e}")))?
            .map_err(|e| ReviewError::Internal(format!("Das Schreiben konnte nicht als PDF erzeugt werden: {e}")))?;
        let sha256 = {
            use sha2::{Digest, Sha256};
            hex::encode(Sha256::digest(&pdf))
        };
        settle(self.store.decide(self.scope(user), case_id, draft_id, &user.username, &Decision::Approve { pdf, sha256 }).await?)
    }

    /// The PDF the current text of a letter draft would give, without
    /// approving or storing anything (the caseworker's preview).
    pub async fn preview(&self, user: &User, case_id: &str, draft_id: i64) -> Result<Vec<u8>, ReviewError> {
        let detail = self.case(user, case_id).await?;
        let draft = detail.drafts.iter().find(|d| d.draft_id == draft_id).ok_or(ReviewError::NotFound)?;
        if draft.kind != DraftKind::Letter.as_str() {
            return Err(ReviewError::NotFound);
        }
        let structured = draft_of(draft)?;
        let (letters, body) = (Arc::clone(&self.letters), draft.text.clone());
        tokio::task::spawn_blocking(move || letters.render(&structured, &body))
            .await
            .map_err(|e| ReviewError::Internal(format!("letter rendering task failed: {e}")))?
            .map_err(|e| ReviewError::Invalid(vec![e]))
    }

    pub async fn reject(&self, user: &User, case_id: &str, draft_id: i64, reason: &str) -> Result<Done, ReviewError> {
        require_caseworker(user)?;
        let reason = normalise_text(reason);
        let reason = reason.trim();
        if reason.chars().count() < 5 {
            return Err(ReviewError::Invalid(vec!["Bitte geben Sie einen Grund für die Ablehnung an.".into()]));
        }
        if reason.chars().count() > MAX_REASON_CHARS {
            return Err(ReviewError::Invalid(vec![format!("Der Grund ist zu lang (höchstens {MAX_REASON_CHARS} Zeichen).")]));
        }
        settle(self.store.decide(self.scope(user), case_id, draft_id, &user.username, &Decision::Reject { reason: reason.to_string() }).await?)
    }

    pub async fn close_complete(&self, user: &User, case_id: &str, draft_id: i64) -> Result<Done, ReviewError> {
        require_caseworker(user)?;
        settle(self.store.decide(self.scope(user), case_id, draft_id, &user.username, &Decision::CloseComplete).await?)
    }

    /// Re-checks a case with the given corrections, from stored extraction.
    async fn recheck(&self, case_id: &str, corrections: &[CaseCorrection], today: NaiveDate) -> Result<Report, ReviewError> {
        let manifests = self.store.case_manifests(case_id).await?;
        let documents = self.store.case_documents(case_id).await?;
        let (schemas, settings, corrections, case_id) =
            (self.schemas.current(), Arc::clone(&self.settings), corrections.to_vec(), case_id.to_string());
        tokio::task::spawn_blocking(move || {
            worker::recheck_case(&schemas, &settings, &manifests, &documents, &corrections, &case_id, today)
        })
        .await
        .map_err(|e| ReviewError::Internal(format!("re-check task failed: {e}")))?
        .map_err(|e| ReviewError::Internal(e.to_string()))
    }
}

fn require(user: &User, roles: &[Role], message: &'static str) -> Result<(), ReviewError> {
    if roles.contains(&user.role) { Ok(()) } else { Err(ReviewError::Forbidden(message)) }
}

/// Only the Sachbearbeitung decides about letters (§ 31a SGB X: a person
/// decides); administrators and auditors do not.
fn require_caseworker(user: &User) -> Result<(), ReviewError> {
    require(user, &[Role::Caseworker], "Nur die Sachbearbeitung kann Entwürfe bearbeiten und entscheiden.")
}

fn not_assignee(assignee: Option<&str>) -> ReviewError {
    ReviewError::Conflict(match assignee {
        Some(a) => format!("Der Fall wird von {a} bearbeitet. Übernehmen Sie ihn zuerst."),
        None => "Bitte übernehmen Sie den Fall zuerst, damit niemand gleichzeitig daran arbeitet.".into(),
    })
}

/// The pending draft, if it is `draft_id`; otherwise the page is outdated.
fn current(detail: &CaseDetail, draft_id: i64) -> Result<&DraftRecord, ReviewError> {
    match detail.pending_draft() {
        Some(d) if d.draft_id == draft_id => Ok(d),
        Some(_) => Err(ReviewError::Conflict(
            "Der Entwurf wurde inzwischen geändert (neue Fassung oder nachgereichte Unterlagen). Bitte prüfen Sie die aktuelle Fassung.".into(),
        )),
        None => Err(ReviewError::Conflict("Zu diesem Fall wartet kein Entwurf mehr auf eine Entscheidung.".into())),
    }
}

/// The structured draft stored with a draft version.
pub fn draft_of(draft: &DraftRecord) -> Result<Draft, ReviewError> {
    serde_json::from_value(draft.body.clone()).map_err(|e| ReviewError::Internal(format!("stored draft {} unreadable: {e}", draft.draft_id)))
}

/// The check report a draft version was made from.
pub fn report_of(draft: &DraftRecord) -> Result<Report, ReviewError> {
    let value = draft.report.clone().ok_or_else(|| ReviewError::Internal(format!("draft {} has no report", draft.draft_id)))?;
    serde_json::from_value(value).map_err(|e| ReviewError::Internal(format!("stored report of draft {} unreadable: {e}", draft.draft_id)))
}

/// Maps the store's outcome of a once-only write to the caller's words.
fn settle(outcome: DecisionOutcome) -> Result<Done, ReviewError> {
    match outcome {
        DecisionOutcome::Done { draft_id } => Ok(Done::Draft(draft_id)),
        DecisionOutcome::AlreadyDecided { status } => Err(ReviewError::Conflict(match status.as_str() {
            "approved" => "Dieser Entwurf ist bereits entschieden (freigegeben); es wurde nichts erneut ausgelöst.".into(),
            _ => "Dieser Entwurf ist bereits entschieden (abgelehnt); es wurde nichts geändert.".into(),
        })),
        DecisionOutcome::Stale { .. } => Err(ReviewError::Conflict(
            "Der Entwurf wurde inzwischen geändert (neue Fassung oder nachgereichte Unterlagen). Bitte prüfen Sie die aktuelle Fassung.".into(),
        )),
        DecisionOutcome::NotAssignee { assignee } => Err(not_assignee(assignee.as_deref())),
    }
}

/// Line breaks as `\n`, no other control characters, no trailing spaces:
/// browsers send `\r\n` from text areas.
fn normalise_text(text: &str) -> String {
    let text = text.replace("\r\n", "\n").replace('\r', "\n");
    let cleaned: String = text.chars().filter(|c| *c == '\n' || *c == '\t' || !c.is_control()).collect();
    let mut out: String = cleaned.lines().map(str::trim_end).collect::<Vec<_>>().join("\n");
    if !out.is_empty() {
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_area_line_breaks_and_control_characters_are_normalised() {
        assert_eq!(normalise_text("a \r\nb\u{7}\rc"), "a\nb\nc\n");
        assert_eq!(normalise_text(""), "");
    }
}

//! Drafting: the Nachforderungsschreiben for an incomplete bundle (DESIGN
//! §5), or a review note for a complete or doubtful one. The draft is plain
//! structured data plus its text; PDF rendering happens only on approval.
//!
//! Applicant text is inserted verbatim into fixed slots (control characters
//! removed) and never read as template syntax.
use chrono::{Datelike, Duration, NaiveDate, Weekday};
use serde::{Deserialize, Serialize};

use super::bundle::Manifest;
use super::catalogue::Catalogue;
use super::check::{BundleVerdict, Finding, RequirementVerdict};
use super::classify::Segment;
use super::dates::date_de;
use super::schema::ProcedureSchema;

/// The authority's letterhead and contact, from configuration per tenant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Letterhead {
    /// "Landkreis Musterland"
    pub authority: String,
    /// "Jugendamt – Unterhaltsvorschusskasse"
    pub department: String,
    /// Return address line above the address field (DIN 5008).
    pub return_address: String,
    pub contact_name: String,
    pub contact_phone: String,
    pub contact_email: String,
    pub office_hours: String,
    /// How documents can be handed in (portal, post, in person).
    pub submission: String,
}

impl Default for Letterhead {
    fn default() -> Self {
        Letterhead {
            authority: "Landkreis Musterland".into(),
            department: "Jugendamt – Unterhaltsvorschusskasse".into(),
            return_address: "Landkreis Musterland · Jugendamt · Schloßplatz 1 · 12345 Musterstadt".into(),
            contact_name: "Ihre Sachbearbeitung".into(),
            contact_phone: "01234 567-0".into(),
            contact_email: "uvg@landkreis-musterland.example".into(),
            office_hours: "Mo–Fr 8:30–12:00 Uhr, Do 14:00–17:30 Uhr".into(),
            submission: "Sie können die Unterlagen über das Online-Portal des Landkreises hochladen, per Post an die oben genannte Anschrift senden oder während der Sprechzeiten persönlich abgeben. Bitte geben Sie dabei immer das Aktenzeichen an.".into(),
        }
    }
}

/// What kind of review item a draft is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DraftKind {
    /// A Nachforderungsschreiben to approve and send.
    Letter,
    /// Nothing missing: the caseworker closes the check as complete.
    ReadyForProcessing,
    /// Nothing surely missing, but some verdicts need a person first.
    Clarification,
}

impl DraftKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DraftKind::Letter => "letter",
            DraftKind::ReadyForProcessing => "ready_for_processing",
            DraftKind::Clarification => "clarification",
        }
    }
}

/// One requested document in the letter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LetterItem {
    pub requirement: String,
    pub child: Option<usize>,
    /// Index into the finding's person list, for lists other than children.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub person: Option<usize>,
    /// The plain-language sentence: what to send and why.
    pub text: String,
}

/// A drafted review item. `text` is what the caseworker reads and edits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Draft {
    pub kind: DraftKind,
    pub letterhead: Letterhead,
    /// DIN 5008 address field lines (without the return address).
    pub address: Vec<String>,
    pub date: NaiveDate,
    pub deadline: NaiveDate,
    pub reference: String,
    pub subject: String,
    pub salutation: String,
    pub items: Vec<LetterItem>,
    /// The § 66 Abs. 3 SGB I notice.
    pub legal_notice: String,
    /// Things the caseworker must look at (uncertain verdicts, unknown documents).
    pub review_notes: Vec<String>,
    /// The enclosure note of the letter ("Anlage"), one line per enclosure.
    #[serde(default)]
    pub enclosures: Vec<String>,
    /// The enclosed overview of what arrived: one line per upload with the
    /// type it was recognised as, so the applicant sees what was counted.
    #[serde(default)]
    pub received: Vec<String>,
    /// The part of the letter a caseworker edits: from the salutation to the
    /// signature (letterhead, address field, information block and subject
    /// are laid out around it when the letter is rendered).
    #[serde(default)]
    pub body: String,
    /// The whole draft as plain text (letter and notes for the caseworker).
    pub text: String,
}

/// Removes control characters and folds whitespace in applicant text, and
/// bounds its length, so names and file names cannot break the layout.
pub fn clean(applicant_text: &str) -> String {
    let s: String = applicant_text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    let s = s.split_whitespace().collect::<Vec<_>>().join(" ");
    s.chars().take(120).collect()
}

/// Fills `{kind}` and `{kind_geburtsdatum}` in one pass, so a value that
/// itself contains braces is copied, not expanded.
fn fill(template: &str, values: &[(&str, String)]) -> String {
    let mut out = String::with_capacity(template.len() + 32);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find('}') {
            Some(close) => {
                let name = &after[..close];
                match values.iter().find(|(k, _)| *k == name) {
                    Some((_, v)) => out.push_str(v),
                    None => {
                        out.push('{');
                        out.push_str(name);
                        out.push('}');
                    }
                }
                rest = &after[close + 1..];
            }
            None => {
                out.push_str(&rest[open..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// The deadline: `days` after the letter's date, moved to the next working
/// day when it falls on a weekend (§ 26 Abs. 3 SGB X). Public holidays
/// differ by Land and are left to the caseworker.
pub fn deadline(from: NaiveDate, days: u32) -> NaiveDate {
    let mut d = from + Duration::days(i64::from(days));
    while matches!(d.weekday(), Weekday::Sat | Weekday::Sun) {
        d += Duration::days(1);
    }
    d
}

/// The § 66 Abs. 3 SGB I notice: names the consequence and the deadline.
pub fn legal_notice(deadline: NaiveDate, law: &str) -> String {
    format!(
        "Bitte beachten Sie: Sie sind nach § 60 Abs. 1 Erstes Buch Sozialgesetzbuch (SGB I) verpflichtet, Beweisurkunden vorzulegen, \
         die für die Leistung erheblich sind. Wenn Sie die angeforderten Unterlagen nicht bis zum {} einreichen und dadurch die \
         Aufklärung des Sachverhalts erheblich erschwert wird, können die Leistungen nach dem {law} gemäß § 66 Abs. 1 SGB I \
         ganz oder teilweise bis zur Nachholung der Mitwirkung versagt werden. Auf diese Folge weisen wir Sie hiermit nach \
         § 66 Abs. 3 SGB I schriftlich hin. Reichen Sie die Unterlagen später nach, prüfen wir nach § 67 SGB I, ob die \
         Leistungen nachträglich erbracht werden können.",
        date_de(deadline)
    )
}

/// Drafts the review item for a checked bundle.
pub fn draft(
    manifest: &Manifest,
    case_reference: &str,
    findings: &[Finding],
    segments: &[Segment],
    verdict: BundleVerdict,
    schema: &ProcedureSchema,
    catalogue: &Catalogue,
    letterhead: &Letterhead,
    today: NaiveDate,
) -> Draft {
    let due = deadline(today, schema.procedure.deadline_days);
    let applicant_name = clean(&format!("{} {}", manifest.applicant.given_name, manifest.applicant.family_name));
    let mut address = vec![applicant_name.clone()];
    if let Some(a) = &manifest.applicant.address {
        address.push(clean(&a.street));
        address.push(clean(&format!("{} {}", a.postal_code, a.city)));
    }
    let mut items = Vec::new();
    let mut review_notes = Vec::new();
    for f in findings {
        let req = schema.requirements.iter().find(|r| r.id == f.id).expect("finding of a schema requirement");
        // The person a per-person finding is about: a child or a member of
        // another list.
        let person = match (f.child, &f.list, f.person) {
            (Some(i), _, _) => manifest.members(super::schema::CHILDREN).get(i).copied(),
            (None, Some(list), Some(i)) => manifest.members(list).get(i).copied(),
            _ => None,
        };
        let values = person
            .map(|c| {
                let name = clean(&format!("{} {}", c.given_name, c.family_name));
                let born = c.birth_date.map(date_de).unwrap_or_else(|| "–".to_string());
                vec![
                    ("kind", name.clone()),
                    ("kind_geburtsdatum", born.clone()),
                    ("person", name),
                    ("person_geburtsdatum", born),
                ]
            })
            .unwrap_or_default();
        let mut text = fill(&req.letter, &values);
        match f.verdict {
            RequirementVerdict::Missing => {
                for &u in &f.unreadable_uploads {
                    let seg = &segments[u];
                    let file = manifest
                        .documents
                        .iter()
                        .find(|d| d.document_id == seg.document_id)
                        .map(|d| clean(&d.filename))
                        .unwrap_or_default();
                    let why = seg.problem.as_ref().map(|p| p.kind.because_de()).unwrap_or("sie nicht gelesen werden konnte");
                    text.push_str(&format!(
                        " Die von Ihnen hochgeladene Datei „{file}“ konnte nicht verwendet werden, weil {why}. Bitte reichen Sie eine gut lesbare Kopie ein."
                    ));
                }
                items.push(LetterItem { requirement: f.id.clone(), child: f.child, person: f.person, text });
            }
            RequirementVerdict::Expired => {
                let max_age = req.accepts.iter().filter_map(|a| a.max_age_days).max().unwrap_or(0);
                let when = f.document_date.map(date_de).unwrap_or_default();
                text.push_str(&format!(
                    " Der eingereichte Nachweis vom {when} ist älter als {max_age} Tage; bitte senden Sie uns einen aktuellen Nachweis."
                ));
                items.push(LetterItem { requirement: f.id.clone(), child: f.child, person: f.person, text });
            }
            RequirementVerdict::Uncertain => {
                let who = person.map(|c| format!(" ({})", clean(c.given_name))).unwrap_or_default();
                review_notes.push(format!("{}{}: {}", req.label, who, f.reason));
            }
            RequirementVerdict::Satisfied | RequirementVerdict::NotApplicable => {}
        }
    }
    for s in segments.iter().filter(|s| s.doc_type == super::catalogue::UNKNOWN) {
        review_notes.push(format!(
            "Dokument {} (Seite {}–{}): {}",
            s.document_id,
            s.first_page,
            s.last_page,
            s.reason.clone().unwrap_or_default()
        ));
    }
    for s in segments.iter().filter(|s| s.declared_type_matches == Some(false)) {
        let declared = s.declared_type.as_deref().unwrap_or("");
        review_notes.push(format!(
            "Dokument {} wurde als „{}“ hochgeladen, erkannt wurde „{}“",
            s.document_id,
            catalogue.label(declared),
            s.label
        ));
    }
    let kind = match verdict {
        BundleVerdict::Incomplete => DraftKind::Letter,
        BundleVerdict::Complete => DraftKind::ReadyForProcessing,
        BundleVerdict::NeedsReview => DraftKind::Clarification,
    };
    let subject = format!(
        "{}: Anforderung fehlender Unterlagen – Ihr Antrag vom {}",
        schema.procedure.title,
        date_de(manifest.received_on())
    );
    let salutation = format!("Guten Tag {applicant_name},");
    let legal = legal_notice(due, &schema.procedure.law);
    let received = received_overview(manifest, segments, catalogue);
    let enclosures = if kind == DraftKind::Letter && !received.is_empty() {
        vec![ENCLOSURE_RECEIVED.to_string()]
    } else {
        Vec::new()
    };
    // A procedure may name its own department (Wohngeldbehörde, Jugendamt);
    // the rest of the letterhead is the tenant's configuration.
    let mut letterhead = letterhead.clone();
    if let Some(department) = &schema.procedure.department {
        letterhead.department = department.clone();
    }
    let mut d = Draft {
        kind,
        letterhead,
        address,
        date: today,
        deadline: due,
        reference: case_reference.to_string(),
        subject,
        salutation,
        items,
        legal_notice: legal,
        review_notes,
        enclosures,
        received,
        body: String::new(),
        text: String::new(),
    };
    d.body = render_body(&d, &schema.procedure.title);
    d.text = render_text(&d);
    d
}

/// The line that starts the caseworker-only notes at the end of a draft's
/// text; nothing from it on is part of the letter.
pub const REVIEW_NOTES_HEADING: &str = "Hinweise für die Sachbearbeitung (nicht Teil des Schreibens):";

/// The enclosure line for the overview of received documents.
pub const ENCLOSURE_RECEIVED: &str = "Übersicht der bereits eingegangenen Unterlagen";

/// One line per upload: its file name and what it was recognised as.
fn received_overview(manifest: &Manifest, segments: &[Segment], catalogue: &Catalogue) -> Vec<String> {
    manifest
        .documents
        .iter()
        .map(|d| {
            let segs: Vec<&Segment> = segments.iter().filter(|s| s.document_id == d.document_id).collect();
            let what = if segs.is_empty() || segs.iter().all(|s| !s.is_readable()) {
                "nicht lesbar – bitte erneut einreichen".to_string()
            } else {
                let mut labels: Vec<&str> = Vec::new();
                for s in segs.iter().filter(|s| s.is_readable()) {
                    let label = if s.doc_type == super::catalogue::UNKNOWN { "noch nicht zugeordnet" } else { catalogue.label(&s.doc_type) };
                    if !labels.contains(&label) {
                        labels.push(label);
                    }
                }
                labels.join(", ")
            };
            format!("„{}“: {what}", clean(&d.filename))
        })
        .collect()
}

/// The editable letter body: salutation, requested documents, deadline,
/// how to hand them in, the § 66 Abs. 3 SGB I notice and the closing. For a
/// review note, the note itself.
pub fn render_body(d: &Draft, procedure_title: &str) -> String {
    let mut t = String::new();
    match d.kind {
        DraftKind::Letter => {
            t.push_str(&format!("{}\n\n", d.salutation));
            t.push_str(&format!(
                "vielen Dank für Ihren Antrag auf {procedure_title}. Um über Ihren Antrag entscheiden zu können, benötigen wir noch folgende Unterlagen:\n\n"
            ));
            for item in &d.items {
                t.push_str(&format!("– {}\n", item.text));
            }
            t.push_str(&format!(
                "\nBitte reichen Sie die Unterlagen bis zum {} ein.\n\n{}\n\n{}\n\n",
                date_de(d.deadline),
                d.letterhead.submission,
                d.legal_notice
            ));
            t.push_str(&format!(
                "Wenn Sie Fragen haben, erreichen Sie uns {}.\n\nMit freundlichen Grüßen\n\nIm Auftrag\n{}\n",
                d.letterhead.office_hours, d.letterhead.contact_name
            ));
        }
        DraftKind::ReadyForProcessing => {
            t.push_str(&format!(
                "Prüfvermerk {} – alle erforderlichen Unterlagen liegen vor. Der Antrag kann bearbeitet werden.\n",
                d.reference
            ));
        }
        DraftKind::Clarification => {
            t.push_str(&format!(
                "Prüfvermerk {} – keine Unterlage fehlt sicher, aber folgende Punkte müssen geprüft werden:\n",
                d.reference
            ));
        }
    }
    t
}

/// The whole draft as plain text: for a letter the letterhead, address,
/// information block and subject around the body, then the enclosures;
/// for every kind the notes for the caseworker after it.
pub fn render_text(d: &Draft) -> String {
    let mut t = String::new();
    if d.kind == DraftKind::Letter {
        t.push_str(&format!("{}\n{}\n\n", d.letterhead.authority, d.letterhead.department));
        t.push_str(&format!("{}\n\n", d.letterhead.return_address));
        for line in &d.address {
            t.push_str(line);
            t.push('\n');
        }
        t.push_str(&format!(
            "\nIhr Zeichen: –    Unser Zeichen: {}    Datum: {}\nAnsprechpartner: {}, Telefon {}, E-Mail {}\n\n",
            d.reference,
            date_de(d.date),
            d.letterhead.contact_name,
            d.letterhead.contact_phone,
            d.letterhead.contact_email
        ));
        t.push_str(&format!("{}\n\n", d.subject));
    }
    t.push_str(&d.body);
    if d.kind == DraftKind::Letter && !d.enclosures.is_empty() {
        t.push_str(&format!("\n{}\n", if d.enclosures.len() == 1 { "Anlage" } else { "Anlagen" }));
        for e in &d.enclosures {
            t.push_str(&format!("{e}\n"));
        }
        if !d.received.is_empty() {
            t.push_str(&format!("\n{ENCLOSURE_RECEIVED}:\n"));
            for r in &d.received {
                t.push_str(&format!("– {r}\n"));
            }
        }
    }
    if !d.review_notes.is_empty() {
        t.push('\n');
        t.push_str(REVIEW_NOTES_HEADING);
        t.push('\n');
        for n in &d.review_notes {
            t.push_str(&format!("• {n}\n"));
        }
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_in_applicant_text_are_copied_not_expanded() {
        let out = fill("Geburtsurkunde von {kind}.", &[("kind", "{kind_geburtsdatum} {{x}}".to_string())]);
        assert_eq!(out, "Geburtsurkunde von {kind_geburtsdatum} {{x}}.");
    }

    #[test]
    fn a_deadline_on_a_weekend_moves_to_monday() {
        let sat = NaiveDate::from_ymd_opt(2026, 12, 5).unwrap();
        assert_eq!(deadline(sat - Duration::days(14), 14), NaiveDate::from_ymd_opt(2026, 12, 7).unwrap());
    }

    #[test]
    fn control_characters_in_names_are_removed() {
        assert_eq!(clean("Anna\u{0}\n  Beispiel\u{1b}[31m"), "Anna Beispiel [31m");
    }
}

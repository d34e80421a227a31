//! The check: every requirement of the procedure schema gets exactly one
//! verdict with its reason and evidence, from the manifest's facts and
//! children and the classified segments.
//!
//! Pure and deterministic: the same inputs and schema version give the same
//! verdicts, which is what makes a decision explainable and replayable.
use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::bundle::{Manifest, Member};
use super::catalogue::Catalogue;
use super::classify::Segment;
use super::dates::date_de;
use super::schema::{Accept, CHILDREN, Condition, ProcedureSchema, Requirement};
use super::text::contains_name;

/// The verdict on one requirement (DESIGN §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RequirementVerdict {
    Satisfied,
    Missing,
    Expired,
    Uncertain,
    NotApplicable,
}

/// The verdict on the whole bundle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BundleVerdict {
    /// Everything required is there.
    Complete,
    /// Something is surely missing or expired: a letter is drafted.
    Incomplete,
    /// Nothing surely missing, but something a person must look at.
    NeedsReview,
}

impl BundleVerdict {
    pub fn as_str(self) -> &'static str {
        match self {
            BundleVerdict::Complete => "complete",
            BundleVerdict::Incomplete => "incomplete",
            BundleVerdict::NeedsReview => "needs_review",
        }
    }
}

/// One requirement's finding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    pub id: String,
    pub label: String,
    /// Index into the manifest's children for per-child requirements.
    pub child: Option<usize>,
    /// For requirements checked per person of another list (`for_each`):
    /// the list's name and the index into `persons.<list>`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub list: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub person: Option<usize>,
    pub verdict: RequirementVerdict,
    /// Indices into the report's segments that this verdict rests on.
    pub segments: Vec<usize>,
    /// Why, in German, for the caseworker.
    pub reason: String,
    /// For `expired`: the date of the newest document found.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub document_date: Option<NaiveDate>,
    /// Unreadable uploads that were meant for this requirement (by their
    /// upload slot): the letter asks for a readable copy.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unreadable_uploads: Vec<usize>,
}

/// Age in whole years on `on` (a child born on 29 February turns a year
/// older on 1 March in non-leap years, as §§ 187 Abs. 2, 188 BGB count).
pub fn age_on(birth: NaiveDate, on: NaiveDate) -> u32 {
    let mut years = on.year() - birth.year();
    if (on.month(), on.day()) < (birth.month(), birth.day()) {
        years -= 1;
    }
    years.max(0) as u32
}

/// The result of evaluating a condition: a person must decide when a fact
/// the condition needs was not declared.
enum Truth {
    Yes,
    No,
    Unknown(String),
}

fn evaluate(c: &Condition, manifest: &Manifest, person: Option<&Member<'_>>, on: NaiveDate) -> Truth {
    let b = |v: bool| if v { Truth::Yes } else { Truth::No };
    let age = |p: Option<&Member<'_>>| -> Result<u32, Truth> {
        match p.and_then(|p| p.birth_date) {
            Some(d) => Ok(age_on(d, on)),
            None => Err(Truth::Unknown(format!(
                "das Geburtsdatum von {} fehlt im Antrag",
                p.map(member_name).unwrap_or_else(|| "der Person".to_string())
            ))),
        }
    };
    match c {
        Condition::Fact { fact, equals } => match manifest.facts.get(fact) {
            None | Some(Value::Null) => Truth::Unknown(format!("die Angabe „{fact}“ fehlt im Antrag")),
            Some(v) => b(v == equals),
        },
        Condition::PersonFact { fact, equals } => match person.and_then(|p| p.facts).and_then(|f| f.get(fact)) {
            None | Some(Value::Null) => Truth::Unknown(format!(
                "die Angabe „{fact}“ zu {} fehlt im Antrag",
                person.map(member_name).unwrap_or_else(|| "der Person".to_string())
            )),
            Some(v) => b(v == equals),
        },
        Condition::PersonAgeAtLeast(n) => match age(person) {
            Ok(a) => b(a >= *n),
            Err(t) => t,
        },
        Condition::PersonAgeBelow(n) => match age(person) {
            Ok(a) => b(a < *n),
            Err(t) => t,
        },
        Condition::AnyChildAgeAtLeast(n) => b(manifest.children.iter().any(|c| age_on(c.birth_date, on) >= *n)),
        Condition::All(v) => {
            let mut unknown = None;
            for c in v {
                match evaluate(c, manifest, person, on) {
                    Truth::No => return Truth::No,
                    Truth::Unknown(w) => unknown = Some(w),
                    Truth::Yes => {}
                }
            }
            unknown.map_or(Truth::Yes, Truth::Unknown)
        }
        Condition::Any(v) => {
            let mut unknown = None;
            for c in v {
                match evaluate(c, manifest, person, on) {
                    Truth::Yes => return Truth::Yes,
                    Truth::Unknown(w) => unknown = Some(w),
                    Truth::No => {}
                }
            }
            unknown.map_or(Truth::No, Truth::Unknown)
        }
        Condition::Not(c) => match evaluate(c, manifest, person, on) {
            Truth::Yes => Truth::No,
            Truth::No => Truth::Yes,
            u => u,
        },
    }
}

fn member_name(c: &Member<'_>) -> String {
    format!("{} {}", c.given_name, c.family_name)
}

/// How one candidate segment stands against an accepted type.
enum Fit {
    Fresh,
    Stale(NaiveDate),
    Undated,
}

fn fit(seg: &Segment, accept: &Accept, on: NaiveDate) -> Fit {
    match accept.max_age_days {
        None => Fit::Fresh,
        Some(days) => match seg.document_date {
            None => Fit::Undated,
            Some(d) if (on - d).num_days() <= i64::from(days) => Fit::Fresh,
            Some(d) => Fit::Stale(d),
        },
    }
}

/// Evaluates the candidates of one requirement (already filtered to the
/// right child) into a verdict.
fn judge(
    req: &Requirement,
    candidates: &[(usize, &Segment)],
    on: NaiveDate,
    catalogue: &Catalogue,
) -> (RequirementVerdict, Vec<usize>, String, Option<NaiveDate>) {
    let mut fresh = Vec::new();
    let mut undated = Vec::new();
    let mut stale: Vec<(usize, NaiveDate)> = Vec::new();
    for (i, seg) in candidates {
        for a in req.accepts.iter().filter(|a| a.doc_type == seg.doc_type) {
            match fit(seg, a, on) {
                Fit::Fresh => fresh.push(*i),
                Fit::Undated => undated.push(*i),
                Fit::Stale(d) => stale.push((*i, d)),
            }
        }
    }
    fresh.dedup();
    if let Some(&first) = fresh.first() {
        let seg = candidates.iter().find(|(i, _)| *i == first).map(|(_, s)| *s).expect("candidate");
        let dated = seg.document_date.map(|d| format!(" vom {}", date_de(d))).unwrap_or_default();
        let limit = req
            .accepts
            .iter()
            .find(|a| a.doc_type == seg.doc_type)
            .and_then(|a| a.max_age_days)
            .map(|d| format!(", nicht älter als {d} Tage"))
            .unwrap_or_default();
        return (
            RequirementVerdict::Satisfied,
            fresh,
            format!(
                "{}{} liegt vor (Dokument {}, Seite {}–{}{})",
                catalogue.label(&seg.doc_type),
                dated,
                seg.document_id,
                seg.first_page,
                seg.last_page,
                limit
            ),
            None,
        );
    }
    if !undated.is_empty() {
        return (
            RequirementVerdict::Uncertain,
            undated,
            "Ein passendes Dokument liegt vor, aber sein Datum ist nicht lesbar; bitte prüfen, ob es aktuell genug ist".to_string(),
            None,
        );
    }
    if let Some(&(_, newest)) = stale.iter().max_by_key(|(_, d)| *d) {
        let days = req.accepts.iter().filter_map(|a| a.max_age_days).max().unwrap_or(0);
        return (
            RequirementVerdict::Expired,
            stale.iter().map(|(i, _)| *i).collect(),
            format!(
                "Das neueste passende Dokument ist vom {} und damit älter als {days} Tage (Eingang {})",
                date_de(newest),
                date_de(on)
            ),
            Some(newest),
        );
    }
    let wanted = req.accepts.iter().map(|a| catalogue.label(&a.doc_type).to_string()).collect::<Vec<_>>().join(" oder ");
    (RequirementVerdict::Missing, Vec::new(), format!("Kein Dokument gefunden: {wanted}"), None)
}

/// Checks the bundle against the schema: one finding per requirement (and
/// per child for per-child requirements), in schema order.
pub fn check(manifest: &Manifest, segments: &[Segment], schema: &ProcedureSchema, catalogue: &Catalogue) -> Vec<Finding> {
    let on = manifest.received_on();
    let mut findings = Vec::new();
    for req in &schema.requirements {
        let members = req.for_each.as_deref().map(|l| manifest.members(l));
        let targets: Vec<Option<usize>> = match &members {
            Some(m) => (0..m.len()).map(Some).collect(),
            None => vec![None],
        };
        let is_children = req.for_each.as_deref() == Some(CHILDREN);
        // A per-person requirement over an empty list would silently ask for
        // nothing (a Wohngeld bundle without its household would need no
        // income proof): unless its condition is false anyway, a person
        // must look.
        if let (Some(list), true) = (&req.for_each, targets.is_empty()) {
            let truth = req.when.as_ref().map(|c| evaluate(c, manifest, None, on));
            let (verdict, reason) = match truth {
                Some(Truth::No) => (
                    RequirementVerdict::NotApplicable,
                    format!(
                        "Nicht erforderlich, weil nicht zutrifft: {}",
                        req.when.as_ref().map(|c| c.describe(&schema.procedure, Some(list))).unwrap_or_default()
                    ),
                ),
                _ => (
                    RequirementVerdict::Uncertain,
                    format!(
                        "Der Antrag nennt keine Person der Art „{}“; bitte prüfen, für wen „{}“ nötig ist",
                        schema.procedure.list_label(list),
                        req.label
                    ),
                ),
            };
            findings.push(Finding {
                id: req.id.clone(),
                label: req.label.clone(),
                child: None,
                list: Some(list.clone()).filter(|_| !is_children),
                person: None,
                verdict,
                segments: Vec::new(),
                reason,
                document_date: None,
                unreadable_uploads: Vec::new(),
            });
            continue;
        }
        // Unreadable uploads the applicant meant for this requirement.
        let unreadable: Vec<usize> = segments
            .iter()
            .enumerate()
            .filter(|(_, s)| !s.is_readable())
            .filter(|(_, s)| s.declared_type.as_deref().is_some_and(|d| req.accepts.iter().any(|a| a.doc_type == d)))
            .map(|(i, _)| i)
            .collect();
        for target in targets {
            let person = target.and_then(|i| members.as_ref().map(|m| &m[i]));
            let base = |verdict, segments, reason, date| Finding {
                id: req.id.clone(),
                label: req.label.clone(),
                child: target.filter(|_| is_children),
                list: req.for_each.clone().filter(|_| !is_children),
                person: target.filter(|_| !is_children),
                verdict,
                segments,
                reason,
                document_date: date,
                unreadable_uploads: Vec::new(),
            };
            if let Some(cond) = &req.when {
                match evaluate(cond, manifest, person, on) {
                    Truth::No => {
                        findings.push(base(
                            RequirementVerdict::NotApplicable,
                            Vec::new(),
                            format!(
                                "Nicht erforderlich, weil nicht zutrifft: {}",
                                cond.describe(&schema.procedure, req.for_each.as_deref())
                            ),
                            None,
                        ));
                        continue;
                    }
                    Truth::Unknown(why) => {
                        findings.push(base(
                            RequirementVerdict::Uncertain,
                            Vec::new(),
                            format!("Nicht entscheidbar, ob erforderlich: {why}"),
                            None,
                        ));
                        continue;
                    }
                    Truth::Yes => {}
                }
            }
            let typed: Vec<(usize, &Segment)> = segments
                .iter()
                .enumerate()
                .filter(|(_, s)| s.is_readable() && req.accepts.iter().any(|a| a.doc_type == s.doc_type))
                .collect();
            let mut finding = match (req.match_name, person, target) {
                (true, Some(c), Some(index)) => {
                    let names = |s: &Segment, m: &Member<'_>| {
                        contains_name(&s.folded_text, m.given_name) && contains_name(&s.folded_text, m.family_name)
                    };
                    let mine: Vec<(usize, &Segment)> = typed.iter().filter(|(_, s)| names(s, c)).copied().collect();
                    // A document naming another person of the same list is that person's.
                    let all = members.as_deref().unwrap_or(&[]);
                    let others: Vec<&Member<'_>> = all.iter().enumerate().filter(|(j, _)| *j != index).map(|(_, m)| m).collect();
                    let unassigned: Vec<(usize, &Segment)> = typed
                        .iter()
                        .filter(|(i, _)| !mine.iter().any(|(j, _)| j == i))
                        .filter(|(_, s)| !others.iter().any(|o| names(s, o)))
                        .copied()
                        .collect();
                    let (verdict, segs, reason, date) = judge(req, &mine, on, catalogue);
                    if verdict == RequirementVerdict::Missing && !unassigned.is_empty() {
                        let whose = if is_children { "des Kindes" } else { "der Person" };
                        base(
                            RequirementVerdict::Uncertain,
                            unassigned.iter().map(|(i, _)| *i).collect(),
                            format!(
                                "{} liegt vor, aber der Name {whose} ({}) ist darauf nicht zu finden; bitte prüfen",
                                catalogue.label(&unassigned[0].1.doc_type),
                                member_name(c)
                            ),
                            None,
                        )
                    } else {
                        let reason = if verdict == RequirementVerdict::Missing {
                            format!("{reason} für {}", member_name(c))
                        } else {
                            reason
                        };
                        base(verdict, segs, reason, date)
                    }
                }
                _ => {
                    let (verdict, segs, reason, date) = judge(req, &typed, on, catalogue);
                    let reason = match (verdict, person) {
                        (RequirementVerdict::Missing, Some(p)) => format!("{reason} für {}", member_name(p)),
                        _ => reason,
                    };
                    base(verdict, segs, reason, date)
                }
            };
            if finding.verdict == RequirementVerdict::Missing && !unreadable.is_empty() {
                finding.reason.push_str("; die dafür hochgeladene Datei ist nicht lesbar");
                finding.unreadable_uploads = unreadable.clone();
            }
            findings.push(finding);
        }
    }
    findings
}

/// The bundle verdict from the findings (DESIGN §4).
pub fn bundle_verdict(findings: &[Finding]) -> BundleVerdict {
    if findings.iter().any(|f| matches!(f.verdict, RequirementVerdict::Missing | RequirementVerdict::Expired)) {
        BundleVerdict::Incomplete
    } else if findings.iter().any(|f| f.verdict == RequirementVerdict::Uncertain) {
        BundleVerdict::NeedsReview
    } else {
        BundleVerdict::Complete
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    /// Checks a manifest with no documents against the shipped Wohngeld schema.
    fn check_wohngeld(manifest: serde_json::Value) -> Vec<(String, Option<usize>, RequirementVerdict, String)> {
        let catalogue = Catalogue::from_toml(include_str!("../../schemas/document_types.toml"), "document_types.toml").unwrap();
        let file = crate::domain::schema::SourceFile {
            origin: "wohngeld.toml".into(),
            text: include_str!("../../schemas/procedures/wohngeld.toml").into(),
        };
        let (schema, _) = crate::domain::schema::load_procedure(&file, None, &catalogue).unwrap();
        let m = Manifest::from_value(&manifest).unwrap();
        check(&m, &[], &schema, &catalogue).into_iter().map(|f| (f.id, f.person, f.verdict, f.reason)).collect()
    }

    fn wohngeld_manifest(persons: serde_json::Value) -> serde_json::Value {
        serde_json::json!({
            "bundle_id": "wg-1", "procedure": "wohngeld", "received_at": "2026-11-20T10:00:00Z",
            "applicant": {"given_name": "A", "family_name": "B"},
            "facts": {"schwerbehinderte_person": false},
            "persons": persons,
            "documents": []
        })
    }

    #[test]
    fn a_household_requirement_over_an_empty_household_goes_to_a_person_instead_of_asking_nothing() {
        let found = check_wohngeld(wohngeld_manifest(serde_json::json!({})));
        let einkommen: Vec<_> = found.iter().filter(|f| f.0 == "einkommen").collect();
        assert_eq!(einkommen.len(), 1, "{found:#?}");
        assert_eq!((einkommen[0].1, einkommen[0].2), (None, RequirementVerdict::Uncertain));
        assert!(einkommen[0].3.contains("Haushaltsmitglied"), "{}", einkommen[0].3);
    }

    #[test]
    fn each_household_member_gets_a_verdict_and_a_missing_fact_is_uncertain() {
        let persons = serde_json::json!({"household": [
            {"given_name": "Jana", "family_name": "Wolff", "birth_date": "1988-03-09", "facts": {"hat_einkommen": true, "in_ausbildung": false}},
            {"given_name": "Lea", "family_name": "Wolff", "birth_date": "2009-05-14", "facts": {"hat_einkommen": false}}
        ]});
        let found = check_wohngeld(wohngeld_manifest(persons));
        let got: Vec<(&str, Option<usize>, RequirementVerdict)> =
            found.iter().filter(|f| f.1.is_some()).map(|f| (f.0.as_str(), f.1, f.2)).collect();
        assert_eq!(
            got,
            [
                ("einkommen", Some(0), RequirementVerdict::Missing),
                ("einkommen", Some(1), RequirementVerdict::NotApplicable),
                ("schulbescheinigung", Some(0), RequirementVerdict::NotApplicable),
                ("schulbescheinigung", Some(1), RequirementVerdict::Uncertain),
            ]
        );
        assert!(found.iter().any(|f| f.0 == "einkommen" && f.3.ends_with("für Jana Wolff")), "{found:#?}");
    }

    #[test]
    fn a_child_turns_twelve_on_the_birthday_itself() {
        assert_eq!(age_on(d("2014-11-20"), d("2026-11-20")), 12);
        assert_eq!(age_on(d("2014-11-21"), d("2026-11-20")), 11);
        assert_eq!(age_on(d("2012-02-29"), d("2026-02-28")), 13);
        assert_eq!(age_on(d("2012-02-29"), d("2026-03-01")), 14);
    }
}

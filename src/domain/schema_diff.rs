//! What changed between two versions of a procedure schema, in words a
//! caseworker understands: requirements added, removed and changed (when
//! they apply, which documents count, how fresh, the letter text).
//!
//! Pure: compares two validated `ProcedureSchema`s.
use serde::Serialize;

use super::catalogue::Catalogue;
use super::schema::{Accept, CHILDREN, ProcedureMeta, ProcedureSchema, Requirement};

/// The kind of a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    Added,
    Removed,
    Changed,
}

/// One change, with a German sentence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    pub kind: ChangeKind,
    /// The requirement id, or `None` for a change of the procedure itself.
    pub requirement: Option<String>,
    pub text: String,
}

fn accepts_de(accepts: &[Accept], catalogue: &Catalogue) -> String {
    accepts
        .iter()
        .map(|a| match a.max_age_days {
            Some(d) => format!("{} (nicht älter als {d} Tage)", catalogue.label(&a.doc_type)),
            None => catalogue.label(&a.doc_type).to_string(),
        })
        .collect::<Vec<_>>()
        .join(" oder ")
}

fn when_de(r: &Requirement, meta: &ProcedureMeta) -> String {
    match &r.when {
        None => "immer verlangt".to_string(),
        Some(c) => format!("verlangt, wenn zutrifft: {}", c.describe(meta, r.for_each.as_deref())),
    }
}

fn scope_de(r: &Requirement, meta: &ProcedureMeta) -> String {
    match r.for_each.as_deref() {
        None => "einmal je Antrag".to_string(),
        Some(CHILDREN) => "für jedes Kind".to_string(),
        Some(l) => format!("für jede Person der Liste „{}“", meta.list_label(l)),
    }
}

fn summary(r: &Requirement, meta: &ProcedureMeta, catalogue: &Catalogue) -> String {
    format!("„{}“ ({}): {}; {}; erfüllt durch {}", r.label, r.id, scope_de(r, meta), when_de(r, meta), accepts_de(&r.accepts, catalogue))
}

/// The changes from `old` to `new`, requirements in `new`'s order, removed
/// ones last. `catalogue` gives document labels.
pub fn diff(old: &ProcedureSchema, new: &ProcedureSchema, catalogue: &Catalogue) -> Vec<Change> {
    let mut out = Vec::new();
    let (om, nm) = (&old.procedure, &new.procedure);
    let mut meta = |what: &str, a: String, b: String| {
        if a != b {
            out.push(Change { kind: ChangeKind::Changed, requirement: None, text: format!("{what}: bisher {a}, neu {b}") });
        }
    };
    meta("Frist im Schreiben", format!("{} Tage", om.deadline_days), format!("{} Tage", nm.deadline_days));
    meta("Bezeichnung des Verfahrens", format!("„{}“", om.title), format!("„{}“", nm.title));
    meta("Zitiertes Gesetz", format!("„{}“", om.law), format!("„{}“", nm.law));
    for (name, f) in &nm.facts {
        if !om.facts.contains_key(name) {
            out.push(Change { kind: ChangeKind::Added, requirement: None, text: format!("Neue Angabe im Antrag: „{}“ ({name})", f.question) });
        }
    }
    for (name, f) in &om.facts {
        if !nm.facts.contains_key(name) {
            out.push(Change { kind: ChangeKind::Removed, requirement: None, text: format!("Angabe entfällt: „{}“ ({name})", f.question) });
        }
    }
    for r in &new.requirements {
        let Some(o) = old.requirements.iter().find(|o| o.id == r.id) else {
            out.push(Change { kind: ChangeKind::Added, requirement: Some(r.id.clone()), text: format!("Neu verlangt: {}", summary(r, nm, catalogue)) });
            continue;
        };
        let mut said = Vec::new();
        if o.label != r.label {
            said.push(format!("Bezeichnung bisher „{}“, neu „{}“", o.label, r.label));
        }
        if o.for_each != r.for_each {
            said.push(format!("bisher {}, neu {}", scope_de(o, om), scope_de(r, nm)));
        }
        if when_de(o, om) != when_de(r, nm) {
            said.push(format!("bisher {}; neu {}", when_de(o, om), when_de(r, nm)));
        }
        let (oa, na) = (accepts_de(&o.accepts, catalogue), accepts_de(&r.accepts, catalogue));
        if oa != na {
            said.push(format!("erfüllt bisher durch {oa}, neu durch {na}"));
        }
        if o.match_name != r.match_name {
            said.push(if r.match_name {
                "der Name der Person muss neu auf dem Dokument stehen".to_string()
            } else {
                "der Name der Person wird nicht mehr abgeglichen".to_string()
            });
        }
        if o.letter != r.letter {
            said.push(format!("Brieftext neu: „{}“", r.letter));
        }
        if !said.is_empty() {
            out.push(Change { kind: ChangeKind::Changed, requirement: Some(r.id.clone()), text: format!("„{}“ ({}): {}", r.label, r.id, said.join("; ")) });
        }
    }
    for o in &old.requirements {
        if !new.requirements.iter().any(|r| r.id == o.id) {
            out.push(Change { kind: ChangeKind::Removed, requirement: Some(o.id.clone()), text: format!("Nicht mehr verlangt: {}", summary(o, om, catalogue)) });
        }
    }
    out
}

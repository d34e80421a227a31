//! The document catalogue: the document types every procedure shares, with
//! their German labels and recognition rules, loaded from
//! `schemas/document_types.toml`.
//!
//! Rules are weighted phrase groups, so an admin can add a type or a new
//! issuer's wording without a code change.
use serde::Deserialize;
use std::collections::BTreeMap;

use super::diagnostics::{Diagnostics, Mark, SchemaError, SourceMap, did_you_mean};
use super::text::fold;

/// The type id for pages nothing was recognised on with enough confidence.
pub const UNKNOWN: &str = "unbekannt";

/// How a phrase group counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SignalKind {
    /// A heading that names the document ("Geburtsurkunde"); a page with a
    /// title of another type starts a new document within one PDF.
    Title,
    /// Words typical of the content ("Standesamt", "Bruttobezüge").
    Support,
    /// Words that speak against the type (a Bürgergeld notice mentions
    /// "Einkommen" but is no payslip).
    Against,
}

/// One phrase of a rule, in its written form (shown as evidence) and folded.
#[derive(Debug, Clone)]
pub struct Phrase {
    pub written: String,
    pub folded: String,
}

#[derive(Debug, Clone)]
pub struct Signal {
    pub kind: SignalKind,
    pub weight: f64,
    pub phrases: Vec<Phrase>,
}

/// A recognisable document type.
#[derive(Debug, Clone)]
pub struct DocumentType {
    /// The id rules are written for (may be finer than the catalogue id).
    pub id: String,
    /// The catalogue id reported in verdicts (DESIGN §3).
    pub reported_as: String,
    pub label: String,
    pub signals: Vec<Signal>,
}

/// The loaded catalogue.
#[derive(Debug, Clone)]
pub struct Catalogue {
    pub version: String,
    /// The stored catalogue version (`catalogue@2`) when loaded from the
    /// database's schema registry.
    pub version_id: Option<String>,
    pub min_confidence: f64,
    pub evidence_scale: f64,
    pub types: Vec<DocumentType>,
    labels: BTreeMap<String, String>,
}

impl Catalogue {
    /// Parses and validates the catalogue file's text; the first error only
    /// (see `load` for all of them).
    pub fn from_toml(text: &str, origin: &str) -> Result<Catalogue, SchemaError> {
        Catalogue::load(text, origin).map(|(c, _)| c).map_err(|mut e| {
            e.retain(SchemaError::is_error);
            e.swap_remove(0)
        })
    }

    /// Parses and validates the catalogue: the catalogue with its warnings,
    /// or every error (with file, line and column) and warning found.
    pub fn load(text: &str, origin: &str) -> Result<(Catalogue, Vec<SchemaError>), Vec<SchemaError>> {
        let (table, map, syntax) = SourceMap::parse(origin, text);
        let Some(table) = table else { return Err(syntax) };
        let mut d = Diagnostics::new(vec![&map]);
        for k in table.keys() {
            if k != "catalogue" && k != "types" {
                d.error(k, Mark::Key, format!("Unbekannter Schlüssel „{k}“ im Dokumentkatalog. Erlaubt sind: catalogue, types."));
            }
        }
        let meta = table.get("catalogue").and_then(|v| v.as_table());
        if meta.is_none() {
            d.error("", Mark::Key, "Die Tabelle [catalogue] fehlt (version, min_confidence, evidence_scale).");
        }
        let empty = toml::Table::new();
        let meta = meta.unwrap_or(&empty);
        for k in meta.keys() {
            if !["version", "min_confidence", "evidence_scale"].contains(&k.as_str()) {
                d.error(&format!("catalogue.{k}"), Mark::Key, format!("Unbekannter Schlüssel „{k}“ in [catalogue]. Erlaubt sind: version, min_confidence, evidence_scale."));
            }
        }
        let version = match meta.get("version") {
            Some(toml::Value::String(s)) if !s.is_empty() => s.clone(),
            _ => {
                d.error("catalogue.version", Mark::Value, "[catalogue] braucht „version“ als Text, z. B. version = \"2026.11.1\".");
                String::new()
            }
        };
        let number = |k: &str, d: &mut Diagnostics<'_>| -> f64 {
            match meta.get(k) {
                Some(toml::Value::Float(f)) => *f,
                Some(toml::Value::Integer(i)) => *i as f64,
                _ => {
                    d.error(&format!("catalogue.{k}"), Mark::Value, format!("[catalogue] braucht „{k}“ als Zahl."));
                    f64::NAN
                }
            }
        };
        let min_confidence = number("min_confidence", &mut d);
        let evidence_scale = number("evidence_scale", &mut d);
        if !min_confidence.is_nan() && !(0.0..1.0).contains(&min_confidence) {
            d.error("catalogue.min_confidence", Mark::Value, "min_confidence muss zwischen 0 und 1 liegen (z. B. 0.5).");
        }
        if !evidence_scale.is_nan() && evidence_scale <= 0.0 {
            d.error("catalogue.evidence_scale", Mark::Value, "evidence_scale muss größer als 0 sein.");
        }
        let mut labels = BTreeMap::new();
        labels.insert(UNKNOWN.to_string(), "Nicht erkanntes Dokument".to_string());
        let mut types = Vec::new();
        let type_table = match table.get("types") {
            Some(toml::Value::Table(t)) => t.clone(),
            _ => {
                d.error("", Mark::Key, "Der Katalog braucht Dokumenttypen als Tabellen [types.<id>].");
                toml::Table::new()
            }
        };
        for (id, spec) in &type_table {
            let path = format!("types.{id}");
            if id == UNKNOWN {
                d.error(&path, Mark::Key, "Die id „unbekannt“ ist für nicht erkannte Seiten reserviert.");
                continue;
            }
            if !id.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_') || id.is_empty() {
                d.error(&path, Mark::Key, format!("Die Typ-id „{id}“ darf nur Kleinbuchstaben, Ziffern und _ enthalten."));
            }
            let Some(spec) = spec.as_table() else {
                d.error(&path, Mark::Value, "Ein Dokumenttyp ist eine Tabelle [types.<id>] mit label und signals.");
                continue;
            };
            for k in spec.keys() {
                if !["label", "reported_as", "signals"].contains(&k.as_str()) {
                    d.error(&format!("{path}.{k}"), Mark::Key, format!("Unbekannter Schlüssel „{k}“ im Dokumenttyp „{id}“. Erlaubt sind: label, reported_as, signals.{}", did_you_mean(k, ["label", "reported_as", "signals"])));
                }
            }
            let label = match spec.get("label") {
                Some(toml::Value::String(s)) if !s.trim().is_empty() => s.clone(),
                _ => {
                    d.error(&path, Mark::Key, format!("Der Dokumenttyp „{id}“ braucht „label“: die deutsche Bezeichnung, die Sachbearbeitung und Briefe zeigen."));
                    id.clone()
                }
            };
            let reported_as = match spec.get("reported_as") {
                None => id.clone(),
                Some(toml::Value::String(s)) => s.clone(),
                Some(_) => {
                    d.error(&format!("{path}.reported_as"), Mark::Value, "„reported_as“ nennt eine Typ-id als Text.");
                    id.clone()
                }
            };
            if reported_as == *id || !labels.contains_key(&reported_as) {
                labels.entry(reported_as.clone()).or_insert_with(|| label.clone());
            }
            let mut signals = Vec::new();
            let empty_signals = Vec::new();
            let raw_signals = match spec.get("signals") {
                None => &empty_signals,
                Some(toml::Value::Array(a)) => a,
                Some(_) => {
                    d.error(&format!("{path}.signals"), Mark::Value, "„signals“ ist eine Liste [[types.<id>.signals]].");
                    &empty_signals
                }
            };
            for (i, s) in raw_signals.iter().enumerate() {
                let sp = format!("{path}.signals[{i}]");
                let Some(s) = s.as_table() else {
                    d.error(&sp, Mark::Value, "Ein Signal ist eine Tabelle mit kind, weight und phrases.");
                    continue;
                };
                for k in s.keys() {
                    if !["kind", "weight", "phrases"].contains(&k.as_str()) {
                        d.error(&format!("{sp}.{k}"), Mark::Key, format!("Unbekannter Schlüssel „{k}“ in einem Signal. Erlaubt sind: kind, weight, phrases."));
                    }
                }
                let kind = match s.get("kind").and_then(|v| v.as_str()) {
                    Some("title") => Some(SignalKind::Title),
                    Some("support") => Some(SignalKind::Support),
                    Some("against") => Some(SignalKind::Against),
                    other => {
                        d.error(&format!("{sp}.kind"), Mark::Value, format!("kind muss title, support oder against sein{}.", other.map(|o| format!(", nicht „{o}“")).unwrap_or_default()));
                        None
                    }
                };
                let weight = match s.get("weight") {
                    Some(toml::Value::Float(f)) if *f > 0.0 => Some(*f),
                    Some(toml::Value::Integer(n)) if *n > 0 => Some(*n as f64),
                    _ => {
                        d.error(&format!("{sp}.weight"), Mark::Value, "weight muss eine Zahl größer als 0 sein.");
                        None
                    }
                };
                let mut phrases = Vec::new();
                match s.get("phrases").and_then(|v| v.as_array()) {
                    Some(a) if !a.is_empty() => {
                        for (j, p) in a.iter().enumerate() {
                            let pp = format!("{sp}.phrases[{j}]");
                            match p.as_str() {
                                Some(w) => {
                                    let folded = fold(w).trim().to_string();
                                    if folded.is_empty() {
                                        d.error(&pp, Mark::Value, format!("Die Wendung „{w}“ enthält keine Buchstaben oder Ziffern."));
                                    } else if phrases.iter().any(|q: &Phrase| q.folded == folded) {
                                        d.warning(&pp, Mark::Value, format!("Die Wendung „{w}“ steht in diesem Signal zweimal."));
                                    } else {
                                        phrases.push(Phrase { written: w.to_string(), folded });
                                    }
                                }
                                None => d.error(&pp, Mark::Value, "Eine Wendung ist ein Text in Anführungszeichen."),
                            }
                        }
                    }
                    _ => d.error(&format!("{sp}.phrases"), Mark::Value, "phrases muss eine nicht leere Liste von Wendungen sein."),
                }
                if let (Some(kind), Some(weight)) = (kind, weight) {
                    signals.push(Signal { kind, weight, phrases });
                }
            }
            types.push(DocumentType { id: id.clone(), reported_as, label, signals });
        }
        for t in &types {
            if !labels.contains_key(&t.reported_as) || type_table.get(&t.reported_as).is_none() && t.reported_as != t.id {
                d.error(
                    &format!("types.{}.reported_as", t.id),
                    Mark::Value,
                    format!("reported_as nennt den unbekannten Typ „{}“.{}", t.reported_as, did_you_mean(&t.reported_as, type_table.keys().map(String::as_str))),
                );
            }
        }
        if d.has_errors() {
            return Err(d.found);
        }
        Ok((Catalogue { version, version_id: None, min_confidence, evidence_scale, types, labels }, d.found))
    }

    /// Whether `id` is a catalogue id that verdicts may report.
    pub fn knows(&self, id: &str) -> bool {
        self.labels.contains_key(id)
    }

    /// The German label of a catalogue id (the id itself if unknown).
    pub fn label<'a>(&'a self, id: &'a str) -> &'a str {
        self.labels.get(id).map(String::as_str).unwrap_or(id)
    }

    /// All reportable ids.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.labels.keys().map(String::as_str)
    }
}

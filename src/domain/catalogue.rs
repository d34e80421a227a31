//! The document catalogue: the document types every procedure shares, with
//! their German labels and recognition rules, loaded from
//! `schemas/document_types.toml`.
//!
//! Rules are weighted phrase groups, so an admin can add a type or a new
//! issuer's wording without a code change.
use serde::Deserialize;
use std::collections::BTreeMap;

use super::schema::SchemaError;
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

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct SignalSpec {
    kind: SignalKind,
    weight: f64,
    phrases: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct TypeSpec {
    label: String,
    /// The catalogue id this type is reported as, if it is a finer kind of
    /// another (e.g. `kontoauszug` reported as `sonstiges`).
    #[serde(default)]
    reported_as: Option<String>,
    #[serde(default)]
    signals: Vec<SignalSpec>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogueMeta {
    version: String,
    /// Minimum confidence in 0..1 for a page to get a type.
    min_confidence: f64,
    /// Evidence score at which confidence reaches about 63 %.
    evidence_scale: f64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogueFile {
    catalogue: CatalogueMeta,
    types: indexmap_like::OrderedTypes,
}

/// `toml` with `preserve_order` keeps table order; reading the types into a
/// Vec keeps the file's order for stable tie-breaking.
mod indexmap_like {
    use super::TypeSpec;
    use serde::{Deserialize, Deserializer};

    #[derive(Debug, Clone)]
    pub struct OrderedTypes(pub Vec<(String, TypeSpec)>);

    impl<'de> Deserialize<'de> for OrderedTypes {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            let table = toml::Table::deserialize(d)?;
            let mut out = Vec::new();
            for (k, v) in table {
                let spec = TypeSpec::deserialize(v).map_err(serde::de::Error::custom)?;
                out.push((k, spec));
            }
            Ok(OrderedTypes(out))
        }
    }
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
    pub min_confidence: f64,
    pub evidence_scale: f64,
    pub types: Vec<DocumentType>,
    labels: BTreeMap<String, String>,
}

impl Catalogue {
    /// Parses and validates the catalogue file's text.
    pub fn from_toml(text: &str, origin: &str) -> Result<Catalogue, SchemaError> {
        let file: CatalogueFile =
            toml::from_str(text).map_err(|e| SchemaError::parse(origin, text, &e))?;
        let meta = file.catalogue;
        if !(0.0..1.0).contains(&meta.min_confidence) || meta.evidence_scale <= 0.0 {
            return Err(SchemaError::invalid(origin, "catalogue: min_confidence must be in 0..1 and evidence_scale > 0"));
        }
        let mut labels = BTreeMap::new();
        labels.insert(UNKNOWN.to_string(), "Nicht erkanntes Dokument".to_string());
        let mut types = Vec::new();
        for (id, spec) in file.types.0 {
            if id == UNKNOWN {
                return Err(SchemaError::invalid(origin, "types.unbekannt is reserved for unrecognised pages"));
            }
            let reported_as = spec.reported_as.clone().unwrap_or_else(|| id.clone());
            if reported_as == id || !labels.contains_key(&reported_as) {
                labels.entry(reported_as.clone()).or_insert_with(|| spec.label.clone());
            }
            let mut signals = Vec::new();
            for (i, s) in spec.signals.iter().enumerate() {
                if s.weight <= 0.0 || s.phrases.is_empty() {
                    return Err(SchemaError::invalid(origin, &format!("types.{id}.signals[{i}]: weight must be > 0 and phrases not empty")));
                }
                let phrases = s
                    .phrases
                    .iter()
                    .map(|p| Phrase { written: p.clone(), folded: fold(p).trim().to_string() })
                    .collect::<Vec<_>>();
                if let Some(p) = phrases.iter().find(|p| p.folded.is_empty()) {
                    return Err(SchemaError::invalid(origin, &format!("types.{id}: phrase {:?} has no letters or digits", p.written)));
                }
                signals.push(Signal { kind: s.kind, weight: s.weight, phrases });
            }
            types.push(DocumentType { id, reported_as, label: spec.label, signals });
        }
        for t in &types {
            if !labels.contains_key(&t.reported_as) {
                return Err(SchemaError::invalid(origin, &format!("types.{}: reported_as names unknown type {:?}", t.id, t.reported_as)));
            }
        }
        Ok(Catalogue { version: meta.version, min_confidence: meta.min_confidence, evidence_scale: meta.evidence_scale, types, labels })
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

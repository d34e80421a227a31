//! Procedure schemas: which documents a procedure requires, under which
//! conditions, how fresh they must be, and what the letter says about each.
//!
//! Schemas are TOML data (`schemas/procedures/*.toml`); a tenant overlay
//! (`schemas/overlays/<tenant>/*.toml`) is merged key by key into its base,
//! so a Landkreis changes one threshold without copying the schema.
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::catalogue::Catalogue;

/// A broken schema or catalogue. Caught at start-up, never per bundle.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SchemaError {
    #[error("{origin}:{line}:{column}: {message}")]
    Parse { origin: String, line: usize, column: usize, message: String },
    #[error("{origin}: {message}")]
    Invalid { origin: String, message: String },
}

impl SchemaError {
    /// A TOML syntax or shape error with its line and column.
    pub fn parse(origin: &str, text: &str, e: &toml::de::Error) -> SchemaError {
        let (line, column) = match e.span() {
            Some(span) => {
                let before = &text[..span.start.min(text.len())];
                let line = before.matches('\n').count() + 1;
                let column = before.len() - before.rfind('\n').map(|i| i + 1).unwrap_or(0) + 1;
                (line, column)
            }
            None => (0, 0),
        };
        SchemaError::Parse { origin: origin.to_string(), line, column, message: e.message().to_string() }
    }

    pub fn invalid(origin: &str, message: &str) -> SchemaError {
        SchemaError::Invalid { origin: origin.to_string(), message: message.to_string() }
    }
}

/// A condition as written in TOML: exactly one key set.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct ConditionSpec {
    fact: Option<String>,
    equals: Option<toml::Value>,
    child_age_at_least: Option<u32>,
    child_age_below: Option<u32>,
    any_child_age_at_least: Option<u32>,
    all: Option<Vec<ConditionSpec>>,
    any: Option<Vec<ConditionSpec>>,
    not: Option<Box<ConditionSpec>>,
}

/// When a requirement applies.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Condition {
    /// A declared fact has this value (`facts.<name>` in the manifest).
    Fact { fact: String, equals: Value },
    /// The child (of a per-child requirement) is at least this old.
    ChildAgeAtLeast(u32),
    /// The child is younger than this.
    ChildAgeBelow(u32),
    /// Some child of the bundle is at least this old.
    AnyChildAgeAtLeast(u32),
    All(Vec<Condition>),
    Any(Vec<Condition>),
    Not(Box<Condition>),
}

impl Condition {
    fn from_spec(spec: &ConditionSpec, at: &str, per_child: bool) -> Result<Condition, String> {
        let set = [
            spec.fact.is_some(),
            spec.child_age_at_least.is_some(),
            spec.child_age_below.is_some(),
            spec.any_child_age_at_least.is_some(),
            spec.all.is_some(),
            spec.any.is_some(),
            spec.not.is_some(),
        ]
        .iter()
        .filter(|b| **b)
        .count();
        if set != 1 {
            return Err(format!(
                "{at}: a condition needs exactly one of fact (with equals), child_age_at_least, child_age_below, any_child_age_at_least, all, any, not"
            ));
        }
        if spec.equals.is_some() && spec.fact.is_none() {
            return Err(format!("{at}: `equals` belongs to a `fact` condition"));
        }
        let list = |v: &Vec<ConditionSpec>, name: &str| -> Result<Vec<Condition>, String> {
            if v.is_empty() {
                return Err(format!("{at}.{name}: must list at least one condition"));
            }
            v.iter().enumerate().map(|(i, c)| Condition::from_spec(c, &format!("{at}.{name}[{i}]"), per_child)).collect()
        };
        Ok(if let Some(f) = &spec.fact {
            let equals = spec.equals.clone().ok_or_else(|| format!("{at}: fact condition on {f:?} needs `equals`"))?;
            let equals = serde_json::to_value(equals).map_err(|e| format!("{at}: {e}"))?;
            Condition::Fact { fact: f.clone(), equals }
        } else if let Some(n) = spec.child_age_at_least {
            if !per_child {
                return Err(format!("{at}: child_age_at_least only works in a per_child requirement (use any_child_age_at_least)"));
            }
            Condition::ChildAgeAtLeast(n)
        } else if let Some(n) = spec.child_age_below {
            if !per_child {
                return Err(format!("{at}: child_age_below only works in a per_child requirement"));
            }
            Condition::ChildAgeBelow(n)
        } else if let Some(n) = spec.any_child_age_at_least {
            Condition::AnyChildAgeAtLeast(n)
        } else if let Some(v) = &spec.all {
            Condition::All(list(v, "all")?)
        } else if let Some(v) = &spec.any {
            Condition::Any(list(v, "any")?)
        } else {
            let inner = spec.not.as_ref().expect("counted above");
            Condition::Not(Box::new(Condition::from_spec(inner, &format!("{at}.not"), per_child)?))
        })
    }

    /// The condition in words, for reasons and `schema diff`; `facts`
    /// gives the German question for each fact name.
    pub fn describe(&self, facts: &toml::Table) -> String {
        match self {
            Condition::Fact { fact, equals } => {
                let q = facts.get(fact).and_then(|v| v.as_str()).unwrap_or(fact);
                match equals {
                    Value::Bool(true) => format!("„{q}“ wurde mit Ja beantwortet"),
                    Value::Bool(false) => format!("„{q}“ wurde mit Nein beantwortet"),
                    v => format!("„{q}“ ist {v}"),
                }
            }
            Condition::ChildAgeAtLeast(n) => format!("das Kind ist mindestens {n} Jahre alt"),
            Condition::ChildAgeBelow(n) => format!("das Kind ist jünger als {n} Jahre"),
            Condition::AnyChildAgeAtLeast(n) => format!("ein Kind ist mindestens {n} Jahre alt"),
            Condition::All(v) => v.iter().map(|c| c.describe(facts)).collect::<Vec<_>>().join(" und "),
            Condition::Any(v) => v.iter().map(|c| c.describe(facts)).collect::<Vec<_>>().join(" oder "),
            Condition::Not(c) => format!("nicht ({})", c.describe(facts)),
        }
    }

    /// Fact names this condition reads.
    pub fn facts(&self) -> Vec<&str> {
        match self {
            Condition::Fact { fact, .. } => vec![fact.as_str()],
            Condition::All(v) | Condition::Any(v) => v.iter().flat_map(Condition::facts).collect(),
            Condition::Not(c) => c.facts(),
            _ => Vec::new(),
        }
    }
}

/// One document that satisfies a requirement.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum AcceptSpec {
    Type(String),
    Detailed {
        #[serde(rename = "type")]
        doc_type: String,
        max_age_days: Option<u32>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Accept {
    pub doc_type: String,
    /// The document's own date may be at most this many days before receipt.
    pub max_age_days: Option<u32>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RequirementSpec {
    label: String,
    #[serde(default)]
    per_child: bool,
    #[serde(default)]
    when: Option<ConditionSpec>,
    accepts: Vec<AcceptSpec>,
    #[serde(default)]
    match_child_name: bool,
    /// Letter sentence: what to send and why it is needed.
    letter: String,
    /// Overlays may switch a base requirement off.
    #[serde(default = "yes")]
    enabled: bool,
}

fn yes() -> bool {
    true
}

/// A requirement of a procedure.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Requirement {
    pub id: String,
    pub label: String,
    pub per_child: bool,
    pub when: Option<Condition>,
    pub accepts: Vec<Accept>,
    /// Per-child documents must name the child (first and family name).
    pub match_child_name: bool,
    pub letter: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ProcedureMeta {
    pub id: String,
    pub version: String,
    pub title: String,
    /// The law the letter cites ("Unterhaltsvorschussgesetz (UVG)").
    pub law: String,
    /// Days from the letter's date to the deadline.
    pub deadline_days: u32,
    /// Facts the manifest may carry, with their German question.
    #[serde(default)]
    pub facts: toml::Table,
}


/// A validated procedure schema, possibly with a tenant overlay applied.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProcedureSchema {
    pub procedure: ProcedureMeta,
    pub tenant: Option<String>,
    /// `<base version>` or `<base version>+<tenant>.<overlay version>`.
    pub version: String,
    /// First 16 hex characters of the SHA-256 of the merged schema.
    pub content_hash: String,
    pub requirements: Vec<Requirement>,
}

impl PartialEq for ProcedureMeta {
    fn eq(&self, o: &Self) -> bool {
        self.id == o.id && self.version == o.version
    }
}

/// Merges `overlay` into `base`: tables merge key by key; any other value,
/// and the whole-value keys `when` and `accepts`, are replaced.
fn merge(base: &mut toml::Table, overlay: &toml::Table) {
    for (k, v) in overlay {
        match (base.get_mut(k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) if k != "when" => merge(b, o),
            _ => {
                base.insert(k.clone(), v.clone());
            }
        }
    }
}

impl ProcedureSchema {
    /// Parses a base schema, optionally applying a tenant overlay, and
    /// validates it against the catalogue.
    pub fn load(
        base_text: &str,
        base_origin: &str,
        overlay: Option<(&str, &str)>,
        catalogue: &Catalogue,
    ) -> Result<ProcedureSchema, SchemaError> {
        let mut table: toml::Table = base_text.parse().map_err(|e| SchemaError::parse(base_origin, base_text, &e))?;
        let mut tenant = None;
        let mut origin = base_origin.to_string();
        let mut version_suffix = String::new();
        if let Some((text, o)) = overlay {
            let mut ov: toml::Table = text.parse().map_err(|e| SchemaError::parse(o, text, &e))?;
            let meta = ov
                .remove("overlay")
                .and_then(|v| v.as_table().cloned())
                .ok_or_else(|| SchemaError::invalid(o, "an overlay needs an [overlay] table with tenant, procedure and version"))?;
            let get = |k: &str| meta.get(k).and_then(|v| v.as_str()).map(str::to_string);
            let (Some(t), Some(p), Some(v)) = (get("tenant"), get("procedure"), get("version")) else {
                return Err(SchemaError::invalid(o, "[overlay] needs tenant, procedure and version as strings"));
            };
            let base_id = table.get("procedure").and_then(|p| p.get("id")).and_then(|v| v.as_str()).unwrap_or("");
            if p != base_id {
                return Err(SchemaError::invalid(o, &format!("overlay is for procedure {p:?}, base is {base_id:?}")));
            }
            // An overlay entry for a requirement the base lacks must be a
            // complete requirement; a partial one overrides nothing.
            if let (Some(toml::Value::Table(reqs)), Some(toml::Value::Table(base_reqs))) =
                (ov.get("requirements"), table.get("requirements"))
            {
                for (id, r) in reqs {
                    let complete = r.get("label").is_some() && r.get("accepts").is_some() && r.get("letter").is_some();
                    if !base_reqs.contains_key(id) && !complete {
                        return Err(SchemaError::invalid(
                            o,
                            &format!("requirements.{id}: the base schema has no such requirement, so this overrides nothing (a new requirement needs label, accepts and letter)"),
                        ));
                    }
                }
            }
            merge(&mut table, &ov);
            tenant = Some(t.clone());
            version_suffix = format!("+{t}.{v}");
            origin = format!("{base_origin} + {o}");
        }
        let content_hash = {
            let json = serde_json::to_string(&table).unwrap_or_default();
            hex::encode(Sha256::digest(json.as_bytes()))[..16].to_string()
        };
        let meta: ProcedureMeta = table
            .get("procedure")
            .cloned()
            .ok_or_else(|| SchemaError::invalid(&origin, "missing [procedure] table"))?
            .try_into()
            .map_err(|e: toml::de::Error| SchemaError::invalid(&origin, &format!("[procedure]: {}", e.message())))?;
        let reqs = table
            .get("requirements")
            .and_then(|r| r.as_table())
            .ok_or_else(|| SchemaError::invalid(&origin, "missing [requirements.<id>] tables"))?;
        let mut requirements = Vec::new();
        for (id, value) in reqs {
            let at = format!("requirements.{id}");
            let spec: RequirementSpec = value
                .clone()
                .try_into()
                .map_err(|e: toml::de::Error| SchemaError::invalid(&origin, &format!("{at}: {}", e.message())))?;
            if !spec.enabled {
                continue;
            }
            let when = spec
                .when
                .as_ref()
                .map(|c| Condition::from_spec(c, &format!("{at}.when"), spec.per_child))
                .transpose()
                .map_err(|m| SchemaError::invalid(&origin, &m))?;
            if let Some(c) = &when {
                for f in c.facts() {
                    if !meta.facts.contains_key(f) {
                        return Err(SchemaError::invalid(&origin, &format!("{at}.when: unknown fact {f:?} (declare it under [procedure.facts])")));
                    }
                }
            }
            if spec.accepts.is_empty() {
                return Err(SchemaError::invalid(&origin, &format!("{at}.accepts: list at least one document type")));
            }
            let accepts: Vec<Accept> = spec
                .accepts
                .iter()
                .map(|a| match a {
                    AcceptSpec::Type(t) => Accept { doc_type: t.clone(), max_age_days: None },
                    AcceptSpec::Detailed { doc_type, max_age_days } => Accept { doc_type: doc_type.clone(), max_age_days: *max_age_days },
                })
                .collect();
            for a in &accepts {
                if !catalogue.knows(&a.doc_type) || a.doc_type == super::catalogue::UNKNOWN {
                    return Err(SchemaError::invalid(&origin, &format!("{at}.accepts: unknown document type {:?}", a.doc_type)));
                }
            }
            if spec.match_child_name && !spec.per_child {
                return Err(SchemaError::invalid(&origin, &format!("{at}: match_child_name needs per_child = true")));
            }
            for placeholder in placeholders(&spec.letter) {
                if !LETTER_PLACEHOLDERS.contains(&placeholder.as_str()) {
                    return Err(SchemaError::invalid(
                        &origin,
                        &format!("{at}.letter: unknown placeholder {{{placeholder}}} (known: {})", LETTER_PLACEHOLDERS.join(", ")),
                    ));
                }
                if placeholder.starts_with("kind") && !spec.per_child {
                    return Err(SchemaError::invalid(&origin, &format!("{at}.letter: {{{placeholder}}} only works in a per_child requirement")));
                }
            }
            requirements.push(Requirement {
                id: id.clone(),
                label: spec.label,
                per_child: spec.per_child,
                when,
                accepts,
                match_child_name: spec.match_child_name,
                letter: spec.letter,
            });
        }
        let version = format!("{}{}", meta.version, version_suffix);
        Ok(ProcedureSchema { procedure: meta, tenant, version, content_hash, requirements })
    }
}

/// Placeholders a requirement's letter text may use.
pub const LETTER_PLACEHOLDERS: &[&str] = &["kind", "kind_geburtsdatum"];

/// The `{name}` placeholders in a letter text.
pub fn placeholders(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        match after.find('}') {
            Some(close) => {
                out.push(after[..close].to_string());
                rest = &after[close + 1..];
            }
            None => break,
        }
    }
    out
}

/// All procedure schemas and tenant variants, with the shared catalogue.
#[derive(Debug, Clone)]
pub struct SchemaSet {
    pub catalogue: super::catalogue::Catalogue,
    /// Base schemas by procedure id.
    pub procedures: std::collections::BTreeMap<String, ProcedureSchema>,
    /// Tenant variants by (procedure id, tenant).
    pub overlays: std::collections::BTreeMap<(String, String), ProcedureSchema>,
}

/// A schema source file's text and where it came from (for error messages).
pub struct SourceFile {
    pub origin: String,
    pub text: String,
}

impl SchemaSet {
    /// Builds the set from file contents: the catalogue, base procedures,
    /// and overlays given as (tenant directory, file). Every file is
    /// validated; all errors are returned, not just the first.
    pub fn build(
        catalogue: &SourceFile,
        procedures: &[SourceFile],
        overlays: &[SourceFile],
    ) -> Result<SchemaSet, Vec<SchemaError>> {
        let catalogue = Catalogue::from_toml(&catalogue.text, &catalogue.origin).map_err(|e| vec![e])?;
        let mut errors = Vec::new();
        let mut bases = std::collections::BTreeMap::new();
        let mut texts = std::collections::BTreeMap::new();
        for f in procedures {
            match ProcedureSchema::load(&f.text, &f.origin, None, &catalogue) {
                Ok(s) => {
                    if bases.contains_key(&s.procedure.id) {
                        errors.push(SchemaError::invalid(&f.origin, &format!("procedure {:?} is defined twice", s.procedure.id)));
                    }
                    texts.insert(s.procedure.id.clone(), f);
                    bases.insert(s.procedure.id.clone(), s);
                }
                Err(e) => errors.push(e),
            }
        }
        let mut variants = std::collections::BTreeMap::new();
        for o in overlays {
            let procedure = toml::from_str::<toml::Table>(&o.text)
                .ok()
                .and_then(|t| t.get("overlay")?.get("procedure")?.as_str().map(str::to_string));
            let Some(base) = procedure.as_ref().and_then(|p| texts.get(p)) else {
                errors.push(SchemaError::invalid(&o.origin, "overlay names no known procedure in [overlay] procedure"));
                continue;
            };
            match ProcedureSchema::load(&base.text, &base.origin, Some((&o.text, &o.origin)), &catalogue) {
                Ok(s) => {
                    let key = (s.procedure.id.clone(), s.tenant.clone().unwrap_or_default());
                    variants.insert(key, s);
                }
                Err(e) => errors.push(e),
            }
        }
        if errors.is_empty() {
            Ok(SchemaSet { catalogue, procedures: bases, overlays: variants })
        } else {
            Err(errors)
        }
    }

    /// The schema that applies to a bundle: the tenant's variant if there
    /// is one, else the base schema.
    pub fn for_bundle(&self, procedure: &str, tenant: Option<&str>) -> Option<&ProcedureSchema> {
        tenant
            .and_then(|t| self.overlays.get(&(procedure.to_string(), t.to_string())))
            .or_else(|| self.procedures.get(procedure))
    }
}

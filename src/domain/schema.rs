//! Procedure schemas: which documents a procedure requires, under which
//! conditions, for whom (the bundle, each child, each household member),
//! how fresh they must be, and what the letter says about each.
//!
//! Schemas are TOML data (`schemas/procedures/*.toml`); a tenant overlay
//! (`schemas/overlays/<tenant>/*.toml`) is merged key by key into its base.
//! Validation reports every problem with file, line and column, in German.
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

use super::catalogue::{Catalogue, UNKNOWN};
pub use super::diagnostics::{SchemaError, Severity};
use super::diagnostics::{Diagnostics, Mark, SourceMap, did_you_mean};

/// The built-in person list: the manifest's `children` (DESIGN §2).
pub const CHILDREN: &str = "children";

/// What kind of answer a declared fact has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FactKind {
    /// Ja/Nein (the default: a fact written as a plain question).
    Boolean,
    Number,
    Text,
}

impl FactKind {
    fn label_de(self) -> &'static str {
        match self {
            FactKind::Boolean => "Ja/Nein-Angabe",
            FactKind::Number => "Zahl",
            FactKind::Text => "Text",
        }
    }

    fn accepts(self, v: &toml::Value) -> bool {
        matches!(
            (self, v),
            (FactKind::Boolean, toml::Value::Boolean(_))
                | (FactKind::Number, toml::Value::Integer(_) | toml::Value::Float(_))
                | (FactKind::Text, toml::Value::String(_))
        )
    }
}

/// A fact a manifest may declare, with the German question behind it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FactSpec {
    pub question: String,
    pub kind: FactKind,
}

/// A list of persons in the manifest that requirements can be checked
/// for one by one (`children`, or e.g. `household` for Wohngeld).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PersonList {
    pub id: String,
    /// Singular German noun ("Kind", "Haushaltsmitglied").
    pub label: String,
    /// Facts each person of the list may carry (`persons.<list>[i].facts`).
    pub facts: BTreeMap<String, FactSpec>,
}

/// When a requirement applies.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Condition {
    /// A fact of the bundle has this value (`facts.<name>` in the manifest).
    Fact { fact: String, equals: Value },
    /// A fact of the person a per-person requirement is checked for.
    PersonFact { fact: String, equals: Value },
    /// The person (child) of a per-person requirement is at least this old.
    PersonAgeAtLeast(u32),
    /// The person (child) is younger than this.
    PersonAgeBelow(u32),
    /// Some child of the bundle is at least this old.
    AnyChildAgeAtLeast(u32),
    All(Vec<Condition>),
    Any(Vec<Condition>),
    Not(Box<Condition>),
}

impl Condition {
    /// The condition in words, for reasons and `schema diff`. `list` is the
    /// person list of a per-person requirement.
    pub fn describe(&self, meta: &ProcedureMeta, list: Option<&str>) -> String {
        let who = match list {
            Some(CHILDREN) | None => "das Kind".to_string(),
            Some(l) => format!("die Person ({})", meta.list_label(l)),
        };
        let fact_words = |q: &str, equals: &Value| match equals {
            Value::Bool(true) => format!("„{q}“ wurde mit Ja beantwortet"),
            Value::Bool(false) => format!("„{q}“ wurde mit Nein beantwortet"),
            Value::String(s) => format!("„{q}“ ist „{s}“"),
            v => format!("„{q}“ ist {v}"),
        };
        match self {
            Condition::Fact { fact, equals } => {
                let q = meta.facts.get(fact).map(|f| f.question.as_str()).unwrap_or(fact);
                fact_words(q, equals)
            }
            Condition::PersonFact { fact, equals } => {
                let q = list
                    .and_then(|l| meta.lists.get(l))
                    .and_then(|l| l.facts.get(fact))
                    .map(|f| f.question.as_str())
                    .unwrap_or(fact);
                format!("bei der Person {}", fact_words(q, equals))
            }
            Condition::PersonAgeAtLeast(n) => format!("{who} ist mindestens {n} Jahre alt"),
            Condition::PersonAgeBelow(n) => format!("{who} ist jünger als {n} Jahre"),
            Condition::AnyChildAgeAtLeast(n) => format!("ein Kind ist mindestens {n} Jahre alt"),
            Condition::All(v) => v.iter().map(|c| c.describe(meta, list)).collect::<Vec<_>>().join(" und "),
            Condition::Any(v) => v.iter().map(|c| c.describe(meta, list)).collect::<Vec<_>>().join(" oder "),
            Condition::Not(c) => format!("nicht ({})", c.describe(meta, list)),
        }
    }

    /// Bundle-level fact names this condition reads.
    pub fn facts(&self) -> Vec<&str> {
        match self {
            Condition::Fact { fact, .. } => vec![fact.as_str()],
            Condition::All(v) | Condition::Any(v) => v.iter().flat_map(Condition::facts).collect(),
            Condition::Not(c) => c.facts(),
            _ => Vec::new(),
        }
    }
}

/// One document type that satisfies a requirement.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Accept {
    pub doc_type: String,
    /// The document's own date may be at most this many days before receipt.
    pub max_age_days: Option<u32>,
}

/// A requirement of a procedure.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Requirement {
    pub id: String,
    pub label: String,
    /// Checked once per person of this list (`children` for `per_child`).
    pub for_each: Option<String>,
    pub when: Option<Condition>,
    pub accepts: Vec<Accept>,
    /// Per-person documents must name the person (first and family name).
    pub match_name: bool,
    pub letter: String,
}

impl Requirement {
    /// Whether it is checked once per child (the UVG `per_child`).
    pub fn per_child(&self) -> bool {
        self.for_each.as_deref() == Some(CHILDREN)
    }
}

/// The `[procedure]` table.
#[derive(Debug, Clone, Serialize)]
pub struct ProcedureMeta {
    pub id: String,
    pub version: String,
    pub title: String,
    /// The law the letter cites ("Unterhaltsvorschussgesetz (UVG)").
    pub law: String,
    /// Days from the letter's date to the deadline.
    pub deadline_days: u32,
    /// The department in the letterhead ("Wohngeldbehörde"); `None` keeps
    /// the configured letterhead's.
    pub department: Option<String>,
    /// Facts the manifest may carry, with their German question.
    pub facts: BTreeMap<String, FactSpec>,
    /// Person lists besides `children` (which always exists).
    pub lists: BTreeMap<String, PersonList>,
}

impl PartialEq for ProcedureMeta {
    fn eq(&self, o: &Self) -> bool {
        self.id == o.id && self.version == o.version
    }
}

impl ProcedureMeta {
    /// The singular German noun for a person of `list`.
    pub fn list_label(&self, list: &str) -> String {
        match self.lists.get(list) {
            Some(l) => l.label.clone(),
            None if list == CHILDREN => "Kind".to_string(),
            None => list.to_string(),
        }
    }
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
    /// The stored schema version this was loaded from (`uvg@3`), when it
    /// came from the database's schema registry rather than from files.
    pub version_id: Option<String>,
    pub requirements: Vec<Requirement>,
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

/// A schema source file's text and where it came from (for error messages).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct SourceFile {
    pub origin: String,
    pub text: String,
}

/// Placeholders a requirement's letter text may use, by where it applies.
pub const CHILD_PLACEHOLDERS: &[&str] = &["kind", "kind_geburtsdatum", "person", "person_geburtsdatum"];
pub const PERSON_PLACEHOLDERS: &[&str] = &["person", "person_geburtsdatum"];
/// All placeholders there are (for documentation and messages).
pub const LETTER_PLACEHOLDERS: &[&str] = CHILD_PLACEHOLDERS;

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

const TOP_KEYS: &[&str] = &["procedure", "requirements"];
const PROCEDURE_KEYS: &[&str] = &["id", "version", "title", "law", "deadline_days", "department", "facts", "lists"];
const REQUIREMENT_KEYS: &[&str] =
    &["label", "accepts", "when", "per_child", "for_each", "match_name", "match_child_name", "letter", "enabled"];
const CONDITION_HEADS: &[&str] = &[
    "fact",
    "person_fact",
    "child_age_at_least",
    "child_age_below",
    "person_age_at_least",
    "person_age_below",
    "any_child_age_at_least",
    "all",
    "any",
    "not",
];

fn keys_de(keys: &[&str]) -> String {
    keys.join(", ")
}

fn type_de(v: &toml::Value) -> &'static str {
    match v {
        toml::Value::String(_) => "Text",
        toml::Value::Integer(_) | toml::Value::Float(_) => "Zahl",
        toml::Value::Boolean(_) => "Ja/Nein-Wert",
        toml::Value::Datetime(_) => "Datum",
        toml::Value::Array(_) => "Liste",
        toml::Value::Table(_) => "Tabelle",
    }
}

/// Identifiers (procedure, requirement, list and fact names) end up in
/// reports, URLs and database keys: lower-case ASCII, digits, `_`, `-`.
fn valid_id(s: &str) -> bool {
    s.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() { key.to_string() } else { format!("{path}.{key}") }
}

/// Reports keys of `table` that are not in `allowed`.
fn unknown_keys(table: &toml::Table, path: &str, allowed: &[&str], what: &str, d: &mut Diagnostics<'_>) {
    for k in table.keys() {
        if !allowed.contains(&k.as_str()) {
            d.error(
                &join(path, k),
                Mark::Key,
                format!(
                    "Unbekannter Schlüssel „{k}“ in {what}.{} Erlaubt sind: {}.",
                    did_you_mean(k, allowed.iter().copied()),
                    keys_de(allowed)
                ),
            );
        }
    }
}

fn req_str(table: &toml::Table, path: &str, key: &str, d: &mut Diagnostics<'_>) -> Option<String> {
    match table.get(key) {
        Some(toml::Value::String(s)) if !s.trim().is_empty() => Some(s.clone()),
        Some(toml::Value::String(_)) => {
            d.error(&join(path, key), Mark::Value, format!("„{key}“ darf nicht leer sein."));
            None
        }
        Some(v) => {
            d.error(&join(path, key), Mark::Value, format!("„{key}“ muss ein Text in Anführungszeichen sein, nicht {}.", type_de(v)));
            None
        }
        None => {
            d.error(path, Mark::Key, format!("In [{path}] fehlt der Schlüssel „{key}“."));
            None
        }
    }
}

fn opt_bool(table: &toml::Table, path: &str, key: &str, d: &mut Diagnostics<'_>) -> Option<bool> {
    match table.get(key) {
        None => None,
        Some(toml::Value::Boolean(b)) => Some(*b),
        Some(v) => {
            d.error(&join(path, key), Mark::Value, format!("„{key}“ muss true oder false sein, nicht {}.", type_de(v)));
            None
        }
    }
}

fn small_number(v: &toml::Value, path: &str, what: &str, max: i64, d: &mut Diagnostics<'_>) -> Option<u32> {
    match v {
        toml::Value::Integer(n) if (0..=max).contains(n) => Some(*n as u32),
        toml::Value::Integer(n) => {
            d.error(path, Mark::Value, format!("{what} muss zwischen 0 und {max} liegen, nicht {n}."));
            None
        }
        other => {
            d.error(path, Mark::Value, format!("{what} muss eine ganze Zahl sein, nicht {}.", type_de(other)));
            None
        }
    }
}

fn facts_table(v: Option<&toml::Value>, path: &str, d: &mut Diagnostics<'_>) -> BTreeMap<String, FactSpec> {
    let mut out = BTreeMap::new();
    let Some(v) = v else { return out };
    let Some(t) = v.as_table() else {
        d.error(path, Mark::Value, "„facts“ muss eine Tabelle sein: name = \"Frage?\".");
        return out;
    };
    for (name, spec) in t {
        let p = join(path, name);
        if !valid_id(name) {
            d.error(&p, Mark::Key, format!("Der Name der Angabe „{name}“ darf nur Kleinbuchstaben, Ziffern, _ und - enthalten."));
        }
        let parsed = match spec {
            toml::Value::String(q) => Some(FactSpec { question: q.clone(), kind: FactKind::Boolean }),
            toml::Value::Table(st) => {
                unknown_keys(st, &p, &["question", "type"], "einer Angabe", d);
                let question = req_str(st, &p, "question", d);
                let kind = match st.get("type").and_then(|t| t.as_str()) {
                    None | Some("boolean") => Some(FactKind::Boolean),
                    Some("number") => Some(FactKind::Number),
                    Some("text") => Some(FactKind::Text),
                    Some(other) => {
                        d.error(
                            &join(&p, "type"),
                            Mark::Value,
                            format!("Unbekannte Art „{other}“: erlaubt sind boolean (Ja/Nein), number (Zahl) und text."),
                        );
                        None
                    }
                };
                question.zip(kind).map(|(question, kind)| FactSpec { question, kind })
            }
            other => {
                d.error(&p, Mark::Value, format!("Eine Angabe ist eine Frage (Text) oder eine Tabelle {{ question, type }}, nicht {}.", type_de(other)));
                None
            }
        };
        if let Some(f) = parsed {
            out.insert(name.clone(), f);
        }
    }
    out
}

fn procedure_meta(table: &toml::Table, d: &mut Diagnostics<'_>) -> Option<ProcedureMeta> {
    let Some(p) = table.get("procedure") else {
        d.error("", Mark::Key, "Die Tabelle [procedure] fehlt (mit id, version, title, law, deadline_days).");
        return None;
    };
    let Some(p) = p.as_table() else {
        d.error("procedure", Mark::Value, "„procedure“ muss eine Tabelle sein.");
        return None;
    };
    unknown_keys(p, "procedure", PROCEDURE_KEYS, "[procedure]", d);
    let id = req_str(p, "procedure", "id", d);
    if let Some(i) = &id {
        if !valid_id(i) {
            d.error("procedure.id", Mark::Value, format!("Die Verfahrens-id „{i}“ darf nur Kleinbuchstaben, Ziffern, _ und - enthalten."));
        } else if i == "catalogue" {
            d.error("procedure.id", Mark::Value, "Die id „catalogue“ ist für Versionen des Dokumentkatalogs reserviert.");
        }
    }
    let version = req_str(p, "procedure", "version", d);
    let title = req_str(p, "procedure", "title", d);
    let law = req_str(p, "procedure", "law", d);
    let deadline_days = match p.get("deadline_days") {
        None => {
            d.error("procedure", Mark::Key, "In [procedure] fehlt „deadline_days“ (Frist im Schreiben in Tagen).");
            None
        }
        Some(v) => small_number(v, "procedure.deadline_days", "Die Frist (deadline_days)", 365, d).filter(|n| {
            if *n == 0 {
                d.error("procedure.deadline_days", Mark::Value, "Die Frist muss mindestens einen Tag betragen.");
            }
            *n > 0
        }),
    };
    let department = p.get("department").and_then(|_| req_str(p, "procedure", "department", d));
    let facts = facts_table(p.get("facts"), "procedure.facts", d);
    let mut lists = BTreeMap::new();
    if let Some(l) = p.get("lists") {
        match l.as_table() {
            None => d.error("procedure.lists", Mark::Value, "„lists“ muss eine Tabelle sein: [procedure.lists.<name>]."),
            Some(lt) => {
                for (name, spec) in lt {
                    let lp = join("procedure.lists", name);
                    if !valid_id(name) {
                        d.error(&lp, Mark::Key, format!("Der Listenname „{name}“ darf nur Kleinbuchstaben, Ziffern, _ und - enthalten."));
                    }
                    let Some(st) = spec.as_table() else {
                        d.error(&lp, Mark::Value, "Eine Personenliste ist eine Tabelle mit label und facts.");
                        continue;
                    };
                    unknown_keys(st, &lp, &["label", "facts"], "einer Personenliste", d);
                    let label = req_str(st, &lp, "label", d).unwrap_or_default();
                    let facts = facts_table(st.get("facts"), &join(&lp, "facts"), d);
                    lists.insert(name.clone(), PersonList { id: name.clone(), label, facts });
                }
            }
        }
    }
    Some(ProcedureMeta {
        id: id?,
        version: version?,
        title: title?,
        law: law?,
        deadline_days: deadline_days?,
        department,
        facts,
        lists,
    })
}

/// Where a condition is evaluated: the bundle, or one person of a list.
struct CondScope<'a> {
    meta: &'a ProcedureMeta,
    list: Option<&'a str>,
}

fn condition(v: &toml::Value, path: &str, scope: &CondScope<'_>, d: &mut Diagnostics<'_>) -> Option<Condition> {
    let Some(t) = v.as_table() else {
        d.error(path, Mark::Value, format!("Eine Bedingung ist eine Tabelle wie {{ fact = \"…\", equals = true }}, nicht {}.", type_de(v)));
        return None;
    };
    let mut allowed: Vec<&str> = CONDITION_HEADS.to_vec();
    allowed.push("equals");
    unknown_keys(t, path, &allowed, "einer Bedingung", d);
    let heads: Vec<&String> = t.keys().filter(|k| CONDITION_HEADS.contains(&k.as_str())).collect();
    if heads.len() != 1 {
        d.error(
            path,
            Mark::Value,
            format!(
                "Eine Bedingung braucht genau einen dieser Schlüssel: {} (gefunden: {}). Mehrere Bedingungen mit all = [ … ] verbinden.",
                keys_de(CONDITION_HEADS),
                if heads.is_empty() { "keinen".to_string() } else { heads.iter().map(|h| h.as_str()).collect::<Vec<_>>().join(", ") }
            ),
        );
        return None;
    }
    let head = heads[0].as_str();
    let hp = join(path, head);
    if t.contains_key("equals") && !matches!(head, "fact" | "person_fact") {
        d.error(&join(path, "equals"), Mark::Key, "„equals“ gehört zu einer Bedingung mit fact oder person_fact.");
    }
    let value = &t[head];
    let per_person = |d: &mut Diagnostics<'_>, children_only: bool| -> bool {
        match scope.list {
            None => {
                d.error(
                    &hp,
                    Mark::Key,
                    format!("„{head}“ gilt nur in Anforderungen, die für jede Person geprüft werden (per_child = true oder for_each = \"…\"); für das ganze Bündel any_child_age_at_least verwenden."),
                );
                false
            }
            Some(l) if children_only && l != CHILDREN => {
                let alt = head.replace("child_", "person_");
                d.error(&hp, Mark::Key, format!("„{head}“ gilt nur für Kinder (per_child); für die Liste „{l}“ {alt} verwenden."));
                false
            }
            Some(_) => true,
        }
    };
    let age = |d: &mut Diagnostics<'_>| small_number(value, &hp, "Ein Alter", 150, d);
    match head {
        "fact" | "person_fact" => {
            let Some(name) = value.as_str() else {
                d.error(&hp, Mark::Value, format!("„{head}“ nennt den Namen einer Angabe als Text."));
                return None;
            };
            let (known, where_) = if head == "fact" {
                (Some(&scope.meta.facts), "[procedure.facts]".to_string())
            } else {
                if !per_person(d, false) {
                    return None;
                }
                let list = scope.list.unwrap_or_default();
                (scope.meta.lists.get(list).map(|l| &l.facts), format!("[procedure.lists.{list}.facts]"))
            };
            let spec = known.and_then(|k| k.get(name));
            let Some(spec) = spec else {
                let names: Vec<&str> = known.map(|k| k.keys().map(String::as_str).collect()).unwrap_or_default();
                d.error(
                    &hp,
                    Mark::Value,
                    format!("Unbekannte Angabe „{name}“: sie ist nicht in {where_} erklärt.{}", did_you_mean(name, names)),
                );
                return None;
            };
            let Some(equals) = t.get("equals") else {
                d.error(path, Mark::Value, format!("Die Bedingung auf „{name}“ braucht „equals“ (der Wert, bei dem sie zutrifft)."));
                return None;
            };
            if !spec.kind.accepts(equals) {
                d.error(
                    &join(path, "equals"),
                    Mark::Value,
                    format!(
                        "„{name}“ ist eine {}, wird hier aber mit einem Wert der Art {} verglichen: die Bedingung kann nie zutreffen.",
                        spec.kind.label_de(),
                        type_de(equals)
                    ),
                );
                return None;
            }
            let equals = serde_json::to_value(equals).unwrap_or(Value::Null);
            Some(if head == "fact" {
                Condition::Fact { fact: name.to_string(), equals }
            } else {
                Condition::PersonFact { fact: name.to_string(), equals }
            })
        }
        "child_age_at_least" | "child_age_below" | "person_age_at_least" | "person_age_below" => {
            if !per_person(d, head.starts_with("child_")) {
                return None;
            }
            let n = age(d)?;
            Some(if head.ends_with("at_least") { Condition::PersonAgeAtLeast(n) } else { Condition::PersonAgeBelow(n) })
        }
        "any_child_age_at_least" => age(d).map(Condition::AnyChildAgeAtLeast),
        "all" | "any" => {
            let Some(items) = value.as_array() else {
                d.error(&hp, Mark::Value, format!("„{head}“ ist eine Liste von Bedingungen: {head} = [ {{ … }}, {{ … }} ]."));
                return None;
            };
            if items.is_empty() {
                d.error(&hp, Mark::Value, format!("„{head}“ muss mindestens eine Bedingung enthalten."));
                return None;
            }
            let parts: Vec<Option<Condition>> =
                items.iter().enumerate().map(|(i, c)| condition(c, &format!("{hp}[{i}]"), scope, d)).collect();
            let parts: Option<Vec<Condition>> = parts.into_iter().collect();
            parts.map(|p| if head == "all" { Condition::All(p) } else { Condition::Any(p) })
        }
        _ => condition(value, &hp, scope, d).map(|c| Condition::Not(Box::new(c))),
    }
}

/// A literal of a conjunction, for finding conditions that can never hold.
#[derive(Clone)]
enum Literal {
    Fact(String, Value, bool),
    PersonFact(String, Value, bool),
    /// Age bound of the person: (at least, below).
    PersonAge(u32, u32),
    Other,
}

/// The conjunctions a condition is true under (disjunctive normal form,
/// bounded: large conditions are not analysed and count as satisfiable).
fn dnf(c: &Condition, positive: bool) -> Option<Vec<Vec<Literal>>> {
    const LIMIT: usize = 64;
    let and = |parts: Vec<Vec<Vec<Literal>>>| -> Option<Vec<Vec<Literal>>> {
        let mut acc: Vec<Vec<Literal>> = vec![Vec::new()];
        for p in parts {
            let mut next = Vec::new();
            for a in &acc {
                for b in &p {
                    next.push(a.iter().chain(b.iter()).cloned().collect());
                }
            }
            if next.len() > LIMIT {
                return None;
            }
            acc = next;
        }
        Some(acc)
    };
    match (c, positive) {
        (Condition::Fact { fact, equals }, p) => Some(vec![vec![Literal::Fact(fact.clone(), equals.clone(), p)]]),
        (Condition::PersonFact { fact, equals }, p) => Some(vec![vec![Literal::PersonFact(fact.clone(), equals.clone(), p)]]),
        (Condition::PersonAgeAtLeast(n), true) | (Condition::PersonAgeBelow(n), false) => Some(vec![vec![Literal::PersonAge(*n, u32::MAX)]]),
        (Condition::PersonAgeBelow(n), true) | (Condition::PersonAgeAtLeast(n), false) => Some(vec![vec![Literal::PersonAge(0, *n)]]),
        (Condition::AnyChildAgeAtLeast(_), _) => Some(vec![vec![Literal::Other]]),
        (Condition::Not(inner), p) => dnf(inner, !p),
        (Condition::All(v), true) | (Condition::Any(v), false) => and(v.iter().map(|c| dnf(c, positive)).collect::<Option<Vec<_>>>()?),
        (Condition::Any(v), true) | (Condition::All(v), false) => {
            let mut out = Vec::new();
            for c in v {
                out.extend(dnf(c, positive)?);
            }
            (out.len() <= LIMIT).then_some(out)
        }
    }
}

/// Why a conjunction can never hold, if it cannot.
fn contradiction(lits: &[Literal]) -> Option<String> {
    let (mut lo, mut hi) = (0u32, u32::MAX);
    for l in lits {
        if let Literal::PersonAge(a, b) = l {
            lo = lo.max(*a);
            hi = hi.min(*b);
        }
    }
    if lo >= hi {
        return Some(if hi == 0 {
            "niemand ist jünger als 0 Jahre".to_string()
        } else {
            format!("niemand ist zugleich mindestens {lo} und jünger als {hi} Jahre alt")
        });
    }
    for (i, a) in lits.iter().enumerate() {
        for b in &lits[i + 1..] {
            let clash = match (a, b) {
                (Literal::Fact(f, v, p), Literal::Fact(g, w, q)) | (Literal::PersonFact(f, v, p), Literal::PersonFact(g, w, q)) if f == g => {
                    (*p && *q && v != w) || (p != q && v == w)
                }
                _ => false,
            };
            if clash {
                let name = match a {
                    Literal::Fact(f, ..) | Literal::PersonFact(f, ..) => f.as_str(),
                    _ => "",
                };
                return Some(format!("die Angabe „{name}“ kann nicht beide Werte zugleich haben"));
            }
        }
    }
    None
}

/// Reports a condition that can never be true (the requirement would never
/// apply) or is always true (the `when` is pointless).
fn check_reachable(c: &Condition, path: &str, d: &mut Diagnostics<'_>) {
    if let Some(conj) = dnf(c, true) {
        let reasons: Vec<String> = conj.iter().filter_map(|l| contradiction(l)).collect();
        if reasons.len() == conj.len() {
            d.error(
                path,
                Mark::Value,
                format!("Diese Bedingung kann nie zutreffen ({}): die Anforderung würde nie verlangt.", reasons[0]),
            );
            return;
        }
    }
    if let Some(neg) = dnf(c, false)
        && neg.iter().all(|l| contradiction(l).is_some())
    {
        d.warning(path, Mark::Value, "Diese Bedingung trifft immer zu; „when“ kann entfallen.");
    }
}

fn accepts_list(v: Option<&toml::Value>, path: &str, catalogue: &Catalogue, d: &mut Diagnostics<'_>) -> Vec<Accept> {
    let ap = join(path, "accepts");
    let Some(v) = v else {
        d.error(path, Mark::Key, format!("In [{path}] fehlt „accepts“: welche Dokumenttypen die Anforderung erfüllen."));
        return Vec::new();
    };
    let Some(items) = v.as_array() else {
        d.error(&ap, Mark::Value, "„accepts“ ist eine Liste: accepts = [\"typ\", { type = \"typ\", max_age_days = 90 }].");
        return Vec::new();
    };
    if items.is_empty() {
        d.error(&ap, Mark::Value, "„accepts“ muss mindestens einen Dokumenttyp nennen.");
    }
    let known: Vec<&str> = catalogue.ids().filter(|i| *i != UNKNOWN).collect();
    let mut out: Vec<Accept> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let ip = format!("{ap}[{i}]");
        let (doc_type, max_age_days, tp) = match item {
            toml::Value::String(s) => (s.clone(), None, ip.clone()),
            toml::Value::Table(t) => {
                unknown_keys(t, &ip, &["type", "max_age_days"], "einem akzeptierten Dokument", d);
                let Some(s) = req_str(t, &ip, "type", d) else { continue };
                let max = t.get("max_age_days").and_then(|m| small_number(m, &join(&ip, "max_age_days"), "max_age_days", 3650, d));
                (s, max, join(&ip, "type"))
            }
            other => {
                d.error(&ip, Mark::Value, format!("Ein akzeptiertes Dokument ist ein Typ als Text oder {{ type, max_age_days }}, nicht {}.", type_de(other)));
                continue;
            }
        };
        if doc_type == UNKNOWN {
            d.error(&tp, Mark::Value, "„unbekannt“ steht für nicht erkannte Seiten und kann keine Anforderung erfüllen.");
            continue;
        }
        if !catalogue.knows(&doc_type) {
            d.error(
                &tp,
                Mark::Value,
                format!(
                    "Unbekannter Dokumenttyp „{doc_type}“: er steht nicht im Dokumentkatalog (document_types.toml).{}",
                    did_you_mean(&doc_type, known.iter().copied())
                ),
            );
            continue;
        }
        if out.iter().any(|a| a.doc_type == doc_type) {
            d.warning(&tp, Mark::Value, format!("Der Dokumenttyp „{doc_type}“ steht zweimal in accepts; gezählt wird der erste Eintrag."));
        }
        out.push(Accept { doc_type, max_age_days });
    }
    out
}

fn requirement(
    id: &str,
    v: &toml::Value,
    meta: &ProcedureMeta,
    catalogue: &Catalogue,
    d: &mut Diagnostics<'_>,
) -> Option<Option<Requirement>> {
    let path = join("requirements", id);
    let Some(t) = v.as_table() else {
        d.error(&path, Mark::Value, "Eine Anforderung ist eine Tabelle [requirements.<id>] mit label, accepts und letter.");
        return None;
    };
    unknown_keys(t, &path, REQUIREMENT_KEYS, &format!("der Anforderung „{id}“"), d);
    let label = req_str(t, &path, "label", d);
    let letter = req_str(t, &path, "letter", d);
    let enabled = opt_bool(t, &path, "enabled", d).unwrap_or(true);
    let per_child = opt_bool(t, &path, "per_child", d).unwrap_or(false);
    let for_each = match t.get("for_each") {
        None => None,
        Some(toml::Value::String(l)) => {
            if l != CHILDREN && !meta.lists.contains_key(l) {
                let names: Vec<&str> = meta.lists.keys().map(String::as_str).chain([CHILDREN]).collect();
                d.error(
                    &join(&path, "for_each"),
                    Mark::Value,
                    format!("Unbekannte Personenliste „{l}“: erlaubt sind children und die Listen aus [procedure.lists].{}", did_you_mean(l, names)),
                );
                None
            } else {
                Some(l.clone())
            }
        }
        Some(other) => {
            d.error(&join(&path, "for_each"), Mark::Value, format!("„for_each“ nennt eine Personenliste als Text, nicht {}.", type_de(other)));
            None
        }
    };
    if per_child && for_each.as_deref().is_some_and(|l| l != CHILDREN) {
        d.error(&join(&path, "per_child"), Mark::Key, "per_child = true und for_each widersprechen sich; nur eines von beiden angeben.");
    }
    let for_each = for_each.or_else(|| per_child.then(|| CHILDREN.to_string()));
    let match_name = opt_bool(t, &path, "match_name", d).unwrap_or(false) | opt_bool(t, &path, "match_child_name", d).unwrap_or(false);
    if match_name && for_each.is_none() {
        let key = if t.contains_key("match_name") { "match_name" } else { "match_child_name" };
        d.error(&join(&path, key), Mark::Key, "Der Namensabgleich gilt nur für Anforderungen je Person (per_child = true oder for_each).");
    }
    let scope = CondScope { meta, list: for_each.as_deref() };
    let when = t.get("when").and_then(|w| {
        let c = condition(w, &join(&path, "when"), &scope, d);
        if let Some(c) = &c {
            check_reachable(c, &join(&path, "when"), d);
        }
        c
    });
    let accepts = accepts_list(t.get("accepts"), &path, catalogue, d);
    if let Some(text) = &letter {
        let allowed: &[&str] = match for_each.as_deref() {
            Some(CHILDREN) => CHILD_PLACEHOLDERS,
            Some(_) => PERSON_PLACEHOLDERS,
            None => &[],
        };
        for p in placeholders(text) {
            if !allowed.contains(&p.as_str()) {
                let message = if LETTER_PLACEHOLDERS.contains(&p.as_str()) {
                    if for_each.is_none() {
                        format!("Der Platzhalter {{{p}}} gilt hier nicht: nur in Anforderungen je Person (per_child oder for_each).")
                    } else {
                        format!(
                            "Der Platzhalter {{{p}}} gilt nur für Kinder; für die Liste „{}“ gibt es {}.",
                            for_each.as_deref().unwrap_or(""),
                            PERSON_PLACEHOLDERS.map_braces()
                        )
                    }
                } else if allowed.is_empty() {
                    format!("Den Platzhalter {{{p}}} im Brieftext gibt es nicht; diese Anforderung kennt keine Platzhalter (nur Anforderungen je Person haben welche).")
                } else {
                    format!(
                        "Den Platzhalter {{{p}}} im Brieftext gibt es nicht: bekannt sind {}.{}",
                        allowed.map_braces(),
                        did_you_mean(&p, allowed.iter().copied())
                    )
                };
                d.error(&join(&path, "letter"), Mark::Value, message);
            }
        }
    }
    if !enabled {
        return Some(None);
    }
    Some(Some(Requirement { id: id.to_string(), label: label?, for_each, when, accepts, match_name, letter: letter? }))
}

trait Braces {
    fn map_braces(&self) -> String;
}

impl Braces for [&str] {
    fn map_braces(&self) -> String {
        self.iter().map(|p| format!("{{{p}}}")).collect::<Vec<_>>().join(", ")
    }
}

/// Validates a merged schema table into a `ProcedureSchema`.
fn procedure_schema(table: &toml::Table, catalogue: &Catalogue, d: &mut Diagnostics<'_>) -> Option<ProcedureSchema> {
    unknown_keys(table, "", TOP_KEYS, "einem Verfahrensschema", d);
    let meta = procedure_meta(table, d);
    let reqs = match table.get("requirements") {
        Some(toml::Value::Table(r)) if !r.is_empty() => Some(r),
        Some(toml::Value::Table(_)) | None => {
            d.error("", Mark::Key, "Das Schema hat keine Anforderungen: mindestens eine Tabelle [requirements.<id>] anlegen.");
            None
        }
        Some(_) => {
            d.error("requirements", Mark::Value, "„requirements“ muss aus Tabellen [requirements.<id>] bestehen.");
            None
        }
    };
    let (meta, reqs) = (meta?, reqs?);
    let mut requirements = Vec::new();
    let mut seen_ids: Vec<&str> = Vec::new();
    let mut labels: BTreeMap<String, String> = BTreeMap::new();
    for (id, v) in reqs {
        let path = join("requirements", id);
        if let Some(other) = seen_ids.iter().find(|o| o.eq_ignore_ascii_case(id)) {
            d.error(
                &path,
                Mark::Key,
                format!("Die Anforderungs-id „{id}“ unterscheidet sich nur in der Groß-/Kleinschreibung von „{other}“: das wären zwei Anforderungen, gemeint ist wohl eine."),
            );
        } else if !valid_id(id) {
            d.error(&path, Mark::Key, format!("Die Anforderungs-id „{id}“ darf nur Kleinbuchstaben, Ziffern, _ und - enthalten."));
        }
        seen_ids.push(id);
        if let Some(Some(r)) = requirement(id, v, &meta, catalogue, d) {
            let key = format!("{}|{}", r.label.to_lowercase(), r.for_each.clone().unwrap_or_default());
            if let Some(other) = labels.get(&key) {
                d.warning(
                    &join(&path, "label"),
                    Mark::Value,
                    format!("Die Bezeichnung „{}“ hat schon die Anforderung „{other}“; Sachbearbeitung und Brief könnten beide nicht unterscheiden.", r.label),
                );
            } else {
                labels.insert(key, id.clone());
            }
            requirements.push(r);
        }
    }
    if d.has_errors() {
        return None;
    }
    let content_hash = {
        let json = serde_json::to_string(table).unwrap_or_default();
        hex::encode(Sha256::digest(json.as_bytes()))[..16].to_string()
    };
    let version = meta.version.clone();
    Some(ProcedureSchema { procedure: meta, tenant: None, version, content_hash, version_id: None, requirements })
}

/// The `[overlay]` table of an overlay file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OverlayMeta {
    pub tenant: String,
    pub procedure: String,
    pub version: String,
}

/// Reads `[overlay]` (tenant, procedure, version) and reports what is wrong with it.
fn overlay_meta(ov: &toml::Table, d: &mut Diagnostics<'_>) -> Option<OverlayMeta> {
    let Some(m) = ov.get("overlay").and_then(|v| v.as_table()) else {
        d.error("", Mark::Key, "Ein Overlay braucht die Tabelle [overlay] mit tenant, procedure und version.");
        return None;
    };
    unknown_keys(m, "overlay", &["tenant", "procedure", "version"], "[overlay]", d);
    let tenant = req_str(m, "overlay", "tenant", d);
    let procedure = req_str(m, "overlay", "procedure", d);
    let version = req_str(m, "overlay", "version", d);
    Some(OverlayMeta { tenant: tenant?, procedure: procedure?, version: version? })
}

/// Checks what an overlay changes against its base, before merging: an
/// entry for a requirement the base lacks must be a whole requirement, and
/// an entry that sets what the base already says changes nothing.
fn overlay_changes(ov: &toml::Table, base: &toml::Table, d: &mut Diagnostics<'_>) {
    for k in ov.keys() {
        if !["overlay", "requirements", "procedure"].contains(&k.as_str()) {
            d.error(k, Mark::Key, format!("Unbekannter Schlüssel „{k}“ in einem Overlay. Erlaubt sind: overlay, procedure, requirements."));
        }
    }
    let mut changes = 0usize;
    if let Some(p) = ov.get("procedure").and_then(|v| v.as_table()) {
        for k in ["id", "version"] {
            if p.contains_key(k) {
                d.error(
                    &join("procedure", k),
                    Mark::Key,
                    format!("Ein Overlay kann procedure.{k} nicht ändern; die Version eines Overlays steht in [overlay] version."),
                );
            }
        }
        const OVERLAY_PROCEDURE_KEYS: &[&str] = &["title", "law", "deadline_days", "department", "facts", "lists"];
        for k in p.keys().filter(|k| !OVERLAY_PROCEDURE_KEYS.contains(&k.as_str()) && *k != "id" && *k != "version") {
            d.error(
                &join("procedure", k),
                Mark::Key,
                format!(
                    "Unbekannter Schlüssel „{k}“ in [procedure].{} Ein Overlay kann ändern: {}.",
                    did_you_mean(k, OVERLAY_PROCEDURE_KEYS.iter().copied()),
                    keys_de(OVERLAY_PROCEDURE_KEYS)
                ),
            );
        }
        let bp = base.get("procedure").and_then(|v| v.as_table());
        for (k, v) in p {
            if bp.and_then(|b| b.get(k)) == Some(v) {
                d.warning(&join("procedure", k), Mark::Key, format!("procedure.{k} hat denselben Wert wie in der Basis; das ändert nichts."));
            } else {
                changes += 1;
            }
        }
    }
    let empty = toml::Table::new();
    let base_reqs = base.get("requirements").and_then(|v| v.as_table()).unwrap_or(&empty);
    if let Some(reqs) = ov.get("requirements").and_then(|v| v.as_table()) {
        for (id, entry) in reqs {
            let path = join("requirements", id);
            let Some(entry) = entry.as_table() else { continue };
            match base_reqs.get(id).and_then(|b| b.as_table()) {
                Some(b) => {
                    for (k, v) in entry {
                        if b.get(k) == Some(v) || (k == "enabled" && v.as_bool() == Some(true) && !b.contains_key(k)) {
                            d.warning(
                                &join(&path, k),
                                Mark::Key,
                                format!("requirements.{id}.{k} hat denselben Wert wie in der Basis; dieser Eintrag ändert nichts."),
                            );
                        } else {
                            changes += 1;
                        }
                    }
                }
                None => {
                    if let Some(base_id) = base_reqs.keys().find(|b| b.eq_ignore_ascii_case(id)) {
                        d.error(
                            &path,
                            Mark::Key,
                            format!("Die Basis hat keine Anforderung „{id}“, aber „{base_id}“ (andere Groß-/Kleinschreibung): so entstünde eine zweite Anforderung statt einer Änderung."),
                        );
                        continue;
                    }
                    let complete = ["label", "accepts", "letter"].iter().all(|k| entry.contains_key(*k));
                    if entry.get("enabled").and_then(|v| v.as_bool()) == Some(false) || !complete {
                        d.error(
                            &path,
                            Mark::Key,
                            format!(
                                "Dieser Eintrag überschreibt nichts: die Basis „{}“ hat keine Anforderung „{id}“.{} Eine neue Anforderung braucht label, accepts und letter.",
                                base.get("procedure").and_then(|p| p.get("id")).and_then(|v| v.as_str()).unwrap_or("?"),
                                did_you_mean(id, base_reqs.keys().map(String::as_str))
                            ),
                        );
                    } else {
                        changes += 1;
                    }
                }
            }
        }
    }
    let entries = ov.get("procedure").and_then(|v| v.as_table()).map_or(0, |t| t.len())
        + ov.get("requirements").and_then(|v| v.as_table()).map_or(0, |t| t.len());
    if entries == 0 && !d.has_errors() {
        d.error("overlay", Mark::Key, "Dieses Overlay ändert nichts an der Basis: es enthält weder [procedure] noch [requirements.<id>].");
    } else if changes == 0 && !d.has_errors() {
        // Redundant, not wrong: the base may have been changed to what the
        // tenant asked for. It must not block that change of the base.
        d.warning(
            "overlay",
            Mark::Key,
            "Dieses Overlay ändert nichts mehr an der Basis (jeder Eintrag hat den Wert der Basis); es kann entfallen (schema add --without-overlay).",
        );
    }
}

/// Parses a base schema, optionally applies a tenant overlay, and validates
/// the result against the catalogue. Returns the schema with its warnings,
/// or every error and warning found.
pub fn load_procedure(
    base: &SourceFile,
    overlay: Option<&SourceFile>,
    catalogue: &Catalogue,
) -> Result<(ProcedureSchema, Vec<SchemaError>), Vec<SchemaError>> {
    let (base_table, base_map, syntax) = SourceMap::parse(&base.origin, &base.text);
    let Some(mut table) = base_table else { return Err(syntax) };
    let ov_parsed = overlay.map(|o| SourceMap::parse(&o.origin, &o.text));
    let mut maps = vec![&base_map];
    let mut overlay_info = None;
    if let Some((ov_table, ov_map, syntax)) = &ov_parsed {
        let Some(ov) = ov_table else { return Err(syntax.clone()) };
        let mut d = Diagnostics::new(vec![ov_map]);
        let meta = overlay_meta(ov, &mut d);
        if let Some(m) = &meta {
            let base_id = table.get("procedure").and_then(|p| p.get("id")).and_then(|v| v.as_str()).unwrap_or("");
            if m.procedure != base_id {
                d.error("overlay.procedure", Mark::Value, format!("Das Overlay gilt für das Verfahren „{}“, die Basis ist „{base_id}“.", m.procedure));
            }
            if !valid_id(&m.tenant) {
                d.error("overlay.tenant", Mark::Value, "Der Mandant (tenant) darf nur Kleinbuchstaben, Ziffern, _ und - enthalten.");
            }
        }
        overlay_changes(ov, &table, &mut d);
        if d.has_errors() {
            return Err(d.found);
        }
        let mut ov = ov.clone();
        ov.remove("overlay");
        merge(&mut table, &ov);
        maps.push(ov_map);
        overlay_info = meta.map(|m| (m, d.found));
    }
    let mut d = Diagnostics::new(maps);
    let schema = procedure_schema(&table, catalogue, &mut d);
    let mut warnings = d.found;
    match schema {
        Some(mut s) if !warnings.iter().any(SchemaError::is_error) => {
            if let Some((m, ov_warnings)) = overlay_info {
                s.version = format!("{}+{}.{}", s.procedure.version, m.tenant, m.version);
                s.tenant = Some(m.tenant);
                warnings.splice(0..0, ov_warnings);
            }
            Ok((s, warnings))
        }
        _ => {
            if let Some((_, ov_warnings)) = overlay_info {
                warnings.splice(0..0, ov_warnings);
            }
            Err(warnings)
        }
    }
}

/// All procedure schemas and tenant variants, with the shared catalogue.
#[derive(Debug, Clone)]
pub struct SchemaSet {
    pub catalogue: Catalogue,
    /// Base schemas by procedure id.
    pub procedures: BTreeMap<String, ProcedureSchema>,
    /// Tenant variants by (procedure id, tenant).
    pub overlays: BTreeMap<(String, String), ProcedureSchema>,
    /// Warnings found while validating (the set is usable).
    pub warnings: Vec<SchemaError>,
}

/// What kind of schema file a text is, judged by its top-level table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    Catalogue,
    Procedure,
    Overlay,
}

/// Tells a catalogue, a procedure and an overlay apart by their tables
/// (`[catalogue]`, `[procedure]`, `[overlay]`); `None` if it is none of them
/// or does not parse.
pub fn file_kind(text: &str) -> Option<FileKind> {
    let t: toml::Table = text.parse().ok()?;
    if t.contains_key("overlay") {
        Some(FileKind::Overlay)
    } else if t.contains_key("catalogue") {
        Some(FileKind::Catalogue)
    } else if t.contains_key("procedure") {
        Some(FileKind::Procedure)
    } else {
        None
    }
}

/// The `[overlay]` procedure and tenant of an overlay text, if readable.
pub fn overlay_target(text: &str) -> Option<(String, String)> {
    let t: toml::Table = text.parse().ok()?;
    let o = t.get("overlay")?;
    Some((o.get("procedure")?.as_str()?.to_string(), o.get("tenant")?.as_str()?.to_string()))
}

/// The `[procedure] id` of a procedure text, if readable.
pub fn procedure_id(text: &str) -> Option<String> {
    let t: toml::Table = text.parse().ok()?;
    Some(t.get("procedure")?.get("id")?.as_str()?.to_string())
}

impl SchemaSet {
    /// Builds the set from file contents: the catalogue, base procedures,
    /// and overlays. Every file is validated; all errors are returned, not
    /// just the first (warnings with them, so the admin sees everything).
    pub fn build(catalogue: &SourceFile, procedures: &[SourceFile], overlays: &[SourceFile]) -> Result<SchemaSet, Vec<SchemaError>> {
        let (catalogue, mut found) = Catalogue::load(&catalogue.text, &catalogue.origin)?;
        let mut bases = BTreeMap::new();
        let mut texts: BTreeMap<String, &SourceFile> = BTreeMap::new();
        for f in procedures {
            match load_procedure(f, None, &catalogue) {
                Ok((s, w)) => {
                    found.extend(w);
                    if let Some(first) = texts.get(&s.procedure.id) {
                        found.push(SchemaError::invalid(
                            &f.origin,
                            &format!("Das Verfahren „{}“ ist schon in {} definiert.", s.procedure.id, first.origin),
                        ));
                    }
                    texts.insert(s.procedure.id.clone(), f);
                    bases.insert(s.procedure.id.clone(), s);
                }
                Err(e) => {
                    if let Some(id) = procedure_id(&f.text) {
                        texts.entry(id).or_insert(f);
                    }
                    found.extend(e);
                }
            }
        }
        let mut variants = BTreeMap::new();
        for o in overlays {
            let target = overlay_target(&o.text);
            let Some(base) = target.as_ref().and_then(|(p, _)| texts.get(p)) else {
                let (line, column) = (1, 1);
                found.push(SchemaError {
                    line,
                    column,
                    ..SchemaError::invalid(
                        &o.origin,
                        &match &target {
                            Some((p, _)) => format!("Das Overlay gilt für das Verfahren „{p}“, das es nicht gibt."),
                            None => "Das Overlay nennt in [overlay] kein Verfahren (procedure) und keinen Mandanten (tenant).".to_string(),
                        },
                    )
                });
                continue;
            };
            // The overlay is checked merged with its base, so the base's own
            // problems come back here; each is reported once.
            let add = |found: &mut Vec<SchemaError>, new: Vec<SchemaError>| {
                for e in new {
                    if !found.contains(&e) {
                        found.push(e);
                    }
                }
            };
            match load_procedure(base, Some(o), &catalogue) {
                Ok((s, w)) => {
                    add(&mut found, w);
                    let key = (s.procedure.id.clone(), s.tenant.clone().unwrap_or_default());
                    if variants.contains_key(&key) {
                        found.push(SchemaError::invalid(&o.origin, &format!("Für Mandant „{}“ und Verfahren „{}“ gibt es schon ein Overlay.", key.1, key.0)));
                    }
                    variants.insert(key, s);
                }
                Err(e) => add(&mut found, e),
            }
        }
        if found.iter().any(SchemaError::is_error) {
            Err(found)
        } else {
            Ok(SchemaSet { catalogue, procedures: bases, overlays: variants, warnings: found })
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

#[cfg(test)]
#[path = "schema_test.rs"]
mod tests;

//! The intake contract (DESIGN §2): a bundle manifest with applicant, facts,
//! children and documents, parsed strictly enough that every missing or
//! malformed required field is named in the error.
//!
//! Parsing is pure: it takes bytes and returns a `Manifest` or a `ManifestError`.
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// Upper bounds that keep one hostile manifest from tying up a worker
/// (every document costs a sandboxed process).
pub const MAX_DOCUMENTS: usize = 200;
pub const MAX_CHILDREN: usize = 20;
pub const MAX_PERSONS: usize = 50;

/// The address block of the applicant, used only for the letter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Address {
    pub street: String,
    pub postal_code: String,
    pub city: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Applicant {
    pub given_name: String,
    pub family_name: String,
    pub address: Option<Address>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Child {
    pub given_name: String,
    pub family_name: String,
    pub birth_date: NaiveDate,
}

/// A person of a named list in the manifest (`persons.<list>[i]`), e.g.
/// a household member for Wohngeld. Which lists exist, and which facts
/// their persons carry, the procedure schema says.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Person {
    pub given_name: String,
    pub family_name: String,
    pub birth_date: Option<NaiveDate>,
    /// Facts about this person (booleans, numbers, strings) by name.
    pub facts: BTreeMap<String, Value>,
}

/// A person a per-person requirement is checked for: a child or a person
/// of another list, seen the same way.
#[derive(Debug, Clone, Copy)]
pub struct Member<'a> {
    pub given_name: &'a str,
    pub family_name: &'a str,
    pub birth_date: Option<NaiveDate>,
    pub facts: Option<&'a BTreeMap<String, Value>>,
}

/// How a document's bytes travel: by reference to a file or inline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DocumentSource {
    /// Relative to the bundle directory (or the intake root on AMQP).
    Path(String),
    /// Base64 bytes inside the message.
    Inline(String),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DocumentRef {
    pub document_id: String,
    pub filename: String,
    pub media_type: String,
    /// Lower-case hex SHA-256 the intake computed; `None` if it sent none.
    pub sha256: Option<String>,
    /// The slot the applicant uploaded into: a hint, never trusted.
    pub declared_type: Option<String>,
    pub source: DocumentSource,
}

/// A validated bundle manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub bundle_id: String,
    pub case_id: Option<String>,
    pub procedure: String,
    pub tenant: Option<String>,
    pub received_at: DateTime<Utc>,
    pub applicant: Applicant,
    /// Facts the applicant declared, by name (booleans, numbers, strings).
    pub facts: BTreeMap<String, Value>,
    pub children: Vec<Child>,
    /// Further person lists by name (`persons` in the manifest); children
    /// stay in `children` (DESIGN §2).
    pub persons: BTreeMap<String, Vec<Person>>,
    pub documents: Vec<DocumentRef>,
}

/// Why a manifest is unusable. Each variant names the field, so intake
/// systems can fix what they send; none carries personal data.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ManifestError {
    #[error("manifest is not valid JSON: {0}")]
    NotJson(String),
    #[error("manifest must be a JSON object")]
    NotAnObject,
    #[error("required field `{0}` is missing")]
    Missing(String),
    #[error("field `{field}` is malformed: {why}")]
    Malformed { field: String, why: String },
}

fn malformed(field: impl Into<String>, why: impl Into<String>) -> ManifestError {
    ManifestError::Malformed { field: field.into(), why: why.into() }
}

/// Identifiers end up in file names, database keys and AMQP headers; keep
/// them to a safe alphabet so none of those can be abused.
fn check_id(field: &str, value: &str) -> Result<(), ManifestError> {
    let ok = !value.is_empty()
        && value.len() <= 128
        && value.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && !value.starts_with('.');
    if ok {
        Ok(())
    } else {
        Err(malformed(field, "must be 1–128 characters of A–Z, a–z, 0–9, '-', '_', '.'"))
    }
}

fn get<'a>(obj: &'a serde_json::Map<String, Value>, prefix: &str, key: &str) -> Result<&'a Value, ManifestError> {
    match obj.get(key) {
        None | Some(Value::Null) => Err(ManifestError::Missing(format!("{prefix}{key}"))),
        Some(v) => Ok(v),
    }
}

fn get_str(obj: &serde_json::Map<String, Value>, prefix: &str, key: &str) -> Result<String, ManifestError> {
    match get(obj, prefix, key)? {
        Value::String(s) if !s.trim().is_empty() => Ok(s.clone()),
        Value::String(_) => Err(malformed(format!("{prefix}{key}"), "must not be empty")),
        _ => Err(malformed(format!("{prefix}{key}"), "must be a string")),
    }
}

fn opt_str(obj: &serde_json::Map<String, Value>, prefix: &str, key: &str) -> Result<Option<String>, ManifestError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(malformed(format!("{prefix}{key}"), "must be a string")),
    }
}

/// The manifest's bytes without a leading UTF-8 byte order mark: editors and
/// intake systems on Windows write one, and JSON parsers refuse it.
pub fn without_bom(bytes: &[u8]) -> &[u8] {
    bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes)
}

fn as_object<'a>(v: &'a Value, field: &str) -> Result<&'a serde_json::Map<String, Value>, ManifestError> {
    v.as_object().ok_or_else(|| malformed(field, "must be an object"))
}

impl Manifest {
    /// Parses and validates a manifest. Unknown fields are ignored (DESIGN §2).
    pub fn parse(bytes: &[u8]) -> Result<Manifest, ManifestError> {
        let value: Value = serde_json::from_slice(without_bom(bytes)).map_err(|e| ManifestError::NotJson(e.to_string()))?;
        Self::from_value(&value)
    }

    pub fn from_value(value: &Value) -> Result<Manifest, ManifestError> {
        let obj = value.as_object().ok_or(ManifestError::NotAnObject)?;
        let bundle_id = get_str(obj, "", "bundle_id")?;
        check_id("bundle_id", &bundle_id)?;
        let case_id = opt_str(obj, "", "case_id")?;
        if let Some(c) = &case_id {
            check_id("case_id", c)?;
        }
        let procedure = get_str(obj, "", "procedure")?;
        check_id("procedure", &procedure)?;
        let tenant = opt_str(obj, "", "tenant")?;
        if let Some(t) = &tenant {
            check_id("tenant", t)?;
        }
        let received_raw = get_str(obj, "", "received_at")?;
        let received_at = DateTime::parse_from_rfc3339(&received_raw)
            .map_err(|_| malformed("received_at", "must be an RFC 3339 timestamp, e.g. 2026-11-20T09:14:00Z"))?
            .with_timezone(&Utc);

        let applicant_obj = as_object(get(obj, "", "applicant")?, "applicant")?;
        let address = match applicant_obj.get("address") {
            None | Some(Value::Null) => None,
            Some(v) => {
                let a = as_object(v, "applicant.address")?;
                Some(Address {
                    street: get_str(a, "applicant.address.", "street")?,
                    postal_code: get_str(a, "applicant.address.", "postal_code")?,
                    city: get_str(a, "applicant.address.", "city")?,
                })
            }
        };
        let applicant = Applicant {
            given_name: get_str(applicant_obj, "applicant.", "given_name")?,
            family_name: get_str(applicant_obj, "applicant.", "family_name")?,
            address,
        };

        let facts = match obj.get("facts") {
            None | Some(Value::Null) => BTreeMap::new(),
            Some(v) => as_object(v, "facts")?.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        };

        let children = match obj.get("children") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    let prefix = format!("children[{i}].");
                    let c = as_object(v, &format!("children[{i}]"))?;
                    let raw = get_str(c, &prefix, "birth_date")?;
                    let birth_date = NaiveDate::parse_from_str(&raw, "%Y-%m-%d")
                        .map_err(|_| malformed(format!("{prefix}birth_date"), "must be a date YYYY-MM-DD"))?;
                    Ok(Child {
                        given_name: get_str(c, &prefix, "given_name")?,
                        family_name: get_str(c, &prefix, "family_name")?,
                        birth_date,
                    })
                })
                .collect::<Result<_, _>>()?,
            Some(_) => return Err(malformed("children", "must be an array")),
        };

        let persons = match obj.get("persons") {
            None | Some(Value::Null) => BTreeMap::new(),
            Some(v) => {
                let mut out = BTreeMap::new();
                let mut count = 0usize;
                for (list, items) in as_object(v, "persons")? {
                    let field = format!("persons.{list}");
                    check_id(&field, list)?;
                    let Value::Array(items) = items else { return Err(malformed(field, "must be an array")) };
                    count += items.len();
                    let people = items.iter().enumerate().map(|(i, p)| parse_person(&format!("{field}[{i}]"), p)).collect::<Result<Vec<_>, _>>()?;
                    out.insert(list.clone(), people);
                }
                if count > MAX_PERSONS {
                    return Err(malformed("persons", format!("at most {MAX_PERSONS} persons per bundle")));
                }
                out
            }
        };

        let documents = match get(obj, "", "documents")? {
            Value::Array(items) => items
                .iter()
                .enumerate()
                .map(|(i, v)| parse_document(i, v))
                .collect::<Result<Vec<_>, _>>()?,
            _ => return Err(malformed("documents", "must be an array")),
        };
        if documents.len() > MAX_DOCUMENTS {
            return Err(malformed("documents", format!("at most {MAX_DOCUMENTS} documents per bundle")));
        }
        if children.len() > MAX_CHILDREN {
            return Err(malformed("children", format!("at most {MAX_CHILDREN} children per bundle")));
        }
        let mut seen = std::collections::BTreeSet::new();
        for (i, d) in documents.iter().enumerate() {
            if !seen.insert(d.document_id.as_str()) {
                return Err(malformed(format!("documents[{i}].document_id"), "is used twice"));
            }
        }

        Ok(Manifest { bundle_id, case_id, procedure, tenant, received_at, applicant, facts, children, persons, documents })
    }

    /// Parses a manifest as the store keeps it: inline document bytes are
    /// stored as documents, not in the manifest, so such a document has
    /// neither `path` nor `content_base64` any more. Re-checks and replays
    /// use the stored extraction results and need only its metadata; it is
    /// given its `document_id` as a (never read) path.
    pub fn from_stored(value: &Value) -> Result<Manifest, ManifestError> {
        let mut v = value.clone();
        if let Some(docs) = v.get_mut("documents").and_then(Value::as_array_mut) {
            for d in docs.iter_mut().filter_map(Value::as_object_mut) {
                let has_source = ["path", "content_base64"].iter().any(|k| d.get(*k).is_some_and(|x| !x.is_null()));
                if !has_source && let Some(id) = d.get("document_id").cloned() {
                    d.insert("path".into(), id);
                }
            }
        }
        Self::from_value(&v)
    }

    /// The date the bundle was received, in which ages and freshness are computed.
    pub fn received_on(&self) -> NaiveDate {
        self.received_at.date_naive()
    }

    /// The persons of a list: `children`, or a list under `persons`
    /// (empty if the manifest has none).
    pub fn members(&self, list: &str) -> Vec<Member<'_>> {
        if list == "children" {
            return self
                .children
                .iter()
                .map(|c| Member { given_name: &c.given_name, family_name: &c.family_name, birth_date: Some(c.birth_date), facts: None })
                .collect();
        }
        self.persons
            .get(list)
            .map(|v| {
                v.iter()
                    .map(|p| Member { given_name: &p.given_name, family_name: &p.family_name, birth_date: p.birth_date, facts: Some(&p.facts) })
                    .collect()
            })
            .unwrap_or_default()
    }
}

fn parse_person(field: &str, v: &Value) -> Result<Person, ManifestError> {
    let prefix = format!("{field}.");
    let p = as_object(v, field)?;
    let birth_date = match opt_str(p, &prefix, "birth_date")? {
        None => None,
        Some(raw) => Some(
            NaiveDate::parse_from_str(&raw, "%Y-%m-%d").map_err(|_| malformed(format!("{prefix}birth_date"), "must be a date YYYY-MM-DD"))?,
        ),
    };
    let facts = match p.get("facts") {
        None | Some(Value::Null) => BTreeMap::new(),
        Some(f) => as_object(f, &format!("{prefix}facts"))?.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
    };
    Ok(Person {
        given_name: get_str(p, &prefix, "given_name")?,
        family_name: get_str(p, &prefix, "family_name")?,
        birth_date,
        facts,
    })
}

fn parse_document(i: usize, v: &Value) -> Result<DocumentRef, ManifestError> {
    let prefix = format!("documents[{i}].");
    let d = as_object(v, &format!("documents[{i}]"))?;
    let document_id = get_str(d, &prefix, "document_id")?;
    check_id(&format!("{prefix}document_id"), &document_id)?;
    let filename = get_str(d, &prefix, "filename")?;
    let media_type = get_str(d, &prefix, "media_type")?.to_ascii_lowercase();
    let sha256 = opt_str(d, &prefix, "sha256")?.map(|s| s.to_ascii_lowercase());
    if let Some(h) = &sha256 {
        if h.len() != 64 || !h.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(malformed(format!("{prefix}sha256"), "must be 64 hexadecimal characters"));
        }
    }
    let declared_type = opt_str(d, &prefix, "declared_type")?;
    let path = opt_str(d, &prefix, "path")?;
    let inline = opt_str(d, &prefix, "content_base64")?;
    let source = match (path, inline) {
        (Some(p), None) => {
            let p_ok = !p.starts_with('/') && !p.split(['/', '\\']).any(|part| part == "..") && !p.contains('\0');
            if !p_ok {
                return Err(malformed(format!("{prefix}path"), "must be a relative path inside the bundle"));
            }
            DocumentSource::Path(p)
        }
        (None, Some(b)) => DocumentSource::Inline(b),
        (Some(_), Some(_)) => {
            return Err(malformed(format!("{prefix}path"), "give either `path` or `content_base64`, not both"));
        }
        (None, None) => return Err(ManifestError::Missing(format!("{prefix}path"))),
    };
    Ok(DocumentRef { document_id, filename, media_type, sha256, declared_type, source })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn minimal() -> Value {
        serde_json::json!({
            "bundle_id": "b-1", "procedure": "uvg", "received_at": "2026-11-20T09:14:00Z",
            "applicant": {"given_name": "A", "family_name": "B"},
            "children": [{"given_name": "C", "family_name": "B", "birth_date": "2012-05-02"}],
            "documents": [{"document_id": "d1", "filename": "x.pdf", "media_type": "application/pdf", "path": "x.pdf"}],
            "unknown_field": 1
        })
    }

    #[test]
    fn a_minimal_manifest_parses_and_ignores_unknown_fields() {
        let m = Manifest::from_value(&minimal()).unwrap();
        assert_eq!(m.bundle_id, "b-1");
        assert_eq!(m.children.len(), 1);
    }

    #[test]
    fn a_manifest_with_a_utf8_byte_order_mark_parses() {
        let mut bytes = b"\xEF\xBB\xBF".to_vec();
        bytes.extend(serde_json::to_vec(&minimal()).unwrap());
        assert_eq!(Manifest::parse(&bytes).unwrap().bundle_id, "b-1");
        // Only a leading one: a BOM elsewhere is still not JSON.
        let mut inner = serde_json::to_vec(&minimal()).unwrap();
        inner.splice(1..1, b"\xEF\xBB\xBF".iter().copied());
        assert!(matches!(Manifest::parse(&inner), Err(ManifestError::NotJson(_))));
    }

    #[test]
    fn each_broken_field_is_named_in_the_error() {
        let cases: Vec<(&str, Value, &str)> = vec![
            ("bundle_id", Value::Null, "bundle_id"),
            ("received_at", Value::String("yesterday".into()), "received_at"),
            ("documents", Value::String("x".into()), "documents"),
            ("children", serde_json::json!([{"given_name": "C", "family_name": "B", "birth_date": "02.05.2012"}]), "children[0].birth_date"),
            ("bundle_id", Value::String("../etc".into()), "bundle_id"),
        ];
        for (key, value, expected_field) in cases {
            let mut v = minimal();
            v[key] = value;
            let err = Manifest::from_value(&v).unwrap_err().to_string();
            assert!(err.contains(expected_field), "{key}: {err}");
        }
    }

    #[test]
    fn a_stored_manifest_of_an_inline_bundle_parses_for_re_checks() {
        let mut v = minimal();
        v["documents"][0].as_object_mut().unwrap().remove("path");
        assert!(Manifest::from_value(&v).is_err(), "a bundle as sent needs its bytes");
        let m = Manifest::from_stored(&v).unwrap();
        assert_eq!(m.documents[0].document_id, "d1");
    }

    #[test]
    fn a_path_escaping_the_bundle_is_refused() {
        let mut v = minimal();
        v["documents"][0]["path"] = Value::String("../../secret".into());
        assert!(Manifest::from_value(&v).unwrap_err().to_string().contains("documents[0].path"));
    }
}

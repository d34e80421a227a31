//! Schema diagnostics with file, line and column: a `SourceMap` remembers
//! where every key and value of a TOML file stands, so that rule errors
//! found on the parsed data can point into the text an admin wrote.
//!
//! Messages are German (admins read them); paths stay in TOML key notation.
use serde::Serialize;
use std::collections::BTreeMap;
use std::ops::Range;

/// How bad a finding about a schema is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// The schema cannot be used; nothing is activated.
    Error,
    /// Allowed, but probably not what the author meant.
    Warning,
}

impl Severity {
    pub fn label_de(self) -> &'static str {
        match self {
            Severity::Error => "Fehler",
            Severity::Warning => "Warnung",
        }
    }
}

/// One problem in a schema file, located in the source text.
/// `line` and `column` are 1-based (columns count characters, not bytes);
/// 0 means the position is unknown (e.g. a required key that is absent is
/// reported at its table).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{origin}:{line}:{column}: {}: {message}", severity.label_de())]
pub struct SchemaError {
    pub origin: String,
    pub line: usize,
    pub column: usize,
    /// The key path the message is about (`requirements.einkommen.accepts[0]`).
    pub path: String,
    pub severity: Severity,
    pub message: String,
}

impl SchemaError {
    /// An error in a file whose position is not known.
    pub fn invalid(origin: &str, message: &str) -> SchemaError {
        SchemaError {
            origin: origin.to_string(),
            line: 0,
            column: 0,
            path: String::new(),
            severity: Severity::Error,
            message: message.to_string(),
        }
    }

    /// A TOML syntax or shape error with its line and column, in German.
    pub fn parse(origin: &str, text: &str, e: &toml::de::Error) -> SchemaError {
        let (line, column) = e.span().map(|s| line_column(text, s.start)).unwrap_or((0, 0));
        let source_line = text.lines().nth(line.saturating_sub(1)).unwrap_or("").trim();
        let key = e.span().and_then(|s| text.get(s)).unwrap_or("").trim();
        let message = if e.message().contains("duplicate key") && source_line.starts_with('[') {
            let header = source_line.trim_start_matches('[').split(']').next().unwrap_or(key);
            format!(
                "Die Tabelle [{header}] steht zweimal in der Datei: jede Anforderung braucht eine eigene id (zum Ändern einer Anforderung der Basis ein Overlay verwenden). (TOML: {})",
                e.message().trim()
            )
        } else if e.message().contains("duplicate key") {
            format!("Der Schlüssel „{key}“ steht in dieser Tabelle zweimal. (TOML: {})", e.message().trim())
        } else {
            syntax_message_de(e.message())
        };
        SchemaError {
            origin: origin.to_string(),
            line,
            column,
            path: String::new(),
            severity: Severity::Error,
            message,
        }
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// 1-based line and character column of a byte offset.
pub fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
    (line, before[line_start..].chars().count() + 1)
}

/// The TOML parser's messages in words an admin understands; the original
/// stays in brackets for anyone searching the web for it.
fn syntax_message_de(message: &str) -> String {
    let m = message.trim();
    let lower = m.to_lowercase();
    let german = if lower.contains("duplicate key") {
        "Dieser Schlüssel steht in derselben Tabelle zweimal (z. B. zwei [requirements.<id>] mit derselben id). Jede Anforderung braucht eine eigene id; zum Ändern einer Anforderung der Basis ein Overlay verwenden."
    } else if lower.contains("duplicate table") || lower.contains("redefin") {
        "Diese Tabelle ist zweimal definiert (z. B. zweimal [requirements.<id>]). Jede Anforderung braucht eine eigene id."
    } else if lower.contains("unclosed") || lower.contains("unterminated") || lower.contains("missing closing") {
        "Hier fehlt ein schließendes Zeichen (Anführungszeichen, ] oder })."
    } else if lower.contains("expected `=`") || lower.contains("expected '='") {
        "Hier wird ein Gleichheitszeichen erwartet: schlüssel = wert."
    } else if lower.contains("invalid") && lower.contains("string") {
        "Ungültige Zeichenkette: Texte stehen in doppelten Anführungszeichen."
    } else {
        "TOML-Syntaxfehler."
    };
    format!("{german} (TOML: {m})")
}

/// Where each key and value of one TOML file stands.
#[derive(Debug, Clone)]
pub struct SourceMap {
    pub origin: String,
    text: String,
    /// Path → (span of the key, span of the value).
    spans: BTreeMap<String, (Option<Range<usize>>, Range<usize>)>,
}

/// Which part of an entry a message points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    /// The key (unknown keys, duplicates).
    Key,
    /// The value (wrong type, unknown document type).
    Value,
}

impl SourceMap {
    /// Parses `text`: the data as a `toml::Table` (if it parses) and the
    /// positions of every key; all syntax errors, not only the first.
    pub fn parse(origin: &str, text: &str) -> (Option<toml::Table>, SourceMap, Vec<SchemaError>) {
        let mut map = SourceMap { origin: origin.to_string(), text: text.to_string(), spans: BTreeMap::new() };
        let (doc, errors) = toml::de::DeTable::parse_recoverable(text);
        let mut out: Vec<SchemaError> = errors.iter().map(|e| SchemaError::parse(origin, text, e)).collect();
        walk_table(doc.get_ref(), "", &mut map.spans);
        let table = if out.is_empty() {
            match text.parse::<toml::Table>() {
                Ok(t) => Some(t),
                Err(e) => {
                    out.push(SchemaError::parse(origin, text, &e));
                    None
                }
            }
        } else {
            None
        };
        (table, map, out)
    }

    /// Whether the file itself defines `path` (used to decide whether an
    /// error belongs to an overlay or to its base).
    pub fn defines(&self, path: &str) -> bool {
        self.spans.contains_key(path)
    }

    /// The position of `path`, or of its nearest enclosing entry the file has.
    pub fn locate(&self, path: &str, mark: Mark) -> Option<(usize, usize)> {
        let mut p = path.to_string();
        loop {
            if let Some((key, value)) = self.spans.get(&p) {
                let span = match mark {
                    Mark::Key => key.clone().unwrap_or_else(|| value.clone()),
                    Mark::Value => value.clone(),
                };
                return Some(line_column(&self.text, span.start));
            }
            match parent(&p) {
                Some(up) => p = up,
                None => return None,
            }
        }
    }
}

/// `a.b[2]` → `a.b`, `a.b` → `a`, `a` → None.
fn parent(path: &str) -> Option<String> {
    if path.ends_with(']') {
        return path.rfind('[').map(|i| path[..i].to_string());
    }
    path.rfind('.').map(|i| path[..i].to_string())
}

fn walk_table(
    table: &toml::de::DeTable<'_>,
    prefix: &str,
    out: &mut BTreeMap<String, (Option<Range<usize>>, Range<usize>)>,
) {
    for (k, v) in table.iter() {
        let path = if prefix.is_empty() { k.get_ref().to_string() } else { format!("{prefix}.{}", k.get_ref()) };
        // Tables opened by a header ([a.b]) get the header's position;
        // keep the first position seen for a path.
        out.entry(path.clone()).or_insert((Some(k.span()), v.span()));
        walk_value(v.get_ref(), &path, out);
    }
}

fn walk_value(
    value: &toml::de::DeValue<'_>,
    path: &str,
    out: &mut BTreeMap<String, (Option<Range<usize>>, Range<usize>)>,
) {
    match value {
        toml::de::DeValue::Table(t) => walk_table(t, path, out),
        toml::de::DeValue::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let p = format!("{path}[{i}]");
                out.entry(p.clone()).or_insert((None, item.span()));
                walk_value(item.get_ref(), &p, out);
            }
        }
        _ => {}
    }
}

/// Collects diagnostics for a set of source files; a path is located in the
/// last file that defines it (an overlay before its base).
pub struct Diagnostics<'a> {
    maps: Vec<&'a SourceMap>,
    pub found: Vec<SchemaError>,
}

impl<'a> Diagnostics<'a> {
    /// `maps` in merge order: base first, overlay last.
    pub fn new(maps: Vec<&'a SourceMap>) -> Self {
        Diagnostics { maps, found: Vec::new() }
    }

    fn push(&mut self, severity: Severity, path: &str, mark: Mark, message: String) {
        let map = self
            .maps
            .iter()
            .rev()
            .find(|m| m.defines(path))
            .or_else(|| self.maps.iter().rev().find(|m| m.locate(path, mark).is_some()))
            .or(self.maps.last());
        let (origin, (line, column)) = match map {
            Some(m) => (m.origin.clone(), m.locate(path, mark).unwrap_or((0, 0))),
            None => (String::new(), (0, 0)),
        };
        let found = SchemaError { origin, line, column, path: path.to_string(), severity, message };
        if !self.found.contains(&found) {
            self.found.push(found);
        }
    }

    pub fn error(&mut self, path: &str, mark: Mark, message: impl Into<String>) {
        self.push(Severity::Error, path, mark, message.into());
    }

    pub fn warning(&mut self, path: &str, mark: Mark, message: impl Into<String>) {
        self.push(Severity::Warning, path, mark, message.into());
    }

    pub fn has_errors(&self) -> bool {
        self.found.iter().any(SchemaError::is_error)
    }
}

/// The closest candidate by edit distance, if it is close enough to be a
/// plausible typo ("Meinten Sie …?").
pub fn suggest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let w = word.to_lowercase();
    candidates
        .into_iter()
        .map(|c| (edit_distance(&w, &c.to_lowercase()), c))
        .filter(|(d, c)| *d <= 2.max(c.chars().count() / 4))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur.push((prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

/// "Meinten Sie „x“?" or nothing.
pub fn did_you_mean<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    suggest(word, candidates).map(|s| format!(" Meinten Sie „{s}“?")).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_count_characters_not_bytes() {
        let text = "a = \"ä\"\nb = 1\n[c]\nd = \"ß\"";
        let (_, map, errors) = SourceMap::parse("t.toml", text);
        assert!(errors.is_empty());
        assert_eq!(map.locate("b", Mark::Key), Some((2, 1)));
        assert_eq!(map.locate("c.d", Mark::Value), Some((4, 5)));
        assert_eq!(map.locate("c.d.missing", Mark::Key), Some((4, 1)));
    }

    #[test]
    fn every_syntax_error_is_reported_with_its_line() {
        let text = "a = 1\na = 2\n[t]\nx = \n";
        let (table, _, errors) = SourceMap::parse("t.toml", text);
        assert!(table.is_none());
        assert!(errors.len() >= 2, "{errors:#?}");
        assert_eq!(errors[0].line, 2);
        assert!(errors[0].message.contains("zweimal"), "{}", errors[0].message);
        assert!(errors.iter().any(|e| e.line == 4));
    }

    #[test]
    fn a_typo_gets_a_suggestion() {
        assert_eq!(suggest("einkomensnachweis", ["einkommensnachweis", "ausweis"]), Some("einkommensnachweis"));
        assert_eq!(suggest("zeugnis", ["einkommensnachweis", "ausweis"]), None);
    }
}

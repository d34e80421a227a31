//! The audit log's hash chain, independent of the database dialect: the
//! canonical form of an entry, its hash and the verification walk.
//!
//! `hash = sha256(prev_hash || canonical entry)`, hex-encoded. The canonical
//! entry is compact JSON with sorted keys, so it survives a round trip through
//! PostgreSQL's `jsonb` (which reorders keys) unchanged.
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::AuditCheck;

/// The `prev_hash` of the first entry.
pub(crate) const GENESIS_HASH: &str =
    "0000000000000000000000000000000000000000000000000000000000000000";

/// Who writes the entries that the pipeline itself produces.
pub(crate) const WORKER_ACTOR: &str = "worker";

/// One audit entry, as hashed.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct AuditEntry {
    pub id: i64,
    /// Truncated to microseconds before storing, because PostgreSQL keeps no more.
    pub at: DateTime<Utc>,
    pub actor: String,
    pub action: String,
    pub case_id: Option<String>,
    pub bundle_id: Option<String>,
    pub schema_version: Option<String>,
    pub detail: Value,
}

impl AuditEntry {
    /// The entry as the bytes that are hashed.
    pub fn canonical(&self) -> String {
        let value = serde_json::json!({
            "id": self.id,
            "at": self.at.to_rfc3339_opts(SecondsFormat::Micros, true),
            "actor": self.actor,
            "action": self.action,
            "case_id": self.case_id,
            "bundle_id": self.bundle_id,
            "schema_version": self.schema_version,
            "detail": self.detail,
        });
        let mut out = String::new();
        write_canonical(&value, &mut out);
        out
    }

    /// This entry's hash when it follows an entry hashed `prev_hash`.
    pub fn chain_hash(&self, prev_hash: &str) -> String {
        let mut hasher = Sha256::new();
        hasher.update(prev_hash.as_bytes());
        hasher.update(self.canonical().as_bytes());
        hex::encode(hasher.finalize())
    }
}

/// An entry as read back, with the hashes stored beside it.
pub(crate) struct StoredEntry {
    pub entry: AuditEntry,
    pub prev_hash: String,
    pub hash: String,
}

/// Walks the stored entries in id order and remembers the first that breaks.
pub(crate) struct ChainVerifier {
    next_id: i64,
    prev_hash: String,
    entries: u64,
    first_broken: Option<i64>,
}

impl ChainVerifier {
    pub fn new() -> Self {
        ChainVerifier {
            next_id: 1,
            prev_hash: GENESIS_HASH.to_owned(),
            entries: 0,
            first_broken: None,
        }
    }

    /// The id after the last entry seen, where the next page starts.
    pub fn cursor(&self) -> i64 {
        self.next_id - 1
    }

    pub fn push(&mut self, stored: &StoredEntry) {
        self.entries += 1;
        if self.first_broken.is_none() {
            if stored.entry.id != self.next_id {
                // Ids are gapless, so a gap is a deleted entry.
                self.first_broken = Some(self.next_id);
            } else if stored.prev_hash != self.prev_hash
                || stored.entry.chain_hash(&stored.prev_hash) != stored.hash
            {
                self.first_broken = Some(stored.entry.id);
            }
        }
        self.next_id = stored.entry.id + 1;
        self.prev_hash.clone_from(&stored.hash);
    }

    /// Compares the walk's end with the chain head, which catches a
    /// truncated tail that the links alone cannot show.
    pub fn finish(mut self, head_last_id: i64, head_last_hash: &str) -> AuditCheck {
        if self.first_broken.is_none() {
            if self.cursor() < head_last_id {
                self.first_broken = Some(self.next_id);
            } else if self.prev_hash != head_last_hash {
                self.first_broken = Some(head_last_id);
            }
        }
        AuditCheck {
            entries: self.entries,
            first_broken: self.first_broken,
        }
    }
}

/// Compact JSON with object keys sorted, independent of serde_json's
/// `preserve_order` feature (which another dependency might switch on).
fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                write_canonical(&map[key], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: i64, detail: Value) -> AuditEntry {
        AuditEntry {
            id,
            at: DateTime::parse_from_rfc3339("2026-11-20T09:14:00.123456Z")
                .unwrap()
                .with_timezone(&Utc),
            actor: WORKER_ACTOR.into(),
            action: "bundle_checked".into(),
            case_id: Some("case-1".into()),
            bundle_id: Some("b-1".into()),
            schema_version: Some("uvg@1".into()),
            detail,
        }
    }

    #[test]
    fn canonical_form_ignores_key_order() {
        let a = entry(1, serde_json::json!({"b": 1, "a": {"y": [1, 2], "x": "s"}}));
        let b = entry(1, serde_json::json!({"a": {"x": "s", "y": [1, 2]}, "b": 1}));
        assert_eq!(a.canonical(), b.canonical());
        assert!(
            a.canonical()
                .contains(r#""at":"2026-11-20T09:14:00.123456Z""#)
        );
    }

    #[test]
    fn verifier_reports_the_first_entry_whose_hash_is_wrong() {
        let first = entry(1, serde_json::json!({"verdict": "complete"}));
        let first_hash = first.chain_hash(GENESIS_HASH);
        let second = entry(2, serde_json::json!({"verdict": "incomplete"}));
        let second_hash = second.chain_hash(&first_hash);
        let mut tampered = second.clone();
        tampered.detail = serde_json::json!({"verdict": "complete"});

        let mut verifier = ChainVerifier::new();
        for (entry, prev_hash, hash) in [
            (first, GENESIS_HASH.to_owned(), first_hash),
            (tampered, String::new(), second_hash.clone()),
        ] {
            let prev_hash = if prev_hash.is_empty() {
                verifier.prev_hash.clone()
            } else {
                prev_hash
            };
            verifier.push(&StoredEntry {
                entry,
                prev_hash,
                hash,
            });
        }
        let check = verifier.finish(2, &second_hash);
        assert_eq!(
            check,
            AuditCheck {
                entries: 2,
                first_broken: Some(2)
            }
        );
    }

    #[test]
    fn verifier_notices_a_truncated_tail() {
        let first = entry(1, serde_json::json!({}));
        let hash = first.chain_hash(GENESIS_HASH);
        let mut verifier = ChainVerifier::new();
        verifier.push(&StoredEntry {
            entry: first,
            prev_hash: GENESIS_HASH.into(),
            hash: hash.clone(),
        });
        assert_eq!(verifier.finish(2, "whatever").first_broken, Some(2));
    }
}

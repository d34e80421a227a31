//! Replay comparison: how a stored check report and a fresh one made with a
//! candidate schema differ, per bundle verdict and per requirement, with
//! the new reason. Pure; the shell reads the stored cases and runs
//! `process` again on their stored extraction results.
use serde::Serialize;
use serde_json::Value;

use super::Report;

/// One requirement whose verdict would change (or that appears or goes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RequirementChange {
    /// `einkommen`, `geburtsurkunde#0` (child 0), `einkommen@household#1`.
    pub key: String,
    pub label: String,
    /// `None`: the requirement did not exist before.
    pub old: Option<String>,
    /// `None`: the requirement no longer exists.
    pub new: Option<String>,
    /// The new reason (or the old one for a removed requirement).
    pub reason: String,
}

/// What would change for one case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CaseChange {
    pub case_id: String,
    pub bundle_id: String,
    pub old_verdict: String,
    pub new_verdict: String,
    pub old_schema_version: String,
    pub requirements: Vec<RequirementChange>,
}

impl CaseChange {
    /// Whether anything at all would change.
    pub fn changes(&self) -> bool {
        self.old_verdict != self.new_verdict || !self.requirements.is_empty()
    }
}

fn key_of(v: &Value) -> String {
    let id = v["id"].as_str().unwrap_or("?");
    match (v.get("child").and_then(Value::as_u64), v.get("list").and_then(Value::as_str), v.get("person").and_then(Value::as_u64)) {
        (Some(c), _, _) => format!("{id}#{c}"),
        (None, Some(l), Some(p)) => format!("{id}@{l}#{p}"),
        _ => id.to_string(),
    }
}

/// Compares a stored report (the `check --json` document as stored) with a
/// new one.
pub fn compare(case_id: &str, old: &Value, new: &Report) -> CaseChange {
    let new_value = serde_json::to_value(new).unwrap_or(Value::Null);
    let list = |v: &Value| -> Vec<(String, Value)> {
        v["requirements"].as_array().map(|a| a.iter().map(|r| (key_of(r), r.clone())).collect()).unwrap_or_default()
    };
    let (old_reqs, new_reqs) = (list(old), list(&new_value));
    let s = |v: &Value, k: &str| v[k].as_str().unwrap_or("").to_string();
    let mut requirements = Vec::new();
    for (k, n) in &new_reqs {
        let o = old_reqs.iter().find(|(ok, _)| ok == k).map(|(_, v)| v);
        let (ov, nv) = (o.map(|o| s(o, "verdict")), s(n, "verdict"));
        if ov.as_deref() != Some(nv.as_str()) {
            requirements.push(RequirementChange { key: k.clone(), label: s(n, "label"), old: ov, new: Some(nv), reason: s(n, "reason") });
        }
    }
    for (k, o) in &old_reqs {
        if !new_reqs.iter().any(|(nk, _)| nk == k) {
            requirements.push(RequirementChange {
                key: k.clone(),
                label: s(o, "label"),
                old: Some(s(o, "verdict")),
                new: None,
                reason: s(o, "reason"),
            });
        }
    }
    CaseChange {
        case_id: case_id.to_string(),
        bundle_id: new.bundle_id.clone(),
        old_verdict: s(old, "verdict"),
        new_verdict: new.verdict.as_str().to_string(),
        old_schema_version: old.get("schema_version_id").and_then(Value::as_str).map(str::to_string).unwrap_or_else(|| s(old, "schema_version")),
        requirements,
    }
}

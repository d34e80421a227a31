//! Golden verdicts: every bundle under `fixtures/bundles/` goes through the
//! real pipeline (sandboxed extraction, Tesseract, classification, check)
//! and its segments and requirement verdicts are compared with the truth
//! the fixture generator wrote into `expected.json`.
//!
//! All mismatches are collected and reported together, with accuracy
//! figures, so one run shows the whole picture.
use chrono::NaiveDate;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use nachweis::config::Settings;
use nachweis::extract::sandbox::{Limits, SandboxExtractor};
use nachweis::worker::{Pipeline, check_bundle};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn pipeline() -> Pipeline {
    let schemas = nachweis::startup::load_schemas(&root().join("schemas")).expect("schemas are valid");
    let extractor = SandboxExtractor::new(PathBuf::from(env!("CARGO_BIN_EXE_nachweis")), Limits::default());
    Pipeline { schemas: schemas.into(), extractor: Arc::new(extractor), settings: Settings::default() }
}

fn bundles() -> Vec<PathBuf> {
    nachweis::queue::local::bundle_dirs(&root().join("fixtures/bundles")).expect("fixtures/bundles exists")
}

fn expected(dir: &Path) -> Value {
    let text = std::fs::read_to_string(dir.join("expected.json")).expect("every fixture bundle has expected.json");
    serde_json::from_str(&text).expect("expected.json is JSON")
}

/// The comparable part of a segment or finding.
fn seg_key(v: &Value) -> String {
    format!("{} p{}–{} {}", v["document_id"].as_str().unwrap_or("?"), v["first_page"], v["last_page"], v["type"].as_str().unwrap_or("?"))
}

/// `id`, `id#child` for per-child and `id@list#person` for per-person
/// requirements over other lists (e.g. Wohngeld's household), with the verdict.
fn req_key(v: &Value) -> (String, String) {
    let who = match (&v["child"], v.get("list").and_then(Value::as_str), v.get("person")) {
        (c, _, _) if !c.is_null() => format!("#{c}"),
        (_, Some(list), Some(p)) => format!("@{list}#{p}"),
        _ => String::new(),
    };
    (format!("{}{who}", v["id"].as_str().unwrap_or("?")), v["verdict"].as_str().unwrap_or("?").to_string())
}

#[test]
fn every_fixture_bundle_gets_its_golden_verdicts() {
    let pipeline = pipeline();
    let dirs = bundles();
    assert!(dirs.len() >= 20, "expected at least 20 fixture bundles, found {}", dirs.len());
    let today = NaiveDate::from_ymd_opt(2026, 11, 23).unwrap();
    let mut failures = Vec::new();
    let (mut seg_total, mut seg_ok, mut req_total, mut req_ok, mut bundle_ok) = (0, 0, 0, 0, 0);
    for dir in &dirs {
        let name = dir.file_name().unwrap().to_string_lossy().to_string();
        let want = expected(dir);
        let bundle = nachweis::intake::read_bundle_dir(dir).unwrap_or_else(|e| panic!("{name}: {e}"));
        let (report, _) = check_bundle(&pipeline, &bundle, &[], "case-test", today).unwrap_or_else(|e| panic!("{name}: {e}"));
        let got = serde_json::to_value(&report).unwrap();
        let mut problems = Vec::new();
        if got["verdict"] != want["verdict"] {
            problems.push(format!("verdict {} (expected {})", got["verdict"], want["verdict"]));
        } else {
            bundle_ok += 1;
        }
        let got_segs: Vec<String> = got["segments"].as_array().unwrap().iter().map(seg_key).collect();
        let want_segs: Vec<String> = want["segments"].as_array().unwrap().iter().map(seg_key).collect();
        seg_total += want_segs.len();
        seg_ok += want_segs.iter().filter(|s| got_segs.contains(s)).count();
        if got_segs != want_segs {
            problems.push(format!("segments {got_segs:?}\n      expected {want_segs:?}"));
        }
        let got_reqs: Vec<(String, String)> = got["requirements"].as_array().unwrap().iter().map(req_key).collect();
        let want_reqs: Vec<(String, String)> = want["requirements"].as_array().unwrap().iter().map(req_key).collect();
        req_total += want_reqs.len();
        for w in &want_reqs {
            match got_reqs.iter().find(|g| g.0 == w.0) {
                Some(g) if g.1 == w.1 => req_ok += 1,
                Some(g) => {
                    let reason = got["requirements"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .find(|r| req_key(r).0 == w.0)
                        .map(|r| r["reason"].as_str().unwrap_or("").to_string())
                        .unwrap_or_default();
                    problems.push(format!("{}: {} (expected {}) — {reason}", w.0, g.1, w.1))
                }
                None => problems.push(format!("{}: no verdict (expected {})", w.0, w.1)),
            }
        }
        if got_reqs.len() != want_reqs.len() {
            problems.push(format!("{} requirement verdicts (expected {})", got_reqs.len(), want_reqs.len()));
        }
        if !problems.is_empty() {
            failures.push(format!("{name}:\n    {}", problems.join("\n    ")));
        }
    }
    eprintln!(
        "golden: bundles {bundle_ok}/{} verdicts right, segments {seg_ok}/{seg_total}, requirement verdicts {req_ok}/{req_total}",
        dirs.len()
    );
    assert!(failures.is_empty(), "{} bundle(s) differ from their golden file:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn check_json_follows_the_output_contract() {
    let dir = bundles().into_iter().next().expect("a fixture bundle");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_nachweis"))
        .args(["check", "--json", "--today", "2026-11-23"])
        .arg(&dir)
        .current_dir(root())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).expect("stdout is one JSON document");
    for key in ["bundle_id", "procedure", "schema_version", "verdict", "segments", "requirements"] {
        assert!(v.get(key).is_some(), "missing {key}");
    }
    let seg = &v["segments"][0];
    for key in ["document_id", "first_page", "last_page", "type", "score", "evidence", "text_source"] {
        assert!(seg.get(key).is_some(), "segment lacks {key}");
    }
    let n = v["segments"].as_array().unwrap().len();
    for r in v["requirements"].as_array().unwrap() {
        for key in ["id", "child", "verdict", "segments", "reason"] {
            assert!(r.get(key).is_some(), "requirement lacks {key}");
        }
        assert!(r["segments"].as_array().unwrap().iter().all(|i| (i.as_u64().unwrap() as usize) < n));
    }
}

#[test]
fn check_works_from_any_working_directory() {
    // An operator runs the built binary from wherever they are; the shipped
    // schemas are found without a `schemas/` in the working directory.
    let dir = bundles().into_iter().next().expect("a fixture bundle");
    let elsewhere = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_nachweis"))
        .args(["check", "--json"])
        .arg(&dir)
        .current_dir(elsewhere.path())
        .env_remove("NACHWEIS_SCHEMAS_DIR")
        .env_remove("NACHWEIS_CONFIG")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).expect("stdout is one JSON document");
    assert!(v["verdict"].is_string());
}

#[test]
fn an_unusable_bundle_exits_with_2_and_names_the_field() {
    let tmp = tempfile::tempdir().unwrap();
    let cases: &[(&str, &str)] = &[
        ("{\"procedure\": \"uvg\"}", "bundle_id"),
        ("not json at all", "JSON"),
        ("{\"bundle_id\": \"b1\", \"procedure\": \"uvg\", \"received_at\": \"gestern\", \"applicant\": {}, \"documents\": []}", "received_at"),
    ];
    for (manifest, field) in cases {
        std::fs::write(tmp.path().join("manifest.json"), manifest).unwrap();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_nachweis"))
            .args(["check", "--json"])
            .arg(tmp.path())
            .current_dir(root())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{manifest}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(field), "stderr {err:?} should name {field}");
        assert!(out.stdout.is_empty());
    }
    std::fs::remove_file(tmp.path().join("manifest.json")).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_nachweis")).arg("check").arg(tmp.path()).current_dir(root()).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("manifest.json"));
}

#[test]
fn hostile_bundle_layouts_give_findings_not_hangs_or_crashes() {
    // A FIFO as manifest, a FIFO and a symlink to a system file as
    // documents, a directory as a document: each must end quickly with a
    // specific error or finding.
    let tmp = tempfile::tempdir().unwrap();
    let fifo = tmp.path().join("manifest.json");
    assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_nachweis")).arg("check").arg(tmp.path()).current_dir(root()).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a regular file"));
    std::fs::remove_file(&fifo).unwrap();

    assert!(std::process::Command::new("mkfifo").arg(tmp.path().join("pipe.pdf")).status().unwrap().success());
    std::os::unix::fs::symlink("/etc/passwd", tmp.path().join("link.pdf")).unwrap();
    std::fs::create_dir(tmp.path().join("dir.pdf")).unwrap();
    let doc = |id: &str, file: &str| serde_json::json!({"document_id": id, "filename": file, "media_type": "application/pdf", "path": file, "declared_type": "geburtsurkunde"});
    let manifest = serde_json::json!({
        "bundle_id": "hostile-1", "procedure": "uvg", "received_at": "2026-11-20T09:00:00Z",
        "applicant": {"given_name": "A", "family_name": "B"},
        "facts": {"married_to_other_parent": false, "maintenance_title_exists": false},
        "children": [{"given_name": "C", "family_name": "B", "birth_date": "2020-01-01"}],
        "documents": [doc("d1", "pipe.pdf"), doc("d2", "link.pdf"), doc("d3", "dir.pdf"), doc("d4", "absent.pdf")]
    });
    std::fs::write(tmp.path().join("manifest.json"), manifest.to_string()).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_nachweis"))
        .args(["check", "--json"])
        .arg(tmp.path())
        .current_dir(root())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let segs = v["segments"].as_array().unwrap();
    assert_eq!(segs.len(), 4);
    assert!(segs.iter().all(|s| s["type"] == "unbekannt" && s["problem"]["kind"] == "missing_file"), "{segs:#?}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("root:"), "a symlinked system file must not be read");
    let geburt = v["requirements"].as_array().unwrap().iter().find(|r| r["id"] == "geburtsurkunde").unwrap();
    assert_eq!(geburt["verdict"], "missing");
}

//! The documented format is the real one: every shipped schema file
//! validates against its JSON Schema (`schemas/*.schema.json`), the JSON
//! Schemas reject broken files, and every example in `docs/schemas.md`
//! passes both the JSON Schema and nachweis' own validation — or, for the
//! examples of mistakes, fails with the message the page shows.
use std::path::{Path, PathBuf};

use nachweis::domain::catalogue::Catalogue;
use nachweis::domain::schema::{SchemaError, SourceFile, load_procedure};
use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn json_schema(name: &str) -> jsonschema::Validator {
    let schema: Value = serde_json::from_str(&read(&root().join("schemas").join(name))).expect("JSON Schema is JSON");
    jsonschema::validator_for(&schema).unwrap_or_else(|e| panic!("{name} is no valid JSON Schema: {e}"))
}

/// The JSON Schema's complaints about a TOML text, as "path: message".
fn violations(validator: &jsonschema::Validator, toml_text: &str) -> Vec<String> {
    let table: toml::Table = toml_text.parse().expect("example is TOML");
    let instance = serde_json::to_value(table).unwrap();
    validator.iter_errors(&instance).map(|e| format!("{}: {e}", e.instance_path())).collect()
}

fn catalogue() -> Catalogue {
    Catalogue::from_toml(&read(&root().join("schemas/document_types.toml")), "document_types.toml").unwrap()
}

fn toml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            toml_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "toml") {
            out.push(p);
        }
    }
}

#[test]
fn every_shipped_schema_file_validates_against_its_json_schema() {
    let cases = [
        ("procedure.schema.json", root().join("schemas/procedures")),
        ("overlay.schema.json", root().join("schemas/overlays")),
    ];
    let mut checked = 0;
    for (schema, dir) in cases {
        let v = json_schema(schema);
        let mut files = Vec::new();
        toml_files(&dir, &mut files);
        assert!(!files.is_empty(), "no files under {}", dir.display());
        for f in files {
            let errors = violations(&v, &read(&f));
            assert!(errors.is_empty(), "{} violates {schema}:\n{}", f.display(), errors.join("\n"));
            checked += 1;
        }
    }
    let errors = violations(&json_schema("document_types.schema.json"), &read(&root().join("schemas/document_types.toml")));
    assert!(errors.is_empty(), "document_types.toml:\n{}", errors.join("\n"));
    assert!(checked >= 4, "expected the three procedures and an overlay, checked {checked}");
}

#[test]
fn the_json_schemas_reject_what_the_format_does_not_allow() {
    let uvg = read(&root().join("schemas/procedures/uvg.toml"));
    let procedure = json_schema("procedure.schema.json");
    let broken = [
        ("unknown key", uvg.replacen("per_child = true", "per_kind = true", 1)),
        ("two keys in one condition", uvg.replacen("when = { child_age_at_least = 15 }", "when = { child_age_at_least = 15, any_child_age_at_least = 12 }", 1)),
        ("text as deadline", uvg.replacen("deadline_days = 14", "deadline_days = \"14\"", 1)),
        ("upper-case requirement id", uvg.replacen("[requirements.antrag]", "[requirements.Antrag]", 1)),
        ("accepts not a list", uvg.replacen("accepts = [\"antrag\"]", "accepts = \"antrag\"", 1)),
    ];
    for (what, text) in broken {
        assert_ne!(text, uvg, "{what}: the mutation did not apply");
        assert!(!violations(&procedure, &text).is_empty(), "procedure.schema.json accepts a file with {what}");
    }
    let catalogue = read(&root().join("schemas/document_types.toml"));
    let zero = catalogue.replacen("weight = 6.0", "weight = 0.0", 1);
    assert!(!violations(&json_schema("document_types.schema.json"), &zero).is_empty(), "a weight of 0 must be refused");
    let overlay = "[overlay]\ntenant = \"lk-a\"\nprocedure = \"uvg\"\nversion = \"1\"\n\n[procedure]\nid = \"uvg\"\n";
    assert!(!violations(&json_schema("overlay.schema.json"), overlay).is_empty(), "an overlay may not set procedure.id");
}

/// One `<!-- check: … -->` example of docs/schemas.md.
struct Example {
    line: usize,
    check: String,
    toml: String,
}

fn examples() -> Vec<Example> {
    let text = read(&root().join("docs/schemas.md"));
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        let Some(check) = l.trim().strip_prefix("<!-- check:").and_then(|r| r.strip_suffix("-->")) else { continue };
        assert_eq!(lines.get(i + 1).map(|l| l.trim()), Some("```toml"), "docs/schemas.md:{}: a check must precede a ```toml block", i + 1);
        let body: Vec<&str> = lines[i + 2..].iter().take_while(|l| l.trim() != "```").copied().collect();
        out.push(Example { line: i + 3, check: check.trim().to_string(), toml: body.join("\n") + "\n" });
    }
    out
}

fn ok_or_all(result: Result<Vec<SchemaError>, Vec<SchemaError>>) -> Vec<SchemaError> {
    match result {
        Ok(w) | Err(w) => w,
    }
}

#[test]
fn every_example_in_the_reference_page_does_what_the_page_says() {
    let all = examples();
    assert!(all.len() >= 12, "expected the page's examples, found {}", all.len());
    let cat = catalogue();
    let base = all.iter().find(|e| e.check == "procedure").expect("a whole-procedure example").toml.clone();
    let lists: String = all.iter().filter(|e| e.check == "procedure-fragment" && e.toml.contains("[procedure.lists.")).map(|e| e.toml.clone()).collect();
    let uvg = SourceFile { origin: "uvg.toml".into(), text: read(&root().join("schemas/procedures/uvg.toml")) };
    let (procedure_js, overlay_js, types_js) =
        (json_schema("procedure.schema.json"), json_schema("overlay.schema.json"), json_schema("document_types.schema.json"));
    let minimal = "[procedure]\nid = \"probe\"\nversion = \"1\"\ntitle = \"Probe\"\nlaw = \"Probegesetz\"\ndeadline_days = 14\n\n";
    let filler = "\n[requirements.antrag]\nlabel = \"Antrag\"\naccepts = [\"antrag\"]\nletter = \"den Antrag.\"\n";
    let mut failures = Vec::new();
    for e in &all {
        let at = format!("docs/schemas.md:{} ({})", e.line, e.check);
        let (text, js, outcome) = if e.check == "procedure" {
            let f = SourceFile { origin: at.clone(), text: e.toml.clone() };
            (e.toml.clone(), Some(&procedure_js), ok_or_all(load_procedure(&f, None, &cat).map(|(_, w)| w)))
        } else if e.check == "procedure-fragment" {
            let text = format!("{minimal}{}{filler}", e.toml);
            let f = SourceFile { origin: at.clone(), text: text.clone() };
            (text, Some(&procedure_js), ok_or_all(load_procedure(&f, None, &cat).map(|(_, w)| w)))
        } else if e.check == "requirement" {
            let text = format!("{base}\n{lists}\n{}", e.toml);
            let f = SourceFile { origin: at.clone(), text: text.clone() };
            (text, Some(&procedure_js), ok_or_all(load_procedure(&f, None, &cat).map(|(_, w)| w)))
        } else if e.check == "types" {
            let text = format!("{}\n{}", read(&root().join("schemas/document_types.toml")), e.toml);
            (text.clone(), Some(&types_js), ok_or_all(Catalogue::load(&text, &at).map(|(_, w)| w)))
        } else if e.check == "overlay uvg" {
            let f = SourceFile { origin: at.clone(), text: e.toml.clone() };
            (e.toml.clone(), Some(&overlay_js), ok_or_all(load_procedure(&uvg, Some(&f), &cat).map(|(_, w)| w)))
        } else if let Some(rest) = e.check.strip_prefix("error ") {
            let (message, overlay) = match rest.strip_suffix(" overlay uvg") {
                Some(m) => (m.trim_matches('"'), true),
                None => (rest.trim_matches('"'), false),
            };
            let f = SourceFile { origin: at.clone(), text: e.toml.clone() };
            let found = if overlay { load_procedure(&uvg, Some(&f), &cat) } else { load_procedure(&f, None, &cat) };
            match found {
                Ok(_) => failures.push(format!("{at}: validates, but the page says it fails with „{message}“")),
                Err(errors) if !errors.iter().any(|x| x.is_error() && x.message.contains(message)) => {
                    failures.push(format!("{at}: no error „{message}“ in {errors:#?}"))
                }
                Err(_) => {}
            }
            continue;
        } else {
            failures.push(format!("{at}: unknown check"));
            continue;
        };
        if !outcome.is_empty() {
            failures.push(format!("{at}: {}", outcome.iter().map(|x| x.to_string()).collect::<Vec<_>>().join("; ")));
        }
        if let Some(js) = js {
            let v = violations(js, &text);
            if !v.is_empty() {
                failures.push(format!("{at}: JSON Schema: {}", v.join("; ")));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_cli_reports_every_error_with_file_line_and_column_and_start_up_refuses_a_broken_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let broken = tmp.path().join("uvg-neu.toml");
    let text = read(&root().join("schemas/procedures/uvg.toml"))
        .replacen("accepts = [\"antrag\"]", "accepts = [\"antrga\"]", 1)
        .replacen("when = { any_child_age_at_least = 12 }", "when = { fact = \"married_to_other_parent\", equals = 12 }", 1);
    std::fs::write(&broken, &text).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_nachweis"))
        .args(["schema", "validate"])
        .arg(&broken)
        .current_dir(root())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().filter(|l| l.contains("uvg-neu.toml:")).collect();
    assert_eq!(lines.len(), 2, "{stderr}");
    assert!(lines.iter().any(|l| l.ends_with("Meinten Sie „antrag“?") && l.contains(":18:12: Fehler: Unbekannter Dokumenttyp")), "{stderr}");
    assert!(lines.iter().any(|l| l.contains(": Fehler: „married_to_other_parent“ ist eine Ja/Nein-Angabe")), "{stderr}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("ungültig — 2 Fehler"));

    // A schemas directory with that file does not start a check (nor a worker).
    let dir = tmp.path().join("schemas");
    std::fs::create_dir_all(dir.join("procedures")).unwrap();
    std::fs::copy(root().join("schemas/document_types.toml"), dir.join("document_types.toml")).unwrap();
    std::fs::write(dir.join("procedures/uvg.toml"), &text).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_nachweis"))
        .args(["check"])
        .arg(root().join("fixtures/bundles/uvg-01-ledig-komplett"))
        .env("NACHWEIS_SCHEMAS_DIR", &dir)
        .current_dir(root())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("invalid schemas") && stderr.contains("uvg.toml:18:12"), "{stderr}");
}

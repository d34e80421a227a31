//! Validation tests: each broken schema snippet must give its specific
//! German message at the right line and column, and all errors of a file
//! are reported together.
use super::*;

const CATALOGUE: &str = r#"
[catalogue]
version = "t1"
min_confidence = 0.5
evidence_scale = 6.0

[types.antrag]
label = "Antrag"
[[types.antrag.signals]]
kind = "title"
weight = 6.0
phrases = ["Antrag"]

[types.einkommensnachweis]
label = "Einkommensnachweis"

[types.geburtsurkunde]
label = "Geburtsurkunde"
"#;

const BASE: &str = r#"[procedure]
id = "p"
version = "1"
title = "Probe"
law = "Probegesetz"
deadline_days = 14

[procedure.facts]
married = "Verheiratet?"
household_size = { question = "Wie viele Personen?", type = "number" }

[procedure.lists.household]
label = "Haushaltsmitglied"
facts = { earns = "Hat Einkommen?" }

[requirements.antrag]
label = "Antrag"
accepts = ["antrag"]
letter = "den Antrag."

[requirements.geburt]
label = "Geburtsurkunde"
per_child = true
match_child_name = true
when = { child_age_below = 18 }
accepts = ["geburtsurkunde"]
letter = "die Geburtsurkunde von {kind}."

[requirements.einkommen]
label = "Einkommensnachweis"
for_each = "household"
match_name = true
when = { person_fact = "earns", equals = true }
accepts = [{ type = "einkommensnachweis", max_age_days = 90 }]
letter = "einen Einkommensnachweis für {person}."
"#;

fn catalogue() -> Catalogue {
    Catalogue::from_toml(CATALOGUE, "document_types.toml").unwrap()
}

fn file(origin: &str, text: &str) -> SourceFile {
    SourceFile { origin: origin.into(), text: text.into() }
}

fn errors(text: &str) -> Vec<SchemaError> {
    match load_procedure(&file("p.toml", text), None, &catalogue()) {
        Ok((_, w)) => w,
        Err(e) => e,
    }
}

fn overlay_errors(overlay: &str) -> Vec<SchemaError> {
    match load_procedure(&file("p.toml", BASE), Some(&file("o.toml", overlay)), &catalogue()) {
        Ok((_, w)) => w,
        Err(e) => e,
    }
}

/// (what is broken, replace this in BASE, with this, expected message part, line, column)
#[test]
fn every_kind_of_rule_error_names_file_line_column_and_cause() {
    let cases: &[(&str, &str, &str, &str, usize, usize)] = &[
        ("unknown type", "accepts = [\"antrag\"]", "accepts = [\"antrga\"]", "Unbekannter Dokumenttyp „antrga“", 18, 12),
        ("typo suggestion", "accepts = [\"antrag\"]", "accepts = [\"antrga\"]", "Meinten Sie „antrag“?", 18, 12),
        ("unknown fact", "when = { child_age_below = 18 }", "when = { fact = \"maried\", equals = true }", "Unbekannte Angabe „maried“", 25, 17),
        (
            "unreachable ages",
            "when = { child_age_below = 18 }",
            "when = { all = [{ child_age_at_least = 15 }, { child_age_below = 12 }] }",
            "kann nie zutreffen (niemand ist zugleich mindestens 15 und jünger als 12",
            25,
            8,
        ),
        ("fact of wrong type", "when = { child_age_below = 18 }", "when = { fact = \"married\", equals = 15 }", "Ja/Nein-Angabe", 25, 37),
        ("number fact with text", "when = { child_age_below = 18 }", "when = { fact = \"household_size\", equals = \"drei\" }", "ist eine Zahl", 25, 44),
        ("unknown placeholder", "die Geburtsurkunde von {kind}.", "die Geburtsurkunde von {kinder}.", "Den Platzhalter {kinder} im Brieftext gibt es nicht", 27, 10),
        ("child placeholder outside per-child", "letter = \"den Antrag.\"", "letter = \"den Antrag von {kind}.\"", "Der Platzhalter {kind} gilt hier nicht: nur in Anforderungen je Person", 19, 10),
        ("unknown key", "match_name = true", "match_nme = true", "Unbekannter Schlüssel „match_nme“", 32, 1),
        ("child condition in household list", "when = { person_fact = \"earns\", equals = true }", "when = { child_age_at_least = 16 }", "gilt nur für Kinder", 33, 10),
        ("unknown list", "for_each = \"household\"", "for_each = \"haushalt\"", "Unbekannte Personenliste „haushalt“", 31, 12),
        ("id differing in case", "[requirements.geburt]", "[requirements.Antrag]\nlabel = \"A\"\naccepts = [\"antrag\"]\nletter = \"x\"\n[requirements.geburt]", "nur in der Groß-/Kleinschreibung", 21, 15),
        ("missing letter", "letter = \"den Antrag.\"\n", "", "fehlt der Schlüssel „letter“", 16, 15),
        ("zero deadline", "deadline_days = 14", "deadline_days = 0", "mindestens einen Tag", 6, 17),
    ];
    for (what, from, to, message, line, column) in cases {
        assert!(BASE.contains(from), "{what}: BASE lacks {from:?}");
        let text = BASE.replacen(from, to, 1);
        let found = errors(&text);
        let hit = found.iter().find(|e| e.message.contains(message));
        let Some(hit) = hit else { panic!("{what}: no message containing {message:?} in {found:#?}") };
        assert_eq!((hit.origin.as_str(), hit.line, hit.column), ("p.toml", *line, *column), "{what}: {hit}");
    }
}

#[test]
fn the_shipped_style_base_validates_without_warnings() {
    let (schema, warnings) = load_procedure(&file("p.toml", BASE), None, &catalogue()).unwrap();
    assert!(warnings.is_empty(), "{warnings:#?}");
    assert_eq!(schema.requirements.len(), 3);
    assert!(schema.requirements[1].per_child());
    assert_eq!(schema.requirements[2].for_each.as_deref(), Some("household"));
}

#[test]
fn all_errors_of_a_file_are_reported_not_just_the_first() {
    let text = BASE
        .replacen("accepts = [\"antrag\"]", "accepts = [\"antrga\"]", 1)
        .replacen("{kind}", "{kinder}", 1)
        .replacen("match_name = true", "match_nme = true", 1);
    let found = errors(&text);
    assert_eq!(found.iter().filter(|e| e.is_error()).count(), 3, "{found:#?}");
}

#[test]
fn a_duplicate_requirement_table_is_a_located_german_error() {
    let text = format!("{BASE}\n[requirements.antrag]\nlabel = \"x\"\n");
    let found = errors(&text);
    assert!(found[0].message.contains("[requirements.antrag] steht zweimal"), "{}", found[0].message);
    assert_eq!((found[0].line, found[0].column), (37, 15));
    // The repeated key inside the repeated table is named too.
    assert!(found.iter().any(|e| e.line == 38 && e.message.contains("„label“")), "{found:#?}");
}

#[test]
fn overlay_problems_point_into_the_overlay_file() {
    let head = "[overlay]\ntenant = \"lk-a\"\nprocedure = \"p\"\nversion = \"1\"\n\n";
    let cases: &[(&str, &str, &str, usize, usize)] = &[
        ("overrides nothing", "[requirements.geburtsurkunde]\nlabel = \"x\"\n", "überschreibt nichts", 6, 15),
        ("typo of a base id", "[requirements.einkomen.when]\nperson_fact = \"earns\"\nequals = false\n", "Meinten Sie „einkommen“?", 6, 15),
        ("case of a base id", "[requirements.Antrag]\nlabel = \"A\"\naccepts = [\"antrag\"]\nletter = \"x\"\n", "andere Groß-/Kleinschreibung", 6, 15),
        ("empty overlay", "", "ändert nichts an der Basis", 1, 2),
        ("unknown key in overlay entry", "[requirements.antrag]\nlable = \"A\"\n", "Unbekannter Schlüssel „lable“", 7, 1),
        ("unknown type in overlay", "[requirements.antrag]\naccepts = [\"ausweis\"]\n", "Unbekannter Dokumenttyp „ausweis“", 7, 12),
        ("version in procedure", "[procedure]\nversion = \"2\"\n", "[overlay] version", 7, 1),
    ];
    for (what, body, message, line, column) in cases {
        let found = overlay_errors(&format!("{head}{body}"));
        let Some(hit) = found.iter().find(|e| e.message.contains(message)) else {
            panic!("{what}: no message containing {message:?} in {found:#?}")
        };
        assert_eq!((hit.origin.as_str(), hit.line, hit.column), ("o.toml", *line, *column), "{what}: {hit}");
    }
}

#[test]
fn an_overlay_changes_a_threshold_adds_a_requirement_and_switches_one_off() {
    let overlay = r#"[overlay]
tenant = "lk-a"
procedure = "p"
version = "3"

[requirements.geburt.when]
child_age_below = 16

[requirements.einkommen]
enabled = false

[requirements.zweites]
label = "Zweiter Antrag"
accepts = ["antrag"]
letter = "noch einen Antrag."
"#;
    let (s, warnings) = load_procedure(&file("p.toml", BASE), Some(&file("o.toml", overlay)), &catalogue()).unwrap();
    assert!(warnings.is_empty(), "{warnings:#?}");
    assert_eq!(s.version, "1+lk-a.3");
    assert_eq!(s.tenant.as_deref(), Some("lk-a"));
    let ids: Vec<&str> = s.requirements.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, ["antrag", "geburt", "zweites"]);
    assert_eq!(s.requirements[1].when, Some(Condition::PersonAgeBelow(16)));
}

#[test]
fn an_overlay_entry_repeating_the_base_value_is_a_warning() {
    let overlay = "[overlay]\ntenant = \"lk-a\"\nprocedure = \"p\"\nversion = \"1\"\n\n[procedure]\ndeadline_days = 21\n\n[requirements.antrag]\nlabel = \"Antrag\"\n";
    let (_, warnings) = load_procedure(&file("p.toml", BASE), Some(&file("o.toml", overlay)), &catalogue()).unwrap();
    assert_eq!(warnings.len(), 1, "{warnings:#?}");
    assert_eq!((warnings[0].line, warnings[0].severity), (10, Severity::Warning));
}

#[test]
fn an_overlay_the_base_has_caught_up_with_is_a_warning_not_an_error() {
    // The base now asks for what the tenant's overlay asked for: the base
    // change must not be blocked by the now redundant overlay.
    let overlay = "[overlay]\ntenant = \"lk-a\"\nprocedure = \"p\"\nversion = \"1\"\n\n[requirements.geburt.when]\nchild_age_below = 18\n";
    let (_, warnings) = load_procedure(&file("p.toml", BASE), Some(&file("o.toml", overlay)), &catalogue()).unwrap();
    assert!(warnings.iter().all(|w| w.severity == Severity::Warning), "{warnings:#?}");
    assert!(warnings.iter().any(|w| w.message.contains("ändert nichts mehr")), "{warnings:#?}");
}

#[test]
fn conditions_in_words_name_the_question_and_the_person() {
    let (s, _) = load_procedure(&file("p.toml", BASE), None, &catalogue()).unwrap();
    let einkommen = &s.requirements[2];
    assert_eq!(
        einkommen.when.as_ref().unwrap().describe(&s.procedure, einkommen.for_each.as_deref()),
        "bei der Person „Hat Einkommen?“ wurde mit Ja beantwortet"
    );
    let geburt = &s.requirements[1];
    assert_eq!(geburt.when.as_ref().unwrap().describe(&s.procedure, Some(CHILDREN)), "das Kind ist jünger als 18 Jahre");
}

#[test]
fn a_condition_that_always_holds_is_a_warning() {
    let text = BASE.replacen("when = { child_age_below = 18 }", "when = { any = [{ fact = \"married\", equals = true }, { not = { fact = \"married\", equals = true } }] }", 1);
    let found = errors(&text);
    assert!(found.iter().any(|e| e.severity == Severity::Warning && e.message.contains("immer")), "{found:#?}");
}

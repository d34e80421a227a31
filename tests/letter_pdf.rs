//! The approved letter as PDF: a letter drafted by the real pure core is
//! rendered and read back with poppler (`pdftotext`, `pdffonts`), the
//! independent reader a citizen's PDF viewer is closest to — the text must
//! come out exactly, the address must sit in the DIN 5008 window, and the
//! fonts must be embedded subsets.
use chrono::NaiveDate;
use nachweis::config::Settings;
use nachweis::domain::bundle::Manifest;
use nachweis::domain::draft::Draft;
use nachweis::domain::review::approval_problems;
use nachweis::domain::{Context, process};
use nachweis::letter::{Fonts, LetterDocument, LetterError, editable_body, render_letter};
use regex::Regex;
use std::path::{Path, PathBuf};
use std::process::Command;

const MM: f64 = 72.0 / 25.4;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn fonts() -> Fonts {
    let dir = Settings::default().fonts_dir;
    Fonts::load(&dir).unwrap_or_else(|e| panic!("{e}"))
}

/// A real draft: bundle uvg-03's manifest with none of its uploads read,
/// so every requirement is missing and the letter asks for all of them.
fn drafted_letter() -> Draft {
    let schemas = nachweis::startup::load_schemas(&root().join("schemas")).expect("schemas are valid");
    let bytes = std::fs::read(root().join("fixtures/bundles/uvg-03-viele-fehlen/manifest.json")).unwrap();
    let manifest = Manifest::parse(&bytes).expect("fixture manifest");
    let schema = schemas.for_bundle(&manifest.procedure, manifest.tenant.as_deref()).expect("uvg schema");
    let letterhead = Settings::default().letterhead;
    let ctx = Context {
        schema,
        catalogue: &schemas.catalogue,
        letterhead: &letterhead,
        today: NaiveDate::from_ymd_opt(2026, 11, 23).unwrap(),
        case_reference: "UVG-2026-000123",
    };
    let report = process(&manifest, &[], &ctx);
    assert!(report.draft.items.len() >= 5, "the fixture should yield a letter with many items");
    report.draft
}

fn letter(draft: &Draft) -> LetterDocument {
    LetterDocument::from_draft(
        draft,
        editable_body(draft),
        vec!["Merkblatt zum Unterhaltsvorschuss".into(), "Rückumschlag".into()],
    )
}

fn write_pdf(bytes: &[u8], name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("nachweis-letter-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

fn poppler(tool: &str, args: &[&str], pdf: &Path) -> String {
    let out = Command::new(tool)
        .args(args)
        .arg(pdf)
        .arg("-")
        .output()
        .unwrap_or_else(|e| panic!("{tool} is needed for this test (Debian package poppler-utils): {e}"));
    assert!(out.status.success(), "{tool} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("poppler prints UTF-8")
}

fn normalised(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A word of `pdftotext -bbox-layout`, in millimetres from the top-left corner.
#[derive(Debug, Clone)]
struct Word {
    page: usize,
    x_min: f64,
    y_min: f64,
    x_max: f64,
    y_max: f64,
    text: String,
}

fn words(pdf: &Path) -> Vec<Word> {
    let xhtml = Command::new("pdftotext").arg("-bbox-layout").arg(pdf).arg("-").output().expect("pdftotext").stdout;
    let xhtml = String::from_utf8(xhtml).unwrap();
    let word = Regex::new(r#"<word xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="([\d.]+)">([^<]*)</word>"#).unwrap();
    let mut out = Vec::new();
    for (page, chunk) in xhtml.split("<page ").skip(1).enumerate() {
        for c in word.captures_iter(chunk) {
            let mm = |i: usize| c[i].parse::<f64>().unwrap() / MM;
            let text = c[5].replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", "\"");
            out.push(Word { page: page + 1, x_min: mm(1), y_min: mm(2), x_max: mm(3), y_max: mm(4), text });
        }
    }
    out
}

/// Lines of `pdftotext -bbox-layout` per page: (text, y_max in mm).
fn lines(pdf: &Path) -> Vec<Vec<(String, f64)>> {
    let xhtml = String::from_utf8(Command::new("pdftotext").arg("-bbox-layout").arg(pdf).arg("-").output().unwrap().stdout).unwrap();
    let line = Regex::new(r#"(?s)<line xMin="[\d.]+" yMin="[\d.]+" xMax="[\d.]+" yMax="([\d.]+)">(.*?)</line>"#).unwrap();
    let word = Regex::new(r#"<word[^>]*>([^<]*)</word>"#).unwrap();
    xhtml
        .split("<page ")
        .skip(1)
        .map(|page| {
            line.captures_iter(page)
                .map(|c| {
                    let text: Vec<String> = word.captures_iter(&c[2]).map(|w| w[1].to_string()).collect();
                    (text.join(" "), c[1].parse::<f64>().unwrap() / MM)
                })
                .collect()
        })
        .collect()
}

fn page_count(pdf: &Path) -> usize {
    let info = Command::new("pdfinfo").arg(pdf).output().expect("pdfinfo (poppler-utils)");
    let info = String::from_utf8(info.stdout).unwrap();
    let pages = info.lines().find(|l| l.starts_with("Pages:")).expect("pdfinfo prints Pages");
    pages.trim_start_matches("Pages:").trim().parse().unwrap()
}

#[test]
fn the_drafted_letter_extracts_with_every_item_the_deadline_and_the_legal_notice() {
    let draft = drafted_letter();
    let pdf = write_pdf(&render_letter(&letter(&draft), &fonts()).unwrap(), "drafted.pdf");
    let text = normalised(&poppler("pdftotext", &["-layout"], &pdf));
    for item in &draft.items {
        assert!(text.contains(&normalised(&item.text)), "item missing from the PDF text: {}\n---\n{text}", item.text);
    }
    let deadline = draft.deadline.format("%d.%m.%Y").to_string();
    assert!(text.contains(&format!("bis zum {deadline} ein.")), "deadline {deadline} missing");
    assert!(text.contains(&normalised(&draft.legal_notice)), "§ 66 notice missing");
    for exact in [
        draft.subject.as_str(),
        draft.salutation.as_str(),
        "Mit freundlichen Grüßen",
        "Landkreis Musterland",
        "Jugendamt – Unterhaltsvorschusskasse",
        "Anlagen Merkblatt zum Unterhaltsvorschuss Rückumschlag",
        "UVG-2026-000123",
    ] {
        assert!(text.contains(&normalised(exact)), "{exact:?} missing from:\n{text}");
    }
    assert!(!text.contains("Hinweise für die Sachbearbeitung"), "caseworker notes must not be printed");
}

#[test]
fn german_characters_and_applicant_text_come_out_exactly() {
    let draft = drafted_letter();
    let mut doc = letter(&draft);
    doc.address = vec![
        "Jürgen Groß-Öztürk (Dr.) \\ <b>&".into(),
        "Straße des 17. Juni 4 ) BT /F1 Tj".into(),
        "12345 Musterstadt 漢".into(),
    ];
    doc.body = "Sehr geehrter Herr Groß-Öztürk,\n\nbitte senden Sie „die Unterlagen“ nach § 60 SGB I – spätestens übermorgen; Maße: 5 € · ½ Seite…\n\nMit freundlichen Grüßen\n\nIm Auftrag\nÄnne Weiß".into();
    let pdf = write_pdf(&render_letter(&doc, &fonts()).unwrap(), "characters.pdf");
    // Line breaks are the layout's; every character must be the text's.
    let text = normalised(&poppler("pdftotext", &[], &pdf));
    for exact in [
        "Jürgen Groß-Öztürk (Dr.) \\ <b>&",
        "Straße des 17. Juni 4 ) BT /F1 Tj",
        "bitte senden Sie „die Unterlagen“ nach § 60 SGB I – spätestens übermorgen; Maße: 5 € · ½ Seite…",
        "Änne Weiß",
    ] {
        assert!(text.contains(exact), "{exact:?} not extracted exactly from:\n{text}");
    }
    // A character the font lacks is drawn as the replacement glyph and
    // extracts as what is drawn, not as an invisible gap.
    assert!(text.contains("12345 Musterstadt \u{FFFD}"), "{text}");
}

#[test]
fn the_recipient_sits_in_the_anschriftzone_and_the_date_in_the_information_block() {
    let draft = drafted_letter();
    let pdf = write_pdf(&render_letter(&letter(&draft), &fonts()).unwrap(), "positions.pdf");
    let words = words(&pdf);
    let find = |text: &str, page: usize| -> Word {
        words.iter().find(|w| w.page == page && w.text == text).cloned().unwrap_or_else(|| panic!("no word {text:?} on page {page}"))
    };
    let first_word = draft.address[0].split_whitespace().next().unwrap();
    let recipient = find(first_word, 1);
    assert!(recipient.x_min >= 20.0 && recipient.x_max <= 105.0, "recipient x outside the address field: {recipient:?}");
    assert!(recipient.y_min >= 62.7 && recipient.y_max <= 90.0, "recipient y outside the Anschriftzone: {recipient:?}");
    let city_word = draft.address.last().unwrap().split_whitespace().last().unwrap();
    let city = words.iter().filter(|w| w.page == 1 && w.text == city_word).find(|w| w.y_min >= 62.7).unwrap();
    assert!(city.y_max <= 90.0, "last address line below the address field: {city:?}");
    // The return address lies in the Zusatz- und Vermerkzone above.
    let ret = words.iter().find(|w| w.page == 1 && w.text == "Schloßplatz").expect("return address printed");
    assert!(ret.y_min >= 45.0 && ret.y_max <= 62.7 && ret.x_min >= 20.0 && ret.x_max <= 105.0, "return address: {ret:?}");

    let date = find(&draft.date.format("%d.%m.%Y").to_string(), 1);
    let subject_first = find(draft.subject.split_whitespace().next().unwrap(), 1);
    assert!(date.x_min >= 125.0 && date.x_max <= 200.0, "date outside the information block: {date:?}");
    assert!(date.y_min >= 50.0 && date.y_max < subject_first.y_min, "date not between 50 mm and the subject: {date:?}");
    let reference = find("UVG-2026-000123", 1);
    assert!(reference.x_min >= 125.0 && reference.y_min >= 50.0, "reference not in the information block: {reference:?}");
    // Body text keeps the margins: 25 mm left, 20 mm right.
    for w in words.iter().filter(|w| w.y_min > subject_first.y_min - 1.0) {
        assert!(w.x_min >= 24.9 && w.x_max <= 190.1, "word outside the text area: {w:?}");
    }
}

#[test]
fn fonts_are_embedded_as_subsets_with_a_unicode_map() {
    let draft = drafted_letter();
    let pdf = write_pdf(&render_letter(&letter(&draft), &fonts()).unwrap(), "fonts.pdf");
    let out = Command::new("pdffonts").arg(&pdf).output().expect("pdffonts (poppler-utils)");
    let table = String::from_utf8(out.stdout).unwrap();
    let rows: Vec<&str> = table.lines().skip(2).filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(rows.len(), 2, "regular and bold face expected:\n{table}");
    let subset_name = Regex::new(r"^[A-Z]{6}\+DejaVuSans").unwrap();
    for row in rows {
        let cols: Vec<&str> = row.split_whitespace().collect();
        // name type… encoding emb sub uni object ID
        let n = cols.len();
        assert_eq!(&cols[n - 5..n - 2], ["yes", "yes", "yes"], "emb/sub/uni must be yes: {row}");
        assert!(row.contains("CID TrueType") && row.contains("Identity-H"), "unexpected font type: {row}");
        assert!(subset_name.is_match(cols[0]), "subset name expected: {row}");
    }
    let size = std::fs::metadata(&pdf).unwrap().len();
    assert!(size < 120_000, "subsetting should keep the letter small, got {size} bytes");
}

#[test]
fn the_same_letter_renders_to_the_same_bytes() {
    let draft = drafted_letter();
    let fonts = fonts();
    let doc = letter(&draft);
    let a = render_letter(&doc, &fonts).unwrap();
    let b = render_letter(&doc, &fonts).unwrap();
    assert_eq!(a, b, "rendering must be deterministic");
    let mut edited = doc.clone();
    edited.body.push_str("\nNachtrag.");
    assert_ne!(render_letter(&edited, &fonts).unwrap(), a);
}

/// A body long enough for several pages, with a heading-like line and a
/// list introduction at varying heights, so breaks fall everywhere.
fn long_body(filler_lines: usize) -> String {
    let mut body = String::from("Guten Tag Frau Beispiel,\n\n");
    for i in 0..filler_lines {
        body.push_str(&format!("Absatz {i}: Dies ist ein Satz, der den Brief verlängert.\n\n"));
    }
    for section in 0..6 {
        body.push_str(&format!("Zu Punkt {section} benötigen wir folgende Unterlagen:\n"));
        for k in 0..4 {
            body.push_str(&format!(
                "– Unterlage {section}.{k}: eine Bescheinigung, die so lang beschrieben ist, dass sie über mehr als eine Zeile läuft und umbrochen werden muss.\n"
            ));
        }
        body.push_str(&format!("\nAbschnitt {section}\n\n"));
        body.push_str("Bitte beachten Sie, dass wir ohne diese Unterlagen nicht entscheiden können. Wenn Sie Fragen haben, rufen Sie uns an oder schreiben Sie uns eine E-Mail, wir helfen Ihnen gern weiter. Dieser Absatz ist absichtlich lang, damit er beim Seitenumbruch geteilt werden kann und die Regeln für Schusterjungen und Hurenkinder greifen.\n\n");
    }
    body.push_str("Mit freundlichen Grüßen\n\nIm Auftrag\nMaria Muster");
    body
}

#[test]
fn a_long_letter_gets_follow_page_headers_and_page_numbers() {
    let draft = drafted_letter();
    let mut doc = letter(&draft);
    doc.body = long_body(10);
    let pdf = write_pdf(&render_letter(&doc, &fonts()).unwrap(), "long.pdf");
    let pages = page_count(&pdf);
    assert!(pages >= 2, "expected several pages, got {pages}");
    let first = normalised(&poppler("pdftotext", &["-layout", "-f", "1", "-l", "1"], &pdf));
    assert!(first.contains(&format!("Seite 1 von {pages}")), "page 1 lacks its number:\n{first}");
    for p in 2..=pages {
        let text = normalised(&poppler("pdftotext", &["-layout", "-f", &p.to_string(), "-l", &p.to_string()], &pdf));
        assert!(text.contains(&format!("Seite {p} von {pages}")), "page {p} lacks its header:\n{text}");
        assert!(text.contains("Unser Zeichen UVG-2026-000123"), "page {p} lacks the reference:\n{text}");
    }
    let all = normalised(&poppler("pdftotext", &["-layout"], &pdf));
    assert!(all.contains("Im Auftrag Maria Muster Anlagen Merkblatt zum Unterhaltsvorschuss Rückumschlag"), "closing and enclosures:\n{all}");
}

#[test]
fn no_page_ends_with_a_heading_or_a_lone_line_of_a_paragraph() {
    let fonts = fonts();
    let draft = drafted_letter();
    // Shifting the text by one line at a time moves every break through
    // every kind of block.
    let mut checked_breaks = 0;
    for filler in 0..14 {
        let mut doc = letter(&draft);
        doc.body = long_body(filler);
        let pdf = write_pdf(&render_letter(&doc, &fonts).unwrap(), &format!("breaks-{filler}.pdf"));
        let pages = lines(&pdf);
        for (i, page) in pages.iter().enumerate().take(pages.len() - 1) {
            // The last body line: the lowest line above the page number.
            let body: Vec<&(String, f64)> = page.iter().filter(|(t, y)| *y < 272.0 && !t.starts_with("Seite ")).collect();
            let (last, _) = body.iter().max_by(|a, b| a.1.total_cmp(&b.1)).expect("page has body text");
            checked_breaks += 1;
            assert!(!last.ends_with(':'), "filler {filler}: page {} ends with a list introduction: {last:?}", i + 1);
            assert!(!last.starts_with("Abschnitt") && !last.starts_with("Mit freundlichen"), "filler {filler}: page {} ends with a heading: {last:?}", i + 1);
            assert!(!last.starts_with("Guten Tag"), "filler {filler}: salutation alone at the bottom");
        }
        for page in pages.iter().skip(1) {
            // The first body line of a follow page is never the last line of
            // a long paragraph on its own (a widow): the long paragraph's
            // last words are "greifen." and must not be alone at the top.
            let body: Vec<&(String, f64)> = page.iter().filter(|(t, y)| *y > 20.0 && *y < 272.0 && !t.starts_with("Seite ")).collect();
            let (first, _) = body.iter().min_by(|a, b| a.1.total_cmp(&b.1)).expect("follow page has text");
            assert!(!first.ends_with("greifen."), "filler {filler}: widow line at a page top: {first:?}");
        }
    }
    assert!(checked_breaks >= 14, "the bodies should break at least once each");
}

#[test]
fn long_words_and_lines_are_broken_inside_the_page() {
    let draft = drafted_letter();
    let mut doc = letter(&draft);
    let monster = "Donaudampfschifffahrtselektrizitätenhauptbetriebswerkbauunterbeamtengesellschaft".repeat(4);
    doc.body = format!("Guten Tag,\n\n{monster} und https://portal.landkreis-musterland.example/antraege/unterhaltsvorschuss/nachreichen?vorgang=UVG-2026-000123&schritt=1\n\nGruß");
    doc.address = vec![format!("{} Beispiel", "Maximiliane-Alexandra ".repeat(5)), "Lindenweg 4".into(), "12345 Musterstadt".into()];
    let pdf = write_pdf(&render_letter(&doc, &fonts()).unwrap(), "long-words.pdf");
    let words = words(&pdf);
    for w in &words {
        assert!(w.x_max <= 200.1, "word runs off the page: {w:?}");
    }
    let joined: String = words.iter().map(|w| w.text.as_str()).collect();
    assert!(joined.contains(&monster), "the long word must be printed completely");
    for w in words.iter().filter(|w| w.text.starts_with("Maximiliane")) {
        assert!(w.x_max <= 105.0 && w.y_max <= 90.0, "address line leaves the field: {w:?}");
    }
}

#[test]
fn an_address_that_does_not_fit_the_field_is_an_error_not_an_overflow() {
    let draft = drafted_letter();
    let mut doc = letter(&draft);
    doc.address = (1..=7).map(|i| format!("Zeile {i}")).collect();
    assert_eq!(render_letter(&doc, &fonts()), Err(LetterError::AddressTooLong { lines: 7, max: 6 }));
    doc.address = vec![" ".into(), "\n".into()];
    assert_eq!(render_letter(&doc, &fonts()), Err(LetterError::EmptyAddress));
    doc.address = vec!["Anna Beispiel".into()];
    doc.body = "  \n\n ".into();
    assert_eq!(render_letter(&doc, &fonts()), Err(LetterError::EmptyBody));
    doc.body = "Guten Tag.".into();
    doc.subject = "Betreff ".repeat(200);
    assert!(matches!(render_letter(&doc, &fonts()), Err(LetterError::SubjectTooLong { max: 4, .. })));
    assert!(LetterError::AddressTooLong { lines: 7, max: 6 }.message_de().contains("Anschriftfeld"));
}

#[test]
fn the_editable_body_starts_at_the_salutation_and_leaves_out_caseworker_notes() {
    let mut draft = drafted_letter();
    draft.text.push_str("\nHinweise für die Sachbearbeitung (nicht Teil des Schreibens):\n• Dokument d9 ist unbekannt\n");
    let body = editable_body(&draft);
    assert!(body.starts_with(&draft.salutation), "body starts with: {:?}", &body[..40.min(body.len())]);
    assert!(body.ends_with(&draft.letterhead.contact_name), "body ends with the signature");
    assert!(!body.contains("Hinweise für die Sachbearbeitung"));
    assert!(!body.contains(&draft.letterhead.return_address));
    assert!(approval_problems(&draft, &body).is_empty(), "{:?}", approval_problems(&draft, &body));
    assert_eq!(approval_problems(&draft, &body.replace("§ 66", "§ 99")).len(), 1);
}

#[test]
fn a_missing_font_directory_is_reported_with_the_setting_to_change() {
    let err = Fonts::load(Path::new("/nonexistent/fonts")).unwrap_err().to_string();
    assert!(err.contains("NACHWEIS_FONTS_DIR") && err.contains("DejaVuSans.ttf"), "{err}");
}

#[test]
fn the_overview_of_received_documents_is_one_enclosure_with_its_lines() {
    let draft = drafted_letter();
    let doc = LetterDocument::from_draft(
        &draft,
        editable_body(&draft),
        vec!["Übersicht der bereits eingegangenen Unterlagen:".into(), "– „a.pdf“: Antrag".into(), "– „b.jpg“: nicht lesbar".into()],
    );
    let pdf = write_pdf(&render_letter(&doc, &fonts()).unwrap(), "overview.pdf");
    let text = poppler("pdftotext", &["-layout"], &pdf);
    assert!(text.contains("Anlage"), "{text}");
    assert!(!text.contains("Anlagen"), "one enclosure, listed in detail: {text}");
    assert!(text.contains("„b.jpg“: nicht lesbar"), "{text}");
}

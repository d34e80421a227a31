//! Structural accessibility of the pages as served: every form control has
//! a label, images have alternative text, the language is German, headings
//! do not skip levels, and the stylesheet's text colours meet WCAG AA
//! contrast on their backgrounds.
use axum::http::StatusCode;
use regex::Regex;

use crate::helpers::{TENANT, spawn_app};
use nachweis::store::review::Role;

/// Every problem found on one page.
fn problems(html: &str) -> Vec<String> {
    let mut out = Vec::new();
    if !html.contains("<html lang=\"de\">") {
        out.push("the page does not declare lang=\"de\"".into());
    }
    let labels: Vec<String> = Regex::new(r#"<label for="([^"]+)""#).unwrap().captures_iter(html).map(|c| c[1].to_string()).collect();
    let control = Regex::new(r#"<(input|select|textarea)\b([^>]*)>"#).unwrap();
    for c in control.captures_iter(html) {
        let attrs = &c[2];
        if attrs.contains("type=\"hidden\"") {
            continue;
        }
        let id = Regex::new(r#"\bid="([^"]+)""#).unwrap().captures(attrs).map(|m| m[1].to_string());
        let labelled = attrs.contains("aria-label=") || id.as_ref().is_some_and(|id| labels.contains(id));
        if !labelled {
            out.push(format!("<{}{attrs}> has no label", &c[1]));
        }
    }
    for c in Regex::new(r#"<img\b([^>]*)>"#).unwrap().captures_iter(html) {
        if !c[1].contains("alt=\"") {
            out.push(format!("<img{}> has no alt text", &c[1]));
        }
    }
    for c in Regex::new(r#"<button\b([^>]*)>(.*?)</button>"#).unwrap().captures_iter(html) {
        if c[2].trim().is_empty() && !c[1].contains("aria-label=") {
            out.push(format!("a button without a name: <button{}>", &c[1]));
        }
    }
    let levels: Vec<u32> = Regex::new(r"<h([1-6])\b").unwrap().captures_iter(html).map(|c| c[1].parse().unwrap()).collect();
    if levels.iter().filter(|l| **l == 1).count() != 1 {
        out.push(format!("expected exactly one h1, found headings {levels:?}"));
    }
    for w in levels.windows(2) {
        if w[1] > w[0] + 1 {
            out.push(format!("heading level jumps from h{} to h{}", w[0], w[1]));
        }
    }
    out
}

#[tokio::test]
async fn every_page_labels_its_controls_and_keeps_its_headings_in_order() {
    let app = spawn_app().await;
    let case = app.seed("uvg-19-verschluesselt-leer-kaputt").await;
    let anna = app.caseworker("anna").await;
    app.add_user("revision", Role::Auditor, TENANT).await;
    let auditor = app.sign_in("revision").await;
    // The case view as the caseworker who holds it (with every form on it).
    app.post_form(&format!("/faelle/{case}/uebernehmen"), Some(&anna.cookie), &[("csrf", &anna.csrf)]).await;
    let pages = [
        ("/anmelden".to_string(), None),
        ("/faelle".to_string(), Some(&anna.cookie)),
        ("/faelle?ergebnis=incomplete&sortierung=ergebnis".to_string(), Some(&anna.cookie)),
        (format!("/faelle/{case}"), Some(&anna.cookie)),
        (format!("/faelle/{case}/protokoll"), Some(&auditor.cookie)),
        ("/protokoll".to_string(), Some(&auditor.cookie)),
        ("/gibt-es-nicht".to_string(), Some(&anna.cookie)),
    ];
    let mut all = Vec::new();
    for (path, cookie) in pages {
        let r = app.get(&path, cookie.map(|c| c.as_str())).await;
        assert!(r.status == StatusCode::OK || r.status == StatusCode::NOT_FOUND, "{path}: {}", r.status);
        all.extend(problems(&r.text()).into_iter().map(|p| format!("{path}: {p}")));
    }
    assert!(all.is_empty(), "{}", all.join("\n"));
}

/// sRGB relative luminance (WCAG 2.1).
fn luminance(hex: &str) -> f64 {
    let v = u32::from_str_radix(hex.trim_start_matches('#'), 16).unwrap();
    let channel = |c: u32| {
        let c = f64::from(c) / 255.0;
        if c <= 0.03928 { c / 12.92 } else { ((c + 0.055) / 1.055).powf(2.4) }
    };
    0.2126 * channel(v >> 16 & 0xff) + 0.7152 * channel(v >> 8 & 0xff) + 0.0722 * channel(v & 0xff)
}

fn contrast(a: &str, b: &str) -> f64 {
    let (la, lb) = (luminance(a), luminance(b));
    (la.max(lb) + 0.05) / (la.min(lb) + 0.05)
}

#[test]
fn the_stylesheets_text_colours_meet_wcag_aa_contrast() {
    let css = std::fs::read_to_string(crate::helpers::root().join("src/web/static/app.css")).unwrap();
    let var = |name: &str| -> String {
        let re = Regex::new(&format!(r"--{name}:\s*(#[0-9a-fA-F]{{6}})")).unwrap();
        re.captures(&css).unwrap_or_else(|| panic!("--{name} is defined")).get(1).unwrap().as_str().to_string()
    };
    // (text, background) pairs the stylesheet puts together.
    let pairs = [
        ("ink", "bg"), ("muted", "bg"), ("muted", "soft"), ("accent", "bg"), ("accent-ink", "accent"),
        ("ok", "ok-bg"), ("warn", "warn-bg"), ("bad", "bad-bg"), ("ink", "soft"), ("ink", "warn-bg"),
    ];
    for (fg, bg) in pairs {
        let ratio = contrast(&var(fg), &var(bg));
        assert!(ratio >= 4.5, "--{fg} on --{bg}: {ratio:.2}:1 is below 4.5:1");
    }
}

#[test]
fn the_checker_itself_finds_unlabelled_controls_missing_alt_text_and_skipped_headings() {
    let bad = r#"<html lang="en"><h1>A</h1><h3>B</h3><input name="x"><img src="a.png"><button></button>"#;
    let found = problems(bad);
    assert_eq!(found.len(), 5, "{found:?}");
    let good = r#"<html lang="de"><h1>A</h1><h2>B</h2><label for="x">X</label><input id="x" name="x"><img src="a.png" alt="Seite 1"><button>OK</button>"#;
    assert!(problems(good).is_empty(), "{:?}", problems(good));
}

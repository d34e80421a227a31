//! House rules checked as tests: every module opens with a `//!` doc, and
//! the pure core imports no I/O crates (STYLE.md §2, §8).
use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

fn sources(sub: &str) -> Vec<PathBuf> {
    let mut v = Vec::new();
    rust_files(&Path::new(env!("CARGO_MANIFEST_DIR")).join(sub), &mut v);
    v.sort();
    v
}

#[test]
fn every_module_opens_with_a_doc_comment() {
    let mut undocumented = Vec::new();
    for f in sources("src").into_iter().chain(sources("tests")).chain(sources("benches")) {
        let text = std::fs::read_to_string(&f).unwrap();
        let first = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
        if !first.starts_with("//!") {
            undocumented.push(f.display().to_string());
        }
    }
    assert!(undocumented.is_empty(), "modules without a //! doc: {undocumented:#?}");
}

#[test]
fn the_domain_core_does_no_io() {
    let forbidden = ["tokio", "sqlx", "lapin", "axum", "std::fs", "std::net", "std::process", "reqwest", "tesseract"];
    let mut offenders = Vec::new();
    for f in sources("src/domain") {
        let text = std::fs::read_to_string(&f).unwrap();
        for word in forbidden {
            if text.lines().any(|l| !l.trim_start().starts_with("//") && l.contains(word)) {
                offenders.push(format!("{} uses {word}", f.display()));
            }
        }
    }
    assert!(offenders.is_empty(), "{offenders:#?}");
}

//! Where the shared test corpora are (`../shared/corpus`, outside the
//! project, not copied into it): `NACHWEIS_CORPUS_DIR` if set, else beside
//! the project, else beside the repository this checkout was cloned from
//! (a fresh `git clone` of the checkout into a temporary directory).
use std::path::{Path, PathBuf};

pub fn corpus_dir() -> PathBuf {
    let project = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut tried = Vec::new();
    if let Some(dir) = std::env::var_os("NACHWEIS_CORPUS_DIR") {
        return PathBuf::from(dir);
    }
    let beside = project.join("../shared/corpus");
    if beside.is_dir() {
        return beside;
    }
    tried.push(beside);
    let origin = std::process::Command::new("git")
        .args(["-C"])
        .arg(project)
        .args(["config", "--get", "remote.origin.url"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    if let Some(origin) = origin.filter(|o| Path::new(o).is_dir()) {
        let beside_origin = Path::new(&origin).join("../shared/corpus");
        if beside_origin.is_dir() {
            return beside_origin;
        }
        tried.push(beside_origin);
    }
    panic!("the shared test corpus is not at {tried:?}; set NACHWEIS_CORPUS_DIR to the directory that holds pdf_robustness/, ocr_gt_german/ and german_admin_docs/");
}

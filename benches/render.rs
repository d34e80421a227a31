//! Rendering benchmark: the approved-letter PDF and the case view's page
//! images, each beside a baseline measured in the same run, printed as a table.
//!
//! Run with `cargo bench --bench render` (or `--profile dev` for a quick
//! look). Rows: (a) a two-page letter, full render vs layout only; (b) a
//! text PDF page to PNG vs poppler's `pdftoppm`; (c) the same page with word
//! boxes vs `pdftoppm` + the `tesseract` CLI (TSV); (d) a phone photo with
//! and without word boxes.
use chrono::NaiveDate;
use nachweis::config::Settings;
use nachweis::domain::bundle::Manifest;
use nachweis::domain::{Context, process};
use nachweis::extract::PageRenderer;
use nachweis::letter::{Fonts, LetterDocument, editable_body, page_count, render_letter};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Median wall time of `runs` calls.
fn median(runs: usize, mut f: impl FnMut()) -> Duration {
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect();
    times.sort();
    times[times.len() / 2]
}

fn row(what: &str, d: Duration, note: &str) {
    println!("{what:<52} {:>10.1}  {note}", d.as_secs_f64() * 1000.0);
}

fn ratio(ours: Duration, theirs: Duration, name: &str) {
    println!("{:<52} {:>10.2}x", format!("  ratio ours / {name}"), ours.as_secs_f64() / theirs.as_secs_f64().max(1e-9));
}

fn letter() -> LetterDocument {
    let schemas = nachweis::startup::load_schemas(&root().join("schemas")).expect("schemas");
    let bytes = std::fs::read(root().join("fixtures/bundles/uvg-03-viele-fehlen/manifest.json")).unwrap();
    let manifest = Manifest::parse(&bytes).unwrap();
    let schema = schemas.for_bundle(&manifest.procedure, manifest.tenant.as_deref()).unwrap();
    let letterhead = Settings::default().letterhead;
    let ctx = Context {
        schema,
        catalogue: &schemas.catalogue,
        letterhead: &letterhead,
        today: NaiveDate::from_ymd_opt(2026, 11, 23).unwrap(),
        case_reference: "UVG-2026-000123",
    };
    let draft = process(&manifest, &[], &ctx).draft;
    LetterDocument::from_draft(&draft, editable_body(&draft), vec!["Merkblatt".into()])
}

fn tool(program: &str, args: &[&str]) -> bool {
    Command::new(program).args(args).stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success())
}

fn main() {
    let fonts = Fonts::load(&Settings::default().fonts_dir).expect("fonts (fonts-dejavu-core)");
    let doc = letter();
    let pages = page_count(&doc, &fonts).unwrap();
    let pdf = render_letter(&doc, &fonts).unwrap();
    println!("\n(a) letter PDF ({pages} pages, {} bytes), median of 50", pdf.len());
    println!("{:<52} {:>10}  note", "what", "ms");
    let full = median(50, || {
        render_letter(&doc, &fonts).unwrap();
    });
    let layout = median(50, || {
        page_count(&doc, &fonts).unwrap();
    });
    let load = median(10, || {
        Fonts::load(&Settings::default().fonts_dir).unwrap();
    });
    row("render_letter (layout, subsetting, PDF)", full, "per approval");
    row("baseline: layout only (page_count)", layout, "line breaking from glyph advances");
    row("Fonts::load (once at start-up)", load, "two DejaVu faces");
    ratio(full, layout, "layout only");

    let program = PathBuf::from(env!("CARGO_BIN_EXE_nachweis"));
    let renderer = PageRenderer::new(program, PageRenderer::default_limits());
    let pdf_path = root().join("fixtures/bundles/uvg-26-handyfotos/Meldebescheinigung_online.pdf");
    let pdf_bytes = std::fs::read(&pdf_path).unwrap();
    let tmp = std::env::temp_dir().join(format!("nachweis-bench-render-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    let out = |name: &str| tmp.join(name).display().to_string();

    println!("\n(b) text PDF page → PNG (long side 1600 px), median of 10; one sandboxed child per page");
    println!("{:<52} {:>10}  note", "what", "ms");
    let ours = median(10, || {
        renderer.render_page(&pdf_bytes, "application/pdf", 1, false).unwrap();
    });
    row("PageRenderer::render_page(…, false)", ours, "hayro in the sandbox, PNG");
    let pdf_arg = pdf_path.display().to_string();
    if tool("pdftoppm", &["-v"]) {
        let theirs = median(10, || {
            assert!(tool("pdftoppm", &["-f", "1", "-l", "1", "-scale-to", "1600", "-png", &pdf_arg, &out("poppler")]));
        });
        row("baseline: pdftoppm -scale-to 1600 -png", theirs, "poppler, no sandbox");
        ratio(ours, theirs, "pdftoppm");
    }

    println!("\n(c) the same page with word boxes, median of 3");
    println!("{:<52} {:>10}  note", "what", "ms");
    let ours_words = median(3, || {
        renderer.render_page(&pdf_bytes, "application/pdf", 1, true).unwrap();
    });
    row("PageRenderer::render_page(…, true)", ours_words, "300 dpi render + Tesseract deu, TSV");
    if tool("pdftoppm", &["-v"]) && tool("tesseract", &["--version"]) {
        let theirs = median(3, || {
            assert!(tool("pdftoppm", &["-f", "1", "-l", "1", "-r", "300", "-gray", "-png", "-singlefile", &pdf_arg, &out("page300")]));
            let status = Command::new("tesseract")
                .args([&out("page300.png"), &out("words"), "-l", "deu", "--psm", "3", "tsv"])
                .env("OMP_THREAD_LIMIT", "1")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .unwrap();
            assert!(status.success());
        });
        row("baseline: pdftoppm -r 300 + tesseract … tsv", theirs, "CLI tools, no sandbox");
        ratio(ours_words, theirs, "CLI tools");
    }

    println!("\n(d) phone photo (2560×1920, sideways), median of 3");
    println!("{:<52} {:>10}  note", "what", "ms");
    let photo = std::fs::read(root().join("fixtures/bundles/uvg-26-handyfotos/IMG_20261119_213344.jpg")).unwrap();
    let plain = median(3, || {
        renderer.render_page(&photo, "image/jpeg", 1, false).unwrap();
    });
    let with_words = median(3, || {
        renderer.render_page(&photo, "image/jpeg", 1, true).unwrap();
    });
    let png_bytes = renderer.render_page(&photo, "image/jpeg", 1, false).unwrap().png.len();
    row("render_page(photo, false)", plain, &format!("decode, orientation detection, PNG of {} KiB", png_bytes >> 10));
    row("render_page(photo, true)", with_words, "plus OCR word boxes");
    ratio(with_words, plain, "without words");
    let _ = std::fs::remove_dir_all(Path::new(&tmp));
}

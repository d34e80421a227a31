//! Page images for the case view through the real sandboxed renderer
//! (`nachweis sandbox-render`): fixture PDFs and phone photos come back as
//! upright PNGs whose word boxes carry the classifier's evidence, and
//! hostile files from the shared corpus come back as typed errors, never
//! as a crash or a hang of the calling process.
use nachweis::domain::classify::classify_page;
use nachweis::domain::document::ProblemKind;
use nachweis::domain::highlight::{WordBox, highlighted_words};
use nachweis::extract::{DocumentFile, Extractor, Limits, PageRenderer, RenderError, RenderedPage, SandboxExtractor};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[path = "support/corpus.rs"]
mod support;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn program() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_nachweis"))
}

fn renderer() -> PageRenderer {
    PageRenderer::new(program(), PageRenderer::default_limits())
}

fn fixture(path: &str) -> Vec<u8> {
    std::fs::read(root().join("fixtures/bundles").join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The PNG decodes to the stated size.
fn decoded(page: &RenderedPage) -> image::RgbImage {
    let img = image::load_from_memory_with_format(&page.png, image::ImageFormat::Png).expect("a valid PNG").to_rgb8();
    assert_eq!(img.dimensions(), (page.width, page.height));
    assert!(page.width.max(page.height) <= nachweis::extract::render::DEFAULT_MAX_LONG_SIDE);
    img
}

/// What the real pipeline counts as evidence for this file's first page:
/// sandboxed extraction, then the classifier with the real catalogue.
fn evidence(path: &str, media_type: &str) -> (String, Vec<String>) {
    let schemas = nachweis::startup::load_schemas(&root().join("schemas")).expect("schemas");
    let extractor = SandboxExtractor::new(program(), Limits::default());
    let doc = DocumentFile { document_id: "d1".into(), media_type: media_type.into(), path: root().join("fixtures/bundles").join(path) };
    let extracted = extractor.extract_all(&[doc]).remove(0);
    let page = extracted.pages.first().unwrap_or_else(|| panic!("{path}: no page text: {:?}", extracted.problem));
    let verdict = classify_page(page, &schemas.catalogue, None);
    (verdict.doc_type, verdict.evidence)
}

fn words_of(page: &RenderedPage, idx: &[usize]) -> Vec<WordBox> {
    idx.iter().map(|&i| page.words[i].clone()).collect()
}

#[test]
fn a_fixture_pdf_page_renders_portrait_within_the_size_limit() {
    let bytes = fixture("uvg-26-handyfotos/Meldebescheinigung_online.pdf");
    let page = renderer().render_page(&bytes, "application/pdf", 1, false).unwrap();
    let img = decoded(&page);
    assert_eq!(page.page_count, 1);
    assert_eq!(page.height, 1600, "A4 portrait fills the long side");
    assert!((page.width as f64 / page.height as f64 - 210.0 / 297.0).abs() < 0.01, "A4 proportions: {}x{}", page.width, page.height);
    assert!(page.words.is_empty(), "no words unless asked for");
    assert_eq!(page.rotated_clockwise, 0);
    // Something is drawn: a text page has dark pixels, mostly white paper.
    let dark = img.pixels().filter(|p| p.0.iter().all(|&c| c < 100)).count();
    assert!(dark > 1000 && dark < img.pixels().len() / 4, "{dark} dark pixels");
}

#[test]
fn the_heading_of_a_pdf_page_is_found_in_its_word_boxes_and_highlighted() {
    let path = "uvg-26-handyfotos/Meldebescheinigung_online.pdf";
    let (doc_type, evidence) = evidence(path, "application/pdf");
    assert_eq!(doc_type, "meldebescheinigung");
    let page = renderer().render_page(&fixture(path), "application/pdf", 1, true).unwrap();
    decoded(&page);
    let marked = words_of(&page, &highlighted_words(&page.words, &evidence));
    let heading = marked.iter().find(|w| w.text == "Meldebescheinigung").unwrap_or_else(|| panic!("heading not highlighted: {marked:?}"));
    assert!(heading.y < page.height / 4, "the heading is at the top: {heading:?}");
    for w in &page.words {
        assert!(w.x + w.w <= page.width && w.y + w.h <= page.height, "box outside the image: {w:?}");
    }
}

#[test]
fn a_sideways_phone_photo_is_shown_upright_with_its_evidence_highlighted() {
    // The signed Mantelbogen was photographed sideways (landscape pixels,
    // no EXIF rotation): extraction reads it through Tesseract's orientation
    // detection, so the case view shows it turned upright.
    let path = "uvg-26-handyfotos/IMG_20261119_213344.jpg";
    let bytes = fixture(path);
    let source = image::load_from_memory(&bytes).unwrap();
    assert!(source.width() > source.height(), "the fixture is stored sideways");
    let (doc_type, evidence) = evidence(path, "image/jpeg");
    assert_eq!(doc_type, "antrag");
    let page = renderer().render_page(&bytes, "image/jpeg", 1, true).unwrap();
    decoded(&page);
    assert!(matches!(page.rotated_clockwise, 90 | 270), "turned by a quarter: {}", page.rotated_clockwise);
    assert!(page.height > page.width, "upright A4 is portrait: {}x{}", page.width, page.height);
    let marked = highlighted_words(&page.words, &evidence);
    assert!(!marked.is_empty(), "no evidence highlighted; evidence {evidence:?}, words {:?}", page.words.iter().map(|w| &w.text).collect::<Vec<_>>());
    // Upright text is read left to right: the boxes of one line are wide,
    // not tall, and share their top edge.
    let mantelbogen = page.words.iter().find(|w| w.text == "Mantelbogen").expect("the heading is read");
    assert!(mantelbogen.w > 3 * mantelbogen.h, "heading box not horizontal: {mantelbogen:?}");
    // Without word boxes the page turns the same way.
    let plain = renderer().render_page(&bytes, "image/jpeg", 1, false).unwrap();
    assert_eq!((plain.width, plain.height, plain.rotated_clockwise), (page.width, page.height, page.rotated_clockwise));
    assert!(plain.words.is_empty());
}

#[test]
fn no_upright_fixture_upload_is_turned_and_the_sideways_one_is() {
    // Every upload of every fixture bundle, first page. The generator made
    // exactly one upload sideways (bundle 26's Mantelbogen); ID cards, which
    // Tesseract's orientation detector takes for upside-down Bengali, must
    // stay as they are.
    let r = renderer();
    let mut turned = Vec::new();
    let mut rendered = 0;
    for bundle in nachweis::queue::local::bundle_dirs(&root().join("fixtures/bundles")).unwrap() {
        let manifest: serde_json::Value = serde_json::from_slice(&std::fs::read(bundle.join("manifest.json")).unwrap()).unwrap();
        for doc in manifest["documents"].as_array().unwrap() {
            let Some(path) = doc["path"].as_str() else { continue };
            let bytes = std::fs::read(bundle.join(path)).unwrap();
            match r.render_page(&bytes, doc["media_type"].as_str().unwrap_or(""), 1, false) {
                Ok(page) => {
                    rendered += 1;
                    if page.rotated_clockwise != 0 {
                        turned.push(format!("{}/{path} by {}°", bundle.file_name().unwrap().to_string_lossy(), page.rotated_clockwise));
                    }
                }
                Err(RenderError::Failed(e)) => panic!("{path}: renderer failed: {e}"),
                Err(_) => {}
            }
        }
    }
    assert!(rendered > 150, "only {rendered} uploads rendered");
    assert_eq!(turned, ["uvg-26-handyfotos/IMG_20261119_213344.jpg by 90°"]);
}

#[test]
fn the_birth_certificate_photo_has_its_heading_highlighted() {
    let path = "uvg-26-handyfotos/IMG_20261119_213410.jpg";
    let (doc_type, evidence) = evidence(path, "image/jpeg");
    assert_eq!(doc_type, "geburtsurkunde");
    let page = renderer().render_page(&fixture(path), "image/jpeg", 1, true).unwrap();
    decoded(&page);
    assert_eq!(page.rotated_clockwise, 0, "an upright photo stays as it is");
    let marked = words_of(&page, &highlighted_words(&page.words, &evidence));
    assert!(marked.iter().any(|w| w.text == "Geburtsurkunde"), "heading not highlighted: {marked:?} (evidence {evidence:?})");
}

#[test]
fn every_page_of_a_multi_page_scan_renders_and_the_next_one_is_its_own_error() {
    let bytes = fixture("uvg-15-sammelscan/Scan_20261112_0001.pdf");
    for n in 1..=3 {
        let page = renderer().render_page(&bytes, "application/pdf", n, false).unwrap();
        decoded(&page);
        assert_eq!(page.page_count, 3);
    }
    assert_eq!(renderer().render_page(&bytes, "application/pdf", 4, false), Err(RenderError::NoSuchPage { requested: 4, pages: 3 }));
    assert_eq!(renderer().render_page(&bytes, "application/pdf", 0, false), Err(RenderError::NoSuchPage { requested: 0, pages: 3 }));
    let photo = fixture("uvg-26-handyfotos/IMG_20261119_213410.jpg");
    assert_eq!(renderer().render_page(&photo, "image/jpeg", 2, false), Err(RenderError::NoSuchPage { requested: 2, pages: 1 }));
}

#[test]
fn a_multi_page_tiff_renders_its_page() {
    let bytes = fixture("uvg-21-docx-und-tiff/Vaterschaft.tif");
    let page = renderer().render_page(&bytes, "image/tiff", 1, false).unwrap();
    decoded(&page);
    assert!(page.page_count >= 1);
    let beyond = page.page_count + 1;
    assert_eq!(
        renderer().render_page(&bytes, "image/tiff", beyond, false),
        Err(RenderError::NoSuchPage { requested: beyond, pages: page.page_count })
    );
}

#[test]
fn unsupported_empty_and_oversized_uploads_are_typed_errors() {
    let docx = fixture("uvg-21-docx-und-tiff/Erklärung Getrenntleben.docx");
    let err = renderer().render_page(&docx, "application/vnd.openxmlformats-officedocument.wordprocessingml.document", 1, false).unwrap_err();
    assert!(matches!(err, RenderError::Unreadable { kind: ProblemKind::UnsupportedMediaType, .. }), "{err:?}");
    assert!(err.message_de().contains("Dateiformat"), "{}", err.message_de());

    let err = renderer().render_page(&[], "application/pdf", 1, false).unwrap_err();
    assert!(matches!(err, RenderError::Unreadable { kind: ProblemKind::Damaged, .. }), "{err:?}");

    let small = PageRenderer::new(program(), Limits { max_file_bytes: 1000, ..PageRenderer::default_limits() });
    let bytes = fixture("uvg-26-handyfotos/Meldebescheinigung_online.pdf");
    assert!(matches!(small.render_page(&bytes, "application/pdf", 1, false), Err(RenderError::TooLarge(_))));

    // A PNG whose header claims 100 000 × 100 000 pixels: refused before decoding.
    let mut bomb = Vec::new();
    image::codecs::png::PngEncoder::new(&mut bomb)
        .write_image(&[0u8; 4], 2, 2, image::ExtendedColorType::L8)
        .unwrap();
    bomb[16..20].copy_from_slice(&100_000u32.to_be_bytes());
    bomb[20..24].copy_from_slice(&100_000u32.to_be_bytes());
    let err = renderer().render_page(&bomb, "image/png", 1, false).unwrap_err();
    assert!(matches!(err, RenderError::TooLarge(_) | RenderError::Unreadable { .. }), "{err:?}");
}

use image::ImageEncoder as _;

#[test]
fn a_render_that_outlasts_its_budget_is_stopped_as_a_timeout() {
    // OCR of a photo takes about a second; 200 ms cannot be enough.
    let hasty = PageRenderer::new(program(), Limits { timeout: Duration::from_millis(200), ..PageRenderer::default_limits() });
    let started = Instant::now();
    let result = hasty.render_page(&fixture("uvg-26-handyfotos/IMG_20261119_213344.jpg"), "image/jpeg", 1, true);
    assert_eq!(result, Err(RenderError::Timeout));
    assert!(started.elapsed() < Duration::from_secs(5), "the child was not stopped in time: {:?}", started.elapsed());
}

#[test]
fn hostile_pdfs_from_the_shared_corpus_give_typed_errors_never_a_crash_or_hang() {
    let corpus = support::corpus_dir().join("pdf_robustness");
    let manifest = std::fs::read_to_string(corpus.join("MANIFEST.tsv")).expect("corpus MANIFEST.tsv");
    // (file, category, whether poppler opened it as encrypted with an empty password)
    let rows: Vec<(String, String, bool)> = manifest
        .lines()
        .skip(1)
        .filter_map(|l| {
            let cols: Vec<&str> = l.split('\t').collect();
            (cols.len() > 6).then(|| (cols[0].to_string(), cols[1].to_string(), cols[6] == "yes"))
        })
        .collect();
    let files: Vec<(String, String)> = rows.iter().map(|(f, c, _)| (f.clone(), c.clone())).collect();
    assert!(files.len() > 100, "corpus incomplete: {} files", files.len());
    let limits = Limits { timeout: Duration::from_secs(20), ..PageRenderer::default_limits() };
    let r = PageRenderer::new(program(), limits.clone());
    let next = std::sync::atomic::AtomicUsize::new(0);
    type Slot = std::sync::Mutex<Option<(Result<RenderedPage, RenderError>, Duration)>>;
    let results: Vec<Slot> = files.iter().map(|_| std::sync::Mutex::new(None)).collect();
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some((file, _)) = files.get(i) else { break };
                    let bytes = std::fs::read(corpus.join(file)).unwrap();
                    let started = Instant::now();
                    let result = r.render_page(&bytes, "application/pdf", 1, false);
                    *results[i].lock().unwrap() = Some((result, started.elapsed()));
                }
            });
        }
    });
    let mut table: std::collections::BTreeMap<String, std::collections::BTreeMap<&'static str, usize>> = Default::default();
    let mut failures = Vec::new();
    for (((file, category), slot), (_, _, opens_without_password)) in files.iter().zip(results).zip(&rows) {
        let (result, wall) = slot.into_inner().unwrap().unwrap();
        // Encrypted files: shown when an empty user password opens them,
        // otherwise reported as encrypted or damaged, never rendered blank.
        if category == "encrypted" && !opens_without_password {
            assert!(
                matches!(&result, Err(RenderError::Unreadable { kind: ProblemKind::Encrypted | ProblemKind::Damaged, .. })),
                "{file}: needs a password, got {:?}",
                result.as_ref().map(|p| p.page_count)
            );
        }
        assert!(wall <= limits.timeout + Duration::from_secs(3), "{file}: ran {wall:?}");
        let outcome = match &result {
            Ok(page) => {
                decoded(page);
                "rendered"
            }
            Err(RenderError::NoSuchPage { .. }) => "no_such_page",
            Err(RenderError::Unreadable { kind, .. }) => kind.as_str(),
            Err(RenderError::TooLarge(_)) => "too_large",
            Err(RenderError::Timeout) => "timeout",
            Err(RenderError::Failed(detail)) => {
                failures.push(format!("{file}: {detail}"));
                "failed"
            }
        };
        *table.entry(category.clone()).or_default().entry(outcome).or_default() += 1;
    }
    for (category, outcomes) in &table {
        println!("{category:<32} {outcomes:?}");
    }
    // `Failed` means the renderer itself broke (not the document): never
    // acceptable for a document, however hostile.
    assert!(failures.is_empty(), "renderer failures: {failures:#?}");
    let rendered: usize = table.values().map(|o| o.get("rendered").copied().unwrap_or(0)).sum();
    assert!(rendered > files.len() / 2, "most corpus files have a renderable first page, got {rendered}");
}

#[test]
fn a_missing_renderer_binary_is_a_failure_of_ours_not_of_the_document() {
    let r = PageRenderer::new(Path::new("/nonexistent/nachweis").to_path_buf(), PageRenderer::default_limits());
    let err = r.render_page(b"%PDF-1.4", "application/pdf", 1, false).unwrap_err();
    assert!(matches!(err, RenderError::Failed(_)), "{err:?}");
}

//! Hostile and odd inputs through the real sandbox: every file of the shared
//! robustness corpus (`../shared/corpus/pdf_robustness`, see its MANIFEST.tsv)
//! and of `german_admin_docs`, plus generated pixel and decompression bombs.
//!
//! The test process is the worker here: it must survive everything, and every
//! document must come back as text or as a typed problem within its limits.
use lopdf::{Document, Object, Stream, dictionary};
use nachweis::domain::document::{ExtractedDocument, ProblemKind, TextSource};
use nachweis::extract::{DocumentFile, Extractor, Limits, RunStats, SandboxExtractor};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[path = "support/corpus.rs"]
mod support;

fn corpus() -> PathBuf {
    support::corpus_dir()
}

fn sandbox(limits: Limits) -> SandboxExtractor {
    SandboxExtractor::new(PathBuf::from(env!("CARGO_BIN_EXE_nachweis")), limits)
}

/// Limits for the corpus run: production memory limits, but fewer OCR pages
/// and shorter timeouts so the whole corpus stays within a few minutes on two
/// cores (a few qpdf test files have 30 text-less pages).
fn corpus_limits() -> Limits {
    Limits {
        timeout: Duration::from_secs(30),
        timeout_per_page: Duration::from_secs(4),
        max_pages: 8,
        ..Limits::default()
    }
}

struct ManifestRow {
    file: String,
    category: String,
    /// pdfinfo opened the file (for encrypted files: the user password is empty).
    pdfinfo_encrypted_yes: bool,
}

fn manifest() -> Vec<ManifestRow> {
    let text = std::fs::read_to_string(corpus().join("pdf_robustness/MANIFEST.tsv")).expect("corpus manifest");
    text.lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let cols: Vec<&str> = line.split('\t').collect();
            ManifestRow {
                file: cols[0].to_string(),
                category: cols[1].to_string(),
                pdfinfo_encrypted_yes: cols.get(6) == Some(&"yes"),
            }
        })
        .collect()
}

fn media_type_for(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()).map(|e| e.to_ascii_lowercase()).as_deref() {
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("png") => "image/png",
        Some("tif" | "tiff") => "image/tiff",
        _ => "application/pdf",
    }
}

/// Runs documents through `extract_one` on `parallelism` threads, keeping the
/// per-run measurements the public `extract_all` does not return.
fn run_all(extractor: &SandboxExtractor, docs: &[DocumentFile]) -> Vec<(ExtractedDocument, RunStats)> {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let out: Vec<std::sync::Mutex<Option<(ExtractedDocument, RunStats)>>> =
        docs.iter().map(|_| std::sync::Mutex::new(None)).collect();
    std::thread::scope(|s| {
        for _ in 0..extractor.limits().parallelism {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(doc) = docs.get(i) else { break };
                    *out[i].lock().unwrap() = Some(extractor.extract_one(doc, 1));
                }
            });
        }
    });
    out.into_iter().map(|m| m.into_inner().unwrap().unwrap()).collect()
}

fn outcome(doc: &ExtractedDocument) -> String {
    match &doc.problem {
        None if doc.pages.iter().any(|p| p.source == TextSource::Ocr) => "text (ocr)".into(),
        None => "text".into(),
        Some(p) => p.kind.as_str().into(),
    }
}

#[test]
fn every_corpus_file_yields_text_or_a_typed_problem_within_its_limits() {
    let limits = corpus_limits();
    let extractor = sandbox(limits.clone());
    let rows = manifest();
    let mut docs: Vec<DocumentFile> = rows
        .iter()
        .map(|r| DocumentFile {
            document_id: r.file.clone(),
            media_type: "application/pdf".into(),
            path: corpus().join("pdf_robustness").join(&r.file),
        })
        .collect();
    let mut categories: Vec<String> = rows.iter().map(|r| r.category.clone()).collect();
    for dir in ["kinduvv_formular_festsetzung_unterhalt", "pauswv_personalausweis_muster", "pstv_personenstandsurkunden_muster"] {
        let mut files: Vec<PathBuf> = std::fs::read_dir(corpus().join("german_admin_docs").join(dir))
            .expect("german_admin_docs")
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        for path in files {
            docs.push(DocumentFile {
                document_id: format!("{dir}/{}", path.file_name().unwrap().to_string_lossy()),
                media_type: media_type_for(&path).into(),
                path,
            });
            categories.push(format!("german_admin_docs/{dir}"));
        }
    }
    assert!(docs.len() > 150, "corpus incomplete: {} files", docs.len());

    let started = Instant::now();
    let results = run_all(&extractor, &docs);
    let elapsed = started.elapsed();

    let mut table: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
    let mut max_rss = 0u64;
    for (((doc, stats), input), category) in results.iter().zip(&docs).zip(&categories) {
        assert_eq!(doc.document_id, input.document_id);
        match &doc.problem {
            None => assert!(
                doc.pages.iter().any(|p| !p.text.trim().is_empty()),
                "{}: no problem but no text",
                input.document_id
            ),
            Some(problem) => assert!(!problem.detail.is_empty(), "{}: empty detail", input.document_id),
        }
        // Within limits: no run may outlast the largest budget it could get.
        let budget = limits.timeout + limits.timeout_per_page * limits.max_total_pages + Duration::from_secs(2);
        assert!(stats.wall <= budget, "{} ran {:?}", input.document_id, stats.wall);
        max_rss = max_rss.max(stats.max_rss_bytes);
        *table.entry(category.clone()).or_default().entry(outcome(doc)).or_default() += 1;
    }
    assert!(max_rss < limits.address_space_bytes);

    println!("\n{:<50} outcomes", "category");
    for (category, outcomes) in &table {
        let cells: Vec<String> = outcomes.iter().map(|(k, n)| format!("{k}: {n}")).collect();
        println!("{category:<50} {}", cells.join(", "));
    }
    println!("{} files in {:.1} s, peak child RSS {} MiB", docs.len(), elapsed.as_secs_f64(), max_rss >> 20);
    let mut slowest: Vec<(Duration, &str, String)> =
        results.iter().map(|(d, s)| (s.wall, d.document_id.as_str(), outcome(d))).collect();
    slowest.sort_by(|a, b| b.0.cmp(&a.0));
    for (wall, id, outcome) in slowest.iter().take(8) {
        println!("  slowest: {:>5.1} s  {id} ({outcome}, {} pages)", wall.as_secs_f64(),
            results.iter().find(|(d, _)| d.document_id == *id).map_or(0, |(d, _)| d.pages.len()));
    }

    // Encrypted files: with an empty user password they are read, otherwise
    // they are reported as encrypted (never as text, never as a crash).
    for ((doc, _), row) in results.iter().zip(&rows) {
        if row.category != "encrypted" {
            continue;
        }
        let kind = doc.problem.as_ref().map(|p| p.kind);
        if row.pdfinfo_encrypted_yes {
            assert!(
                matches!(kind, None | Some(ProblemKind::NoText)),
                "{}: opens with an empty password, got {kind:?}",
                row.file
            );
        } else {
            assert!(
                matches!(kind, Some(ProblemKind::Encrypted) | Some(ProblemKind::Damaged)),
                "{}: needs a password, got {kind:?}",
                row.file
            );
        }
    }
    // No file may take the extractor down: crashes are contained, but in this
    // corpus none is expected at all.
    let crashed: Vec<&str> = results
        .iter()
        .filter(|(d, _)| d.problem.as_ref().is_some_and(|p| p.kind == ProblemKind::ExtractorCrashed))
        .map(|(d, _)| d.document_id.as_str())
        .collect();
    assert!(crashed.is_empty(), "crashed: {crashed:?}");
}

#[test]
fn the_garbled_court_form_is_ocrd_and_clean_text_layers_are_not() {
    let extractor = sandbox(Limits::default());
    let admin = corpus().join("german_admin_docs");
    let mut docs = Vec::new();
    for name in ["bgbl1_2015_j2018-1_0010.pdf", "bgbl1_2015_j2018-1_0020.pdf", "bgbl1_2015_j2018-1_0030.pdf"] {
        docs.push(admin.join("kinduvv_formular_festsetzung_unterhalt").join(name));
    }
    let clean: Vec<PathBuf> = {
        let mut v: Vec<PathBuf> = std::fs::read_dir(admin.join("pstv_personenstandsurkunden_muster"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        v.sort();
        v.push(corpus().join("pdf_robustness/py-pdf-sample-files/GeoTopo-komprimiert.pdf"));
        v.push(corpus().join("pdf_robustness/pdfjs/pdkids.pdf"));
        v
    };
    docs.extend(clean.iter().cloned());
    let inputs: Vec<DocumentFile> = docs
        .iter()
        .map(|p| DocumentFile { document_id: p.display().to_string(), media_type: "application/pdf".into(), path: p.clone() })
        .collect();
    let results = extractor.extract_all(&inputs);
    for doc in &results[..3] {
        assert!(doc.problem.is_none(), "{}: {:?}", doc.document_id, doc.problem);
        assert!(doc.pages.iter().all(|p| p.source == TextSource::Ocr), "{} not OCR'd", doc.document_id);
        let text: String = doc.pages.iter().map(|p| p.text.as_str()).collect();
        // The cipher reads "Voufsibmu"; OCR reads the printed word. (No text
        // in assertion messages: it would flood the test log.)
        assert!(text.contains("Unterhalt"), "{}: 'Unterhalt' not read", doc.document_id);
        assert!(!text.contains("Voufsibmu"), "{}: cipher text kept", doc.document_id);
    }
    let mut text_layer_pages = 0;
    for doc in &results[3..] {
        assert!(doc.problem.is_none(), "{}: {:?}", doc.document_id, doc.problem);
        let ocr_pages = doc.pages.iter().filter(|p| p.source == TextSource::Ocr).count();
        // GeoTopo has one image-only title page; everything else is text.
        assert!(ocr_pages <= 1, "{}: {ocr_pages} pages flagged for OCR", doc.document_id);
        text_layer_pages += doc.pages.len() - ocr_pages;
    }
    assert!(text_layer_pages > 170);
    let pstv = &results[3..3 + 6];
    assert!(pstv.iter().any(|d| d.pages[0].text.contains("Geburtsurkunde")));
}

/// A PNG of `width`×`height` 8-bit gray pixels, all white, streamed so that
/// the test itself never holds the pixels: tiny file, huge image.
fn png_bomb(path: &Path, width: u32, height: u32) {
    fn chunk(out: &mut Vec<u8>, kind: &[u8], data: &[u8]) {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let mut crc = flate2::Crc::new();
        crc.update(kind);
        crc.update(data);
        out.extend_from_slice(kind);
        out.extend_from_slice(data);
        out.extend_from_slice(&crc.sum().to_be_bytes());
    }
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&width.to_be_bytes());
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[8, 0, 0, 0, 0]);
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    let row = vec![0xFFu8; width as usize + 1];
    for _ in 0..height {
        z.write_all(&row).unwrap();
    }
    let idat = z.finish().unwrap();
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    chunk(&mut png, b"IHDR", &ihdr);
    chunk(&mut png, b"IDAT", &idat);
    chunk(&mut png, b"IEND", &[]);
    std::fs::write(path, png).unwrap();
}

/// A one-page A4 PDF with the given content stream and, optionally, an image
/// XObject `/Im1` in its resources.
fn one_page_pdf(content: Stream, image: Option<Stream>) -> Vec<u8> {
    let mut doc = Document::with_version("1.5");
    let pages_id = doc.new_object_id();
    let content_id = doc.add_object(content);
    let mut resources = dictionary! {};
    if let Some(image) = image {
        let image_id = doc.add_object(image);
        resources.set("XObject", dictionary! { "Im1" => image_id });
    }
    let page_id = doc.add_object(dictionary! {
        "Type" => "Page", "Parent" => pages_id, "Contents" => content_id, "Resources" => resources,
        "MediaBox" => vec![0.into(), 0.into(), 595.into(), 842.into()],
    });
    doc.objects.insert(
        pages_id,
        Object::Dictionary(dictionary! { "Type" => "Pages", "Kids" => vec![page_id.into()], "Count" => 1 }),
    );
    let catalog_id = doc.add_object(dictionary! { "Type" => "Catalog", "Pages" => pages_id });
    doc.trailer.set("Root", catalog_id);
    let mut out = Vec::new();
    doc.save_to(&mut out).unwrap();
    out
}

#[track_caller]
fn assert_refused_quickly(path: &Path, media_type: &str) -> String {
    let doc = DocumentFile { document_id: "bomb".into(), media_type: media_type.into(), path: path.to_path_buf() };
    let (result, stats) = sandbox(Limits::default()).extract_one(&doc, 1);
    let problem = result.problem.expect("a bomb is refused");
    assert_eq!(problem.kind, ProblemKind::TooLarge, "{problem:?}");
    assert!(stats.wall < Duration::from_secs(10), "took {:?}", stats.wall);
    assert!(stats.max_rss_bytes < 200 << 20, "child peaked at {} MiB", stats.max_rss_bytes >> 20);
    problem.detail
}

#[test]
fn a_20000_by_20000_png_pixel_bomb_is_refused_as_too_large_before_decoding() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bomb.png");
    png_bomb(&path, 20_000, 20_000);
    assert!(std::fs::metadata(&path).unwrap().len() < 2_000_000, "the bomb is a small file");
    let detail = assert_refused_quickly(&path, "image/png");
    assert!(detail.contains("20000"), "{detail}");
}

#[test]
fn a_pdf_whose_content_stream_inflates_to_300_mb_is_refused_as_too_large() {
    let dir = tempfile::tempdir().unwrap();
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
    let block = vec![b' '; 1 << 20];
    for _ in 0..300 {
        z.write_all(&block).unwrap();
    }
    let bomb = Stream::new(dictionary! { "Filter" => "FlateDecode" }, z.finish().unwrap()).with_compression(false);
    let path = dir.path().join("bomb.pdf");
    std::fs::write(&path, one_page_pdf(bomb, None)).unwrap();
    assert_refused_quickly(&path, "application/pdf");
}

#[test]
fn a_pdf_declaring_a_100000_by_100000_image_is_refused_as_too_large() {
    let dir = tempfile::tempdir().unwrap();
    let image = Stream::new(
        dictionary! {
            "Type" => "XObject", "Subtype" => "Image", "Width" => 100_000, "Height" => 100_000,
            "ColorSpace" => "DeviceGray", "BitsPerComponent" => 8, "Filter" => "FlateDecode",
        },
        vec![0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01],
    )
    .with_compression(false);
    let draw = Stream::new(dictionary! {}, b"q 595 0 0 842 0 0 cm /Im1 Do Q".to_vec());
    let bytes = one_page_pdf(draw, Some(image));
    let path = dir.path().join("huge_image.pdf");
    std::fs::write(&path, bytes).unwrap();
    assert_refused_quickly(&path, "application/pdf");
}

#[test]
fn a_file_above_the_size_limit_is_refused_without_reading_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.pdf");
    let file = std::fs::File::create(&path).unwrap();
    file.set_len(60_000_000).unwrap();
    let doc = DocumentFile { document_id: "big".into(), media_type: "application/pdf".into(), path };
    let result = sandbox(Limits::default()).extract_all(&[doc]).remove(0);
    assert_eq!(result.problem.unwrap().kind, ProblemKind::TooLarge);
}

#[test]
fn a_child_that_exceeds_its_time_limit_is_killed_and_reported_as_timeout() {
    // OCR of a full page cannot finish in 50 ms: the parent must kill the
    // child's process group and report a timeout, not wait.
    let limits = Limits { timeout: Duration::from_millis(50), timeout_per_page: Duration::ZERO, ..Limits::default() };
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/geburtsurkunde.png");
    let doc = DocumentFile { document_id: "slow".into(), media_type: "image/png".into(), path };
    let (result, stats) = sandbox(limits).extract_one(&doc, 1);
    assert_eq!(result.problem.unwrap().kind, ProblemKind::Timeout);
    assert!(stats.wall < Duration::from_secs(2));
}

#[test]
fn a_child_that_runs_out_of_memory_is_reported_as_crashed_not_fatal() {
    // 120 MiB of address space cannot hold Tesseract's model: the child
    // aborts on allocation failure, the worker carries on.
    let limits = Limits { address_space_bytes: 120 << 20, ..Limits::default() };
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/geburtsurkunde.png");
    let doc = DocumentFile { document_id: "oom".into(), media_type: "image/png".into(), path };
    let (result, _) = sandbox(limits).extract_one(&doc, 1);
    let problem = result.problem.expect("cannot succeed in 120 MiB");
    assert_eq!(problem.kind, ProblemKind::ExtractorCrashed, "{problem:?}");
}

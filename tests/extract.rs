//! End-to-end tests of the sandboxed extractor on small inputs made here or kept
//! in `tests/data/` (rendered with ImageMagick from DejaVu Sans): text PDFs,
//! scans, photos, rotated and tilted pages, CMYK, multi-page TIFF.
//!
//! Every test runs the real `nachweis sandbox-extract` child with Tesseract.
use lopdf::content::{Content, Operation};
use lopdf::{Document, Object, Stream, dictionary};
use nachweis::domain::document::{ExtractedDocument, ProblemKind, TextSource};
use nachweis::extract::{DocumentFile, Extractor, Limits, SandboxExtractor};
use std::path::{Path, PathBuf};

fn extractor() -> SandboxExtractor {
    SandboxExtractor::new(PathBuf::from(env!("CARGO_BIN_EXE_nachweis")), Limits::default())
}

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data").join(name)
}

fn extract(path: &Path, media_type: &str) -> ExtractedDocument {
    let doc = DocumentFile { document_id: "d1".into(), media_type: media_type.into(), path: path.to_path_buf() };
    extractor().extract_all(&[doc]).remove(0)
}

fn all_text(doc: &ExtractedDocument) -> String {
    doc.pages.iter().map(|p| p.text.as_str()).collect::<Vec<_>>().join("\n")
}

#[track_caller]
fn assert_words(doc: &ExtractedDocument, words: &[&str]) {
    assert!(doc.problem.is_none(), "unexpected problem: {:?}", doc.problem);
    let text = all_text(doc);
    for word in words {
        assert!(text.contains(word), "{word:?} not in extracted text:\n{text}");
    }
}

/// Writes `bytes` to a fresh temporary file named `name`.
fn temp_file(dir: &tempfile::TempDir, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

/// A one-page A4 PDF with the given lines in Helvetica (WinAnsi, so umlauts work).
fn text_pdf(lines: &[&str]) -> Vec<u8> {
    let mut doc = Document::with_version("1.5");
    let pages_id = doc.new_object_id();
    let font_id = doc.add_object(dictionary! {
        "Type" => "Font", "Subtype" => "Type1", "BaseFont" => "Helvetica", "Encoding" => "WinAnsiEncoding",
    });
    let mut ops = vec![Operation::new("BT", vec![]), Operation::new("Tf", vec!["F1".into(), 14.into()])];
    ops.push(Operation::new("Td", vec![72.into(), 760.into()]));
    for line in lines {
        // WinAnsi is Latin-1 for the characters used here.
        let bytes: Vec<u8> = line.chars().map(|c| c as u32 as u8).collect();
        ops.push(Operation::new("Tj", vec![Object::string_literal(bytes)]));
        ops.push(Operation::new("Td", vec![0.into(), (-24).into()]));
    }
    ops.push(Operation::new("ET", vec![]));
    let content = Content { operations: ops };
    let content_id = doc.add_object(Stream::new(dictionary! {}, content.encode().unwrap()));
    let page_id = doc.add_object(dictionary! {
        "Type" => "Page", "Parent" => pages_id, "Contents" => content_id,
        "Resources" => dictionary! { "Font" => dictionary! { "F1" => font_id } },
        "MediaBox" => vec![0.into(), 0.into(), 595.into(), 842.into()],
    });
    finish(doc, pages_id, vec![page_id])
}

/// A one-page PDF that is a single image filling the page (a scan).
fn image_pdf(image: Stream, width_pt: i64, height_pt: i64) -> Vec<u8> {
    let mut doc = Document::with_version("1.5");
    let pages_id = doc.new_object_id();
    let image_id = doc.add_object(image);
    let draw = format!("q {width_pt} 0 0 {height_pt} 0 0 cm /Im1 Do Q");
    let content_id = doc.add_object(Stream::new(dictionary! {}, draw.into_bytes()));
    let page_id = doc.add_object(dictionary! {
        "Type" => "Page", "Parent" => pages_id, "Contents" => content_id,
        "Resources" => dictionary! { "XObject" => dictionary! { "Im1" => image_id } },
        "MediaBox" => vec![0.into(), 0.into(), width_pt.into(), height_pt.into()],
    });
    finish(doc, pages_id, vec![page_id])
}

fn finish(mut doc: Document, pages_id: lopdf::ObjectId, kids: Vec<lopdf::ObjectId>) -> Vec<u8> {
    let count = kids.len() as i64;
    doc.objects.insert(
        pages_id,
        Object::Dictionary(dictionary! {
            "Type" => "Pages", "Kids" => kids.into_iter().map(Object::Reference).collect::<Vec<_>>(), "Count" => count,
        }),
    );
    let catalog_id = doc.add_object(dictionary! { "Type" => "Catalog", "Pages" => pages_id });
    doc.trailer.set("Root", catalog_id);
    let mut out = Vec::new();
    doc.save_to(&mut out).unwrap();
    out
}

fn gray_page() -> image::GrayImage {
    image::open(data("geburtsurkunde.png")).unwrap().into_luma8()
}

#[test]
fn a_text_pdf_is_read_from_its_text_layer() {
    let dir = tempfile::tempdir().unwrap();
    let pdf = text_pdf(&[
        "Meldebescheinigung nach § 18 Bundesmeldegesetz",
        "Familienname: Beispiel",
        "Vornamen: Anna Sophie",
        "Anschrift: Lindenweg 4, 12345 Musterstadt",
        "Die Angaben entsprechen dem Melderegister der Gemeinde.",
        "Ausgestellt durch das Bürgeramt der Stadt Musterstadt.",
    ]);
    let doc = extract(&temp_file(&dir, "melde.pdf", &pdf), "application/pdf");
    assert_words(&doc, &["Meldebescheinigung", "Beispiel", "Lindenweg", "Bürgeramt"]);
    assert_eq!(doc.pages.len(), 1);
    assert_eq!(doc.pages[0].source, TextSource::TextLayer);
    assert_eq!(doc.pages[0].ocr_confidence, None);
}

#[test]
fn an_image_only_pdf_with_a_jpeg_scan_is_read_by_ocr() {
    let dir = tempfile::tempdir().unwrap();
    let page = gray_page();
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 90).encode_image(&page).unwrap();
    let (w, h) = page.dimensions();
    let stream = Stream::new(
        dictionary! {
            "Type" => "XObject", "Subtype" => "Image", "Width" => w as i64, "Height" => h as i64,
            "ColorSpace" => "DeviceGray", "BitsPerComponent" => 8, "Filter" => "DCTDecode",
        },
        jpeg,
    )
    .with_compression(false);
    // 150 dpi image: points = pixels * 72 / 150.
    let pdf = image_pdf(stream, (w * 72 / 150) as i64, (h * 72 / 150) as i64);
    let doc = extract(&temp_file(&dir, "scan.pdf", &pdf), "application/pdf");
    assert_words(&doc, &["Geburtsurkunde", "Standesamt", "Musterstadt"]);
    assert_eq!(doc.pages[0].source, TextSource::Ocr);
    assert!(doc.pages[0].ocr_confidence.unwrap() > 60.0);
}

#[test]
fn an_image_only_pdf_with_a_flate_image_is_rendered_and_read() {
    let dir = tempfile::tempdir().unwrap();
    let page = gray_page();
    let (w, h) = page.dimensions();
    let mut stream = Stream::new(
        dictionary! {
            "Type" => "XObject", "Subtype" => "Image", "Width" => w as i64, "Height" => h as i64,
            "ColorSpace" => "DeviceGray", "BitsPerComponent" => 8,
        },
        page.into_raw(),
    );
    stream.compress().unwrap();
    let pdf = image_pdf(stream, (w * 72 / 150) as i64, (h * 72 / 150) as i64);
    let doc = extract(&temp_file(&dir, "scan.pdf", &pdf), "application/pdf");
    assert_words(&doc, &["Geburtsurkunde", "Familienname", "Beispiel"]);
    assert_eq!(doc.pages[0].source, TextSource::Ocr);
}

#[test]
fn a_png_of_german_text_is_read_with_umlauts_in_nfc() {
    let doc = extract(&data("geburtsurkunde.png"), "image/png");
    assert_words(&doc, &["Geburtsurkunde", "Standesamt", "Lena", "Müller"]);
    // NFC: "ü" is one code point, not "u" + combining diaeresis.
    assert!(!all_text(&doc).contains('\u{308}'));
    assert_eq!(doc.pages[0].source, TextSource::Ocr);
}

#[test]
fn an_upside_down_scan_is_read_right_way_up() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("upside_down.png");
    image::imageops::rotate180(&gray_page()).save(&path).unwrap();
    let doc = extract(&path, "image/png");
    assert_words(&doc, &["Geburtsurkunde", "Standesamt", "Musterstadt"]);
}

#[test]
fn a_sideways_scan_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sideways.png");
    image::imageops::rotate270(&gray_page()).save(&path).unwrap();
    let doc = extract(&path, "image/png");
    assert_words(&doc, &["Geburtsurkunde", "Standesamt", "Musterstadt"]);
}

#[test]
fn a_scan_tilted_by_four_degrees_is_read() {
    let doc = extract(&data("tilted.png"), "image/png");
    assert_words(&doc, &["Geburtsurkunde", "Standesamt", "Musterstadt"]);
}

#[test]
fn a_phone_photo_is_turned_upright_from_its_exif_orientation() {
    // Pixels stored rotated, EXIF Orientation 6 ("rotate 90° clockwise to view").
    let doc = extract(&data("phone_photo_exif_rotated.jpg"), "image/jpeg");
    assert_words(&doc, &["Geburtsurkunde", "Standesamt", "Musterstadt"]);
}

#[test]
fn a_cmyk_jpeg_is_read() {
    let doc = extract(&data("cmyk.jpg"), "image/jpeg");
    assert_words(&doc, &["Geburtsurkunde", "Standesamt", "Musterstadt"]);
}

#[test]
fn every_page_of_a_multi_page_fax_tiff_is_read() {
    let doc = extract(&data("two_pages_g4.tif"), "image/tiff");
    assert_eq!(doc.pages.len(), 2);
    assert!(doc.pages[0].text.contains("Geburtsurkunde"), "{}", doc.pages[0].text);
    assert!(doc.pages[1].text.contains("Meldebescheinigung"), "{}", doc.pages[1].text);
}

#[test]
fn a_png_declared_as_pdf_is_read_by_what_its_bytes_are() {
    let doc = extract(&data("geburtsurkunde.png"), "application/pdf");
    assert_words(&doc, &["Geburtsurkunde"]);
}

#[test]
fn a_word_document_is_reported_as_unsupported() {
    let dir = tempfile::tempdir().unwrap();
    // The start of an OOXML (zip) container.
    let path = temp_file(&dir, "antrag.docx", b"PK\x03\x04\x14\x00\x06\x00word/document.xml");
    let doc = extract(&path, "application/vnd.openxmlformats-officedocument.wordprocessingml.document");
    assert_eq!(doc.problem.unwrap().kind, ProblemKind::UnsupportedMediaType);
}

#[test]
fn a_jpeg_cut_off_inside_its_header_is_reported_as_damaged() {
    // (A JPEG cut off in its image data decodes partially, like a viewer shows
    // it; that is deliberate: phone uploads are sometimes truncated.)
    let dir = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(data("cmyk.jpg")).unwrap();
    let path = temp_file(&dir, "cut.jpg", &bytes[..100]);
    let doc = extract(&path, "image/jpeg");
    assert_eq!(doc.problem.unwrap().kind, ProblemKind::Damaged);
}

#[test]
fn a_blank_page_is_reported_as_having_no_text() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("blank.png");
    image::GrayImage::from_pixel(1240, 1754, image::Luma([255])).save(&path).unwrap();
    let doc = extract(&path, "image/png");
    assert_eq!(doc.problem.unwrap().kind, ProblemKind::NoText);
}

#[test]
fn a_missing_file_is_reported_without_starting_a_child() {
    let doc = extract(Path::new("/nonexistent/scan.pdf"), "application/pdf");
    assert_eq!(doc.problem.unwrap().kind, ProblemKind::MissingFile);
}

#[test]
fn results_come_back_in_input_order_when_run_in_parallel() {
    let docs: Vec<DocumentFile> = [("a", "geburtsurkunde.png"), ("b", "cmyk.jpg"), ("c", "two_pages_g4.tif")]
        .iter()
        .map(|(id, name)| DocumentFile { document_id: id.to_string(), media_type: "image/png".into(), path: data(name) })
        .collect();
    let results = extractor().extract_all(&docs);
    let ids: Vec<&str> = results.iter().map(|d| d.document_id.as_str()).collect();
    assert_eq!(ids, ["a", "b", "c"]);
    assert!(results.iter().all(|d| d.problem.is_none()));
    assert_eq!(results[2].pages.len(), 2);
}

#[test]
fn the_child_runs_without_network_and_reports_its_peak_memory() {
    let doc = DocumentFile { document_id: "d1".into(), media_type: "image/png".into(), path: data("geburtsurkunde.png") };
    let (result, stats) = extractor().extract_one(&doc, 1);
    assert!(result.problem.is_none());
    assert!(stats.max_rss_bytes > 10 << 20, "rss {}", stats.max_rss_bytes);
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        assert!(stats.network_isolated, "as root the child gets its own network namespace");
    }
}

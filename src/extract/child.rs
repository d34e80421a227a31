//! The extraction child: `nachweis sandbox-extract …` reads one untrusted file
//! and prints its page text as JSON lines (see `protocol.rs`).
//!
//! It runs under the rlimits and timeout set by `sandbox.rs`, so a parser crash,
//! stack overflow or allocation abort here costs one document, never the worker.
//! It never logs document text; its stderr carries only generic diagnostics.
use super::ocr::{self, OcrEngine, OcrError, OcrText};
use super::pdf::{PagePlan, PdfSource};
use super::protocol::{ChildArgs, ChildMessage};
use super::raster::{self, RasterPage, Sniffed};
use crate::domain::document::{ExtractedPage, ProblemKind, TextSource};
use std::io::{Read, Write};
use std::os::fd::FromRawFd;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use unicode_normalization::UnicodeNormalization;

/// Why a document could not be read, as the child reports it. Details are
/// generic (sizes, structure) and never quote document content.
#[derive(Debug, thiserror::Error)]
pub enum ExtractError {
    #[error("the PDF is protected by a password")]
    Encrypted,
    #[error("{0}")]
    Damaged(String),
    #[error("{0}")]
    TooLarge(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("the file could not be read: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Ocr(#[from] OcrError),
}

impl ExtractError {
    /// The stable problem id this error is reported as.
    pub fn kind(&self) -> ProblemKind {
        match self {
            ExtractError::Encrypted => ProblemKind::Encrypted,
            ExtractError::Damaged(_) => ProblemKind::Damaged,
            ExtractError::TooLarge(_) => ProblemKind::TooLarge,
            ExtractError::UnsupportedMediaType(_) => ProblemKind::UnsupportedMediaType,
            ExtractError::Io(_) => ProblemKind::MissingFile,
            // The OCR engine itself failed (e.g. no `deu` model): not the document's fault.
            ExtractError::Ocr(_) => ProblemKind::ExtractorCrashed,
        }
    }
}

/// Stack for page threads: Tesseract and the PDF parsers recurse deeply on
/// some inputs; an overflow still only kills this process.
const PAGE_THREAD_STACK: usize = 16 << 20;

/// Entry point of the child; returns the process exit code (0 whenever a
/// result line was written, 2 for a usage error).
pub fn run(args: &[String]) -> i32 {
    let args = match ChildArgs::parse(args) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("sandbox-extract: {e}");
            return 2;
        }
    };
    quiet_panics("sandbox-extract");
    let mut out = protocol_stdout();
    let mut send = |msg: &ChildMessage| {
        // A write error means the parent is gone; nothing left to do.
        let _ = serde_json::to_writer(&mut out, msg);
        let _ = out.write_all(b"\n");
        let _ = out.flush();
    };
    let result = extract(&args, &mut |pages| send(&ChildMessage::Started { pages }));
    match result {
        Ok(pages) => send(&ChildMessage::Finished { pages }),
        Err(e) => send(&ChildMessage::Failed { kind: e.kind(), detail: e.to_string() }),
    }
    0
}

/// Panic payloads can quote parsed content; a child reports only where a
/// panic happened.
pub(crate) fn quiet_panics(child: &'static str) {
    std::panic::set_hook(Box::new(move |info| {
        let at = info.location().map(|l| format!("{}:{}", l.file(), l.line())).unwrap_or_default();
        eprintln!("{child}: panic at {at}");
    }));
}

/// Keeps the protocol channel private: the real stdout moves to a new
/// descriptor and fd 1 becomes stderr, so stray prints from C libraries
/// cannot corrupt the JSON.
pub(crate) fn protocol_stdout() -> std::fs::File {
    // SAFETY: dup/dup2 on the process's own standard descriptors; the new
    // descriptor is owned by the returned File from here on.
    unsafe {
        let fd = libc::dup(1);
        if fd < 0 {
            return std::fs::File::from_raw_fd(1);
        }
        libc::dup2(2, 1);
        std::fs::File::from_raw_fd(fd)
    }
}

pub(crate) fn read_bounded(path: &std::path::Path, max: u64) -> Result<Vec<u8>, ExtractError> {
    let file = std::fs::File::open(path)?;
    let mut bytes = Vec::new();
    file.take(max + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max {
        return Err(ExtractError::TooLarge(format!("file exceeds {max} bytes")));
    }
    Ok(bytes)
}

/// Reads the document, calling `started` once the page count is known.
fn extract(args: &ChildArgs, started: &mut dyn FnMut(u32)) -> Result<Vec<ExtractedPage>, ExtractError> {
    let bytes = read_bounded(&args.path, args.limits.max_file_bytes)?;
    if bytes.is_empty() {
        return Err(ExtractError::Damaged("the file is empty".into()));
    }
    match sniff_kind(&bytes, &args.media_type)? {
        Sniffed::Pdf => extract_pdf(bytes, args, started),
        kind => extract_image(&bytes, kind, args, started),
    }
}

/// What the bytes are. The bytes decide; the declared media type only
/// matters when they say nothing.
pub(crate) fn sniff_kind(bytes: &[u8], media_type: &str) -> Result<Sniffed, ExtractError> {
    let declared = media_type.trim().to_ascii_lowercase();
    match raster::sniff(bytes) {
        Some(kind) => Ok(kind),
        None => match declared.as_str() {
            "application/pdf" => Ok(Sniffed::Pdf),
            "image/jpeg" | "image/jpg" | "image/png" | "image/tiff" => {
                Err(ExtractError::Damaged(format!("the file is not a valid {declared} image")))
            }
            _ => Err(ExtractError::UnsupportedMediaType(format!(
                "media type {declared:?} is not supported and the content is not PDF, JPEG, PNG or TIFF"
            ))),
        },
    }
}

fn extract_pdf(
    bytes: Vec<u8>,
    args: &ChildArgs,
    started: &mut dyn FnMut(u32),
) -> Result<Vec<ExtractedPage>, ExtractError> {
    let source = PdfSource::open(bytes, args.limits.max_total_pages, args.limits.max_image_pixels)?;
    started(source.page_count());
    let plans: Vec<PagePlan> = (1..=source.page_count()).map(|n| source.plan_page(n)).collect();
    let to_ocr: Vec<u32> = plans
        .iter()
        .enumerate()
        .filter(|(_, p)| matches!(p, PagePlan::Ocr(_)))
        .map(|(i, _)| i as u32 + 1)
        .collect();
    if to_ocr.len() as u32 > args.limits.max_pages {
        return Err(ExtractError::TooLarge(format!(
            "{} pages need OCR; the limit is {}",
            to_ocr.len(),
            args.limits.max_pages
        )));
    }
    let mut ocr_results = ocr_in_parallel(args.threads, to_ocr.len(), |engine, i| {
        let (image, dpi) = source.page_image(to_ocr[i], args.limits.max_image_pixels)?;
        recognize_unless_blank(engine, image, dpi)
    })
    .into_iter();
    let pages = plans
        .into_iter()
        .enumerate()
        .map(|(i, plan)| {
            let number = i as u32 + 1;
            match plan {
                PagePlan::TextLayer(text) => Ok(ExtractedPage {
                    number,
                    text: clean(&text),
                    source: TextSource::TextLayer,
                    ocr_confidence: None,
                }),
                PagePlan::Ocr(text_layer) => {
                    match ocr_page(number, ocr_results.next().expect("one result per OCR page")) {
                        // Rendering failed, but the page had some text of its own.
                        Err(_) if text_layer.as_ref().is_some_and(|t| !t.trim().is_empty()) => Ok(ExtractedPage {
                            number,
                            text: clean(text_layer.as_deref().unwrap_or_default()),
                            source: TextSource::TextLayer,
                            ocr_confidence: None,
                        }),
                        other => other,
                    }
                }
            }
        })
        .collect();
    settle(pages)
}

fn extract_image(
    bytes: &[u8],
    kind: Sniffed,
    args: &ChildArgs,
    started: &mut dyn FnMut(u32),
) -> Result<Vec<ExtractedPage>, ExtractError> {
    let pages = raster::decode_pages(bytes, kind, args.limits.max_image_pixels, args.limits.max_pages)?;
    started(pages.len() as u32);
    let slots: Vec<Mutex<Option<RasterPage>>> = pages.into_iter().map(|p| Mutex::new(Some(p))).collect();
    let results = ocr_in_parallel(args.threads, slots.len(), |engine, i| {
        let page = slots[i].lock().unwrap_or_else(|e| e.into_inner()).take();
        let page = page.expect("each page is taken once");
        recognize_unless_blank(engine, page.image, page.dpi)
    });
    let pages = results.into_iter().enumerate().map(|(i, r)| ocr_page(i as u32 + 1, r)).collect();
    settle(pages)
}

/// Share of dark pixels below which a page counts as blank (a speck of dust
/// on a white page); Tesseract would spend a second finding nothing.
const BLANK_DARK_SHARE: f64 = 0.0005;

fn recognize_unless_blank(engine: &mut OcrEngine, image: image::GrayImage, dpi: u32) -> Result<OcrText, ExtractError> {
    let (image, dpi) = ocr::fit_for_ocr(image, dpi);
    let dark = image.as_raw().iter().filter(|&&v| v < 128).count();
    if (dark as f64) < BLANK_DARK_SHARE * image.as_raw().len() as f64 {
        return Ok(OcrText { text: String::new(), confidence: 0.0 });
    }
    Ok(engine.recognize(&image, dpi)?)
}

/// A page whose OCR failed keeps its place (empty, source `none`); the error is
/// kept in case no page of the document yields text.
fn ocr_page(number: u32, result: Result<OcrText, ExtractError>) -> Result<ExtractedPage, (u32, ExtractError)> {
    match result {
        Ok(ocr) => Ok(ExtractedPage {
            number,
            text: clean(&ocr.text),
            source: TextSource::Ocr,
            ocr_confidence: Some(ocr.confidence),
        }),
        Err(e) => Err((number, e)),
    }
}

/// A document with some text is a result (failed pages stay empty); one where
/// every page failed reports the first page's error.
fn settle(pages: Vec<Result<ExtractedPage, (u32, ExtractError)>>) -> Result<Vec<ExtractedPage>, ExtractError> {
    let any_text = pages.iter().any(|p| matches!(p, Ok(page) if !page.text.trim().is_empty()));
    let mut first_error = None;
    let mut out = Vec::with_capacity(pages.len());
    for page in pages {
        match page {
            Ok(p) => out.push(p),
            Err((number, e)) => {
                out.push(ExtractedPage { number, text: String::new(), source: TextSource::None, ocr_confidence: None });
                first_error.get_or_insert(e);
            }
        }
    }
    match first_error {
        Some(e) if !any_text => Err(e),
        _ => Ok(out),
    }
}

/// Runs `job(engine, i)` for `i in 0..jobs` on up to `threads` threads, one
/// Tesseract instance per thread, created when the thread gets its first job.
fn ocr_in_parallel<F>(threads: usize, jobs: usize, job: F) -> Vec<Result<OcrText, ExtractError>>
where
    F: Fn(&mut OcrEngine, usize) -> Result<OcrText, ExtractError> + Sync,
{
    let next = AtomicUsize::new(0);
    let results: Vec<Mutex<Option<Result<OcrText, ExtractError>>>> = (0..jobs).map(|_| Mutex::new(None)).collect();
    std::thread::scope(|scope| {
        for _ in 0..threads.clamp(1, jobs.max(1)) {
            let worker = || {
                let mut engine: Option<OcrEngine> = None;
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= jobs {
                        break;
                    }
                    let result = match engine.as_mut() {
                        Some(e) => Ok(e),
                        None => OcrEngine::new().map(|e| engine.insert(e)),
                    }
                    .map_err(ExtractError::from)
                    .and_then(|e| {
                        catch_unwind(AssertUnwindSafe(|| job(e, i))).unwrap_or_else(|_| {
                            Err(ExtractError::Damaged("a page could not be decoded".into()))
                        })
                    });
                    *results[i].lock().unwrap_or_else(|e| e.into_inner()) = Some(result);
                }
            };
            std::thread::Builder::new()
                .stack_size(PAGE_THREAD_STACK)
                .spawn_scoped(scope, worker)
                .expect("spawning a page thread");
        }
    });
    results
        .into_iter()
        .map(|slot| {
            slot.into_inner()
                .unwrap_or_else(|e| e.into_inner())
                .unwrap_or_else(|| Err(ExtractError::Damaged("page was not processed".into())))
        })
        .collect()
}

/// Unicode NFC (so "ü" is one code point, as the classifier's patterns
/// expect), without control characters other than line breaks and tabs.
fn clean(text: &str) -> String {
    let text: String = text
        .nfc()
        .map(|c| if c == '\u{c}' { '\n' } else { c })
        .filter(|c| !c.is_control() || *c == '\n' || *c == '\t')
        .collect();
    text.trim_end().to_string()
}

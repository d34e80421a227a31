//! Page images for the case view: `PageRenderer` renders page N of an
//! uploaded file to PNG (at most ~1600 px on the long side), optionally with
//! Tesseract word boxes so the evidence phrases can be highlighted
//! (`domain::highlight`).
//!
//! Uploads are untrusted, so the work runs in `nachweis sandbox-render`, a
//! child under the same rlimits, timeout and network isolation as
//! extraction. Pages are shown the way extraction read them: EXIF
//! orientation applied, and pages that extraction OCRs (images, scans)
//! turned upright by Tesseract's orientation detection.
use super::child::{ExtractError, protocol_stdout, quiet_panics, read_bounded, sniff_kind};
use super::ocr::{self, OcrEngine};
use super::pdf::{PagePlan, PdfSource};
use super::protocol::{RenderArgs, RenderMessage};
use super::raster::{self, Sniffed};
use super::sandbox::{ChildProtocol, Ending, Limits, run_sandboxed, sandboxed_command};
use crate::domain::document::ProblemKind;
use crate::domain::highlight::WordBox;
use base64::Engine as _;
use image::{GrayImage, RgbImage};
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex};

/// Default long side of the PNG: sharp on a 1366×768 screen beside the
/// evidence, and small enough (~0.3–1 MB) to send per page view.
pub const DEFAULT_MAX_LONG_SIDE: u32 = 1600;

/// Whether to turn a page by what orientation detection reported. The
/// standalone detector is not restricted to the recognition language's
/// script the way extraction's OCR (PSM 1 with `deu`) is, so only Latin
/// results count; a quarter turn needs a confidence of 2, a half turn 7
/// (Tesseract's own `min_orientation_margin`: upside-down Latin text is
/// improbable). On the fixtures this turns the sideways photo and leaves
/// the ID cards alone, which the detector takes for upside-down Bengali.
fn trust_orientation(o: &ocr::Orientation) -> bool {
    let needed = match o.rotate_clockwise {
        90 | 270 => 2.0,
        180 => 7.0,
        _ => return false,
    };
    o.script == "Latin" && o.confidence >= needed
}

/// At most this many word boxes are accepted from a child (a dense A4 page
/// has ~600); more means something is wrong.
const MAX_WORDS: usize = 20_000;

/// A rendered page.
#[derive(Debug, Clone, PartialEq)]
pub struct RenderedPage {
    /// PNG bytes (8-bit RGB).
    pub png: Vec<u8>,
    pub width: u32,
    pub height: u32,
    /// Word boxes in the PNG's pixels, in reading order; empty unless asked for.
    pub words: Vec<WordBox>,
    /// Clockwise rotation applied to make the page upright (0, 90, 180, 270).
    pub rotated_clockwise: u16,
    /// Pages in the document, for paging through it.
    pub page_count: u32,
}

/// Why a page could not be rendered.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum RenderError {
    #[error("page {requested} does not exist; the document has {pages} page(s)")]
    NoSuchPage { requested: u32, pages: u32 },
    /// The document cannot be shown (damaged, encrypted, unsupported type,
    /// or it crashed the renderer).
    #[error("the document cannot be rendered ({}): {detail}", kind.as_str())]
    Unreadable { kind: ProblemKind, detail: String },
    #[error("too large to render: {0}")]
    TooLarge(String),
    #[error("rendering exceeded its time limit")]
    Timeout,
    /// Not the document's fault: no temporary file, no child process, no
    /// OCR model. Worth an alert, not a message to the applicant.
    #[error("the renderer failed: {0}")]
    Failed(String),
}

impl RenderError {
    /// The sentence the case view shows instead of the page, in German.
    pub fn message_de(&self) -> String {
        match self {
            RenderError::NoSuchPage { requested, pages } => {
                format!("Seite {requested} gibt es nicht; das Dokument hat {pages} Seite(n).")
            }
            RenderError::Unreadable { kind, .. } => {
                format!("Die Seite kann nicht angezeigt werden: {}.", kind.label_de())
            }
            RenderError::TooLarge(_) => "Die Datei ist zu groß, um sie hier anzuzeigen.".into(),
            RenderError::Timeout => "Die Seite konnte nicht in angemessener Zeit dargestellt werden.".into(),
            RenderError::Failed(_) => "Die Seitenansicht ist gerade nicht verfügbar (Systemfehler).".into(),
        }
    }
}

impl ChildProtocol for RenderMessage {
    fn announced_pages(&self) -> Option<u32> {
        None
    }
}

/// Renders pages in sandboxed children. Blocking: call it from
/// `spawn_blocking` (or a thread) in async code. Clones share one gate, so
/// at most `limits.parallelism` children run at once however many page
/// views arrive together; further calls wait for a free slot.
#[derive(Debug, Clone)]
pub struct PageRenderer {
    program: PathBuf,
    limits: Limits,
    max_long_side: u32,
    gate: Arc<Gate>,
}

/// A counting gate for the children of one `PageRenderer`.
#[derive(Debug)]
struct Gate {
    running: Mutex<usize>,
    freed: Condvar,
    max: usize,
}

impl Gate {
    fn enter(&self) -> GateSlot<'_> {
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        while *running >= self.max {
            running = self.freed.wait(running).unwrap_or_else(|e| e.into_inner());
        }
        *running += 1;
        GateSlot(self)
    }
}

/// A held slot; leaving it (also by panic) frees it.
struct GateSlot<'a>(&'a Gate);

impl Drop for GateSlot<'_> {
    fn drop(&mut self) {
        *self.0.running.lock().unwrap_or_else(|e| e.into_inner()) -= 1;
        self.0.freed.notify_one();
    }
}

impl PageRenderer {
    /// `program` is the `nachweis` binary (`std::env::current_exe()` in the
    /// server, `env!("CARGO_BIN_EXE_nachweis")` in tests); `limits` are the
    /// sandbox limits, whose `timeout` bounds one page (see `Self::limits`).
    pub fn new(program: PathBuf, limits: Limits) -> Self {
        let gate = Arc::new(Gate { running: Mutex::new(0), freed: Condvar::new(), max: limits.parallelism.max(1) });
        PageRenderer { program, limits, max_long_side: DEFAULT_MAX_LONG_SIDE, gate }
    }

    /// Sandbox limits for one page view: extraction's memory and size
    /// limits, 30 s for the page (a render takes 0.1–1 s, with word boxes
    /// 1–3 s), and one child per core at once.
    pub fn default_limits() -> Limits {
        Limits { timeout: std::time::Duration::from_secs(30), ..Limits::default() }
    }

    /// Changes the PNG's maximum long side (default 1600 px).
    pub fn with_max_long_side(mut self, pixels: u32) -> Self {
        self.max_long_side = pixels.clamp(16, 10_000);
        self
    }

    /// Renders page `page` (1-based) of a document. With `with_words`, the
    /// page is also OCR'd and its word boxes returned (1–5 s more).
    #[tracing::instrument(skip_all, fields(page = page, bytes = bytes.len(), with_words = with_words))]
    pub fn render_page(&self, bytes: &[u8], media_type: &str, page: u32, with_words: bool) -> Result<RenderedPage, RenderError> {
        if bytes.len() as u64 > self.limits.max_file_bytes {
            return Err(RenderError::TooLarge(format!(
                "{} bytes exceed the limit of {} bytes",
                bytes.len(),
                self.limits.max_file_bytes
            )));
        }
        // A private (0600) file the child opens by path; removed on drop.
        let mut file = tempfile::Builder::new()
            .prefix("nachweis-page-")
            .tempfile()
            .map_err(|e| RenderError::Failed(format!("cannot create a temporary file: {e}")))?;
        file.write_all(bytes)
            .and_then(|()| file.flush())
            .map_err(|e| RenderError::Failed(format!("cannot write the temporary file: {e}")))?;
        let args = RenderArgs {
            media_type: media_type.to_string(),
            page,
            max_long_side: self.max_long_side,
            words: with_words,
            limits: self.limits.child_limits(),
            path: file.path().to_path_buf(),
        };
        let command = sandboxed_command(&self.program, "sandbox-render", args.to_argv(), &self.limits);
        let slot = self.gate.enter();
        let (ending, stderr, stats) = run_sandboxed::<RenderMessage>(command, &self.limits, "page-render");
        drop(slot);
        tracing::debug!(message = "Page render child finished.", wall_ms = stats.wall.as_millis() as u64, max_rss_mb = stats.max_rss_bytes >> 20);
        self.interpret(ending, &stderr, page)
    }

    fn interpret(&self, ending: Ending<RenderMessage>, stderr: &[u8], page: u32) -> Result<RenderedPage, RenderError> {
        let stderr = String::from_utf8_lossy(stderr);
        match ending {
            Ending::Message(RenderMessage::Rendered { width, height, png_base64, words, rotated_clockwise, pages }) => {
                let png = base64::engine::general_purpose::STANDARD
                    .decode(png_base64.as_bytes())
                    .map_err(|_| RenderError::Failed("the renderer sent an invalid image".into()))?;
                // The child parsed hostile bytes: check what it claims.
                if png_dimensions(&png) != Some((width, height))
                    || width.max(height) > self.max_long_side
                    || words.len() > MAX_WORDS
                    || page == 0
                    || page > pages
                    || !matches!(rotated_clockwise, 0 | 90 | 180 | 270)
                {
                    return Err(RenderError::Failed("the renderer sent an inconsistent result".into()));
                }
                let words = words
                    .into_iter()
                    .filter(|w| w.x < width && w.y < height && !w.text.is_empty())
                    .map(|w| WordBox { w: w.w.min(width - w.x), h: w.h.min(height - w.y), ..w })
                    .collect();
                Ok(RenderedPage { png, width, height, words, rotated_clockwise, page_count: pages })
            }
            Ending::Message(RenderMessage::NoSuchPage { requested, pages }) => Err(RenderError::NoSuchPage { requested, pages }),
            Ending::Message(RenderMessage::Failed { kind, detail }) => Err(match kind {
                ProblemKind::TooLarge => RenderError::TooLarge(detail),
                ProblemKind::Timeout => RenderError::Timeout,
                // The temporary file vanished or the OCR model is missing.
                ProblemKind::MissingFile | ProblemKind::ExtractorCrashed => RenderError::Failed(detail),
                kind => RenderError::Unreadable { kind, detail },
            }),
            Ending::TimedOut | Ending::Signaled(libc::SIGXCPU) => Err(RenderError::Timeout),
            Ending::OutputTooLarge => {
                Err(RenderError::TooLarge(format!("the rendered page exceeds {} bytes", self.limits.max_output_bytes)))
            }
            Ending::Signaled(sig) => {
                let cause = if stderr.contains("memory allocation of") || stderr.contains("bad_alloc") {
                    format!("out of memory (address-space limit {} MiB); ", self.limits.address_space_bytes >> 20)
                } else if stderr.contains("has overflowed its stack") {
                    "stack overflow; ".to_string()
                } else {
                    String::new()
                };
                Err(RenderError::Unreadable { kind: ProblemKind::ExtractorCrashed, detail: format!("{cause}renderer terminated by signal {sig}") })
            }
            // Exit 2 is a usage error: our bug, not the document's.
            Ending::Exited(2) => Err(RenderError::Failed("the renderer refused its arguments".into())),
            Ending::Exited(code) => Err(RenderError::Unreadable {
                kind: ProblemKind::ExtractorCrashed,
                detail: format!("renderer exited with status {code} without a result"),
            }),
            Ending::SpawnFailed(e) => Err(RenderError::Failed(format!("the renderer could not be started: {e}"))),
        }
    }
}

/// Width and height from a PNG's IHDR chunk.
fn png_dimensions(png: &[u8]) -> Option<(u32, u32)> {
    if png.len() < 24 || !png.starts_with(b"\x89PNG\r\n\x1a\n") || &png[12..16] != b"IHDR" {
        return None;
    }
    let w = u32::from_be_bytes(png[16..20].try_into().ok()?);
    let h = u32::from_be_bytes(png[20..24].try_into().ok()?);
    Some((w, h))
}

/// Entry point of `nachweis sandbox-render ARGS…` (dispatched by `main`
/// before anything else starts); returns the exit code (0 whenever a result
/// line was written, 2 for a usage error).
pub fn child_main(args: &[String]) -> i32 {
    let args = match RenderArgs::parse(args) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("sandbox-render: {e}");
            return 2;
        }
    };
    quiet_panics("sandbox-render");
    let mut out = protocol_stdout();
    let message = match render(&args) {
        Ok(message) => message,
        Err(e) => RenderMessage::Failed { kind: e.kind(), detail: e.to_string() },
    };
    // A write error means the parent is gone; nothing left to do.
    let _ = serde_json::to_writer(&mut out, &message);
    let _ = out.write_all(b"\n");
    let _ = out.flush();
    0
}

/// The page before display scaling: its pixels, resolution, and whether
/// extraction would OCR it (and so turn it upright).
struct SourcePage {
    image: RgbImage,
    dpi: u32,
    detect_orientation: bool,
    pages: u32,
}

fn render(args: &RenderArgs) -> Result<RenderMessage, ExtractError> {
    let bytes = read_bounded(&args.path, args.limits.max_file_bytes)?;
    if bytes.is_empty() {
        return Err(ExtractError::Damaged("the file is empty".into()));
    }
    // Orientation detection and OCR need ~300 dpi (at the display size of
    // ~140 dpi Tesseract's orientation confidence collapses); a page needing
    // neither is rendered straight at display size.
    let ocr_side = ocr::MAX_OCR_LONG_SIDE.max(args.max_long_side);
    let source = match sniff_kind(&bytes, &args.media_type)? {
        Sniffed::Pdf => {
            let pdf = PdfSource::open(bytes, args.limits.max_total_pages, args.limits.max_image_pixels)?;
            let pages = pdf.page_count();
            if args.page == 0 || args.page > pages {
                return Ok(RenderMessage::NoSuchPage { requested: args.page, pages });
            }
            // Text-layer pages are read as they are; pages extraction OCRs
            // went through Tesseract's orientation detection.
            let detect_orientation = matches!(pdf.plan_page(args.page), PagePlan::Ocr(_));
            let long_side = if args.words || detect_orientation { ocr_side } else { args.max_long_side };
            let (image, dpi) = pdf.render_rgb(args.page, 300.0, long_side)?;
            SourcePage { image, dpi, detect_orientation, pages }
        }
        kind => {
            let pages = raster::image_page_count(&bytes, kind, args.limits.max_pages)?;
            if args.page == 0 || args.page > pages {
                return Ok(RenderMessage::NoSuchPage { requested: args.page, pages });
            }
            let (image, dpi) = raster::decode_page_rgb(&bytes, kind, args.limits.max_image_pixels, args.limits.max_pages, args.page)?;
            let (image, dpi) = fit(image, dpi, ocr_side);
            SourcePage { image, dpi, detect_orientation: true, pages }
        }
    };
    let SourcePage { image: source, dpi: source_dpi, detect_orientation, pages } = source;
    // The gray page as extraction hands it to Tesseract (same scaling).
    let mut ocr_page = (args.words || detect_orientation).then(|| ocr::fit_for_ocr(to_gray(&source), source_dpi));
    let (mut display, _) = fit(source, source_dpi, args.max_long_side);

    let mut rotated_clockwise = 0u16;
    if detect_orientation
        && let Some((gray, dpi)) = &ocr_page
        && let Some(o) = ocr::detect_orientation(gray, *dpi)
        && trust_orientation(&o)
    {
        rotated_clockwise = o.rotate_clockwise;
        display = rotate(&display, rotated_clockwise);
        ocr_page = ocr_page.map(|(g, dpi)| (rotate(&g, rotated_clockwise), dpi));
    }
    let words = match ocr_page.filter(|_| args.words) {
        Some((gray, dpi)) => {
            let mut engine = OcrEngine::upright()?;
            let boxes = engine.recognize_words(&gray, dpi)?;
            let (sx, sy) = (
                f64::from(display.width()) / f64::from(gray.width().max(1)),
                f64::from(display.height()) / f64::from(gray.height().max(1)),
            );
            boxes
                .into_iter()
                .map(|w| WordBox {
                    x: (f64::from(w.x) * sx).floor() as u32,
                    y: (f64::from(w.y) * sy).floor() as u32,
                    w: ((f64::from(w.w) * sx).ceil() as u32).max(1),
                    h: ((f64::from(w.h) * sy).ceil() as u32).max(1),
                    ..w
                })
                .collect()
        }
        None => Vec::new(),
    };
    let png = encode_png(&display)?;
    Ok(RenderMessage::Rendered {
        width: display.width(),
        height: display.height(),
        png_base64: base64::engine::general_purpose::STANDARD.encode(png),
        words,
        rotated_clockwise,
        pages,
    })
}

/// Scales an image down (never up) so its long side is at most `long_side`.
fn fit(image: RgbImage, dpi: u32, long_side: u32) -> (RgbImage, u32) {
    let (w, h) = image.dimensions();
    let long = w.max(h);
    if long <= long_side {
        return (image, dpi);
    }
    let scale = f64::from(long_side) / f64::from(long);
    let nw = ((f64::from(w) * scale).round() as u32).clamp(1, long_side);
    let nh = ((f64::from(h) * scale).round() as u32).clamp(1, long_side);
    let resized = image::imageops::resize(&image, nw, nh, image::imageops::FilterType::Triangle);
    (resized, ((f64::from(dpi) * scale).round() as u32).max(1))
}

fn rotate<P: image::Pixel + 'static>(image: &image::ImageBuffer<P, Vec<P::Subpixel>>, clockwise: u16) -> image::ImageBuffer<P, Vec<P::Subpixel>> {
    match clockwise {
        90 => image::imageops::rotate90(image),
        180 => image::imageops::rotate180(image),
        270 => image::imageops::rotate270(image),
        _ => image.clone(),
    }
}

fn to_gray(image: &RgbImage) -> GrayImage {
    image::DynamicImage::ImageRgb8(image.clone()).into_luma8()
}

fn encode_png(image: &RgbImage) -> Result<Vec<u8>, ExtractError> {
    use image::ImageEncoder as _;
    let mut png = Vec::new();
    image::codecs::png::PngEncoder::new(&mut png)
        .write_image(image.as_raw(), image.width(), image.height(), image::ExtendedColorType::Rgb8)
        .map_err(|e| ExtractError::Damaged(format!("the page image could not be encoded: {e}")))?;
    Ok(png)
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::ImageEncoder as _;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn the_gate_lets_no_more_children_run_than_allowed() {
        let gate = Gate { running: Mutex::new(0), freed: Condvar::new(), max: 2 };
        let inside = AtomicUsize::new(0);
        let most = AtomicUsize::new(0);
        std::thread::scope(|s| {
            for _ in 0..8 {
                s.spawn(|| {
                    let _slot = gate.enter();
                    let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    std::thread::sleep(std::time::Duration::from_millis(20));
                    inside.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        let most = most.load(Ordering::SeqCst);
        assert!((1..=2).contains(&most), "at most two at a time, got {most}");
        assert_eq!(*gate.running.lock().unwrap(), 0, "every slot is given back");
    }

    #[test]
    fn only_confident_latin_orientations_turn_a_page() {
        let o = |rotate_clockwise, confidence, script: &str| ocr::Orientation { rotate_clockwise, confidence, script: script.into() };
        assert!(trust_orientation(&o(90, 6.7, "Latin")));
        assert!(!trust_orientation(&o(90, 1.5, "Latin")));
        assert!(!trust_orientation(&o(180, 14.5, "Bengali")), "ID cards look like upside-down Bengali");
        assert!(!trust_orientation(&o(180, 5.0, "Latin")), "a weak half turn is not trusted");
        assert!(trust_orientation(&o(180, 9.0, "Latin")));
        assert!(!trust_orientation(&o(0, 12.0, "Latin")));
    }

    #[test]
    fn a_png_header_gives_its_dimensions_and_other_bytes_none() {
        let mut png = Vec::new();
        image::codecs::png::PngEncoder::new(&mut png)
            .write_image(&[0u8; 6 * 3], 3, 2, image::ExtendedColorType::Rgb8)
            .unwrap();
        assert_eq!(png_dimensions(&png), Some((3, 2)));
        assert_eq!(png_dimensions(b"GIF89a..................."), None);
    }
}

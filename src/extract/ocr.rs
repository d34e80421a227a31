//! Tesseract OCR of one prepared page image (8-bit gray), German model.
//!
//! One `OcrEngine` per thread, reused across pages: initialising the `deu`
//! model costs 80–150 ms. Settings follow the dependency spike (DESIGN §8):
//! automatic page segmentation, Sauvola binarisation for unevenly lit photos.
//! For page images shown to caseworkers it also reads word boxes (TSV) and
//! the page orientation (Tesseract's OSD, through the C API).
use crate::domain::highlight::WordBox;
use image::GrayImage;
use std::path::Path;
use tesseract::{PageSegMode, Tesseract};

/// Long side above which a page image is scaled down before OCR: ~300 dpi on
/// A4. Larger phone photos only cost time and memory.
pub const MAX_OCR_LONG_SIDE: u32 = 3500;

/// Where Debian's `tesseract-ocr-osd` puts the orientation model.
const OSD_MODEL_PATHS: &[&str] = &[
    "/usr/share/tesseract-ocr/5/tessdata/osd.traineddata",
    "/usr/share/tesseract-ocr/4.00/tessdata/osd.traineddata",
];

/// The text Tesseract read from one page.
#[derive(Debug, Clone, PartialEq)]
pub struct OcrText {
    pub text: String,
    /// Mean word confidence, 0..=100.
    pub confidence: f32,
}

/// Why OCR of a page failed (the engine itself, not the page content).
#[derive(Debug, thiserror::Error)]
pub enum OcrError {
    #[error("tesseract could not be initialised with the deu model: {0}")]
    Init(String),
    #[error("tesseract rejected the page image: {0}")]
    Image(String),
    #[error("tesseract recognition failed")]
    Recognize,
}

/// A reusable Tesseract instance for one thread.
pub struct OcrEngine {
    /// `None` after a failed call: the crate's builder API consumes the
    /// instance on error, so it is rebuilt on the next page.
    tess: Option<Tesseract>,
    page_seg_mode: PageSegMode,
}

impl OcrEngine {
    /// Creates the engine. With the orientation model installed, pages use
    /// automatic segmentation *with* orientation detection (PSM 1), which
    /// reads upside-down and sideways scans; without it, plain PSM 3.
    pub fn new() -> Result<Self, OcrError> {
        let osd_available = std::env::var_os("TESSDATA_PREFIX")
            .map(|dir| Path::new(&dir).join("osd.traineddata").exists())
            .unwrap_or(false)
            || OSD_MODEL_PATHS.iter().any(|p| Path::new(p).exists());
        let page_seg_mode =
            if osd_available { PageSegMode::PsmAutoOsd } else { PageSegMode::PsmAuto };
        Ok(OcrEngine { tess: Some(Self::build(page_seg_mode)?), page_seg_mode })
    }

    fn build(page_seg_mode: PageSegMode) -> Result<Tesseract, OcrError> {
        let mut tess = Tesseract::new(None, Some("deu"))
            .map_err(|e| OcrError::Init(e.to_string()))?
            // Sauvola: local thresholds survive shadows and uneven light in photos.
            .set_variable("thresholding_method", "2")
            .map_err(|e| OcrError::Init(e.to_string()))?
            // Keep Tesseract's diagnostics off stderr; the parent bounds stderr anyway.
            .set_variable("debug_file", "/dev/null")
            .map_err(|e| OcrError::Init(e.to_string()))?;
        tess.set_page_seg_mode(page_seg_mode);
        Ok(tess)
    }

    /// An engine for pages already turned upright (automatic segmentation
    /// without orientation detection), so word boxes are in the given
    /// image's coordinates.
    pub fn upright() -> Result<Self, OcrError> {
        Ok(OcrEngine { tess: Some(Self::build(PageSegMode::PsmAuto)?), page_seg_mode: PageSegMode::PsmAuto })
    }

    fn recognized(&mut self, page: &GrayImage, dpi: u32) -> Result<Tesseract, OcrError> {
        let tess = match self.tess.take() {
            Some(t) => t,
            None => Self::build(self.page_seg_mode)?,
        };
        let (width, height) = page.dimensions();
        tess.set_frame(page.as_raw(), width as i32, height as i32, 1, width as i32)
            .map_err(|e| OcrError::Image(e.to_string()))?
            .set_source_resolution(dpi.clamp(70, 1200) as i32)
            .recognize()
            .map_err(|_| OcrError::Recognize)
    }

    /// Reads one page image. `dpi` is the image's resolution (known or estimated),
    /// which Tesseract uses to judge text size and noise.
    pub fn recognize(&mut self, page: &GrayImage, dpi: u32) -> Result<OcrText, OcrError> {
        let mut tess = self.recognized(page, dpi)?;
        let text = tess.get_text().map_err(|_| OcrError::Recognize)?;
        let confidence = tess.mean_text_conf().clamp(0, 100) as f32;
        self.tess = Some(tess);
        Ok(OcrText { text, confidence })
    }

    /// Reads one page image into word boxes (in the image's pixels).
    pub fn recognize_words(&mut self, page: &GrayImage, dpi: u32) -> Result<Vec<WordBox>, OcrError> {
        let mut tess = self.recognized(page, dpi)?;
        let tsv = tess.get_tsv_text(0).map_err(|_| OcrError::Recognize)?;
        self.tess = Some(tess);
        Ok(parse_tsv(&tsv))
    }
}

/// Word rows of Tesseract's TSV output (level 5): `level page block par line
/// word left top width height conf text`. Lines are numbered in reading order.
pub fn parse_tsv(tsv: &str) -> Vec<WordBox> {
    let mut words = Vec::new();
    let mut last_line: Option<(u32, u32, u32)> = None;
    let mut line_no = 0u32;
    for row in tsv.lines() {
        let cols: Vec<&str> = row.splitn(12, '\t').collect();
        if cols.len() != 12 || cols[0] != "5" {
            continue;
        }
        let n = |i: usize| cols[i].trim().parse::<i64>().ok();
        let (Some(block), Some(par), Some(line), Some(left), Some(top), Some(w), Some(h)) =
            (n(2), n(3), n(4), n(6), n(7), n(8), n(9))
        else {
            continue;
        };
        let text = cols[11].trim();
        let confidence: f32 = cols[10].trim().parse().unwrap_or(-1.0);
        if text.is_empty() || confidence < 0.0 || w <= 0 || h <= 0 || left < 0 || top < 0 {
            continue;
        }
        let key = (block as u32, par as u32, line as u32);
        if last_line.is_some_and(|k| k != key) {
            line_no += 1;
        }
        last_line = Some(key);
        words.push(WordBox {
            text: text.to_string(),
            x: left as u32,
            y: top as u32,
            w: w as u32,
            h: h as u32,
            confidence: confidence.clamp(0.0, 100.0),
            line: line_no,
        });
    }
    words
}

/// How a page image must be turned to be upright, as Tesseract's
/// orientation detection sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Orientation {
    /// Clockwise rotation that makes the text upright: 0, 90, 180 or 270.
    pub rotate_clockwise: u16,
    /// Tesseract's orientation confidence (larger is surer; ~2 is weak).
    pub confidence: f32,
    /// The script the detector saw ("Latin", …). On ID cards it often sees
    /// "Bengali" upside down; German documents are Latin.
    pub script: String,
}

/// Runs Tesseract's orientation and script detection (the `osd` model) on
/// a gray page. `None` when the model is missing or the page has too little
/// text to tell.
pub fn detect_orientation(page: &GrayImage, dpi: u32) -> Option<Orientation> {
    use std::ffi::{CStr, c_char};
    let (width, height) = page.dimensions();
    if width == 0 || height == 0 || width > i32::MAX as u32 || height > i32::MAX as u32 {
        return None;
    }
    // SAFETY: the handle is created, used and destroyed here; the image
    // buffer outlives every call that reads it (SetImage copies it), and the
    // out-pointers point to live locals. The script name is owned by
    // Tesseract and only read while the handle lives.
    unsafe {
        let api = tesseract_sys::TessBaseAPICreate();
        if api.is_null() {
            return None;
        }
        let lang = c"osd";
        let result = if tesseract_sys::TessBaseAPIInit3(api, std::ptr::null(), lang.as_ptr()) == 0 {
            tesseract_sys::TessBaseAPISetVariable(api, c"debug_file".as_ptr(), c"/dev/null".as_ptr());
            tesseract_sys::TessBaseAPISetPageSegMode(api, tesseract_sys::TessPageSegMode_PSM_OSD_ONLY);
            tesseract_sys::TessBaseAPISetImage(api, page.as_raw().as_ptr(), width as i32, height as i32, 1, width as i32);
            tesseract_sys::TessBaseAPISetSourceResolution(api, dpi.clamp(70, 1200) as i32);
            let mut degrees = 0;
            let mut confidence = 0.0f32;
            let mut script: *const c_char = std::ptr::null();
            let mut script_confidence = 0.0f32;
            let ok = tesseract_sys::TessBaseAPIDetectOrientationScript(
                api,
                &mut degrees,
                &mut confidence,
                &mut script,
                &mut script_confidence,
            );
            // The name points into the model's character set (not to be
            // freed); it is copied before the handle goes.
            let script = if script.is_null() { String::new() } else { CStr::from_ptr(script).to_string_lossy().into_owned() };
            // Tesseract reports the text's counter-clockwise rotation; the
            // page is made upright by turning it back clockwise.
            (ok != 0 && matches!(degrees, 0 | 90 | 180 | 270))
                .then(|| Orientation { rotate_clockwise: ((360 - degrees) % 360) as u16, confidence, script })
        } else {
            None
        };
        tesseract_sys::TessBaseAPIEnd(api);
        tesseract_sys::TessBaseAPIDelete(api);
        result
    }
}

/// Scales a page image down so its long side is at most `MAX_OCR_LONG_SIDE`,
/// returning the image and its new resolution.
pub fn fit_for_ocr(page: GrayImage, dpi: u32) -> (GrayImage, u32) {
    let (w, h) = page.dimensions();
    let long = w.max(h);
    if long <= MAX_OCR_LONG_SIDE {
        return (page, dpi);
    }
    let scale = f64::from(MAX_OCR_LONG_SIDE) / f64::from(long);
    let nw = ((f64::from(w) * scale).round() as u32).max(1);
    let nh = ((f64::from(h) * scale).round() as u32).max(1);
    let resized = image::imageops::resize(&page, nw, nh, image::imageops::FilterType::Triangle);
    (resized, ((f64::from(dpi) * scale).round() as u32).max(70))
}

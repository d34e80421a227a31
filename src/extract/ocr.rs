//! Tesseract OCR of one prepared page image (8-bit gray), German model.
//!
//! One `OcrEngine` per thread, reused across pages: initialising the `deu`
//! model costs 80–150 ms. Settings follow the dependency spike (DESIGN §8):
//! automatic page segmentation, Sauvola binarisation for unevenly lit photos.
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

    /// Reads one page image. `dpi` is the image's resolution (known or estimated),
    /// which Tesseract uses to judge text size and noise.
    pub fn recognize(&mut self, page: &GrayImage, dpi: u32) -> Result<OcrText, OcrError> {
        let tess = match self.tess.take() {
            Some(t) => t,
            None => Self::build(self.page_seg_mode)?,
        };
        let (width, height) = page.dimensions();
        let mut tess = tess
            .set_frame(page.as_raw(), width as i32, height as i32, 1, width as i32)
            .map_err(|e| OcrError::Image(e.to_string()))?
            .set_source_resolution(dpi.clamp(70, 1200) as i32)
            .recognize()
            .map_err(|_| OcrError::Recognize)?;
        let text = tess.get_text().map_err(|_| OcrError::Recognize)?;
        let confidence = tess.mean_text_conf().clamp(0, 100) as f32;
        self.tess = Some(tess);
        Ok(OcrText { text, confidence })
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

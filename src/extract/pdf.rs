//! PDF input: the text layer per page (pdf-extract over lopdf), and page images
//! for OCR (a full-page JPEG taken straight out of the file, or a hayro render).
//!
//! Three parsers, each for what it does best: lopdf/pdf-extract for text (fast,
//! but panics on malformed input, hence `catch_unwind`), hayro for rendering and
//! for files whose broken cross-reference table only hayro can rebuild.
use super::child::ExtractError;
use super::raster::{self, Sniffed};
use super::text_quality::{self, TextLayerVerdict};
use hayro::hayro_syntax::Pdf as HayroPdf;
use image::GrayImage;
use lopdf::{Document, Object};
use std::io::Read;
use std::panic::{AssertUnwindSafe, catch_unwind};

/// Rendering resolution for OCR; Tesseract's models are trained on ~300 dpi.
const RENDER_DPI: f32 = 300.0;
/// Rendered pages stay below this many pixels (A3 at 300 dpi is ~17.4 MP) and
/// this many pixels per side, whatever the page box claims.
const MAX_RENDER_PIXELS: f64 = 36_000_000.0;
const MAX_RENDER_SIDE: f64 = 14_000.0;
/// A page with less text than this and a large image is a scan with a stamp
/// or header in its text layer: OCR reads the whole page instead.
const SCAN_TEXT_ALNUM: usize = 200;
/// Images at least this large count as "the page is a scan".
const SCAN_IMAGE_PIXELS: i64 = 1_000_000;

/// An opened PDF: whichever of the two parsers could read it.
pub struct PdfSource {
    lopdf: Option<Document>,
    hayro: Option<HayroPdf>,
    page_count: u32,
}

/// How the text of one page is to be obtained.
#[derive(Debug, Clone, PartialEq)]
pub enum PagePlan {
    /// The text layer is usable: take it.
    TextLayer(String),
    /// OCR the page image; the text layer (sparse or doubtful) is kept in
    /// case the page cannot be rendered.
    Ocr(Option<String>),
}

fn quietly<T>(f: impl FnOnce() -> T) -> Option<T> {
    catch_unwind(AssertUnwindSafe(f)).ok()
}

impl PdfSource {
    /// Parses the file with both parsers and applies the page and
    /// decompression-bomb limits before any page is decoded.
    pub fn open(bytes: Vec<u8>, max_total_pages: u32, max_pixels: u64) -> Result<Self, ExtractError> {
        let bytes = std::sync::Arc::new(bytes);
        let mut encrypted = false;
        let lopdf = match quietly(|| Document::load_mem(&bytes)) {
            Some(Ok(mut doc)) => {
                if doc.is_encrypted() {
                    // pdf-extract's rule: an empty user password opens many
                    // "protected" PDFs (print/copy restrictions only).
                    match quietly(|| doc.decrypt("")) {
                        Some(Ok(())) => Some(doc),
                        _ => {
                            encrypted = true;
                            None
                        }
                    }
                } else {
                    Some(doc)
                }
            }
            Some(Err(lopdf::Error::Decryption(_) | lopdf::Error::InvalidPassword)) => {
                encrypted = true;
                None
            }
            _ => None,
        };
        let shared: std::sync::Arc<Vec<u8>> = bytes;
        let hayro = match quietly(|| HayroPdf::new(shared)) {
            Some(Ok(pdf)) => Some(pdf),
            Some(Err(hayro::hayro_syntax::LoadPdfError::Decryption(_))) => {
                encrypted = true;
                None
            }
            _ => None,
        };
        if lopdf.is_none() && hayro.is_none() {
            return Err(if encrypted {
                ExtractError::Encrypted
            } else {
                ExtractError::Damaged("the PDF structure could not be parsed".into())
            });
        }
        let lopdf_pages = lopdf.as_ref().and_then(|d| quietly(|| d.get_pages().len() as u32));
        let hayro_pages = hayro.as_ref().and_then(|p| quietly(|| p.pages().len() as u32));
        let page_count = match (lopdf_pages, hayro_pages) {
            (Some(n), _) if n > 0 => n,
            (_, Some(n)) => n,
            _ => 0,
        };
        if page_count == 0 {
            // hayro may open an encrypted file it cannot decrypt and see no pages.
            if encrypted {
                return Err(ExtractError::Encrypted);
            }
            return Err(ExtractError::Damaged("the PDF has no readable pages".into()));
        }
        // Text-layer pages cost milliseconds, so long text PDFs are fine; the
        // OCR page limit is enforced by the caller once pages are planned.
        let max_total = max_total_pages;
        if page_count > max_total {
            return Err(ExtractError::TooLarge(format!(
                "{page_count} pages exceed the limit of {max_total}"
            )));
        }
        let source = PdfSource { lopdf, hayro, page_count };
        source.check_bombs(max_pixels)?;
        Ok(source)
    }

    pub fn page_count(&self) -> u32 {
        self.page_count
    }

    /// Refuses images whose declared size exceeds the pixel limit and Flate
    /// streams that inflate beyond what such an image could need, by
    /// inflating into a counter (nothing is allocated).
    fn check_bombs(&self, max_pixels: u64) -> Result<(), ExtractError> {
        let max_stream = max_pixels.saturating_mul(4);
        if let Some(doc) = &self.lopdf {
            for obj in doc.objects.values() {
                let Object::Stream(stream) = obj else { continue };
                let dict = &stream.dict;
                let is_image =
                    dict.get(b"Subtype").and_then(Object::as_name).is_ok_and(|n| n == b"Image");
                if is_image {
                    let w = dict.get(b"Width").and_then(Object::as_i64).unwrap_or(0).max(0);
                    let h = dict.get(b"Height").and_then(Object::as_i64).unwrap_or(0).max(0);
                    let pixels = (w as u64).saturating_mul(h as u64);
                    if pixels > max_pixels {
                        return Err(ExtractError::TooLarge(format!(
                            "embedded image of {w}×{h} pixels exceeds the limit of {max_pixels} pixels"
                        )));
                    }
                }
                let first_filter = stream.filters().ok().and_then(|f| f.first().map(|n| n.to_vec()));
                if first_filter.as_deref() == Some(b"FlateDecode".as_slice()) {
                    let inflated = inflated_len(&stream.content, max_stream + 1);
                    if inflated > max_stream {
                        return Err(ExtractError::TooLarge(format!(
                            "a compressed stream inflates beyond {} MB",
                            max_stream / 1_000_000
                        )));
                    }
                }
            }
        } else if let Some(pdf) = &self.hayro {
            // lopdf could not read the file; hayro's view of the objects is
            // enough to check declared image sizes.
            for obj in pdf.objects() {
                let hayro::hayro_syntax::object::Object::Stream(stream) = obj else { continue };
                let dict = stream.dict();
                let w = dict.get::<i64>(b"Width").unwrap_or(0).max(0);
                let h = dict.get::<i64>(b"Height").unwrap_or(0).max(0);
                if (w as u64).saturating_mul(h as u64) > max_pixels {
                    return Err(ExtractError::TooLarge(format!(
                        "embedded image of {w}×{h} pixels exceeds the limit of {max_pixels} pixels"
                    )));
                }
            }
        }
        Ok(())
    }

    /// Decides per page: text layer, or OCR. Pages whose text layer makes
    /// pdf-extract panic are OCR'd like pages without one.
    pub fn plan_page(&self, number: u32) -> PagePlan {
        let Some(doc) = &self.lopdf else { return PagePlan::Ocr(None) };
        let text = quietly(|| {
            let mut s = String::new();
            let mut out = pdf_extract::PlainTextOutput::new(&mut s);
            pdf_extract::output_doc_page(doc, &mut out, number).map(|_| s)
        });
        let Some(Ok(text)) = text else { return PagePlan::Ocr(None) };
        let metrics = text_quality::measure(&text);
        match text_quality::verdict(&metrics) {
            TextLayerVerdict::Usable => {
                if metrics.alphanumeric < SCAN_TEXT_ALNUM && self.largest_image(number) >= SCAN_IMAGE_PIXELS {
                    PagePlan::Ocr(Some(text))
                } else {
                    PagePlan::TextLayer(text)
                }
            }
            // A short text layer on a page that draws no images is the page's
            // whole content (a cover sheet, "Seite 2 von 3"): OCR adds nothing.
            TextLayerVerdict::Sparse if metrics.alphanumeric > 0 && !self.may_have_images(number) => {
                PagePlan::TextLayer(text)
            }
            TextLayerVerdict::Sparse | TextLayerVerdict::Garbled => PagePlan::Ocr(Some(text)),
        }
    }

    /// Whether the page draws any XObject (image or form that may hold one)
    /// or an inline image. Unknown counts as yes.
    fn may_have_images(&self, number: u32) -> bool {
        let (Some(doc), Some(id)) = (&self.lopdf, self.page_id(number)) else { return true };
        quietly(|| {
            let has_xobjects = doc
                .get_page_resources(id)
                .ok()
                .map(|(own, inherited)| {
                    own.into_iter()
                        .chain(inherited.iter().filter_map(|rid| doc.get_dictionary(*rid).ok()))
                        .any(|res| {
                            res.get(b"XObject")
                                .and_then(|o| doc.dereference(o).map(|(_, o)| o))
                                .and_then(Object::as_dict)
                                .is_ok_and(|d| !d.is_empty())
                        })
                })
                .unwrap_or(true);
            let inline_image = doc
                .get_page_content(id)
                .map(|content| content.windows(3).any(|w| w == b"BI\n" || w == b"BI " || w == b"BI\r"))
                .unwrap_or(true);
            has_xobjects || inline_image
        })
        .unwrap_or(true)
    }

    fn page_id(&self, number: u32) -> Option<lopdf::ObjectId> {
        self.lopdf.as_ref()?.get_pages().get(&number).copied()
    }

    fn largest_image(&self, number: u32) -> i64 {
        let (Some(doc), Some(id)) = (&self.lopdf, self.page_id(number)) else { return 0 };
        quietly(|| doc.get_page_images(id).ok())
            .flatten()
            .map(|imgs| imgs.iter().map(|i| i.width.max(0) * i.height.max(0)).max().unwrap_or(0))
            .unwrap_or(0)
    }

    /// The page as a gray image for OCR, with its resolution.
    pub fn page_image(&self, number: u32, max_pixels: u64) -> Result<(GrayImage, u32), ExtractError> {
        if let Some(found) = self.full_page_jpeg(number, max_pixels) {
            return Ok(found);
        }
        self.render(number)
    }

    /// Fast path for scans: a page that is one DCT-encoded gray or RGB image
    /// is decoded directly at its native resolution (a few ms instead of a
    /// render). Anything unusual (masks, Decode arrays, CMYK, several images)
    /// goes through the renderer, which gets those right.
    fn full_page_jpeg(&self, number: u32, max_pixels: u64) -> Option<(GrayImage, u32)> {
        let doc = self.lopdf.as_ref()?;
        let id = self.page_id(number)?;
        let images = quietly(|| doc.get_page_images(id).ok()).flatten()?;
        let [img] = images.as_slice() else { return None };
        let filters = img.filters.as_deref()?;
        let simple_colour = matches!(img.color_space.as_deref(), Some("DeviceGray" | "DeviceRGB"));
        let dict = img.origin_dict;
        if filters != ["DCTDecode"]
            || !simple_colour
            || dict.has(b"Decode")
            || dict.has(b"SMask")
            || dict.has(b"Mask")
            || img.width * img.height < SCAN_IMAGE_PIXELS
        {
            return None;
        }
        let pages = raster::decode_pages(img.content, Sniffed::Jpeg, max_pixels, 1).ok()?;
        let page = pages.into_iter().next()?;
        let (media_w, _) = self.media_size(id)?;
        let (mut image, mut dpi) = (page.image, page.dpi);
        if media_w > 0.0 {
            let (w, h) = image.dimensions();
            // The image fills the page; which side is the width depends on rotation.
            let rotate = self.rotation(id);
            let img_w = if rotate % 180 == 0 { w } else { h };
            dpi = (img_w as f32 / (media_w / 72.0)).round().clamp(70.0, 1200.0) as u32;
        }
        image = match self.rotation(id) {
            90 => image::imageops::rotate90(&image),
            180 => image::imageops::rotate180(&image),
            270 => image::imageops::rotate270(&image),
            _ => image,
        };
        Some((image, dpi))
    }

    fn media_size(&self, id: lopdf::ObjectId) -> Option<(f32, f32)> {
        let doc = self.lopdf.as_ref()?;
        let mut dict = doc.get_dictionary(id).ok()?;
        // MediaBox is inheritable from the page tree.
        for _ in 0..32 {
            if let Ok(arr) = dict.get(b"MediaBox").and_then(|o| doc.dereference(o).map(|(_, o)| o)).and_then(Object::as_array) {
                let n: Vec<f32> = arr.iter().filter_map(|o| o.as_float().ok()).collect();
                if n.len() == 4 {
                    return Some(((n[2] - n[0]).abs(), (n[3] - n[1]).abs()));
                }
            }
            dict = doc.get_dictionary(dict.get(b"Parent").ok()?.as_reference().ok()?).ok()?;
        }
        None
    }

    fn rotation(&self, id: lopdf::ObjectId) -> i64 {
        let Some(doc) = &self.lopdf else { return 0 };
        let Ok(dict) = doc.get_dictionary(id) else { return 0 };
        dict.get(b"Rotate").and_then(Object::as_i64).map(|r| r.rem_euclid(360)).unwrap_or(0)
    }

    /// Renders the page with hayro at 300 dpi (less for oversized pages).
    fn render(&self, number: u32) -> Result<(GrayImage, u32), ExtractError> {
        let (image, dpi) = self.render_rgb(number, RENDER_DPI, MAX_RENDER_SIDE as u32)?;
        // Premultiplied RGBA over an opaque white background: no alpha left.
        let gray: Vec<u8> = image
            .as_raw()
            .chunks_exact(3)
            .map(|p| ((u32::from(p[0]) * 299 + u32::from(p[1]) * 587 + u32::from(p[2]) * 114) / 1000) as u8)
            .collect();
        let (w, h) = image.dimensions();
        let gray = GrayImage::from_raw(w, h, gray).expect("one byte per pixel");
        Ok((gray, dpi))
    }

    /// Renders the page in colour at `dpi` (less for oversized pages, and
    /// at most `max_side` pixels on the long side), with the page's
    /// `/Rotate` applied; returns the image and its resolution. Page
    /// numbers start at 1; a page that does not exist is `Damaged`.
    pub fn render_rgb(&self, number: u32, dpi: f32, max_side: u32) -> Result<(image::RgbImage, u32), ExtractError> {
        let pdf = match &self.hayro {
            Some(pdf) => pdf,
            None => {
                return Err(ExtractError::Damaged(
                    "the page cannot be rendered (the renderer could not parse the file)".into(),
                ));
            }
        };
        let rendered = quietly(|| {
            let pages = pdf.pages();
            let page = pages.get((number as usize).checked_sub(1)?)?;
            let (w, h) = page.render_dimensions();
            let (w, h) = (f64::from(w.max(1.0)), f64::from(h.max(1.0)));
            let mut scale = f64::from(dpi) / 72.0;
            scale = scale.min((MAX_RENDER_PIXELS / (w * h)).sqrt());
            scale = scale.min(MAX_RENDER_SIDE.min(f64::from(max_side)) / w.max(h));
            let cache = hayro::RenderCache::new();
            let settings = hayro::hayro_interpret::InterpreterSettings::default();
            let pixmap = hayro::render(
                page,
                &cache,
                &settings,
                &hayro::RenderSettings::default(),
                &hayro::PixmapSettings {
                    x_scale: scale as f32,
                    y_scale: scale as f32,
                    bg_color: hayro::vello_cpu::color::palette::css::WHITE,
                },
            );
            let (pw, ph) = (u32::from(pixmap.width()), u32::from(pixmap.height()));
            let rgb: Vec<u8> = pixmap.data_as_u8_slice().chunks_exact(4).flat_map(|p| [p[0], p[1], p[2]]).collect();
            Some((image::RgbImage::from_raw(pw, ph, rgb)?, (scale * 72.0).round() as u32))
        });
        match rendered {
            Some(Some(found)) => Ok(found),
            Some(None) => Err(ExtractError::Damaged(format!("page {number} could not be rendered"))),
            None => Err(ExtractError::Damaged(format!("the renderer failed on page {number}"))),
        }
    }
}

/// How many bytes a zlib (or raw deflate) stream inflates to, counting up to `cap`.
fn inflated_len(data: &[u8], cap: u64) -> u64 {
    /// Counts what is written, so a stream that inflates a lot before turning
    /// out corrupt is still measured.
    struct Counter(u64);
    impl std::io::Write for Counter {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len() as u64;
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut zlib = Counter(0);
    let _ = std::io::copy(&mut flate2::read::ZlibDecoder::new(data).take(cap), &mut zlib);
    if zlib.0 > 0 {
        return zlib.0;
    }
    let mut raw = Counter(0);
    let _ = std::io::copy(&mut flate2::read::DeflateDecoder::new(data).take(cap), &mut raw);
    raw.0
}

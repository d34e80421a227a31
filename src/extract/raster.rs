//! Decodes uploaded images (JPEG, PNG, TIFF incl. multi-page) into 8-bit gray
//! pages ready for OCR, refusing pixel and decompression bombs before allocating.
//!
//! Phone photos are turned upright from their EXIF orientation; alpha is laid
//! over white (transparent pixels are often black underneath); CMYK, 16-bit and
//! palette images are converted by the `image` crate.
use super::child::ExtractError;
use image::{DynamicImage, GrayImage, ImageDecoder, ImageFormat, ImageReader, Limits};
use std::io::{BufRead, Cursor, Read, Seek, SeekFrom};

/// What the bytes of an upload are, whatever the manifest said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sniffed {
    Pdf,
    Jpeg,
    Png,
    Tiff,
}

/// Recognises a file by its magic bytes. PDF headers may be preceded by junk
/// (readers accept `%PDF-` anywhere in the first KiB).
pub fn sniff(bytes: &[u8]) -> Option<Sniffed> {
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some(Sniffed::Jpeg)
    } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some(Sniffed::Png)
    } else if bytes.starts_with(b"II*\0")
        || bytes.starts_with(b"MM\0*")
        || bytes.starts_with(b"II+\0")
        || bytes.starts_with(b"MM\0+")
    {
        Some(Sniffed::Tiff)
    } else if bytes[..bytes.len().min(1024)].windows(5).any(|w| w == b"%PDF-") {
        Some(Sniffed::Pdf)
    } else {
        None
    }
}

/// One decoded page of an image file.
pub struct RasterPage {
    pub image: GrayImage,
    /// Resolution from the file's metadata, or estimated (see `estimate_dpi`).
    pub dpi: u32,
}

/// Decoder limits: dimensions are checked from the header, before any pixel
/// buffer exists; `max_alloc` also bounds the decoders' intermediate buffers.
fn limits(max_pixels: u64) -> Limits {
    let mut limits = Limits::default();
    // Even a 1×N strip may not exceed the pixel budget on its own.
    let side = u32::try_from(max_pixels.min(u64::from(u32::MAX))).unwrap_or(u32::MAX);
    limits.max_image_width = Some(side);
    limits.max_image_height = Some(side);
    // RGBA 16-bit worst case of an image at the pixel limit, plus slack.
    limits.max_alloc = Some(max_pixels.saturating_mul(8).saturating_add(64 << 20));
    limits
}

fn check_pixels(width: u32, height: u32, max_pixels: u64) -> Result<(), ExtractError> {
    let pixels = u64::from(width) * u64::from(height);
    if pixels > max_pixels {
        return Err(ExtractError::TooLarge(format!(
            "image of {width}×{height} pixels exceeds the limit of {max_pixels} pixels"
        )));
    }
    Ok(())
}

fn image_error(e: image::ImageError) -> ExtractError {
    match e {
        image::ImageError::Limits(_) => {
            ExtractError::TooLarge("image exceeds the decoding memory limit".into())
        }
        image::ImageError::Unsupported(u) => {
            ExtractError::UnsupportedMediaType(format!("unsupported image variant: {u}"))
        }
        other => ExtractError::Damaged(format!("image could not be decoded: {other}")),
    }
}

/// Decodes one image (the first page of a TIFF) with the limits applied.
fn decode_one<R: BufRead + Seek>(
    reader: R,
    format: ImageFormat,
    max_pixels: u64,
) -> Result<DynamicImage, ExtractError> {
    let mut reader = ImageReader::with_format(reader, format);
    reader.limits(limits(max_pixels));
    let mut decoder = reader.into_decoder().map_err(image_error)?;
    let (w, h) = decoder.dimensions();
    check_pixels(w, h, max_pixels)?;
    // Phone cameras store the sensor image and an EXIF rotation tag.
    let orientation = decoder.orientation().unwrap_or(image::metadata::Orientation::NoTransforms);
    let mut img = DynamicImage::from_decoder(decoder).map_err(image_error)?;
    img.apply_orientation(orientation);
    Ok(img)
}

/// Converts any decoded image to 8-bit gray, laying transparency over white.
pub fn to_gray(img: DynamicImage) -> GrayImage {
    if !img.color().has_alpha() {
        return img.into_luma8();
    }
    let rgba = img.into_rgba8();
    let (w, h) = rgba.dimensions();
    let mut gray = GrayImage::new(w, h);
    for (dst, px) in gray.pixels_mut().zip(rgba.pixels()) {
        let [r, g, b, a] = px.0;
        let luma = (u32::from(r) * 299 + u32::from(g) * 587 + u32::from(b) * 114) / 1000;
        let a = u32::from(a);
        dst.0[0] = ((luma * a + 255 * (255 - a)) / 255) as u8;
    }
    gray
}

/// Decodes an image file into gray pages: one for JPEG/PNG, up to `max_pages` for TIFF.
pub fn decode_pages(
    bytes: &[u8],
    kind: Sniffed,
    max_pixels: u64,
    max_pages: u32,
) -> Result<Vec<RasterPage>, ExtractError> {
    match kind {
        Sniffed::Jpeg | Sniffed::Png => {
            let format = if kind == Sniffed::Jpeg { ImageFormat::Jpeg } else { ImageFormat::Png };
            let img = decode_one(Cursor::new(bytes), format, max_pixels)?;
            let dpi = metadata_dpi(bytes, kind)
                .unwrap_or_else(|| estimate_dpi(img.width(), img.height()));
            Ok(vec![RasterPage { image: to_gray(img), dpi }])
        }
        Sniffed::Tiff => decode_tiff_pages(bytes, max_pixels, max_pages),
        Sniffed::Pdf => Err(ExtractError::UnsupportedMediaType("PDF is not an image".into())),
    }
}

/// Multi-page TIFF: `image` decodes only the first directory (IFD), so each
/// further page is presented to it through a view of the file whose header
/// points at that page's IFD. Colour conversion stays in one place that way.
fn decode_tiff_pages(
    bytes: &[u8],
    max_pixels: u64,
    max_pages: u32,
) -> Result<Vec<RasterPage>, ExtractError> {
    let mut pages = Vec::new();
    for ifd in tiff_directories(bytes, max_pages)? {
        let (img, dpi) = decode_tiff_directory(bytes, &ifd, max_pixels)?;
        pages.push(RasterPage { image: to_gray(img), dpi });
    }
    Ok(pages)
}

/// One image directory of a TIFF file: its offset, size and stated resolution.
struct TiffDirectory {
    offset: u64,
    dims: (u32, u32),
    dpi: Option<u32>,
}

fn tiff_directories(bytes: &[u8], max_pages: u32) -> Result<Vec<TiffDirectory>, ExtractError> {
    let tiff_err = |e: tiff::TiffError| ExtractError::Damaged(format!("TIFF structure: {e}"));
    let mut dec = tiff::decoder::Decoder::new(Cursor::new(bytes)).map_err(tiff_err)?;
    let mut ifds = Vec::new();
    loop {
        if let Some(ptr) = dec.ifd_pointer() {
            let dims = dec.dimensions().map_err(tiff_err)?;
            let dpi = tiff_dpi(&mut dec);
            ifds.push(TiffDirectory { offset: ptr.0, dims, dpi });
        }
        if ifds.len() as u32 > max_pages {
            return Err(ExtractError::TooLarge(format!(
                "TIFF has more than {max_pages} pages"
            )));
        }
        if !dec.more_images() {
            break;
        }
        if dec.next_image().is_err() {
            // A broken later directory: keep the pages read so far.
            break;
        }
    }
    Ok(ifds)
}

fn decode_tiff_directory(bytes: &[u8], ifd: &TiffDirectory, max_pixels: u64) -> Result<(DynamicImage, u32), ExtractError> {
    let big = bytes.starts_with(b"II+\0") || bytes.starts_with(b"MM\0+");
    let little = bytes.starts_with(b"II");
    check_pixels(ifd.dims.0, ifd.dims.1, max_pixels)?;
    let view = IfdView::new(bytes, ifd.offset, big, little);
    let img = decode_one(view, ImageFormat::Tiff, max_pixels)?;
    let dpi = ifd.dpi.unwrap_or_else(|| estimate_dpi(img.width(), img.height()));
    Ok((img, dpi))
}

/// How many pages an image file has (TIFF: its directories, at most
/// `max_pages`; JPEG and PNG: one).
pub fn image_page_count(bytes: &[u8], kind: Sniffed, max_pages: u32) -> Result<u32, ExtractError> {
    match kind {
        Sniffed::Jpeg | Sniffed::Png => Ok(1),
        Sniffed::Tiff => Ok(tiff_directories(bytes, max_pages)?.len() as u32),
        Sniffed::Pdf => Err(ExtractError::UnsupportedMediaType("PDF is not an image".into())),
    }
}

/// One page (1-based) of an image file in colour, for display: decoded
/// under the same limits and turned upright from EXIF like the OCR pages;
/// alpha is laid over white. Returns the image and its resolution.
pub fn decode_page_rgb(
    bytes: &[u8],
    kind: Sniffed,
    max_pixels: u64,
    max_pages: u32,
    page: u32,
) -> Result<(image::RgbImage, u32), ExtractError> {
    let (img, dpi) = match kind {
        Sniffed::Jpeg | Sniffed::Png if page == 1 => {
            let format = if kind == Sniffed::Jpeg { ImageFormat::Jpeg } else { ImageFormat::Png };
            let img = decode_one(Cursor::new(bytes), format, max_pixels)?;
            let dpi = metadata_dpi(bytes, kind).unwrap_or_else(|| estimate_dpi(img.width(), img.height()));
            (img, dpi)
        }
        Sniffed::Tiff => {
            let ifds = tiff_directories(bytes, max_pages)?;
            let ifd = ifds
                .get((page as usize).wrapping_sub(1))
                .ok_or_else(|| ExtractError::Damaged(format!("the image has no page {page}")))?;
            decode_tiff_directory(bytes, ifd, max_pixels)?
        }
        Sniffed::Pdf => return Err(ExtractError::UnsupportedMediaType("PDF is not an image".into())),
        _ => return Err(ExtractError::Damaged(format!("the image has no page {page}"))),
    };
    Ok((to_rgb(img), dpi))
}

/// Converts any decoded image to 8-bit RGB, laying transparency over white.
fn to_rgb(img: DynamicImage) -> image::RgbImage {
    if !img.color().has_alpha() {
        return img.into_rgb8();
    }
    let rgba = img.into_rgba8();
    let (w, h) = rgba.dimensions();
    let mut rgb = image::RgbImage::new(w, h);
    for (dst, px) in rgb.pixels_mut().zip(rgba.pixels()) {
        let [r, g, b, a] = px.0;
        let a = u32::from(a);
        let over = |c: u8| ((u32::from(c) * a + 255 * (255 - a)) / 255) as u8;
        dst.0 = [over(r), over(g), over(b)];
    }
    rgb
}

fn tiff_dpi<R: Read + Seek>(dec: &mut tiff::decoder::Decoder<R>) -> Option<u32> {
    use tiff::tags::Tag;
    let x = dec.find_tag(Tag::XResolution).ok()??;
    let value = match x {
        tiff::decoder::ifd::Value::Rational(n, d) if d != 0 => f64::from(n) / f64::from(d),
        tiff::decoder::ifd::Value::Float(f) => f64::from(f),
        tiff::decoder::ifd::Value::Double(f) => f,
        _ => return None,
    };
    let unit = dec.find_tag_unsigned::<u16>(Tag::ResolutionUnit).ok().flatten().unwrap_or(2);
    let dpi = if unit == 3 { value * 2.54 } else { value };
    plausible_dpi(dpi)
}

/// A view of a TIFF file whose first-IFD pointer (bytes 4..8, or 8..16 for
/// BigTIFF) is replaced, so decoders read another page as the first one.
struct IfdView<'a> {
    data: &'a [u8],
    header: [u8; 16],
    header_len: usize,
    pos: u64,
}

impl<'a> IfdView<'a> {
    fn new(data: &'a [u8], ifd_offset: u64, big: bool, little: bool) -> Self {
        let mut header = [0u8; 16];
        let header_len = if big { 16 } else { 8 }.min(data.len());
        header[..header_len].copy_from_slice(&data[..header_len]);
        if big {
            let b = if little { ifd_offset.to_le_bytes() } else { ifd_offset.to_be_bytes() };
            header[8..16].copy_from_slice(&b);
        } else {
            let off = u32::try_from(ifd_offset).unwrap_or(0);
            let b = if little { off.to_le_bytes() } else { off.to_be_bytes() };
            header[4..8].copy_from_slice(&b);
        }
        IfdView { data, header, header_len, pos: 0 }
    }

    fn remaining(&self) -> &[u8] {
        let pos = usize::try_from(self.pos).unwrap_or(usize::MAX);
        if pos < self.header_len {
            &self.header[pos..self.header_len]
        } else {
            self.data.get(pos..).unwrap_or(&[])
        }
    }
}

impl Read for IfdView<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let src = self.remaining();
        let n = src.len().min(buf.len());
        buf[..n].copy_from_slice(&src[..n]);
        self.pos += n as u64;
        Ok(n)
    }
}

impl BufRead for IfdView<'_> {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        Ok(self.remaining())
    }
    fn consume(&mut self, amt: usize) {
        self.pos += amt as u64;
    }
}

impl Seek for IfdView<'_> {
    fn seek(&mut self, pos: SeekFrom) -> std::io::Result<u64> {
        let len = self.data.len() as i128;
        let target = match pos {
            SeekFrom::Start(p) => i128::from(p),
            SeekFrom::End(d) => len + i128::from(d),
            SeekFrom::Current(d) => i128::from(self.pos) + i128::from(d),
        };
        if target < 0 {
            return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, "seek before start"));
        }
        self.pos = target as u64;
        Ok(self.pos)
    }
}

/// Many files say 72 or 96 dpi because software writes a default, not the
/// truth; such values are ignored in favour of the estimate.
fn plausible_dpi(dpi: f64) -> Option<u32> {
    (dpi >= 100.0 && dpi <= 1200.0).then(|| dpi.round() as u32)
}

/// Resolution from PNG `pHYs` or JPEG JFIF density, when stated and plausible.
fn metadata_dpi(bytes: &[u8], kind: Sniffed) -> Option<u32> {
    match kind {
        Sniffed::Png => {
            // Chunks: length(4) type(4) data crc(4), starting after the 8-byte signature.
            let mut pos = 8usize;
            while pos + 8 <= bytes.len() {
                let len = u32::from_be_bytes(bytes[pos..pos + 4].try_into().ok()?) as usize;
                let kind = &bytes[pos + 4..pos + 8];
                let data = bytes.get(pos + 8..pos + 8 + len)?;
                if kind == b"pHYs" && len >= 9 && data[8] == 1 {
                    let ppm = u32::from_be_bytes(data[0..4].try_into().ok()?);
                    return plausible_dpi(f64::from(ppm) * 0.0254);
                }
                if kind == b"IDAT" || kind == b"IEND" {
                    return None;
                }
                pos += 12 + len;
            }
            None
        }
        Sniffed::Jpeg => {
            // APP0 "JFIF\0": version(2) units(1) xdensity(2) ydensity(2).
            let app0 = bytes.get(2..20)?;
            if app0[0] == 0xFF && app0[1] == 0xE0 && &app0[4..9] == b"JFIF\0" {
                let units = app0[11];
                let x = f64::from(u16::from_be_bytes([app0[12], app0[13]]));
                return match units {
                    1 => plausible_dpi(x),
                    2 => plausible_dpi(x * 2.54),
                    _ => None,
                };
            }
            None
        }
        _ => None,
    }
}

/// Without metadata, assume the image shows an A4 page (11.7 in on the long
/// side), the common case for uploads, and clamp to what scanners produce.
pub fn estimate_dpi(width: u32, height: u32) -> u32 {
    let long = f64::from(width.max(height));
    ((long / 11.7).round() as u32).clamp(150, 600)
}

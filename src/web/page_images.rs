//! `PageImages` over the sandboxed `PageRenderer`: renders a page, finds the
//! evidence phrases among its OCR word boxes (`domain::highlight`) and
//! marks them on the image, so the caseworker sees on the page what the
//! classifier counted. Rendered pages are kept in a small in-memory cache
//! (keyed by content hash, page and phrases): OCR of a page takes seconds.
use image::{ImageFormat, Rgb, RgbImage};
use std::collections::VecDeque;
use std::io::Cursor;
use std::sync::{Arc, Mutex};

use super::PageImages;
use crate::domain::highlight::highlighted_words;
use crate::extract::render::PageRenderer;

/// How many rendered pages the cache keeps (about 300 KB each).
const CACHE_PAGES: usize = 96;

/// The highlight colour (a yellow marker) and its opacity.
const MARK: [u8; 3] = [255, 214, 10];
const MARK_ALPHA: f32 = 0.40;
/// The outline drawn around each marked word, for those who cannot tell
/// the marker's colour from the paper.
const OUTLINE: [u8; 3] = [176, 96, 0];

type CacheKey = (String, u32, Vec<String>);

/// Page images from the sandboxed renderer, with evidence marked.
pub struct HighlightedPages {
    renderer: PageRenderer,
    cache: Mutex<VecDeque<(CacheKey, Arc<Vec<u8>>)>>,
}

impl HighlightedPages {
    pub fn new(renderer: PageRenderer) -> Self {
        HighlightedPages { renderer, cache: Mutex::new(VecDeque::new()) }
    }

    fn cached(&self, key: &CacheKey) -> Option<Arc<Vec<u8>>> {
        let cache = self.cache.lock().ok()?;
        cache.iter().find(|(k, _)| k == key).map(|(_, v)| Arc::clone(v))
    }

    fn remember(&self, key: CacheKey, png: Arc<Vec<u8>>) {
        if let Ok(mut cache) = self.cache.lock() {
            cache.retain(|(k, _)| *k != key);
            cache.push_back((key, png));
            while cache.len() > CACHE_PAGES {
                cache.pop_front();
            }
        }
    }
}

impl PageImages for HighlightedPages {
    fn page_png(&self, key: &str, bytes: &[u8], media_type: &str, page: u32, phrases: &[String]) -> Result<Vec<u8>, String> {
        let cache_key = (key.to_string(), page, phrases.to_vec());
        if let Some(png) = self.cached(&cache_key) {
            return Ok(png.as_ref().clone());
        }
        let rendered = self.renderer.render_page(bytes, media_type, page, !phrases.is_empty()).map_err(|e| e.message_de())?;
        let marked = highlighted_words(&rendered.words, phrases);
        let png = if marked.is_empty() {
            rendered.png
        } else {
            let boxes: Vec<(u32, u32, u32, u32)> = marked.iter().map(|&i| &rendered.words[i]).map(|w| (w.x, w.y, w.w, w.h)).collect();
            mark(&rendered.png, &boxes)?
        };
        let png = Arc::new(png);
        self.remember(cache_key, Arc::clone(&png));
        Ok(png.as_ref().clone())
    }
}

/// Draws a translucent marker with an outline over each box of a PNG.
fn mark(png: &[u8], boxes: &[(u32, u32, u32, u32)]) -> Result<Vec<u8>, String> {
    let mut img: RgbImage = image::load_from_memory_with_format(png, ImageFormat::Png).map_err(|e| format!("PNG: {e}"))?.to_rgb8();
    let (width, height) = img.dimensions();
    for &(x, y, w, h) in boxes {
        // A little air around the glyphs, clipped to the image.
        let (x0, y0) = (x.saturating_sub(2), y.saturating_sub(2));
        let (x1, y1) = ((x + w + 2).min(width), (y + h + 2).min(height));
        for py in y0..y1 {
            for px in x0..x1 {
                let edge = px < x0 + 2 || px + 2 >= x1 || py < y0 + 2 || py + 2 >= y1;
                let p = img.get_pixel_mut(px, py);
                *p = if edge { Rgb(OUTLINE) } else { blend(*p, MARK) };
            }
        }
    }
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, ImageFormat::Png).map_err(|e| format!("PNG: {e}"))?;
    Ok(out.into_inner())
}

/// A multiply-like marker blend: dark text stays dark, paper turns yellow.
fn blend(under: Rgb<u8>, mark: [u8; 3]) -> Rgb<u8> {
    let mix = |u: u8, m: u8| {
        let multiplied = f32::from(u) * f32::from(m) / 255.0;
        (f32::from(u) * (1.0 - MARK_ALPHA) + multiplied * MARK_ALPHA).round() as u8
    };
    Rgb([mix(under[0], mark[0]), mix(under[1], mark[1]), mix(under[2], mark[2])])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marking_tints_the_paper_inside_a_box_and_leaves_the_rest() {
        let img = RgbImage::from_pixel(40, 20, Rgb([255, 255, 255]));
        let mut png = Cursor::new(Vec::new());
        img.write_to(&mut png, ImageFormat::Png).unwrap();
        let out = mark(png.get_ref(), &[(10, 5, 10, 8)]).unwrap();
        let out = image::load_from_memory(&out).unwrap().to_rgb8();
        assert_eq!(*out.get_pixel(1, 1), Rgb([255, 255, 255]), "outside untouched");
        let inside = out.get_pixel(15, 9);
        assert!(inside[2] < 200 && inside[0] > 240, "inside is yellow: {inside:?}");
        assert_eq!(*out.get_pixel(8, 3), Rgb(OUTLINE), "outlined");
    }
}

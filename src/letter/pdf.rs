//! Writes laid-out pages as a PDF with both faces embedded as subsetted
//! CID fonts (Type0 / CIDFontType2, Identity-H) and a ToUnicode map, so text
//! extractors (pdftotext, screen readers) read the German text exactly.
//!
//! Output is a pure function of the input: objects are numbered in a fixed
//! order, glyphs are remapped in order of first use, the subset tag and the
//! file id are hashes, and the only date is the letter's own.
use super::fonts::{Face, Fonts, Style};
use super::layout::{Item, PAGE_H, PAGE_W, Page};
use super::{LetterDocument, LetterError};
use chrono::Datelike;
use pdf_writer::types::{CidFontType, FontFlags, SystemInfo};
use pdf_writer::{Content, Date, Filter, Finish, Name, Pdf, Rect, Ref, Str, TextStr};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::Write;
use subsetter::GlyphRemapper;

const SYSTEM_INFO: SystemInfo<'static> =
    SystemInfo { registry: Str(b"Adobe"), ordering: Str(b"Identity"), supplement: 0 };

/// Glyphs used from one face: old glyph id → CID (the subset's glyph id),
/// and what each CID stands for in Unicode.
struct UsedGlyphs {
    remapper: GlyphRemapper,
    to_unicode: BTreeMap<u16, char>,
    /// Advance width per CID in thousandths of an em.
    widths: BTreeMap<u16, f32>,
}

impl UsedGlyphs {
    fn new() -> Self {
        UsedGlyphs { remapper: GlyphRemapper::new(), to_unicode: BTreeMap::new(), widths: BTreeMap::new() }
    }

    /// Encodes a string as big-endian CIDs, recording each glyph.
    fn encode(&mut self, face: &Face, parsed: &ttf_parser::Face<'_>, text: &str) -> Vec<u8> {
        let mut out = Vec::with_capacity(text.len() * 2);
        for c in text.chars() {
            let has_glyph = parsed.glyph_index(c).is_some();
            let (gid, advance) = face.glyph(parsed, c);
            let cid = self.remapper.remap(gid);
            // A character the face lacks is drawn as the replacement glyph,
            // and extracts as what is drawn, not as what was meant.
            let drawn = if has_glyph { c } else if parsed.glyph_index('\u{FFFD}').is_some() { '\u{FFFD}' } else { '?' };
            self.to_unicode.entry(cid).or_insert(drawn);
            self.widths.insert(cid, advance * 1000.0);
            out.extend_from_slice(&cid.to_be_bytes());
        }
        out
    }
}

fn deflate(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(data).expect("writing to memory");
    enc.finish().expect("writing to memory")
}

/// Six capital letters derived from the subset's content, as PDF wants
/// for subset font names ("ABCDEF+DejaVuSans").
fn subset_tag(face: &Face, used: &UsedGlyphs) -> String {
    let mut h = Sha256::new();
    h.update(face.postscript_name.as_bytes());
    for gid in used.remapper.remapped_gids() {
        h.update(gid.to_be_bytes());
    }
    h.finalize().iter().take(6).map(|b| char::from(b'A' + b % 26)).collect()
}

/// Serialises the pages. `id_source` feeds the file identifier.
pub(crate) fn write(doc: &LetterDocument, pages: &[Page], fonts: &Fonts, id_source: &[u8]) -> Result<Vec<u8>, LetterError> {
    let mut next = 1;
    let mut alloc = || {
        let r = Ref::new(next);
        next += 1;
        r
    };
    let catalog_id = alloc();
    let tree_id = alloc();
    let info_id = alloc();
    let page_ids: Vec<(Ref, Ref)> = pages.iter().map(|_| (alloc(), alloc())).collect();
    // Per face: Type0 font, CID font, descriptor, ToUnicode, font file.
    let font_ids: Vec<[Ref; 5]> = (0..2).map(|_| [alloc(), alloc(), alloc(), alloc(), alloc()]).collect();
    let styles = [Style::Regular, Style::Bold];
    let resource_names = [Name(b"F1"), Name(b"F2")];

    let parsed = [fonts.regular.parsed(), fonts.bold.parsed()];
    let mut used = [UsedGlyphs::new(), UsedGlyphs::new()];
    let mut pdf = Pdf::new();
    pdf.set_version(1, 7);

    for (page, (page_id, content_id)) in pages.iter().zip(&page_ids) {
        let mut content = Content::new();
        for item in &page.items {
            match item {
                Item::Text { x, baseline, style, size, gray, text } => {
                    let i = styles.iter().position(|s| s == style).expect("two styles");
                    let bytes = used[i].encode(fonts.face(*style), &parsed[i], text);
                    content.begin_text();
                    content.set_fill_gray(*gray);
                    content.set_font(resource_names[i], *size);
                    content.next_line(*x, PAGE_H - baseline);
                    content.show(Str(&bytes));
                    content.end_text();
                }
                Item::Rule { x1, y1, x2, y2, width, gray } => {
                    content.set_stroke_gray(*gray);
                    content.set_line_width(*width);
                    content.move_to(*x1, PAGE_H - y1);
                    content.line_to(*x2, PAGE_H - y2);
                    content.stroke();
                }
            }
        }
        let data = deflate(&content.finish());
        pdf.stream(*content_id, &data).filter(Filter::FlateDecode);
        let mut p = pdf.page(*page_id);
        p.media_box(Rect::new(0.0, 0.0, PAGE_W, PAGE_H));
        p.parent(tree_id);
        p.contents(*content_id);
        let mut resources = p.resources();
        let mut font_dict = resources.fonts();
        for (i, name) in resource_names.iter().enumerate() {
            font_dict.pair(*name, font_ids[i][0]);
        }
        font_dict.finish();
        resources.finish();
        p.finish();
    }

    for (i, style) in styles.iter().enumerate() {
        let face = fonts.face(*style);
        let [type0_id, cid_id, descriptor_id, cmap_id, file_id] = font_ids[i];
        let glyphs = &used[i];
        let base_font = format!("{}+{}", subset_tag(face, glyphs), face.postscript_name);
        let base_font = Name(base_font.as_bytes());

        pdf.type0_font(type0_id)
            .base_font(base_font)
            .encoding_predefined(Name(b"Identity-H"))
            .descendant_font(cid_id)
            .to_unicode(cmap_id);

        let mut cid = pdf.cid_font(cid_id);
        cid.subtype(CidFontType::Type2);
        cid.base_font(base_font);
        cid.system_info(SYSTEM_INFO);
        cid.font_descriptor(descriptor_id);
        cid.default_width(0.0);
        cid.cid_to_gid_map_predefined(Name(b"Identity"));
        let count = glyphs.remapper.num_gids();
        let widths: Vec<f32> = (0..count).map(|c| glyphs.widths.get(&c).copied().unwrap_or(0.0)).collect();
        cid.widths().consecutive(0, widths);
        cid.finish();

        let scale = 1000.0 / face.units_per_em;
        let [x0, y0, x1, y1] = face.bbox;
        let mut flags = FontFlags::SYMBOLIC;
        if *style == Style::Bold {
            flags |= FontFlags::FORCE_BOLD;
        }
        pdf.font_descriptor(descriptor_id)
            .name(base_font)
            .flags(flags)
            .bbox(Rect::new(x0 * scale, y0 * scale, x1 * scale, y1 * scale))
            .italic_angle(face.italic_angle)
            .ascent(face.ascender * 1000.0)
            .descent(face.descender * 1000.0)
            .cap_height(face.cap_height * 1000.0)
            .stem_v(if *style == Style::Bold { 140.0 } else { 80.0 })
            .font_file2(file_id);

        let mut cmap = pdf_writer::types::UnicodeCmap::new(Name(b"Custom"), SYSTEM_INFO);
        for (cid, c) in &glyphs.to_unicode {
            cmap.pair(*cid, *c);
        }
        pdf.cmap(cmap_id, &cmap.finish());

        let subset = subsetter::subset(&face.data, 0, &glyphs.remapper)
            .map_err(|e| LetterError::Font(format!("subsetting {} failed: {e}", face.postscript_name)))?;
        let compressed = deflate(&subset);
        let mut stream = pdf.stream(file_id, &compressed);
        stream.filter(Filter::FlateDecode);
        stream.pair(Name(b"Length1"), subset.len() as i32);
        stream.finish();
    }

    pdf.pages(tree_id).kids(page_ids.iter().map(|(p, _)| *p)).count(pages.len() as i32);
    let mut catalog = pdf.catalog(catalog_id);
    catalog.pages(tree_id);
    catalog.lang(TextStr("de-DE"));
    catalog.viewer_preferences().display_doc_title(true);
    catalog.finish();

    let date = Date::new(u16::try_from(doc.date.year()).unwrap_or(2000)).month(doc.date.month() as u8).day(doc.date.day() as u8);
    let title = super::layout::clean_line(&doc.subject);
    let author = super::layout::clean_line(&doc.letterhead.authority);
    pdf.document_info(info_id)
        .title(TextStr(&title))
        .author(TextStr(&author))
        .creator(TextStr("nachweis"))
        .producer(TextStr("nachweis"))
        .creation_date(date);

    let id: Vec<u8> = Sha256::digest(id_source).iter().take(16).copied().collect();
    pdf.set_file_id((id.clone(), id));
    Ok(pdf.finish())
}

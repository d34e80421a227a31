//! Places a letter on A4 pages in DIN 5008 Form B: the fixed zones of page 1
//! (letterhead, address field, information block, fold and hole marks),
//! then subject and body set line by line from the fonts' glyph advances,
//! with page breaks that leave no heading or single line stranded.
//!
//! Positions are in PostScript points measured from the top-left corner;
//! `pdf.rs` turns them into PDF coordinates.
use super::fonts::{Fonts, Style};
use super::{LetterDocument, LetterError};
use crate::domain::dates::date_de;

/// One millimetre in points.
pub(crate) const MM: f32 = 72.0 / 25.4;
pub(crate) const PAGE_W: f32 = 210.0 * MM;
pub(crate) const PAGE_H: f32 = 297.0 * MM;

// DIN 5008 Form B geometry (sources in the module doc of `letter`).
/// Fluchtlinie: text starts 25 mm from the left edge, ends 20 mm from the right.
const LEFT: f32 = 25.0 * MM;
const RIGHT: f32 = 190.0 * MM;
/// Address field: 85 × 45 mm, 20 mm from the left and 45 mm from the top edge.
pub(crate) const FIELD_X: f32 = 20.0 * MM;
pub(crate) const FIELD_TOP: f32 = 45.0 * MM;
pub(crate) const FIELD_W: f32 = 85.0 * MM;
pub(crate) const FIELD_H: f32 = 45.0 * MM;
/// The Anschriftzone starts 17.7 mm below the field's top (the Zusatz- und
/// Vermerkzone with the return address is above it) and is 27.3 mm high.
pub(crate) const ADDRESS_TOP: f32 = FIELD_TOP + 17.7 * MM;
/// The recipient's lines start at the Fluchtlinie inside the field.
const ADDRESS_X: f32 = LEFT;
/// At most six lines in the Anschriftzone.
pub(crate) const MAX_ADDRESS_LINES: usize = 6;
/// Information block: from 125 mm to at most 10 mm before the right edge,
/// top 50 mm (Form B).
pub(crate) const INFO_X: f32 = 125.0 * MM;
const INFO_RIGHT: f32 = 200.0 * MM;
pub(crate) const INFO_TOP: f32 = 50.0 * MM;
/// Fold marks (Form B) and the hole mark, from the top edge.
const FOLD_MARKS: [f32; 2] = [105.0 * MM, 210.0 * MM];
const HOLE_MARK: f32 = 148.5 * MM;

/// Body text: size and line pitch (10 pt on 13 pt ≈ 4.6 mm).
const BODY_SIZE: f32 = 10.0;
const BODY_LEADING: f32 = 13.0;
/// List items hang 5 mm in, the bullet at the Fluchtlinie.
const HANGING_INDENT: f32 = 5.0 * MM;
const ITEM_GAP: f32 = 3.0;
/// Lower end of the text area; below it only the page number.
const BODY_BOTTOM: f32 = 270.0 * MM;
const FOOTER_BASELINE: f32 = 284.0 * MM;
/// Follow pages: header line (reference, page number), then the body.
const FOLLOW_HEADER_BASELINE: f32 = 15.0 * MM;
const FOLLOW_BODY_TOP: f32 = 25.0 * MM;
/// A subject is a line or two; more would push the body off page 1.
pub(crate) const MAX_SUBJECT_LINES: usize = 4;
/// Letters longer than this are refused (a pasted document, not a letter).
pub(crate) const MAX_PAGES: usize = 30;
/// Lines that must stay together at a break: a paragraph leaves at least
/// this many lines on either page.
const MIN_LINES_AT_BREAK: usize = 2;

/// Something drawn on a page.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Item {
    Text { x: f32, baseline: f32, style: Style, size: f32, gray: f32, text: String },
    Rule { x1: f32, y1: f32, x2: f32, y2: f32, width: f32, gray: f32 },
}

/// One laid-out page.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Page {
    pub items: Vec<Item>,
}

/// Text measuring with both faces parsed once per letter.
pub(crate) struct Measure<'a> {
    fonts: &'a Fonts,
    regular: ttf_parser::Face<'a>,
    bold: ttf_parser::Face<'a>,
}

impl<'a> Measure<'a> {
    pub fn new(fonts: &'a Fonts) -> Self {
        Measure { fonts, regular: fonts.regular.parsed(), bold: fonts.bold.parsed() }
    }

    pub fn width(&self, style: Style, size: f32, text: &str) -> f32 {
        let parsed = match style {
            Style::Regular => &self.regular,
            Style::Bold => &self.bold,
        };
        self.fonts.face(style).width_em(parsed, text) * size
    }

    /// The baseline of a line whose box of height `leading` starts at `top`:
    /// the glyphs' ascent-to-descent span is centred in the box, so the
    /// ink (and a text extractor's bounding box) stays inside it.
    fn baseline(&self, style: Style, size: f32, leading: f32, top: f32) -> f32 {
        let face = self.fonts.face(style);
        let span = (face.ascender - face.descender) * size;
        top + ((leading - span) / 2.0).max(0.0) + face.ascender * size
    }

    /// Breaks `text` into lines no wider than `width` (greedy first fit,
    /// which is what DIN 5008's ragged-right setting wants). Spaces after
    /// "§", "Abs.", "Nr." and no-break spaces do not break; a word wider
    /// than the line is broken after a hyphen, slash, dot or @ if it can
    /// be, else between letters, so nothing runs off the page.
    pub fn wrap(&self, style: Style, size: f32, text: &str, width: f32) -> Vec<String> {
        let space = self.width(style, size, " ");
        let mut lines = Vec::new();
        let mut line = String::new();
        let mut line_w = 0.0f32;
        for unit in units(text) {
            let w = self.width(style, size, &unit);
            let needed = if line.is_empty() { w } else { line_w + space + w };
            if needed <= width {
                if !line.is_empty() {
                    line.push(' ');
                }
                line.push_str(&unit);
                line_w = needed;
                continue;
            }
            if !line.is_empty() {
                lines.push(std::mem::take(&mut line));
            }
            // The unit alone: it fits, or it is broken into pieces.
            let mut rest = unit.as_str();
            while self.width(style, size, rest) > width {
                let cut = self.break_point(style, size, rest, width);
                lines.push(rest[..cut].to_string());
                rest = &rest[cut..];
            }
            line.push_str(rest);
            line_w = self.width(style, size, rest);
        }
        if !line.is_empty() || lines.is_empty() {
            lines.push(line);
        }
        // No-break spaces were kept through breaking; print them as spaces.
        lines.into_iter().map(|l| l.replace('\u{a0}', " ")).collect()
    }

    /// Byte index at which to cut an over-long word: after the last break
    /// character that fits, else after the last letter that fits (at least one).
    fn break_point(&self, style: Style, size: f32, word: &str, width: f32) -> usize {
        let mut fits_at = 0;
        let mut soft_at = 0;
        let mut w = 0.0;
        for (i, c) in word.char_indices() {
            let mut buf = [0u8; 4];
            w += self.width(style, size, c.encode_utf8(&mut buf));
            if w > width {
                break;
            }
            fits_at = i + c.len_utf8();
            if matches!(c, '-' | '/' | '.' | '@' | '_' | '–') && fits_at < word.len() {
                soft_at = fits_at;
            }
        }
        let cut = if soft_at > 0 { soft_at } else { fits_at };
        if cut == 0 { word.chars().next().map_or(word.len(), char::len_utf8) } else { cut }
    }
}

/// Splits text at spaces into unbreakable units, gluing the short words
/// after which DIN 5008 wants a protected space ("§ 66", "Abs. 3").
fn units(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut glue = false;
    for word in text.split(' ').filter(|w| !w.is_empty()) {
        match out.last_mut() {
            Some(last) if glue => {
                last.push('\u{a0}');
                last.push_str(word);
            }
            _ => out.push(word.to_string()),
        }
        glue = matches!(word, "§" | "§§" | "Abs." | "Nr." | "Art." | "S.");
    }
    out
}

/// Removes control characters and folds whitespace runs: for one-line
/// fields (address lines, letterhead, subject), which are data, not layout.
pub(crate) fn clean_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() || c.is_whitespace() && c != '\u{a0}' { ' ' } else { c })
        .collect::<String>()
        .split(' ')
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// A source line of the body: plain text or a list item.
#[derive(Debug, Clone, PartialEq)]
enum SourceLine {
    Text(String),
    Item { bullet: char, text: String },
}

/// Reads the caseworker's body: paragraphs separated by blank lines, hard
/// line breaks kept, list items starting with "– ", "• ", "- " or "* ";
/// an indented line after an item continues it.
fn paragraphs(body: &str) -> Vec<Vec<SourceLine>> {
    let mut paras: Vec<Vec<SourceLine>> = Vec::new();
    let mut current: Vec<SourceLine> = Vec::new();
    for raw in body.replace("\r\n", "\n").replace('\r', "\n").split('\n') {
        let indented = raw.starts_with([' ', '\t']);
        let line = clean_line(raw);
        if line.is_empty() {
            if !current.is_empty() {
                paras.push(std::mem::take(&mut current));
            }
            continue;
        }
        let bullet = ["– ", "• ", "- ", "* "].iter().find(|b| line.starts_with(**b));
        match bullet {
            Some(b) => {
                let bullet = if b.starts_with('•') || b.starts_with('*') { '•' } else { '–' };
                current.push(SourceLine::Item { bullet, text: line[b.len()..].trim().to_string() });
            }
            None => match current.last_mut() {
                Some(SourceLine::Item { text, .. }) if indented => {
                    text.push(' ');
                    text.push_str(&line);
                }
                _ => current.push(SourceLine::Text(line)),
            },
        }
    }
    if !current.is_empty() {
        paras.push(current);
    }
    paras
}

/// A piece of one body line at an offset from the Fluchtlinie.
#[derive(Debug, Clone)]
struct Part {
    dx: f32,
    style: Style,
    text: String,
}

/// Lines that are laid out together, with the rules for breaking them.
#[derive(Debug, Clone)]
struct Block {
    lines: Vec<Vec<Part>>,
    space_before: f32,
    /// Must not end a page: a heading, an introduction ending in ":", the
    /// salutation, "Mit freundlichen Grüßen".
    keep_with_next: bool,
}

fn body_blocks(m: &Measure<'_>, body: &str, enclosures: &[String]) -> Vec<Block> {
    let width = RIGHT - LEFT;
    let mut blocks = Vec::new();
    for para in paragraphs(body) {
        let mut text_run: Vec<String> = Vec::new();
        let mut first = true;
        let last_index = para.len() - 1;
        let flush = |run: &mut Vec<String>, blocks: &mut Vec<Block>, first: &mut bool, is_last: bool| {
            if run.is_empty() {
                return;
            }
            let mut lines = Vec::new();
            for t in run.drain(..) {
                for l in m.wrap(Style::Regular, BODY_SIZE, &t, width) {
                    lines.push(vec![Part { dx: 0.0, style: Style::Regular, text: l }]);
                }
            }
            // A one-line paragraph that is not a sentence is a heading of
            // what follows (salutation, "Mit freundlichen Grüßen").
            let heading_like = lines.len() == 1
                && !lines[0][0].text.ends_with(['.', '!', '?'])
                && is_last;
            // An introduction ("… folgende Unterlagen:") stays with its list.
            let introduces = lines.last().is_some_and(|l| l[0].text.ends_with(':'));
            blocks.push(Block {
                lines,
                space_before: if *first { BODY_LEADING } else { 0.0 },
                keep_with_next: introduces || (is_last && heading_like),
            });
            *first = false;
        };
        for (i, line) in para.iter().enumerate() {
            match line {
                SourceLine::Text(t) => text_run.push(t.clone()),
                SourceLine::Item { bullet, text } => {
                    flush(&mut text_run, &mut blocks, &mut first, false);
                    let mut lines = Vec::new();
                    for (k, l) in m.wrap(Style::Regular, BODY_SIZE, text, width - HANGING_INDENT).into_iter().enumerate() {
                        let mut parts = Vec::new();
                        if k == 0 {
                            parts.push(Part { dx: 0.0, style: Style::Regular, text: bullet.to_string() });
                        }
                        parts.push(Part { dx: HANGING_INDENT, style: Style::Regular, text: l });
                        lines.push(parts);
                    }
                    blocks.push(Block {
                        lines,
                        space_before: if first { BODY_LEADING } else { ITEM_GAP },
                        keep_with_next: false,
                    });
                    first = false;
                }
            }
            if i == last_index {
                flush(&mut text_run, &mut blocks, &mut first, true);
            }
        }
    }
    let enclosures: Vec<String> = enclosures.iter().map(|e| clean_line(e)).filter(|e| !e.is_empty()).collect();
    if !enclosures.is_empty() {
        // Lines starting with "– " detail the enclosure before them (the
        // overview of received documents lists each upload); they are not
        // enclosures of their own.
        let count = enclosures.iter().filter(|e| !e.starts_with("– ")).count();
        let heading = if count <= 1 { "Anlage" } else { "Anlagen" };
        let mut lines = vec![vec![Part { dx: 0.0, style: Style::Bold, text: heading.to_string() }]];
        for e in &enclosures {
            for l in m.wrap(Style::Regular, BODY_SIZE, e, width) {
                lines.push(vec![Part { dx: 0.0, style: Style::Regular, text: l }]);
            }
        }
        blocks.push(Block { lines, space_before: BODY_LEADING * 2.0, keep_with_next: false });
    }
    blocks
}

/// Lays out the whole letter.
pub(crate) fn layout(doc: &LetterDocument, fonts: &Fonts) -> Result<Vec<Page>, LetterError> {
    let m = Measure::new(fonts);
    let mut first = Page::default();
    letterhead(&m, doc, &mut first);
    marks(&mut first);
    return_address(&m, doc, &mut first);
    address(&m, doc, &mut first)?;
    let info_bottom = info_block(&m, doc, &mut first);

    // Subject: two blank lines below the address field or the information
    // block, whichever ends lower (DIN 5008 Form B: 98.4 mm at the earliest).
    let mut y = (FIELD_TOP + FIELD_H).max(info_bottom) + 2.0 * 4.23 * MM;
    let subject = m.wrap(Style::Bold, BODY_SIZE, &clean_line(&doc.subject), RIGHT - LEFT);
    if subject.len() > MAX_SUBJECT_LINES {
        return Err(LetterError::SubjectTooLong { lines: subject.len(), max: MAX_SUBJECT_LINES });
    }
    for line in subject {
        let baseline = m.baseline(Style::Bold, BODY_SIZE, BODY_LEADING, y);
        first.items.push(text(LEFT, baseline, Style::Bold, BODY_SIZE, line));
        y += BODY_LEADING;
    }
    // Two blank lines after the subject; the first block's own gap is one.
    y += BODY_LEADING;

    let blocks = body_blocks(&m, &doc.body, &doc.enclosures);
    let mut pages = vec![first];
    let mut at_top = false;
    for (bi, block) in blocks.iter().enumerate() {
        let mut start = 0usize;
        while start < block.lines.len() {
            let n = block.lines.len() - start;
            let gap = if at_top { 0.0 } else { block.space_before };
            let room = ((BODY_BOTTOM - y - gap) / BODY_LEADING + 1e-3).floor().max(0.0) as usize;
            let follower = if block.keep_with_next {
                blocks.get(bi + 1).map_or(0.0, |b| b.space_before + b.lines.len().min(MIN_LINES_AT_BREAK) as f32 * BODY_LEADING)
            } else {
                0.0
            };
            let whole_fits = y + gap + n as f32 * BODY_LEADING + follower <= BODY_BOTTOM;
            let take = if whole_fits {
                n
            } else if start == 0 && n >= 2 * MIN_LINES_AT_BREAK && room >= MIN_LINES_AT_BREAK && !block.keep_with_next {
                // Split, leaving at least two lines on each page.
                room.min(n - MIN_LINES_AT_BREAK)
            } else if start > 0 && room >= MIN_LINES_AT_BREAK && n > room {
                // The rest of a long block that still needs another page.
                room.min(n - MIN_LINES_AT_BREAK).max(1)
            } else if at_top {
                // Taller than a whole page: no rule can be kept.
                room.max(1).min(n)
            } else {
                0
            };
            if take > 0 {
                y += gap;
                let page = pages.last_mut().expect("at least one page");
                for parts in &block.lines[start..start + take] {
                    for p in parts {
                        let baseline = m.baseline(p.style, BODY_SIZE, BODY_LEADING, y);
                        page.items.push(text(LEFT + p.dx, baseline, p.style, BODY_SIZE, p.text.clone()));
                    }
                    y += BODY_LEADING;
                }
                start += take;
                at_top = false;
            }
            if start < block.lines.len() || (take == 0) {
                if pages.len() >= MAX_PAGES {
                    return Err(LetterError::TooLong { max_pages: MAX_PAGES });
                }
                pages.push(Page::default());
                y = FOLLOW_BODY_TOP;
                at_top = true;
            }
        }
    }
    page_furniture(&m, doc, &mut pages);
    Ok(pages)
}

fn text(x: f32, baseline: f32, style: Style, size: f32, text: String) -> Item {
    Item::Text { x, baseline, style, size, gray: 0.0, text }
}

/// Authority (bold) and department at the top of the 45 mm letterhead zone.
fn letterhead(m: &Measure<'_>, doc: &LetterDocument, page: &mut Page) {
    let mut y = 14.0 * MM;
    for line in m.wrap(Style::Bold, 15.0, &clean_line(&doc.letterhead.authority), RIGHT - LEFT).into_iter().take(2) {
        page.items.push(text(LEFT, m.baseline(Style::Bold, 15.0, 18.0, y), Style::Bold, 15.0, line));
        y += 18.0;
    }
    for line in m.wrap(Style::Regular, 10.0, &clean_line(&doc.letterhead.department), RIGHT - LEFT).into_iter().take(2) {
        page.items.push(text(LEFT, m.baseline(Style::Regular, 10.0, 13.0, y), Style::Regular, 10.0, line));
        y += 13.0;
    }
}

/// Fold marks and the hole mark on the left edge.
fn marks(page: &mut Page) {
    for y in FOLD_MARKS {
        page.items.push(Item::Rule { x1: 3.0 * MM, y1: y, x2: 8.0 * MM, y2: y, width: 0.4, gray: 0.4 });
    }
    page.items.push(Item::Rule { x1: 3.0 * MM, y1: HOLE_MARK, x2: 10.0 * MM, y2: HOLE_MARK, width: 0.4, gray: 0.4 });
}

/// The Rücksendeangabe: the lowest line(s) of the Zusatz- und Vermerkzone,
/// 8 pt, smaller (down to 6 pt) when it would not fit in one line.
fn return_address(m: &Measure<'_>, doc: &LetterDocument, page: &mut Page) {
    let line = clean_line(&doc.letterhead.return_address);
    if line.is_empty() {
        return;
    }
    let width = FIELD_X + FIELD_W - ADDRESS_X;
    let natural = m.width(Style::Regular, 8.0, &line);
    let size = if natural <= width { 8.0 } else { (8.0 * width / natural).max(6.0) };
    let lines: Vec<String> = m.wrap(Style::Regular, size, &line, width).into_iter().take(5).collect();
    let leading = size * 1.25;
    let mut top = ADDRESS_TOP - 1.0 * MM - leading * lines.len() as f32;
    for l in lines {
        page.items.push(Item::Text {
            x: ADDRESS_X,
            baseline: m.baseline(Style::Regular, size, leading, top),
            style: Style::Regular,
            size,
            gray: 0.25,
            text: l,
        });
        top += leading;
    }
}

/// The recipient in the Anschriftzone: 10 pt, smaller (down to 8 pt) when a
/// line is too wide, wrapped as a last resort; more than six lines is an error.
fn address(m: &Measure<'_>, doc: &LetterDocument, page: &mut Page) -> Result<(), LetterError> {
    let lines: Vec<String> = doc.address.iter().map(|l| clean_line(l)).filter(|l| !l.is_empty()).collect();
    if lines.is_empty() {
        return Err(LetterError::EmptyAddress);
    }
    if lines.len() > MAX_ADDRESS_LINES {
        return Err(LetterError::AddressTooLong { lines: lines.len(), max: MAX_ADDRESS_LINES });
    }
    let width = FIELD_X + FIELD_W - ADDRESS_X;
    let widest = lines.iter().map(|l| m.width(Style::Regular, 1.0, l)).fold(0.0f32, f32::max);
    let size = (width / widest.max(1e-3)).clamp(8.0, 10.0);
    let wrapped: Vec<String> = lines.iter().flat_map(|l| m.wrap(Style::Regular, size, l, width)).collect();
    if wrapped.len() > MAX_ADDRESS_LINES {
        return Err(LetterError::AddressTooLong { lines: wrapped.len(), max: MAX_ADDRESS_LINES });
    }
    let leading = size * 1.2;
    let mut top = ADDRESS_TOP;
    for l in wrapped {
        page.items.push(text(ADDRESS_X, m.baseline(Style::Regular, size, leading, top), Style::Regular, size, l));
        top += leading;
    }
    Ok(())
}

/// The information block (gestalteter Informationsblock): key words in
/// small grey type, values aligned on their own line; returns its bottom.
fn info_block(m: &Measure<'_>, doc: &LetterDocument, page: &mut Page) -> f32 {
    const LABEL_SIZE: f32 = 7.5;
    const VALUE_SIZE: f32 = 9.0;
    const LEADING: f32 = 11.5;
    let lh = &doc.letterhead;
    let your = doc.your_reference.as_deref().map(clean_line).filter(|s| !s.is_empty());
    let rows: Vec<Option<(&str, String)>> = vec![
        your.map(|v| ("Ihr Zeichen", v)),
        Some(("Unser Zeichen", clean_line(&doc.reference))),
        None,
        Some(("Ansprechpartner", clean_line(&lh.contact_name))),
        Some(("Telefon", clean_line(&lh.contact_phone))),
        Some(("E-Mail", clean_line(&lh.contact_email))),
        None,
        Some(("Datum", date_de(doc.date))),
    ];
    let rows: Vec<Option<(&str, String)>> = rows.into_iter().filter(|r| r.as_ref().is_none_or(|(_, v)| !v.is_empty())).collect();
    let label_w = rows.iter().flatten().map(|(l, _)| m.width(Style::Regular, LABEL_SIZE, l)).fold(0.0f32, f32::max);
    let value_x = INFO_X + label_w + 2.5 * MM;
    let mut y = INFO_TOP;
    let mut previous_blank = true;
    for row in rows {
        let Some((label, value)) = row else {
            if !previous_blank {
                y += LEADING * 0.6;
            }
            previous_blank = true;
            continue;
        };
        previous_blank = false;
        page.items.push(Item::Text {
            x: INFO_X,
            baseline: m.baseline(Style::Regular, VALUE_SIZE, LEADING, y),
            style: Style::Regular,
            size: LABEL_SIZE,
            gray: 0.35,
            text: label.to_string(),
        });
        // A value without spaces (e-mail address, reference) that is too
        // wide for its column moves below its key word at the block's full
        // width rather than being torn apart.
        let column = INFO_RIGHT - value_x;
        let (x, width) = if !value.contains(' ') && m.width(Style::Regular, VALUE_SIZE, &value) > column {
            y += LEADING;
            (INFO_X, INFO_RIGHT - INFO_X)
        } else {
            (value_x, column)
        };
        for l in m.wrap(Style::Regular, VALUE_SIZE, &value, width) {
            page.items.push(text(x, m.baseline(Style::Regular, VALUE_SIZE, LEADING, y), Style::Regular, VALUE_SIZE, l));
            y += LEADING;
        }
    }
    y
}

/// Page numbers when there is more than one page: "Seite 1 von N" at the
/// foot of page 1; on follow pages a header with the reference and the page.
fn page_furniture(m: &Measure<'_>, doc: &LetterDocument, pages: &mut [Page]) {
    let total = pages.len();
    if total < 2 {
        return;
    }
    let size = 8.0;
    for (i, page) in pages.iter_mut().enumerate() {
        let number = format!("Seite {} von {total}", i + 1);
        let number_w = m.width(Style::Regular, size, &number);
        if i == 0 {
            page.items.push(text(RIGHT - number_w, FOOTER_BASELINE, Style::Regular, size, number));
            continue;
        }
        let left = format!("{} · Unser Zeichen {} · Schreiben vom {}", clean_line(&doc.letterhead.authority), clean_line(&doc.reference), date_de(doc.date));
        let left = m.wrap(Style::Regular, size, &left, RIGHT - LEFT - number_w - 5.0 * MM).into_iter().next().unwrap_or_default();
        page.items.push(text(LEFT, FOLLOW_HEADER_BASELINE, Style::Regular, size, left));
        page.items.push(text(RIGHT - number_w, FOLLOW_HEADER_BASELINE, Style::Regular, size, number));
        let rule_y = FOLLOW_HEADER_BASELINE + 2.5 * MM;
        page.items.push(Item::Rule { x1: LEFT, y1: rule_y, x2: RIGHT, y2: rule_y, width: 0.3, gray: 0.5 });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_paragraphs_keep_hard_breaks_and_recognise_list_items() {
        let paras = paragraphs("Guten Tag,\n\nwir brauchen:\n– A\n  weiter A\n• B\n\nIm Auftrag\nMaria\u{7} Muster");
        assert_eq!(paras.len(), 3);
        assert_eq!(paras[1][1], SourceLine::Item { bullet: '–', text: "A weiter A".into() });
        assert_eq!(paras[1][2], SourceLine::Item { bullet: '•', text: "B".into() });
        assert_eq!(paras[2], vec![SourceLine::Text("Im Auftrag".into()), SourceLine::Text("Maria Muster".into())]);
    }

    #[test]
    fn the_space_after_a_paragraph_sign_does_not_break() {
        assert_eq!(units("nach § 66 Abs. 3 SGB I"), vec!["nach", "§\u{a0}66", "Abs.\u{a0}3", "SGB", "I"]);
    }
}

//! The two faces a letter is set in (regular and bold), loaded once at
//! start-up from TrueType files, with the glyph metrics the line breaker
//! needs and the checks that the German letter repertoire is covered.
//!
//! The default is Debian's `fonts-dejavu-core`; any TrueType pair works.
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// File names looked up in `fonts_dir` by `Fonts::load`.
pub const REGULAR_FILE: &str = "DejaVuSans.ttf";
pub const BOLD_FILE: &str = "DejaVuSans-Bold.ttf";

/// Characters every letter may contain; a face without any of them is
/// refused at start-up rather than printing boxes into a citizen's letter.
const REQUIRED_CHARS: &str = "AZaz09ÄÖÜäöüß§€„“‚‘–—…·•@/()-.,:;!? ";

/// Why the fonts could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum FontError {
    #[error("cannot read font file {path}: {source} (set fonts_dir / NACHWEIS_FONTS_DIR; on Debian install fonts-dejavu-core)")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("font {name} is not a readable TrueType/OpenType font: {message}")]
    Parse { name: String, message: String },
    #[error("font {name} has no glyphs for {missing:?}")]
    MissingGlyphs { name: String, missing: String },
}

/// Which of the two faces a run of text uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Style {
    Regular,
    Bold,
}

/// One loaded face: its bytes and the metrics read from them.
#[derive(Debug)]
pub(crate) struct Face {
    pub data: Arc<Vec<u8>>,
    /// The PostScript name (`DejaVuSans-Bold`), used in the PDF's BaseFont.
    pub postscript_name: String,
    pub units_per_em: f32,
    /// Ascender and descender in em (descender is negative).
    pub ascender: f32,
    pub descender: f32,
    pub cap_height: f32,
    /// Global bounding box in font units: x_min, y_min, x_max, y_max.
    pub bbox: [f32; 4],
    pub italic_angle: f32,
    /// Glyph id and advance (em) of U+FFFD or '?', drawn for characters the
    /// face does not have.
    replacement: (u16, f32),
}

impl Face {
    fn parse(data: Vec<u8>, fallback_name: &str) -> Result<Face, FontError> {
        let metrics = {
            let parsed = ttf_parser::Face::parse(&data, 0)
                .map_err(|e| FontError::Parse { name: fallback_name.to_string(), message: e.to_string() })?;
            let postscript_name = parsed
                .names()
                .into_iter()
                .filter(|n| n.name_id == ttf_parser::name_id::POST_SCRIPT_NAME)
                .find_map(|n| n.to_string())
                .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_graphic() && !b"/[]()<>{}%#".contains(&b)))
                .unwrap_or_else(|| fallback_name.chars().filter(char::is_ascii_alphanumeric).collect());
            let missing: String = REQUIRED_CHARS.chars().filter(|c| parsed.glyph_index(*c).is_none()).collect();
            if !missing.is_empty() {
                return Err(FontError::MissingGlyphs { name: postscript_name, missing });
            }
            let upem = f32::from(parsed.units_per_em().max(1));
            let bb = parsed.global_bounding_box();
            let replacement = ['\u{FFFD}', '?']
                .iter()
                .find_map(|c| parsed.glyph_index(*c))
                .map(|g| (g.0, f32::from(parsed.glyph_hor_advance(g).unwrap_or(0)) / upem))
                .unwrap_or((0, 0.5));
            Face {
                data: Arc::new(Vec::new()),
                postscript_name,
                units_per_em: upem,
                ascender: f32::from(parsed.ascender()) / upem,
                descender: f32::from(parsed.descender()) / upem,
                cap_height: f32::from(parsed.capital_height().unwrap_or(parsed.ascender())) / upem,
                bbox: [f32::from(bb.x_min), f32::from(bb.y_min), f32::from(bb.x_max), f32::from(bb.y_max)],
                italic_angle: parsed.italic_angle(),
                replacement,
            }
        };
        // The metrics were read from a borrow of `data`; now it can move in.
        Ok(Face { data: Arc::new(data), ..metrics })
    }

    /// Parses the face again for glyph lookups. ttf-parser parses lazily, so
    /// this costs microseconds; it keeps `Face` free of self-references.
    pub fn parsed(&self) -> ttf_parser::Face<'_> {
        ttf_parser::Face::parse(&self.data, 0).expect("validated when loaded")
    }

    /// Glyph id and advance width in em of a character, or of the
    /// replacement glyph when the face has none.
    pub fn glyph(&self, parsed: &ttf_parser::Face<'_>, c: char) -> (u16, f32) {
        match parsed.glyph_index(c) {
            Some(g) => (g.0, f32::from(parsed.glyph_hor_advance(g).unwrap_or(0)) / self.units_per_em),
            None => self.replacement,
        }
    }

    /// Advance width of `text` at 1 pt (no kerning: letters are set plain).
    pub fn width_em(&self, parsed: &ttf_parser::Face<'_>, text: &str) -> f32 {
        text.chars().map(|c| self.glyph(parsed, c).1).sum()
    }
}

/// The regular and bold face. Cheap to clone (the font bytes are shared).
#[derive(Debug, Clone)]
pub struct Fonts {
    pub(crate) regular: Arc<Face>,
    pub(crate) bold: Arc<Face>,
}

impl Fonts {
    /// Reads `DejaVuSans.ttf` and `DejaVuSans-Bold.ttf` from `dir`
    /// (`Settings::fonts_dir`).
    pub fn load(dir: &Path) -> Result<Fonts, FontError> {
        let read = |name: &str| {
            let path = dir.join(name);
            std::fs::read(&path).map_err(|source| FontError::Read { path, source })
        };
        Fonts::from_bytes(read(REGULAR_FILE)?, read(BOLD_FILE)?)
    }

    /// Builds the pair from font file contents (TrueType or OpenType).
    pub fn from_bytes(regular: Vec<u8>, bold: Vec<u8>) -> Result<Fonts, FontError> {
        Ok(Fonts {
            regular: Arc::new(Face::parse(regular, "regular")?),
            bold: Arc::new(Face::parse(bold, "bold")?),
        })
    }

    pub(crate) fn face(&self, style: Style) -> &Face {
        match style {
            Style::Regular => &self.regular,
            Style::Bold => &self.bold,
        }
    }
}

//! Which words on a page image to highlight for a segment's evidence: the
//! OCR word boxes of the rendered page are matched against the evidence
//! phrases with the same folding and OCR-tolerant search as classification
//! (`text::fold`, `text::find`), so what the caseworker sees marked is what
//! the classifier counted.
//!
//! Pure: word boxes in, word indices out; the rendering is an adapter's job.
use serde::{Deserialize, Serialize};

use super::text::{find, fold};

/// One recognised word on a rendered page image, in that image's pixels.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WordBox {
    pub text: String,
    /// Left edge, top edge, width and height in pixels of the PNG.
    pub x: u32,
    pub y: u32,
    pub w: u32,
    pub h: u32,
    /// Tesseract's word confidence, 0..=100.
    pub confidence: f32,
    /// Line number on the page (reading order), so a word hyphenated at a
    /// line end can be joined with its continuation.
    pub line: u32,
}

/// One occurrence of an evidence phrase on the page.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Highlight {
    /// The phrase as given (as the evidence list shows it).
    pub phrase: String,
    /// Indices into the word list, in reading order; a phrase of several
    /// words covers all of them.
    pub words: Vec<usize>,
    /// Character edits the match needed (0 = exact).
    pub errors: usize,
}

/// Finds every occurrence of every phrase among the words. Phrases that
/// fold to nothing are ignored; an occurrence is reported once per phrase.
pub fn highlights(words: &[WordBox], phrases: &[String]) -> Vec<Highlight> {
    let page = FoldedPage::new(words);
    let mut out = Vec::new();
    for phrase in phrases {
        let needle = fold(phrase);
        let needle = needle.trim();
        if needle.is_empty() {
            continue;
        }
        let mut offset = 0usize;
        while offset < page.text.len() {
            let Some(hit) = find(&page.text[offset..], needle, true) else { break };
            let (start, end) = (offset + hit.start, offset + hit.end);
            let covered = page.words_in(start, end);
            if !covered.is_empty() {
                out.push(Highlight { phrase: phrase.clone(), words: covered, errors: hit.errors });
            }
            // Continue after this hit, at a word boundary (the folded text
            // keeps a space before every word, which `find` relies on).
            // Searched as bytes: an approximate match may end inside a
            // multi-byte letter, a space never does.
            let from = end.max(offset + 1).min(page.text.len());
            offset = page.text.as_bytes()[from..].iter().position(|&b| b == b' ').map_or(page.text.len(), |i| from + i);
        }
    }
    out
}

/// The indices of all words that belong to some occurrence of a phrase,
/// sorted and without duplicates: what the page view outlines.
pub fn highlighted_words(words: &[WordBox], phrases: &[String]) -> Vec<usize> {
    let mut all: Vec<usize> = highlights(words, phrases).into_iter().flat_map(|h| h.words).collect();
    all.sort_unstable();
    all.dedup();
    all
}

/// The page's words folded into one searchable string, with the byte range
/// of every word's folded form.
struct FoldedPage {
    text: String,
    /// (start, end, word index) in `text`, in order.
    spans: Vec<(usize, usize, usize)>,
}

impl FoldedPage {
    fn new(words: &[WordBox]) -> Self {
        let mut text = String::from(" ");
        let mut spans = Vec::new();
        let mut joined_to_previous = false;
        for (i, w) in words.iter().enumerate() {
            let folded = fold(&w.text);
            let folded = folded.trim();
            if folded.is_empty() {
                continue;
            }
            let start = if joined_to_previous {
                // Undo the separating space: "Geburts-" + "urkunde".
                text.pop();
                text.len()
            } else {
                text.len()
            };
            text.push_str(folded);
            spans.push((start, text.len(), i));
            text.push(' ');
            // A word ending in a hyphen at the end of its line continues on
            // the next line, as `fold` joins "Geburts-\nurkunde" in page text.
            let last_on_line = words.get(i + 1).is_none_or(|n| n.line != w.line);
            joined_to_previous = last_on_line && w.text.ends_with(['-', '¬']) && words.get(i + 1).is_some();
        }
        FoldedPage { text, spans }
    }

    /// Words whose folded form overlaps `start..end`.
    fn words_in(&self, start: usize, end: usize) -> Vec<usize> {
        let mut out: Vec<usize> = self.spans.iter().filter(|(s, e, _)| *s < end && *e > start).map(|(_, _, i)| *i).collect();
        out.dedup();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(lines: &[&str]) -> Vec<WordBox> {
        let mut out = Vec::new();
        for (l, line) in lines.iter().enumerate() {
            for (k, t) in line.split(' ').enumerate() {
                out.push(WordBox { text: t.into(), x: k as u32 * 50, y: l as u32 * 20, w: 40, h: 15, confidence: 90.0, line: l as u32 });
            }
        }
        out
    }

    fn texts(words: &[WordBox], idx: &[usize]) -> Vec<String> {
        idx.iter().map(|&i| words[i].text.clone()).collect()
    }

    #[test]
    fn a_multi_word_phrase_highlights_all_its_words() {
        let w = page(&["Auszug aus dem", "Geburtenregister des Standesamts Musterstadt"]);
        let h = highlights(&w, &["Auszug aus dem Geburtenregister".to_string()]);
        assert_eq!(h.len(), 1);
        assert_eq!(texts(&w, &h[0].words), ["Auszug", "aus", "dem", "Geburtenregister"]);
    }

    #[test]
    fn folding_and_ocr_errors_match_like_classification() {
        // "Meldebescheiniqung" is one OCR error away; umlauts fold (ü → ue).
        let w = page(&["MELDEBESCHEINIQUNG", "für Herrn Müller"]);
        let idx = highlighted_words(&w, &["Meldebescheinigung".to_string(), "für".to_string()]);
        assert_eq!(texts(&w, &idx), ["MELDEBESCHEINIQUNG", "für"]);
    }

    #[test]
    fn a_word_hyphenated_at_the_line_end_is_found_across_the_break() {
        let w = page(&["Die Geburts-", "urkunde liegt vor"]);
        let idx = highlighted_words(&w, &["Geburtsurkunde".to_string()]);
        assert_eq!(texts(&w, &idx), ["Geburts-", "urkunde"]);
    }

    #[test]
    fn every_occurrence_is_highlighted_and_short_phrases_need_word_starts() {
        let w = page(&["Standesamt Musterstadt", "Gesamtbetrag", "Standesamt"]);
        let h = highlights(&w, &["Standesamt".to_string(), "amt".to_string()]);
        assert_eq!(h.iter().filter(|h| h.phrase == "Standesamt").count(), 2);
        assert!(h.iter().all(|h| h.phrase != "amt"), "'amt' inside a word is no evidence: {h:?}");
    }

    #[test]
    fn punctuation_only_words_and_empty_phrases_are_ignored() {
        let w = page(&["– Geburtsurkunde –"]);
        assert_eq!(highlighted_words(&w, &["".into(), "--".into(), "Geburtsurkunde".into()]), vec![1]);
        assert!(highlights(&[], &["Geburtsurkunde".into()]).is_empty());
    }

    #[test]
    fn non_latin_letters_near_a_tolerant_match_do_not_break_the_search() {
        // Dotless ı and Greek letters stay multi-byte after folding; an
        // approximate match may end inside one.
        let w = page(&["Geburtsurkundı Σtandesamt Geburtsurkunδe ııı"]);
        let h = highlights(&w, &["Geburtsurkunde".to_string(), "Standesamt".to_string()]);
        assert!(h.iter().any(|h| h.phrase == "Geburtsurkunde"));
    }
}

//! Text normalisation and tolerant phrase search, shared by classification,
//! name matching and date reading.
//!
//! OCR output differs from the printed text by a character here and there,
//! and PDF text layers differ in umlaut encoding and hyphenation; matching on
//! a folded form with a small edit budget makes the rules survive both.
use unicode_normalization::UnicodeNormalization;

/// Folds text to a canonical search form: lower case, umlauts and ß spelled
/// out (ä → ae, ß → ss), other diacritics dropped, every run of
/// non-alphanumeric characters a single space, with one leading and trailing
/// space so phrase matches can check word starts uniformly.
pub fn fold(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push(' ');
    let mut last_space = true;
    // Hyphenation at line ends ("Geburts-\nurkunde") joins the word again.
    let dehyphenated = text.replace("-\n", "").replace("¬\n", "").replace("-\r\n", "");
    for c in dehyphenated.nfc() {
        let lower: Vec<char> = c.to_lowercase().collect();
        for l in lower {
            let folded: &str = match l {
                'ä' => "ae",
                'ö' => "oe",
                'ü' => "ue",
                'ß' => "ss",
                _ => "",
            };
            if !folded.is_empty() {
                out.push_str(folded);
                last_space = false;
                continue;
            }
            if l.is_alphanumeric() {
                // Drop combining marks of other diacritics (é → e).
                let base: String = l.to_string().nfd().filter(|ch| ch.is_alphanumeric()).collect();
                if base.is_empty() {
                    continue;
                }
                out.push_str(&base);
                last_space = false;
            } else if !last_space {
                out.push(' ');
                last_space = true;
            }
        }
    }
    if !last_space {
        out.push(' ');
    }
    out
}

/// Where a phrase was found in folded text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hit {
    /// Byte offset of the match start in the folded text.
    pub start: usize,
    pub end: usize,
    /// Edits needed (0 = exact).
    pub errors: usize,
}

/// How many character edits a phrase of this length may absorb. Short
/// phrases must match exactly (one edit in "amt" finds "art"), and a
/// budget of two only opens for long phrases, where two edits cannot turn
/// one idiom into another ("verpflichte mich" vs "verpflichtet sich").
pub fn edit_budget(phrase_len: usize) -> usize {
    match phrase_len {
        0..=7 => 0,
        8..=20 => 1,
        _ => 2,
    }
}

/// Finds `phrase` (already folded, without the padding spaces) in `folded`
/// text at a word start. Exact matches are preferred; otherwise an
/// approximate match within `edit_budget` edits (Sellers' algorithm) is
/// accepted when `tolerant` is set, which callers do for OCR'd text and for
/// text layers alike, since both carry typos.
pub fn find(folded: &str, phrase: &str, tolerant: bool) -> Option<Hit> {
    if phrase.is_empty() {
        return None;
    }
    let needle = format!(" {phrase}");
    if let Some(pos) = folded.find(&needle) {
        return Some(Hit { start: pos + 1, end: pos + needle.len(), errors: 0 });
    }
    let budget = edit_budget(phrase.len());
    if !tolerant || budget == 0 {
        return None;
    }
    approximate(folded.as_bytes(), phrase.as_bytes(), budget)
}

/// Sellers' approximate substring search over bytes: the best match ending
/// anywhere, with at most `k` edits. The start is recovered by a second,
/// backwards pass over the matched window.
fn approximate(text: &[u8], pat: &[u8], k: usize) -> Option<Hit> {
    let m = pat.len();
    let mut col: Vec<usize> = (0..=m).collect();
    let mut best: Option<(usize, usize)> = None; // (errors, end)
    for (j, &t) in text.iter().enumerate() {
        let mut prev_diag = col[0];
        col[0] = 0;
        for i in 1..=m {
            let cost = usize::from(pat[i - 1] != t);
            let v = (prev_diag + cost).min(col[i] + 1).min(col[i - 1] + 1);
            prev_diag = col[i];
            col[i] = v;
        }
        if col[m] <= k && best.is_none_or(|(e, _)| col[m] < e) {
            best = Some((col[m], j + 1));
            if col[m] == 0 {
                break;
            }
        }
    }
    let (errors, end) = best?;
    // Walk back to a plausible start: the window of pattern length ± errors
    // that ends at `end`; snap to the nearest word start before it.
    let approx_start = end.saturating_sub(m);
    let mut start = approx_start;
    while start > 0 && text[start - 1] != b' ' && approx_start - start < k + 1 {
        start -= 1;
    }
    // A match must begin at (or within `k` characters of) a word start, so
    // that "amt" inside "gesamtbetrag" does not count as evidence.
    if start > 0 && text[start - 1] != b' ' {
        return None;
    }
    Some(Hit { start, end, errors })
}

/// Whether a person's name occurs in folded text: every part of it (given
/// names, double family names) must be found as a word, tolerating one OCR
/// error in parts of five or more letters.
pub fn contains_name(folded: &str, name: &str) -> bool {
    let parts: Vec<String> = fold(name).split_whitespace().map(str::to_string).collect();
    !parts.is_empty()
        && parts.iter().all(|p| {
            let exact = folded.contains(&format!(" {p} "));
            exact || (p.len() >= 5 && approximate_word(folded, p))
        })
}

/// Word-level approximate match: some whole word within one edit of `word`.
fn approximate_word(folded: &str, word: &str) -> bool {
    folded.split(' ').any(|w| !w.is_empty() && levenshtein_at_most(w.as_bytes(), word.as_bytes(), 1))
}

/// Bounded Levenshtein check (cheap for the short strings it sees).
pub fn levenshtein_at_most(a: &[u8], b: &[u8], k: usize) -> bool {
    if a.len().abs_diff(b.len()) > k {
        return false;
    }
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, &ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, &cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != cb)).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        if cur.iter().min().copied().unwrap_or(0) > k {
            return false;
        }
        prev = cur;
    }
    prev[b.len()] <= k
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folding_spells_out_umlauts_and_collapses_punctuation() {
        assert_eq!(fold("Bürgergeld–Bescheid, Straße"), " buergergeld bescheid strasse ");
        assert_eq!(fold("Geburts-\nurkunde"), " geburtsurkunde ");
        // Decomposed umlauts from some PDF text layers fold the same way.
        assert_eq!(fold("Mu\u{308}ller"), " mueller ");
    }

    #[test]
    fn a_phrase_is_found_despite_one_ocr_error() {
        let text = fold("Auszug aus dem Geburtenreqister des Standesamts");
        assert!(find(&text, "geburtenregister", true).is_some());
        assert!(find(&text, "geburtenregister", false).is_none());
    }

    #[test]
    fn a_short_phrase_inside_another_word_is_not_evidence() {
        let text = fold("Gesamtbetrag 1.234,00");
        assert!(find(&text, "amt", true).is_none());
    }

    #[test]
    fn names_match_word_by_word_with_tolerance_for_long_parts() {
        let text = fold("Kind: Lena Marie Beispie1 geboren am");
        assert!(contains_name(&text, "Lena"));
        assert!(contains_name(&text, "Beispiel"));
        assert!(!contains_name(&text, "Lea"));
    }
}

//! Reading dates from document text, and deciding which of them is the
//! document's own date (issue date, or the end of the period it covers).
//!
//! German documents print dates in many ways ("05.11.2026", "5. November
//! 2026", "05.11.26", "Abrechnung Oktober 2026"); the role of a date comes
//! from the words before it, never from its position on a known form.
use chrono::{Datelike, NaiveDate};
use regex::Regex;
use std::sync::LazyLock;

use super::text::fold;

/// What a date on a document means, judged from the words before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DateRole {
    /// Issue date: "Datum", "ausgestellt am", "Musterstadt, den …".
    Issued,
    /// End of a covered period (pay period, month of a payslip).
    PeriodEnd,
    /// Start of a covered period.
    PeriodStart,
    /// A date that is about something else: birth, entry, validity, deadlines.
    Other,
    /// No telling context.
    Plain,
}

/// A date found in text with its role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FoundDate {
    pub date: NaiveDate,
    pub role: DateRole,
}

const MONTHS: &[(&str, u32)] = &[
    ("januar", 1), ("jaenner", 1), ("jan", 1), ("februar", 2), ("feb", 2), ("maerz", 3), ("marz", 3), ("mrz", 3),
    ("april", 4), ("apr", 4), ("mai", 5), ("juni", 6), ("jun", 6), ("juli", 7), ("jul", 7), ("august", 8),
    ("aug", 8), ("september", 9), ("sept", 9), ("sep", 9), ("oktober", 10), ("okt", 10), ("november", 11),
    ("nov", 11), ("dezember", 12), ("dez", 12),
];

fn month_number(word: &str) -> Option<u32> {
    let w = fold(word);
    let w = w.trim();
    MONTHS.iter().find(|(name, _)| *name == w).map(|(_, n)| *n)
}

static NUMERIC: LazyLock<Regex> = LazyLock::new(|| {
    // dd.mm.yyyy, dd.mm.yy, dd/mm/yyyy, with the stray spaces OCR inserts.
    Regex::new(r"(?x)\b(\d{1,2})\s?[./]\s?(\d{1,2})\s?[./]\s?(\d{4}|\d{2})\b").unwrap()
});
// dd-mm-yyyy as some generated letters print it; only with a four-digit year,
// so that reference numbers such as "12-05-17" stay numbers.
static DASHED: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\b(\d{1,2})-(\d{1,2})-(\d{4})\b").unwrap());
static ISO: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\b(\d{4})-(\d{2})-(\d{2})\b").unwrap());
static WORDED: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\b(\d{1,2})\.?\s*([A-Za-zÄÖÜäöü]{3,9})\.?\s+(\d{4})\b").unwrap()
});
static MONTH_YEAR: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\b([A-Za-zÄÖÜäöü]{3,9})\.?\s+(\d{4})\b|\b(\d{1,2})\s?[/.]\s?(\d{4})\b").unwrap()
});

fn year4(y: &str) -> Option<i32> {
    let n: i32 = y.parse().ok()?;
    Some(if y.len() == 2 { if n <= 69 { 2000 + n } else { 1900 + n } } else { n })
}

/// Words before a date that give it a role. Checked on folded text, last
/// words first, so "geboren am 1.2.2010, ausgestellt am …" reads correctly.
fn role_from_context(before: &str) -> DateRole {
    let ctx = fold(before);
    let words: Vec<&str> = ctx.split_whitespace().collect();
    // A date on a line of its own belongs to the label line above it, which
    // on bilingual forms (ID cards, passports) is longer than six words:
    // "Geburtstag / Date of birth / Date de naissance". Then the whole label
    // line counts, not just its last words.
    let own_line = before.rsplit('\n').next().unwrap_or("");
    let label_words = if own_line.trim().is_empty() {
        before.trim_end().rsplit('\n').next().map(|l| fold(l).split_whitespace().count()).unwrap_or(0)
    } else {
        0
    };
    let tail: Vec<&str> = words.iter().rev().take(6.max(label_words.min(16))).copied().collect();
    const OTHER: &[&str] = &[
        "geboren", "geb", "geburtsdatum", "geburtstag", "eintritt", "eintrittsdatum", "beschaeftigt", "gueltig",
        "gueltigkeit", "ablauf", "ablaufdatum", "frist", "spaetestens", "faellig", "faelligkeit", "zahlbar",
        "verheiratet", "eheschliessung", "geschlossen", "heirat", "zuzug", "eingezogen", "einzug", "seit",
        "antrag", "antragsdatum", "schreiben", "eingang", "eingegangen", "sterbedatum", "gestorben",
        // The English labels of bilingual identity documents.
        "birth", "expiry", "expiration",
    ];
    const ISSUED: &[&str] = &[
        "datum", "ausgestellt", "ausstellungsdatum", "erstellt", "erstellungsdatum", "druckdatum", "gedruckt",
        "den", "bescheiddatum", "ausfertigung", "beglaubigt", "stand", "abrechnungsdatum", "unterschrieben",
        "unterzeichnet", "bescheinigt", "issue", "issued", "ausstellung", "ausstellungstag", "ausgabedatum",
        "ausfertigungsdatum", "ausgefertigt", "bescheinigungsdatum", "belegdatum", "briefdatum", "dokumentdatum",
        "erlassen",
    ];
    // "Bescheid vom 14.10.2026", "Beschluss vom …": `vom` after the name of
    // a document dates that document (elsewhere it starts a period).
    const DOCUMENT_NOUNS: &[&str] = &[
        "bescheid", "bescheides", "bescheids", "bescheinigung", "beschluss", "beschlusses", "urteil", "urteils",
        "urkunde", "vertrag", "vertrages", "vertrags", "erklaerung", "mitteilung", "bestaetigung", "nachweis",
        "auszug", "vereinbarung", "verfuegung",
    ];
    const PERIOD_END: &[&str] = &["bis", "zum", "ende", "einschliesslich"];
    const PERIOD: &[&str] = &[
        "zeitraum", "abrechnungszeitraum", "abrechnungsmonat", "monat", "abrechnung", "periode", "entgeltabrechnung",
        "lohnabrechnung", "gehaltsabrechnung", "verdienstabrechnung", "bezuege", "vom", "ab",
    ];
    for (i, w) in tail.iter().enumerate() {
        // Only the nearest two words decide, except for strong labels.
        let near = i < 2;
        if OTHER.contains(w) && (near || *w != "seit") {
            return DateRole::Other;
        }
        if i == 0 && *w == "vom" && tail.get(1).is_some_and(|n| DOCUMENT_NOUNS.iter().any(|d| n.ends_with(d))) {
            return DateRole::Issued;
        }
        if near && PERIOD_END.contains(w) {
            return DateRole::PeriodEnd;
        }
        if ISSUED.contains(w) && (near || w.len() > 5) {
            return DateRole::Issued;
        }
        if near && PERIOD.contains(w) {
            return DateRole::PeriodStart;
        }
    }
    // "Musterstadt, 05.11.2026" at the end of a letter: place and date.
    let line = before.rsplit('\n').next().unwrap_or("");
    let t = line.trim_end();
    if t.ends_with(',') {
        let word = t.trim_end_matches(',').split_whitespace().last().unwrap_or("");
        if word.chars().next().is_some_and(char::is_uppercase) && word.chars().all(char::is_alphabetic) {
            return DateRole::Issued;
        }
    }
    DateRole::Plain
}

/// A date as German documents and letters print it: `05.11.2026`.
pub fn date_de(d: NaiveDate) -> String {
    d.format("%d.%m.%Y").to_string()
}

/// The last `max_bytes` (or slightly fewer) bytes of `s`, cut at a
/// character boundary so multi-byte letters (ä, ß) are never split.
fn tail(s: &str, max_bytes: usize) -> &str {
    let mut start = s.len().saturating_sub(max_bytes);
    while !s.is_char_boundary(start) {
        start += 1;
    }
    &s[start..]
}

fn last_day_of_month(year: i32, month: u32) -> Option<NaiveDate> {
    let (ny, nm) = if month == 12 { (year + 1, 1) } else { (year, month + 1) };
    NaiveDate::from_ymd_opt(ny, nm, 1)?.pred_opt()
}

/// Every date in the text with its role. Ranges ("01.10.2026 – 31.10.2026",
/// "vom 1. bis 31. Oktober") mark their end as `PeriodEnd`; a bare month and
/// year ("Oktober 2026", "10/2026") counts as a period ending on its last day.
pub fn find_dates(text: &str) -> Vec<FoundDate> {
    let mut spans: Vec<(usize, usize, NaiveDate)> = Vec::new();
    for c in NUMERIC.captures_iter(text) {
        let (d, m, y) = (c[1].parse().ok(), c[2].parse().ok(), year4(&c[3]));
        if let (Some(d), Some(m), Some(y)) = (d, m, y)
            && let Some(date) = NaiveDate::from_ymd_opt(y, m, d)
        {
            let whole = c.get(0).unwrap();
            spans.push((whole.start(), whole.end(), date));
        }
    }
    for c in DASHED.captures_iter(text) {
        if let (Ok(d), Ok(m), Some(y)) = (c[1].parse(), c[2].parse(), year4(&c[3]))
            && let Some(date) = NaiveDate::from_ymd_opt(y, m, d)
        {
            let whole = c.get(0).unwrap();
            spans.push((whole.start(), whole.end(), date));
        }
    }
    for c in ISO.captures_iter(text) {
        if let (Ok(y), Ok(m), Ok(d)) = (c[1].parse(), c[2].parse(), c[3].parse())
            && let Some(date) = NaiveDate::from_ymd_opt(y, m, d)
        {
            let whole = c.get(0).unwrap();
            spans.push((whole.start(), whole.end(), date));
        }
    }
    for c in WORDED.captures_iter(text) {
        if let (Ok(d), Some(m), Some(y)) = (c[1].parse(), month_number(&c[2]), year4(&c[3]))
            && let Some(date) = NaiveDate::from_ymd_opt(y, m, d)
        {
            let whole = c.get(0).unwrap();
            spans.push((whole.start(), whole.end(), date));
        }
    }
    spans.sort_by_key(|s| s.0);
    let mut out: Vec<FoundDate> = Vec::new();
    let mut prev_end: Option<usize> = None;
    for (start, end, date) in &spans {
        if prev_end.is_some_and(|p| *start < p) {
            continue; // overlapping match of another pattern
        }
        let before = &text[..*start];
        let mut role = role_from_context(tail(before, 80));
        // A date right after another date and a dash is a range end.
        if let Some(p) = prev_end {
            let between = text[p..*start].trim();
            if matches!(between, "-" | "–" | "—" | "bis" | "bis zum" | "bis einschließlich") {
                role = DateRole::PeriodEnd;
                if let Some(last) = out.last_mut()
                    && last.role != DateRole::Other
                {
                    last.role = DateRole::PeriodStart;
                }
            }
        }
        // A date alone at the end of a line near the top is the letter date
        // of German business letters ("Firma GmbH          12. August 2026").
        if role == DateRole::Plain {
            let rest_of_line = text[*end..].split('\n').next().unwrap_or("");
            if rest_of_line.trim().is_empty() && *start <= (text.len() / 3).max(400) {
                role = DateRole::Issued;
            }
        }
        out.push(FoundDate { date: *date, role });
        prev_end = Some(*end);
    }
    // Month-year mentions that are not part of a full date.
    for c in MONTH_YEAR.captures_iter(text) {
        let whole = c.get(0).unwrap();
        if spans.iter().any(|(s, e, _)| whole.start() < *e && *s < whole.end()) {
            continue;
        }
        let (month, year) = if let Some(w) = c.get(1) {
            (month_number(w.as_str()), c.get(2).and_then(|y| y.as_str().parse().ok()))
        } else {
            (c.get(3).and_then(|m| m.as_str().parse().ok()).filter(|m| (1..=12).contains(m)), c.get(4).and_then(|y| y.as_str().parse().ok()))
        };
        if let (Some(m), Some(y)) = (month, year)
            && let Some(date) = last_day_of_month(y, m)
        {
            let before = &text[..whole.start()];
            let role = match role_from_context(tail(before, 80)) {
                DateRole::Other => DateRole::Other,
                _ => DateRole::PeriodEnd,
            };
            out.push(FoundDate { date, role });
        }
    }
    out
}

/// The date that counts for a document's freshness: its issue date, or the
/// end of the period it covers where no issue date is printed, or else the
/// latest date without another meaning. Dates after `received` cannot be
/// the date of a document that was already sent, so they are ignored.
pub fn document_date(text: &str, received: NaiveDate) -> Option<NaiveDate> {
    let dates: Vec<FoundDate> = find_dates(text)
        .into_iter()
        .filter(|d| d.date <= received && d.date.year() >= 1990)
        .collect();
    let latest = |role: DateRole| dates.iter().filter(|d| d.role == role).map(|d| d.date).max();
    latest(DateRole::Issued).or_else(|| latest(DateRole::PeriodEnd)).or_else(|| latest(DateRole::Plain))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn the_issue_date_wins_over_the_pay_period() {
        let text = "Entgeltabrechnung\nAbrechnungszeitraum 01.10.2026 - 31.10.2026\nDatum: 05.11.2026\nGeburtsdatum 12.03.1985";
        assert_eq!(document_date(text, d("2026-11-20")), Some(d("2026-11-05")));
    }

    #[test]
    fn without_an_issue_date_the_end_of_the_period_counts() {
        assert_eq!(document_date("Gehaltsabrechnung für Oktober 2026\nBrutto 3.000,00", d("2026-11-20")), Some(d("2026-10-31")));
        assert_eq!(document_date("Zeitraum: 01.09.2026 bis 30.09.2026", d("2026-11-20")), Some(d("2026-09-30")));
        assert_eq!(document_date("Abrechnungsmonat 08/2026", d("2026-11-20")), Some(d("2026-08-31")));
    }

    #[test]
    fn a_date_alone_at_the_end_of_a_header_line_is_the_letter_date() {
        let text = "Pflegedienst Sonnenhof gGmbH            12. August 2026\nVerdienstbescheinigung\nMai 2026 2.190,00\nJuli 2026 2.244,50";
        assert_eq!(document_date(text, d("2026-11-10")), Some(d("2026-08-12")));
    }

    #[test]
    fn worded_and_short_year_dates_are_read() {
        assert_eq!(document_date("Musterstadt, den 3. November 2026", d("2026-11-20")), Some(d("2026-11-03")));
        assert_eq!(document_date("Berlin, 05.11.26", d("2026-11-20")), Some(d("2026-11-05")));
    }

    #[test]
    fn umlauts_right_before_a_date_do_not_break_the_context_window() {
        let text = format!("{}ä 05.11.2026", "x".repeat(79));
        assert_eq!(document_date(&text, d("2026-11-20")), Some(d("2026-11-05")));
        let text = format!("{}Straße, den 05.11.2026", "ä".repeat(50));
        assert_eq!(document_date(&text, d("2026-11-20")), Some(d("2026-11-05")));
    }

    #[test]
    fn a_document_named_before_vom_is_dated_by_it_a_period_is_not() {
        assert_eq!(document_date("Wohngeldbescheid vom 14.10.2026\nBewilligungszeitraum vom 01.11.2026", d("2026-11-20")), Some(d("2026-10-14")));
        assert_eq!(document_date("Beschluss vom 3. März 2025", d("2026-11-20")), Some(d("2025-03-03")));
        // Alone, `vom` opens a period whose start is not the document's date.
        assert_eq!(document_date("Leistungen vom 01.10.2026", d("2026-11-20")), None);
    }

    #[test]
    fn labels_naming_the_issue_and_dashed_dates_are_read() {
        assert_eq!(document_date("Datum der Ausstellung: 12.10.2026\nSeite 1", d("2026-11-20")), Some(d("2026-10-12")));
        assert_eq!(document_date("Erstellt am 05-11-2026", d("2026-11-20")), Some(d("2026-11-05")));
        assert_eq!(document_date("Az. 12-05-17 Kontakt", d("2026-11-20")), None);
    }

    #[test]
    fn birth_dates_and_future_dates_are_not_the_document_date() {
        assert_eq!(document_date("geboren am 02.05.2012\ngültig bis 01.01.2030", d("2026-11-20")), None);
    }

    #[test]
    fn a_date_under_a_long_bilingual_label_takes_the_labels_role() {
        let id_card = "Geburtstag / Date of birth / Date de naissance\n\n01.08.1992\n\nAusstellungsdatum / Date of issue / Date de délivrance\n03.03.2023\n\nGültig bis / Date of expiry / Date d'expiration\n02.03.2033";
        assert_eq!(document_date(id_card, d("2026-11-20")), Some(d("2023-03-03")));
    }
}

//! Classification: scores every page against the catalogue, keeps the
//! matched phrases as evidence, and cuts each document into segments of
//! consecutive pages of one type.
//!
//! A new segment starts where a page carries the heading of another type,
//! so one scanned PDF holding several documents is split, while a page 2
//! without a heading stays with the document before it.
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use super::catalogue::{Catalogue, SignalKind, UNKNOWN};
use super::dates;
use super::document::{DocumentProblem, ExtractedDocument, ExtractedPage, ProblemKind, TextSource};
use super::text::{find, fold};

/// What the classifier concluded about one page.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PageVerdict {
    pub number: u32,
    /// Reported catalogue id (or `unbekannt`).
    pub doc_type: String,
    /// Confidence in 0..1.
    pub score: f64,
    /// Phrases that matched for the chosen type.
    pub evidence: Vec<String>,
    /// Whether the chosen type's heading appears on the page.
    pub has_title: bool,
    /// The runner-up type and its confidence, for the caseworker.
    pub runner_up: Option<(String, f64)>,
    /// Raw evidence score of every reported type on this page (best rule
    /// type per id, highest first), for segmentation and explanations.
    #[serde(skip)]
    pub raw_scores: Vec<(String, f64)>,
}

impl PageVerdict {
    fn raw(&self, id: &str) -> f64 {
        self.raw_scores.iter().find(|(t, _)| t == id).map(|(_, s)| *s).unwrap_or(0.0)
    }
}

/// A run of pages of one document judged to be one document of one type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Segment {
    pub document_id: String,
    pub first_page: u32,
    pub last_page: u32,
    #[serde(rename = "type")]
    pub doc_type: String,
    pub label: String,
    pub score: f64,
    pub evidence: Vec<String>,
    pub text_source: TextSource,
    /// Mean OCR confidence over OCR'd pages (0..100).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ocr_confidence: Option<f32>,
    /// The upload slot the applicant chose, and whether it agrees.
    pub declared_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub declared_type_matches: Option<bool>,
    /// The document's own date (issue date or period end), if readable.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub document_date: Option<NaiveDate>,
    /// Why the type is `unbekannt`, or why the document could not be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<DocumentProblem>,
    /// Set when a caseworker corrected the type: the type the classifier
    /// had given. The correction itself is kept in the store and audit log.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub corrected_from: Option<String>,
    /// The segment's text in folded form, for name matching; never serialised.
    #[serde(skip)]
    pub folded_text: String,
}

impl Segment {
    /// Whether the segment carries usable content (false for unreadable uploads).
    pub fn is_readable(&self) -> bool {
        self.problem.is_none()
    }
}

/// Scores one page. `declared` is the upload slot, used only to confirm a
/// weak but agreeing best guess, never to override the text.
pub fn classify_page(page: &ExtractedPage, catalogue: &Catalogue, declared: Option<&str>) -> PageVerdict {
    let folded = fold(&page.text);
    let words = folded.split_whitespace().count();
    // The top 40 % of a page holds the heading of most documents (letter
    // heads with address blocks push it down from the very top).
    // On short pages the whole page would be "top", so the floor shrinks.
    let head_limit = (folded.len() * 2 / 5).max(400.min(folded.len() / 2));
    // Exact readings first: a near match that lies on an exact match of
    // another phrase is that other phrase ("Anmeldung" is not a misread
    // "Abmeldung" when the page says "Anmeldung").
    let mut exact_spans: Vec<(usize, usize, &str)> = Vec::new();
    for t in &catalogue.types {
        for s in &t.signals {
            for p in &s.phrases {
                if let Some(hit) = find(&folded, &p.folded, false) {
                    exact_spans.push((hit.start, hit.end, p.folded.as_str()));
                }
            }
        }
    }
    let mut scored: Vec<(usize, f64, Vec<String>, bool)> = Vec::new();
    for (ti, t) in catalogue.types.iter().enumerate() {
        let mut score = 0.0;
        let mut evidence = Vec::new();
        let mut has_title = false;
        for s in &t.signals {
            let mut hits = 0usize;
            let mut in_head = false;
            for p in &s.phrases {
                let Some(hit) = find(&folded, &p.folded, true) else { continue };
                if hit.errors > 0
                    && exact_spans.iter().any(|(a, b, other)| {
                        // Only an exact reading of (nearly) the same stretch
                        // of text as a different word counts; one that is the
                        // start of this phrase ("Antragsteller" within
                        // "Antragsteller/in") supports it instead.
                        let overlap = (*b).min(hit.end).saturating_sub((*a).max(hit.start));
                        !p.folded.starts_with(*other) && overlap * 5 >= (hit.end - hit.start) * 4
                    })
                {
                    continue;
                }
                hits += 1;
                in_head |= hit.start < head_limit;
                if s.kind != SignalKind::Against {
                    evidence.push(p.written.clone());
                }
            }
            if hits == 0 {
                continue;
            }
            // Diminishing returns: the second and third phrase of a group
            // add half as much, more add nothing (long lists of synonyms
            // must not outweigh a clear heading).
            let amount = s.weight * (1.0 + 0.5 * (hits.min(3) as f64 - 1.0));
            match s.kind {
                // A heading counts fully only at the top of the page; further
                // down, a document's name is usually a mention ("Anlagen:
                // Geburtsurkunde, Meldebescheinigung …"), not the document.
                SignalKind::Title => {
                    has_title |= in_head;
                    score += if in_head { amount * 1.5 } else { amount * 0.5 };
                }
                SignalKind::Support => score += amount,
                // Likewise, counter-evidence far down the page is often a
                // mention ("Folgebeurkundung: Vaterschaftsanerkennung").
                SignalKind::Against => score -= if in_head { amount } else { amount * 0.5 },
            }
        }
        scored.push((ti, score.max(0.0), evidence, has_title));
    }
    // Several rule types may report as one id (kinds of `sonstiges`); the
    // best of them speaks for the id.
    scored.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    let mut raw_scores: Vec<(String, f64)> = Vec::new();
    for (ti, sc, _, _) in &scored {
        let id = &catalogue.types[*ti].reported_as;
        if !raw_scores.iter().any(|(t, _)| t == id) {
            raw_scores.push((id.clone(), *sc));
        }
    }
    let best = &scored[0];
    let best_type = &catalogue.types[best.0];
    let runner = scored.iter().find(|s| catalogue.types[s.0].reported_as != best_type.reported_as);
    let s1 = best.1;
    let s2 = runner.map(|r| r.1).unwrap_or(0.0);
    let strength = 1.0 - (-s1 / catalogue.evidence_scale).exp();
    let margin = if s1 > 0.0 { (s1 / (s1 + s2) - 0.5) * 2.0 } else { 0.0 };
    let mut confidence = strength * (0.5 + 0.5 * margin);
    if page.source == TextSource::Ocr {
        // Poor OCR makes every phrase less trustworthy.
        let c = page.ocr_confidence.unwrap_or(50.0).clamp(0.0, 100.0) as f64;
        confidence *= 0.75 + 0.25 * c / 100.0;
    }
    let confidence = (confidence * 1000.0).round() / 1000.0;
    let runner_up = runner.filter(|r| r.1 > 0.0).map(|r| {
        let t = &catalogue.types[r.0];
        let c = 1.0 - (-r.1 / catalogue.evidence_scale).exp();
        (t.reported_as.clone(), (c * 1000.0).round() / 1000.0)
    });
    let accepted = confidence >= catalogue.min_confidence
        || (declared == Some(best_type.reported_as.as_str()) && confidence >= catalogue.min_confidence * 0.6);
    if words < 3 || s1 <= 0.0 || !accepted {
        return PageVerdict {
            number: page.number,
            doc_type: UNKNOWN.to_string(),
            score: confidence,
            evidence: if s1 > 0.0 { best.2.clone() } else { Vec::new() },
            has_title: false,
            runner_up: if s1 > 0.0 { Some((best_type.reported_as.clone(), confidence)) } else { None },
            raw_scores,
        };
    }
    PageVerdict {
        number: page.number,
        doc_type: best_type.reported_as.clone(),
        score: confidence,
        evidence: best.2.clone(),
        has_title: best.3,
        runner_up,
        raw_scores,
    }
}

fn unreadable_segment(doc: &ExtractedDocument, declared: Option<&str>, problem: DocumentProblem) -> Segment {
    Segment {
        document_id: doc.document_id.clone(),
        first_page: 1,
        last_page: 1,
        doc_type: UNKNOWN.to_string(),
        label: "Nicht lesbares Dokument".to_string(),
        score: 0.0,
        evidence: Vec::new(),
        text_source: TextSource::None,
        ocr_confidence: None,
        declared_type: declared.map(str::to_string),
        declared_type_matches: None,
        document_date: None,
        reason: Some(format!("Datei nicht lesbar: {} ({})", problem.kind.label_de(), problem.detail)),
        problem: Some(problem),
        corrected_from: None,
        folded_text: String::new(),
    }
}

/// Cuts one extracted document into typed segments. An unreadable document
/// becomes a single `unbekannt` segment carrying the reason.
pub fn segment_document(
    doc: &ExtractedDocument,
    declared: Option<&str>,
    catalogue: &Catalogue,
    received: NaiveDate,
) -> Vec<Segment> {
    if let Some(problem) = &doc.problem {
        return vec![unreadable_segment(doc, declared, problem.clone())];
    }
    if doc.pages.iter().all(|p| p.text.trim().is_empty()) {
        let problem = DocumentProblem { kind: ProblemKind::NoText, detail: "keine Schrift erkannt".to_string() };
        return vec![unreadable_segment(doc, declared, problem)];
    }
    let verdicts: Vec<PageVerdict> = doc.pages.iter().map(|p| classify_page(p, catalogue, declared)).collect();
    // Group pages: (type, page indices).
    let mut groups: Vec<(String, Vec<usize>)> = Vec::new();
    for (i, v) in verdicts.iter().enumerate() {
        let continues = match groups.last() {
            None => false,
            Some((t, _)) if *t == v.doc_type => true,
            // A page with its own heading begins a new document, unless the
            // document before it is nearly as strong on this page: forms
            // ask about other documents ("Besteht ein Unterhaltstitel?")
            // without being them.
            Some((t, _)) if v.has_title => t != UNKNOWN && v.raw(t) >= 0.6 * v.raw(&v.doc_type),
            // A page without a heading continues a recognised document.
            Some((t, _)) => t != UNKNOWN,
        };
        if continues {
            groups.last_mut().unwrap().1.push(i);
        } else {
            groups.push((v.doc_type.clone(), vec![i]));
        }
    }
    groups
        .into_iter()
        .map(|(doc_type, idx)| {
            let pages: Vec<&ExtractedPage> = idx.iter().map(|&i| &doc.pages[i]).collect();
            let own: Vec<&PageVerdict> = idx.iter().map(|&i| &verdicts[i]).filter(|v| v.doc_type == doc_type).collect();
            let score = own.iter().map(|v| v.score).fold(0.0, f64::max);
            let mut evidence: Vec<String> = Vec::new();
            for v in idx.iter().map(|&i| &verdicts[i]) {
                for e in &v.evidence {
                    if !evidence.contains(e) {
                        evidence.push(e.clone());
                    }
                }
            }
            let ocr: Vec<f32> = pages.iter().filter(|p| p.source == TextSource::Ocr).filter_map(|p| p.ocr_confidence).collect();
            let sources: Vec<TextSource> = pages.iter().map(|p| p.source).collect();
            let text_source = if sources.iter().all(|s| *s == sources[0]) { sources[0] } else { TextSource::Mixed };
            let text: String = pages.iter().map(|p| p.text.as_str()).collect::<Vec<_>>().join("\n");
            let reason = if doc_type == UNKNOWN {
                Some(match verdicts[idx[0]].runner_up.as_ref() {
                    Some((t, c)) => format!(
                        "Keine ausreichend sichere Zuordnung (bester Kandidat: {} mit {:.0} %); bitte prüfen",
                        catalogue.label(t),
                        c * 100.0
                    ),
                    None => "Keine bekannten Merkmale eines Dokumenttyps gefunden; bitte prüfen".to_string(),
                })
            } else {
                None
            };
            Segment {
                document_id: doc.document_id.clone(),
                first_page: pages[0].number,
                last_page: pages[pages.len() - 1].number,
                label: catalogue.label(&doc_type).to_string(),
                declared_type_matches: declared.filter(|_| doc_type != UNKNOWN).map(|d| d == doc_type),
                doc_type,
                score,
                evidence,
                text_source,
                ocr_confidence: if ocr.is_empty() { None } else { Some((ocr.iter().sum::<f32>() / ocr.len() as f32).round()) },
                declared_type: declared.map(str::to_string),
                document_date: dates::document_date(&text, received),
                reason,
                problem: None,
                corrected_from: None,
                folded_text: fold(&text),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::document::ExtractedPage;

    fn catalogue() -> Catalogue {
        let text = std::include_str!("../../schemas/document_types.toml");
        Catalogue::from_toml(text, "document_types.toml").unwrap()
    }

    /// Pseudo-random text over an alphabet with multi-byte letters,
    /// digits and date punctuation: classification and date reading must
    /// never panic, whatever OCR produces.
    #[test]
    fn arbitrary_text_never_panics_the_classifier() {
        let alphabet: Vec<char> = "aäbcdeéfghijklmnoöpqrsßtuüvwxyz ÄÖÜ0123456789.,-–/:\n\u{308}€§".chars().collect();
        let cat = catalogue();
        let mut seed: u64 = 0x5eed;
        for _ in 0..200 {
            let len = (seed % 600) as usize;
            let text: String = (0..len)
                .map(|_| {
                    seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                    alphabet[(seed >> 33) as usize % alphabet.len()]
                })
                .collect();
            let page = ExtractedPage { number: 1, text, source: TextSource::Ocr, ocr_confidence: Some(40.0) };
            let doc = ExtractedDocument { document_id: "d".into(), pages: vec![page], problem: None };
            let segs = segment_document(&doc, Some("geburtsurkunde"), &cat, NaiveDate::from_ymd_opt(2026, 11, 20).unwrap());
            assert!(!segs.is_empty());
        }
    }

    #[test]
    fn a_page_without_a_heading_continues_the_document_before_it() {
        let cat = catalogue();
        let p1 = ExtractedPage {
            number: 1,
            text: "Jobcenter Musterstadt\nBewilligungsbescheid\nLeistungen zur Sicherung des Lebensunterhalts nach dem Zweiten Buch Sozialgesetzbuch (SGB II) – Bürgergeld\nBedarfsgemeinschaft 12345BG0001".into(),
            source: TextSource::TextLayer,
            ocr_confidence: None,
        };
        let p2 = ExtractedPage { number: 2, text: "Seite 2 von 2\nRechtsbehelfsbelehrung\nGegen diesen Bescheid kann Widerspruch erhoben werden.".into(), source: TextSource::TextLayer, ocr_confidence: None };
        let p3 = ExtractedPage { number: 3, text: "Geburtsurkunde\nStandesamt Musterstadt\nRegisternummer G 123/2014\nFamilienname Beispiel\nVornamen Lena\nGeburtstag 02.05.2014".into(), source: TextSource::TextLayer, ocr_confidence: None };
        let doc = ExtractedDocument { document_id: "d".into(), pages: vec![p1, p2, p3], problem: None };
        let segs = segment_document(&doc, None, &cat, NaiveDate::from_ymd_opt(2026, 11, 20).unwrap());
        let got: Vec<(u32, u32, &str)> = segs.iter().map(|s| (s.first_page, s.last_page, s.doc_type.as_str())).collect();
        assert_eq!(got, vec![(1, 2, "buergergeldbescheid"), (3, 3, "geburtsurkunde")]);
    }
}

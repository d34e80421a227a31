//! Prometheus metrics: one `Metrics` registry that the adapters update and
//! `ops` serves at `/metrics` (OpenMetrics text).
//!
//! Every label comes from a small fixed set — verdict, procedure id, reason
//! kind, text source, event type, queue role — never a bundle, case or
//! document id and nothing else a manifest says, so a scrape cannot carry
//! personal data and the number of series stays bounded.
use std::sync::Arc;
use std::time::{Duration, Instant};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

use crate::domain::document::{ExtractedDocument, TextSource};
use crate::extract::{DocumentFile, Extractor};

/// The content type of `Metrics::encode`'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// A recorded bundle's procedure and bundle verdict.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct VerdictLabels {
    /// A procedure id from `schemas/procedures` (only known ones get this far).
    pub procedure: String,
    /// `complete`, `incomplete` or `needs_review`.
    pub verdict: String,
}

/// A reason kind: a short code from a fixed list, never free text.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    pub reason: String,
}

/// Where a page's text came from (`text_layer` or `ocr`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SourceLabels {
    pub source: String,
}

/// An outbox event type (`bundle.checked`, `draft.ready`, `letter.approved` …).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EventLabels {
    pub event_type: String,
}

/// A queue by its role (`bundles`, `dead`), not its configured name.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct QueueLabels {
    pub queue: String,
}

/// A request to the review server: the route's template (never the path
/// with its ids), the method and the status class (`2xx` … `5xx`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    pub route: String,
    pub method: String,
    pub status: String,
}

/// A route template of the review server.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: String,
}

/// The metric families. Cloning a family shares it (they are `Arc`s inside),
/// so the fields can be updated from any task through `&Metrics`.
pub struct Metrics {
    registry: Registry,
    /// Bundles checked and recorded, by procedure and verdict.
    pub bundles_processed: Family<VerdictLabels, Counter>,
    /// Deliveries recognised as an already recorded bundle (redelivery, re-send).
    pub bundles_duplicate: Counter,
    /// Messages dead-lettered by the worker, by reason kind.
    pub bundles_dead_lettered: Family<ReasonLabels, Counter>,
    /// Temporary failures that sent a message back to the queue, by reason kind.
    pub bundles_retried: Family<ReasonLabels, Counter>,
    /// Deliveries that had been started before without finishing (the worker
    /// died meanwhile) and were therefore processed with nothing beside them.
    pub bundles_isolated: Counter,
    /// Bundles being processed right now.
    pub bundles_in_progress: Gauge,
    /// From delivery to commit, for recorded bundles.
    pub bundle_processing_seconds: Histogram,
    /// From the publisher's `timestamp` property to the delivery (whole seconds
    /// on the wire; only messages that carry the property are counted).
    pub queue_wait_seconds: Histogram,
    /// Ready messages in the broker's queues, by role, polled periodically.
    pub queue_messages: Family<QueueLabels, Gauge>,
    /// Acks or nacks that never reached the broker (channel gone): those
    /// messages are redelivered and absorbed by `bundle_id` idempotency.
    pub acks_lost: Counter,
    /// Pages extracted, by where their text came from.
    pub pages_extracted: Family<SourceLabels, Counter>,
    /// Documents that could not be read, by `ProblemKind`.
    pub extraction_failures: Family<ReasonLabels, Counter>,
    /// Extracting all documents of one bundle.
    pub extraction_seconds: Histogram,
    /// Outbox events not yet published (as of the last readiness probe or relay pass).
    pub outbox_backlog: Gauge,
    /// Events published to the events exchange and confirmed, by type.
    pub events_published: Family<EventLabels, Counter>,
    /// Events the broker returned because no queue is bound for them; they stay in the outbox.
    pub events_unroutable: Family<EventLabels, Counter>,
    /// 1 while connected to the broker and consuming.
    pub broker_connected: Gauge,
    /// Broker connections or channels lost (each is followed by a reconnect).
    pub broker_connection_losses: Counter,
    /// Successful broker connections, the first one included.
    pub broker_connects: Counter,
    /// Review server requests by route template, method and status class.
    pub http_requests: Family<HttpLabels, Counter>,
    /// Review server time per request, by route template.
    pub http_request_seconds: Family<RouteLabels, Histogram, fn() -> Histogram>,
}

fn duration_buckets() -> Histogram {
    // 50 ms … ~7 min: text bundles take tenths of a second, scanned ones
    // seconds per page, and queue waits during an outage minutes.
    Histogram::new(exponential_buckets(0.05, 2.0, 14))
}

/// 1 ms … ~8 s: pages are meant to answer in well under 100 ms.
fn request_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 14))
}

impl Metrics {
    /// A registry with every family registered under the `nachweis_` prefix.
    pub fn new() -> Metrics {
        let mut m = Metrics {
            registry: Registry::with_prefix("nachweis"),
            bundles_processed: Family::default(),
            bundles_duplicate: Counter::default(),
            bundles_dead_lettered: Family::default(),
            bundles_retried: Family::default(),
            bundles_isolated: Counter::default(),
            bundles_in_progress: Gauge::default(),
            bundle_processing_seconds: duration_buckets(),
            queue_wait_seconds: duration_buckets(),
            queue_messages: Family::default(),
            acks_lost: Counter::default(),
            pages_extracted: Family::default(),
            extraction_failures: Family::default(),
            extraction_seconds: duration_buckets(),
            outbox_backlog: Gauge::default(),
            events_published: Family::default(),
            events_unroutable: Family::default(),
            broker_connected: Gauge::default(),
            broker_connection_losses: Counter::default(),
            broker_connects: Counter::default(),
            http_requests: Family::default(),
            http_request_seconds: Family::new_with_constructor(request_buckets),
        };
        let r = &mut m.registry;
        r.register("bundles_processed", "Bundles checked and recorded, by procedure and verdict", m.bundles_processed.clone());
        r.register("bundles_duplicate", "Deliveries of bundles recorded before (redelivered or re-sent)", m.bundles_duplicate.clone());
        r.register("bundles_dead_lettered", "Messages dead-lettered by the worker, by reason kind", m.bundles_dead_lettered.clone());
        r.register("bundles_retried", "Temporary failures that returned a message to the queue, by reason kind", m.bundles_retried.clone());
        r.register("bundles_isolated", "Deliveries started before without finishing, processed alone", m.bundles_isolated.clone());
        r.register("bundles_in_progress", "Bundles being processed now", m.bundles_in_progress.clone());
        r.register_with_unit("bundle_processing", "From delivery to commit, recorded bundles", Unit::Seconds, m.bundle_processing_seconds.clone());
        r.register_with_unit("queue_wait", "From the publisher's timestamp to the delivery", Unit::Seconds, m.queue_wait_seconds.clone());
        r.register("queue_messages", "Ready messages in the broker's queues, by role", m.queue_messages.clone());
        r.register("acks_lost", "Acks or nacks that did not reach the broker (the message is redelivered)", m.acks_lost.clone());
        r.register("pages_extracted", "Pages extracted, by text source (text_layer, ocr)", m.pages_extracted.clone());
        r.register("extraction_failures", "Documents that could not be read, by problem kind", m.extraction_failures.clone());
        r.register_with_unit("extraction", "Extracting all documents of one bundle", Unit::Seconds, m.extraction_seconds.clone());
        r.register("outbox_backlog", "Outbox events not yet published", m.outbox_backlog.clone());
        r.register("events_published", "Events published and confirmed, by type", m.events_published.clone());
        r.register("events_unroutable", "Events returned by the broker (no queue bound), by type", m.events_unroutable.clone());
        r.register("broker_connected", "1 while connected to the broker and consuming", m.broker_connected.clone());
        r.register("broker_connection_losses", "Broker connections or channels lost", m.broker_connection_losses.clone());
        r.register("broker_connects", "Successful broker connections", m.broker_connects.clone());
        r.register("http_requests", "Review server requests by route template, method and status class", m.http_requests.clone());
        r.register_with_unit("http_request", "Review server time per request, by route template", Unit::Seconds, m.http_request_seconds.clone());
        let build: Family<BuildLabels, Gauge> = Family::default();
        build.get_or_create(&BuildLabels { version: env!("CARGO_PKG_VERSION").to_owned() }).set(1);
        r.register("build_info", "The running version", build);
        m
    }

    /// The whole registry in the OpenMetrics text format (`CONTENT_TYPE`).
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    /// Counts a review-server request.
    pub fn http_request(&self, route: &str, method: &str, status: u16, took: Duration) {
        let class = format!("{}xx", status / 100);
        self.http_requests.get_or_create(&HttpLabels { route: route.to_owned(), method: method.to_owned(), status: class }).inc();
        self.http_request_seconds.get_or_create(&RouteLabels { route: route.to_owned() }).observe(took.as_secs_f64());
    }

    /// Counts a recorded bundle.
    pub fn bundle_recorded(&self, procedure: &str, verdict: &str, took: Duration) {
        self.bundles_processed.get_or_create(&VerdictLabels { procedure: procedure.to_owned(), verdict: verdict.to_owned() }).inc();
        self.bundle_processing_seconds.observe(took.as_secs_f64());
    }

    /// Counts a dead-lettered message under its reason kind.
    pub fn dead_lettered(&self, reason_code: &str) {
        self.bundles_dead_lettered.get_or_create(&ReasonLabels { reason: reason_kind(reason_code) }).inc();
    }

    /// Counts a message returned to the queue after a temporary failure.
    pub fn retried(&self, reason_kind: &str) {
        self.bundles_retried.get_or_create(&ReasonLabels { reason: reason_kind.to_owned() }).inc();
    }

    /// Counts what extraction produced for one bundle.
    pub fn extracted(&self, documents: &[ExtractedDocument], took: Duration) {
        self.extraction_seconds.observe(took.as_secs_f64());
        for d in documents {
            if let Some(problem) = &d.problem {
                self.extraction_failures.get_or_create(&ReasonLabels { reason: problem.kind.as_str().to_owned() }).inc();
            }
            for p in &d.pages {
                let source = match p.source {
                    TextSource::TextLayer => "text_layer",
                    TextSource::Ocr => "ocr",
                    TextSource::Mixed => "mixed",
                    TextSource::None => continue,
                };
                self.pages_extracted.get_or_create(&SourceLabels { source: source.to_owned() }).inc();
            }
        }
    }

    /// Sets the ready-message count of a queue by role.
    pub fn queue_depth(&self, role: &str, ready: u32) {
        self.queue_messages.get_or_create(&QueueLabels { queue: role.to_owned() }).set(i64::from(ready));
    }

    /// Counts a published (or returned) event by type. The type is a code the
    /// store wrote (`bundle.checked` …); anything outside a code's alphabet is
    /// folded into `other`, so a malformed row cannot create odd series.
    pub fn event(&self, event_type: &str, routed: bool) {
        let safe = !event_type.is_empty()
            && event_type.len() <= 64
            && event_type.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'));
        let labels = EventLabels { event_type: if safe { event_type.to_owned() } else { "other".to_owned() } };
        if routed {
            self.events_published.get_or_create(&labels).inc();
        } else {
            self.events_unroutable.get_or_create(&labels).inc();
        }
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

/// The bounded label for a dead-letter reason code: the kind without the
/// field name (`invalid_manifest:missing:received_at` → `invalid_manifest`),
/// except that `retries_exhausted:<kind>` keeps its kind, which is from a
/// fixed list too.
pub fn reason_kind(code: &str) -> String {
    let mut parts = code.splitn(3, ':');
    let first = parts.next().unwrap_or_default();
    match (first, parts.next()) {
        ("retries_exhausted", Some(kind)) => format!("{first}:{kind}"),
        _ => first.to_owned(),
    }
}

/// An `Extractor` that counts pages by text source, failures by problem
/// kind and the time taken, around any other extractor.
pub struct MeteredExtractor {
    inner: Arc<dyn Extractor>,
    metrics: Arc<Metrics>,
}

impl MeteredExtractor {
    pub fn new(inner: Arc<dyn Extractor>, metrics: Arc<Metrics>) -> Self {
        MeteredExtractor { inner, metrics }
    }
}

impl Extractor for MeteredExtractor {
    fn extract_all(&self, documents: &[DocumentFile]) -> Vec<ExtractedDocument> {
        let started = Instant::now();
        let out = self.inner.extract_all(documents);
        self.metrics.extracted(&out, started.elapsed());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::document::{DocumentProblem, ExtractedPage, ProblemKind};

    #[test]
    fn reason_codes_become_bounded_kinds_without_field_names() {
        assert_eq!(reason_kind("invalid_manifest:missing:received_at"), "invalid_manifest");
        assert_eq!(reason_kind("invalid_json"), "invalid_json");
        assert_eq!(reason_kind("retries_exhausted:unknown_case"), "retries_exhausted:unknown_case");
        assert_eq!(reason_kind("worker_crashed"), "worker_crashed");
    }

    #[test]
    fn extraction_counts_pages_by_source_and_failures_by_kind() {
        let m = Metrics::new();
        let page = |source| ExtractedPage { number: 1, text: "Geburtsurkunde".into(), source, ocr_confidence: None };
        let docs = vec![
            ExtractedDocument { document_id: "d1".into(), pages: vec![page(TextSource::Ocr), page(TextSource::Ocr)], problem: None },
            ExtractedDocument { document_id: "d2".into(), pages: vec![page(TextSource::TextLayer)], problem: None },
            ExtractedDocument {
                document_id: "d3".into(),
                pages: vec![],
                problem: Some(DocumentProblem { kind: ProblemKind::Encrypted, detail: "password".into() }),
            },
        ];
        m.extracted(&docs, Duration::from_millis(300));
        let text = m.encode();
        assert!(text.contains("nachweis_pages_extracted_total{source=\"ocr\"} 2"), "{text}");
        assert!(text.contains("nachweis_pages_extracted_total{source=\"text_layer\"} 1"), "{text}");
        assert!(text.contains("nachweis_extraction_failures_total{reason=\"encrypted\"} 1"), "{text}");
        assert!(text.contains("nachweis_extraction_seconds_count 1"), "{text}");
    }

    #[test]
    fn recorded_bundles_are_counted_by_procedure_and_verdict() {
        let m = Metrics::new();
        m.bundle_recorded("uvg", "incomplete", Duration::from_millis(120));
        m.bundle_recorded("uvg", "incomplete", Duration::from_millis(80));
        m.bundle_recorded("uvg", "complete", Duration::from_secs(2));
        m.dead_lettered("invalid_manifest:malformed:children[0].birth_date");
        let text = m.encode();
        assert!(text.contains("nachweis_bundles_processed_total{procedure=\"uvg\",verdict=\"incomplete\"} 2"), "{text}");
        assert!(text.contains("nachweis_bundles_processed_total{procedure=\"uvg\",verdict=\"complete\"} 1"), "{text}");
        assert!(text.contains("nachweis_bundle_processing_seconds_count 3"), "{text}");
        assert!(text.contains("nachweis_bundles_dead_lettered_total{reason=\"invalid_manifest\"} 1"), "{text}");
        assert!(!text.contains("birth_date"), "field names stay out of labels");
        assert!(text.ends_with("# EOF\n"));
    }

    #[test]
    fn event_types_outside_the_code_alphabet_are_folded_into_other() {
        let m = Metrics::new();
        m.event("letter.approved", true);
        m.event("Anna Beispiel", true);
        m.event("draft.ready", false);
        let text = m.encode();
        assert!(text.contains("nachweis_events_published_total{event_type=\"letter.approved\"} 1"), "{text}");
        assert!(text.contains("nachweis_events_published_total{event_type=\"other\"} 1"), "{text}");
        assert!(text.contains("nachweis_events_unroutable_total{event_type=\"draft.ready\"} 1"), "{text}");
        assert!(!text.contains("Anna"));
    }
}

//! The RabbitMQ consumer, the production queue (DESIGN §6): bundles arrive on
//! a durable quorum queue, go through `worker::process_one`, and are acked
//! only after the database commit; a bundle that can never succeed is copied
//! to the dead-letter exchange with its reason, and outbox events are relayed
//! to the events exchange, both with publisher confirms and `mandatory`.
//!
//! A lost connection is recovered by reconnecting with capped backoff and
//! declaring the topology again; an ack that cannot be sent counts as not
//! acked (the broker redelivers, and `bundle_id` idempotency absorbs it).
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt as _;
use lapin::message::Delivery;
use lapin::options::{
    BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicNackOptions, BasicPublishOptions,
    BasicQosOptions, ConfirmSelectOptions, ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::protocol::{AMQPErrorKind, AMQPSoftError};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::{Acker, BasicProperties, Channel, Confirmation, Connection, ConnectionProperties, ExchangeKind};
use tokio::sync::{Notify, Semaphore};
use tokio::task::JoinSet;

use crate::config::Settings;
use crate::domain::bundle::ManifestError;
use crate::intake::{self, IntakeError};
use crate::store::Store;
use crate::worker::{JobError, Pipeline, Processed, process_one};

/// Header on a dead-lettered copy: why it was rejected (an error kind and at
/// most a field name, never a value from the message).
pub const REASON_HEADER: &str = "x-nachweis-reason";
/// Header on a dead-lettered copy: the bundle id, when the message had a usable one.
pub const BUNDLE_ID_HEADER: &str = "x-nachweis-bundle-id";

/// Reconnect backoff: doubles from the first delay up to the cap.
const BACKOFF_FIRST: Duration = Duration::from_millis(500);
const BACKOFF_CAP: Duration = Duration::from_secs(10);
/// A broker that accepts TCP but never answers must not hang the worker.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// Delay before a `Retry` is nacked, doubled per earlier delivery and capped,
/// so that a database outage does not spin messages through the queue.
const RETRY_FIRST: Duration = Duration::from_millis(500);
const RETRY_CAP: Duration = Duration::from_secs(10);
/// The relay looks for unpublished events at least this often (it is also
/// woken after every recorded bundle).
const RELAY_INTERVAL: Duration = Duration::from_secs(1);
/// Outbox events the relay reads per query.
const RELAY_BATCH: i64 = 100;

/// Failures at the AMQP boundary.
#[derive(Debug, thiserror::Error)]
pub enum AmqpError {
    #[error("broker: {0}")]
    Broker(#[from] lapin::Error),
    #[error("no answer from the broker within {0:?}")]
    ConnectTimeout(Duration),
    #[error("the broker returned the message as unroutable ({reply_code} {reply_text}): no queue is bound for it")]
    Returned { reply_code: u16, reply_text: String },
    #[error("the broker refused the message (publisher confirm nack)")]
    Nacked,
    #[error("publisher confirms are not enabled on the channel")]
    NotConfirmed,
    #[error("the broker cancelled the consumer (queue deleted?)")]
    ConsumerCancelled,
    #[error("the topology on the broker differs from ours ({0}); delete or rename the old queue, or change NACHWEIS_AMQP_PREFIX")]
    TopologyMismatch(String),
    #[error("background task failed: {0}")]
    Task(String),
}

impl AmqpError {
    /// Whether reconnecting cannot help (the operator must change something).
    fn is_fatal(&self) -> bool {
        matches!(self, AmqpError::TopologyMismatch(_))
    }
}

/// The names this worker declares on the broker, derived from one prefix so
/// that tests (and several deployments on one vhost) do not collide.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topology {
    /// Durable quorum queue the bundles arrive on.
    pub bundles: String,
    /// Fanout exchange for dead letters: RabbitMQ's own (delivery limit
    /// exceeded) and the worker's rejected copies.
    pub dead_exchange: String,
    /// Where dead letters wait for an operator.
    pub dead_queue: String,
    /// Topic exchange for outgoing events (`bundle.checked`, `draft.ready`).
    pub events_exchange: String,
    /// Deliveries before RabbitMQ dead-letters a message (`x-delivery-limit`).
    pub delivery_limit: u32,
}

impl Topology {
    /// `<prefix>.bundles`, `<prefix>.dead`, `<prefix>.bundles.dead`, `<prefix>.events`.
    pub fn with_prefix(prefix: &str, delivery_limit: u32) -> Self {
        Topology {
            bundles: format!("{prefix}.bundles"),
            dead_exchange: format!("{prefix}.dead"),
            dead_queue: format!("{prefix}.bundles.dead"),
            events_exchange: format!("{prefix}.events"),
            delivery_limit,
        }
    }

    /// The topology the settings name.
    pub fn from_settings(settings: &Settings) -> Self {
        Topology::with_prefix(&settings.amqp_prefix, settings.amqp_delivery_limit)
    }

    /// Declares everything, idempotently (run on every connect). Declaring a
    /// queue that exists with other arguments fails with PRECONDITION_FAILED.
    pub async fn declare(&self, channel: &Channel) -> Result<(), lapin::Error> {
        let durable = ExchangeDeclareOptions { durable: true, ..ExchangeDeclareOptions::default() };
        channel.exchange_declare(self.dead_exchange.as_str().into(), ExchangeKind::Fanout, durable, FieldTable::default()).await?;
        let mut dead_args = FieldTable::default();
        dead_args.insert("x-queue-type".into(), string("quorum"));
        channel.queue_declare(self.dead_queue.as_str().into(), QueueDeclareOptions::durable(), dead_args).await?;
        channel
            .queue_bind(
                self.dead_queue.as_str().into(),
                self.dead_exchange.as_str().into(),
                self.dead_queue.as_str().into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
        let mut args = FieldTable::default();
        args.insert("x-queue-type".into(), string("quorum"));
        // 3.10 has no default delivery limit: without one a poison message
        // that crashes the worker would be redelivered forever.
        args.insert("x-delivery-limit".into(), AMQPValue::LongLongInt(i64::from(self.delivery_limit)));
        args.insert("x-dead-letter-exchange".into(), string(&self.dead_exchange));
        // At-least-once dead-lettering (no message lost between the two
        // queues) requires reject-publish overflow.
        args.insert("x-dead-letter-strategy".into(), string("at-least-once"));
        args.insert("x-overflow".into(), string("reject-publish"));
        channel.queue_declare(self.bundles.as_str().into(), QueueDeclareOptions::durable(), args).await?;
        channel.exchange_declare(self.events_exchange.as_str().into(), ExchangeKind::Topic, durable, FieldTable::default()).await?;
        Ok(())
    }
}

fn string(s: &str) -> AMQPValue {
    AMQPValue::LongString(LongString::from(s))
}

/// Resolves on SIGTERM or SIGINT. Call it early: the handlers are installed
/// when this returns, so a signal arriving during start-up is not fatal.
pub fn shutdown_signal() -> std::io::Result<impl Future<Output = ()> + Send + 'static> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    })
}

/// What every delivery handler and the relay share.
struct Shared {
    pipeline: Arc<Pipeline>,
    store: Arc<dyn Store>,
    topology: Topology,
    intake_dir: PathBuf,
    /// Bounds CPU work to `concurrency` bundles also across a reconnect,
    /// when handlers of the lost channel are still finishing.
    permits: Arc<Semaphore>,
    /// Wakes the relay after a commit, so events go out promptly.
    relay_wakeup: Notify,
}

/// Consumes bundles from RabbitMQ until `stop` resolves, then stops consuming,
/// lets in-flight bundles finish within `settings.shutdown_grace_secs`, and
/// closes the connection (unacked messages return to the queue).
///
/// Returns an error only for what reconnecting cannot fix (a topology that
/// conflicts with the existing queues).
pub async fn run_until_stopped(
    amqp_url: &str,
    settings: &Settings,
    pipeline: Arc<Pipeline>,
    store: Arc<dyn Store>,
    stop: impl Future<Output = ()>,
) -> Result<(), AmqpError> {
    let concurrency = settings.concurrency.clamp(1, usize::from(u16::MAX));
    let shared = Arc::new(Shared {
        pipeline,
        store,
        topology: Topology::from_settings(settings),
        intake_dir: settings.intake_dir.clone(),
        permits: Arc::new(Semaphore::new(concurrency)),
        relay_wakeup: Notify::new(),
    });
    let grace = Duration::from_secs(settings.shutdown_grace_secs);
    tokio::pin!(stop);
    let mut delay = BACKOFF_FIRST;
    let mut sessions = 0u64;
    loop {
        let outcome = tokio::select! {
            () = &mut stop => return Ok(()),
            opened = Session::open(amqp_url, &shared.topology, concurrency as u16) => opened,
        };
        let error = match outcome {
            Ok(session) => {
                delay = BACKOFF_FIRST;
                sessions += 1;
                tracing::info!(message = "Connected to the broker.", queue = %shared.topology.bundles, prefetch = concurrency, session = sessions);
                match session.run(&shared, sessions, &mut stop, grace).await {
                    SessionEnd::Stopped => return Ok(()),
                    SessionEnd::Lost(error) => error,
                }
            }
            Err(error) => error,
        };
        if error.is_fatal() {
            return Err(error);
        }
        tracing::warn!(message = "Broker connection lost; reconnecting.", %error, retry_in_ms = delay.as_millis() as u64);
        tokio::select! {
            () = &mut stop => return Ok(()),
            () = tokio::time::sleep(delay) => {}
        }
        delay = (delay * 2).min(BACKOFF_CAP);
    }
}

/// How a session ended.
enum SessionEnd {
    /// Shutdown was requested and done.
    Stopped,
    /// The connection or a channel broke; reconnect.
    Lost(AmqpError),
}

/// One connection with its two channels: one consumes (and acks), the other
/// publishes with confirms (dead-letter copies, events), so a slow confirm
/// never holds up acks.
struct Session {
    connection: Connection,
    consume: Channel,
    publish: Channel,
}

impl Session {
    async fn open(url: &str, topology: &Topology, prefetch: u16) -> Result<Session, AmqpError> {
        let properties = ConnectionProperties::default().with_connection_name(format!("nachweis worker {}", std::process::id()).into());
        let connection = tokio::time::timeout(CONNECT_TIMEOUT, Connection::connect(url, properties))
            .await
            .map_err(|_| AmqpError::ConnectTimeout(CONNECT_TIMEOUT))??;
        let publish = connection.create_channel().await?;
        topology.declare(&publish).await.map_err(|error| match error.kind() {
            lapin::ErrorKind::ProtocolError(e) if matches!(e.kind(), AMQPErrorKind::Soft(AMQPSoftError::PRECONDITIONFAILED)) => {
                AmqpError::TopologyMismatch(e.to_string())
            }
            _ => AmqpError::Broker(error),
        })?;
        publish.confirm_select(ConfirmSelectOptions::default()).await?;
        let consume = connection.create_channel().await?;
        // Per consumer (global = false): the broker sends at most `prefetch`
        // unacked bundles, the number this worker processes at once.
        consume.basic_qos(prefetch, BasicQosOptions::default()).await?;
        Ok(Session { connection, consume, publish })
    }

    async fn run<S: Future<Output = ()>>(
        self,
        shared: &Arc<Shared>,
        number: u64,
        stop: &mut std::pin::Pin<&mut S>,
        grace: Duration,
    ) -> SessionEnd {
        let tag = format!("nachweis-{}-{number}", std::process::id());
        let consumer = self
            .consume
            .basic_consume(shared.topology.bundles.as_str().into(), tag.as_str().into(), BasicConsumeOptions::default(), FieldTable::default())
            .await;
        let mut consumer = match consumer {
            Ok(c) => c,
            Err(error) => return SessionEnd::Lost(error.into()),
        };
        let mut relay = tokio::spawn(relay_events(self.publish.clone(), shared.clone()));
        let mut in_flight = JoinSet::new();
        let lost = loop {
            tokio::select! {
                biased;
                () = stop.as_mut() => break None,
                next = consumer.next() => match next {
                    Some(Ok(delivery)) => {
                        in_flight.spawn(handle_delivery(delivery, self.publish.clone(), shared.clone()));
                    }
                    Some(Err(error)) => break Some(AmqpError::from(error)),
                    None => break Some(AmqpError::ConsumerCancelled),
                },
                Some(joined) = in_flight.join_next(), if !in_flight.is_empty() => {
                    if let Err(error) = joined {
                        tracing::error!(message = "Delivery handler failed; the message will be redelivered.", %error);
                    }
                }
                relayed = &mut relay => break Some(match relayed {
                    Ok(Err(error)) => error,
                    Ok(Ok(())) => AmqpError::Task("event relay stopped".into()),
                    Err(error) => AmqpError::Task(format!("event relay: {error}")),
                }),
            }
        };
        if let Some(error) = lost {
            relay.abort();
            // The handlers keep running: a bundle already being checked is
            // still committed, and its redelivery is then a cheap duplicate.
            // Their acks fail on the dead channel, which is what we want.
            in_flight.detach_all();
            return SessionEnd::Lost(error);
        }
        self.shut_down(&tag, in_flight, relay, grace).await;
        SessionEnd::Stopped
    }

    /// Stops consuming, gives in-flight bundles `grace` to finish, then
    /// closes the channels: the broker requeues whatever is still unacked,
    /// including deliveries prefetched but never started.
    async fn shut_down(self, tag: &str, mut in_flight: JoinSet<()>, relay: tokio::task::JoinHandle<Result<(), AmqpError>>, grace: Duration) {
        tracing::info!(message = "Stopping: no new bundles; waiting for the ones in progress.", in_flight = in_flight.len(), grace_secs = grace.as_secs());
        if let Err(error) = self.consume.basic_cancel(tag.into(), BasicCancelOptions::default()).await {
            tracing::warn!(message = "Cancelling the consumer failed.", %error);
        }
        let drained = tokio::time::timeout(grace, async { while in_flight.join_next().await.is_some() {} }).await;
        if drained.is_err() {
            tracing::warn!(message = "Grace period over; unfinished bundles go back to the queue.", unfinished = in_flight.len());
            in_flight.abort_all();
            while in_flight.join_next().await.is_some() {}
        }
        // Unpublished events stay in the outbox for the next relay.
        relay.abort();
        let _ = self.consume.close(200, ShortString::from("worker stopping")).await;
        let _ = self.publish.close(200, ShortString::from("worker stopping")).await;
        let _ = self.connection.close(200, ShortString::from("worker stopping")).await;
        tracing::info!(message = "Worker stopped.");
    }
}

/// Why a delivery did not succeed, as the queue acts on it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Failure {
    /// Requeue after a delay; the log reason may name the failing component.
    Retry(String),
    /// Dead-letter; the reason is a short code without personal data.
    Reject(String),
}

/// Processes one delivery and settles it: ack after the commit, nack with
/// requeue on a temporary failure, dead-letter copy then ack on a reject.
async fn handle_delivery(delivery: Delivery, publish: Channel, shared: Arc<Shared>) {
    let attempt = delivery_count(&delivery.properties);
    // Closed never; a failure here would only mean shutdown.
    let Ok(_permit) = shared.permits.clone().acquire_owned().await else { return };
    let (bundle_id, outcome) = process_delivery(&shared, &delivery.data).await;
    let bundle = bundle_id.as_deref().unwrap_or("-");
    match outcome {
        Ok(processed) => {
            match processed {
                Processed::Recorded { .. } => shared.relay_wakeup.notify_one(),
                Processed::AlreadyRecorded { case_id } => {
                    tracing::info!(message = "Duplicate of a recorded bundle; acked.", bundle_id = bundle, %case_id, attempt);
                }
            }
            settle(&delivery.acker, Settle::Ack, bundle).await;
        }
        // The last delivery the limit allows: requeueing would make RabbitMQ
        // dead-letter it without saying why, so we do it with the reason.
        Err(Failure::Retry(reason)) if attempt >= shared.topology.delivery_limit => {
            let code = format!("retries_exhausted:{}", retry_reason(&reason));
            reject(&delivery, &publish, &shared, &code, bundle_id.as_deref(), attempt).await;
        }
        Err(Failure::Retry(reason)) => {
            let wait = retry_delay(attempt);
            tracing::warn!(message = "Bundle failed temporarily; requeueing.", bundle_id = bundle, %reason, attempt, wait_ms = wait.as_millis() as u64);
            tokio::time::sleep(wait).await;
            settle(&delivery.acker, Settle::Requeue, bundle).await;
        }
        Err(Failure::Reject(reason)) => reject(&delivery, &publish, &shared, &reason, bundle_id.as_deref(), attempt).await,
    }
}

/// Dead-letters a copy with the reason, then acks the original; if the copy
/// is not confirmed, the original is requeued instead (never dropped).
async fn reject(delivery: &Delivery, publish: &Channel, shared: &Shared, reason: &str, bundle_id: Option<&str>, attempt: u32) {
    let bundle = bundle_id.unwrap_or("-");
    match dead_letter(publish, &shared.topology, delivery, reason, bundle_id).await {
        Ok(()) => {
            tracing::warn!(message = "Bundle rejected and dead-lettered.", bundle_id = bundle, %reason);
            settle(&delivery.acker, Settle::Ack, bundle).await;
        }
        Err(error) => {
            let wait = retry_delay(attempt);
            tracing::warn!(message = "Dead-lettering failed; requeueing.", bundle_id = bundle, %reason, %error);
            tokio::time::sleep(wait).await;
            settle(&delivery.acker, Settle::Requeue, bundle).await;
        }
    }
}

/// Intake and pipeline for one message body. Returns the bundle id when the
/// message had a usable one (for logs and the dead-letter header).
async fn process_delivery(shared: &Arc<Shared>, data: &[u8]) -> (Option<String>, Result<Processed, Failure>) {
    let bytes = data.to_vec();
    let root = shared.intake_dir.clone();
    // Decoding inline documents and writing them out is blocking work.
    let intake = tokio::task::spawn_blocking(move || intake::from_manifest_bytes(&bytes, &root)).await;
    let bundle = match intake {
        Ok(Ok(bundle)) => bundle,
        Ok(Err(IntakeError::Manifest(error))) => return (peek_bundle_id(data), Err(Failure::Reject(manifest_reason(&error)))),
        Ok(Err(error)) => return (peek_bundle_id(data), Err(classify(JobError::from(error)))),
        Err(error) => return (peek_bundle_id(data), Err(Failure::Retry(format!("intake task failed: {error}")))),
    };
    let bundle_id = bundle.manifest.bundle_id.clone();
    let today = chrono::Utc::now().date_naive();
    let result = process_one(shared.pipeline.clone(), shared.store.clone(), bundle, today).await;
    (Some(bundle_id), result.map_err(classify))
}

fn classify(error: JobError) -> Failure {
    match error {
        JobError::Retry(reason) => Failure::Retry(reason),
        JobError::Reject(message) => Failure::Reject(reject_reason(&message).to_owned()),
    }
}

/// The dead-letter reason for a manifest error: the kind and the field name.
fn manifest_reason(error: &ManifestError) -> String {
    match error {
        ManifestError::NotJson(_) => "invalid_json".into(),
        ManifestError::NotAnObject => "invalid_manifest:not_an_object".into(),
        ManifestError::Missing(field) => format!("invalid_manifest:missing:{}", header_safe(field)),
        ManifestError::Malformed { field, .. } => format!("invalid_manifest:malformed:{}", header_safe(field)),
    }
}

/// A short code for `process_one`'s rejections. `JobError::Reject` carries
/// prose with ids in it; the header gets only the kind.
fn reject_reason(message: &str) -> &'static str {
    if message.starts_with("unknown procedure") {
        "unknown_procedure"
    } else if (message.starts_with("case_id") && message.ends_with("is not known")) || message.starts_with("not found:") {
        "unknown_case"
    } else if message.starts_with("conflict:") {
        "case_conflict"
    } else if message.starts_with("invalid manifest") {
        "invalid_manifest"
    } else {
        "rejected"
    }
}

/// A short code for why retries ran out (for the dead-letter header).
fn retry_reason(message: &str) -> &'static str {
    if message.starts_with("case_id") && message.contains("is not known") {
        "unknown_case"
    } else if message.starts_with("database unavailable") {
        "store_unavailable"
    } else if message.starts_with("intake") {
        "intake"
    } else if message.starts_with("pipeline task failed") {
        "pipeline_crashed"
    } else {
        "temporary_failure"
    }
}

/// Keeps a field path (`children[0].birth_date`) and drops anything else,
/// so a header never carries more than the manifest's own field names.
fn header_safe(field: &str) -> String {
    field.chars().filter(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '[' | ']' | '-')).take(64).collect()
}

/// The `bundle_id` of a message whose manifest was rejected, if it has one
/// of the safe id alphabet (anything else could be personal data).
fn peek_bundle_id(data: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(data).ok()?;
    let id = value.get("bundle_id")?.as_str()?;
    let safe = !id.is_empty()
        && id.len() <= 128
        && !id.starts_with('.')
        && id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    safe.then(|| id.to_owned())
}

/// How many times the broker delivered this message before (quorum queues
/// set `x-delivery-count` on redeliveries).
fn delivery_count(properties: &BasicProperties) -> u32 {
    let value = properties.headers().as_ref().and_then(|h| h.inner().get("x-delivery-count"));
    let count = match value {
        Some(AMQPValue::LongLongInt(n)) => *n,
        Some(AMQPValue::LongInt(n)) => i64::from(*n),
        Some(AMQPValue::LongUInt(n)) => i64::from(*n),
        Some(AMQPValue::ShortInt(n)) => i64::from(*n),
        Some(AMQPValue::ShortUInt(n)) => i64::from(*n),
        Some(AMQPValue::ShortShortInt(n)) => i64::from(*n),
        Some(AMQPValue::ShortShortUInt(n)) => i64::from(*n),
        _ => 0,
    };
    u32::try_from(count).unwrap_or(0)
}

/// The wait before a temporary failure is requeued: 0.5 s, doubling per
/// earlier delivery, at most 10 s.
fn retry_delay(attempt: u32) -> Duration {
    RETRY_FIRST.saturating_mul(1u32 << attempt.min(8)).min(RETRY_CAP)
}

#[derive(Debug, Clone, Copy)]
enum Settle {
    Ack,
    Requeue,
}

/// Acks or requeues. Returns whether the broker got it; a dead channel means
/// it did not, and the broker will redeliver the message.
async fn settle(acker: &Acker, how: Settle, bundle_id: &str) -> bool {
    let sent = match how {
        Settle::Ack => acker.ack(BasicAckOptions::default()).await,
        Settle::Requeue => acker.nack(BasicNackOptions { requeue: true, ..BasicNackOptions::default() }).await,
    };
    match sent {
        Ok(true) => true,
        Ok(false) => {
            tracing::warn!(message = "Channel gone before the ack; the message will be redelivered.", bundle_id, ?how);
            false
        }
        Err(error) => {
            tracing::warn!(message = "Ack failed; the message will be redelivered.", bundle_id, ?how, %error);
            false
        }
    }
}

/// Publishes a copy of a rejected message to the dead-letter exchange with
/// the reason headers, and waits for the broker's confirm.
async fn dead_letter(channel: &Channel, topology: &Topology, delivery: &Delivery, reason: &str, bundle_id: Option<&str>) -> Result<(), AmqpError> {
    let mut headers = delivery.properties.headers().clone().unwrap_or_default();
    headers.insert(REASON_HEADER.into(), string(reason));
    if let Some(id) = bundle_id {
        headers.insert(BUNDLE_ID_HEADER.into(), string(id));
    }
    let properties = delivery.properties.clone().with_headers(headers).with_delivery_mode(2);
    publish_confirmed(channel, &topology.dead_exchange, &topology.dead_queue, &delivery.data, properties).await
}

/// Publishes with `mandatory` and waits for the confirm: only an ack without
/// a `basic.return` counts as delivered.
async fn publish_confirmed(channel: &Channel, exchange: &str, routing_key: &str, payload: &[u8], properties: BasicProperties) -> Result<(), AmqpError> {
    let options = BasicPublishOptions { mandatory: true, ..BasicPublishOptions::default() };
    let confirm = channel.basic_publish(exchange.into(), routing_key.into(), options, payload, properties).await?.await?;
    match confirm {
        Confirmation::Ack(None) => Ok(()),
        Confirmation::Ack(Some(returned)) | Confirmation::Nack(Some(returned)) => {
            Err(AmqpError::Returned { reply_code: returned.reply_code, reply_text: returned.reply_text.to_string() })
        }
        Confirmation::Nack(None) => Err(AmqpError::Nacked),
        Confirmation::NotRequested => Err(AmqpError::NotConfirmed),
    }
}

/// Publishes outbox events to the events exchange until the channel breaks.
/// An event is marked published only after the broker confirmed it, so it
/// goes out at least once; consumers deduplicate on `event_id`. An event no
/// queue is bound for stays in the outbox and is tried again later.
async fn relay_events(channel: Channel, shared: Arc<Shared>) -> Result<(), AmqpError> {
    let exchange = shared.topology.events_exchange.clone();
    let mut warned_unroutable = false;
    loop {
        let mut unroutable = 0usize;
        loop {
            let events = match shared.store.pending_events(RELAY_BATCH).await {
                Ok(events) => events,
                Err(error) => {
                    tracing::warn!(message = "Cannot read the outbox; trying again later.", %error);
                    break;
                }
            };
            let full_batch = events.len() as i64 == RELAY_BATCH;
            let mut progressed = false;
            for event in events {
                let payload = match serde_json::to_vec(&event.payload) {
                    Ok(p) => p,
                    Err(error) => {
                        tracing::error!(message = "Outbox event is not serialisable; skipped.", event_id = %event.event_id, %error);
                        continue;
                    }
                };
                let properties = BasicProperties::default()
                    .with_message_id(event.event_id.as_str().into())
                    .with_type(event.event_type.as_str().into())
                    .with_content_type("application/json".into())
                    .with_delivery_mode(2)
                    .with_timestamp(u64::try_from(event.created_at.timestamp()).unwrap_or(0));
                match publish_confirmed(&channel, &exchange, &event.event_type, &payload, properties).await {
                    Ok(()) => {}
                    Err(AmqpError::Returned { .. } | AmqpError::Nacked) => {
                        unroutable += 1;
                        continue;
                    }
                    Err(error) => return Err(error),
                }
                match shared.store.mark_event_published(event.id).await {
                    Ok(()) => progressed = true,
                    Err(error) => {
                        // Published but not marked: it goes out again later.
                        tracing::warn!(message = "Cannot mark an event published; it will be sent again.", event_id = %event.event_id, %error);
                        break;
                    }
                }
            }
            if !(full_batch && progressed) {
                break;
            }
        }
        if unroutable > 0 && !warned_unroutable {
            tracing::warn!(message = "Events not routable: no queue is bound on the events exchange for them; they stay in the outbox.", exchange = %exchange, unroutable);
        }
        warned_unroutable = unroutable > 0;
        tokio::select! {
            () = shared.relay_wakeup.notified() => {}
            () = tokio::time::sleep(RELAY_INTERVAL) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_derive_from_the_prefix() {
        let t = Topology::with_prefix("nachweis", 5);
        assert_eq!(t.bundles, "nachweis.bundles");
        assert_eq!(t.dead_exchange, "nachweis.dead");
        assert_eq!(t.dead_queue, "nachweis.bundles.dead");
        assert_eq!(t.events_exchange, "nachweis.events");
    }

    #[test]
    fn dead_letter_reasons_name_the_field_but_never_a_value() {
        let missing = ManifestError::Missing("received_at".into());
        assert_eq!(manifest_reason(&missing), "invalid_manifest:missing:received_at");
        let malformed = ManifestError::Malformed { field: "children[0].birth_date".into(), why: "Lena Beispiel 2012".into() };
        assert_eq!(manifest_reason(&malformed), "invalid_manifest:malformed:children[0].birth_date");
        assert_eq!(manifest_reason(&ManifestError::NotJson("line 1 column 7: 'Anna'".into())), "invalid_json");
        assert_eq!(reject_reason("case_id case-0123 is not known"), "unknown_case");
        assert_eq!(reject_reason("unknown procedure \"kita\""), "unknown_procedure");
        assert_eq!(reject_reason("something the shell never said about Anna"), "rejected");
        assert_eq!(retry_reason("case_id case-0123 is not known (yet)"), "unknown_case");
        assert_eq!(retry_reason("database unavailable: pool timed out"), "store_unavailable");
        assert_eq!(retry_reason("Anna"), "temporary_failure");
        assert_eq!(header_safe("name: Anna Beispiel\r\nx"), "nameAnnaBeispielx");
    }

    #[test]
    fn only_safe_bundle_ids_are_taken_from_a_rejected_message() {
        assert_eq!(peek_bundle_id(br#"{"bundle_id": "uvg-2026-1"}"#).as_deref(), Some("uvg-2026-1"));
        assert_eq!(peek_bundle_id(br#"{"bundle_id": "Anna Beispiel"}"#), None);
        assert_eq!(peek_bundle_id(b"{not json"), None);
        assert_eq!(peek_bundle_id(br#"{"bundle_id": 7}"#), None);
    }

    #[test]
    fn retries_back_off_and_are_capped() {
        assert_eq!(retry_delay(0), Duration::from_millis(500));
        assert_eq!(retry_delay(1), Duration::from_secs(1));
        assert_eq!(retry_delay(3), Duration::from_secs(4));
        assert_eq!(retry_delay(5), RETRY_CAP);
        assert_eq!(retry_delay(u32::MAX), RETRY_CAP);
    }

    #[test]
    fn the_delivery_count_header_is_read_whatever_its_integer_type() {
        let mut headers = FieldTable::default();
        headers.insert("x-delivery-count".into(), AMQPValue::LongLongInt(3));
        assert_eq!(delivery_count(&BasicProperties::default().with_headers(headers)), 3);
        let mut headers = FieldTable::default();
        headers.insert("x-delivery-count".into(), AMQPValue::LongInt(-1));
        assert_eq!(delivery_count(&BasicProperties::default().with_headers(headers)), 0);
        assert_eq!(delivery_count(&BasicProperties::default()), 0);
    }
}

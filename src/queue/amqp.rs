//! The RabbitMQ consumer, the production queue (DESIGN §6): bundles arrive on
//! a durable quorum queue, go through `worker::process_one`, and are acked
//! only after the database commit; a bundle that can never succeed is copied
//! to the dead-letter exchange with its reason, and outbox events are relayed
//! to the events exchange, both with publisher confirms and `mandatory`.
//!
//! A lost connection (noticed at the latest after two missed heartbeats) is
//! recovered by reconnecting with capped backoff and declaring the topology
//! again; an ack that cannot be sent counts as not acked (the broker
//! redelivers, and `bundle_id` idempotency absorbs it). A message whose
//! processing keeps killing workers is dead-lettered after `crash_limit`
//! unfinished starts, counted in the database, so the messages prefetched
//! beside it are not blamed.
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{FutureExt as _, StreamExt as _};
use lapin::message::Delivery;
use lapin::options::{
    BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicNackOptions, BasicPublishOptions,
    BasicQosOptions, ConfirmSelectOptions, ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::protocol::{AMQPErrorKind, AMQPSoftError};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::uri::AMQPUri;
use lapin::{Acker, BasicProperties, Channel, ChannelStatus, Confirmation, Connection, ConnectionProperties, ExchangeKind};
use sha2::{Digest as _, Sha256};
use tokio::sync::{Notify, Semaphore, watch};
use tokio::task::JoinSet;

use crate::config::Settings;
use crate::domain::bundle::ManifestError;
use crate::intake::{self, IntakeError};
use crate::metrics::Metrics;
use crate::ops::ReadyFlag;
use crate::store::Store;
use crate::worker::{JobError, Pipeline, Processed, process_one};

/// Header on a dead-lettered copy: why it was rejected (an error kind and at
/// most a field name, never a value from the message).
pub const REASON_HEADER: &str = "x-nachweis-reason";
/// Header on a dead-lettered copy: the bundle id, when the message had a usable one.
pub const BUNDLE_ID_HEADER: &str = "x-nachweis-bundle-id";
/// The reason of a message whose processing never finished `crash_limit` times.
pub const WORKER_CRASHED: &str = "worker_crashed";

/// Reconnect backoff: doubles from the first delay up to the cap.
const BACKOFF_FIRST: Duration = Duration::from_millis(500);
const BACKOFF_CAP: Duration = Duration::from_secs(10);
/// A broker that accepts TCP but never answers must not hang the worker.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// Delay before a `Retry` is nacked, doubled per earlier delivery and capped,
/// so that a bundle waiting for its case does not spin through the queue.
const RETRY_FIRST: Duration = Duration::from_millis(500);
const RETRY_CAP: Duration = Duration::from_secs(10);
/// The relay looks for unpublished events at least this often (it is also
/// woken after every recorded bundle).
const RELAY_INTERVAL: Duration = Duration::from_secs(1);
/// Outbox events the relay claims per query.
const RELAY_BATCH: i64 = 100;
/// How long a relay's claim on outbox events holds. Publishing a batch takes
/// milliseconds; an event that could not be routed keeps its claim until the
/// lease runs out, so it is tried again later and does not block the events
/// behind it.
const RELAY_LEASE: Duration = Duration::from_secs(10);
/// How often the ready-message counts of the queues are read for metrics.
const QUEUE_POLL: Duration = Duration::from_secs(5);

/// Failures at the AMQP boundary.
#[derive(Debug, thiserror::Error)]
pub enum AmqpError {
    #[error("broker: {0}")]
    Broker(#[from] lapin::Error),
    #[error("NACHWEIS_AMQP_URL is not a valid AMQP URL: {0}")]
    InvalidUrl(String),
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
        matches!(self, AmqpError::TopologyMismatch(_) | AmqpError::InvalidUrl(_))
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


/// What the consumer reports to operations: the metrics it updates and the
/// readiness flag it holds set while connected and consuming.
#[derive(Clone)]
pub struct Monitoring {
    pub metrics: Arc<Metrics>,
    pub consuming: ReadyFlag,
}

/// What every delivery handler and the relay share.
struct Shared {
    pipeline: Arc<Pipeline>,
    store: Arc<dyn Store>,
    topology: Topology,
    intake_dir: PathBuf,
    /// Bundles processed at once (= prefetch).
    concurrency: u32,
    /// Bounds CPU work to `concurrency` bundles also across a reconnect,
    /// when handlers of the lost channel are still finishing.
    permits: Arc<Semaphore>,
    /// Wakes the relay after a commit, so events go out promptly.
    relay_wakeup: Notify,
    /// Set once shutdown begins: handlers that have not started give their
    /// message back at once, and waits before a requeue are cut short.
    stopping: watch::Sender<bool>,
    crash_limit: u32,
    monitoring: Monitoring,
}

impl Shared {
    fn metrics(&self) -> &Metrics {
        &self.monitoring.metrics
    }

    /// Resolves once shutdown has begun.
    async fn stopped(&self) {
        let mut stopping = self.stopping.subscribe();
        let _ = stopping.wait_for(|s| *s).await;
    }

    fn is_stopping(&self) -> bool {
        *self.stopping.borrow()
    }

    /// Sleeps for `wait`; returns early (false) when shutdown begins.
    async fn pause(&self, wait: Duration) -> bool {
        tokio::select! {
            () = tokio::time::sleep(wait) => true,
            () = self.stopped() => false,
        }
    }
}

/// Consumes bundles from RabbitMQ until `stop` resolves, then stops consuming,
/// lets in-flight bundles finish within `settings.shutdown_grace_secs`, and
/// closes the connection (unacked messages return to the queue).
///
/// Returns an error only for what reconnecting cannot fix (an invalid URL, a
/// topology that conflicts with the existing queues).
pub async fn run_until_stopped(
    amqp_url: &str,
    settings: &Settings,
    pipeline: Arc<Pipeline>,
    store: Arc<dyn Store>,
    monitoring: Monitoring,
    stop: impl Future<Output = ()>,
) -> Result<(), AmqpError> {
    let uri = connection_uri(amqp_url, settings.amqp_heartbeat_secs)?;
    let concurrency = settings.concurrency.clamp(1, usize::from(u16::MAX));
    let shared = Arc::new(Shared {
        pipeline,
        store,
        topology: Topology::from_settings(settings),
        intake_dir: settings.intake_dir.clone(),
        concurrency: concurrency as u32,
        permits: Arc::new(Semaphore::new(concurrency)),
        relay_wakeup: Notify::new(),
        stopping: watch::channel(false).0,
        crash_limit: settings.crash_limit.max(1),
        monitoring,
    });
    let grace = Duration::from_secs(settings.shutdown_grace_secs);
    tokio::pin!(stop);
    let mut delay = BACKOFF_FIRST;
    let mut sessions = 0u64;
    loop {
        let outcome = tokio::select! {
            () = &mut stop => return Ok(()),
            opened = Session::open(&uri, &shared.topology, concurrency as u16) => opened,
        };
        let error = match outcome {
            Ok(session) => {
                delay = BACKOFF_FIRST;
                sessions += 1;
                shared.metrics().broker_connects.inc();
                tracing::info!(
                    message = "Connected to the broker.",
                    queue = %shared.topology.bundles,
                    prefetch = concurrency,
                    heartbeat_secs = session.connection.configuration().heartbeat(),
                    session = sessions
                );
                match session.run(&shared, sessions, &mut stop, grace).await {
                    SessionEnd::Stopped => return Ok(()),
                    SessionEnd::Lost(error) => {
                        shared.metrics().broker_connection_losses.inc();
                        error
                    }
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

/// Parses the URL and asks for our heartbeat unless the URL names one. The
/// error never repeats the URL, which may hold a password.
fn connection_uri(url: &str, heartbeat_secs: u16) -> Result<AMQPUri, AmqpError> {
    let mut uri: AMQPUri = url.parse().map_err(AmqpError::InvalidUrl)?;
    if uri.query.heartbeat.is_none() {
        uri.query.heartbeat = Some(heartbeat_secs);
    }
    Ok(uri)
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
    async fn open(uri: &AMQPUri, topology: &Topology, prefetch: u16) -> Result<Session, AmqpError> {
        let properties = ConnectionProperties::default().with_connection_name(format!("nachweis worker {}", std::process::id()).into());
        let connection = tokio::time::timeout(CONNECT_TIMEOUT, Connection::connect_uri(uri.clone(), properties))
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
        shared.monitoring.consuming.set(true);
        shared.metrics().broker_connected.set(1);
        // A relay id per session: claims of a session that broke expire
        // like those of a dead worker, and nothing else needs to know.
        let relay_id = format!("{}-{}-{number}", host_name(), std::process::id());
        let mut relay = tokio::spawn(relay_events(self.publish.clone(), shared.clone(), relay_id));
        let mut in_flight = JoinSet::new();
        let lost = loop {
            tokio::select! {
                biased;
                () = stop.as_mut() => break None,
                next = consumer.next() => match next {
                    Some(Ok(delivery)) => {
                        in_flight.spawn(handle_delivery(delivery, self.consume.status().clone(), self.publish.clone(), shared.clone()));
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
        shared.monitoring.consuming.set(false);
        shared.metrics().broker_connected.set(0);
        if let Some(error) = lost {
            relay.abort();
            // The handlers keep running: a bundle already being checked is
            // still committed, and its redelivery is then a cheap duplicate.
            // Their acks fail on the dead channel, which is what we want.
            in_flight.detach_all();
            return SessionEnd::Lost(error);
        }
        self.shut_down(shared, &tag, in_flight, relay, grace).await;
        SessionEnd::Stopped
    }

    /// Stops consuming, gives in-flight bundles `grace` to finish, then
    /// closes the channels: the broker requeues whatever is still unacked.
    /// Deliveries prefetched but not started are given back at once.
    async fn shut_down(
        self,
        shared: &Shared,
        tag: &str,
        mut in_flight: JoinSet<()>,
        relay: tokio::task::JoinHandle<Result<(), AmqpError>>,
        grace: Duration,
    ) {
        tracing::info!(message = "Stopping: no new bundles; waiting for the ones in progress.", in_flight = in_flight.len(), grace_secs = grace.as_secs());
        shared.stopping.send_replace(true);
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

/// This host's name (container id under Docker), for relay ids.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").map(|h| h.trim().to_owned()).unwrap_or_else(|_| "host".into())
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
async fn handle_delivery(delivery: Delivery, consume: ChannelStatus, publish: Channel, shared: Arc<Shared>) {
    let attempt = delivery_count(&delivery.properties);
    observe_queue_wait(shared.metrics(), &delivery.properties);
    // Hashing and peeking into a body of many megabytes is CPU work, which
    // must not run on the runtime's threads (heartbeats run there).
    let peeked = tokio::task::spawn_blocking(move || {
        let key = hex::encode(Sha256::digest(&delivery.data));
        let bundle_id = peek_bundle_id(&delivery.data);
        (delivery, key, bundle_id)
    })
    .await;
    // The closure cannot panic; a join error means the runtime is going away.
    let Ok((delivery, key, peeked_id)) = peeked else { return };
    let bundle = peeked_id.as_deref().unwrap_or("-");

    // A redelivered message may be the one that killed a worker: it runs
    // with nothing beside it, so that if it kills this worker too, no other
    // bundle is cut short and blamed with it.
    let permits = if delivery.redelivered { shared.concurrency } else { 1 };
    let permit = tokio::select! {
        permit = shared.permits.clone().acquire_many_owned(permits) => permit.ok(),
        () = shared.stopped() => None,
    };
    let Some(_permit) = permit else {
        // Stopping before it started: back to the queue at once.
        settle(&delivery.acker, Settle::Requeue, bundle, &shared).await;
        return;
    };
    if !consume.connected() {
        // The channel it came on broke while it waited for a permit: the
        // broker redelivers it, so processing it here would be wasted work.
        tracing::info!(message = "Channel gone before processing; the message will be redelivered.", bundle_id = bundle);
        return;
    }
    let Some(unfinished) = begin_attempt(&shared, &key, bundle, &consume).await else {
        settle(&delivery.acker, Settle::Requeue, bundle, &shared).await;
        return;
    };
    // A first delivery cannot have crashed a worker before; what the journal
    // holds for its body then comes from identical copies being processed
    // right now (a re-sent bundle), which must not count as crashes.
    let unfinished = if delivery.redelivered { unfinished } else { 0 };
    if unfinished >= shared.crash_limit {
        tracing::error!(message = "Bundle never finished processing; a worker died each time.", bundle_id = bundle, unfinished, attempt);
        reject(&delivery, &publish, &shared, WORKER_CRASHED, peeked_id.as_deref(), attempt).await;
        end_attempt(&shared, &key, bundle).await;
        return;
    }
    if unfinished > 0 {
        shared.metrics().bundles_isolated.inc();
        tracing::warn!(message = "Bundle did not finish before; processing it alone.", bundle_id = bundle, unfinished, attempt);
    }
    tracing::info!(message = "Processing bundle.", bundle_id = bundle, attempt, redelivered = delivery.redelivered);

    shared.metrics().bundles_in_progress.inc();
    let started = Instant::now();
    let (bundle_id, outcome) = process_waiting_for_store(&shared, &delivery.data, bundle, &consume).await;
    shared.metrics().bundles_in_progress.dec();
    end_attempt(&shared, &key, bundle).await;
    let bundle = bundle_id.as_deref().unwrap_or("-");
    match outcome {
        Ok(processed) => {
            match processed {
                Processed::Recorded { report, .. } => {
                    shared.metrics().bundle_recorded(&report.procedure, report.verdict.as_str(), started.elapsed());
                    shared.relay_wakeup.notify_one();
                }
                Processed::AlreadyRecorded { case_id } => {
                    shared.metrics().bundles_duplicate.inc();
                    tracing::info!(message = "Duplicate of a recorded bundle; acked.", bundle_id = bundle, %case_id, attempt);
                }
            }
            settle(&delivery.acker, Settle::Ack, bundle, &shared).await;
        }
        // The last delivery the limit allows: requeueing would make RabbitMQ
        // dead-letter it without saying why, so we do it with the reason.
        Err(Failure::Retry(reason)) if attempt >= shared.topology.delivery_limit => {
            let code = format!("retries_exhausted:{}", retry_reason(&reason));
            reject(&delivery, &publish, &shared, &code, bundle_id.as_deref(), attempt).await;
        }
        Err(Failure::Retry(reason)) => {
            let wait = retry_delay(attempt);
            shared.metrics().retried(retry_reason(&reason));
            tracing::warn!(message = "Bundle failed temporarily; requeueing.", bundle_id = bundle, %reason, attempt, wait_ms = wait.as_millis() as u64);
            shared.pause(wait).await;
            settle(&delivery.acker, Settle::Requeue, bundle, &shared).await;
        }
        Err(Failure::Reject(reason)) => reject(&delivery, &publish, &shared, &reason, bundle_id.as_deref(), attempt).await,
    }
}

/// Records the start of processing in the database (see `Store::begin_attempt`)
/// and returns how many earlier starts never finished. While the database
/// is unreachable nothing can be processed, so it waits, holding the message
/// (which costs no delivery attempt); `None` when shutdown begins or the
/// message's channel breaks meanwhile.
async fn begin_attempt(shared: &Shared, key: &str, bundle: &str, consume: &ChannelStatus) -> Option<u32> {
    let mut wait = RETRY_FIRST;
    loop {
        match shared.store.begin_attempt(key).await {
            Ok(unfinished) => return Some(unfinished),
            Err(error) if error.is_transient() => {
                shared.metrics().retried("store_unavailable");
                tracing::warn!(message = "Database unavailable; holding the bundle and trying again.", bundle_id = bundle, %error, wait_ms = wait.as_millis() as u64);
                if !shared.pause(wait).await || !consume.connected() {
                    return None;
                }
                wait = (wait * 2).min(RETRY_CAP);
            }
            Err(error) => {
                // Without the journal a crashing message is still stopped by
                // the broker's delivery limit; processing goes on.
                tracing::error!(message = "Cannot record the processing start; going on without it.", bundle_id = bundle, %error);
                return Some(0);
            }
        }
    }
}

async fn end_attempt(shared: &Shared, key: &str, bundle: &str) {
    if let Err(error) = shared.store.end_attempt(key).await {
        // Left behind, the start counts as unfinished if the message comes
        // again; only `crash_limit` of those in a row dead-letter it.
        tracing::warn!(message = "Cannot record the end of processing.", bundle_id = bundle, %error);
    }
}

/// `process_delivery`, repeated in place while the database is unreachable:
/// a requeue would only spin the message through the queue and use up its
/// delivery limit. Other temporary failures go back to the queue. A panic
/// anywhere in processing becomes a temporary failure, so the message is
/// settled (and bounded by the delivery limit) instead of left unacked.
async fn process_waiting_for_store(
    shared: &Arc<Shared>,
    data: &[u8],
    bundle: &str,
    consume: &ChannelStatus,
) -> (Option<String>, Result<Processed, Failure>) {
    let mut wait = RETRY_FIRST;
    loop {
        let outcome = std::panic::AssertUnwindSafe(process_delivery(shared, data)).catch_unwind().await;
        let (bundle_id, result) = match outcome {
            Ok(done) => done,
            Err(_) => {
                tracing::error!(message = "Processing panicked.", bundle_id = bundle);
                (None, Err(Failure::Retry("pipeline task failed: panic".into())))
            }
        };
        match &result {
            // Holding is pointless once the channel is gone: the broker
            // redelivers the message on another connection.
            Err(Failure::Retry(reason)) if retry_reason(reason) == "store_unavailable" && !shared.is_stopping() && consume.connected() => {
                shared.metrics().retried("store_unavailable");
                tracing::warn!(message = "Database unavailable; holding the bundle and trying again.", bundle_id = bundle, %reason, wait_ms = wait.as_millis() as u64);
                if !shared.pause(wait).await {
                    return (bundle_id, result);
                }
                wait = (wait * 2).min(RETRY_CAP);
            }
            _ => return (bundle_id, result),
        }
    }
}

/// Observes how long the message waited in the queue, from the publisher's
/// `timestamp` property (whole seconds) when it set one.
fn observe_queue_wait(metrics: &Metrics, properties: &BasicProperties) {
    if let Some(published) = properties.timestamp() {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0);
        let waited = now - *published as f64;
        if waited >= 0.0 {
            metrics.queue_wait_seconds.observe(waited);
        }
    }
}

/// Dead-letters a copy with the reason, then acks the original; if the copy
/// is not confirmed, the original is requeued instead (never dropped).
async fn reject(delivery: &Delivery, publish: &Channel, shared: &Shared, reason: &str, bundle_id: Option<&str>, attempt: u32) {
    let bundle = bundle_id.unwrap_or("-");
    match dead_letter(publish, &shared.topology, delivery, reason, bundle_id).await {
        Ok(()) => {
            shared.metrics().dead_lettered(reason);
            tracing::warn!(message = "Bundle rejected and dead-lettered.", bundle_id = bundle, %reason);
            settle(&delivery.acker, Settle::Ack, bundle, shared).await;
        }
        Err(error) => {
            let wait = retry_delay(attempt);
            tracing::warn!(message = "Dead-lettering failed; requeueing.", bundle_id = bundle, %reason, %error);
            shared.pause(wait).await;
            settle(&delivery.acker, Settle::Requeue, bundle, shared).await;
        }
    }
}

/// Intake and pipeline for one message body. Returns the bundle id when the
/// message had a usable one (for logs and the dead-letter header).
async fn process_delivery(shared: &Arc<Shared>, data: &[u8]) -> (Option<String>, Result<Processed, Failure>) {
    let bytes = data.to_vec();
    let root = shared.intake_dir.clone();
    // Parsing the manifest, decoding inline documents and writing them out
    // is blocking work; so is peeking at the id of a message that failed.
    let intake = tokio::task::spawn_blocking(move || match intake::from_manifest_bytes(&bytes, &root) {
        Ok(bundle) => Ok(bundle),
        Err(error) => Err((peek_bundle_id(&bytes), error)),
    })
    .await;
    let bundle = match intake {
        Ok(Ok(bundle)) => bundle,
        Ok(Err((id, IntakeError::Manifest(error)))) => return (id, Err(Failure::Reject(manifest_reason(&error)))),
        Ok(Err((id, error))) => return (id, Err(classify(JobError::from(error)))),
        Err(error) => return (None, Err(Failure::Retry(format!("intake task failed: {error}")))),
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
    } else if message.starts_with("extraction unavailable") {
        "extraction_unavailable"
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
async fn settle(acker: &Acker, how: Settle, bundle_id: &str, shared: &Shared) -> bool {
    let sent = match how {
        Settle::Ack => acker.ack(BasicAckOptions::default()).await,
        Settle::Requeue => acker.nack(BasicNackOptions { requeue: true, ..BasicNackOptions::default() }).await,
    };
    match sent {
        Ok(true) => true,
        Ok(false) => {
            shared.metrics().acks_lost.inc();
            tracing::warn!(message = "Channel gone before the ack; the message will be redelivered.", bundle_id, ?how);
            false
        }
        Err(error) => {
            shared.metrics().acks_lost.inc();
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

/// Publishes outbox events to the events exchange until the channel breaks,
/// and reads the queues' ready counts for metrics now and then.
/// Events are claimed for `RELAY_LEASE` first, so the relays of several
/// workers do not publish the same event in the normal case. An event is
/// marked published only after the broker confirmed it, so it goes out at
/// least once; consumers deduplicate on `event_id`. An event no queue is
/// bound for keeps its claim until the lease runs out, then is tried again.
/// Any `event_type` is published, with the type as routing key.
async fn relay_events(channel: Channel, shared: Arc<Shared>, relay_id: String) -> Result<(), AmqpError> {
    let exchange = shared.topology.events_exchange.clone();
    let mut warned_unroutable = false;
    let mut polled: Option<Instant> = None;
    loop {
        if polled.is_none_or(|at| at.elapsed() >= QUEUE_POLL) {
            poll_queue_depths(&channel, &shared).await?;
            polled = Some(Instant::now());
        }
        let mut unroutable = 0usize;
        loop {
            let events = match shared.store.claim_events(&relay_id, RELAY_BATCH, RELAY_LEASE).await {
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
                    Ok(()) => shared.metrics().event(&event.event_type, true),
                    Err(AmqpError::Returned { .. } | AmqpError::Nacked) => {
                        shared.metrics().event(&event.event_type, false);
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
        if let Ok(backlog) = shared.store.outbox_backlog().await {
            shared.metrics().outbox_backlog.set(backlog);
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

/// Reads the ready-message counts of the bundle and dead-letter queues
/// (passive declares: they exist, this worker declared them).
async fn poll_queue_depths(channel: &Channel, shared: &Shared) -> Result<(), AmqpError> {
    let passive = QueueDeclareOptions { passive: true, ..QueueDeclareOptions::default() };
    for (role, name) in [("bundles", &shared.topology.bundles), ("dead", &shared.topology.dead_queue)] {
        let queue = channel.queue_declare(name.as_str().into(), passive, FieldTable::default()).await?;
        shared.metrics().queue_depth(role, queue.message_count());
    }
    Ok(())
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
        assert_eq!(retry_reason("extraction unavailable: the extractor could not be started: EAGAIN"), "extraction_unavailable");
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
    fn the_heartbeat_is_asked_for_unless_the_url_names_one() {
        let uri = connection_uri("amqp://guest:secret@127.0.0.1:5672/%2f", 7).unwrap();
        assert_eq!(uri.query.heartbeat, Some(7));
        let uri = connection_uri("amqp://guest:secret@127.0.0.1:5672/%2f?heartbeat=3", 7).unwrap();
        assert_eq!(uri.query.heartbeat, Some(3));
        let error = connection_uri("amqp://guest:secret@[::1", 7).unwrap_err().to_string();
        assert!(!error.contains("secret"), "{error}");
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

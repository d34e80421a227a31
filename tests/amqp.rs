//! The RabbitMQ path end to end: the real `nachweis run` binary as worker
//! processes against the real broker and PostgreSQL, with faults injected
//! (duplicates, bad messages, kill -9, broker and database restarts). After
//! each, an independent checker compares the published bundle ids with the
//! database and the dead-letter queue and prints `lost = N, duplicated = M`.
//!
//! Services: `NACHWEIS_TEST_AMQP_URL` (default `amqp://guest:guest@127.0.0.1:5672/%2f`)
//! and `NACHWEIS_TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`);
//! a test fails, saying how to start them, when they are unreachable. Every
//! test uses its own queue prefix and its own database.
//!
//! Tests that restart RabbitMQ or PostgreSQL must run alone: they take an
//! exclusive lock on `$TMPDIR/nachweis-test-services.lock` (every other test
//! here takes it shared), which serialises them within this binary under
//! `cargo test`; `.config/nextest.toml` makes nextest run them with no other
//! test of any binary beside them. `cargo test` runs binaries one at a time.
//!
//! `NACHWEIS_FAULT_KILLS` sets how many workers the kill test kills (default
//! 50, about 20 s); `NACHWEIS_FAULT_SEED` replays a run's random moments;
//! `NACHWEIS_TEST_SHOW_LOGS=1` prints the worker logs also when a test passes.
use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use base64::Engine as _;
use futures_util::FutureExt as _;
use lapin::options::{
    BasicAckOptions, BasicGetOptions, BasicPublishOptions, ConfirmSelectOptions, ExchangeDeleteOptions, QueueBindOptions,
    QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, Confirmation, Connection, ConnectionProperties};
use lopdf::content::{Content, Operation};
use lopdf::{Document, Object, Stream, dictionary};
use nachweis::queue::amqp::{BUNDLE_ID_HEADER, REASON_HEADER, Topology};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;

const DEFAULT_AMQP_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";
const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";
const START_RABBITMQ: &str = "rabbitmq-server -detached";
const START_POSTGRES: &str = "pg_ctlcluster --skip-systemctl-redirect 15 main start";
/// How long a batch of bundles may take to go through before the checker
/// runs anyway (and then reports what is missing).
const SETTLE_TIMEOUT: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------------------
// The tests.
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_published_bundle_gets_exactly_one_case_and_its_events() {
    with_harness(Lock::Shared, 5, |h| async move {
        let mut worker = h.spawn_worker();
        let mut publisher = Publisher::new(&h.amqp_url);
        publisher.publish(&h.topology.bundles, &good_bundle("one-1")).await;
        let good = ids(["one-1"]);

        h.wait_until_recorded(&good, 0).await;
        let tally = h.check(&good, &[]).await;

        tally.assert_clean();
        assert_eq!(h.count("SELECT COUNT(*) FROM cases").await, 1);
        assert_eq!(h.count("SELECT COUNT(*) FROM drafts").await, 1);
        assert_eq!(worker.terminate().await.code(), Some(0), "SIGTERM exits 0");
        assert_eq!(h.ready_messages(&h.topology.bundles).await, 0);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_bundle_published_three_times_makes_one_case_and_one_draft() {
    with_harness(Lock::Shared, 5, |h| async move {
        // Two workers, so the copies can be processed at the same moment.
        let mut workers = [h.spawn_worker(), h.spawn_worker()];
        let mut publisher = Publisher::new(&h.amqp_url);
        for _ in 0..3 {
            publisher.publish(&h.topology.bundles, &good_bundle("dup-1")).await;
        }
        let good = ids(["dup-1"]);

        h.wait_until_recorded(&good, 0).await;
        h.wait_until_queue_drained().await;
        let tally = h.check(&good, &[]).await;

        tally.assert_clean();
        assert_eq!(h.count("SELECT COUNT(*) FROM cases").await, 1);
        assert_eq!(h.count("SELECT COUNT(*) FROM drafts").await, 1);
        assert_eq!(h.count("SELECT COUNT(*) FROM outbox").await, 2, "one bundle.checked, one draft.ready");
        for w in &mut workers {
            assert_eq!(w.terminate().await.code(), Some(0));
        }
        assert_eq!(h.ready_messages(&h.topology.bundles).await, 0, "all three copies were acked");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_messages_are_dead_lettered_with_their_reason_and_the_good_ones_around_them_are_processed() {
    // An unknown case_id is retried (its first bundle may still be on the
    // way) until the delivery limit; a low limit keeps the test short.
    with_harness(Lock::Shared, 2, |h| async move {
        let mut publisher = Publisher::new(&h.amqp_url);
        let unknown_case = bundle_with(&good_bundle_value("bad-case"), "case_id", json!("case-000000000000"));
        // "kita" was the example of an unknown procedure until Kita-Beitragsermäßigung was added.
        let unknown_procedure = bundle_with(&good_bundle_value("bad-proc"), "procedure", json!("kein-verfahren"));
        let mut missing_date = good_bundle_value("bad-manifest");
        missing_date.as_object_mut().unwrap().remove("received_at");
        let bad = vec![
            Bad::new(b"{\"bundle_id\": \"bad-json\", \"procedure\": ".to_vec(), None, "invalid_json"),
            Bad::new(to_bytes(&missing_date), Some("bad-manifest"), "invalid_manifest:missing:received_at"),
            Bad::new(unknown_case, Some("bad-case"), "retries_exhausted:unknown_case"),
            Bad::new(unknown_procedure, Some("bad-proc"), "unknown_procedure"),
        ];
        // Good and bad interleaved, all queued before the worker starts, so
        // each bad one is prefetched together with good neighbours.
        let mut good = BTreeSet::new();
        for (i, b) in bad.iter().enumerate() {
            let id = format!("around-{i}");
            publisher.publish(&h.topology.bundles, &good_bundle(&id)).await;
            good.insert(id);
            publisher.publish(&h.topology.bundles, &b.body).await;
        }
        publisher.publish(&h.topology.bundles, &good_bundle("around-last")).await;
        good.insert("around-last".into());
        let mut worker = h.spawn_worker();

        h.wait_until_recorded(&good, bad.len() as u32).await;
        h.wait_for_dead_letters(bad.len()).await;
        let tally = h.check(&good, &bad).await;

        tally.assert_clean();
        assert_eq!(worker.terminate().await.code(), Some(0));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killing_workers_at_random_moments_loses_and_duplicates_nothing() {
    let kills: usize = env_number("NACHWEIS_FAULT_KILLS", 50);
    // Every kill returns up to `prefetch` messages, and RabbitMQ 3.10 counts
    // that against the delivery limit (measured: with a limit of 1, kills
    // dead-letter good bundles); the limit must exceed the kills one message
    // can see, as it must in production exceed a crash loop's length.
    let delivery_limit = u32::try_from(kills + 5).unwrap_or(u32::MAX);
    with_harness(Lock::Shared, delivery_limit, |h| async move {
        let mut rng = Rng::from_env();
        let started = Instant::now();
        let mut workers = vec![h.spawn_worker(), h.spawn_worker()];
        let mut good = BTreeSet::new();
        let (per_round, bundles_per_round) = (5usize, 30usize);
        let (mut done, mut during_flow, mut round) = (0, 0, 0);
        while done < kills {
            round += 1;
            // Bundles arrive over about a second while the kills happen.
            let feeder = h.feed(&format!("kill-{round}"), bundles_per_round, Duration::from_millis(40));
            for _ in 0..per_round.min(kills - done) {
                tokio::time::sleep(Duration::from_millis(rng.between(50, 400))).await;
                if (h.count("SELECT COUNT(*) FROM bundles").await as usize) < round * bundles_per_round {
                    during_flow += 1;
                }
                let victim = rng.between(0, workers.len() as u64) as usize;
                workers[victim].kill9();
                done += 1;
                // A supervisor (systemd, Kubernetes) restarts it.
                workers[victim] = h.spawn_worker();
            }
            good.extend(feeder.await.expect("feeder"));
            h.wait_until_recorded(&good, 0).await;
        }
        let tally = h.check(&good, &[]).await;
        println!(
            "kill -9: {kills} kills ({during_flow} while bundles of the round were unrecorded) in {round} rounds of \
             {bundles_per_round} bundles, 2 workers, seed {}, {:.1} s",
            rng.seed,
            started.elapsed().as_secs_f64()
        );
        tally.assert_clean();
        for w in &mut workers {
            assert_eq!(w.terminate().await.code(), Some(0));
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rabbitmq_restarted_three_times_while_bundles_flow_loses_and_duplicates_nothing() {
    with_harness(Lock::Exclusive, 5, |h| async move {
        let started = Instant::now();
        let mut workers = [h.spawn_worker(), h.spawn_worker()];
        // Bundles keep arriving until the last restart is over.
        let stop_feeding = std::sync::Arc::new(AtomicBool::new(false));
        let feeder = h.feed_until("rmq", 1000, Duration::from_millis(150), stop_feeding.clone());
        tokio::time::sleep(Duration::from_millis(700)).await;
        for restart in 1..=3 {
            let recorded = h.count("SELECT COUNT(*) FROM bundles").await;
            run_service_command("rabbitmqctl", &["stop_app"]).await;
            tokio::time::sleep(Duration::from_millis(500)).await;
            run_service_command("rabbitmqctl", &["start_app"]).await;
            println!("RabbitMQ restart {restart} ({recorded} bundles recorded before it) done at {:.1} s", started.elapsed().as_secs_f64());
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
        stop_feeding.store(true, Ordering::Relaxed);
        let good = feeder.await.expect("feeder");

        h.wait_until_recorded(&good, 0).await;
        let tally = h.check(&good, &[]).await;
        println!("RabbitMQ: 3 restarts, {} bundles, 2 workers, {:.1} s", good.len(), started.elapsed().as_secs_f64());

        tally.assert_clean();
        for w in &mut workers {
            assert!(w.is_running(), "a worker survives broker restarts");
            assert_eq!(w.terminate().await.code(), Some(0));
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_postgres_restart_while_bundles_flow_loses_and_duplicates_nothing() {
    with_harness(Lock::Exclusive, 5, |h| async move {
        let started = Instant::now();
        let mut workers = [h.spawn_worker(), h.spawn_worker()];
        let stop_feeding = std::sync::Arc::new(AtomicBool::new(false));
        let feeder = h.feed_until("pg", 1000, Duration::from_millis(100), stop_feeding.clone());
        tokio::time::sleep(Duration::from_millis(1000)).await;
        let recorded = h.count("SELECT COUNT(*) FROM bundles").await;
        pg_ctlcluster("restart").await;
        println!("PostgreSQL restarted ({recorded} bundles recorded before it) at {:.1} s", started.elapsed().as_secs_f64());
        tokio::time::sleep(Duration::from_secs(2)).await;
        // A restart is over before the pool's 10 s acquire timeout, so the
        // workers merely wait. An outage longer than that makes the store
        // report `Unavailable`, and the bundles go through Retry → requeue.
        pg_ctlcluster("stop").await;
        println!("PostgreSQL stopped at {:.1} s", started.elapsed().as_secs_f64());
        tokio::time::sleep(Duration::from_secs(14)).await;
        pg_ctlcluster("start").await;
        println!("PostgreSQL started again at {:.1} s", started.elapsed().as_secs_f64());
        tokio::time::sleep(Duration::from_secs(2)).await;
        stop_feeding.store(true, Ordering::Relaxed);
        let good = feeder.await.expect("feeder");

        h.wait_until_recorded(&good, 0).await;
        let tally = h.check(&good, &[]).await;
        let requeued = h.worker_logs().iter().map(|(_, log)| log.matches("requeueing").count()).sum::<usize>();
        println!(
            "PostgreSQL: 1 restart and one 14 s outage, {} bundles, 2 workers, {requeued} requeues, {:.1} s",
            good.len(),
            started.elapsed().as_secs_f64()
        );

        tally.assert_clean();
        assert!(requeued > 0, "the outage should have sent bundles through Retry → requeue");
        for w in &mut workers {
            assert!(w.is_running(), "a worker survives a database restart");
            assert_eq!(w.terminate().await.code(), Some(0));
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_lets_bundles_in_progress_finish_and_leaves_the_rest_queued() {
    with_harness(Lock::Shared, 5, |h| async move {
        let mut publisher = Publisher::new(&h.amqp_url);
        let mut all = BTreeSet::new();
        for i in 0..20 {
            let id = format!("term-{i}");
            publisher.publish(&h.topology.bundles, &good_bundle(&id)).await;
            all.insert(id);
        }
        let mut worker = h.spawn_worker();
        // Stop as soon as the first bundle is in: others are in progress.
        let deadline = Instant::now() + SETTLE_TIMEOUT;
        while h.count("SELECT COUNT(*) FROM bundles").await == 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }

        let status = worker.terminate().await;

        assert_eq!(status.code(), Some(0));
        let recorded = h.recorded_ids().await;
        let queued = h.drain_bundle_ids(&h.topology.bundles).await;
        println!("SIGTERM: {} recorded, {} back in the queue", recorded.len(), queued.len());
        let both: Vec<_> = recorded.intersection(&queued).collect();
        assert!(both.is_empty(), "recorded and still queued (not acked): {both:?}");
        let union: BTreeSet<String> = recorded.union(&queued).cloned().collect();
        assert_eq!(union, all, "every bundle is either recorded or back in the queue");
    })
    .await;
}

// ---------------------------------------------------------------------------
// The checker.
// ---------------------------------------------------------------------------

/// A message that must end in the dead-letter queue.
struct Bad {
    body: Vec<u8>,
    bundle_id: Option<&'static str>,
    reason: &'static str,
}

impl Bad {
    fn new(body: Vec<u8>, bundle_id: Option<&'static str>, reason: &'static str) -> Self {
        Bad { body, bundle_id, reason }
    }
}

/// What the checker found.
#[derive(Debug, Default)]
struct Tally {
    /// Good bundles not recorded, plus bad messages not dead-lettered as expected.
    lost: usize,
    /// Second cases, bundle rows or drafts for one bundle; bad ones recorded.
    duplicated: usize,
    /// Outgoing events that never arrived.
    events_missing: usize,
    problems: Vec<String>,
}

impl Tally {
    #[track_caller]
    fn assert_clean(&self) {
        assert!(
            self.lost == 0 && self.duplicated == 0 && self.events_missing == 0,
            "lost = {}, duplicated = {}, events missing = {}:\n  {}",
            self.lost,
            self.duplicated,
            self.events_missing,
            self.problems.join("\n  ")
        );
    }
}

/// A message read back from the dead-letter queue.
#[derive(Debug)]
struct DeadLetter {
    body: Vec<u8>,
    bundle_id: Option<String>,
    reason: Option<String>,
}

// ---------------------------------------------------------------------------
// Harness: a database, a queue prefix and worker processes per test.
// ---------------------------------------------------------------------------

struct Harness {
    amqp_url: String,
    admin_url: String,
    db_name: String,
    db_url: String,
    topology: Topology,
    observer: String,
    intake: tempfile::TempDir,
    logs: tempfile::TempDir,
    spawned: AtomicU64,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Lock {
    Shared,
    Exclusive,
}

/// Sets up a harness, runs the test body, and cleans up (database, queues,
/// processes) also when the body panics. Worker logs are printed on failure
/// and always checked for personal data.
async fn with_harness<F, Fut>(lock: Lock, delivery_limit: u32, body: F)
where
    F: FnOnce(std::sync::Arc<Harness>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let _lock = service_lock(lock).await;
    let h = std::sync::Arc::new(Harness::new(delivery_limit).await);
    let outcome = std::panic::AssertUnwindSafe(tokio::spawn(body(h.clone()))).catch_unwind().await;
    let result = match outcome {
        Ok(Ok(())) => Ok(()),
        Ok(Err(join)) if join.is_panic() => Err(join.into_panic()),
        Ok(Err(join)) => Err(Box::new(join.to_string()) as Box<dyn std::any::Any + Send>),
        Err(panic) => Err(panic),
    };
    let personal = h.personal_data_in_logs();
    if result.is_err() || !personal.is_empty() || std::env::var_os("NACHWEIS_TEST_SHOW_LOGS").is_some() {
        h.print_logs();
    }
    h.cleanup().await;
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
    assert!(personal.is_empty(), "personal data in worker logs: {personal:?}");
}

impl Harness {
    async fn new(delivery_limit: u32) -> Harness {
        let amqp_url = std::env::var("NACHWEIS_TEST_AMQP_URL").unwrap_or_else(|_| DEFAULT_AMQP_URL.into());
        let admin_url = std::env::var("NACHWEIS_TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_POSTGRES_URL.into());
        let unique = unique_suffix();
        let db_name = format!("nachweis_amqp_{unique}");
        let admin = admin_pool(&admin_url).await;
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {db_name}"))).execute(&admin).await.expect("create test database");
        admin.close().await;
        let db_url = with_database(&admin_url, &db_name);
        // Migrated here, so the checker can query before any worker ran.
        nachweis::store::connect(&db_url).await.expect("migrate the test database");

        let topology = Topology::with_prefix(&format!("nachweis-test-{unique}"), delivery_limit);
        let observer = format!("{}.observer", topology.events_exchange);
        let channel = broker_channel(&amqp_url).await;
        topology.declare(&channel).await.expect("declare the test topology");
        // A durable queue survives the broker restarts, like a real consumer's.
        channel.queue_declare(observer.as_str().into(), QueueDeclareOptions::durable(), FieldTable::default()).await.expect("observer queue");
        channel
            .queue_bind(observer.as_str().into(), topology.events_exchange.as_str().into(), "#".into(), QueueBindOptions::default(), FieldTable::default())
            .await
            .expect("bind observer");
        Harness {
            amqp_url,
            admin_url,
            db_name,
            db_url,
            topology,
            observer,
            intake: tempfile::tempdir().expect("intake dir"),
            logs: tempfile::tempdir().expect("log dir"),
            spawned: AtomicU64::new(0),
        }
    }

    fn spawn_worker(&self) -> Worker {
        let n = self.spawned.fetch_add(1, Ordering::Relaxed);
        let log_path = self.logs.path().join(format!("worker-{n:03}.log"));
        let log = std::fs::File::create(&log_path).expect("worker log");
        let schemas = Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas");
        let child = Command::new(env!("CARGO_BIN_EXE_nachweis"))
            .arg("run")
            .env_remove("NACHWEIS_CONFIG")
            .env("NACHWEIS_AMQP_URL", &self.amqp_url)
            .env("NACHWEIS_DATABASE_URL", &self.db_url)
            .env("NACHWEIS_SCHEMAS_DIR", schemas)
            .env("NACHWEIS_INTAKE_DIR", self.intake.path())
            .env("NACHWEIS_CONCURRENCY", "2")
            .env("NACHWEIS_AMQP_PREFIX", self.topology.bundles.trim_end_matches(".bundles"))
            .env("NACHWEIS_AMQP_DELIVERY_LIMIT", self.topology.delivery_limit.to_string())
            .env("NACHWEIS_SHUTDOWN_GRACE_SECS", "30")
            .env("NACHWEIS_LOG_FORMAT", "text")
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log)
            .spawn()
            .expect("start nachweis run");
        Worker { child, log: log_path }
    }

    /// Publishes `count` good bundles from a background task, one every
    /// `pace`, retrying through broker outages; returns the ids.
    fn feed(&self, tag: &str, count: usize, pace: Duration) -> tokio::task::JoinHandle<BTreeSet<String>> {
        self.feed_until(tag, count, pace, std::sync::Arc::new(AtomicBool::new(false)))
    }

    /// Like `feed`, but stops early once `stop` is set.
    fn feed_until(&self, tag: &str, count: usize, pace: Duration, stop: std::sync::Arc<AtomicBool>) -> tokio::task::JoinHandle<BTreeSet<String>> {
        let url = self.amqp_url.clone();
        let queue = self.topology.bundles.clone();
        let tag = tag.to_owned();
        tokio::spawn(async move {
            let mut publisher = Publisher::new(&url);
            let mut ids = BTreeSet::new();
            for i in 0..count {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let id = format!("{tag}-{i}");
                publisher.publish(&queue, &good_bundle(&id)).await;
                ids.insert(id);
                tokio::time::sleep(pace).await;
            }
            ids
        })
    }

    /// A fresh pool per call: the database may have restarted since the last.
    async fn pg(&self) -> PgPool {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            match PgPoolOptions::new().max_connections(1).acquire_timeout(Duration::from_secs(5)).connect(&self.db_url).await {
                Ok(pool) => return pool,
                Err(error) if Instant::now() < deadline => {
                    eprintln!("checker: database not ready ({error}); retrying");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                Err(error) => panic!("test database unreachable: {error}"),
            }
        }
    }

    async fn count(&self, sql: &'static str) -> i64 {
        let pool = self.pg().await;
        let n = sqlx::query_scalar(sql).fetch_one(&pool).await.expect("count");
        pool.close().await;
        n
    }

    async fn recorded_ids(&self) -> BTreeSet<String> {
        let pool = self.pg().await;
        let ids: Vec<String> = sqlx::query_scalar("SELECT bundle_id FROM bundles").fetch_all(&pool).await.expect("bundle ids");
        pool.close().await;
        ids.into_iter().collect()
    }

    /// Waits until every id is recorded, or a good bundle was dead-lettered
    /// (more than `expected_dead` dead letters), or the timeout; the checker
    /// then reports what is missing.
    async fn wait_until_recorded(&self, ids: &BTreeSet<String>, expected_dead: u32) {
        let deadline = Instant::now() + SETTLE_TIMEOUT;
        loop {
            let recorded = self.recorded_ids().await;
            if ids.is_subset(&recorded) || Instant::now() > deadline {
                return;
            }
            if self.ready_messages(&self.topology.dead_queue).await > expected_dead {
                eprintln!("a good bundle was dead-lettered; checking now");
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Waits until the bundle queue has no ready messages.
    async fn wait_until_queue_drained(&self) {
        let deadline = Instant::now() + SETTLE_TIMEOUT;
        while self.ready_messages(&self.topology.bundles).await > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        // Let the last delivery's ack reach the broker.
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    async fn wait_for_dead_letters(&self, n: usize) {
        let deadline = Instant::now() + SETTLE_TIMEOUT;
        while (self.ready_messages(&self.topology.dead_queue).await as usize) < n && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Ready (not unacked) messages in a queue.
    async fn ready_messages(&self, queue: &str) -> u32 {
        let channel = broker_channel(&self.amqp_url).await;
        let passive = QueueDeclareOptions { passive: true, ..QueueDeclareOptions::default() };
        let q = channel.queue_declare(queue.into(), passive, FieldTable::default()).await.expect("passive declare");
        q.message_count()
    }

    /// Takes every message off a queue of bundles and returns their bundle ids.
    async fn drain_bundle_ids(&self, queue: &str) -> BTreeSet<String> {
        let channel = broker_channel(&self.amqp_url).await;
        let mut ids = BTreeSet::new();
        while let Some(message) = channel.basic_get(queue.into(), BasicGetOptions::default()).await.expect("basic.get") {
            let value: Value = serde_json::from_slice(&message.delivery.data).expect("a bundle");
            ids.insert(value["bundle_id"].as_str().expect("bundle_id").to_owned());
            message.delivery.ack(BasicAckOptions::default()).await.expect("ack");
        }
        ids
    }

    async fn drain_dead_letters(&self) -> Vec<DeadLetter> {
        let channel = broker_channel(&self.amqp_url).await;
        let mut out = Vec::new();
        while let Some(message) = channel.basic_get(self.topology.dead_queue.as_str().into(), BasicGetOptions::default()).await.expect("basic.get") {
            let headers = message.delivery.properties.headers().clone().unwrap_or_default();
            let text = |key: &str| match headers.inner().get(key) {
                Some(AMQPValue::LongString(s)) => Some(s.to_string()),
                Some(AMQPValue::ShortString(s)) => Some(s.to_string()),
                _ => None,
            };
            // RabbitMQ's own dead letters (delivery limit) carry x-death instead.
            let reason = text(REASON_HEADER).or_else(|| text("x-first-death-reason").map(|r| format!("rabbitmq:{r}")));
            out.push(DeadLetter { body: message.delivery.data.clone(), bundle_id: text(BUNDLE_ID_HEADER), reason });
            message.delivery.ack(BasicAckOptions::default()).await.expect("ack");
        }
        out
    }

    /// Event ids received by the observer queue, with how often each came.
    async fn drain_events(&self, seen: &mut BTreeMap<String, usize>) {
        let channel = broker_channel(&self.amqp_url).await;
        while let Some(message) = channel.basic_get(self.observer.as_str().into(), BasicGetOptions::default()).await.expect("basic.get") {
            let event: Value = serde_json::from_slice(&message.delivery.data).expect("event JSON");
            let id = event["event_id"].as_str().expect("event_id").to_owned();
            *seen.entry(id).or_default() += 1;
            message.delivery.ack(BasicAckOptions::default()).await.expect("ack");
        }
    }

    /// Compares what was published with the database, the dead-letter queue
    /// and the events, and prints `lost = N, duplicated = M`.
    async fn check(&self, good: &BTreeSet<String>, bad: &[Bad]) -> Tally {
        let mut tally = Tally::default();
        let pool = self.pg().await;
        let bundles: Vec<(String, String)> = sqlx::query_as("SELECT bundle_id, case_id FROM bundles").fetch_all(&pool).await.expect("bundles");
        let drafts: Vec<(String, i64)> =
            sqlx::query_as("SELECT bundle_id, COUNT(*) FROM drafts GROUP BY bundle_id").fetch_all(&pool).await.expect("drafts");
        let cases: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM cases").fetch_one(&pool).await.expect("cases");
        pool.close().await;

        let mut rows_per_bundle: BTreeMap<&str, usize> = BTreeMap::new();
        for (bundle_id, _) in &bundles {
            *rows_per_bundle.entry(bundle_id).or_default() += 1;
        }
        let drafts: BTreeMap<&str, i64> = drafts.iter().map(|(b, n)| (b.as_str(), *n)).collect();
        for id in good {
            match rows_per_bundle.get(id.as_str()) {
                None => {
                    tally.lost += 1;
                    tally.problems.push(format!("{id}: not recorded"));
                }
                Some(&n) if n > 1 => {
                    tally.duplicated += n - 1;
                    tally.problems.push(format!("{id}: recorded {n} times"));
                }
                Some(_) => {}
            }
            let n = drafts.get(id.as_str()).copied().unwrap_or(0);
            if n > 1 {
                tally.duplicated += (n - 1) as usize;
                tally.problems.push(format!("{id}: {n} drafts"));
            }
        }
        let expected_cases = good.iter().filter(|id| rows_per_bundle.contains_key(id.as_str())).count() as i64;
        if cases != expected_cases {
            tally.duplicated += (cases - expected_cases).unsigned_abs() as usize;
            tally.problems.push(format!("{cases} cases for {expected_cases} recorded bundles"));
        }

        let dead = self.drain_dead_letters().await;
        for b in bad {
            if let Some(id) = b.bundle_id
                && rows_per_bundle.contains_key(id)
            {
                tally.duplicated += 1;
                tally.problems.push(format!("{id}: should have been rejected, but was recorded"));
            }
            match dead.iter().find(|d| d.body == b.body) {
                None => {
                    tally.lost += 1;
                    tally.problems.push(format!("{:?}: not in the dead-letter queue", b.bundle_id));
                }
                Some(d) => {
                    if d.reason.as_deref() != Some(b.reason) || d.bundle_id.as_deref() != b.bundle_id {
                        tally.lost += 1;
                        tally.problems.push(format!("dead letter {:?}: reason {:?}, expected {:?} ({:?})", d.bundle_id, d.reason, b.reason, b.bundle_id));
                    }
                }
            }
        }
        for d in &dead {
            if !bad.iter().any(|b| b.body == d.body) {
                tally.problems.push(format!("unexpected dead letter {:?}: {:?}", d.bundle_id.clone().or_else(|| bundle_id_of(&d.body)), d.reason));
                // A good bundle there was not processed: lost unless recorded anyway.
                if bundle_id_of(&d.body).is_some_and(|id| !rows_per_bundle.contains_key(id.as_str())) {
                    tally.problems.push("  (and it was not recorded)".into());
                }
            }
        }

        // Events: at least once each; duplicates are allowed (consumers dedupe).
        let expected: BTreeSet<String> = good
            .iter()
            .filter(|id| rows_per_bundle.contains_key(id.as_str()))
            .flat_map(|id| [format!("{id}/bundle.checked"), format!("{id}/draft.ready")])
            .collect();
        let mut seen = BTreeMap::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            self.drain_events(&mut seen).await;
            if expected.iter().all(|e| seen.contains_key(e)) || Instant::now() > deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        let missing: Vec<&String> = expected.iter().filter(|e| !seen.contains_key(*e)).collect();
        tally.events_missing = missing.len();
        if !missing.is_empty() {
            tally.problems.push(format!("events missing: {missing:?}"));
        }
        let redelivered: usize = seen.values().map(|n| n - 1).sum();

        println!(
            "lost = {}, duplicated = {} ({} bundles published, {} recorded, {} dead-lettered, {} events, {} event re-sends)",
            tally.lost,
            tally.duplicated,
            good.len() + bad.len(),
            bundles.len(),
            dead.len(),
            seen.len(),
            redelivered
        );
        tally
    }

    fn worker_logs(&self) -> Vec<(PathBuf, String)> {
        let mut logs: Vec<_> = std::fs::read_dir(self.logs.path())
            .map(|d| d.filter_map(Result::ok).map(|e| e.path()).collect())
            .unwrap_or_default();
        logs.sort();
        logs.into_iter().map(|p| (p.clone(), std::fs::read_to_string(&p).unwrap_or_default())).collect()
    }

    /// Names and addresses from the test bundles that appear in a worker log.
    fn personal_data_in_logs(&self) -> Vec<String> {
        let mut found = Vec::new();
        for (path, text) in self.worker_logs() {
            for word in ["Anna", "Beispiel", "Lindenweg", "Lena", "2012-05-02"] {
                if text.contains(word) {
                    found.push(format!("{word} in {}", path.display()));
                }
            }
        }
        found
    }

    fn print_logs(&self) {
        for (path, text) in self.worker_logs() {
            let lines: Vec<&str> = text.lines().collect();
            let tail = &lines[lines.len().saturating_sub(40)..];
            eprintln!("---- {} (last {} lines) ----\n{}", path.display(), tail.len(), tail.join("\n"));
        }
    }

    async fn cleanup(&self) {
        if let Ok(connection) = Connection::connect(&self.amqp_url, ConnectionProperties::default()).await
            && let Ok(channel) = connection.create_channel().await
        {
            for queue in [&self.topology.bundles, &self.topology.dead_queue, &self.observer] {
                let _ = channel.queue_delete(queue.as_str().into(), QueueDeleteOptions::default()).await;
            }
            for exchange in [&self.topology.dead_exchange, &self.topology.events_exchange] {
                let _ = channel.exchange_delete(exchange.as_str().into(), ExchangeDeleteOptions::default()).await;
            }
            let _ = connection.close(200, "test done".into()).await;
        }
        let admin = admin_pool(&self.admin_url).await;
        // FORCE ends the connections of workers that are still running.
        let drop = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.db_name);
        if let Err(error) = sqlx::raw_sql(sqlx::AssertSqlSafe(drop)).execute(&admin).await {
            eprintln!("could not drop {}: {error}", self.db_name);
        }
        admin.close().await;
    }
}

/// A `nachweis run` process; killed when dropped.
struct Worker {
    child: Child,
    log: PathBuf,
}

impl Worker {
    fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGTERM, then waits for the exit (at most a minute).
    async fn terminate(&mut self) -> ExitStatus {
        let pid = libc::pid_t::try_from(self.child.id()).expect("pid");
        // SAFETY: sending a signal to our own child process.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            if Instant::now() > deadline {
                self.kill9();
                panic!("worker did not stop within a minute of SIGTERM (log: {})", self.log.display());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        if self.is_running() {
            self.kill9();
        }
    }
}

/// Publishes with confirms and `mandatory`, reconnecting and re-sending until
/// the broker confirms: at-least-once, like a real intake service.
struct Publisher {
    url: String,
    channel: Option<(Connection, Channel)>,
}

impl Publisher {
    fn new(url: &str) -> Self {
        Publisher { url: url.to_owned(), channel: None }
    }

    async fn publish(&mut self, queue: &str, body: &[u8]) {
        let deadline = Instant::now() + SETTLE_TIMEOUT;
        loop {
            match self.try_publish(queue, body).await {
                Ok(()) => return,
                Err(error) if Instant::now() < deadline => {
                    eprintln!("publisher: {error}; retrying");
                    self.channel = None;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(error) => panic!("could not publish for {SETTLE_TIMEOUT:?}: {error}"),
            }
        }
    }

    async fn try_publish(&mut self, queue: &str, body: &[u8]) -> Result<(), String> {
        if self.channel.is_none() {
            let connection = Connection::connect(&self.url, ConnectionProperties::default()).await.map_err(|e| e.to_string())?;
            let channel = connection.create_channel().await.map_err(|e| e.to_string())?;
            channel.confirm_select(ConfirmSelectOptions::default()).await.map_err(|e| e.to_string())?;
            self.channel = Some((connection, channel));
        }
        let Some((_, channel)) = &self.channel else { unreachable!() };
        let options = BasicPublishOptions { mandatory: true, ..BasicPublishOptions::default() };
        let properties = BasicProperties::default().with_delivery_mode(2).with_content_type("application/json".into());
        let confirm = tokio::time::timeout(Duration::from_secs(10), async {
            channel.basic_publish("".into(), queue.into(), options, body, properties).await?.await
        })
        .await
        .map_err(|_| "no confirm within 10 s".to_owned())?
        .map_err(|e| e.to_string())?;
        match confirm {
            Confirmation::Ack(None) => Ok(()),
            other => Err(format!("not confirmed: {other:?}")),
        }
    }
}

// ---------------------------------------------------------------------------
// Bundles.
// ---------------------------------------------------------------------------

/// A bundle with one inline text PDF (a birth certificate), as the intake
/// service would publish it.
fn good_bundle(id: &str) -> Vec<u8> {
    to_bytes(&good_bundle_value(id))
}

fn good_bundle_value(id: &str) -> Value {
    let pdf = birth_certificate_pdf();
    json!({
        "bundle_id": id,
        "procedure": "uvg",
        "received_at": "2026-11-20T09:14:00Z",
        "applicant": {"given_name": "Anna", "family_name": "Beispiel",
                      "address": {"street": "Lindenweg 4", "postal_code": "12345", "city": "Musterstadt"}},
        "facts": {"married_to_other_parent": false, "maintenance_title_exists": false},
        "children": [{"given_name": "Lena", "family_name": "Beispiel", "birth_date": "2012-05-02"}],
        "documents": [{
            "document_id": "d1", "filename": "geburtsurkunde.pdf", "media_type": "application/pdf",
            "sha256": hex::encode(Sha256::digest(pdf)), "declared_type": "geburtsurkunde",
            "content_base64": base64::engine::general_purpose::STANDARD.encode(pdf),
        }],
    })
}

fn bundle_with(bundle: &Value, key: &str, value: Value) -> Vec<u8> {
    let mut bundle = bundle.clone();
    bundle.as_object_mut().expect("object").insert(key.into(), value);
    to_bytes(&bundle)
}

fn to_bytes(value: &Value) -> Vec<u8> {
    serde_json::to_vec(value).expect("JSON")
}

fn bundle_id_of(body: &[u8]) -> Option<String> {
    serde_json::from_slice::<Value>(body).ok()?.get("bundle_id")?.as_str().map(str::to_owned)
}

fn ids<const N: usize>(list: [&str; N]) -> BTreeSet<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

/// A one-page PDF with a text layer, so extraction needs no OCR.
fn birth_certificate_pdf() -> &'static [u8] {
    static PDF: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    PDF.get_or_init(|| {
        let lines = [
            "Geburtsurkunde",
            "Standesamt Musterstadt, Geburtenregister Nr. 512/2012",
            "Familienname des Kindes: Beispiel",
            "Vornamen des Kindes: Lena",
            "Geburtstag: 02.05.2012, Geburtsort: Musterstadt",
            "Mutter: Anna Beispiel",
            "Musterstadt, den 10.05.2012, Der Standesbeamte",
        ];
        let mut doc = Document::with_version("1.5");
        let pages_id = doc.new_object_id();
        let font_id = doc.add_object(dictionary! {
            "Type" => "Font", "Subtype" => "Type1", "BaseFont" => "Helvetica", "Encoding" => "WinAnsiEncoding",
        });
        let mut ops = vec![Operation::new("BT", vec![]), Operation::new("Tf", vec!["F1".into(), 12.into()])];
        ops.push(Operation::new("Td", vec![72.into(), 760.into()]));
        for line in lines {
            ops.push(Operation::new("Tj", vec![Object::string_literal(line.as_bytes().to_vec())]));
            ops.push(Operation::new("Td", vec![0.into(), (-20).into()]));
        }
        ops.push(Operation::new("ET", vec![]));
        let content = Content { operations: ops }.encode().expect("content stream");
        let content_id = doc.add_object(Stream::new(dictionary! {}, content));
        let page_id = doc.add_object(dictionary! {
            "Type" => "Page", "Parent" => pages_id, "Contents" => content_id,
            "Resources" => dictionary! { "Font" => dictionary! { "F1" => font_id } },
            "MediaBox" => vec![0.into(), 0.into(), 595.into(), 842.into()],
        });
        doc.objects.insert(
            pages_id,
            Object::Dictionary(dictionary! { "Type" => "Pages", "Kids" => vec![Object::Reference(page_id)], "Count" => 1 }),
        );
        let catalog_id = doc.add_object(dictionary! { "Type" => "Catalog", "Pages" => pages_id });
        doc.trailer.set("Root", catalog_id);
        let mut out = Vec::new();
        doc.save_to(&mut out).expect("write PDF");
        out
    })
}

// ---------------------------------------------------------------------------
// Services and small helpers.
// ---------------------------------------------------------------------------

async fn broker_channel(url: &str) -> Channel {
    let connection = Connection::connect(url, ConnectionProperties::default()).await.unwrap_or_else(|error| {
        panic!("RabbitMQ at {url} is unreachable ({error}). Start it with `{START_RABBITMQ}` or point NACHWEIS_TEST_AMQP_URL at a broker.")
    });
    // The channel keeps the connection open; it closes when the channel is dropped.
    connection.create_channel().await.expect("channel")
}

async fn admin_pool(url: &str) -> PgPool {
    PgPoolOptions::new().max_connections(1).acquire_timeout(Duration::from_secs(10)).connect(url).await.unwrap_or_else(|error| {
        panic!(
            "PostgreSQL at {url} is unreachable ({error}). Start it with `{START_POSTGRES}` \
             or point NACHWEIS_TEST_POSTGRES_URL at a server you may create databases on."
        )
    })
}

/// Runs a service-control command (`rabbitmqctl`, `pg_ctlcluster`) and fails the test if it fails.
async fn run_service_command(program: &'static str, args: &'static [&'static str]) {
    let output = tokio::task::spawn_blocking(move || Command::new(program).args(args).output())
        .await
        .expect("join")
        .unwrap_or_else(|error| panic!("cannot run {program}: {error}"));
    assert!(output.status.success(), "{program} {args:?} failed: {}", String::from_utf8_lossy(&output.stderr));
}

/// `pg_ctlcluster <version> main <action>` for the newest installed cluster
/// (Debian's layout), as `scripts/lib.sh` starts it.
async fn pg_ctlcluster(action: &'static str) {
    let version = std::fs::read_dir("/etc/postgresql")
        .ok()
        .and_then(|dirs| dirs.filter_map(Result::ok).filter_map(|d| d.file_name().to_str()?.parse::<u32>().ok()).max())
        .unwrap_or(15)
        .to_string();
    let output = tokio::task::spawn_blocking(move || {
        Command::new("pg_ctlcluster").args(["--skip-systemctl-redirect", &version, "main", action]).output()
    })
    .await
    .expect("join")
    .unwrap_or_else(|error| panic!("cannot run pg_ctlcluster: {error}"));
    assert!(output.status.success(), "pg_ctlcluster {action} failed: {}", String::from_utf8_lossy(&output.stderr));
}

/// Holds the service lock: shared for ordinary tests, exclusive for tests
/// that restart RabbitMQ or PostgreSQL.
struct ServiceLock(#[allow(dead_code)] std::fs::File);

async fn service_lock(lock: Lock) -> ServiceLock {
    tokio::task::spawn_blocking(move || {
        let path = std::env::temp_dir().join("nachweis-test-services.lock");
        let mut file = std::fs::OpenOptions::new().create(true).append(true).open(&path).expect("lock file");
        let op = if lock == Lock::Exclusive { libc::LOCK_EX } else { libc::LOCK_SH };
        use std::os::fd::AsRawFd as _;
        // SAFETY: flock on a file descriptor we own; released when it closes.
        let rc = unsafe { libc::flock(file.as_raw_fd(), op) };
        assert_eq!(rc, 0, "flock {}", path.display());
        let _ = writeln!(file);
        ServiceLock(file)
    })
    .await
    .expect("lock task")
}

fn unique_suffix() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    let seed = format!("{}-{nanos}-{}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed));
    hex::encode(Sha256::digest(seed.as_bytes()))[..12].to_owned()
}

/// The admin URL with its database replaced by `name` (query kept).
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let host_start = base.find("://").map_or(0, |i| i + 3);
    let base = match base[host_start..].find('/') {
        Some(slash) => &base[..host_start + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{base}/{name}?{query}"),
        None => format!("{base}/{name}"),
    }
}

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// xorshift64*: enough randomness for fault timing, and replayable.
struct Rng {
    seed: u64,
    state: u64,
}

impl Rng {
    fn from_env() -> Rng {
        let seed = std::env::var("NACHWEIS_FAULT_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or_else(|| {
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(1)
        });
        Rng { seed, state: seed.max(1) }
    }

    /// A number in `low..high`.
    fn between(&mut self, low: u64, high: u64) -> u64 {
        self.state ^= self.state >> 12;
        self.state ^= self.state << 25;
        self.state ^= self.state >> 27;
        low + self.state.wrapping_mul(0x2545_F491_4F6C_DD1D) % (high - low).max(1)
    }
}

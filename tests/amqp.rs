//! The RabbitMQ path end to end: the real `nachweis run` binary as worker
//! processes against the real broker and PostgreSQL, with faults injected
//! (duplicates, bad messages, kill -9, a bundle that kills its workers,
//! broker restarts and a broker outage, a half-open connection, database
//! restarts). After each, an independent checker compares the published
//! bundle ids with the database and the dead-letter queue and prints
//! `lost = N, duplicated cases = M, duplicated drafts = K, dead-lettered = D`.
//!
//! Services: `NACHWEIS_TEST_AMQP_URL` (default `amqp://guest:guest@127.0.0.1:5672/%2f`)
//! and `NACHWEIS_TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`);
//! a test fails, saying how to start them, when they are unreachable. Every
//! test uses its own queue prefix and its own database. The workers log in
//! as the RabbitMQ user `nachweis-test` (created with `rabbitmqctl` when it
//! cannot log in), so that its password can be searched for in their logs
//! and metrics, like the applicants' names.
//!
//! Tests that restart or stop RabbitMQ or PostgreSQL must run alone: they
//! take an exclusive lock on `$TMPDIR/nachweis-test-services.lock` (every
//! other test here takes it shared), which serialises them within this
//! binary under `cargo test`; `.config/nextest.toml` makes nextest run them
//! (names with `restart` or `outage`) with no other test of any binary
//! beside them. `cargo test` runs binaries one at a time.
//!
//! `NACHWEIS_FAULT_KILLS` sets how many workers the kill test kills (default
//! 50, about 25 s); `NACHWEIS_FAULT_OUTAGE_SECS` how long RabbitMQ stays down
//! (default 60); `NACHWEIS_FAULT_SEED` replays a run's random moments;
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
use lapin::uri::AMQPUri;
use lapin::{BasicProperties, Channel, Confirmation, Connection, ConnectionProperties};
use lopdf::content::{Content, Operation};
use lopdf::{Document, Object, Stream, dictionary};
use nachweis::queue::amqp::{BUNDLE_ID_HEADER, REASON_HEADER, Topology};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;

const DEFAULT_AMQP_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";
#[path = "support/postgres.rs"]
mod pg;
use pg::{DEFAULT_POSTGRES_URL, unique_suffix, with_database};
const START_RABBITMQ: &str = "rabbitmq-server -detached";
const START_POSTGRES: &str = "pg_ctlcluster --skip-systemctl-redirect 15 main start";
/// How long a batch of bundles may take to go through before the checker
/// runs anyway (and then reports what is missing).
const SETTLE_TIMEOUT: Duration = Duration::from_secs(60);
/// The workers' crash limit unless a test sets another (the product default).
const DEFAULT_CRASH_LIMIT: u32 = 3;

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
async fn two_workers_relaying_one_outbox_send_each_event_once() {
    with_harness(Lock::Shared, 5, |h| async move {
        let mut workers = [h.spawn_worker(), h.spawn_worker()];
        let good = h.feed("relay", 40, Duration::from_millis(25)).await.expect("feeder");

        h.wait_until_recorded(&good, 0).await;
        let tally = h.check(&good, &[]).await;

        tally.assert_clean();
        // Both relays poll the same outbox; their claims keep them apart.
        assert_eq!(tally.event_resends, 0, "an event was published twice without any fault");
        for w in &mut workers {
            assert_eq!(w.terminate().await.code(), Some(0));
        }
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
    // The same for the crash limit: a bundle can be cut short by several
    // random kills in a row, which is not what the crash limit is for.
    with_harness_limits(Lock::Shared, delivery_limit, delivery_limit, |h| async move {
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
        // report `Unavailable`; the workers then hold their bundles and try
        // again in place, instead of spinning them through the queue.
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
        let logs = h.worker_logs();
        let held = logs.iter().map(|(_, log)| log.matches("Database unavailable; holding the bundle").count()).sum::<usize>();
        let requeued = logs.iter().map(|(_, log)| log.matches("requeueing").count()).sum::<usize>();
        println!(
            "PostgreSQL: 1 restart and one 14 s outage, {} bundles, 2 workers, {held} waits holding a bundle, {requeued} requeues, {:.1} s",
            good.len(),
            started.elapsed().as_secs_f64()
        );

        tally.assert_clean();
        assert!(held > 0, "the outage should have made the workers wait for the database");
        assert_eq!(requeued, 0, "an unreachable database must not spin bundles through the queue");
        for w in &mut workers {
            assert!(w.is_running(), "a worker survives a database restart");
            assert_eq!(w.terminate().await.code(), Some(0));
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn scanned_bundles_keep_the_cores_busy_without_starving_the_heartbeat() {
    with_harness(Lock::Shared, 5, |h| async move {
        // With a 1 s heartbeat, extraction on the runtime's threads (OCR of
        // six pages takes several seconds) would silence the connection for
        // longer than two heartbeats, and the broker would drop it.
        let mut worker = h.spawn_worker_with(&h.worker_amqp_url, &[("NACHWEIS_AMQP_HEARTBEAT_SECS", "1")]);
        let mut publisher = Publisher::new(&h.amqp_url);
        let mut good = BTreeSet::new();
        for i in 0..4 {
            let id = format!("scan-{i}");
            publisher.publish(&h.topology.bundles, &scanned_bundle(&id, 6)).await;
            good.insert(id);
        }

        h.wait_until_recorded(&good, 0).await;
        let tally = h.check(&good, &[]).await;

        tally.assert_clean();
        let log = log_of(&worker);
        assert_eq!(log.matches("Connected to the broker.").count(), 1, "the connection was dropped (log: {})", worker.log.display());
        let (_, metrics) = worker.get("/metrics").await;
        assert_eq!(metric(&metrics, r#"nachweis_pages_extracted_total{source="ocr"}"#), Some(24.0), "{metrics}");
        assert_eq!(worker.terminate().await.code(), Some(0));
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

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_worker_serves_health_readiness_and_metrics_that_count_what_it_did() {
    with_harness(Lock::Shared, 5, |h| async move {
        let mut worker = h.spawn_worker();
        let (code, body) = worker.get("/healthz").await;
        assert_eq!((code, body.as_str()), (200, r#"{"status":"ok"}"#));
        let ready = worker.wait_for_readiness(200, Duration::from_secs(30)).await;
        let ready: Value = serde_json::from_str(&ready).expect("readiness JSON");
        assert_eq!(ready["checks"], json!({"schemas": "ok", "database": "ok", "broker": "ok"}));

        let mut publisher = Publisher::new(&h.amqp_url);
        let good = ids(["ops-1", "ops-2"]);
        for id in &good {
            publisher.publish(&h.topology.bundles, &good_bundle(id)).await;
        }
        let bad = vec![Bad::new(b"not json at all".to_vec(), None, "invalid_json")];
        publisher.publish(&h.topology.bundles, &bad[0].body).await;
        h.wait_until_recorded(&good, 1).await;
        h.wait_for_dead_letters(1).await;
        let tally = h.check(&good, &bad).await;
        tally.assert_clean();

        let (code, metrics) = worker.get("/metrics").await;
        assert_eq!(code, 200);
        assert_eq!(metric_sum(&metrics, "nachweis_bundles_processed_total"), 2.0, "{metrics}");
        assert_eq!(metric(&metrics, r#"nachweis_bundles_dead_lettered_total{reason="invalid_json"}"#), Some(1.0), "{metrics}");
        assert_eq!(metric(&metrics, r#"nachweis_pages_extracted_total{source="text_layer"}"#), Some(2.0), "{metrics}");
        assert_eq!(metric(&metrics, "nachweis_bundle_processing_seconds_count"), Some(2.0), "{metrics}");
        assert_eq!(metric(&metrics, "nachweis_queue_wait_seconds_count"), Some(3.0), "every delivery, the bad one too: {metrics}");
        assert_eq!(metric(&metrics, "nachweis_broker_connected"), Some(1.0), "{metrics}");
        // The checker saw both events of both bundles, so they were published.
        assert!(metric_sum(&metrics, "nachweis_events_published_total") >= 4.0, "{metrics}");
        assert_eq!(worker.terminate().await.code(), Some(0));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_half_open_broker_connection_is_noticed_by_heartbeat_and_nothing_is_lost_or_doubled() {
    with_harness(Lock::Shared, 10, |h| async move {
        let started = Instant::now();
        let mut uri: AMQPUri = h.worker_amqp_url.parse().expect("AMQP URL");
        let proxy = FreezingProxy::start(format!("{}:{}", uri.authority.host, uri.authority.port)).await;
        uri.authority.host = "127.0.0.1".into();
        uri.authority.port = proxy.port;
        let via_proxy = uri.to_string();
        let heartbeat = [("NACHWEIS_AMQP_HEARTBEAT_SECS", "2")];
        let mut workers = [h.spawn_worker_with(&via_proxy, &heartbeat), h.spawn_worker_with(&via_proxy, &heartbeat)];
        for w in &mut workers {
            w.wait_for_readiness(200, Duration::from_secs(30)).await;
        }
        let stop_feeding = std::sync::Arc::new(AtomicBool::new(false));
        let feeder = h.feed_until("half", 1000, Duration::from_millis(60), stop_feeding.clone());
        tokio::time::sleep(Duration::from_millis(1500)).await;

        // Bundles are in flight on both connections when they go silent.
        let frozen = proxy.freeze();
        let frozen_at = Instant::now();
        assert!(frozen >= 2, "each worker's connection goes through the proxy ({frozen})");
        let mut noticed = Vec::new();
        for w in &mut workers {
            let deadline = Instant::now() + Duration::from_secs(30);
            while log_of(w).matches("Connected to the broker.").count() < 2 {
                assert!(Instant::now() < deadline, "the worker did not reconnect within 30 s of the freeze (log: {})", w.log.display());
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            noticed.push(frozen_at.elapsed().as_secs_f64());
            w.wait_for_readiness(200, Duration::from_secs(30)).await;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        stop_feeding.store(true, Ordering::Relaxed);
        let good = feeder.await.expect("feeder");

        h.wait_until_recorded(&good, 0).await;
        let tally = h.check(&good, &[]).await;
        println!(
            "half-open: {frozen} connections frozen, both workers reconnected after {:.1} s and {:.1} s (heartbeat 2 s), {} bundles, {:.1} s",
            noticed[0],
            noticed[1],
            good.len(),
            started.elapsed().as_secs_f64()
        );

        tally.assert_clean();
        for w in &mut workers {
            assert!(log_of(w).contains("no heartbeat received from server"), "the heartbeat noticed it (log: {})", w.log.display());
            assert_eq!(w.terminate().await.code(), Some(0));
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rabbitmq_outage_of_a_minute_with_bundles_queued_loses_and_duplicates_nothing() {
    let outage = Duration::from_secs(env_number("NACHWEIS_FAULT_OUTAGE_SECS", 60) as u64);
    with_harness(Lock::Exclusive, 10, move |h| async move {
        let started = Instant::now();
        let mut workers = [h.spawn_worker(), h.spawn_worker()];
        let mut publisher = Publisher::new(&h.amqp_url);
        let mut good = BTreeSet::new();
        for i in 0..40 {
            let id = format!("outage-{i}");
            publisher.publish(&h.topology.bundles, &good_bundle(&id)).await;
            good.insert(id);
        }
        drop(publisher);
        let deadline = Instant::now() + SETTLE_TIMEOUT;
        while h.count("SELECT COUNT(*) FROM bundles").await < 5 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let recorded = h.count("SELECT COUNT(*) FROM bundles").await;

        run_service_command("rabbitmqctl", &["stop_app"]).await;
        let stopped_at = Instant::now();
        for w in &mut workers {
            let body = w.wait_for_readiness(503, Duration::from_secs(20)).await;
            assert!(body.contains("not connected"), "{body}");
        }
        tokio::time::sleep(outage.saturating_sub(stopped_at.elapsed())).await;
        for w in &mut workers {
            assert!(w.is_running(), "a worker rides out the outage");
        }
        run_service_command("rabbitmqctl", &["start_app"]).await;
        let outage_secs = stopped_at.elapsed().as_secs_f64();

        h.wait_until_recorded(&good, 0).await;
        for w in &mut workers {
            w.wait_for_readiness(200, Duration::from_secs(30)).await;
        }
        let tally = h.check(&good, &[]).await;
        println!(
            "RabbitMQ outage: stopped for {outage_secs:.0} s with {} of {} bundles recorded before it, 2 workers, {:.1} s",
            recorded,
            good.len(),
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
async fn a_bundle_that_kills_every_worker_processing_it_is_dead_lettered_and_its_prefetched_neighbours_are_not() {
    with_harness(Lock::Shared, 10, |h| async move {
        let started = Instant::now();
        let mut publisher = Publisher::new(&h.amqp_url);
        let poison = slow_bundle("poison-1");
        let key = hex::encode(Sha256::digest(&poison));
        let mut good = BTreeSet::new();
        for i in 0..10 {
            if i == 3 {
                publisher.publish(&h.topology.bundles, &poison).await;
            }
            let id = format!("near-{i}");
            publisher.publish(&h.topology.bundles, &good_bundle(&id)).await;
            good.insert(id);
        }
        let mut workers = vec![h.spawn_worker(), h.spawn_worker()];

        // Whichever worker starts the poison bundle dies, as if the bundle
        // crashed it (the sandbox keeps real parser crashes out of the worker,
        // so the test plays the crash). The start that finds `crash_limit`
        // unfinished ones dead-letters it instead of processing it.
        let (mut seen, mut kills) = (0i64, 0);
        let deadline = Instant::now() + Duration::from_secs(120);
        while h.ready_messages(&h.topology.dead_queue).await == 0 {
            assert!(Instant::now() < deadline, "the poison bundle was not dead-lettered within 120 s ({kills} kills)");
            let starts = h.attempt_starts(&key).await;
            if starts > seen && starts <= i64::from(DEFAULT_CRASH_LIMIT) {
                seen = starts;
                let victim = loop {
                    if let Some(i) = workers.iter().position(|w| log_of(w).lines().any(|l| l.contains("Processing bundle.") && l.contains("\"poison-1\""))) {
                        break i;
                    }
                    assert!(Instant::now() < deadline, "no worker log says it is processing the poison bundle");
                    tokio::time::sleep(Duration::from_millis(5)).await;
                };
                workers[victim].kill9();
                kills += 1;
                workers[victim] = h.spawn_worker();
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        h.wait_until_recorded(&good, 1).await;
        let bad = vec![Bad::new(poison, Some("poison-1"), "worker_crashed")];
        let tally = h.check(&good, &bad).await;
        println!("poison: {kills} workers killed by one bundle, {} neighbours, {:.1} s", good.len(), started.elapsed().as_secs_f64());

        tally.assert_clean();
        assert_eq!(kills, DEFAULT_CRASH_LIMIT, "dead-lettered after exactly crash_limit unfinished starts");
        for w in &mut workers {
            assert_eq!(w.terminate().await.code(), Some(0));
        }
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
    /// Cases beyond one per recorded bundle, second bundle rows, bad bundles recorded.
    duplicated_cases: usize,
    /// Drafts beyond one per bundle, and cases with more than one pending draft.
    duplicated_drafts: usize,
    /// Messages in the dead-letter queue.
    dead_lettered: usize,
    /// Dead letters that no bad message accounts for (an innocent message dead-lettered).
    wrongly_dead_lettered: usize,
    /// Outgoing events that never arrived.
    events_missing: usize,
    /// Events that arrived more than once (allowed: publication is
    /// at-least-once; without faults there should be none).
    event_resends: usize,
    problems: Vec<String>,
}

impl Tally {
    #[track_caller]
    fn assert_clean(&self) {
        assert!(
            self.lost == 0 && self.duplicated_cases == 0 && self.duplicated_drafts == 0 && self.wrongly_dead_lettered == 0 && self.events_missing == 0,
            "lost = {}, duplicated cases = {}, duplicated drafts = {}, wrongly dead-lettered = {}, events missing = {}:\n  {}",
            self.lost,
            self.duplicated_cases,
            self.duplicated_drafts,
            self.wrongly_dead_lettered,
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
    /// The broker as the test itself reaches it (publishing, checking).
    amqp_url: String,
    /// The broker as the workers reach it: with a password of its own.
    worker_amqp_url: String,
    admin_url: String,
    db_name: String,
    db_url: String,
    /// The test database as the workers reach it (with a password where the
    /// server ignores it, so that it can be searched for in logs).
    worker_db_url: String,
    /// Passwords that must never appear in a log line or a metric.
    secrets: Vec<String>,
    topology: Topology,
    crash_limit: u32,
    observer: String,
    intake: tempfile::TempDir,
    logs: tempfile::TempDir,
    spawned: AtomicU64,
    /// `/metrics` of every worker, taken just before it was stopped.
    scrapes: std::sync::Arc<std::sync::Mutex<Vec<(String, String)>>>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Lock {
    Shared,
    Exclusive,
}

/// Sets up a harness, runs the test body, and cleans up (database, queues,
/// processes) also when the body panics. Worker logs are printed on failure;
/// worker logs and every metrics scrape are always checked for personal data
/// and secrets.
async fn with_harness<F, Fut>(lock: Lock, delivery_limit: u32, body: F)
where
    F: FnOnce(std::sync::Arc<Harness>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    with_harness_limits(lock, delivery_limit, DEFAULT_CRASH_LIMIT, body).await;
}

/// `with_harness` with the workers' `NACHWEIS_CRASH_LIMIT` set too.
async fn with_harness_limits<F, Fut>(lock: Lock, delivery_limit: u32, crash_limit: u32, body: F)
where
    F: FnOnce(std::sync::Arc<Harness>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let _lock = service_lock(lock).await;
    let h = std::sync::Arc::new(Harness::new(delivery_limit, crash_limit).await);
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
    assert!(personal.is_empty(), "personal data or secrets in worker logs or metrics: {personal:?}");
}

impl Harness {
    async fn new(delivery_limit: u32, crash_limit: u32) -> Harness {
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
        // The workers get URLs with passwords that appear nowhere else, so a
        // log line or metric that leaks one is caught.
        let (worker_amqp_url, amqp_secret) = secret_amqp_url(&amqp_url).await;
        let (worker_db_url, db_secret) = secret_database_url(&db_url);

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
            worker_amqp_url,
            admin_url,
            db_name,
            db_url,
            worker_db_url,
            secrets: [Some(amqp_secret), db_secret].into_iter().flatten().collect(),
            topology,
            crash_limit,
            observer,
            intake: tempfile::tempdir().expect("intake dir"),
            logs: tempfile::tempdir().expect("log dir"),
            spawned: AtomicU64::new(0),
            scrapes: std::sync::Arc::new(std::sync::Mutex::new(Vec::new())),
        }
    }

    fn spawn_worker(&self) -> Worker {
        self.spawn_worker_with(&self.worker_amqp_url, &[])
    }

    /// A worker on another AMQP URL (a proxy) or with extra variables.
    fn spawn_worker_with(&self, amqp_url: &str, extra_env: &[(&str, &str)]) -> Worker {
        let n = self.spawned.fetch_add(1, Ordering::Relaxed);
        let log_path = self.logs.path().join(format!("worker-{n:03}.log"));
        let log = std::fs::File::create(&log_path).expect("worker log");
        let schemas = Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas");
        let mut command = Command::new(env!("CARGO_BIN_EXE_nachweis"));
        command
            .arg("run")
            .env_remove("NACHWEIS_CONFIG")
            .env("NACHWEIS_AMQP_URL", amqp_url)
            .env("NACHWEIS_DATABASE_URL", &self.worker_db_url)
            .env("NACHWEIS_SCHEMAS_DIR", schemas)
            .env("NACHWEIS_INTAKE_DIR", self.intake.path())
            .env("NACHWEIS_CONCURRENCY", "2")
            .env("NACHWEIS_AMQP_PREFIX", self.topology.bundles.trim_end_matches(".bundles"))
            .env("NACHWEIS_AMQP_DELIVERY_LIMIT", self.topology.delivery_limit.to_string())
            .env("NACHWEIS_CRASH_LIMIT", self.crash_limit.to_string())
            .env("NACHWEIS_SHUTDOWN_GRACE_SECS", "30")
            // Several workers on one host: each picks a free port and logs it.
            .env("NACHWEIS_HTTP_ADDR", "127.0.0.1:0")
            .env("NACHWEIS_LOG_FORMAT", "text")
            .env("RUST_LOG", "info");
        for (key, value) in extra_env {
            command.env(key, value);
        }
        let child = command
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log)
            .spawn()
            .expect("start nachweis run");
        Worker { child, log: log_path, http_addr: None, scrapes: self.scrapes.clone() }
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

    /// How many processing starts the workers recorded for a message body.
    async fn attempt_starts(&self, key: &str) -> i64 {
        let pool = self.pg().await;
        let n: Option<i32> =
            sqlx::query_scalar("SELECT started FROM delivery_attempts WHERE message_key = $1").bind(key).fetch_optional(&pool).await.expect("attempts");
        pool.close().await;
        n.map_or(0, i64::from)
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
    /// and the events, and prints `lost = N, duplicated cases = M,
    /// duplicated drafts = K, dead-lettered = D`.
    async fn check(&self, good: &BTreeSet<String>, bad: &[Bad]) -> Tally {
        let mut tally = Tally::default();
        let pool = self.pg().await;
        let bundles: Vec<(String, String)> = sqlx::query_as("SELECT bundle_id, case_id FROM bundles").fetch_all(&pool).await.expect("bundles");
        let drafts: Vec<(String, i64)> =
            sqlx::query_as("SELECT bundle_id, COUNT(*) FROM drafts GROUP BY bundle_id").fetch_all(&pool).await.expect("drafts");
        let pending: Vec<(String, i64)> = sqlx::query_as(
            "SELECT case_id, COUNT(*) FROM drafts WHERE status = 'pending_review' GROUP BY case_id HAVING COUNT(*) > 1",
        )
        .fetch_all(&pool)
        .await
        .expect("pending drafts");
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
                    tally.duplicated_cases += n - 1;
                    tally.problems.push(format!("{id}: recorded {n} times"));
                }
                Some(_) => {}
            }
            let n = drafts.get(id.as_str()).copied().unwrap_or(0);
            if n > 1 {
                tally.duplicated_drafts += (n - 1) as usize;
                tally.problems.push(format!("{id}: {n} drafts"));
            }
        }
        for (case_id, n) in &pending {
            tally.duplicated_drafts += (*n - 1) as usize;
            tally.problems.push(format!("{case_id}: {n} pending drafts"));
        }
        let expected_cases = good.iter().filter(|id| rows_per_bundle.contains_key(id.as_str())).count() as i64;
        if cases != expected_cases {
            tally.duplicated_cases += (cases - expected_cases).unsigned_abs() as usize;
            tally.problems.push(format!("{cases} cases for {expected_cases} recorded bundles"));
        }

        let dead = self.drain_dead_letters().await;
        tally.dead_lettered = dead.len();
        for b in bad {
            if let Some(id) = b.bundle_id
                && rows_per_bundle.contains_key(id)
            {
                tally.duplicated_cases += 1;
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
                tally.wrongly_dead_lettered += 1;
                tally.problems.push(format!("unexpected dead letter {:?}: {:?}", d.bundle_id.clone().or_else(|| bundle_id_of(&d.body)), d.reason));
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
        tally.event_resends = redelivered;

        println!(
            "lost = {}, duplicated cases = {}, duplicated drafts = {}, dead-lettered = {} \
             ({} bundles published, {} recorded, {} wrongly dead-lettered, {} events, {} event re-sends)",
            tally.lost,
            tally.duplicated_cases,
            tally.duplicated_drafts,
            tally.dead_lettered,
            good.len() + bad.len(),
            bundles.len(),
            tally.wrongly_dead_lettered,
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

    /// Names and addresses from the test bundles, and the workers' passwords,
    /// wherever they appear in a worker log or a metrics scrape; and any
    /// bundle id in a scrape (metric labels never carry ids).
    fn personal_data_in_logs(&self) -> Vec<String> {
        let mut found = Vec::new();
        let scrapes = self.scrapes.lock().expect("scrapes").clone();
        let logs = self.worker_logs().into_iter().map(|(path, text)| (path.display().to_string(), text));
        for (origin, text) in logs.chain(scrapes.iter().cloned()) {
            for word in ["Anna", "Beispiel", "Lindenweg", "Lena", "2012-05-02"].iter().copied().chain(self.secrets.iter().map(String::as_str)) {
                if text.contains(word) {
                    found.push(format!("{word} in {origin}"));
                }
            }
        }
        for (origin, text) in &scrapes {
            // Test bundle ids all contain a dash followed by a digit.
            if let Some(line) = text.lines().find(|l| !l.starts_with('#') && l.split('{').nth(1).is_some_and(|labels| labels.contains("-1") || labels.contains("-0"))) {
                found.push(format!("an id-like label in {origin}: {line}"));
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
    http_addr: Option<String>,
    scrapes: std::sync::Arc<std::sync::Mutex<Vec<(String, String)>>>,
}

impl Worker {
    fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// The address of the worker's operations endpoints, from its log.
    async fn http_addr(&mut self) -> String {
        if let Some(addr) = &self.http_addr {
            return addr.clone();
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            if let Some(addr) = log.lines().find_map(|l| l.split("http_addr=").nth(1)).and_then(|rest| rest.split_whitespace().next()) {
                self.http_addr = Some(addr.to_owned());
                return addr.to_owned();
            }
            assert!(Instant::now() < deadline && self.is_running(), "the worker logged no http_addr (log: {})", self.log.display());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `GET path` on the operations endpoints: status code and body.
    async fn get(&mut self, path: &str) -> (u16, String) {
        let addr = self.http_addr().await;
        http_get(&addr, path).await.unwrap_or_else(|error| panic!("GET {path} on {addr}: {error}"))
    }

    /// Waits until `/readyz` answers `status` (200 or 503), at most `within`.
    async fn wait_for_readiness(&mut self, status: u16, within: Duration) -> String {
        let deadline = Instant::now() + within;
        loop {
            let (code, body) = self.get("/readyz").await;
            if code == status {
                return body;
            }
            assert!(Instant::now() < deadline, "/readyz stayed {code} instead of {status}: {body}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// SIGTERM, then waits for the exit (at most a minute). The metrics are
    /// scraped first, for the personal-data check.
    async fn terminate(&mut self) -> ExitStatus {
        if self.is_running() {
            let (code, text) = self.get("/metrics").await;
            assert_eq!(code, 200, "GET /metrics: {text}");
            self.scrapes.lock().expect("scrapes").push((format!("metrics of {}", self.log.display()), text));
        }
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
        let mut failures = 0u32;
        loop {
            match self.try_publish(queue, body).await {
                Ok(()) => {
                    if failures > 0 {
                        eprintln!("publisher: published after {failures} failed attempts");
                    }
                    return;
                }
                Err(error) if Instant::now() < deadline => {
                    // One line per outage, not one per attempt (5 a second).
                    if failures == 0 {
                        eprintln!("publisher: {error}; retrying");
                    }
                    failures += 1;
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
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        let properties = BasicProperties::default().with_delivery_mode(2).with_content_type("application/json".into()).with_timestamp(now);
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

/// A bundle of three scanned pages (inline PNGs): OCR makes it take seconds.
fn slow_bundle(id: &str) -> Vec<u8> {
    scanned_bundle(id, 3)
}

/// A bundle of `pages` scanned pages, one inline PNG each.
fn scanned_bundle(id: &str, pages: usize) -> Vec<u8> {
    let png = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/geburtsurkunde.png")).expect("tests/data/geburtsurkunde.png");
    let mut bundle = good_bundle_value(id);
    let documents: Vec<Value> = (1..=pages)
        .map(|n| {
            json!({
                "document_id": format!("scan{n}"), "filename": format!("scan{n}.png"), "media_type": "image/png",
                "sha256": hex::encode(Sha256::digest(&png)), "declared_type": "geburtsurkunde",
                "content_base64": base64::engine::general_purpose::STANDARD.encode(&png),
            })
        })
        .collect();
    bundle["documents"] = Value::Array(documents);
    to_bytes(&bundle)
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

/// A minimal HTTP/1.1 GET (the test needs no HTTP client crate): status and body.
async fn http_get(addr: &str, path: &str) -> std::io::Result<(u16, String)> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut stream = tokio::time::timeout(Duration::from_secs(10), tokio::net::TcpStream::connect(addr)).await??;
    stream.write_all(format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes()).await?;
    let mut response = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut response)).await??;
    let text = String::from_utf8_lossy(&response).into_owned();
    let code = text.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    Ok((code, body))
}

/// The RabbitMQ user the workers connect as; its password is searched for
/// in every log and metrics scrape.
const SECRET_AMQP_USER: &str = "nachweis-test";
const SECRET_AMQP_PASSWORD: &str = "Geheimnis-7f3a9c2e";
const SECRET_DB_PASSWORD: &str = "Kennwort-51d0b8e4";

/// The test broker URL with the secret user, creating that user (with
/// `rabbitmqctl`, as the restart tests use it) when it cannot log in yet.
async fn secret_amqp_url(url: &str) -> (String, String) {
    let mut uri: AMQPUri = url.parse().expect("NACHWEIS_TEST_AMQP_URL is an AMQP URL");
    uri.authority.userinfo.username = SECRET_AMQP_USER.into();
    uri.authority.userinfo.password = SECRET_AMQP_PASSWORD.into();
    let secret_url = uri.to_string();
    if Connection::connect(&secret_url, ConnectionProperties::default()).await.is_err() {
        let vhost = uri.vhost.clone();
        // add_user fails when the user exists with another password; then the
        // password is set instead.
        let added = tokio::task::spawn_blocking(|| Command::new("rabbitmqctl").args(["add_user", SECRET_AMQP_USER, SECRET_AMQP_PASSWORD]).output())
            .await
            .expect("join");
        if !added.as_ref().is_ok_and(|o| o.status.success()) {
            run_service_command("rabbitmqctl", &["change_password", SECRET_AMQP_USER, SECRET_AMQP_PASSWORD]).await;
        }
        let output = tokio::task::spawn_blocking(move || {
            Command::new("rabbitmqctl").args(["set_permissions", "-p", &vhost, SECRET_AMQP_USER, ".*", ".*", ".*"]).output()
        })
        .await
        .expect("join")
        .expect("run rabbitmqctl");
        assert!(output.status.success(), "rabbitmqctl set_permissions failed: {}", String::from_utf8_lossy(&output.stderr));
        Connection::connect(&secret_url, ConnectionProperties::default())
            .await
            .unwrap_or_else(|error| panic!("the test user {SECRET_AMQP_USER} cannot log in after rabbitmqctl add_user: {error}"));
    }
    (secret_url, SECRET_AMQP_PASSWORD.into())
}

/// The database URL with a password, when the URL had none (the server then
/// trusts the connection and ignores it); otherwise unchanged.
fn secret_database_url(url: &str) -> (String, Option<String>) {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else { return (url.to_owned(), None) };
    let authority_end = url[scheme_end..].find('/').map_or(url.len(), |i| scheme_end + i);
    match url[scheme_end..authority_end].find('@') {
        Some(at) if !url[scheme_end..scheme_end + at].contains(':') => {
            let user_end = scheme_end + at;
            (format!("{}:{SECRET_DB_PASSWORD}{}", &url[..user_end], &url[user_end..]), Some(SECRET_DB_PASSWORD.into()))
        }
        _ => (url.to_owned(), None),
    }
}

/// A TCP proxy between workers and the broker that can go silent on every
/// connection it carries — no bytes either way, no FIN, no RST — as a
/// half-open connection does after a NAT or firewall drops its state.
/// Connections made after a freeze work normally.
struct FreezingProxy {
    port: u16,
    connections: std::sync::Arc<std::sync::Mutex<Vec<tokio::sync::watch::Sender<bool>>>>,
    accept: tokio::task::JoinHandle<()>,
}

impl FreezingProxy {
    async fn start(upstream: String) -> FreezingProxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("proxy listener");
        let port = listener.local_addr().expect("proxy address").port();
        let connections = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let registry = connections.clone();
        let accept = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let (frozen_tx, frozen) = tokio::sync::watch::channel(false);
                registry.lock().expect("proxy registry").push(frozen_tx);
                let upstream = upstream.clone();
                tokio::spawn(async move {
                    let Ok(server) = tokio::net::TcpStream::connect(&upstream).await else { return };
                    let (client_read, client_write) = client.into_split();
                    let (server_read, server_write) = server.into_split();
                    tokio::join!(pump(client_read, server_write, frozen.clone()), pump(server_read, client_write, frozen));
                });
            }
        });
        FreezingProxy { port, connections, accept }
    }

    /// Silences every connection open now; returns how many.
    fn freeze(&self) -> usize {
        let connections = self.connections.lock().expect("proxy registry");
        for c in connections.iter() {
            c.send_replace(true);
        }
        connections.len()
    }
}

impl Drop for FreezingProxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

async fn until_frozen(frozen: &mut tokio::sync::watch::Receiver<bool>) {
    // The borrow ends before the await (a `Ref` held across it is not `Send`).
    while !*frozen.borrow_and_update() {
        if frozen.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// Copies bytes one way until the connection ends, or, once frozen, holds
/// both ends open and silent until the test ends.
async fn pump(mut from: tokio::net::tcp::OwnedReadHalf, mut to: tokio::net::tcp::OwnedWriteHalf, mut frozen: tokio::sync::watch::Receiver<bool>) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        tokio::select! {
            biased;
            () = until_frozen(&mut frozen) => {
                std::future::pending::<()>().await;
            }
            read = from.read(&mut buffer) => match read {
                Ok(0) | Err(_) => {
                    let _ = to.shutdown().await;
                    return;
                }
                Ok(n) => {
                    if to.write_all(&buffer[..n]).await.is_err() {
                        return;
                    }
                }
            },
        }
    }
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



fn log_of(worker: &Worker) -> String {
    std::fs::read_to_string(&worker.log).unwrap_or_default()
}

/// The value of one sample line (`name{labels} value`) of a metrics scrape.
fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.split_whitespace().next()?.parse().ok())
}

/// The sum over every series of a metric name, whatever its labels.
fn metric_sum(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| l.strip_prefix(name).is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' ')))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
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

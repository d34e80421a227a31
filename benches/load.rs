//! Load benchmark of the production path: `nachweis run` worker processes
//! against the real RabbitMQ and PostgreSQL. Publishes a few hundred bundles
//! built from `fixtures/bundles/*` (fresh bundle ids; most with their
//! text-layer PDFs only, every `NACHWEIS_BENCH_SCANNED_EVERY`th with all of
//! its uploads, scans and phone photos included) and reports throughput
//! (bundles/s, pages/s), latency from publish to stored draft (p50, p95,
//! max) and peak RSS per worker and of its largest extraction child, for 1
//! and 2 worker processes; the 1-worker row is the baseline.
//!
//! Run with `cargo bench --bench load`. Needs RabbitMQ and PostgreSQL as
//! `scripts/test` starts them (`NACHWEIS_BENCH_AMQP_URL`,
//! `NACHWEIS_BENCH_POSTGRES_URL`, else the test variables, else the local
//! defaults) and says so when they are not reachable. Knobs:
//! `NACHWEIS_BENCH_BUNDLES` (200), `NACHWEIS_BENCH_SCANNED_EVERY` (5),
//! `NACHWEIS_BENCH_CONCURRENCY` (bundles per worker, 2), `NACHWEIS_BENCH_WORKERS` ("1,2"),
//! `NACHWEIS_BENCH_RATE` (bundles published per second; 0, the default,
//! publishes all at once, so latency then includes the wait in the queue).
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use chrono::{DateTime, Utc};
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions, ExchangeDeleteOptions, QueueDeleteOptions};
use lapin::{BasicProperties, Confirmation, Connection, ConnectionProperties};
use nachweis::queue::amqp::Topology;
use serde_json::Value;
use sha2::{Digest, Sha256};
use sqlx::postgres::PgPoolOptions;

const DEFAULT_AMQP_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";
const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";
/// How long one configuration may take before the bench gives up.
const RUN_TIMEOUT: Duration = Duration::from_secs(30 * 60);

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    std::process::exit(runtime.block_on(run()));
}

struct Config {
    amqp_url: String,
    postgres_url: String,
    bundles: usize,
    scanned_every: usize,
    concurrency: usize,
    workers: Vec<usize>,
    /// Bundles published per second; 0 publishes them all at once (a burst).
    rate: f64,
}

fn env_or(names: &[&str], default: &str) -> String {
    names.iter().find_map(|n| std::env::var(n).ok().filter(|v| !v.is_empty())).unwrap_or_else(|| default.to_owned())
}

fn env_number(name: &str, default: usize) -> usize {
    match std::env::var(name) {
        Ok(v) => v.parse().unwrap_or_else(|_| panic!("{name} must be a whole number, not {v:?}")),
        Err(_) => default,
    }
}

async fn run() -> i32 {
    let config = Config {
        amqp_url: env_or(&["NACHWEIS_BENCH_AMQP_URL", "NACHWEIS_TEST_AMQP_URL"], DEFAULT_AMQP_URL),
        postgres_url: env_or(&["NACHWEIS_BENCH_POSTGRES_URL", "NACHWEIS_TEST_POSTGRES_URL"], DEFAULT_POSTGRES_URL),
        bundles: env_number("NACHWEIS_BENCH_BUNDLES", 200).max(1),
        scanned_every: env_number("NACHWEIS_BENCH_SCANNED_EVERY", 5).max(1),
        concurrency: env_number("NACHWEIS_BENCH_CONCURRENCY", 2).max(1),
        rate: env_or(&["NACHWEIS_BENCH_RATE"], "0").parse().expect("NACHWEIS_BENCH_RATE: bundles per second"),
        workers: env_or(&["NACHWEIS_BENCH_WORKERS"], "1,2")
            .split(',')
            .map(|w| w.trim().parse().expect("NACHWEIS_BENCH_WORKERS: comma-separated whole numbers"))
            .collect(),
    };
    if let Err(message) = services_reachable(&config).await {
        eprintln!("load bench: {message}");
        eprintln!("The load benchmark needs RabbitMQ and PostgreSQL running, as `bash scripts/test` starts them.");
        return 2;
    }
    let fixtures = Fixture::load_all(&fixtures_dir());
    let messages = build_mix(&fixtures, &config);
    let scanned = messages.iter().filter(|m| m.scanned).count();
    let pace = if config.rate > 0.0 { format!("published at {} per second", config.rate) } else { "published all at once".to_owned() };
    println!(
        "load: {} bundles ({} with all uploads incl. scans and photos, {} with their text-layer PDFs only), {pace}, {} bundles at once per worker",
        messages.len(),
        scanned,
        messages.len() - scanned,
        config.concurrency
    );
    let mut rows = Vec::new();
    for &workers in &config.workers {
        match run_configuration(&config, &messages, workers).await {
            Ok(row) => {
                eprintln!("  {} worker(s): {:.1} s", workers, row.wall.as_secs_f64());
                rows.push(row);
            }
            Err(message) => {
                eprintln!("load bench, {workers} worker(s): {message}");
                return 1;
            }
        }
    }
    print_table(&rows);
    0
}

async fn services_reachable(config: &Config) -> Result<(), String> {
    match tokio::time::timeout(Duration::from_secs(10), Connection::connect(&config.amqp_url, ConnectionProperties::default())).await {
        Ok(Ok(connection)) => {
            let _ = connection.close(200, "probe".into()).await;
        }
        Ok(Err(error)) => return Err(format!("RabbitMQ at {} is not reachable: {error}", nachweis::config::redact_url(&config.amqp_url))),
        Err(_) => return Err(format!("RabbitMQ at {} does not answer", nachweis::config::redact_url(&config.amqp_url))),
    }
    match PgPoolOptions::new().max_connections(1).acquire_timeout(Duration::from_secs(10)).connect(&config.postgres_url).await {
        Ok(pool) => pool.close().await,
        Err(error) => return Err(format!("PostgreSQL at {} is not reachable: {error}", nachweis::config::redact_url(&config.postgres_url))),
    }
    Ok(())
}

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/bundles")
}

/// A fixture bundle: its manifest and which documents are text-layer PDFs
/// (from `expected.json`, what the generator rendered).
struct Fixture {
    dir_name: String,
    manifest: Value,
    text_documents: Vec<String>,
}

impl Fixture {
    fn load_all(root: &Path) -> Vec<Fixture> {
        let mut dirs: Vec<PathBuf> = std::fs::read_dir(root)
            .expect("fixtures/bundles")
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.join("manifest.json").is_file())
            .collect();
        dirs.sort();
        let mut out = Vec::new();
        for dir in dirs {
            let manifest: Value = serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).expect("manifest")).expect("manifest JSON");
            // Late documents refer to another bundle's case; they would only
            // measure the retry path.
            if manifest.get("case_id").is_some_and(|c| !c.is_null()) {
                continue;
            }
            let expected: Value = serde_json::from_slice(&std::fs::read(dir.join("expected.json")).expect("expected.json")).expect("expected JSON");
            let text_documents = expected["documents"]
                .as_array()
                .map(|docs| {
                    docs.iter()
                        .filter(|d| d["rendering"] == "text-pdf")
                        .filter_map(|d| d["document_id"].as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            out.push(Fixture { dir_name: dir.file_name().expect("name").to_string_lossy().into_owned(), manifest, text_documents });
        }
        assert!(!out.is_empty(), "no fixture bundles under {}", root.display());
        out
    }

    /// The manifest with a fresh bundle id and paths relative to
    /// `fixtures/bundles` (the workers' intake directory); with only the
    /// text-layer documents unless `scanned`.
    fn message(&self, bundle_id: &str, scanned: bool) -> Option<Vec<u8>> {
        let mut manifest = self.manifest.clone();
        manifest["bundle_id"] = Value::String(bundle_id.to_owned());
        let documents = manifest["documents"].as_array_mut()?;
        if !scanned {
            documents.retain(|d| d["document_id"].as_str().is_some_and(|id| self.text_documents.iter().any(|t| t == id)));
        }
        if documents.is_empty() {
            return None;
        }
        for d in documents.iter_mut() {
            if let Some(path) = d.get("path").and_then(Value::as_str) {
                d["path"] = Value::String(format!("{}/{path}", self.dir_name));
            }
        }
        serde_json::to_vec(&manifest).ok()
    }
}

struct Message {
    bundle_id: String,
    body: Vec<u8>,
    scanned: bool,
}

/// Cycles through the fixtures: every `scanned_every`th bundle with all of
/// its uploads, the others with their text-layer PDFs only.
fn build_mix(fixtures: &[Fixture], config: &Config) -> Vec<Message> {
    let run = &hex::encode(Sha256::digest(format!("{:?}", SystemTime::now()).as_bytes()))[..8];
    let mut out = Vec::new();
    let mut k = 0usize;
    while out.len() < config.bundles {
        let i = out.len();
        let scanned = i % config.scanned_every == 0;
        let fixture = &fixtures[k % fixtures.len()];
        k += 1;
        let bundle_id = format!("load-{run}-{i:04}");
        if let Some(body) = fixture.message(&bundle_id, scanned) {
            out.push(Message { bundle_id, body, scanned });
        }
        assert!(k < config.bundles * 10 + fixtures.len(), "no fixture yields a bundle");
    }
    out
}

/// One configuration's figures.
struct Row {
    workers: usize,
    bundles: usize,
    pages_text: f64,
    pages_ocr: f64,
    wall: Duration,
    /// Mean time from delivery to commit (the workers' own histogram), s.
    processing_mean: f64,
    latencies: Vec<f64>,
    /// VmHWM of each worker process, MiB.
    worker_peak_mib: Vec<f64>,
    /// The largest VmHWM seen of any extraction child, MiB (sampled every 20 ms).
    child_peak_mib: f64,
}

async fn run_configuration(config: &Config, messages: &[Message], workers: usize) -> Result<Row, String> {
    let unique = &hex::encode(Sha256::digest(format!("{:?}{workers}", SystemTime::now()).as_bytes()))[..12];
    let db_name = format!("nachweis_load_{unique}");
    let admin = PgPoolOptions::new().max_connections(1).connect(&config.postgres_url).await.map_err(|e| e.to_string())?;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {db_name}"))).execute(&admin).await.map_err(|e| e.to_string())?;
    let db_url = with_database(&config.postgres_url, &db_name);
    nachweis::store::connect(&db_url).await.map_err(|e| e.to_string())?;
    let topology = Topology::with_prefix(&format!("nachweis-load-{unique}"), 20);
    let connection = Connection::connect(&config.amqp_url, ConnectionProperties::default()).await.map_err(|e| e.to_string())?;
    let channel = connection.create_channel().await.map_err(|e| e.to_string())?;
    topology.declare(&channel).await.map_err(|e| e.to_string())?;
    channel.confirm_select(ConfirmSelectOptions::default()).await.map_err(|e| e.to_string())?;

    let logs = tempfile::tempdir().map_err(|e| e.to_string())?;
    let mut procs: Vec<WorkerProcess> = (0..workers).map(|n| WorkerProcess::spawn(config, &db_url, &topology, logs.path(), n)).collect();
    for w in &mut procs {
        w.wait_until_ready().await?;
    }
    let sampler = Sampler::start(procs.iter().map(|w| w.child.id()).collect());

    let pool = PgPoolOptions::new().max_connections(2).connect(&db_url).await.map_err(|e| e.to_string())?;
    let mut published_at: BTreeMap<&str, DateTime<Utc>> = BTreeMap::new();
    let first_publish = Utc::now();
    let started = Instant::now();
    for (i, m) in messages.iter().enumerate() {
        if config.rate > 0.0 {
            let due = Duration::from_secs_f64(i as f64 / config.rate);
            tokio::time::sleep(due.saturating_sub(started.elapsed())).await;
        }
        published_at.insert(&m.bundle_id, Utc::now());
        let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        let properties = BasicProperties::default().with_delivery_mode(2).with_content_type("application/json".into()).with_timestamp(now);
        let options = BasicPublishOptions { mandatory: true, ..BasicPublishOptions::default() };
        let confirm = channel
            .basic_publish("".into(), topology.bundles.as_str().into(), options, &m.body, properties)
            .await
            .map_err(|e| e.to_string())?
            .await
            .map_err(|e| e.to_string())?;
        if !matches!(confirm, Confirmation::Ack(None)) {
            return Err(format!("publish not confirmed: {confirm:?}"));
        }
    }
    let deadline = Instant::now() + RUN_TIMEOUT;
    loop {
        let recorded: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM bundles").fetch_one(&pool).await.map_err(|e| e.to_string())?;
        if recorded as usize >= messages.len() {
            break;
        }
        if Instant::now() > deadline {
            return Err(format!("only {recorded} of {} bundles recorded after {RUN_TIMEOUT:?}", messages.len()));
        }
        if let Some(dead) = procs.iter_mut().find_map(|w| (!w.is_running()).then(|| w.log.clone())) {
            return Err(format!("a worker exited (log: {})", dead.display()));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let drafts: Vec<(String, DateTime<Utc>)> =
        sqlx::query_as("SELECT bundle_id, MIN(created_at) FROM drafts GROUP BY bundle_id").fetch_all(&pool).await.map_err(|e| e.to_string())?;
    pool.close().await;
    let mut latencies = Vec::new();
    let mut last = first_publish;
    for (bundle_id, created) in &drafts {
        if let Some(published) = published_at.get(bundle_id.as_str()) {
            latencies.push((*created - *published).num_microseconds().unwrap_or(0) as f64 / 1e6);
            last = last.max(*created);
        }
    }
    latencies.sort_by(f64::total_cmp);
    let (mut pages_text, mut pages_ocr, mut processing_sum, mut processing_count) = (0.0, 0.0, 0.0, 0.0);
    for w in &mut procs {
        let metrics = w.get("/metrics").await?;
        pages_text += metric(&metrics, r#"nachweis_pages_extracted_total{source="text_layer"}"#);
        pages_ocr += metric(&metrics, r#"nachweis_pages_extracted_total{source="ocr"}"#);
        processing_sum += metric(&metrics, "nachweis_bundle_processing_seconds_sum");
        processing_count += metric(&metrics, "nachweis_bundle_processing_seconds_count");
    }
    let (worker_peaks, child_peak) = sampler.stop();
    for w in &mut procs {
        w.terminate();
    }

    let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {db_name} WITH (FORCE)"))).execute(&admin).await;
    admin.close().await;
    for queue in [&topology.bundles, &topology.dead_queue] {
        let _ = channel.queue_delete(queue.as_str().into(), QueueDeleteOptions::default()).await;
    }
    for exchange in [&topology.dead_exchange, &topology.events_exchange] {
        let _ = channel.exchange_delete(exchange.as_str().into(), ExchangeDeleteOptions::default()).await;
    }
    let _ = connection.close(200, "bench done".into()).await;

    Ok(Row {
        workers,
        bundles: latencies.len(),
        pages_text,
        pages_ocr,
        wall: (last - first_publish).to_std().unwrap_or_default(),
        processing_mean: processing_sum / processing_count.max(1.0),
        latencies,
        worker_peak_mib: worker_peaks,
        child_peak_mib: child_peak,
    })
}

/// The value of one sample line of a metrics scrape (0 when absent).
fn metric(text: &str, series: &str) -> f64 {
    text.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.split_whitespace().next()?.parse().ok()).unwrap_or(0.0)
}

struct WorkerProcess {
    child: Child,
    log: PathBuf,
    http_addr: Option<String>,
}

impl WorkerProcess {
    fn spawn(config: &Config, db_url: &str, topology: &Topology, logs: &Path, n: usize) -> WorkerProcess {
        let log = logs.join(format!("worker-{n}.log"));
        let file = std::fs::File::create(&log).expect("worker log");
        let child = Command::new(env!("CARGO_BIN_EXE_nachweis"))
            .arg("run")
            .env_remove("NACHWEIS_CONFIG")
            .env("NACHWEIS_AMQP_URL", &config.amqp_url)
            .env("NACHWEIS_DATABASE_URL", db_url)
            .env("NACHWEIS_SCHEMAS_DIR", Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas"))
            .env("NACHWEIS_INTAKE_DIR", fixtures_dir())
            .env("NACHWEIS_CONCURRENCY", config.concurrency.to_string())
            .env("NACHWEIS_AMQP_PREFIX", topology.bundles.trim_end_matches(".bundles"))
            .env("NACHWEIS_HTTP_ADDR", "127.0.0.1:0")
            .env("NACHWEIS_LOG_FORMAT", "text")
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("log handle"))
            .stderr(file)
            .spawn()
            .expect("start nachweis run");
        WorkerProcess { child, log, http_addr: None }
    }

    fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    async fn wait_until_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if self.http_addr.is_none() {
                let log = std::fs::read_to_string(&self.log).unwrap_or_default();
                self.http_addr = log.lines().find_map(|l| l.split("http_addr=").nth(1)).and_then(|r| r.split_whitespace().next()).map(str::to_owned);
            }
            if let Some(addr) = &self.http_addr
                && let Ok((200, _)) = http_get(addr, "/readyz").await
            {
                return Ok(());
            }
            if Instant::now() > deadline || !self.is_running() {
                return Err(format!("the worker did not become ready (log: {})", self.log.display()));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn get(&mut self, path: &str) -> Result<String, String> {
        let addr = self.http_addr.clone().ok_or("no http_addr")?;
        match http_get(&addr, path).await {
            Ok((200, body)) => Ok(body),
            Ok((code, body)) => Err(format!("GET {path}: {code} {body}")),
            Err(error) => Err(format!("GET {path}: {error}")),
        }
    }

    fn terminate(&mut self) {
        let pid = libc::pid_t::try_from(self.child.id()).expect("pid");
        // SAFETY: signalling our own child process.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let _ = self.child.wait();
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        if self.is_running() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Samples the peak RSS (VmHWM) of the workers and of their extraction
/// children from `/proc` every 20 ms on a thread of its own. A worker's own
/// VmHWM is exact; a child that lives shorter than one sampling interval can
/// be missed, so the child figure is a lower bound.
struct Sampler {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<(Vec<f64>, f64)>,
}

impl Sampler {
    fn start(pids: Vec<u32>) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut workers = vec![0u64; pids.len()];
            let mut child = 0u64;
            while !flag.load(Ordering::Relaxed) {
                for (i, pid) in pids.iter().enumerate() {
                    workers[i] = workers[i].max(vm_hwm_kib(*pid));
                    // Children are listed under the thread that started
                    // them (the blocking pool's threads), so every task.
                    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).map(|d| d.filter_map(Result::ok).collect::<Vec<_>>()).unwrap_or_default();
                    for task in tasks {
                        let children = std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
                        for c in children.split_whitespace().filter_map(|c| c.parse::<u32>().ok()) {
                            child = child.max(vm_hwm_kib(c));
                        }
                    }
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            (workers.iter().map(|k| *k as f64 / 1024.0).collect(), child as f64 / 1024.0)
        });
        Sampler { stop, thread }
    }

    fn stop(self) -> (Vec<f64>, f64) {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().expect("sampler")
    }
}

fn vm_hwm_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| s.lines().find_map(|l| l.strip_prefix("VmHWM:")?.split_whitespace().next()?.parse().ok()))
        .unwrap_or(0)
}

/// A minimal HTTP/1.1 GET: status and body.
async fn http_get(addr: &str, path: &str) -> std::io::Result<(u16, String)> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut stream = tokio::time::timeout(Duration::from_secs(10), tokio::net::TcpStream::connect(addr)).await??;
    stream.write_all(format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes()).await?;
    let mut response = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut response)).await??;
    let text = String::from_utf8_lossy(&response).into_owned();
    let code = text.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    Ok((code, text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default()))
}

/// The admin URL with its database replaced by `name` (query kept).
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = url.split_once('?').map_or((url, None), |(b, q)| (b, Some(q)));
    let host_start = base.find("://").map_or(0, |i| i + 3);
    let base = base[host_start..].find('/').map_or(base, |slash| &base[..host_start + slash]);
    match query {
        Some(query) => format!("{base}/{name}?{query}"),
        None => format!("{base}/{name}"),
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn print_table(rows: &[Row]) {
    println!();
    println!("| workers | bundles | pages (text layer + OCR) | wall s | bundles/s | pages/s | latency p50 s | p95 s | max s | processing mean s | peak RSS per worker MiB | largest extraction child MiB |");
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in rows {
        let secs = r.wall.as_secs_f64().max(1e-9);
        let pages = r.pages_text + r.pages_ocr;
        let peaks: Vec<String> = r.worker_peak_mib.iter().map(|m| format!("{m:.1}")).collect();
        println!(
            "| {} | {} | {:.0} ({:.0} + {:.0}) | {:.1} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {} | {:.1} |",
            r.workers,
            r.bundles,
            pages,
            r.pages_text,
            r.pages_ocr,
            secs,
            r.bundles as f64 / secs,
            pages / secs,
            percentile(&r.latencies, 0.5),
            percentile(&r.latencies, 0.95),
            r.latencies.last().copied().unwrap_or(0.0),
            r.processing_mean,
            peaks.join(", "),
            r.child_peak_mib
        );
    }
    if let (Some(base), true) = (rows.first(), rows.len() > 1) {
        let base_rate = base.bundles as f64 / base.wall.as_secs_f64().max(1e-9);
        for r in &rows[1..] {
            let rate = r.bundles as f64 / r.wall.as_secs_f64().max(1e-9);
            println!("{} workers vs {}: {:.2}× the throughput, p95 latency {:.2}×", r.workers, base.workers, rate / base_rate, percentile(&r.latencies, 0.95) / percentile(&base.latencies, 0.95).max(1e-9));
        }
    }
}

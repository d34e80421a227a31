//! The in-process queue: bundle directories under an intake directory are
//! sent through a bounded channel to `concurrency` workers. Used by `demo`
//! and by `run` when no AMQP URL is configured.
//!
//! Delivery is at-least-once across restarts because the store is
//! idempotent by `bundle_id`: a bundle seen again is skipped, not doubled.
use chrono::NaiveDate;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::sync::mpsc;

use crate::intake;
use crate::metrics::{Metrics, VerdictLabels};
use crate::store::Store;
use crate::worker::{JobError, Pipeline, Processed, process_one};

/// The outcome of one bundle directory.
#[derive(Debug)]
pub struct JobOutcome {
    pub dir: PathBuf,
    pub result: Result<Processed, JobError>,
}

/// Lists bundle directories (those with a `manifest.json`) in name order.
pub fn bundle_dirs(root: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(root)?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.is_dir() && p.join("manifest.json").is_file())
        .collect();
    dirs.sort();
    Ok(dirs)
}

/// Processes the given bundle directories with `concurrency` workers;
/// `on_done` is called as each finishes (for progress output).
pub async fn process_dirs(
    dirs: Vec<PathBuf>,
    pipeline: Arc<Pipeline>,
    store: Arc<dyn Store>,
    concurrency: usize,
    today: NaiveDate,
    mut on_done: impl FnMut(&JobOutcome),
) -> Vec<JobOutcome> {
    let (tx, rx) = mpsc::channel::<PathBuf>(concurrency.max(1));
    let rx = Arc::new(tokio::sync::Mutex::new(rx));
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<JobOutcome>();
    let mut workers = Vec::new();
    for _ in 0..concurrency.max(1) {
        let rx = rx.clone();
        let done_tx = done_tx.clone();
        let pipeline = pipeline.clone();
        let store = store.clone();
        workers.push(tokio::spawn(async move {
            loop {
                let next = rx.lock().await.recv().await;
                let Some(dir) = next else { break };
                let result = match tokio::task::spawn_blocking({
                    let dir = dir.clone();
                    move || intake::read_bundle_dir(&dir)
                })
                .await
                {
                    Ok(Ok(bundle)) => process_one(pipeline.clone(), store.clone(), bundle, today).await,
                    Ok(Err(e)) => Err(JobError::from(e)),
                    Err(e) => Err(JobError::Retry(format!("intake task failed: {e}"))),
                };
                if done_tx.send(JobOutcome { dir, result }).is_err() {
                    break;
                }
            }
        }));
    }
    drop(done_tx);
    let total = dirs.len();
    let feeder = tokio::spawn(async move {
        for d in dirs {
            if tx.send(d).await.is_err() {
                break;
            }
        }
    });
    let mut outcomes = Vec::with_capacity(total);
    while let Some(o) = done_rx.recv().await {
        on_done(&o);
        outcomes.push(o);
    }
    let _ = feeder.await;
    for w in workers {
        let _ = w.await;
    }
    outcomes
}

/// Watches `root` for new bundle directories until `stop` resolves,
/// processing each once. Already-recorded bundles are skipped by the store.
/// Recorded bundles and duplicates are counted in `metrics`.
pub async fn watch(
    root: PathBuf,
    pipeline: Arc<Pipeline>,
    store: Arc<dyn Store>,
    concurrency: usize,
    metrics: Arc<Metrics>,
    stop: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(stop);
    let mut seen: BTreeSet<PathBuf> = BTreeSet::new();
    loop {
        let fresh: Vec<PathBuf> = match bundle_dirs(&root) {
            Ok(d) => d.into_iter().filter(|p| !seen.contains(p)).collect(),
            Err(error) => {
                tracing::warn!(message = "Cannot list the intake directory.", %error);
                Vec::new()
            }
        };
        if !fresh.is_empty() {
            let today = chrono::Utc::now().date_naive();
            let outcomes = process_dirs(fresh, pipeline.clone(), store.clone(), concurrency, today, |_| {}).await;
            for o in outcomes {
                match &o.result {
                    // Temporary failures are tried again on the next scan.
                    Err(JobError::Retry(reason)) => tracing::warn!(message = "Bundle will be retried.", %reason),
                    Err(JobError::Reject(reason)) => {
                        tracing::warn!(message = "Bundle rejected.", %reason);
                        seen.insert(o.dir);
                    }
                    Ok(processed) => {
                        match processed {
                            Processed::Recorded { report, .. } => {
                                metrics.bundles_processed.get_or_create(&VerdictLabels { procedure: report.procedure.clone(), verdict: report.verdict.as_str().to_owned() }).inc();
                            }
                            Processed::AlreadyRecorded { .. } => {
                                metrics.bundles_duplicate.inc();
                            }
                        }
                        seen.insert(o.dir);
                    }
                }
            }
        }
        tokio::select! {
            _ = &mut stop => break,
            _ = tokio::time::sleep(std::time::Duration::from_secs(2)) => {}
        }
    }
}

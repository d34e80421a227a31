//! The `nachweis` binary: settings → telemetry → the chosen command.
use anyhow::Context as _;
use chrono::NaiveDate;
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use nachweis::config::Settings;
use nachweis::domain::check::RequirementVerdict;
use nachweis::intake;
use nachweis::metrics::Metrics;
use nachweis::ops::{self, OpsState, ReadyFlag, Readiness, StoreProbe};
use nachweis::queue::{amqp, local};
use nachweis::startup;
use nachweis::worker::{self, JobError, Processed};

#[derive(Parser)]
#[command(name = "nachweis", version, about = "Prüft Antragsunterlagen auf Vollständigkeit und entwirft Nachforderungsschreiben zur Prüfung durch die Sachbearbeitung.")]
struct Cli {
    /// Configuration file (TOML); environment variables NACHWEIS_* override it.
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check one bundle directory and print the verdicts; nothing is stored.
    Check {
        bundle: PathBuf,
        /// Print the report as JSON (the `check --json` contract).
        #[arg(long)]
        json: bool,
        /// The letter date (default: today), for replaying a check.
        #[arg(long)]
        today: Option<NaiveDate>,
    },
    /// Process every bundle under fixtures/bundles/ on the embedded default and show a summary.
    Demo {
        #[arg(long, default_value = "fixtures/bundles")]
        bundles: PathBuf,
    },
    /// Run the worker: consume bundles from the intake directory (or RabbitMQ) until stopped.
    Run,
    /// Create or upgrade the database schema.
    Migrate,
    /// List stored cases.
    Cases {
        #[arg(long)]
        json: bool,
    },
    /// Classify plain-text pages (one file per page) and show the evidence:
    /// for admins tuning document types in schemas/document_types.toml.
    Classify { files: Vec<PathBuf> },
    /// Work with procedure schemas.
    Schema {
        #[command(subcommand)]
        action: SchemaAction,
    },
}

#[derive(Subcommand)]
enum SchemaAction {
    /// Validate the schemas directory (or the given one).
    Validate { dir: Option<PathBuf> },
    /// List procedures, versions and tenant variants.
    List,
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    // The extraction sandbox is this same binary started as a child process;
    // it must not build a tokio runtime or read settings, so it is dispatched
    // before anything else happens.
    if args.get(1).map(String::as_str) == Some("sandbox-extract") {
        return ExitCode::from(nachweis::extract::sandbox::child_main(&args[2..]).clamp(0, 255) as u8);
    }
    let cli = Cli::parse();
    let settings = match Settings::load(cli.config.clone()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("nachweis: {e}");
            return ExitCode::from(2);
        }
    };
    let default_level = if matches!(cli.command, Command::Run) { "info" } else { "warn" };
    nachweis::telemetry::init(&settings.log_format, default_level);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("nachweis: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(run(cli.command, settings)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("nachweis: {e:#}");
            ExitCode::from(1)
        }
    }
}

async fn run(command: Command, settings: Settings) -> anyhow::Result<ExitCode> {
    match command {
        Command::Check { bundle, json, today } => check(&settings, &bundle, json, today).await,
        Command::Demo { bundles } => demo(settings, &bundles).await,
        Command::Run => run_worker(settings).await,
        Command::Migrate => {
            startup::store(&settings).await?;
            println!("Datenbank ist auf dem neuesten Stand ({}).", settings.redacted_database_url());
            Ok(ExitCode::SUCCESS)
        }
        Command::Cases { json } => {
            let store = startup::store(&settings).await?;
            let cases = store.list_cases().await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&cases)?);
            } else {
                println!("{:<18} {:<14} {:<16} {:<28} Bündel", "Fall", "Ergebnis", "Prüfstatus", "Aktualisiert");
                for c in cases {
                    println!(
                        "{:<18} {:<14} {:<16} {:<28} {}",
                        c.case_id,
                        c.verdict,
                        c.review_status,
                        c.updated_at.format("%Y-%m-%d %H:%M:%S UTC"),
                        c.bundle_ids.join(", ")
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Classify { files } => {
            let set = startup::load_schemas(&settings.schemas_dir)?;
            for f in files {
                let text = std::fs::read_to_string(&f).with_context(|| format!("cannot read {}", f.display()))?;
                let page = nachweis::domain::document::ExtractedPage {
                    number: 1,
                    text,
                    source: nachweis::domain::document::TextSource::TextLayer,
                    ocr_confidence: None,
                };
                let v = nachweis::domain::classify::classify_page(&page, &set.catalogue, None);
                let mut raw = v.raw_scores.clone();
                raw.truncate(4);
                let raw: Vec<String> = raw.iter().map(|(t, s)| format!("{t} {s:.1}")).collect();
                println!("{}: {} ({:.0} %) — {} — Rohwerte: {}", f.display(), v.doc_type, v.score * 100.0, v.evidence.join(", "), raw.join(", "));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Schema { action } => match action {
            SchemaAction::Validate { dir } => {
                let dir = dir.unwrap_or(settings.schemas_dir.clone());
                match startup::load_schemas(&dir) {
                    Ok(set) => {
                        println!(
                            "{}: gültig — Katalog {} ({} Dokumenttypen), {} Verfahren, {} Mandanten-Varianten",
                            dir.display(),
                            set.catalogue.version,
                            set.catalogue.types.len(),
                            set.procedures.len(),
                            set.overlays.len()
                        );
                        Ok(ExitCode::SUCCESS)
                    }
                    Err(e) => {
                        eprintln!("{e:#}");
                        Ok(ExitCode::from(1))
                    }
                }
            }
            SchemaAction::List => {
                let set = startup::load_schemas(&settings.schemas_dir)?;
                for s in set.procedures.values().chain(set.overlays.values()) {
                    println!(
                        "{:<6} {:<28} {:<16} {} Anforderungen  {}",
                        s.procedure.id,
                        s.version,
                        s.content_hash,
                        s.requirements.len(),
                        s.tenant.as_deref().unwrap_or("(alle Mandanten)")
                    );
                }
                Ok(ExitCode::SUCCESS)
            }
        },
    }
}

/// `nachweis run`: the worker, with `/healthz`, `/readyz` and `/metrics` on
/// `NACHWEIS_HTTP_ADDR` (port 0 picks a free port; the log says which).
/// Bundles come from RabbitMQ when `NACHWEIS_AMQP_URL` is set, else from
/// directories dropped into the intake directory.
async fn run_worker(settings: Settings) -> anyhow::Result<ExitCode> {
    // Installed first, so a SIGTERM during start-up stops cleanly.
    let signal = amqp::shutdown_signal().context("cannot install the SIGTERM/SIGINT handlers")?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        signal.await;
        let _ = stop_tx.send(true);
    });
    let stop = move || {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|stopped| *stopped).await;
        }
    };

    let metrics = Arc::new(Metrics::new());
    let pipeline = startup::metered_pipeline(&settings, metrics.clone())?;
    let consuming = ReadyFlag::default();
    let database = Arc::new(StoreProbe::new(metrics.clone()));
    let mut readiness = Readiness::new().flag("schemas", ReadyFlag::ready(), "not loaded").probe("database", database.clone());
    if settings.amqp_url.is_some() {
        readiness = readiness.flag("broker", consuming.clone(), "not connected and consuming");
    }
    let listener = ops::bind(&settings.http_addr).await?;
    let http_addr = listener.local_addr().context("cannot read the bound HTTP address")?;
    tracing::info!(message = "Operations endpoints listening.", http_addr = %http_addr);
    // The endpoints stay up until the worker has finished, so a scrape or a
    // readiness probe during the shutdown grace period still gets an answer.
    let (served_tx, served_rx) = tokio::sync::oneshot::channel::<()>();
    let router = ops::router(OpsState { metrics: metrics.clone(), readiness: Arc::new(readiness) });
    let server = tokio::spawn(ops::serve(listener, router, async move {
        let _ = served_rx.await;
    }));

    let outcome = async {
        let Some(store) = wait_for_store(&settings, stop()).await? else {
            return Ok(());
        };
        database.set_store(store.clone());
        if let Some(amqp_url) = settings.amqp_url.clone() {
            tracing::info!(message = "Worker started.", broker = %nachweis::config::redact_url(&amqp_url), prefix = %settings.amqp_prefix, database = %settings.redacted_database_url());
            let monitoring = amqp::Monitoring { metrics: metrics.clone(), consuming: consuming.clone() };
            amqp::run_until_stopped(&amqp_url, &settings, pipeline, store, monitoring, stop()).await?;
            return Ok(());
        }
        std::fs::create_dir_all(&settings.intake_dir)
            .with_context(|| format!("cannot create intake directory {}", settings.intake_dir.display()))?;
        tracing::info!(message = "Worker started.", intake_dir = %settings.intake_dir.display(), database = %settings.redacted_database_url());
        local::watch(settings.intake_dir.clone(), pipeline, store, settings.concurrency, metrics.clone(), stop()).await;
        anyhow::Ok(())
    }
    .await;
    let _ = served_tx.send(());
    match server.await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => tracing::warn!(message = "Operations endpoints stopped with an error.", %error),
        Err(error) => tracing::warn!(message = "Operations endpoints task failed.", %error),
    }
    outcome.map(|()| ExitCode::SUCCESS)
}

/// The worker waits for its database instead of exiting: after a host
/// reboot PostgreSQL may come up after the worker. A URL that names no
/// supported database fails at once; anything else is retried with backoff
/// until it works or `stop` resolves (then `None`).
async fn wait_for_store(
    settings: &Settings,
    stop: impl std::future::Future<Output = ()>,
) -> anyhow::Result<Option<Arc<dyn nachweis::store::Store>>> {
    tokio::pin!(stop);
    let mut delay = std::time::Duration::from_millis(500);
    loop {
        match startup::store(settings).await {
            Ok(store) => return Ok(Some(store)),
            Err(e) if e.downcast_ref::<nachweis::store::StoreError>().is_some_and(|s| matches!(s, nachweis::store::StoreError::UnsupportedUrl)) => {
                return Err(e);
            }
            Err(e) => {
                tracing::warn!(message = "Database not reachable yet; retrying.", error = %format!("{e:#}"), retry_in_ms = delay.as_millis() as u64);
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = &mut stop => return Ok(None),
                }
                delay = (delay * 2).min(std::time::Duration::from_secs(10));
            }
        }
    }
}

/// `nachweis check`: exit 0 with verdicts, 2 when the bundle is unusable.
async fn check(settings: &Settings, dir: &std::path::Path, json: bool, today: Option<NaiveDate>) -> anyhow::Result<ExitCode> {
    let pipeline = startup::pipeline(settings)?;
    let dir = dir.to_path_buf();
    let bundle = match tokio::task::spawn_blocking(move || intake::read_bundle_dir(&dir)).await? {
        Ok(b) => b,
        // A missing or invalid manifest, or a bundle directory that cannot
        // be read: the bundle itself is unusable (exit 2 per DESIGN §6).
        Err(e) => {
            eprintln!("nachweis: unusable bundle: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    let today = today.unwrap_or_else(|| chrono::Utc::now().date_naive());
    let reference = bundle.manifest.case_id.clone().unwrap_or_else(|| worker::new_case_id(&bundle.manifest.bundle_id));
    let p = pipeline.clone();
    let result = tokio::task::spawn_blocking(move || worker::check_bundle(&p, &bundle, &[], &reference, today)).await?;
    let report = match result {
        Ok((report, _)) => report,
        Err(JobError::Reject(reason)) => {
            eprintln!("nachweis: unusable bundle: {reason}");
            return Ok(ExitCode::from(2));
        }
        Err(e) => return Err(e.into()),
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!("Bündel {} — Verfahren {} (Schema {}) — Ergebnis: {}", report.bundle_id, report.procedure, report.schema_version, verdict_de(report.verdict.as_str()));
        println!("\nDokumente:");
        for s in &report.segments {
            println!(
                "  {:<10} S. {}–{}  {:<22} {:>4.0} %  {}",
                s.document_id,
                s.first_page,
                s.last_page,
                s.doc_type,
                s.score * 100.0,
                s.reason.clone().unwrap_or_else(|| s.evidence.iter().take(4).cloned().collect::<Vec<_>>().join(", "))
            );
        }
        println!("\nAnforderungen:");
        for f in &report.requirements {
            let child = f.child.map(|c| format!(" (Kind {})", c + 1)).unwrap_or_default();
            println!("  {:<16} {:<15} {}", format!("{}{child}", f.id), requirement_de(f.verdict), f.reason);
        }
        println!("\n{}", report.draft.text);
    }
    Ok(ExitCode::SUCCESS)
}

fn verdict_de(v: &str) -> &'static str {
    match v {
        "complete" => "vollständig",
        "incomplete" => "unvollständig",
        _ => "prüfen",
    }
}

fn requirement_de(v: RequirementVerdict) -> &'static str {
    match v {
        RequirementVerdict::Satisfied => "liegt vor",
        RequirementVerdict::Missing => "fehlt",
        RequirementVerdict::Expired => "zu alt",
        RequirementVerdict::Uncertain => "unklar",
        RequirementVerdict::NotApplicable => "nicht nötig",
    }
}

/// `nachweis demo`: every fixture bundle through the in-process queue into SQLite.
async fn demo(mut settings: Settings, bundles: &std::path::Path) -> anyhow::Result<ExitCode> {
    if std::env::var_os("NACHWEIS_DATABASE_URL").is_none() {
        settings.database_url = "sqlite://var/demo.sqlite".into();
    }
    let mut dirs = local::bundle_dirs(bundles).with_context(|| format!("cannot read {}", bundles.display()))?;
    if dirs.is_empty() {
        anyhow::bail!("no bundles (directories with manifest.json) under {}", bundles.display());
    }
    let pipeline = startup::pipeline(&settings)?;
    let store = startup::store(&settings).await?;
    // Late documents (manifests with a case_id) go after the bundles that
    // open cases, as they would arrive in real life.
    let is_late = |d: &PathBuf| {
        std::fs::read(d.join("manifest.json"))
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .is_some_and(|v| v.get("case_id").is_some_and(|c| !c.is_null()))
    };
    let late: Vec<PathBuf> = dirs.iter().filter(|d| is_late(d)).cloned().collect();
    dirs.retain(|d| !is_late(d));
    let total = dirs.len() + late.len();
    eprintln!("nachweis demo: {total} Bündel aus {} werden gelesen (Texterkennung kann einige Sekunden je Seite dauern) …", bundles.display());
    let started = std::time::Instant::now();
    let mut done = 0usize;
    let today = chrono::Utc::now().date_naive();
    let mut progress = |o: &local::JobOutcome| {
        done += 1;
        let name = o.dir.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
        eprintln!("  [{done:>2}/{total}] {name} ({:.0} s)", started.elapsed().as_secs_f64());
    };
    let mut outcomes =
        local::process_dirs(dirs, Arc::clone(&pipeline), Arc::clone(&store), settings.concurrency, today, &mut progress).await;
    outcomes.extend(local::process_dirs(late, pipeline, Arc::clone(&store), settings.concurrency, today, &mut progress).await);
    let mut rows: Vec<(String, String, String, String)> = Vec::new();
    let mut failures = 0;
    for o in outcomes {
        let name = o.dir.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
        match o.result {
            Ok(Processed::Recorded { case_id, draft_version, report }) => {
                let missing: Vec<String> = report
                    .requirements
                    .iter()
                    .filter(|f| matches!(f.verdict, RequirementVerdict::Missing | RequirementVerdict::Expired | RequirementVerdict::Uncertain))
                    .map(|f| {
                        let mark = match f.verdict {
                            RequirementVerdict::Expired => " (zu alt)",
                            RequirementVerdict::Uncertain => " (unklar)",
                            _ => "",
                        };
                        format!("{}{}{mark}", f.id, f.child.map(|c| format!("#{}", c + 1)).unwrap_or_default())
                    })
                    .collect();
                let path = worker::write_draft_file(&settings.drafts_dir, &case_id, draft_version, &report.draft.text)?;
                rows.push((name, verdict_de(report.verdict.as_str()).into(), missing.join(", "), path.display().to_string()));
            }
            Ok(Processed::AlreadyRecorded { case_id }) => {
                rows.push((name, "bereits erfasst".into(), "—".into(), format!("Fall {case_id} (siehe nachweis cases)")));
            }
            Err(e) => {
                failures += 1;
                rows.push((name, "abgewiesen".into(), e.reason(), "—".into()));
            }
        }
    }
    rows.sort();
    let w0 = rows.iter().map(|r| r.0.chars().count()).max().unwrap_or(6).max(6);
    let w2 = rows.iter().map(|r| r.2.chars().count()).max().unwrap_or(8).clamp(8, 60);
    println!("\n{:<w0$}  {:<14}  {:<w2$}  Entwurf", "Bündel", "Ergebnis", "Fehlt / prüfen");
    println!("{}", "─".repeat(w0 + w2 + 40));
    for (b, v, m, p) in &rows {
        println!("{b:<w0$}  {v:<14}  {m:<w2$}  {p}");
    }
    println!(
        "\n{} Bündel in {:.0} s verarbeitet. Ergebnisse und Entwürfe: {} (nachweis cases zeigt die Fälle), Entwurfstexte in {}/.",
        total,
        started.elapsed().as_secs_f64(),
        settings.redacted_database_url(),
        settings.drafts_dir.display()
    );
    Ok(if failures > 0 { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

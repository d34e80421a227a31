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
        /// Check with this stored schema version (e.g. uvg@2, from the
        /// database) instead of the files under schemas/.
        #[arg(long)]
        schema_version: Option<String>,
    },
    /// Process every bundle under fixtures/bundles/ on the embedded default and show a summary.
    Demo {
        #[arg(long, default_value = "fixtures/bundles")]
        bundles: PathBuf,
        /// Start the review server afterwards (default when run in a terminal).
        #[arg(long, conflicts_with = "no_serve")]
        serve: bool,
        /// Do not start the review server afterwards.
        #[arg(long)]
        no_serve: bool,
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
    /// Run the review server (caseworker pages and JSON API) on NACHWEIS_HTTP_ADDR.
    Serve,
    /// Manage local accounts of the review server.
    User {
        #[command(subcommand)]
        action: UserAction,
    },
    /// Check the audit log.
    Audit {
        #[command(subcommand)]
        action: AuditAction,
    },
}

#[derive(Subcommand)]
enum UserAction {
    /// Create an account; prints a generated password unless --password-stdin is given.
    Add {
        username: String,
        /// caseworker, admin or auditor.
        #[arg(long, default_value = "caseworker")]
        role: String,
        /// The Landkreis whose cases the account sees (default: NACHWEIS_DEFAULT_TENANT).
        #[arg(long)]
        tenant: Option<String>,
        /// The name shown in the UI and the audit log.
        #[arg(long)]
        name: Option<String>,
        /// Read the password from standard input instead of generating one.
        #[arg(long)]
        password_stdin: bool,
    },
    /// List accounts.
    List,
    /// Set a new password (generated unless --password-stdin); ends the account's sessions.
    Password {
        username: String,
        #[arg(long)]
        password_stdin: bool,
    },
    /// Disable an account and end its sessions.
    Disable { username: String },
    /// Enable a disabled account.
    Enable { username: String },
    /// Create an API token for the JSON API (shown once).
    Token {
        username: String,
        #[arg(long, default_value = "api")]
        label: String,
        /// Days until the token expires.
        #[arg(long, default_value_t = 90)]
        days: i64,
    },
}

#[derive(Subcommand)]
enum AuditAction {
    /// Recompute the hash chain; exit 0 if intact, 1 if an entry was altered or deleted.
    Verify,
}

#[derive(Subcommand)]
enum SchemaAction {
    /// Validate schema files (each in the context of the schemas directory)
    /// or whole directories; with nothing given, the schemas directory.
    Validate {
        paths: Vec<PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// Store a new version from files (a catalogue, procedures, overlays);
    /// files take the place of the active texts they stand for.
    Add {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        #[arg(long, default_value = "")]
        comment: String,
        /// Who adds it (default: $NACHWEIS_ADMIN, else $USER).
        #[arg(long)]
        author: Option<String>,
        /// Also activate what was added (for --tenant, or every tenant).
        #[arg(long)]
        activate: bool,
        #[arg(long)]
        tenant: Option<String>,
        /// Leave this tenant's overlay out of the new version (repeatable).
        #[arg(long = "without-overlay")]
        without_overlay: Vec<String>,
    },
    /// Activate a stored version: `schema activate [PROCEDURE] VERSION [--tenant T]`.
    Activate {
        #[arg(required = true, num_args = 1..=2)]
        args: Vec<String>,
        #[arg(long)]
        tenant: Option<String>,
        #[arg(long)]
        author: Option<String>,
    },
    /// List stored versions and where they are active.
    List {
        #[arg(long)]
        json: bool,
    },
    /// What changes between two versions (ids like uvg@2, or procedure files).
    Diff {
        a: String,
        b: String,
        #[arg(long)]
        json: bool,
    },
    /// Re-check stored cases with a candidate version; nothing is changed.
    Replay {
        #[arg(long)]
        version: String,
        #[arg(long)]
        procedure: Option<String>,
        #[arg(long)]
        tenant: Option<String>,
        /// Only cases whose newest bundle arrived on or after this day (YYYY-MM-DD).
        #[arg(long)]
        since: Option<NaiveDate>,
        #[arg(long)]
        json: bool,
        #[arg(long)]
        author: Option<String>,
    },
    /// Print the source texts of a stored version.
    Show { version: String },
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    // The extraction sandbox is this same binary started as a child process;
    // it must not build a tokio runtime or read settings, so it is dispatched
    // before anything else happens.
    if args.get(1).map(String::as_str) == Some("sandbox-extract") {
        return ExitCode::from(nachweis::extract::sandbox::child_main(&args[2..]).clamp(0, 255) as u8);
    }
    if args.get(1).map(String::as_str) == Some("sandbox-render") {
        return ExitCode::from(nachweis::extract::render::child_main(&args[2..]).clamp(0, 255) as u8);
    }
    let cli = Cli::parse();
    let settings = match Settings::load(cli.config.clone()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("nachweis: {e}");
            return ExitCode::from(2);
        }
    };
    let default_level = if matches!(cli.command, Command::Run | Command::Serve) { "info" } else { "warn" };
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
        Command::Check { bundle, json, today, schema_version } => check(&settings, &bundle, json, today, schema_version).await,
        Command::Demo { bundles, serve, no_serve } => {
            use std::io::IsTerminal as _;
            let then_serve = serve || (!no_serve && std::io::stdout().is_terminal());
            demo(settings, &bundles, then_serve).await
        }
        Command::Run => run_worker(settings).await,
        Command::Migrate => {
            let (_, registry) = startup::store_and_registry(&settings).await?;
            startup::seed_schemas(&settings, registry.as_ref()).await?;
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
        Command::Serve => serve(&settings).await,
        Command::User { action } => user(&settings, action).await,
        Command::Audit { action: AuditAction::Verify } => {
            let store = startup::store(&settings).await?;
            let check = store.verify_audit_chain().await?;
            if check.is_intact() {
                println!("Protokoll unversehrt: {} Einträge geprüft, die Hash-Kette ist vollständig.", check.entries);
                Ok(ExitCode::SUCCESS)
            } else {
                println!(
                    "Protokoll VERÄNDERT: Eintrag {} passt nicht in die Hash-Kette (geändert, gelöscht oder das Ende abgeschnitten); {} Einträge gelesen.",
                    check.first_broken.unwrap_or_default(),
                    check.entries
                );
                Ok(ExitCode::from(1))
            }
        }
        Command::Schema { action } => schema_command(&settings, action).await,
    }
}

fn admin_name(given: Option<String>) -> String {
    given
        .or_else(|| std::env::var("NACHWEIS_ADMIN").ok())
        .or_else(|| std::env::var("USER").ok())
        .filter(|a| !a.trim().is_empty())
        .unwrap_or_else(|| "admin".to_string())
}

fn print_diagnostics(diagnostics: &[nachweis::domain::schema::SchemaError]) {
    for d in diagnostics {
        eprintln!("{d}");
    }
}

/// `nachweis schema …`: admin operations; see `nachweis::schemas`.
async fn schema_command(settings: &Settings, action: SchemaAction) -> anyhow::Result<ExitCode> {
    use nachweis::schemas::{self, SchemaAdminError};
    let registry = || async {
        let (_, registry) = startup::store_and_registry(settings).await?;
        startup::seed_schemas(settings, registry.as_ref()).await?;
        anyhow::Ok(registry)
    };
    // An invalid schema or a refused operation is the admin's to fix: its
    // messages go to stderr and the exit code is 1, without a backtrace.
    let refused = |e: SchemaAdminError| -> anyhow::Result<ExitCode> {
        match e {
            SchemaAdminError::Invalid(d) => {
                print_diagnostics(&d);
                eprintln!("Nichts gespeichert oder aktiviert: {} Fehler.", d.iter().filter(|x| x.is_error()).count());
                Ok(ExitCode::from(1))
            }
            SchemaAdminError::Refused(m) => {
                eprintln!("nachweis: {m}");
                Ok(ExitCode::from(1))
            }
            other => Err(other.into()),
        }
    };
    match action {
        SchemaAction::Validate { paths, json } => {
            let (dirs, files): (Vec<PathBuf>, Vec<PathBuf>) = paths.into_iter().partition(|p| p.is_dir());
            let mut runs = Vec::new();
            for d in &dirs {
                runs.push((d.display().to_string(), schemas::validate(d, &[])?));
            }
            if !files.is_empty() || dirs.is_empty() {
                let label = if files.is_empty() {
                    settings.schemas_dir.display().to_string()
                } else {
                    files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>().join(", ")
                };
                runs.push((label, schemas::validate(&settings.schemas_dir, &files)?));
            }
            let valid = runs.iter().all(|(_, v)| v.valid);
            if json {
                let out: Vec<_> = runs.iter().map(|(what, v)| serde_json::json!({"checked": what, "result": v})).collect();
                println!("{}", serde_json::to_string_pretty(&out)?);
            } else {
                for (what, v) in &runs {
                    print_diagnostics(&v.diagnostics);
                    let errors = v.diagnostics.iter().filter(|d| d.is_error()).count();
                    let warnings = v.diagnostics.len() - errors;
                    if v.valid {
                        let list: Vec<String> = v.schemas.iter().map(|(p, ver)| format!("{p} {ver}")).collect();
                        println!("{what}: gültig — {} Dokumenttypen; {}; {warnings} Warnung(en)", v.document_types, list.join(", "));
                    } else {
                        println!("{what}: ungültig — {errors} Fehler, {warnings} Warnung(en)");
                    }
                }
            }
            Ok(if valid { ExitCode::SUCCESS } else { ExitCode::from(1) })
        }
        SchemaAction::Add { files, comment, author, activate, tenant, without_overlay } => {
            let registry = registry().await?;
            let author = admin_name(author);
            let files = schemas::read_files(&files)?;
            let added = match schemas::add(registry.as_ref(), files, &without_overlay, &author, &comment).await {
                Ok(a) => a,
                Err(e) => return refused(e),
            };
            for a in &added {
                print_diagnostics(&a.warnings);
                if a.new {
                    println!("Gespeichert: {} ({} {}), von {author}.", a.version_id, a.subject, a.label);
                } else {
                    println!("Unverändert: dieselben Texte sind schon als {} gespeichert.", a.version_id);
                }
                if let Some(other) = &a.label_reused_by {
                    eprintln!("Warnung: die Versionsbezeichnung {} trägt schon {other} mit anderem Inhalt; bitte [procedure] version erhöhen.", a.label);
                }
            }
            if activate {
                for a in &added {
                    if let Err(e) = schemas::activate(registry.as_ref(), &a.version_id, tenant.as_deref(), &author).await {
                        return refused(e);
                    }
                    println!("Aktiviert: {} für {}.", a.version_id, tenant.as_deref().unwrap_or("alle Mandanten ohne eigene Version"));
                }
            } else if let Some(a) = added.first() {
                println!("Noch nicht aktiv. Wirkung prüfen: nachweis schema replay --version {}; dann nachweis schema activate {}", a.version_id, a.version_id);
            }
            Ok(ExitCode::SUCCESS)
        }
        SchemaAction::Activate { args, tenant, author } => {
            let registry = registry().await?;
            let version = args.last().cloned().unwrap_or_default();
            if args.len() == 2 && !version.starts_with(&format!("{}@", args[0])) {
                eprintln!("nachweis: die Version {version} gehört nicht zum Verfahren {}.", args[0]);
                return Ok(ExitCode::from(1));
            }
            let author = admin_name(author);
            if let Err(e) = schemas::activate(registry.as_ref(), &version, tenant.as_deref(), &author).await {
                return refused(e);
            }
            println!(
                "Aktiviert: {version} für {}. Laufende Worker übernehmen sie beim nächsten Neuladen (spätestens nach {} s).",
                tenant.as_deref().unwrap_or("alle Mandanten ohne eigene Version"),
                settings.schema_reload_secs
            );
            Ok(ExitCode::SUCCESS)
        }
        SchemaAction::List { json } => {
            let registry = registry().await?;
            let listed = schemas::list(registry.as_ref()).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&listed)?);
                return Ok(ExitCode::SUCCESS);
            }
            println!("{:<16} {:<14} {:<12} {:<20} {:<26} {:<22} Kommentar", "Version", "Bezeichnung", "Hash", "Gespeichert", "Aktiv für", "Overlays");
            for l in listed {
                let v = &l.version;
                let active: Vec<String> = l.active_for.iter().map(|t| t.clone().unwrap_or_else(|| "alle".to_string())).collect();
                println!(
                    "{:<16} {:<14} {:<12} {:<20} {:<26} {:<22} {}",
                    v.version_id,
                    v.label,
                    &v.content_hash[..12.min(v.content_hash.len())],
                    format!("{} {}", v.created_at.format("%Y-%m-%d %H:%M"), v.author),
                    if active.is_empty() { "—".to_string() } else { active.join(", ") },
                    if l.overlay_tenants.is_empty() { "—".to_string() } else { l.overlay_tenants.join(", ") },
                    v.comment
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        SchemaAction::Diff { a, b, json } => {
            let registry = registry().await?;
            let diffs = match schemas::diff(registry.as_ref(), &a, &b).await {
                Ok(d) => d,
                Err(e) => return refused(e),
            };
            if json {
                println!("{}", serde_json::to_string_pretty(&diffs)?);
                return Ok(ExitCode::SUCCESS);
            }
            for d in diffs {
                println!("{}:", d.tenant.as_deref().map(|t| format!("Mandant {t}")).unwrap_or_else(|| "Basis (alle Mandanten)".to_string()));
                if d.changes.is_empty() {
                    println!("  keine Änderungen");
                }
                for c in d.changes {
                    let mark = match c.kind {
                        nachweis::domain::schema_diff::ChangeKind::Added => "+",
                        nachweis::domain::schema_diff::ChangeKind::Removed => "−",
                        nachweis::domain::schema_diff::ChangeKind::Changed => "~",
                    };
                    println!("  {mark} {}", c.text);
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        SchemaAction::Replay { version, procedure, tenant, since, json, author } => {
            let registry = registry().await?;
            let opts = schemas::ReplayOptions { version_id: version, procedure, tenant, since };
            let report = match schemas::replay(registry.as_ref(), settings, &opts, &admin_name(author)).await {
                Ok(r) => r,
                Err(e) => return refused(e),
            };
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
                return Ok(ExitCode::SUCCESS);
            }
            for c in &report.changes {
                println!("Fall {} (Bündel {}, bisher geprüft mit {}): {} → {}", c.case_id, c.bundle_id, c.old_schema_version, verdict_de(&c.old_verdict), verdict_de(&c.new_verdict));
                for r in &c.requirements {
                    let old = r.old.as_deref().map(requirement_word_de).unwrap_or("(neu)");
                    let new = r.new.as_deref().map(requirement_word_de).unwrap_or("(entfällt)");
                    println!("  {:<24} {old} → {new}: {}", r.key, r.reason);
                }
            }
            for (case, why) in &report.skipped {
                println!("Fall {case} übersprungen: {why}");
            }
            println!(
                "\nMit {}: {} Fälle geprüft, bei {} würde sich etwas ändern, bei {} das Gesamtergebnis. Kein Fall wurde verändert.",
                report.version_id, report.cases_checked, report.cases_changed, report.bundle_verdicts_changed
            );
            Ok(ExitCode::SUCCESS)
        }
        SchemaAction::Show { version } => {
            let registry = registry().await?;
            match schemas::sources_of(registry.as_ref(), &version).await {
                Ok(s) => {
                    for f in s.catalogue.iter().chain(s.procedure.iter()).chain(s.overlays.iter()) {
                        println!("# ── {} ──\n{}", f.origin, f.text);
                    }
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => refused(e),
            }
        }
    }
}

fn requirement_word_de(v: &str) -> &'static str {
    match v {
        "satisfied" => "liegt vor",
        "missing" => "fehlt",
        "expired" => "zu alt",
        "uncertain" => "unklar",
        _ => "nicht nötig",
    }
}

/// `nachweis run`: the worker, with `/healthz`, `/readyz` and `/metrics` on
/// `NACHWEIS_HTTP_ADDR` (port 0 picks a free port; the log says which).
/// Bundles come from RabbitMQ when `NACHWEIS_AMQP_URL` is set, else from
/// directories dropped into the intake directory.
async fn run_worker(settings: Settings) -> anyhow::Result<ExitCode> {
    // Installed first, so a SIGTERM during start-up stops cleanly.
    let signal = Stop::install()?;
    let stop = || signal.wait();

    let metrics = Arc::new(Metrics::new());
    let pipeline = startup::metered_pipeline(&settings, metrics.clone())?;
    let consuming = ReadyFlag::default();
    // The files are valid (checked above); the versions in force come from
    // the database's registry once it is reachable.
    let schemas_live = ReadyFlag::default();
    let database = Arc::new(StoreProbe::new(metrics.clone()));
    let mut readiness =
        Readiness::new().flag("schemas", schemas_live.clone(), "not loaded from the database yet").probe("database", database.clone());
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
        let Some((store, registry)) = wait_for_store(&settings, stop()).await? else {
            return Ok(());
        };
        database.set_store(store.clone());
        let _reloader = startup::use_registry_schemas(
            &settings,
            &pipeline,
            registry,
            Some(std::time::Duration::from_secs(settings.schema_reload_secs)),
        )
        .await?;
        schemas_live.set(true);
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
) -> anyhow::Result<Option<(Arc<dyn nachweis::store::Store>, Arc<dyn nachweis::store::SchemaRegistry>)>> {
    tokio::pin!(stop);
    let mut delay = std::time::Duration::from_millis(500);
    loop {
        match startup::store_and_registry(settings).await {
            Ok(both) => return Ok(Some(both)),
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

/// `nachweis serve`: the review server until SIGTERM/SIGINT, with the
/// operations endpoints (`/healthz`, `/readyz`, `/metrics`) beside it.
async fn serve(settings: &Settings) -> anyhow::Result<ExitCode> {
    let stop = Stop::install()?;
    let Some((store, registry)) = wait_for_store(settings, stop.wait()).await? else {
        return Ok(ExitCode::SUCCESS);
    };
    let metrics = Arc::new(Metrics::new());
    let database = Arc::new(StoreProbe::new(metrics.clone()));
    database.set_store(store.clone());
    let reload = std::time::Duration::from_secs(settings.schema_reload_secs);
    let state = startup::web_state(settings, store, registry, Some(reload)).await?;
    // `web_state` fails unless the schemas in force loaded.
    let readiness = Readiness::new().flag("schemas", ReadyFlag::ready(), "not loaded").probe("database", database);
    let ops = ops::router(OpsState { metrics: metrics.clone(), readiness: Arc::new(readiness) });
    let listener = tokio::net::TcpListener::bind(&settings.http_addr)
        .await
        .with_context(|| format!("cannot listen on {} (NACHWEIS_HTTP_ADDR)", settings.http_addr))?;
    let addr = listener.local_addr()?;
    tracing::info!(message = "Review server listening.", address = %addr, database = %settings.redacted_database_url());
    eprintln!("nachweis: Prüfoberfläche unter http://{addr}/ (Beenden mit Strg+C)");
    let app = nachweis::web::with_request_metrics(nachweis::web::app(state).merge(ops), metrics);
    nachweis::web::serve(listener, app, stop.wait()).await?;
    Ok(ExitCode::SUCCESS)
}

/// SIGTERM/SIGINT as something several parts of a command can wait for
/// (the wait for the database, the worker, the HTTP server). The handlers
/// are installed by `install`, so a signal during start-up is not lost.
struct Stop(tokio::sync::watch::Receiver<bool>);

impl Stop {
    fn install() -> anyhow::Result<Stop> {
        let signal = amqp::shutdown_signal().context("cannot install the SIGTERM/SIGINT handlers")?;
        let (tx, rx) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            signal.await;
            let _ = tx.send(true);
        });
        Ok(Stop(rx))
    }

    /// Resolves once a stop signal arrived (at once if one did before).
    fn wait(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut rx = self.0.clone();
        async move {
            let _ = rx.wait_for(|stopped| *stopped).await;
        }
    }
}

/// Reads a password from standard input (first line), or generates one.
fn password_from(stdin: bool) -> anyhow::Result<(String, bool)> {
    if stdin {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line)?;
        Ok((line.trim_end_matches(['\r', '\n']).to_string(), false))
    } else {
        Ok((nachweis::web::auth::random_password(), true))
    }
}

/// A password (read or generated) with its hash and whether it was
/// generated; `None` after telling the operator why it is refused.
fn new_password(stdin: bool) -> anyhow::Result<Option<(String, String, bool)>> {
    let (password, generated) = password_from(stdin)?;
    match nachweis::web::auth::hash_password(&password) {
        Ok(hash) => Ok(Some((password, hash, generated))),
        Err(e) => {
            eprintln!("nachweis: {e}");
            Ok(None)
        }
    }
}

/// `nachweis user …`: local accounts.
async fn user(settings: &Settings, action: UserAction) -> anyhow::Result<ExitCode> {
    use nachweis::store::review::{Role, User};
    use nachweis::web::auth;
    let store = startup::store(settings).await?;
    match action {
        UserAction::Add { username, role, tenant, name, password_stdin } => {
            let Some(role) = Role::parse(&role) else {
                eprintln!("nachweis: unbekannte Rolle {role:?} (caseworker, admin oder auditor)");
                return Ok(ExitCode::from(2));
            };
            if username.is_empty() || username.len() > 64 || !username.chars().all(|c| c.is_ascii_alphanumeric() || "._-@".contains(c)) {
                eprintln!("nachweis: Benutzernamen bestehen aus 1–64 Buchstaben, Ziffern und . _ - @");
                return Ok(ExitCode::from(2));
            }
            let Some((password, hash, generated)) = new_password(password_stdin)? else {
                return Ok(ExitCode::from(2));
            };
            let user = User {
                display_name: name.unwrap_or_else(|| username.clone()),
                username,
                tenant: tenant.unwrap_or_else(|| settings.default_tenant.clone()),
                role,
                password_hash: hash,
                disabled: false,
                created_at: chrono::Utc::now(),
            };
            match store.add_user(&user).await {
                Ok(()) => {}
                Err(nachweis::store::StoreError::Conflict(_)) => {
                    eprintln!("nachweis: das Konto {} gibt es schon", user.username);
                    return Ok(ExitCode::from(2));
                }
                Err(e) => return Err(e.into()),
            }
            store.append_audit("admin-cli", "user_added", None, serde_json::json!({"username": user.username, "role": role.as_str(), "tenant": user.tenant}), None).await?;
            println!("Konto {} angelegt ({}, {}).", user.username, role.label_de(), user.tenant);
            if generated {
                println!("Passwort: {password}");
            }
        }
        UserAction::List => {
            println!("{:<24} {:<22} {:<24} {}", "Konto", "Rolle", "Mandant", "Status");
            for u in store.list_users().await? {
                println!("{:<24} {:<22} {:<24} {}", u.username, u.role.label_de(), u.tenant, if u.disabled { "gesperrt" } else { "aktiv" });
            }
        }
        UserAction::Password { username, password_stdin } => {
            let Some((password, hash, generated)) = new_password(password_stdin)? else {
                return Ok(ExitCode::from(2));
            };
            store.set_password(&username, &hash).await?;
            store.append_audit("admin-cli", "password_set", None, serde_json::json!({"username": username}), None).await?;
            println!("Neues Passwort für {username} gesetzt; bestehende Sitzungen sind beendet.");
            if generated {
                println!("Passwort: {password}");
            }
        }
        UserAction::Disable { username } => {
            store.set_disabled(&username, true).await?;
            store.append_audit("admin-cli", "user_disabled", None, serde_json::json!({"username": username}), None).await?;
            println!("Konto {username} gesperrt; seine Sitzungen sind beendet.");
        }
        UserAction::Enable { username } => {
            store.set_disabled(&username, false).await?;
            store.append_audit("admin-cli", "user_enabled", None, serde_json::json!({"username": username}), None).await?;
            println!("Konto {username} wieder freigeschaltet.");
        }
        UserAction::Token { username, label, days } => {
            let Some(user) = store.user(&username).await? else {
                eprintln!("nachweis: kein Konto {username}");
                return Ok(ExitCode::from(2));
            };
            let token = auth::create_api_token(store.as_ref(), &user, &label, days.clamp(1, 3650)).await?;
            println!("API-Token für {username} ({label}, gültig {days} Tage) – wird nur jetzt angezeigt:\n{token}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `nachweis check`: exit 0 with verdicts, 2 when the bundle is unusable.
async fn check(
    settings: &Settings,
    dir: &std::path::Path,
    json: bool,
    today: Option<NaiveDate>,
    schema_version: Option<String>,
) -> anyhow::Result<ExitCode> {
    let pipeline = match schema_version {
        None => startup::pipeline(settings)?,
        Some(v) => {
            let (_, registry) = startup::store_and_registry(settings).await?;
            startup::seed_schemas(settings, registry.as_ref()).await?;
            let set = match nachweis::schemas::set_for_version(registry.as_ref(), &v).await {
                Ok(set) => set,
                Err(nachweis::schemas::SchemaAdminError::Refused(m)) => {
                    eprintln!("nachweis: {m}");
                    return Ok(ExitCode::from(1));
                }
                Err(e) => return Err(e.into()),
            };
            Arc::new(worker::Pipeline { schemas: set.into(), extractor: startup::extractor(settings)?, settings: settings.clone() })
        }
    };
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
            let child = match (f.child, f.person) {
                (Some(c), _) => format!(" (Kind {})", c + 1),
                (None, Some(p)) => format!(" (Person {})", p + 1),
                _ => String::new(),
            };
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
async fn demo(mut settings: Settings, bundles: &std::path::Path, then_serve: bool) -> anyhow::Result<ExitCode> {
    if std::env::var_os("NACHWEIS_DATABASE_URL").is_none() {
        settings.database_url = "sqlite://var/demo.sqlite".into();
    }
    let mut dirs = local::bundle_dirs(bundles).with_context(|| format!("cannot read {}", bundles.display()))?;
    if dirs.is_empty() {
        anyhow::bail!("no bundles (directories with manifest.json) under {}", bundles.display());
    }
    let pipeline = startup::pipeline(&settings)?;
    let (store, registry) = startup::store_and_registry(&settings).await?;
    startup::use_registry_schemas(&settings, &pipeline, registry, None).await?;
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
                        // Per child or per person (Wohngeld's household): the 1-based index.
                        format!("{}{}{mark}", f.id, f.child.or(f.person).map(|c| format!("#{}", c + 1)).unwrap_or_default())
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
    let accounts = demo_accounts(store.as_ref(), &settings).await?;
    println!("\nDemo-Konten für die Prüfoberfläche (neu bei jedem Demo-Lauf):");
    for (name, role, tenant, password) in &accounts {
        println!("  {name:<30} {role:<20} {tenant:<20} Passwort: {password}");
    }
    if failures > 0 {
        return Ok(ExitCode::from(1));
    }
    if then_serve {
        println!("\nDie Prüfoberfläche startet jetzt unter http://{}/ – melden Sie sich mit einem der Konten an.", settings.http_addr);
        return serve(&settings).await;
    }
    println!(
        "\nPrüfoberfläche starten: NACHWEIS_DATABASE_URL={} cargo run -- serve  (dann http://{}/ öffnen)",
        settings.database_url, settings.http_addr
    );
    Ok(ExitCode::SUCCESS)
}

/// Creates the demo's accounts with fresh passwords: a caseworker of the
/// default tenant and of one other Landkreis (to show that each sees only
/// its own cases), an administrator and an auditor.
async fn demo_accounts(store: &dyn nachweis::store::Store, settings: &Settings) -> anyhow::Result<Vec<(String, &'static str, String, String)>> {
    use nachweis::store::review::{Role, User};
    let accounts = [
        ("sachbearbeitung", "Sina Sachbearbeiterin", Role::Caseworker, settings.default_tenant.clone()),
        ("sachbearbeitung-beispielburg", "Bodo Beispielburg", Role::Caseworker, "stadt-beispielburg".to_string()),
        ("verwaltung", "Vera Verwaltung", Role::Admin, settings.default_tenant.clone()),
        ("pruefung", "Paul Prüfer", Role::Auditor, settings.default_tenant.clone()),
    ];
    let mut out = Vec::new();
    for (username, display, role, tenant) in accounts {
        let password = nachweis::web::auth::random_password();
        let hash = nachweis::web::auth::hash_password(&password).map_err(|e| anyhow::anyhow!("{e}"))?;
        let user = User { username: username.into(), display_name: display.into(), tenant: tenant.clone(), role, password_hash: hash, disabled: false, created_at: chrono::Utc::now() };
        match store.add_user(&user).await {
            Ok(()) => {}
            // A demo database kept from an earlier run: give the account a new password.
            Err(nachweis::store::StoreError::Conflict(_)) => store.set_password(username, &user.password_hash).await?,
            Err(e) => return Err(e.into()),
        }
        out.push((username.to_string(), role.label_de(), tenant, password));
    }
    Ok(out)
}

//! Start-up: turns `Settings` into running parts — the schema set read from
//! `schemas/`, the store, the sandboxed extractor — and fails early, with
//! the file and line, when any of them is broken.
use anyhow::Context as _;
use std::path::Path;
use std::sync::Arc;

use crate::config::Settings;
use crate::domain::schema::{SchemaError, SchemaSet};
use crate::schemas::SchemaSources;
use crate::store::SchemaRegistry;
use crate::extract::Extractor;
use crate::extract::sandbox::{Limits, SandboxExtractor};
use crate::metrics::{Metrics, MeteredExtractor};
use crate::store::Store;
use crate::worker::Pipeline;

/// Reads and validates every schema under `dir`:
/// `document_types.toml`, `procedures/*.toml`, `overlays/<tenant>/*.toml`.
/// Warnings are logged; any error stops start-up with all of them listed.
pub fn load_schemas(dir: &Path) -> anyhow::Result<SchemaSet> {
    let sources = SchemaSources::read_dir(dir)?;
    let set = sources.build().map_err(|errors| {
        let lines: Vec<String> = errors.iter().map(SchemaError::to_string).collect();
        anyhow::anyhow!("invalid schemas:\n  {}", lines.join("\n  "))
    })?;
    for w in &set.warnings {
        tracing::warn!(message = "Schema warning.", warning = %w);
    }
    Ok(set)
}

/// The extractor: this binary started as a sandboxed child per document.
pub fn extractor(settings: &Settings) -> anyhow::Result<Arc<dyn Extractor>> {
    let program = std::env::current_exe().context("cannot find the nachweis executable for the extraction sandbox")?;
    let limits = Limits { timeout: std::time::Duration::from_secs(settings.extract_timeout_secs), ..Limits::default() };
    Ok(Arc::new(SandboxExtractor::new(program, limits)))
}

/// The pipeline: schemas plus extractor.
pub fn pipeline(settings: &Settings) -> anyhow::Result<Arc<Pipeline>> {
    let schemas = load_schemas(&settings.schemas_dir)?;
    Ok(Arc::new(Pipeline { schemas: schemas.into(), extractor: extractor(settings)?, settings: settings.clone() }))
}

/// The pipeline of `nachweis run`: as `pipeline`, with extraction counted
/// in `metrics` (pages by text source, failures by kind, time taken).
pub fn metered_pipeline(settings: &Settings, metrics: Arc<Metrics>) -> anyhow::Result<Arc<Pipeline>> {
    let schemas = load_schemas(&settings.schemas_dir)?;
    let extractor: Arc<dyn Extractor> = Arc::new(MeteredExtractor::new(extractor(settings)?, metrics));
    Ok(Arc::new(Pipeline { schemas: schemas.into(), extractor, settings: settings.clone() }))
}

/// Opens (creating if needed) and migrates the store.
pub async fn store(settings: &Settings) -> anyhow::Result<Arc<dyn Store>> {
    if let Some(path) = settings.database_url.strip_prefix("sqlite://") {
        // The embedded default lives under var/; make sure the directory exists.
        let file = path.split('?').next().unwrap_or(path);
        if let Some(parent) = Path::new(file).parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
        }
    }
    crate::store::connect(&settings.database_url)
        .await
        .with_context(|| format!("cannot open the database {}", settings.redacted_database_url()))
}

/// The review server's shared state: the review service with the schemas
/// in force (the registry's active versions, reloaded like the worker's
/// when `reload_every` is given) and the letter renderer (fonts are loaded
/// once, here), and the sandboxed page renderer for page images.
pub async fn web_state(
    settings: &Settings,
    store: Arc<dyn Store>,
    registry: Arc<dyn SchemaRegistry>,
    reload_every: Option<std::time::Duration>,
) -> anyhow::Result<Arc<crate::web::AppState>> {
    let schemas: crate::schemas::LiveSchemas = load_schemas(&settings.schemas_dir)?.into();
    // The reloader runs for the server's lifetime; it ends with the runtime.
    let _reloader = live_schemas_from_registry(settings, &schemas, Arc::clone(&registry), reload_every).await?;
    let fonts = fonts(settings)?;
    let settings = Arc::new(settings.clone());
    let review = Arc::new(crate::review::Review {
        store: Arc::clone(&store),
        schemas,
        settings: Arc::clone(&settings),
        letters: Arc::new(crate::letter::PdfLetters { fonts }),
    });
    let renderer = page_renderer()?;
    let pages: Arc<dyn crate::web::PageImages> = Arc::new(crate::web::page_images::HighlightedPages::new(renderer));
    Ok(Arc::new(crate::web::AppState { store, registry, review, settings, pages: Some(pages) }))
}

/// The letter fonts from `fonts_dir`, read and checked once at start-up
/// (a missing or incomplete font fails here, not at the first approval).
pub fn fonts(settings: &Settings) -> anyhow::Result<crate::letter::Fonts> {
    Ok(crate::letter::Fonts::load(&settings.fonts_dir)?)
}

/// The case view's page renderer: this binary started as a sandboxed
/// child (`sandbox-render`) per page.
pub fn page_renderer() -> anyhow::Result<crate::extract::PageRenderer> {
    let program = std::env::current_exe().context("cannot find the nachweis executable for the rendering sandbox")?;
    Ok(crate::extract::PageRenderer::new(program, crate::extract::PageRenderer::default_limits()))
}

/// Opens the store and its schema registry over one pool, migrated.
pub async fn store_and_registry(settings: &Settings) -> anyhow::Result<(Arc<dyn Store>, Arc<dyn SchemaRegistry>)> {
    if let Some(path) = settings.database_url.strip_prefix("sqlite://") {
        let file = path.split('?').next().unwrap_or(path);
        if let Some(parent) = Path::new(file).parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
        }
    }
    crate::store::connect_with_registry(&settings.database_url)
        .await
        .with_context(|| format!("cannot open the database {}", settings.redacted_database_url()))
}

/// Stores the shipped schemas as first versions where the database has none
/// (see `schemas::seed`) and logs what it added.
pub async fn seed_schemas(settings: &Settings, registry: &dyn SchemaRegistry) -> anyhow::Result<()> {
    let sources = SchemaSources::read_dir(&settings.schemas_dir)?;
    let added = crate::schemas::seed(registry, &sources).await?;
    if !added.is_empty() {
        tracing::info!(message = "Shipped schemas stored as first versions.", versions = %added.join(", "));
    }
    Ok(())
}

/// Makes the pipeline check with the registry's active versions: seeds the
/// shipped files where the database has none, loads the active versions
/// once (the files validated at start-up serve until then and whenever a
/// version is refused), and with `reload_every` starts the periodic reload.
pub async fn use_registry_schemas(
    settings: &Settings,
    pipeline: &Pipeline,
    registry: Arc<dyn SchemaRegistry>,
    reload_every: Option<std::time::Duration>,
) -> anyhow::Result<Option<tokio::task::JoinHandle<()>>> {
    live_schemas_from_registry(settings, &pipeline.schemas, registry, reload_every).await
}

/// `use_registry_schemas` for any holder of live schemas (the worker's
/// pipeline, the review server's service).
pub async fn live_schemas_from_registry(
    settings: &Settings,
    live: &crate::schemas::LiveSchemas,
    registry: Arc<dyn SchemaRegistry>,
    reload_every: Option<std::time::Duration>,
) -> anyhow::Result<Option<tokio::task::JoinHandle<()>>> {
    seed_schemas(settings, registry.as_ref()).await?;
    let status = crate::schemas::reload(live, registry.as_ref()).await?;
    tracing::info!(message = "Schemas from the registry.", serving = %status.serving.join(", "), refused = status.refused.len());
    Ok(reload_every.map(|every| crate::schemas::spawn_reloader(live.clone(), registry, every)))
}

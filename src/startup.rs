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
    seed_schemas(settings, registry.as_ref()).await?;
    let status = crate::schemas::reload(&pipeline.schemas, registry.as_ref()).await?;
    tracing::info!(message = "Schemas from the registry.", serving = %status.serving.join(", "), refused = status.refused.len());
    Ok(reload_every.map(|every| crate::schemas::spawn_reloader(pipeline.schemas.clone(), registry, every)))
}

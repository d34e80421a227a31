//! Start-up: turns `Settings` into running parts — the schema set read from
//! `schemas/`, the store, the sandboxed extractor — and fails early, with
//! the file and line, when any of them is broken.
use anyhow::Context as _;
use std::path::Path;
use std::sync::Arc;

use crate::config::Settings;
use crate::domain::schema::{SchemaError, SchemaSet, SourceFile};
use crate::extract::Extractor;
use crate::extract::sandbox::{Limits, SandboxExtractor};
use crate::metrics::{Metrics, MeteredExtractor};
use crate::store::Store;
use crate::worker::Pipeline;

fn read(path: &Path) -> anyhow::Result<SourceFile> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(SourceFile { origin: path.display().to_string(), text })
}

fn toml_files(dir: &Path) -> anyhow::Result<Vec<std::path::PathBuf>> {
    let mut out = Vec::new();
    if dir.is_dir() {
        for e in std::fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))? {
            let p = e?.path();
            if p.extension().is_some_and(|x| x == "toml") {
                out.push(p);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Reads and validates every schema under `dir`:
/// `document_types.toml`, `procedures/*.toml`, `overlays/<tenant>/*.toml`.
pub fn load_schemas(dir: &Path) -> anyhow::Result<SchemaSet> {
    let catalogue = read(&dir.join("document_types.toml"))?;
    let procedures = toml_files(&dir.join("procedures"))?.iter().map(|p| read(p)).collect::<anyhow::Result<Vec<_>>>()?;
    let mut overlays = Vec::new();
    let overlay_root = dir.join("overlays");
    if overlay_root.is_dir() {
        let mut tenants: Vec<_> = std::fs::read_dir(&overlay_root)?.filter_map(|e| e.ok()).map(|e| e.path()).filter(|p| p.is_dir()).collect();
        tenants.sort();
        for t in tenants {
            for p in toml_files(&t)? {
                overlays.push(read(&p)?);
            }
        }
    }
    SchemaSet::build(&catalogue, &procedures, &overlays).map_err(|errors| {
        let lines: Vec<String> = errors.iter().map(SchemaError::to_string).collect();
        anyhow::anyhow!("invalid schemas:\n  {}", lines.join("\n  "))
    })
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
    Ok(Arc::new(Pipeline { schemas, extractor: extractor(settings)?, settings: settings.clone() }))
}

/// The pipeline of `nachweis run`: as `pipeline`, with extraction counted
/// in `metrics` (pages by text source, failures by kind, time taken).
pub fn metered_pipeline(settings: &Settings, metrics: Arc<Metrics>) -> anyhow::Result<Arc<Pipeline>> {
    let schemas = load_schemas(&settings.schemas_dir)?;
    let extractor: Arc<dyn Extractor> = Arc::new(MeteredExtractor::new(extractor(settings)?, metrics));
    Ok(Arc::new(Pipeline { schemas, extractor, settings: settings.clone() }))
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

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

/// The review server's shared state: the review service with its schemas
/// and letter renderer (fonts are loaded once, here), and the sandboxed page
/// renderer for page images.
pub fn web_state(settings: &Settings, store: Arc<dyn Store>) -> anyhow::Result<Arc<crate::web::AppState>> {
    let schemas = Arc::new(load_schemas(&settings.schemas_dir)?);
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
    Ok(Arc::new(crate::web::AppState { store, review, settings, pages: Some(pages) }))
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

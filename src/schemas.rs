//! Admin operations on procedure schemas, for the CLI and the review web
//! server alike: validate files, add versions, activate them per tenant,
//! list, diff, replay stored cases with a candidate, and keep a running
//! worker's schemas current (`LiveSchemas`) without ever serving a broken one.
//!
//! Every function returns structured results; printing is the caller's.
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use crate::config::Settings;
use crate::domain::bundle::Manifest;
use crate::domain::catalogue::Catalogue;
use crate::domain::document::ExtractedDocument;
use crate::domain::replay::{CaseChange, compare};
use crate::domain::schema::{FileKind, ProcedureSchema, SchemaError, SchemaSet, SourceFile, file_kind, overlay_target, procedure_id};
use crate::domain::schema_diff::{Change, ChangeKind, diff as diff_schemas};
use crate::domain::{self, Context};
use crate::store::StoreError;
use crate::store::schema_registry::{AddOutcome, CATALOGUE_SUBJECT, NewSchemaVersion, SchemaRegistry, SchemaVersion};

/// Why an admin operation did not happen.
#[derive(Debug, thiserror::Error)]
pub enum SchemaAdminError {
    /// The schema texts are invalid; every error (and warning) found.
    #[error("ungültiges Schema:\n  {}", .0.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n  "))]
    Invalid(Vec<SchemaError>),
    // `error`, not `source`: the io error is part of this message, and as a
    // `source` it would be printed a second time by the error chain.
    #[error("{path}: kann nicht gelesen werden: {error} (Schema-Ordner: NACHWEIS_SCHEMAS_DIR oder schemas_dir in der Konfiguration)")]
    Read { path: PathBuf, error: std::io::Error },
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The operation makes no sense as asked (German, for the admin).
    #[error("{0}")]
    Refused(String),
}

fn refused(m: impl Into<String>) -> SchemaAdminError {
    SchemaAdminError::Refused(m.into())
}

/// The texts one stored version consists of: a procedure with its tenant
/// overlays, or the catalogue.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionSources {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub catalogue: Option<SourceFile>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub procedure: Option<SourceFile>,
    #[serde(default)]
    pub overlays: Vec<SourceFile>,
}

impl VersionSources {
    /// SHA-256 of the texts (not the file names): the same texts are the
    /// same version wherever they were read from.
    pub fn content_hash(&self) -> String {
        let mut h = Sha256::new();
        for (tag, f) in [("catalogue", &self.catalogue), ("procedure", &self.procedure)] {
            if let Some(f) = f {
                h.update(tag.as_bytes());
                h.update([0]);
                h.update(f.text.as_bytes());
                h.update([0]);
            }
        }
        let mut overlays: Vec<&SourceFile> = self.overlays.iter().collect();
        overlays.sort_by_key(|o| overlay_target(&o.text));
        for o in overlays {
            h.update(b"overlay\0");
            h.update(o.text.as_bytes());
            h.update([0]);
        }
        hex::encode(h.finalize())
    }

    fn from_json(v: &SchemaVersion) -> Result<VersionSources, SchemaAdminError> {
        serde_json::from_value(v.sources.clone())
            .map_err(|e| refused(format!("Version {} ist nicht lesbar gespeichert: {e}", v.version_id)))
    }
}

/// Every schema file of a directory (or of the active versions).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaSources {
    pub catalogue: SourceFile,
    pub procedures: Vec<SourceFile>,
    pub overlays: Vec<SourceFile>,
}

fn read(path: &Path) -> Result<SourceFile, SchemaAdminError> {
    let text = std::fs::read_to_string(path).map_err(|error| SchemaAdminError::Read { path: path.to_path_buf(), error })?;
    Ok(SourceFile { origin: path.display().to_string(), text })
}

fn toml_files(dir: &Path) -> Result<Vec<PathBuf>, SchemaAdminError> {
    let mut out = Vec::new();
    if dir.is_dir() {
        let entries = std::fs::read_dir(dir).map_err(|error| SchemaAdminError::Read { path: dir.to_path_buf(), error })?;
        for e in entries.flatten() {
            let p = e.path();
            if p.extension().is_some_and(|x| x == "toml") {
                out.push(p);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Reads the given files.
pub fn read_files(paths: &[PathBuf]) -> Result<Vec<SourceFile>, SchemaAdminError> {
    paths.iter().map(|p| read(p)).collect()
}

impl SchemaSources {
    /// `document_types.toml`, `procedures/*.toml`, `overlays/<tenant>/*.toml`.
    pub fn read_dir(dir: &Path) -> Result<SchemaSources, SchemaAdminError> {
        let catalogue = read(&dir.join("document_types.toml"))?;
        let procedures = toml_files(&dir.join("procedures"))?.iter().map(|p| read(p)).collect::<Result<Vec<_>, _>>()?;
        let mut overlays = Vec::new();
        let root = dir.join("overlays");
        if root.is_dir() {
            let entries = std::fs::read_dir(&root).map_err(|error| SchemaAdminError::Read { path: root.clone(), error })?;
            let mut tenants: Vec<PathBuf> = entries.flatten().map(|e| e.path()).filter(|p| p.is_dir()).collect();
            tenants.sort();
            for t in tenants {
                for p in toml_files(&t)? {
                    overlays.push(read(&p)?);
                }
            }
        }
        Ok(SchemaSources { catalogue, procedures, overlays })
    }

    /// Puts `files` in place of the files they stand for (the catalogue, the
    /// procedure with the same id, the overlay for the same procedure and
    /// tenant), or beside them. A file that is none of the three is an error.
    pub fn replace_with(&mut self, files: Vec<SourceFile>) -> Vec<SchemaError> {
        let mut errors = Vec::new();
        for f in files {
            match file_kind(&f.text) {
                Some(FileKind::Catalogue) => self.catalogue = f,
                Some(FileKind::Procedure) => {
                    let id = procedure_id(&f.text);
                    self.procedures.retain(|p| procedure_id(&p.text) != id || id.is_none());
                    self.procedures.push(f);
                }
                Some(FileKind::Overlay) => {
                    let target = overlay_target(&f.text);
                    self.overlays.retain(|o| overlay_target(&o.text) != target || target.is_none());
                    self.overlays.push(f);
                }
                None => errors.extend(unknown_kind(&f)),
            }
        }
        errors
    }

    pub fn build(&self) -> Result<SchemaSet, Vec<SchemaError>> {
        SchemaSet::build(&self.catalogue, &self.procedures, &self.overlays)
    }

    /// The sources of one procedure as a version stores them.
    fn version_sources(&self, procedure: &str) -> Option<VersionSources> {
        let p = self.procedures.iter().find(|p| procedure_id(&p.text).as_deref() == Some(procedure))?;
        let overlays = self.overlays.iter().filter(|o| overlay_target(&o.text).is_some_and(|(q, _)| q == procedure)).cloned().collect();
        Some(VersionSources { catalogue: None, procedure: Some(p.clone()), overlays })
    }
}

/// Why a file is none of the three kinds: its TOML syntax errors with
/// their positions, or, for readable TOML, that the table saying what it is
/// is missing.
fn unknown_kind(f: &SourceFile) -> Vec<SchemaError> {
    let (_, _, syntax) = crate::domain::diagnostics::SourceMap::parse(&f.origin, &f.text);
    if !syntax.is_empty() {
        return syntax;
    }
    vec![SchemaError {
        line: 1,
        column: 1,
        ..SchemaError::invalid(
            &f.origin,
            "Die Datei ist weder ein Dokumentkatalog ([catalogue]) noch ein Verfahren ([procedure]) noch ein Overlay ([overlay]).",
        )
    }]
}

/// The outcome of `validate`: every error and warning, and what the set
/// holds when it is valid.
#[derive(Debug, Clone, Serialize)]
pub struct Validation {
    pub valid: bool,
    pub diagnostics: Vec<SchemaError>,
    /// (procedure or `procedure+tenant`, schema version) when valid.
    pub schemas: Vec<(String, String)>,
    pub document_types: usize,
}

/// Validates files in the context of the schemas directory `dir` (the
/// files take the place of the ones they stand for); with no files, the
/// directory as it is.
pub fn validate(dir: &Path, files: &[PathBuf]) -> Result<Validation, SchemaAdminError> {
    validate_files(dir, read_files(files)?)
}

/// `validate` for texts already in memory (an upload in the web server).
pub fn validate_files(dir: &Path, files: Vec<SourceFile>) -> Result<Validation, SchemaAdminError> {
    let mut sources = SchemaSources::read_dir(dir)?;
    let mut diagnostics = sources.replace_with(files);
    let built = sources.build();
    let (set, found) = match built {
        Ok(set) => {
            let w = set.warnings.clone();
            (Some(set), w)
        }
        Err(e) => (None, e),
    };
    diagnostics.extend(found);
    diagnostics.sort_by(|a, b| (&a.origin, a.line, a.column).cmp(&(&b.origin, b.line, b.column)));
    let valid = set.is_some() && !diagnostics.iter().any(SchemaError::is_error);
    let schemas = set
        .as_ref()
        .map(|s| {
            s.procedures
                .values()
                .chain(s.overlays.values())
                .map(|p| (p.tenant.as_ref().map(|t| format!("{}+{t}", p.procedure.id)).unwrap_or_else(|| p.procedure.id.clone()), p.version.clone()))
                .collect()
        })
        .unwrap_or_default();
    Ok(Validation { valid, diagnostics, schemas, document_types: set.map(|s| s.catalogue.types.len()).unwrap_or(0) })
}

/// What the registry serves now: the active catalogue version and, per
/// procedure, the default version and the tenants' own.
#[derive(Debug, Clone)]
struct Active {
    catalogue: Option<SchemaVersion>,
    /// procedure → default version.
    defaults: BTreeMap<String, SchemaVersion>,
    /// (procedure, tenant) → the tenant's own version.
    tenants: BTreeMap<(String, String), SchemaVersion>,
}

async fn active(reg: &dyn SchemaRegistry) -> Result<Active, SchemaAdminError> {
    let activations = reg.activations().await?;
    let mut a = Active { catalogue: None, defaults: BTreeMap::new(), tenants: BTreeMap::new() };
    for act in activations {
        let Some(v) = reg.version(&act.version_id).await? else { continue };
        match (act.subject.as_str(), act.tenant) {
            (CATALOGUE_SUBJECT, _) => a.catalogue = Some(v),
            (p, None) => {
                a.defaults.insert(p.to_string(), v);
            }
            (p, Some(t)) => {
                a.tenants.insert((p.to_string(), t), v);
            }
        }
    }
    Ok(a)
}

fn catalogue_source(v: &SchemaVersion) -> Result<SourceFile, SchemaAdminError> {
    VersionSources::from_json(v)?.catalogue.ok_or_else(|| refused(format!("{} enthält keinen Dokumentkatalog", v.version_id)))
}

/// Builds one procedure version (base plus its overlays) against a catalogue.
fn build_version(catalogue: &SourceFile, v: &SchemaVersion) -> Result<SchemaSet, Vec<SchemaError>> {
    let s = VersionSources::from_json(v).map_err(|e| vec![SchemaError::invalid(&v.version_id, &e.to_string())])?;
    let procedures: Vec<SourceFile> = s.procedure.into_iter().collect();
    SchemaSet::build(catalogue, &procedures, &s.overlays)
}

/// The schema of a version as one tenant sees it: the base with that
/// tenant's overlay when the version has one.
fn tenant_view(set: &SchemaSet, procedure: &str, tenant: Option<&str>) -> Option<ProcedureSchema> {
    set.for_bundle(procedure, tenant).cloned()
}

/// Stores the shipped schema files as first versions where the database has
/// none yet (the catalogue, and each procedure with its overlays) and
/// activates them for every tenant. Returns the version ids it added.
/// Files for a procedure the database already has are left alone: a newer
/// shipped file becomes active only through `schema add` (an admin decides).
pub async fn seed(reg: &dyn SchemaRegistry, sources: &SchemaSources) -> Result<Vec<String>, SchemaAdminError> {
    let mut added = Vec::new();
    let have = reg.versions(None).await?;
    let comment = "Mitgelieferte Fassung aus schemas/";
    if !have.iter().any(|v| v.subject == CATALOGUE_SUBJECT) {
        let s = VersionSources { catalogue: Some(sources.catalogue.clone()), ..Default::default() };
        let label = Catalogue::from_toml(&sources.catalogue.text, &sources.catalogue.origin)
            .map_err(|e| SchemaAdminError::Invalid(vec![e]))?
            .version;
        let v = store_version(reg, CATALOGUE_SUBJECT, &label, &s, "system", comment).await?;
        reg.activate(&v.version().version_id, None, "system").await?;
        added.push(v.version().version_id.clone());
    }
    let set = sources.build().map_err(SchemaAdminError::Invalid)?;
    for (id, schema) in &set.procedures {
        if have.iter().any(|v| &v.subject == id) {
            continue;
        }
        let Some(s) = sources.version_sources(id) else { continue };
        let v = store_version(reg, id, &schema.procedure.version, &s, "system", comment).await?;
        if !reg.activations().await?.iter().any(|a| &a.subject == id && a.tenant.is_none()) {
            reg.activate(&v.version().version_id, None, "system").await?;
        }
        added.push(v.version().version_id.clone());
    }
    Ok(added)
}

async fn store_version(
    reg: &dyn SchemaRegistry,
    subject: &str,
    label: &str,
    s: &VersionSources,
    author: &str,
    comment: &str,
) -> Result<AddOutcome, SchemaAdminError> {
    let new = NewSchemaVersion {
        subject: subject.to_string(),
        label: label.to_string(),
        content_hash: s.content_hash(),
        sources: serde_json::to_value(s).map_err(|e| refused(e.to_string()))?,
        author: author.to_string(),
        comment: comment.to_string(),
    };
    Ok(reg.add_version(&new).await?)
}

/// One version `add` stored (or found stored).
#[derive(Debug, Clone, Serialize)]
pub struct AddedVersion {
    pub version_id: String,
    pub subject: String,
    pub label: String,
    /// False when the same texts were stored before (nothing new stored).
    pub new: bool,
    /// Another stored version of the subject already carries this label.
    pub label_reused_by: Option<String>,
    pub warnings: Vec<SchemaError>,
}

/// A version `add` would store: the subject, its label, the texts (the
/// files put in place of the active texts they stand for) and warnings.
#[derive(Debug, Clone, Serialize)]
pub struct PlannedVersion {
    pub subject: String,
    pub label: String,
    pub sources: VersionSources,
    pub warnings: Vec<SchemaError>,
}

/// Validates files against what is active, as `add` does, without storing
/// anything: the versions `add` would store, or every error. For a web
/// upload's "check" step.
/// `without_overlays` names tenants whose overlays the new versions drop
/// (an overlay the base has caught up with, a tenant that left).
pub async fn plan(reg: &dyn SchemaRegistry, files: Vec<SourceFile>, without_overlays: &[String]) -> Result<Vec<PlannedVersion>, SchemaAdminError> {
    if files.is_empty() {
        return Err(refused("Keine Datei angegeben."));
    }
    let act = active(reg).await?;
    let mut catalogue = match &act.catalogue {
        Some(v) => catalogue_source(v)?,
        None => return Err(refused("Die Datenbank hat noch keinen aktiven Dokumentkatalog; zuerst nachweis migrate bzw. den Worker einmal starten (er legt die mitgelieferten Schemas an).")),
    };
    let mut catalogue_given = false;
    let mut bases: BTreeMap<String, VersionSources> = BTreeMap::new();
    let mut errors = Vec::new();
    for f in files {
        match file_kind(&f.text) {
            Some(FileKind::Catalogue) => {
                catalogue = f;
                catalogue_given = true;
            }
            Some(FileKind::Procedure) => {
                let Some(id) = procedure_id(&f.text) else {
                    errors.push(SchemaError::invalid(&f.origin, "[procedure] braucht eine id."));
                    continue;
                };
                let entry = bases.entry(id.clone()).or_insert_with(|| act.defaults.get(&id).and_then(|v| VersionSources::from_json(v).ok()).unwrap_or_default());
                entry.procedure = Some(f);
            }
            Some(FileKind::Overlay) => {
                let Some((p, t)) = overlay_target(&f.text) else {
                    errors.push(SchemaError::invalid(&f.origin, "[overlay] braucht procedure und tenant."));
                    continue;
                };
                let entry = bases.entry(p.clone()).or_insert_with(|| act.defaults.get(&p).and_then(|v| VersionSources::from_json(v).ok()).unwrap_or_default());
                entry.overlays.retain(|o| overlay_target(&o.text).is_none_or(|(_, ot)| ot != t));
                entry.overlays.push(f);
            }
            None => errors.extend(unknown_kind(&f)),
        }
    }
    if !without_overlays.is_empty() {
        if bases.is_empty() {
            return Err(refused("--without-overlay braucht eine Datei des Verfahrens (Basis oder Overlay), dessen Version ohne das Overlay gespeichert werden soll."));
        }
        for s in bases.values_mut() {
            s.overlays.retain(|o| overlay_target(&o.text).is_none_or(|(_, t)| !without_overlays.contains(&t)));
        }
    }
    let mut warnings: BTreeMap<String, Vec<SchemaError>> = BTreeMap::new();
    for (id, s) in &bases {
        let Some(p) = &s.procedure else {
            errors.push(SchemaError::invalid(id, &format!("Für das Verfahren „{id}“ gibt es weder eine aktive Fassung noch eine Datei [procedure].")));
            continue;
        };
        match SchemaSet::build(&catalogue, std::slice::from_ref(p), &s.overlays) {
            Ok(set) => {
                warnings.insert(id.clone(), set.warnings);
            }
            Err(e) => errors.extend(e),
        }
    }
    let mut catalogue_label = String::new();
    if catalogue_given {
        match Catalogue::load(&catalogue.text, &catalogue.origin) {
            Ok((c, w)) => {
                catalogue_label = c.version;
                warnings.insert(CATALOGUE_SUBJECT.into(), w);
            }
            Err(e) => errors.extend(e),
        }
        // A new catalogue must still carry every active procedure.
        for (id, v) in act.defaults.iter().filter(|(id, _)| !bases.contains_key(*id)).chain(act.tenants.iter().map(|((id, _), v)| (id, v))) {
            if let Err(e) = build_version(&catalogue, v) {
                errors.push(SchemaError::invalid(&catalogue.origin, &format!("Mit diesem Katalog wäre die aktive Version {} von „{id}“ ungültig:", v.version_id)));
                errors.extend(e);
            }
        }
    }
    if errors.iter().any(SchemaError::is_error) {
        return Err(SchemaAdminError::Invalid(errors));
    }
    let mut todo: Vec<PlannedVersion> = Vec::new();
    if catalogue_given {
        todo.push(PlannedVersion {
            subject: CATALOGUE_SUBJECT.into(),
            label: catalogue_label,
            sources: VersionSources { catalogue: Some(catalogue.clone()), ..Default::default() },
            warnings: warnings.remove(CATALOGUE_SUBJECT).unwrap_or_default(),
        });
    }
    for (id, s) in bases {
        let label = SchemaSet::build(&catalogue, std::slice::from_ref(s.procedure.as_ref().expect("checked")), &[])
            .ok()
            .and_then(|set| set.procedures.get(&id).map(|p| p.procedure.version.clone()))
            .unwrap_or_default();
        let w = warnings.remove(&id).unwrap_or_default();
        todo.push(PlannedVersion { subject: id, label, sources: s, warnings: w });
    }
    Ok(todo)
}

/// `schema add`: validates the files together with what is active (a file
/// takes the place of the active text it stands for) and stores one new
/// version per subject they touch: the catalogue, and each procedure whose
/// base or overlay is among the files. Nothing is activated; nothing is
/// stored if anything is invalid.
pub async fn add(
    reg: &dyn SchemaRegistry,
    files: Vec<SourceFile>,
    without_overlays: &[String],
    author: &str,
    comment: &str,
) -> Result<Vec<AddedVersion>, SchemaAdminError> {
    let todo = plan(reg, files, without_overlays).await?;
    let existing = reg.versions(None).await?;
    let mut out = Vec::new();
    for PlannedVersion { subject, label, sources: s, warnings } in todo {
        let outcome = store_version(reg, &subject, &label, &s, author, comment).await?;
        let v = outcome.version();
        out.push(AddedVersion {
            version_id: v.version_id.clone(),
            subject: subject.clone(),
            label: label.clone(),
            new: matches!(outcome, AddOutcome::Added(_)),
            label_reused_by: existing
                .iter()
                .find(|e| e.subject == subject && e.label == label && e.content_hash != v.content_hash)
                .map(|e| e.version_id.clone()),
            warnings,
        });
    }
    Ok(out)
}

/// `schema activate`: makes a version serve a tenant (or every tenant
/// without its own), after checking that it works with what else is active.
pub async fn activate(reg: &dyn SchemaRegistry, version_id: &str, tenant: Option<&str>, actor: &str) -> Result<(), SchemaAdminError> {
    let Some(v) = reg.version(version_id).await? else {
        return Err(refused(format!("Die Version „{version_id}“ gibt es nicht (nachweis schema list zeigt alle).")));
    };
    let act = active(reg).await?;
    if v.subject == CATALOGUE_SUBJECT {
        if tenant.is_some() {
            return Err(refused("Der Dokumentkatalog gilt für alle Mandanten; er wird ohne --tenant aktiviert."));
        }
        let catalogue = catalogue_source(&v)?;
        let mut errors = Vec::new();
        for (id, w) in act.defaults.iter().chain(act.tenants.iter().map(|((id, _), w)| (id, w))) {
            if let Err(e) = build_version(&catalogue, w) {
                errors.push(SchemaError::invalid(version_id, &format!("Mit diesem Katalog wäre die aktive Version {} von „{id}“ ungültig:", w.version_id)));
                errors.extend(e);
            }
        }
        if !errors.is_empty() {
            return Err(SchemaAdminError::Invalid(errors));
        }
    } else {
        let Some(cat) = &act.catalogue else { return Err(refused("Es ist kein Dokumentkatalog aktiv.")) };
        build_version(&catalogue_source(cat)?, &v).map_err(SchemaAdminError::Invalid)?;
    }
    reg.activate(version_id, tenant, actor).await?;
    Ok(())
}

/// A line of `schema list`.
#[derive(Debug, Clone, Serialize)]
pub struct ListedVersion {
    pub version: SchemaVersion,
    /// Tenants this version serves; `None` in the list = every tenant
    /// without its own activation.
    pub active_for: Vec<Option<String>>,
    /// Tenants with an overlay in this version.
    pub overlay_tenants: Vec<String>,
}

/// `schema list`: every stored version with where it is active.
pub async fn list(reg: &dyn SchemaRegistry) -> Result<Vec<ListedVersion>, SchemaAdminError> {
    let activations = reg.activations().await?;
    let mut out = Vec::new();
    for mut v in reg.versions(None).await? {
        let overlay_tenants = VersionSources::from_json(&v)
            .map(|s| s.overlays.iter().filter_map(|o| overlay_target(&o.text).map(|(_, t)| t)).collect())
            .unwrap_or_default();
        let active_for = activations.iter().filter(|a| a.version_id == v.version_id).map(|a| a.tenant.clone()).collect();
        // The texts are not needed for a listing.
        v.sources = serde_json::Value::Null;
        out.push(ListedVersion { version: v, active_for, overlay_tenants });
    }
    Ok(out)
}

/// The texts of a stored version, e.g. to re-run a check with exactly it.
pub async fn sources_of(reg: &dyn SchemaRegistry, version_id: &str) -> Result<VersionSources, SchemaAdminError> {
    let v = reg.version(version_id).await?.ok_or_else(|| refused(format!("Die Version „{version_id}“ gibt es nicht.")))?;
    VersionSources::from_json(&v)
}

/// The schema set a stored version checks with: a procedure version with
/// the active catalogue, or a catalogue version with the active procedures.
/// For `nachweis check --schema-version`: a check re-run with exactly it.
pub async fn set_for_version(reg: &dyn SchemaRegistry, version_id: &str) -> Result<SchemaSet, SchemaAdminError> {
    let v = reg.version(version_id).await?.ok_or_else(|| refused(format!("Die Version „{version_id}“ gibt es nicht.")))?;
    let act = active(reg).await?;
    let cat_version = if v.subject == CATALOGUE_SUBJECT { v.clone() } else { act.catalogue.clone().ok_or_else(|| refused("Es ist kein Dokumentkatalog aktiv."))? };
    let catalogue_src = catalogue_source(&cat_version)?;
    let mut set = if v.subject == CATALOGUE_SUBJECT {
        let mut set: Option<SchemaSet> = None;
        for w in act.defaults.values() {
            let built = build_version(&catalogue_src, w).map_err(SchemaAdminError::Invalid)?;
            set = Some(match set {
                None => built,
                Some(mut s) => {
                    s.procedures.extend(built.procedures);
                    s.overlays.extend(built.overlays);
                    s
                }
            });
        }
        set.ok_or_else(|| refused("Es ist kein Verfahren aktiv."))?
    } else {
        let mut built = build_version(&catalogue_src, &v).map_err(SchemaAdminError::Invalid)?;
        for s in built.procedures.values_mut().chain(built.overlays.values_mut()) {
            s.version_id = Some(v.version_id.clone());
        }
        built
    };
    set.catalogue.version_id = Some(cat_version.version_id.clone());
    Ok(set)
}

/// The changes for one tenant view (`None`: the base schema).
#[derive(Debug, Clone, Serialize)]
pub struct VariantDiff {
    pub tenant: Option<String>,
    pub changes: Vec<Change>,
}

/// A side of `schema diff`: a stored version id or a procedure file.
fn diff_side(
    spec: &str,
    versions: &[SchemaVersion],
    catalogue: &SourceFile,
    act: &Active,
) -> Result<(String, SchemaSet), SchemaAdminError> {
    if let Some(v) = versions.iter().find(|v| v.version_id == spec) {
        if v.subject == CATALOGUE_SUBJECT {
            return Err(refused("schema diff vergleicht Verfahrensversionen; für den Katalog nachweis schema replay verwenden."));
        }
        return build_version(catalogue, v).map(|s| (v.subject.clone(), s)).map_err(SchemaAdminError::Invalid);
    }
    let path = Path::new(spec);
    if path.is_file() {
        let f = read(path)?;
        let id = procedure_id(&f.text).ok_or_else(|| refused(format!("{spec}: keine Verfahrensdatei ([procedure] mit id).")))?;
        // As `add` would store it: with the overlays of the active version.
        let overlays = act.defaults.get(&id).and_then(|v| VersionSources::from_json(v).ok()).map(|s| s.overlays).unwrap_or_default();
        return SchemaSet::build(catalogue, &[f], &overlays).map(|s| (id, s)).map_err(SchemaAdminError::Invalid);
    }
    Err(refused(format!("„{spec}“ ist weder eine gespeicherte Version (z. B. uvg@2) noch eine Datei.")))
}

/// `schema diff A B`: what changes from A to B, for the base schema and
/// for every tenant that has an overlay in either.
pub async fn diff(reg: &dyn SchemaRegistry, a: &str, b: &str) -> Result<Vec<VariantDiff>, SchemaAdminError> {
    let act = active(reg).await?;
    let cat = act.catalogue.as_ref().ok_or_else(|| refused("Es ist kein Dokumentkatalog aktiv."))?;
    let catalogue = catalogue_source(cat)?;
    let versions = reg.versions(None).await?;
    let (pa, sa) = diff_side(a, &versions, &catalogue, &act)?;
    let (pb, sb) = diff_side(b, &versions, &catalogue, &act)?;
    if pa != pb {
        return Err(refused(format!("{a} ist „{pa}“, {b} ist „{pb}“: nur Versionen desselben Verfahrens lassen sich vergleichen.")));
    }
    let labels = Catalogue::from_toml(&catalogue.text, &catalogue.origin).map_err(|e| SchemaAdminError::Invalid(vec![e]))?;
    let mut tenants: Vec<Option<String>> = vec![None];
    for (_, t) in sa.overlays.keys().chain(sb.overlays.keys()) {
        if !tenants.contains(&Some(t.clone())) {
            tenants.push(Some(t.clone()));
        }
    }
    let mut out = Vec::new();
    for t in tenants {
        let (Some(x), Some(y)) = (tenant_view(&sa, &pa, t.as_deref()), tenant_view(&sb, &pb, t.as_deref())) else { continue };
        let mut changes = diff_schemas(&x, &y, &labels);
        if t.is_some() && changes.is_empty() {
            continue;
        }
        if let (Some(_), true) = (&t, sa.overlays.contains_key(&(pa.clone(), t.clone().unwrap_or_default())) != sb.overlays.contains_key(&(pb.clone(), t.clone().unwrap_or_default()))) {
            let has = sb.overlays.contains_key(&(pb.clone(), t.clone().unwrap_or_default()));
            changes.insert(0, Change { kind: if has { ChangeKind::Added } else { ChangeKind::Removed }, requirement: None, text: if has { "Overlay des Mandanten neu".into() } else { "Overlay des Mandanten entfällt".into() } });
        }
        out.push(VariantDiff { tenant: t, changes });
    }
    Ok(out)
}

/// What `replay` looks at.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ReplayOptions {
    /// The candidate version (a procedure's or the catalogue's).
    pub version_id: String,
    /// For a catalogue candidate: only this procedure (default: all active).
    pub procedure: Option<String>,
    /// Only cases of this tenant (a case whose bundle named none counts to
    /// `Settings::default_tenant`).
    pub tenant: Option<String>,
    /// Only cases whose newest bundle arrived on or after this day.
    pub since: Option<NaiveDate>,
}

/// The effect a candidate version would have on stored cases.
#[derive(Debug, Clone, Serialize)]
pub struct ReplayReport {
    pub version_id: String,
    pub cases_checked: usize,
    /// Cases where any verdict would change.
    pub cases_changed: usize,
    /// Cases whose bundle verdict would change.
    pub bundle_verdicts_changed: usize,
    pub changes: Vec<CaseChange>,
    /// Cases that could not be re-checked, with why (no personal data).
    pub skipped: Vec<(String, String)>,
}

/// `schema replay`: re-checks stored cases with a candidate version, using
/// the stored manifests and extraction results (no re-OCR), and reports
/// which verdicts would change and why. No case is changed; the replay
/// itself is recorded in the audit log as `schema_replayed`.
pub async fn replay(reg: &dyn SchemaRegistry, settings: &Settings, opts: &ReplayOptions, actor: &str) -> Result<ReplayReport, SchemaAdminError> {
    let Some(candidate) = reg.version(&opts.version_id).await? else {
        return Err(refused(format!("Die Version „{}“ gibt es nicht.", opts.version_id)));
    };
    let act = active(reg).await?;
    let active_cat = act.catalogue.as_ref().ok_or_else(|| refused("Es ist kein Dokumentkatalog aktiv."))?;
    let (catalogue_src, procedures): (SourceFile, Vec<String>) = if candidate.subject == CATALOGUE_SUBJECT {
        let procs = match &opts.procedure {
            Some(p) => vec![p.clone()],
            None => act.defaults.keys().cloned().collect(),
        };
        (catalogue_source(&candidate)?, procs)
    } else {
        (catalogue_source(active_cat)?, vec![candidate.subject.clone()])
    };
    let mut catalogue = Catalogue::from_toml(&catalogue_src.text, &catalogue_src.origin).map_err(|e| SchemaAdminError::Invalid(vec![e]))?;
    catalogue.version_id = Some(if candidate.subject == CATALOGUE_SUBJECT { candidate.version_id.clone() } else { active_cat.version_id.clone() });
    let catalogue = Arc::new(catalogue);
    let settings = Arc::new(settings.clone());
    let mut report = ReplayReport { version_id: candidate.version_id.clone(), cases_checked: 0, cases_changed: 0, bundle_verdicts_changed: 0, changes: Vec::new(), skipped: Vec::new() };
    for procedure in procedures {
        // The version a case of a tenant would be checked with.
        let version_for = |tenant: Option<&str>| -> Option<&SchemaVersion> {
            if candidate.subject != CATALOGUE_SUBJECT {
                return Some(&candidate);
            }
            tenant.and_then(|t| act.tenants.get(&(procedure.clone(), t.to_string()))).or_else(|| act.defaults.get(&procedure))
        };
        let mut built: BTreeMap<String, SchemaSet> = BTreeMap::new();
        for mut case in reg.replay_cases(&procedure).await? {
            // A case whose bundle named no tenant belongs to the default
            // tenant (as the review pages' `Scope` and the worker see it).
            case.tenant = case.tenant.or_else(|| Some(settings.default_tenant.clone()));
            if opts.tenant.is_some() && case.tenant != opts.tenant {
                continue;
            }
            if opts.since.is_some_and(|d| case.last_received_at.date_naive() < d) {
                continue;
            }
            let Some(version) = version_for(case.tenant.as_deref()) else {
                report.skipped.push((case.case_id.clone(), format!("keine aktive Version für „{procedure}“")));
                continue;
            };
            if !built.contains_key(&version.version_id) {
                match build_version(&catalogue_src, version) {
                    Ok(s) => {
                        built.insert(version.version_id.clone(), s);
                    }
                    Err(e) => return Err(SchemaAdminError::Invalid(e)),
                }
            }
            let set = &built[&version.version_id];
            let Some(mut schema) = tenant_view(set, &procedure, case.tenant.as_deref()) else { continue };
            schema.version_id = Some(version.version_id.clone());
            let bundles = reg.case_bundles(&case.case_id).await?;
            // Checking is CPU work: off the async runtime's threads.
            let (case_id, cat, st) = (case.case_id.clone(), Arc::clone(&catalogue), Arc::clone(&settings));
            let outcome = tokio::task::spawn_blocking(move || recheck(&case_id, &bundles, &schema, &cat, &st))
                .await
                .map_err(|e| refused(format!("Prüfung abgebrochen: {e}")))?;
            match outcome {
                Ok(change) => {
                    report.cases_checked += 1;
                    if change.changes() {
                        report.cases_changed += 1;
                        if change.old_verdict != change.new_verdict {
                            report.bundle_verdicts_changed += 1;
                        }
                        report.changes.push(change);
                    }
                }
                Err(why) => report.skipped.push((case.case_id.clone(), why)),
            }
        }
    }
    let detail = serde_json::json!({
        "cases_checked": report.cases_checked,
        "cases_changed": report.cases_changed,
        "bundle_verdicts_changed": report.bundle_verdicts_changed,
        "skipped": report.skipped.len(),
        "tenant": opts.tenant,
        "since": opts.since,
    });
    reg.record_replay(actor, &candidate.version_id, detail).await?;
    Ok(report)
}

/// Re-checks one case as the worker did for its newest bundle: that
/// bundle's manifest with the earlier bundles' documents first.
fn recheck(
    case_id: &str,
    bundles: &[crate::store::schema_registry::StoredBundle],
    schema: &ProcedureSchema,
    catalogue: &Catalogue,
    settings: &Settings,
) -> Result<CaseChange, String> {
    let Some(newest) = bundles.last() else { return Err("keine Bündel gespeichert".into()) };
    let parse = |b: &crate::store::schema_registry::StoredBundle| -> Result<(Manifest, Vec<ExtractedDocument>), String> {
        let m = Manifest::from_stored(&b.manifest).map_err(|e| format!("Manifest von {} nicht lesbar: {e}", b.bundle_id))?;
        let docs = b
            .documents
            .iter()
            .map(|(_, v)| serde_json::from_value::<ExtractedDocument>(v.clone()).map_err(|_| format!("Extraktion in {} nicht lesbar", b.bundle_id)))
            .collect::<Result<Vec<_>, _>>()?;
        Ok((m, docs))
    };
    let (manifest, documents) = parse(newest)?;
    let mut earlier = Vec::new();
    for b in &bundles[..bundles.len() - 1] {
        let (m, docs) = parse(b)?;
        for d in docs {
            earlier.push((m.clone(), d));
        }
    }
    let (combined, all_docs) = domain::combine_case(&manifest, &documents, &earlier);
    let today = newest.report["draft"]["date"]
        .as_str()
        .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
        .unwrap_or_else(|| Utc::now().date_naive());
    let letterhead = settings.letterhead_for(manifest.tenant.as_deref());
    let ctx = Context { schema, catalogue, letterhead, today, case_reference: case_id };
    let new = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| domain::process(&combined, &all_docs, &ctx)))
        .map_err(|_| "interner Fehler bei der Prüfung".to_string())?;
    Ok(compare(case_id, &newest.report, &new))
}

/// How the last reloads of a running worker went (for status pages and logs).
#[derive(Debug, Clone, Default, Serialize)]
pub struct ReloadStatus {
    pub last_reload: Option<DateTime<Utc>>,
    pub reloads: u64,
    /// Versions refused at the last reload, with the first error each; the
    /// previous version of that procedure keeps serving.
    pub refused: Vec<(String, String)>,
    /// The version ids serving now (`uvg@3`, `uvg@4 (lk-a)`, `catalogue@2`).
    pub serving: Vec<String>,
}

/// The schemas a running worker checks with. Cloning shares them; a reload
/// swaps in a new set atomically and never a broken one.
#[derive(Debug, Clone)]
pub struct LiveSchemas {
    current: Arc<RwLock<Arc<SchemaSet>>>,
    status: Arc<Mutex<ReloadStatus>>,
}

impl From<SchemaSet> for LiveSchemas {
    fn from(set: SchemaSet) -> Self {
        LiveSchemas { current: Arc::new(RwLock::new(Arc::new(set))), status: Arc::new(Mutex::new(ReloadStatus::default())) }
    }
}

impl LiveSchemas {
    /// The set to check a bundle with (kept for the whole bundle).
    pub fn current(&self) -> Arc<SchemaSet> {
        self.current.read().map(|g| Arc::clone(&g)).unwrap_or_else(|p| Arc::clone(&p.into_inner()))
    }

    pub fn status(&self) -> ReloadStatus {
        self.status.lock().map(|s| s.clone()).unwrap_or_default()
    }

    fn replace(&self, set: SchemaSet) {
        let set = Arc::new(set);
        match self.current.write() {
            Ok(mut g) => *g = set,
            Err(p) => *p.into_inner() = set,
        }
    }
}

/// Builds the set the registry's activations describe. A version that does
/// not validate is refused and the one serving before (from `previous`)
/// stays; with no previous one that procedure or tenant is not served.
async fn assemble(reg: &dyn SchemaRegistry, previous: &SchemaSet) -> Result<(SchemaSet, Vec<(String, String)>, Vec<String>), SchemaAdminError> {
    let act = active(reg).await?;
    let mut refused_versions = Vec::new();
    let mut serving = Vec::new();
    let (catalogue_src, mut catalogue) = match &act.catalogue {
        Some(v) => {
            let src = catalogue_source(v)?;
            match Catalogue::load(&src.text, &src.origin) {
                Ok((mut c, _)) => {
                    c.version_id = Some(v.version_id.clone());
                    serving.push(v.version_id.clone());
                    (Some(src), c)
                }
                Err(e) => {
                    refused_versions.push((v.version_id.clone(), e.first().map(|e| e.to_string()).unwrap_or_default()));
                    (None, previous.catalogue.clone())
                }
            }
        }
        None => (None, previous.catalogue.clone()),
    };
    let Some(catalogue_src) = catalogue_src else {
        // Without a usable catalogue nothing can be validated: keep everything.
        catalogue = previous.catalogue.clone();
        return Ok((SchemaSet { catalogue, ..previous.clone() }, refused_versions, serving));
    };
    let mut set = SchemaSet { catalogue, procedures: BTreeMap::new(), overlays: BTreeMap::new(), warnings: Vec::new() };
    let mark = |s: &mut ProcedureSchema, id: &str| s.version_id = Some(id.to_string());
    for (p, v) in &act.defaults {
        match build_version(&catalogue_src, v) {
            Ok(built) => {
                for (k, mut s) in built.procedures {
                    mark(&mut s, &v.version_id);
                    set.procedures.insert(k, s);
                }
                for (k, mut s) in built.overlays {
                    mark(&mut s, &v.version_id);
                    set.overlays.insert(k, s);
                }
                serving.push(v.version_id.clone());
            }
            Err(e) => {
                refused_versions.push((v.version_id.clone(), e.iter().find(|e| e.is_error()).map(|e| e.to_string()).unwrap_or_default()));
                if let Some(old) = previous.procedures.get(p) {
                    set.procedures.insert(p.clone(), old.clone());
                }
                for (k, old) in previous.overlays.iter().filter(|((q, _), s)| q == p && s.version_id == old_default_id(previous, p)) {
                    set.overlays.insert(k.clone(), old.clone());
                }
            }
        }
    }
    for ((p, t), v) in &act.tenants {
        match build_version(&catalogue_src, v) {
            Ok(built) => {
                if let Some(mut s) = tenant_view(&built, p, Some(t)) {
                    mark(&mut s, &v.version_id);
                    s.tenant = Some(t.clone());
                    set.overlays.insert((p.clone(), t.clone()), s);
                    serving.push(format!("{} ({t})", v.version_id));
                }
            }
            Err(e) => {
                refused_versions.push((format!("{} ({t})", v.version_id), e.iter().find(|e| e.is_error()).map(|e| e.to_string()).unwrap_or_default()));
                if let Some(old) = previous.overlays.get(&(p.clone(), t.clone())) {
                    set.overlays.insert((p.clone(), t.clone()), old.clone());
                }
            }
        }
    }
    Ok((set, refused_versions, serving))
}

fn old_default_id(previous: &SchemaSet, procedure: &str) -> Option<String> {
    previous.procedures.get(procedure).and_then(|s| s.version_id.clone())
}

/// Loads the active versions into `live`. Refused versions are logged with
/// their first error and recorded in the status; the previous ones serve on.
pub async fn reload(live: &LiveSchemas, reg: &dyn SchemaRegistry) -> Result<ReloadStatus, SchemaAdminError> {
    let previous = live.current();
    let (set, refused_versions, serving) = assemble(reg, &previous).await?;
    for (id, error) in &refused_versions {
        // Schema texts are admin data, not personal data: the error may be logged.
        tracing::error!(message = "Schema version refused; the previous version keeps serving.", version = %id, %error);
    }
    let changed = set.procedures != previous.procedures || set.overlays != previous.overlays || set.catalogue.version_id != previous.catalogue.version_id;
    if changed {
        tracing::info!(message = "Schemas reloaded.", serving = %serving.join(", "));
        live.replace(set);
    }
    let mut st = live.status.lock().map_err(|_| refused("status lock poisoned"))?;
    st.last_reload = Some(Utc::now());
    st.reloads += 1;
    st.refused = refused_versions;
    st.serving = serving;
    Ok(st.clone())
}

/// Reloads every `every` until the task is dropped; a failing database only
/// delays the next reload.
pub fn spawn_reloader(live: LiveSchemas, reg: Arc<dyn SchemaRegistry>, every: std::time::Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.tick().await;
        loop {
            tick.tick().await;
            if let Err(error) = reload(&live, reg.as_ref()).await {
                tracing::warn!(message = "Schema reload failed; the current schemas keep serving.", %error);
            }
        }
    })
}

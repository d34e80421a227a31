//! Settings: a serde tree with defaults, read from an optional TOML file
//! (`NACHWEIS_CONFIG` or `--config`) and overridden by the environment
//! variables of the configuration contract (DESIGN §6).
//!
//! Parsing does no I/O beyond reading that one file; opening the database,
//! the broker and `schemas/` happens in `startup`.
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::domain::draft::Letterhead;

/// A configuration problem, reported before anything starts.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("environment variable {name}: {message}")]
    Env { name: &'static str, message: String },
}

/// All settings. Every field has a default so a newcomer needs none.
/// `Debug` shows the URLs with their passwords replaced (see below).
#[derive(Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// `sqlite://…` (embedded default) or `postgres://…`.
    pub database_url: String,
    /// Absent: in-process queue fed from `intake_dir`.
    pub amqp_url: Option<String>,
    /// Bundles arrive here (as directories) for the in-process queue, and
    /// AMQP manifests' `path`s are relative to it.
    pub intake_dir: PathBuf,
    /// Bundles processed at once (= AMQP prefetch).
    pub concurrency: usize,
    /// Review server and metrics address.
    pub http_addr: String,
    /// Directory with `document_types.toml`, `procedures/`, `overlays/`.
    pub schemas_dir: PathBuf,
    /// Where drafts are written as text files for the demo.
    pub drafts_dir: PathBuf,
    /// `text` or `json` log lines.
    pub log_format: String,
    /// Letterhead used when a bundle names no tenant or an unknown one.
    pub letterhead: Letterhead,
    /// Per-tenant letterheads (key: the manifest's `tenant`).
    pub tenants: BTreeMap<String, Letterhead>,
    /// Directory with the letter fonts (`DejaVuSans.ttf`,
    /// `DejaVuSans-Bold.ttf`); Debian's fonts-dejavu-core by default.
    pub fonts_dir: PathBuf,
    /// Wall-clock limit for extracting one document, in seconds.
    pub extract_timeout_secs: u64,
    /// Prefix of the RabbitMQ names: `<prefix>.bundles`, `<prefix>.dead`,
    /// `<prefix>.bundles.dead`, `<prefix>.events`. Tests use their own.
    pub amqp_prefix: String,
    /// Deliveries of one message before RabbitMQ dead-letters it (the bundle
    /// queue's `x-delivery-limit`; crashes and retries both count).
    pub amqp_delivery_limit: u32,
    /// How long `run` lets in-flight bundles finish after SIGTERM/SIGINT
    /// before it closes the channel (unfinished ones are redelivered).
    pub shutdown_grace_secs: u64,
    /// AMQP heartbeat interval asked of the broker (the lower of the two
    /// wins); a connection silent for twice this long counts as dead, which
    /// is how a half-open connection is noticed. A `heartbeat=` in the URL
    /// takes precedence.
    pub amqp_heartbeat_secs: u16,
    /// Processing starts of one message that never finished (the worker
    /// died) before the worker dead-letters it as `worker_crashed`.
    pub crash_limit: u32,
    /// The tenant (Landkreis) that cases belong to when their bundle names
    /// none; accounts of this tenant see them.
    pub default_tenant: String,
    /// Session cookies only over HTTPS (`__Host-` cookie, HSTS). Switch off
    /// only for a local demo over plain HTTP on another host than localhost.
    pub secure_cookies: bool,
    /// How long a sign-in lasts at most, in hours.
    pub session_hours: u32,
    /// A session unused for this many minutes ends.
    pub session_idle_minutes: u32,
    /// How often a running worker reloads the active schema versions from
    /// the database (a refused version never replaces a serving one).
    pub schema_reload_secs: u64,
}

/// `schemas/` in the working directory, as in a checkout or the Docker image's
/// configured path; when the working directory has none, the `schemas/` of the
/// checkout the binary was built from, so that `target/debug/nachweis check …`
/// works from anywhere on the machine that built it.
fn default_schemas_dir() -> PathBuf {
    let here = PathBuf::from("schemas");
    if here.join("document_types.toml").is_file() {
        return here;
    }
    let built_from = Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas");
    if built_from.join("document_types.toml").is_file() { built_from } else { here }
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            database_url: "sqlite://var/nachweis.sqlite".into(),
            amqp_url: None,
            intake_dir: PathBuf::from("var/intake"),
            concurrency: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2),
            http_addr: "127.0.0.1:8080".into(),
            schemas_dir: default_schemas_dir(),
            drafts_dir: PathBuf::from("var/drafts"),
            log_format: "text".into(),
            letterhead: Letterhead::default(),
            tenants: BTreeMap::new(),
            fonts_dir: PathBuf::from("/usr/share/fonts/truetype/dejavu"),
            extract_timeout_secs: 120,
            amqp_prefix: "nachweis".into(),
            // Returns by crashed or stopped workers and broker restarts count
            // too, for every prefetched message: the limit is a backstop, kept
            // well above `crash_limit`, which catches messages that kill workers.
            amqp_delivery_limit: 20,
            shutdown_grace_secs: 30,
            amqp_heartbeat_secs: 30,
            crash_limit: 3,
            default_tenant: "lk-musterland".into(),
            secure_cookies: true,
            session_hours: 8,
            session_idle_minutes: 60,
            schema_reload_secs: 30,
        }
    }
}

/// By hand, so that printing the settings (a `{:?}` in a log line or an
/// error) never shows the database or broker password.
impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("database_url", &redact_url(&self.database_url))
            .field("amqp_url", &self.amqp_url.as_deref().map(redact_url))
            .field("intake_dir", &self.intake_dir)
            .field("concurrency", &self.concurrency)
            .field("http_addr", &self.http_addr)
            .field("schemas_dir", &self.schemas_dir)
            .field("amqp_prefix", &self.amqp_prefix)
            .field("amqp_delivery_limit", &self.amqp_delivery_limit)
            .field("amqp_heartbeat_secs", &self.amqp_heartbeat_secs)
            .field("crash_limit", &self.crash_limit)
            .finish_non_exhaustive()
    }
}

impl Settings {
    /// Reads the file (if any) and applies the environment.
    pub fn load(file: Option<PathBuf>) -> Result<Settings, ConfigError> {
        let file = file.or_else(|| std::env::var_os("NACHWEIS_CONFIG").map(PathBuf::from));
        let mut s = match file {
            Some(path) => {
                let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read { path: path.clone(), source })?;
                toml::from_str(&text).map_err(|e| ConfigError::Parse { path, message: e.to_string() })?
            }
            None => Settings::default(),
        };
        s.apply_env(|k| std::env::var(k).ok())?;
        Ok(s)
    }

    /// Applies `NACHWEIS_*` variables; `get` is injectable for tests.
    pub fn apply_env(&mut self, get: impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        if let Some(v) = get("NACHWEIS_DATABASE_URL") {
            self.database_url = v;
        }
        if let Some(v) = get("NACHWEIS_AMQP_URL") {
            self.amqp_url = Some(v).filter(|v| !v.is_empty());
        }
        if let Some(v) = get("NACHWEIS_INTAKE_DIR") {
            self.intake_dir = PathBuf::from(v);
        }
        if let Some(v) = get("NACHWEIS_CONCURRENCY") {
            self.concurrency = v
                .parse()
                .ok()
                .filter(|n| *n > 0)
                .ok_or(ConfigError::Env { name: "NACHWEIS_CONCURRENCY", message: "must be a positive whole number".into() })?;
        }
        if let Some(v) = get("NACHWEIS_HTTP_ADDR") {
            self.http_addr = v;
        }
        if let Some(v) = get("NACHWEIS_SCHEMAS_DIR") {
            self.schemas_dir = PathBuf::from(v);
        }
        if let Some(v) = get("NACHWEIS_FONTS_DIR") {
            self.fonts_dir = PathBuf::from(v);
        }
        if let Some(v) = get("NACHWEIS_LOG_FORMAT") {
            self.log_format = v;
        }
        if let Some(v) = get("NACHWEIS_AMQP_PREFIX") {
            self.amqp_prefix = v;
        }
        if let Some(v) = get("NACHWEIS_AMQP_DELIVERY_LIMIT") {
            self.amqp_delivery_limit = v.parse().ok().filter(|n| *n > 0).ok_or(ConfigError::Env {
                name: "NACHWEIS_AMQP_DELIVERY_LIMIT",
                message: "must be a positive whole number".into(),
            })?;
        }
        if let Some(v) = get("NACHWEIS_DEFAULT_TENANT") {
            self.default_tenant = v;
        }
        if let Some(v) = get("NACHWEIS_SECURE_COOKIES") {
            self.secure_cookies = match v.as_str() {
                "1" | "true" | "yes" => true,
                "0" | "false" | "no" => false,
                _ => return Err(ConfigError::Env { name: "NACHWEIS_SECURE_COOKIES", message: "must be true or false".into() }),
            };
        }
        if let Some(v) = get("NACHWEIS_SHUTDOWN_GRACE_SECS") {
            self.shutdown_grace_secs = v
                .parse()
                .map_err(|_| ConfigError::Env { name: "NACHWEIS_SHUTDOWN_GRACE_SECS", message: "must be a whole number of seconds".into() })?;
        }
        if let Some(v) = get("NACHWEIS_AMQP_HEARTBEAT_SECS") {
            self.amqp_heartbeat_secs = v.parse().ok().filter(|n| *n > 0).ok_or(ConfigError::Env {
                name: "NACHWEIS_AMQP_HEARTBEAT_SECS",
                message: "must be a whole number of seconds between 1 and 65535".into(),
            })?;
        }
        if let Some(v) = get("NACHWEIS_CRASH_LIMIT") {
            self.crash_limit = v
                .parse()
                .ok()
                .filter(|n| *n > 0)
                .ok_or(ConfigError::Env { name: "NACHWEIS_CRASH_LIMIT", message: "must be a positive whole number".into() })?;
        }
        if let Some(v) = get("NACHWEIS_SCHEMA_RELOAD_SECS") {
            self.schema_reload_secs = v.parse().ok().filter(|n| *n > 0).ok_or(ConfigError::Env {
                name: "NACHWEIS_SCHEMA_RELOAD_SECS",
                message: "must be a positive whole number of seconds".into(),
            })?;
        }
        Ok(())
    }

    /// The letterhead for a tenant, falling back to the default one.
    pub fn letterhead_for(&self, tenant: Option<&str>) -> &Letterhead {
        tenant.and_then(|t| self.tenants.get(t)).unwrap_or(&self.letterhead)
    }

    /// The database URL with any password replaced, for logs.
    pub fn redacted_database_url(&self) -> String {
        redact_url(&self.database_url)
    }
}

/// Replaces the password of a URL (`scheme://user:secret@host`) by `***`.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let cred = &url[s + 3..at];
            match cred.find(':') {
                Some(c) => format!("{}{}:***{}", &url[..s + 3], &cred[..c], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_variables_override_defaults() {
        let mut s = Settings::default();
        s.apply_env(|k| match k {
            "NACHWEIS_DATABASE_URL" => Some("postgres://u:pw@localhost/db".into()),
            "NACHWEIS_CONCURRENCY" => Some("3".into()),
            "NACHWEIS_FONTS_DIR" => Some("/opt/fonts".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(s.concurrency, 3);
        assert_eq!(s.fonts_dir, PathBuf::from("/opt/fonts"));
        assert_eq!(s.redacted_database_url(), "postgres://u:***@localhost/db");
    }

    #[test]
    fn printing_the_settings_never_shows_a_password() {
        let mut s = Settings::default();
        s.apply_env(|k| match k {
            "NACHWEIS_DATABASE_URL" => Some("postgres://nachweis:db-secret@db/nachweis".into()),
            "NACHWEIS_AMQP_URL" => Some("amqp://nachweis:mq-secret@mq:5672/%2f".into()),
            _ => None,
        })
        .unwrap();
        let printed = format!("{s:?}");
        assert!(!printed.contains("secret"), "{printed}");
        assert!(printed.contains("postgres://nachweis:***@db/nachweis"), "{printed}");
    }

    #[test]
    fn a_zero_heartbeat_is_refused_because_it_would_switch_dead_peer_detection_off() {
        let mut s = Settings::default();
        let err = s.apply_env(|k| (k == "NACHWEIS_AMQP_HEARTBEAT_SECS").then(|| "0".into())).unwrap_err();
        assert!(err.to_string().contains("NACHWEIS_AMQP_HEARTBEAT_SECS"));
        s.apply_env(|k| (k == "NACHWEIS_AMQP_HEARTBEAT_SECS").then(|| "5".into())).unwrap();
        assert_eq!(s.amqp_heartbeat_secs, 5);
    }

    #[test]
    fn a_zero_concurrency_is_refused_with_the_variable_named() {
        let mut s = Settings::default();
        let err = s.apply_env(|k| (k == "NACHWEIS_CONCURRENCY").then(|| "0".into())).unwrap_err();
        assert!(err.to_string().contains("NACHWEIS_CONCURRENCY"));
    }
}

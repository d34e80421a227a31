//! Logging setup: `tracing` to stderr, as text or JSON lines. Log events
//! carry ids, hashes and verdicts only — never names, dates of birth or
//! document text.
use tracing_subscriber::EnvFilter;

/// Installs the global subscriber. `default_level` applies when `RUST_LOG`
/// is unset (the CLI keeps quiet by default; the worker logs `info`).
pub fn init(format: &str, default_level: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
    // Colour codes only for a person at a terminal: in files and journald
    // they garble lines and break searching them.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_target(false).with_ansi(ansi);
    let _ = if format == "json" { builder.json().try_init() } else { builder.compact().try_init() };
}

//! Throw-away PostgreSQL databases for the suites that run against the real
//! server (`store`, `schemas`, `amqp`): where the server is, a unique name
//! per test, and the URL of that database.
#![allow(dead_code)] // each suite uses its own part of it

use sha2::{Digest, Sha256};
use std::sync::atomic::{AtomicU64, Ordering};

pub const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// `NACHWEIS_TEST_POSTGRES_URL`, else the local server as `scripts/test` starts it.
pub fn admin_url() -> String {
    std::env::var("NACHWEIS_TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_POSTGRES_URL.to_owned())
}

/// 16 hex digits unique to this process, moment and call: database names
/// stay valid identifiers (letters, digits, underscores), never input.
pub fn unique_suffix() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    let seed = format!("{}-{nanos}-{}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed));
    hex::encode(Sha256::digest(seed.as_bytes()))[..16].to_owned()
}

/// `nachweis_test_` plus [`unique_suffix`].
pub fn unique_database_name() -> String {
    format!("nachweis_test_{}", unique_suffix())
}

/// The admin URL with its database replaced by `name` (query kept).
pub fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let host_start = base.find("://").map_or(0, |i| i + 3);
    let base = match base[host_start..].find('/') {
        Some(slash) => &base[..host_start + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{base}/{name}?{query}"),
        None => format!("{base}/{name}"),
    }
}

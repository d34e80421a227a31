//! The review server through its HTTP interface (`web::app` driven with
//! `tower::ServiceExt::oneshot`), on a fresh SQLite database per test with
//! cases made by the real pipeline from fixture bundles.
mod api;
mod accessibility;
mod auth;
mod helpers;
mod review;
mod security;

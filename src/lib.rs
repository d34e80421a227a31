//! nachweis: reads benefit application bundles, classifies each document,
//! checks the bundle against a procedure schema and drafts the
//! missing-document letter for a caseworker to review.
//!
//! `domain` is the pure core (no I/O); everything else is an adapter at the edge.
pub mod config;
pub mod domain;
pub mod extract;
pub mod intake;
pub mod letter;
pub mod metrics;
pub mod ops;
pub mod queue;
pub mod review;
pub mod schemas;
pub mod startup;
pub mod store;
pub mod telemetry;
pub mod web;
pub mod worker;

//! Queues that feed bundles to `worker::process_one`: the in-process queue
//! over a directory (embedded default, demo) lives in `local`; the RabbitMQ
//! consumer for production in `amqp`.
//!
//! Only this module decides what happens to a job after processing.
pub mod amqp;
pub mod local;

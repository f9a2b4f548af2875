//! hashgate's scanner function: configuration, the wiring of the AWS adapters into the
//! core's pipeline, the worker's ingresses (an SQS queue, a webhook with its durable spool,
//! or a RabbitMQ queue), their health and metrics endpoints, and what a deployment must give it ([`deployment`]). `main.rs` only
//! picks how events arrive.

pub mod amqp;
pub mod app;
pub mod config;
pub mod deployment;
pub mod envelope;
pub mod metrics;
pub mod ops;
pub mod prom;
pub mod spool;
pub mod webhook;
pub mod worker;

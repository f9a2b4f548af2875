//! The review queue's service: one axum router ([`routes`]) over the core's review ports
//! ([`service`]), served by `lambda_http` in AWS Lambda and by a plain HTTP server on
//! 127.0.0.1 locally.
//!
//! - [`config`]: the variables, parsed by a pure function.
//! - [`auth`]: Cognito access tokens verified against the pool's keys; roles from groups.
//! - [`service`]: what each request does, every action audited once.
//! - [`preview`]: the protective previews (small, grayscale, blurred, never the original).
//! - [`routes`]: the HTTP API and the page.

pub mod auth;
pub mod config;
pub mod deployed;
pub mod deployment;
pub mod preview;
pub mod routes;
pub mod service;

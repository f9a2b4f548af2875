//! hashgate's report sender: every "Report Ready" package sent to NCMEC's CyberTipline.
//!
//! - [`send`]: the sending of one stored package (read, resume, persist every state and
//!   answer), shared with the operator CLI's `hashgate reports send`.
//! - [`config`]: the variables, parsed by a pure function.
//! - [`handler`]: one EventBridge event: checked, then the package it names sent.
//! - [`deployment`]: what a deployment must give the function.
//!
//! `main.rs` only runs the handler under the Lambda runtime.

pub mod config;
pub mod deployment;
pub mod handler;
pub mod send;

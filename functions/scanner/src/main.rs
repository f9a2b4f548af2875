//! The scanner function. Thin: configuration, logging, and the choice of how events arrive.
//!
//! - In AWS Lambda (`AWS_LAMBDA_RUNTIME_API` is set): the Lambda runtime hands it S3
//!   notifications, SQS batches or EventBridge events.
//! - Elsewhere, as a worker (`HASHGATE_INGRESS`): it long-polls `HASHGATE_SCAN_QUEUE_URL`
//!   (`sqs`), takes the notifications self-hosted stores push to its webhook (`http`), or
//!   consumes the RabbitMQ queue they publish to (`amqp`), and runs the same handler.
//!   SIGTERM or Ctrl-C drains it: no new work, the work in hand finished, then exit. With
//!   `HASHGATE_HTTP_LISTEN`, the queue workers also serve `/healthz`, `/readyz` and `/metrics`.

use std::sync::Arc;

use hashgate_scanner::config::{self, Ingress};
use hashgate_scanner::ops::{self, Ops, OpsConfig, Readiness};
use hashgate_scanner::{amqp, app, webhook, worker};
use lambda_runtime::{service_fn, LambdaEvent};
use serde_json::Value;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let in_lambda = std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some();
    hashgate_aws::logging::init(in_lambda)?;

    let config = config::Config::from_env()?;
    // In Lambda, each invocation's tally goes to CloudWatch as an embedded-metric log line.
    let metrics = in_lambda
        .then(|| std::env::var("AWS_LAMBDA_FUNCTION_NAME").ok())
        .flatten();
    let app = Arc::new(app::connect(&config, metrics).await?);
    if in_lambda {
        return lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
            let app = app.clone();
            async move {
                app.handle(event.payload)
                    .await
                    .map_err(|e| lambda_runtime::Diagnostic::from(e.to_string()))
            }
        }))
        .await
        .map_err(|e| anyhow::anyhow!("lambda runtime: {e}"));
    }
    let ops = config.ops.clone();
    match config.ingress {
        None => anyhow::bail!(
            "not in Lambda and HASHGATE_INGRESS is not set: nothing to read events from \
             (sqs with HASHGATE_SCAN_QUEUE_URL, http with HASHGATE_HTTP_TOKEN and HASHGATE_SPOOL_DIR, \
             or amqp with HASHGATE_AMQP_URL)"
        ),
        Some(Ingress::Sqs { queue_url }) => {
            let ready = readiness(&app, ops.as_ref(), "no receive from the scan queue yet").await?;
            worker::run(app, queue_url, ready, stop_signal()).await
        }
        Some(Ingress::Http(web)) => webhook::run(app, web, stop_signal()).await,
        Some(Ingress::Amqp(queue)) => {
            let ready = readiness(&app, ops.as_ref(), "not yet consuming from the broker").await?;
            amqp::run(app, queue, ready, stop_signal()).await
        }
    }
}

/// A queue worker's readiness, served with its metrics when `HASHGATE_HTTP_LISTEN` is set.
async fn readiness(
    app: &Arc<app::DeployedApp>,
    ops: Option<&OpsConfig>,
    starting: &str,
) -> anyhow::Result<Arc<Readiness>> {
    let readiness = Arc::new(Readiness::new(starting));
    if let Some(listen) = ops {
        ops::spawn(
            listen,
            Ops::new(app.clone(), &listen.token, readiness.clone()),
        )
        .await?;
    }
    Ok(readiness)
}

/// SIGTERM (what Kubernetes and systemd send) or Ctrl-C.
async fn stop_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM handler");
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM"),
        _ = tokio::signal::ctrl_c() => tracing::info!("interrupted"),
    }
}

//! The scanner function. Thin: configuration, logging, and the choice of how events arrive.
//!
//! - In AWS Lambda (`AWS_LAMBDA_RUNTIME_API` is set): the Lambda runtime hands it S3
//!   notifications, SQS batches or EventBridge events.
//! - Elsewhere, as a worker: it long-polls `HASHGATE_SCAN_QUEUE_URL` and runs the same
//!   handler, deleting only the messages that succeeded, so self-hosted S3-compatible stores
//!   (MinIO, Ceph) and the local stack use it unchanged.

use std::sync::Arc;

use hashgate_scanner::{app, config, worker};
use lambda_runtime::{service_fn, LambdaEvent};
use serde_json::Value;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let in_lambda = std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some();
    hashgate_aws::logging::init(in_lambda);

    let config = config::Config::from_env()?;
    // In Lambda, each invocation's tally goes to CloudWatch as an embedded-metric log line.
    let metrics = in_lambda
        .then(|| std::env::var("AWS_LAMBDA_FUNCTION_NAME").ok())
        .flatten();
    let app = Arc::new(app::connect(&config, metrics).await?);
    if in_lambda {
        lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
            let app = app.clone();
            async move {
                app.handle(event.payload)
                    .await
                    .map_err(|e| lambda_runtime::Diagnostic::from(e.to_string()))
            }
        }))
        .await
        .map_err(|e| anyhow::anyhow!("lambda runtime: {e}"))
    } else {
        let queue = config.scan_queue_url.clone().ok_or_else(|| {
            anyhow::anyhow!(
                "not in Lambda and HASHGATE_SCAN_QUEUE_URL is not set: nothing to read events from"
            )
        })?;
        worker::run(app, queue).await
    }
}

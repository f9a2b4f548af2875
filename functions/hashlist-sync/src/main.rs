//! The hashlist-sync function. Thin: logging, configuration, the real adapters; then the
//! Lambda runtime (the lists queue's events and the schedule), or outside Lambda a worker
//! that polls the lists queue and runs the scheduled work every interval.

use hashgate_hashlist_sync::config::Config;
use lambda_runtime::{service_fn, Diagnostic, LambdaEvent};
use serde_json::Value;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let in_lambda = std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some();
    hashgate_aws::logging::init(in_lambda)?;
    let config = Config::from_env()?;
    let sdk = hashgate_aws::sdk_config().await;
    let handler = hashgate_hashlist_sync::connect::handler(&config, &sdk).await?;
    if !in_lambda {
        let Some(queue) = config.queue_url.clone() else {
            anyhow::bail!(
                "outside Lambda, hashlist-sync runs as a worker: set HASHGATE_LISTS_QUEUE_URL \
                 (for the local stack: set -a; . .local/stack.env)"
            );
        };
        return hashgate_hashlist_sync::worker::run(handler, queue, config.interval).await;
    }
    let handler = std::sync::Arc::new(handler);
    let function =
        std::env::var("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_else(|_| "hashlist-sync".into());
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let (handler, function) = (handler.clone(), function.clone());
        async move {
            match handler.handle(&event.payload).await {
                Ok(summary) => {
                    let now_ms = hashgate_core::time::Timestamp::now()
                        .as_millisecond()
                        .max(0) as u64;
                    println!("{}", summary.emf(&function, now_ms));
                    Ok(serde_json::to_value(&summary).unwrap_or_default())
                }
                Err(e) => Err(Diagnostic::from(e)),
            }
        }
    }))
    .await
    .map_err(|e| anyhow::anyhow!("lambda runtime: {e}"))
}

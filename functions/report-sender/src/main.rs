//! The report sender function. Thin: logging, configuration, and the Lambda runtime handing
//! it the "Report Ready" events of the stack's event bus (an EventBridge rule). Outside
//! Lambda there is nothing to run: `hashgate reports send <case>` sends a package by hand.

use std::sync::Arc;

use hashgate_report_sender::config::Config;
use hashgate_report_sender::handler::{DisplayChain, Handled, Handler};
use lambda_runtime::{service_fn, Diagnostic, LambdaEvent};
use serde_json::{json, Value};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let in_lambda = std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some();
    hashgate_aws::logging::init(in_lambda)?;
    if !in_lambda {
        anyhow::bail!(
            "the report sender runs in AWS Lambda only (AWS_LAMBDA_RUNTIME_API is not set); \
             to send a package by hand: hashgate reports send <case id>"
        );
    }
    let config = Config::from_env()?;
    let handler = Arc::new(Handler::new(config, hashgate_aws::sdk_config().await));
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let handler = handler.clone();
        async move {
            // Boxed: the sending's future is deep, and the runtime's would be deeper still.
            match Box::pin(handler.handle(event.payload)).await {
                Ok(Handled::Ignored(why)) => Ok(json!({"ignored": why})),
                Ok(Handled::AlreadyDone(state)) => {
                    Ok(json!({"case_id": state.case_id, "already_done": true}))
                }
                Ok(Handled::Sent(state)) => Ok(json!({
                    "case_id": state.case_id,
                    "finished": state.finished && state.stopped.is_none(),
                })),
                Err(e) => Err(Diagnostic::from(DisplayChain(&e).to_string())),
            }
        }
    }))
    .await
    .map_err(|e| anyhow::anyhow!("lambda runtime: {e}"))
}

//! Worker mode (outside Lambda): long-poll the lists queue and run the same handler as in
//! Lambda, and run the scheduled work every interval. A message is deleted only after its
//! files were handled; a failed one becomes visible again.

use std::time::Duration;

use serde_json::{json, Value};

use crate::handler::Handler;

pub async fn run(handler: Handler, queue_url: String, interval: Duration) -> anyhow::Result<()> {
    let sdk = hashgate_aws::sdk_config().await;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    tracing::info!(queue = %queue_url, interval_seconds = interval.as_secs(), "hashlist-sync worker polling");
    let shutdown = tokio::signal::ctrl_c();
    tokio::pin!(shutdown);
    let scheduled = json!({"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}});
    let mut next_run = tokio::time::Instant::now();
    loop {
        if tokio::time::Instant::now() >= next_run {
            match handler.handle(&scheduled).await {
                Ok(s) => {
                    tracing::info!(summary = %serde_json::to_string(&s).unwrap_or_default(), "scheduled run")
                }
                Err(e) => tracing::error!(error = %e, "scheduled run failed"),
            }
            next_run = tokio::time::Instant::now() + interval;
        }
        let wait = next_run
            .saturating_duration_since(tokio::time::Instant::now())
            .as_secs()
            .clamp(1, 20) as i32;
        let receive = sqs
            .receive_message()
            .queue_url(&queue_url)
            .max_number_of_messages(10)
            .wait_time_seconds(wait)
            .send();
        let out = tokio::select! {
            _ = &mut shutdown => {
                tracing::info!("hashlist-sync worker stopping");
                return Ok(());
            }
            out = receive => out,
        };
        let out = match out {
            Ok(o) => o,
            Err(e) => {
                tracing::error!(error = ?e, "cannot receive from the lists queue; retrying");
                tokio::time::sleep(Duration::from_secs(2)).await;
                continue;
            }
        };
        for message in out.messages() {
            let id = message.message_id().unwrap_or("?").to_string();
            let payload: Value = json!({"Records": [{
                "eventSource": "aws:sqs",
                "messageId": id,
                "body": message.body().unwrap_or_default(),
            }]});
            let handled = match handler.handle(&payload).await {
                Ok(s) => {
                    tracing::info!(summary = %serde_json::to_string(&s).unwrap_or_default(), "lists event");
                    s.batch_item_failures.is_empty()
                }
                Err(e) => {
                    tracing::error!(error = %e, "lists event failed");
                    false
                }
            };
            if !handled {
                continue;
            }
            if let Some(handle) = message.receipt_handle() {
                if let Err(e) = sqs
                    .delete_message()
                    .queue_url(&queue_url)
                    .receipt_handle(handle)
                    .send()
                    .await
                {
                    tracing::warn!(error = ?e, "cannot delete a handled message; it will be handled again");
                }
            }
        }
    }
}

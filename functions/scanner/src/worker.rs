//! Worker mode: long-poll an SQS queue of S3 notifications and run the same handler as in
//! Lambda. A message is deleted only after everything in it was handled; a failed one
//! becomes visible again and, after the queue's maxReceiveCount, goes to its dead-letter
//! queue. It is ready (`/readyz`) while its last receive succeeded.
//!
//! The queue's own visibility timeout is sized for Lambda (hours); a worker takes its
//! messages for [`LEASE`] only and extends the lease every [`RENEW`] while it works on them,
//! so the messages of a worker that was killed are back on the queue within a minute, not
//! hours later.

use std::sync::Arc;
use std::time::Duration;

use hashgate_core::event::parse_body;

use crate::app::DeployedApp;
use crate::ops::Readiness;

/// How long a received message stays invisible to other workers.
pub const LEASE: Duration = Duration::from_secs(60);
/// How often the lease of the messages in hand is renewed.
pub const RENEW: Duration = Duration::from_secs(20);

/// Renew the lease of `handles` every [`RENEW`] until dropped (aborted).
fn keep_leased(
    sqs: aws_sdk_sqs::Client,
    queue_url: String,
    handles: Vec<String>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(RENEW).await;
            for handle in &handles {
                // A message already deleted cannot be renewed: that is fine.
                if let Err(e) = sqs
                    .change_message_visibility()
                    .queue_url(&queue_url)
                    .receipt_handle(handle)
                    .visibility_timeout(LEASE.as_secs() as i32)
                    .send()
                    .await
                {
                    tracing::debug!(error = ?e, "cannot renew a message's lease");
                }
            }
        }
    })
}

/// Poll until `shutdown` resolves; the messages in hand are finished first (a poll in
/// progress is abandoned: what it would have received stays on the queue).
pub async fn run(
    app: Arc<DeployedApp>,
    queue_url: String,
    readiness: Arc<Readiness>,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    let sdk = hashgate_aws::sdk_config().await;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    tracing::info!(queue = %queue_url, "worker polling");
    tokio::pin!(shutdown);
    // Long polls no longer than the refresh interval, so an idle worker still picks up a new
    // filter on time.
    let wait = app.refresh_interval().as_secs().clamp(1, 20) as i32;
    loop {
        app.refresh_filter(false).await;
        let receive = sqs
            .receive_message()
            .queue_url(&queue_url)
            .max_number_of_messages(10)
            .visibility_timeout(LEASE.as_secs() as i32)
            .wait_time_seconds(wait)
            .send();
        let out = tokio::select! {
            _ = &mut shutdown => {
                readiness.drain();
                tracing::info!("worker stopping");
                return Ok(());
            }
            out = receive => out,
        };
        let out = match out {
            Ok(o) => {
                readiness.ready();
                o
            }
            Err(e) => {
                readiness.not_ready(format!("cannot receive from the scan queue: {e}"));
                tracing::error!(error = ?e, "cannot receive from the scan queue; retrying");
                tokio::time::sleep(std::time::Duration::from_secs(2)).await;
                continue;
            }
        };
        // An empty long poll has nothing to lease.
        if out.messages().is_empty() {
            continue;
        }
        let handles = out
            .messages()
            .iter()
            .filter_map(|m| m.receipt_handle().map(str::to_string))
            .collect();
        let lease = keep_leased(sqs.clone(), queue_url.clone(), handles);
        for message in out.messages() {
            let id = message.message_id().unwrap_or("?");
            let ok = match parse_body(message.body().unwrap_or_default()) {
                Ok(notices) => app.process_all(notices).await,
                Err(e) => {
                    tracing::error!(message_id = id, error = %e, "malformed message");
                    false
                }
            };
            if !ok {
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
                    tracing::error!(message_id = id, error = ?e, "cannot delete a handled message; it will be handled again");
                }
            }
        }
        // What failed stays leased no longer: back on the queue within a lease.
        lease.abort();
    }
}

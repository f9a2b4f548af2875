//! The AMQP 0-9-1 ingress (`HASHGATE_INGRESS=amqp`): RabbitMQ, which Ceph RGW and MinIO
//! both publish bucket notifications to.
//!
//! The worker declares what it needs and nothing else: a durable topic exchange
//! (`HASHGATE_AMQP_EXCHANGE`, where the store publishes), a durable quorum queue
//! (`HASHGATE_AMQP_QUEUE`) bound to it with `HASHGATE_AMQP_ROUTING_KEY`, and a dead-letter
//! exchange and queue (`<queue>.dead`). Quorum queues count deliveries: a message handed out
//! `HASHGATE_MAX_ATTEMPTS` times without an acknowledgement is dead-lettered by the broker
//! itself, so the count survives worker crashes.
//!
//! A delivery is acknowledged only once every upload in it has a durable outcome (the clean
//! tag written, or the case recorded). A failure is returned to the queue after a back-off
//! (held meanwhile, so it is not redelivered hot); a body that does not parse is
//! dead-lettered at once, with the reason logged. At most `HASHGATE_AMQP_PREFETCH` deliveries
//! are in hand at a time. A lost connection is re-established; whatever was unacknowledged
//! comes back from the broker. SIGTERM cancels the consumer, finishes the deliveries in
//! hand, and closes the connection. It is ready (`/readyz`) while it consumes.

use std::sync::Arc;
use std::time::Duration;

use hashgate_core::event::parse_body;
use lapin::options::{
    BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions,
    BasicRejectOptions, ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Connection, ConnectionProperties, ExchangeKind};
use tokio_stream::StreamExt;

use crate::app::DeployedApp;
use crate::ops::Readiness;
use crate::spool::backoff;

/// The AMQP ingress's settings (`HASHGATE_AMQP_*`).
#[derive(Clone)]
pub struct AmqpConfig {
    pub url: String,
    pub exchange: String,
    pub queue: String,
    pub routing_key: String,
    pub prefetch: u16,
    pub max_attempts: u32,
}

impl AmqpConfig {
    pub const DEFAULT_EXCHANGE: &'static str = "hashgate";
    pub const DEFAULT_QUEUE: &'static str = "hashgate-scan";
    pub const DEFAULT_ROUTING_KEY: &'static str = "#";
    pub const DEFAULT_PREFETCH: u16 = 8;

    /// The dead-letter exchange and queue.
    pub fn dead_letters(&self) -> String {
        format!("{}.dead", self.queue)
    }

    /// The URL without its password, for logs.
    pub fn redacted_url(&self) -> String {
        match (self.url.find("://"), self.url.rfind('@')) {
            (Some(scheme), Some(at)) if at > scheme => {
                let userinfo = &self.url[scheme + 3..at];
                let user = userinfo.split(':').next().unwrap_or("");
                format!("{}{user}:***{}", &self.url[..scheme + 3], &self.url[at..])
            }
            _ => self.url.clone(),
        }
    }
}

/// The password is a secret: never in a log line.
impl std::fmt::Debug for AmqpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AmqpConfig")
            .field("url", &self.redacted_url())
            .field("exchange", &self.exchange)
            .field("queue", &self.queue)
            .field("routing_key", &self.routing_key)
            .field("prefetch", &self.prefetch)
            .field("max_attempts", &self.max_attempts)
            .finish()
    }
}

fn long_string(s: &str) -> AMQPValue {
    AMQPValue::LongString(s.into())
}

/// How many times the broker has handed this message out before (quorum queues say so).
fn delivery_count(properties: &lapin::BasicProperties) -> u32 {
    properties
        .headers()
        .as_ref()
        .and_then(|h| h.inner().get("x-delivery-count"))
        .and_then(|v| match v {
            AMQPValue::LongLongInt(n) => u32::try_from(*n).ok(),
            AMQPValue::LongInt(n) => u32::try_from(*n).ok(),
            AMQPValue::ShortInt(n) => u32::try_from(*n).ok(),
            AMQPValue::LongUInt(n) => Some(*n),
            _ => None,
        })
        .unwrap_or(0)
}

/// Consume until `shutdown` resolves; reconnect when the connection is lost.
pub async fn run(
    app: Arc<DeployedApp>,
    config: AmqpConfig,
    readiness: Arc<Readiness>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let (stop, stopping) = tokio::sync::watch::channel(false);
    let draining = readiness.clone();
    tokio::spawn(async move {
        shutdown.await;
        draining.drain();
        tracing::info!("draining: no new deliveries; finishing the ones in hand");
        let _ = stop.send(true);
    });
    loop {
        let outcome = consume(app.clone(), &config, &readiness, stopping.clone()).await;
        match outcome {
            Ok(true) => {
                tracing::info!("worker stopped");
                return Ok(());
            }
            Ok(false) => {
                readiness.not_ready("the AMQP consumer was cancelled; reconnecting");
                tracing::warn!("the AMQP consumer ended; reconnecting")
            }
            Err(e) => {
                readiness.not_ready(format!("AMQP connection lost: {e}"));
                tracing::error!(error = %e, url = %config.redacted_url(), "AMQP connection lost; reconnecting")
            }
        }
        let mut stopping = stopping.clone();
        tokio::select! {
            _ = stopping.wait_for(|s| *s) => return Ok(()),
            _ = tokio::time::sleep(Duration::from_secs(2)) => {}
        }
    }
}

/// One connection's worth of consuming, until the consumer ends (`Ok(false)`) or `stopping`
/// turns true (`Ok(true)`: no more deliveries taken, the ones in hand finished, the
/// connection closed). Each delivery is handled on its own task; the prefetch bounds them.
async fn consume(
    app: Arc<DeployedApp>,
    config: &AmqpConfig,
    readiness: &Readiness,
    mut stopping: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<bool> {
    let connection = Connection::connect(&config.url, ConnectionProperties::default()).await?;
    let channel = connection.create_channel().await?;
    declare(&channel, config).await?;
    channel
        .basic_qos(config.prefetch, BasicQosOptions::default())
        .await?;
    let tag = format!("hashgate-{}", std::process::id());
    let mut consumer = channel
        .basic_consume(
            config.queue.as_str().into(),
            tag.as_str().into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    tracing::info!(
        url = %config.redacted_url(),
        exchange = %config.exchange,
        queue = %config.queue,
        routing_key = %config.routing_key,
        prefetch = config.prefetch,
        "AMQP ingress consuming"
    );
    readiness.ready();
    let mut in_hand = tokio::task::JoinSet::new();
    let mut stopped = false;
    let mut failure = None;
    loop {
        tokio::select! {
            _ = stopping.wait_for(|s| *s) => {
                stopped = true;
                break;
            }
            next = consumer.next() => match next {
                None => break,
                Some(Err(e)) => {
                    failure = Some(e);
                    break;
                }
                Some(Ok(delivery)) => {
                    let app = app.clone();
                    in_hand.spawn(async move { handle(&app, delivery).await });
                    while in_hand.try_join_next().is_some() {}
                }
            },
        }
    }
    if stopped {
        let _ = channel
            .basic_cancel(tag.as_str().into(), BasicCancelOptions::default())
            .await;
    }
    while in_hand.join_next().await.is_some() {}
    if stopped {
        let _ = connection
            .close(200, "hashgate worker stopping".into())
            .await;
    }
    match failure {
        Some(e) => Err(e.into()),
        None => Ok(stopped),
    }
}

/// The exchange the store publishes to, the work queue bound to it, and the dead letters.
async fn declare(channel: &lapin::Channel, config: &AmqpConfig) -> anyhow::Result<()> {
    let dead = config.dead_letters();
    let durable = ExchangeDeclareOptions {
        durable: true,
        ..Default::default()
    };
    channel
        .exchange_declare(
            config.exchange.as_str().into(),
            ExchangeKind::Topic,
            durable,
            FieldTable::default(),
        )
        .await?;
    channel
        .exchange_declare(
            dead.as_str().into(),
            ExchangeKind::Fanout,
            durable,
            FieldTable::default(),
        )
        .await?;
    channel
        .queue_declare(
            dead.as_str().into(),
            QueueDeclareOptions::durable(),
            FieldTable::default(),
        )
        .await?;
    channel
        .queue_bind(
            dead.as_str().into(),
            dead.as_str().into(),
            "".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;
    let mut arguments = FieldTable::default();
    arguments.insert("x-queue-type".into(), long_string("quorum"));
    // Deliveries beyond the limit are dead-lettered: the first plus `limit` redeliveries.
    arguments.insert(
        "x-delivery-limit".into(),
        AMQPValue::LongInt(config.max_attempts.saturating_sub(1).min(i32::MAX as u32) as i32),
    );
    arguments.insert("x-dead-letter-exchange".into(), long_string(&dead));
    channel
        .queue_declare(
            config.queue.as_str().into(),
            QueueDeclareOptions::durable(),
            arguments,
        )
        .await?;
    channel
        .queue_bind(
            config.queue.as_str().into(),
            config.exchange.as_str().into(),
            config.routing_key.as_str().into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;
    Ok(())
}

async fn handle(app: &DeployedApp, delivery: lapin::message::Delivery) {
    let attempts = delivery_count(&delivery.properties);
    let notices = match std::str::from_utf8(&delivery.data)
        .map_err(|e| format!("body: not UTF-8: {e}"))
        .and_then(|text| parse_body(text).map_err(|e| e.to_string()))
    {
        Ok(n) => n,
        Err(reason) => {
            // Retrying cannot mend it: straight to the dead letters.
            tracing::error!(%reason, routing_key = %delivery.routing_key, "AMQP message refused; dead-lettered");
            if let Err(e) = delivery.reject(BasicRejectOptions { requeue: false }).await {
                tracing::error!(error = %e, "cannot reject an AMQP message");
            }
            return;
        }
    };
    if app.process_all(notices).await {
        if let Err(e) = delivery.ack(BasicAckOptions::default()).await {
            // It will be delivered again and converge on the same outcome.
            tracing::error!(error = %e, "handled, but cannot acknowledge it");
        }
        return;
    }
    let wait = backoff(attempts).min(Duration::from_secs(10));
    tracing::warn!(
        attempts = attempts + 1,
        retry_in_seconds = wait.as_secs(),
        "AMQP message failed; will retry"
    );
    tokio::time::sleep(wait).await;
    if let Err(e) = delivery
        .nack(BasicNackOptions {
            requeue: true,
            multiple: false,
        })
        .await
    {
        tracing::error!(error = %e, "cannot return an AMQP message; the broker will on disconnect");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(url: &str) -> AmqpConfig {
        AmqpConfig {
            url: url.into(),
            exchange: "x".into(),
            queue: "q".into(),
            routing_key: "#".into(),
            prefetch: 8,
            max_attempts: 5,
        }
    }

    #[test]
    fn passwords_never_reach_the_log() {
        let c = config("amqp://hashgate:s3cr3t@rabbit.internal:5672/%2f");
        assert_eq!(
            c.redacted_url(),
            "amqp://hashgate:***@rabbit.internal:5672/%2f"
        );
        assert!(!format!("{c:?}").contains("s3cr3t"));
        assert_eq!(
            config("amqp://127.0.0.1:5672").redacted_url(),
            "amqp://127.0.0.1:5672"
        );
        assert_eq!(c.dead_letters(), "q.dead");
    }

    #[test]
    fn the_delivery_count_comes_from_the_quorum_queues_header() {
        let mut headers = FieldTable::default();
        headers.insert("x-delivery-count".into(), AMQPValue::LongLongInt(3));
        let p = lapin::BasicProperties::default().with_headers(headers);
        assert_eq!(delivery_count(&p), 3);
        assert_eq!(delivery_count(&lapin::BasicProperties::default()), 0);
    }
}

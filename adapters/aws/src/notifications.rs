//! Point an existing bucket's upload events at hashgate without touching what the bucket
//! already notifies. S3 replaces a bucket's whole notification configuration on every write,
//! so the current one is read, hashgate's part added, and all of it written back.

use aws_sdk_s3::types::{
    Event, EventBridgeConfiguration, NotificationConfiguration, QueueConfiguration,
};
use aws_sdk_s3::Client;

/// Where the bucket's upload events should go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// The stack's scan queue (its ARN).
    Queue(String),
    /// EventBridge (the stack's rule forwards them to the scan queue).
    EventBridge,
}

/// The id of the queue configuration hashgate adds.
pub const CONFIGURATION_ID: &str = "hashgate-scan";

#[derive(Debug, PartialEq, Eq)]
pub enum Attached {
    Added,
    /// The bucket already delivered its uploads as asked; nothing was written.
    AlreadyThere,
}

#[derive(Debug, thiserror::Error)]
pub enum AttachError {
    #[error(
        "s3://{bucket}: already sends object-created events to {destination} (configuration \
         {id:?}); S3 refuses a second configuration for the same events, so nothing was \
         changed. Use EventBridge delivery instead (--eventbridge, with the stack's \
         TriggerMode=EventBridge): it leaves every existing destination as it is"
    )]
    Overlap {
        bucket: String,
        destination: String,
        id: String,
    },
    #[error("s3://{bucket}: {operation}: {message}")]
    Aws {
        bucket: String,
        operation: &'static str,
        message: String,
    },
}

fn created(kinds: &[Event]) -> bool {
    kinds
        .iter()
        .any(|e| e.as_str().starts_with("s3:ObjectCreated:"))
}

/// Add `delivery` to `bucket`'s notifications, keeping every existing configuration.
pub async fn attach(
    client: &Client,
    bucket: &str,
    delivery: &Delivery,
) -> Result<Attached, AttachError> {
    let aws = |operation, e: &dyn std::fmt::Debug| AttachError::Aws {
        bucket: bucket.to_string(),
        operation,
        message: format!("{e:?}"),
    };
    let current = client
        .get_bucket_notification_configuration()
        .bucket(bucket)
        .send()
        .await
        .map_err(|e| aws("GetBucketNotificationConfiguration", &e))?;
    let queues = current.queue_configurations().to_vec();
    let mut config = NotificationConfiguration::builder()
        .set_queue_configurations(Some(queues.clone()))
        .set_topic_configurations(Some(current.topic_configurations().to_vec()))
        .set_lambda_function_configurations(Some(current.lambda_function_configurations().to_vec()))
        .set_event_bridge_configuration(current.event_bridge_configuration().cloned());
    match delivery {
        Delivery::EventBridge => {
            if current.event_bridge_configuration().is_some() {
                return Ok(Attached::AlreadyThere);
            }
            config = config.event_bridge_configuration(EventBridgeConfiguration::builder().build());
        }
        Delivery::Queue(arn) => {
            if queues
                .iter()
                .any(|q| q.queue_arn() == arn && created(q.events()) && q.filter().is_none())
            {
                return Ok(Attached::AlreadyThere);
            }
            let existing = queues
                .iter()
                .filter(|q| created(q.events()))
                .map(|q| (q.id(), q.queue_arn().to_string()))
                .chain(
                    current
                        .topic_configurations()
                        .iter()
                        .filter(|t| created(t.events()))
                        .map(|t| (t.id(), t.topic_arn().to_string())),
                )
                .chain(
                    current
                        .lambda_function_configurations()
                        .iter()
                        .filter(|l| created(l.events()))
                        .map(|l| (l.id(), l.lambda_function_arn().to_string())),
                )
                .next();
            if let Some((id, destination)) = existing {
                return Err(AttachError::Overlap {
                    bucket: bucket.to_string(),
                    destination,
                    id: id.unwrap_or_default().to_string(),
                });
            }
            let ours = QueueConfiguration::builder()
                .id(CONFIGURATION_ID)
                .queue_arn(arn)
                .events(Event::from("s3:ObjectCreated:*"))
                .build()
                .map_err(|e| aws("PutBucketNotificationConfiguration", &e))?;
            config = config.queue_configurations(ours);
        }
    }
    client
        .put_bucket_notification_configuration()
        .bucket(bucket)
        .notification_configuration(config.build())
        .send()
        .await
        .map_err(|e| aws("PutBucketNotificationConfiguration", &e))?;
    Ok(Attached::Added)
}

//! The real adapters, wired from the configuration.

use hashgate_aws::dynamo::DynamoHashes;
use hashgate_aws::filter_source::Alerts;
use hashgate_aws::list_sync::{default_work_dir, ListSync};
use hashgate_aws::publisher::Publisher;

use crate::config::Config;
use crate::handler::Handler;

/// The handler over the stack `config` names, with the SDK configuration `sdk`.
pub async fn handler(config: &Config, sdk: &aws_config::SdkConfig) -> anyhow::Result<Handler> {
    let signing = hashgate_aws::signing::load(sdk, &config.signing)
        .await
        .map_err(anyhow::Error::msg)?;
    let own = signing.public().id();
    if !config.trusted.ids().contains(&own) {
        anyhow::bail!(
            "the signing key (id {own}) is not among {} ({}): scanners would refuse every filter \
             it signs",
            hashgate_aws::signing::PUBLIC_KEYS_VAR,
            config.trusted.ids().join(", ")
        );
    }
    let s3 = hashgate_aws::s3_client(sdk);
    Ok(Handler {
        sync: ListSync {
            s3: s3.clone(),
            bucket: config.lists_bucket.clone(),
            hashes: DynamoHashes::new(aws_sdk_dynamodb_client(sdk), &config.hash_table),
            publisher: Publisher::new(
                s3,
                &config.filter_bucket,
                config.trusted.clone(),
                config.snapshots_kept,
            ),
            signing,
            limits: config.limits,
            fp_rate: config.fp_rate,
            alerts: config.event_bus.as_ref().map(|bus| Alerts {
                events: aws_sdk_eventbridge::Client::new(sdk),
                bus: bus.clone(),
            }),
            work_dir: default_work_dir(),
        },
        sources: config.sources.clone(),
    })
}

fn aws_sdk_dynamodb_client(sdk: &aws_config::SdkConfig) -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::new(sdk)
}

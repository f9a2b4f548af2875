//! The service wired to the real adapters: DynamoDB for cases, the audit chain and reveal
//! tallies; S3 for the evidence and restores; S3 and KMS for the signed checkpoints; the
//! reports bucket and EventBridge for report packages; the exact store for the own list and
//! list feedback.

use std::sync::Arc;

use hashgate_aws::checkpoint::S3Checkpoints;
use hashgate_aws::dynamo::{DynamoCases, DynamoHashes};
use hashgate_aws::reports::S3Reports;
use hashgate_aws::s3::S3Objects;
use hashgate_core::followup::{Followups, Settings};
use hashgate_core::time::Timestamp;

use crate::auth::Authenticator;
use crate::config::Config;
use crate::routes::AppState;
use crate::service::Service;

pub type DeployedFollowups = Followups<S3Reports, DynamoHashes, DynamoHashes>;
pub type DeployedState = AppState<DynamoCases, S3Objects, S3Checkpoints, DeployedFollowups>;

pub async fn connect(config: &Config) -> Arc<DeployedState> {
    let sdk = hashgate_aws::sdk_config().await;
    let s3 = hashgate_aws::s3_client(&sdk);
    let dynamo = aws_sdk_dynamodb::Client::new(&sdk);
    let hashes = DynamoHashes::new(dynamo.clone(), &config.hash_table);
    let followups = Followups {
        outbox: S3Reports::new(
            s3.clone(),
            aws_sdk_eventbridge::Client::new(&sdk),
            &config.reports_bucket,
            config.event_bus.clone(),
        ),
        own_list: hashes.clone(),
        feedback: hashes,
        settings: Settings {
            report: config.report.clone(),
            own_list: config.own_list.clone(),
            suppress_after: config.suppress_after,
        },
    };
    let store = DynamoCases::new(dynamo, &config.case_table, &config.audit_table);
    let checkpoints = S3Checkpoints::new(
        s3.clone(),
        hashgate_aws::kms_client(&sdk),
        &config.checkpoint_bucket,
        &config.signing_key,
    );
    Arc::new(AppState {
        service: Service {
            store,
            evidence: S3Objects::new(s3),
            checkpoints,
            policy: config.policy.clone(),
            max_preview_bytes: config.max_preview_bytes,
            checkpoint_seconds: config.checkpoint_seconds,
            known_checkpoint: Default::default(),
            clock: Arc::new(Timestamp::now),
            followups,
        },
        auth: Authenticator::remote(config.auth.clone()),
        reveal_seconds: config.reveal_seconds,
    })
}

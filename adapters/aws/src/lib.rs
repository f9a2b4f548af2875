//! hashgate's AWS adapters: the core's ports implemented with the AWS SDK for Rust, for S3
//! (and S3-compatible stores through `AWS_ENDPOINT_URL`), DynamoDB, SQS, EventBridge and
//! KMS.

pub mod access;
pub mod checkpoint;
pub mod dynamo;
pub mod filter_source;
pub mod hold;
pub mod list_import;
pub mod list_sync;
pub mod logging;
pub mod metrics;
pub mod notifications;
pub mod notify;
pub mod own_list;
pub mod publisher;
pub mod reports;
pub mod s3;
pub mod secrets;
pub mod signing;

use aws_config::BehaviorVersion;
use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};

/// A loader of SDK configuration with a rustls HTTPS client; settings not given to it come
/// from the environment (credentials, region, `AWS_ENDPOINT_URL`).
pub fn config_loader() -> aws_config::ConfigLoader {
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https();
    aws_config::defaults(BehaviorVersion::latest()).http_client(http)
}

/// The SDK configuration from the environment.
pub async fn sdk_config() -> aws_config::SdkConfig {
    config_loader().load().await
}

/// An S3 client; path-style addressing whenever a custom endpoint is set, as self-hosted
/// S3-compatible stores (MinIO, Ceph, SeaweedFS) and emulators expect: `AWS_ENDPOINT_URL`
/// for every service, or `AWS_ENDPOINT_URL_S3` for S3 alone (objects in a self-hosted store,
/// cases elsewhere).
pub fn s3_client(config: &aws_config::SdkConfig) -> aws_sdk_s3::Client {
    let custom_endpoint = config.endpoint_url().is_some()
        || std::env::var_os("AWS_ENDPOINT_URL_S3").is_some_and(|v| !v.is_empty());
    let s3 = aws_sdk_s3::config::Builder::from(config)
        .force_path_style(custom_endpoint)
        .build();
    aws_sdk_s3::Client::from_conf(s3)
}

/// A KMS client (the audit checkpoints' signing key).
pub fn kms_client(config: &aws_config::SdkConfig) -> aws_sdk_kms::Client {
    aws_sdk_kms::Client::new(config)
}

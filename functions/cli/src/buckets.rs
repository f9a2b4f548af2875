//! `hashgate buckets attach`: connect an existing bucket to a deployed stack.

use std::process::ExitCode;

use hashgate_aws::notifications::{attach as attach_bucket, Attached, Delivery};

use crate::args::AttachArgs;

pub fn attach(args: &AttachArgs) -> anyhow::Result<ExitCode> {
    let delivery = match &args.queue_arn {
        Some(arn) if arn.starts_with("arn:") && arn.contains(":sqs:") => {
            Delivery::Queue(arn.clone())
        }
        Some(other) => anyhow::bail!(
            "--queue-arn {other:?}: not an SQS queue ARN (the stack's ScanQueueArn output)"
        ),
        None => Delivery::EventBridge,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let outcome = runtime.block_on(async {
        let sdk = hashgate_aws::sdk_config().await;
        attach_bucket(&hashgate_aws::s3_client(&sdk), &args.bucket, &delivery).await
    })?;
    let what = match &delivery {
        Delivery::Queue(arn) => format!("object-created events to {arn}"),
        Delivery::EventBridge => "events to EventBridge".to_string(),
    };
    match outcome {
        Attached::Added => println!(
            "s3://{}: now sends {what}; its other notifications are unchanged",
            args.bucket
        ),
        Attached::AlreadyThere => println!("s3://{}: already sends {what}", args.bucket),
    }
    Ok(ExitCode::SUCCESS)
}

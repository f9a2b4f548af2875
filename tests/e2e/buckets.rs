//! `hashgate buckets attach` on buckets the provider already has, with notifications of
//! their own: they survive, uploads reach the scanner (through the scan queue directly, or
//! through EventBridge and the stack's rule), and an overlap is refused with nothing changed.
//! The stack runs with TriggerMode=EventBridge, so its own upload bucket's events take the
//! EventBridge path too.

use std::time::Duration;

use aws_sdk_s3::types::{Event, NotificationConfiguration, QueueConfiguration, TopicConfiguration};
use hashgate_e2e::{bin, case_ids, eventually, import_list, put, Stack};

const LISTED: &[u8] = b"content on the hash list, uploaded to an existing bucket";

async fn queue_arn(sqs: &aws_sdk_sqs::Client, url: &str) -> String {
    sqs.get_queue_attributes()
        .queue_url(url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes()
        .unwrap()[&aws_sdk_sqs::types::QueueAttributeName::QueueArn]
        .clone()
}

async fn notifications(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
) -> aws_sdk_s3::operation::get_bucket_notification_configuration::GetBucketNotificationConfigurationOutput{
    s3.get_bucket_notification_configuration()
        .bucket(bucket)
        .send()
        .await
        .unwrap()
}

fn attach(stack: &Stack, args: &[&str]) -> (i32, String, String) {
    let out = stack
        .command(bin("hashgate"))
        .args(["buckets", "attach"])
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn attaching_keeps_existing_notifications_and_scans_new_uploads() {
    let legacy = "legacy-photos";
    let crowded = "crowded-bucket";
    let stack = Stack::start_with(&[
        "TriggerMode=EventBridge",
        &format!("ExistingBucketArns=arn:aws:s3:::{legacy},arn:aws:s3:::{crowded}"),
    ]);
    let sdk = stack.sdk().await;
    let s3 = hashgate_aws::s3_client(&sdk);
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let dynamo = aws_sdk_dynamodb::Client::new(&sdk);
    let scan_queue = queue_arn(&sqs, stack.var("HASHGATE_SCAN_QUEUE_URL")).await;
    let audit_url = sqs
        .create_queue()
        .queue_name("provider-audit")
        .send()
        .await
        .unwrap()
        .queue_url()
        .unwrap()
        .to_string();
    let audit = queue_arn(&sqs, &audit_url).await;
    let topic = "arn:aws:sns:us-east-1:123456789012:provider-deletions";

    // The provider's bucket already reports deletions and restores elsewhere.
    for bucket in [legacy, crowded] {
        s3.create_bucket().bucket(bucket).send().await.unwrap();
        s3.put_bucket_versioning()
            .bucket(bucket)
            .versioning_configuration(
                aws_sdk_s3::types::VersioningConfiguration::builder()
                    .status(aws_sdk_s3::types::BucketVersioningStatus::Enabled)
                    .build(),
            )
            .send()
            .await
            .unwrap();
    }
    let existing = NotificationConfiguration::builder()
        .queue_configurations(
            QueueConfiguration::builder()
                .id("provider-restores")
                .queue_arn(&audit)
                .events(Event::from("s3:ObjectRestore:Completed"))
                .build()
                .unwrap(),
        )
        .topic_configurations(
            TopicConfiguration::builder()
                .id("provider-deletions")
                .topic_arn(topic)
                .events(Event::from("s3:ObjectRemoved:*"))
                .build()
                .unwrap(),
        )
        .build();
    s3.put_bucket_notification_configuration()
        .bucket(legacy)
        .notification_configuration(existing)
        .skip_destination_validation(true)
        .send()
        .await
        .unwrap();

    let (code, stdout, stderr) = attach(&stack, &[legacy, "--queue-arn", &scan_queue]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        stdout.contains("now sends object-created events"),
        "{stdout}"
    );
    let after = notifications(&s3, legacy).await;
    let queues: Vec<_> = after
        .queue_configurations()
        .iter()
        .map(|q| (q.id().unwrap_or_default(), q.queue_arn()))
        .collect();
    assert!(
        queues.contains(&("provider-restores", audit.as_str())),
        "{queues:?}"
    );
    assert!(
        queues.contains(&("hashgate-scan", scan_queue.as_str())),
        "{queues:?}"
    );
    assert_eq!(after.topic_configurations().len(), 1, "the topic is kept");
    assert_eq!(after.topic_configurations()[0].topic_arn(), topic);

    // Again: nothing to do, nothing written.
    let (code, stdout, _) = attach(&stack, &[legacy, "--queue-arn", &scan_queue]);
    assert_eq!(code, 0);
    assert!(stdout.contains("already sends"), "{stdout}");
    let again = notifications(&s3, legacy).await;
    assert_eq!(again.queue_configurations().len(), 2);

    // An upload to the existing bucket is scanned and its match quarantined.
    import_list(&stack, &[LISTED], &[]);
    let _worker = stack.worker(&[]);
    put(&s3, legacy, "albums/2019/img.jpg", LISTED).await;
    let table = stack.var("HASHGATE_CASE_TABLE").to_string();
    let cases = |n: usize| {
        let (dynamo, table) = (dynamo.clone(), table.clone());
        async move { Some(case_ids(&dynamo, &table).await).filter(|ids| ids.len() == n) }
    };
    eventually(
        "a case for the upload to the existing bucket",
        Duration::from_secs(60),
        || cases(1),
    )
    .await;
    // The stack's own bucket, through EventBridge and the stack's rule.
    put(
        &s3,
        stack.var("HASHGATE_UPLOAD_BUCKET"),
        "own/img.jpg",
        LISTED,
    )
    .await;
    eventually(
        "a case for the upload to the stack's bucket",
        Duration::from_secs(60),
        || cases(2),
    )
    .await;

    // A bucket whose uploads already go somewhere cannot get a second queue configuration:
    // refused, nothing changed, EventBridge suggested; EventBridge delivery then works.
    let taken = NotificationConfiguration::builder()
        .queue_configurations(
            QueueConfiguration::builder()
                .id("provider-thumbnails")
                .queue_arn(&audit)
                .events(Event::from("s3:ObjectCreated:Put"))
                .build()
                .unwrap(),
        )
        .build();
    s3.put_bucket_notification_configuration()
        .bucket(crowded)
        .notification_configuration(taken)
        .send()
        .await
        .unwrap();
    let (code, _, stderr) = attach(&stack, &[crowded, "--queue-arn", &scan_queue]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("crowded-bucket") && stderr.contains("--eventbridge"),
        "{stderr}"
    );
    let unchanged = notifications(&s3, crowded).await;
    assert_eq!(unchanged.queue_configurations().len(), 1);
    assert!(unchanged.event_bridge_configuration().is_none());

    let (code, stdout, stderr) = attach(&stack, &[crowded, "--eventbridge"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        stdout.contains("now sends events to EventBridge"),
        "{stdout}"
    );
    let bridged = notifications(&s3, crowded).await;
    assert_eq!(
        bridged.queue_configurations()[0].id(),
        Some("provider-thumbnails"),
        "the existing configuration is kept"
    );
    // (moto keeps but does not return EventBridgeConfiguration: the proof is delivery.)
    put(&s3, crowded, "thumbs/img.jpg", LISTED).await;
    eventually(
        "a case for the upload to the bucket attached through EventBridge",
        Duration::from_secs(60),
        || cases(3),
    )
    .await;

    // Bad input: not a queue ARN.
    let (code, _, stderr) = attach(&stack, &[legacy, "--queue-arn", "https://sqs/queue"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("not an SQS queue ARN"), "{stderr}");
}

//! What each adapter asks of AWS: the SDK operations its code sends and the IAM actions they
//! need, on which of hashgate's resources. A deployment grants exactly these to the function
//! that uses the adapter; `tests/infra/template.rs` checks the template's roles against them,
//! and checks that every SDK call in an adapter's source is declared here.

/// A resource an adapter acts on, by its part in hashgate; a function binds each one it uses
/// to a concrete resource (an environment variable naming it, its event source...).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Resource {
    /// Objects (any key) of the buckets being scanned.
    ScannedObjects,
    /// The buckets being scanned themselves (bucket-level actions).
    ScannedBuckets,
    /// Objects of the quarantine bucket.
    QuarantineObjects,
    QuarantineBucket,
    /// The KMS key the quarantine bucket encrypts with.
    QuarantineKey,
    /// The filter snapshot object(s).
    FilterObjects,
    FilterBucket,
    HashTable,
    CaseTable,
    /// The case table's index `by_created`: the review queue.
    CaseQueueIndex,
    AuditTable,
    /// The audit table's index `by_case`: one case's history.
    AuditCaseIndex,
    /// Objects of the audit checkpoint bucket (the signed checkpoints).
    CheckpointObjects,
    CheckpointBucket,
    /// The KMS key that signs audit checkpoints.
    SigningKey,
    ReviewQueue,
    EventBus,
    /// Objects of the reports bucket (report packages, send states, NCMEC's answers).
    ReportObjects,
    ReportBucket,
    /// The Secrets Manager secret holding the CyberTipline credentials.
    CybertipSecret,
    /// The queue that keeps "Report Ready" events the report sender could not handle
    /// (not delivered by EventBridge, or failed after Lambda's retries).
    ReportFailureQueue,
    /// The queue of upload events the scanner consumes.
    ScanQueue,
    /// Objects of the lists bucket (list files as received, applied or rejected, and the
    /// pulled sources' state).
    ListObjects,
    ListsBucket,
    /// The queue of the lists bucket's "object created" events, which hashlist-sync consumes.
    ListsQueue,
    /// The Secrets Manager secret holding the filter manifests' Ed25519 signing key.
    FilterSigningSecret,
    /// The function's own log group.
    LogGroup,
}

impl Resource {
    /// Whether this is a set of objects (granted as `<bucket ARN>/<key pattern>`) rather
    /// than a bucket, table, queue or key itself.
    pub fn is_objects(self) -> bool {
        matches!(
            self,
            Resource::ScannedObjects
                | Resource::QuarantineObjects
                | Resource::FilterObjects
                | Resource::CheckpointObjects
                | Resource::ReportObjects
                | Resource::ListObjects
        )
    }
}

/// Some SDK operations, the IAM actions they need, and on what.
#[derive(Clone, Copy, Debug)]
pub struct Need {
    /// SDK operation names as the service API spells them (`HeadObject`); empty for what the
    /// platform does on the function's behalf (an event source mapping polling a queue).
    pub operations: &'static [&'static str],
    pub actions: &'static [&'static str],
    pub on: Resource,
}

impl Need {
    pub const fn new(
        operations: &'static [&'static str],
        actions: &'static [&'static str],
        on: Resource,
    ) -> Need {
        Need {
            operations,
            actions,
            on,
        }
    }
}

const fn need(
    operations: &'static [&'static str],
    actions: &'static [&'static str],
    on: Resource,
) -> Need {
    Need::new(operations, actions, on)
}

/// [`crate::s3::S3Objects`]: scan, tag, quarantine and delete uploads.
pub const S3_OBJECTS: &[Need] = &[
    // Reads name the exact version, so they need the *Version actions too.
    need(
        &["HeadObject", "GetObject", "CopyObject", "UploadPartCopy"],
        &["s3:GetObject", "s3:GetObjectVersion"],
        Resource::ScannedObjects,
    ),
    // Without ListBucket a HEAD of a deleted object answers 403, not 404.
    need(
        &["HeadObject"],
        &["s3:ListBucket"],
        Resource::ScannedBuckets,
    ),
    need(
        &["ListObjectVersions"],
        &["s3:ListBucketVersions"],
        Resource::ScannedBuckets,
    ),
    need(
        &["GetObjectTagging"],
        &["s3:GetObjectTagging", "s3:GetObjectVersionTagging"],
        Resource::ScannedObjects,
    ),
    need(
        &["PutObjectTagging"],
        &["s3:PutObjectTagging", "s3:PutObjectVersionTagging"],
        Resource::ScannedObjects,
    ),
    need(
        &["DeleteObject"],
        &["s3:DeleteObject", "s3:DeleteObjectVersion"],
        Resource::ScannedObjects,
    ),
    // The copy is written under an Object Lock retention date.
    need(
        &[
            "CopyObject",
            "CreateMultipartUpload",
            "UploadPartCopy",
            "CompleteMultipartUpload",
        ],
        &["s3:PutObject", "s3:PutObjectRetention"],
        Resource::QuarantineObjects,
    ),
    need(
        &["AbortMultipartUpload"],
        &["s3:AbortMultipartUpload"],
        Resource::QuarantineObjects,
    ),
    // The copy is verified by reading it back.
    need(
        &["HeadObject", "GetObject"],
        &["s3:GetObject", "s3:GetObjectVersion"],
        Resource::QuarantineObjects,
    ),
    need(
        &["HeadObject"],
        &["s3:ListBucket"],
        Resource::QuarantineBucket,
    ),
    need(
        &["CopyObject", "CreateMultipartUpload", "GetObject"],
        &["kms:GenerateDataKey", "kms:Decrypt"],
        Resource::QuarantineKey,
    ),
];

/// [`crate::filter_source::FilterSource`]: the signed manifest (a conditional GET; 404
/// when none is published, which needs `s3:ListBucket` to be told apart from 403), then the
/// snapshot it names; a refused one announced ("Filter Refused").
pub const FILTER_READ: &[Need] = &[
    need(&["GetObject"], &["s3:GetObject"], Resource::FilterObjects),
    need(&["GetObject"], &["s3:ListBucket"], Resource::FilterBucket),
    need(&["PutEvents"], &["events:PutEvents"], Resource::EventBus),
];

/// [`crate::publisher::Publisher`]: read the current manifest, write a snapshot and then the
/// manifest naming it, list the kept snapshots and delete those beyond the number kept
/// (hashlist-sync; `hashgate lists import` and `hashgate filter rollback` on a stack).
pub const FILTER_PUBLISH: &[Need] = &[
    need(
        &["GetObject", "PutObject", "DeleteObject"],
        &["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
        Resource::FilterObjects,
    ),
    need(
        &["ListObjectsV2", "GetObject"],
        &["s3:ListBucket"],
        Resource::FilterBucket,
    ),
];

/// [`crate::signing`]: the filter signing key from Secrets Manager (read through
/// `secrets::secret_string`).
pub const FILTER_SIGNING_SECRET: &[Need] = &[need(
    &["GetSecretValue"],
    &["secretsmanager:GetSecretValue"],
    Resource::FilterSigningSecret,
)];

/// [`crate::list_sync::ListSync`]: list files in the lists bucket — read (metadata first),
/// moved to `applied/` or `rejected/` (copy, then delete), a refusal's reason written beside
/// the file, the inbox listed by the scheduled sweep, a pulled source's file and state
/// written.
pub const LISTS_INBOX: &[Need] = &[
    need(
        &["HeadObject", "GetObject", "CopyObject"],
        &["s3:GetObject"],
        Resource::ListObjects,
    ),
    need(
        &["PutObject", "CopyObject"],
        &["s3:PutObject"],
        Resource::ListObjects,
    ),
    need(
        &["DeleteObject"],
        &["s3:DeleteObject"],
        Resource::ListObjects,
    ),
    need(
        &["ListObjectsV2", "HeadObject", "GetObject"],
        &["s3:ListBucket"],
        Resource::ListsBucket,
    ),
];

/// [`crate::list_sync::ListSync`]: a refused list announced ("List Refused") and a
/// publication ("Filter Published") on the event bus.
pub const LIST_EVENTS: &[Need] = &[need(
    &["PutEvents"],
    &["events:PutEvents"],
    Resource::EventBus,
)];

/// [`crate::dynamo::DynamoHashes`] as a scan uses it: lookups and the store version.
pub const HASHES_READ: &[Need] = &[need(
    &["BatchGetItem"],
    &["dynamodb:BatchGetItem"],
    Resource::HashTable,
)];

/// [`crate::dynamo::DynamoHashes`] as a list import uses it (the operator CLI).
pub const HASHES_WRITE: &[Need] = &[
    need(
        &["BatchGetItem"],
        &["dynamodb:BatchGetItem"],
        Resource::HashTable,
    ),
    need(
        &["BatchWriteItem"],
        &["dynamodb:BatchWriteItem"],
        Resource::HashTable,
    ),
    need(
        &["UpdateItem"],
        &["dynamodb:UpdateItem"],
        Resource::HashTable,
    ),
    need(&["Scan"], &["dynamodb:Scan"], Resource::HashTable),
];

/// [`crate::dynamo::DynamoHashes`] as list feedback uses it (`ListFeedback`, the review
/// function after a false positive; `enable`, the operator CLI): the digest's item read,
/// then its `feedback` attribute written conditionally.
pub const HASHES_FEEDBACK: &[Need] = &[
    need(
        &["BatchGetItem"],
        &["dynamodb:BatchGetItem"],
        Resource::HashTable,
    ),
    need(
        &["UpdateItem"],
        &["dynamodb:UpdateItem"],
        Resource::HashTable,
    ),
];

/// [`crate::dynamo::DynamoHashes::feedback`]: every entry's feedback, for `lists stats` and
/// `lists feedback` (the operator CLI).
pub const HASHES_FEEDBACK_LIST: &[Need] =
    &[need(&["Scan"], &["dynamodb:Scan"], Resource::HashTable)];

/// [`crate::dynamo::DynamoCases`] as the scanner uses it (`CaseStore`): a case and its
/// audit entry in one transaction.
pub const CASES: &[Need] = &[
    // TransactWriteItems is authorised per item, as the PutItem it contains.
    need(
        &["TransactWriteItems"],
        &["dynamodb:PutItem"],
        Resource::CaseTable,
    ),
    need(
        &["TransactWriteItems"],
        &["dynamodb:PutItem"],
        Resource::AuditTable,
    ),
    // The chain's head, which the new entry is linked after.
    need(&["Query"], &["dynamodb:Query"], Resource::AuditTable),
    // A case a retry finds existing is read back.
    need(&["GetItem"], &["dynamodb:GetItem"], Resource::CaseTable),
];

/// [`crate::dynamo::DynamoCases`] as the review service uses it (`ReviewStore`): cases,
/// the queue, decisions, reveal tallies and the audit chain.
pub const REVIEW_CASES: &[Need] = &[
    // A case; a reviewer's reveal tally.
    need(&["GetItem"], &["dynamodb:GetItem"], Resource::CaseTable),
    need(&["Query"], &["dynamodb:Query"], Resource::CaseQueueIndex),
    // A decision: the case (conditional on its revision) and its audit entry, one
    // transaction, authorised per item as the PutItem it contains.
    need(
        &["TransactWriteItems"],
        &["dynamodb:PutItem"],
        Resource::CaseTable,
    ),
    need(
        &["TransactWriteItems", "PutItem"],
        &["dynamodb:PutItem"],
        Resource::AuditTable,
    ),
    // Counting a reveal below the day's limit.
    need(
        &["UpdateItem"],
        &["dynamodb:UpdateItem"],
        Resource::CaseTable,
    ),
    // The chain's head and the chain in order.
    need(&["Query"], &["dynamodb:Query"], Resource::AuditTable),
    need(&["Query"], &["dynamodb:Query"], Resource::AuditCaseIndex),
];

/// [`crate::s3::S3Objects`] as the review service uses it (`Evidence`): previews of the
/// evidence, and restores of false positives to the buckets they came from.
pub const EVIDENCE: &[Need] = &[
    // The quarantined copy: HEAD (size, content type), GET for a preview, and the source
    // of a restore, by version.
    need(
        &["HeadObject", "GetObject", "CopyObject", "UploadPartCopy"],
        &["s3:GetObject", "s3:GetObjectVersion"],
        Resource::QuarantineObjects,
    ),
    // A copy takes the source's tags with it.
    need(
        &["CopyObject"],
        &["s3:GetObjectTagging", "s3:GetObjectVersionTagging"],
        Resource::QuarantineObjects,
    ),
    // Without ListBucket a HEAD of a missing copy answers 403, not 404.
    need(
        &["HeadObject", "GetObject"],
        &["s3:ListBucket"],
        Resource::QuarantineBucket,
    ),
    need(
        &["GetObject", "CopyObject", "UploadPartCopy"],
        &["kms:Decrypt"],
        Resource::QuarantineKey,
    ),
    // An object held in place (preview), a restore's candidate keys (HEAD), the restored
    // copy read back by version to verify it.
    need(
        &["HeadObject", "GetObject"],
        &["s3:GetObject", "s3:GetObjectVersion"],
        Resource::ScannedObjects,
    ),
    need(
        &["HeadObject", "GetObject"],
        &["s3:ListBucket"],
        Resource::ScannedBuckets,
    ),
    // Releasing an object held in place finds its version by ETag when the case names
    // none and the key has changed since.
    need(
        &["ListObjectVersions"],
        &["s3:ListBucketVersions"],
        Resource::ScannedBuckets,
    ),
    // The restored copy (multipart above 5 GiB), never over an existing object.
    need(
        &[
            "CopyObject",
            "CreateMultipartUpload",
            "UploadPartCopy",
            "CompleteMultipartUpload",
        ],
        &["s3:PutObject"],
        Resource::ScannedObjects,
    ),
    need(
        &["AbortMultipartUpload"],
        &["s3:AbortMultipartUpload"],
        Resource::ScannedObjects,
    ),
    // Releasing a hold in place: the result tag becomes `released`, the owner's tags stay.
    need(
        &["GetObjectTagging"],
        &["s3:GetObjectTagging", "s3:GetObjectVersionTagging"],
        Resource::ScannedObjects,
    ),
    need(
        &["PutObjectTagging"],
        &["s3:PutObjectTagging", "s3:PutObjectVersionTagging"],
        Resource::ScannedObjects,
    ),
];

/// [`crate::hold::LegalHolds`]: place and lift the legal hold on a case's quarantined copy
/// (every stored version of its key) and on its report package (every object version under
/// `reports/<case_id>/`), each read first and set only where it differs. The operator CLI
/// only (`hashgate cases hold` / `release`), as a principal the quarantine bucket's policy
/// lets in (ReviewerRole).
pub const LEGAL_HOLDS: &[Need] = &[
    need(
        &["GetObjectLegalHold"],
        &["s3:GetObjectLegalHold"],
        Resource::QuarantineObjects,
    ),
    need(
        &["PutObjectLegalHold"],
        &["s3:PutObjectLegalHold"],
        Resource::QuarantineObjects,
    ),
    need(
        &["ListObjectVersions"],
        &["s3:ListBucketVersions"],
        Resource::QuarantineBucket,
    ),
    need(
        &["GetObjectLegalHold"],
        &["s3:GetObjectLegalHold"],
        Resource::ReportObjects,
    ),
    need(
        &["PutObjectLegalHold"],
        &["s3:PutObjectLegalHold"],
        Resource::ReportObjects,
    ),
    need(
        &["ListObjectVersions"],
        &["s3:ListBucketVersions"],
        Resource::ReportBucket,
    ),
];

/// [`crate::checkpoint::S3Checkpoints`]: sign checkpoints of the audit chain's head, write
/// them (never over an existing one), list, read and verify them.
pub const CHECKPOINTS: &[Need] = &[
    need(
        &["PutObject"],
        &["s3:PutObject"],
        Resource::CheckpointObjects,
    ),
    need(
        &["GetObject"],
        &["s3:GetObject"],
        Resource::CheckpointObjects,
    ),
    need(
        &["ListObjectsV2"],
        &["s3:ListBucket"],
        Resource::CheckpointBucket,
    ),
    need(
        &["Sign", "Verify"],
        &["kms:Sign", "kms:Verify"],
        Resource::SigningKey,
    ),
];

/// [`crate::notify::QueueAndBus`]: announce a new case.
pub const NOTIFY: &[Need] = &[
    need(
        &["SendMessage"],
        &["sqs:SendMessage"],
        Resource::ReviewQueue,
    ),
    need(&["PutEvents"], &["events:PutEvents"], Resource::EventBus),
];

/// [`crate::s3::S3Objects`] as `hashgate backfill` lists a bucket (the operator CLI, with the
/// operator's credentials; the scans themselves need [`S3_OBJECTS`]).
pub const BACKFILL: &[Need] = &[need(
    &["ListObjectsV2"],
    &["s3:ListBucket"],
    Resource::ScannedBuckets,
)];

/// [`crate::notifications::attach`]: add hashgate to a bucket's notifications (the operator
/// CLI, with the operator's credentials).
pub const BUCKET_NOTIFICATIONS: &[Need] = &[need(
    &[
        "GetBucketNotificationConfiguration",
        "PutBucketNotificationConfiguration",
    ],
    &["s3:GetBucketNotification", "s3:PutBucketNotification"],
    Resource::ScannedBuckets,
)];

/// [`crate::reports::S3Reports`] as the followups use it (`ReportOutbox`): write a case's
/// report package once (its files, `package.json` last and only if absent; a package
/// already there is read back and kept) and announce it ("Report Ready").
pub const REPORT_OUTBOX: &[Need] = &[
    // A held case's package is written under its legal hold (the header needs the action).
    need(
        &["PutObject"],
        &["s3:PutObject", "s3:PutObjectLegalHold"],
        Resource::ReportObjects,
    ),
    need(&["GetObject"], &["s3:GetObject"], Resource::ReportObjects),
    // Without ListBucket a GET of a missing file answers 403, not 404.
    need(&["GetObject"], &["s3:ListBucket"], Resource::ReportBucket),
    // "Report Ready", through `notify::put_event`.
    need(&["PutEvents"], &["events:PutEvents"], Resource::EventBus),
];

/// [`crate::reports::S3Reports`] as the report sender uses it (the report sender function,
/// and the operator CLI's `reports` commands): list and read packages, persist send states
/// and NCMEC's answers, read the evidence to upload.
pub const REPORT_SENDER: &[Need] = &[
    need(&["GetObject"], &["s3:GetObject"], Resource::ReportObjects),
    need(&["PutObject"], &["s3:PutObject"], Resource::ReportObjects),
    need(
        &["GetObject", "ListObjectsV2"],
        &["s3:ListBucket"],
        Resource::ReportBucket,
    ),
    need(
        &["GetObject"],
        &["s3:GetObject"],
        Resource::QuarantineObjects,
    ),
    need(
        &["GetObject"],
        &["s3:ListBucket"],
        Resource::QuarantineBucket,
    ),
    need(&["GetObject"], &["kms:Decrypt"], Resource::QuarantineKey),
];

/// [`crate::secrets::fetch_secret`]: the CyberTipline credentials.
pub const CYBERTIP_SECRET: &[Need] = &[need(
    &["GetSecretValue"],
    &["secretsmanager:GetSecretValue"],
    Resource::CybertipSecret,
)];

/// `DynamoHashes` as the provider's own list (`own_list.rs`, the review function after a
/// confirmation): one small import — the meta item read, the entries staged, the
/// generation begun and committed. No Scan: the filter is not rebuilt here.
pub const OWN_LIST: &[Need] = &[
    need(
        &["BatchGetItem"],
        &["dynamodb:BatchGetItem"],
        Resource::HashTable,
    ),
    need(
        &["BatchWriteItem"],
        &["dynamodb:BatchWriteItem"],
        Resource::HashTable,
    ),
    need(
        &["UpdateItem"],
        &["dynamodb:UpdateItem"],
        Resource::HashTable,
    ),
];

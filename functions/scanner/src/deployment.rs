//! What a deployment must give the scanner: every environment variable it reads, and every
//! AWS action its code (and Lambda, on its behalf) needs, bound to the resource it is
//! needed on. `tests/infra/template.rs` holds `infra/template.yaml` to this: each variable
//! the function needs is set there, nothing else is, and its role grants exactly these
//! actions on exactly these resources.

use hashgate_aws::access::{self, Need, Resource};

/// Whether a Lambda deployment sets a variable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Deployed {
    /// The template sets it on the function.
    Set,
    /// The template must not set it; the reason says who does.
    NotInLambda(&'static str),
}

#[derive(Clone, Copy, Debug)]
pub struct Variable {
    pub name: &'static str,
    pub deployed: Deployed,
}

const fn set(name: &'static str) -> Variable {
    Variable {
        name,
        deployed: Deployed::Set,
    }
}

/// A self-hosted worker's setting: how events reach it, which Lambda decides itself.
const fn worker(name: &'static str) -> Variable {
    Variable {
        name,
        deployed: Deployed::NotInLambda(
            "self-hosted workers only (HASHGATE_INGRESS); in Lambda, S3, SQS or EventBridge invoke the function",
        ),
    }
}

/// Every variable the scanner reads (the README's configuration table explains each).
pub const VARIABLES: &[Variable] = &[
    set("HASHGATE_HASH_TABLE"),
    set("HASHGATE_FILTER_BUCKET"),
    set("HASHGATE_FILTER_PUBLIC_KEYS"),
    set("HASHGATE_FILTER_REFRESH_SECONDS"),
    set("HASHGATE_QUARANTINE_BUCKET"),
    set("HASHGATE_QUARANTINE_MODE"),
    set("HASHGATE_PERCEPTUAL_MODE"),
    set("HASHGATE_PDQ_THRESHOLD"),
    set("HASHGATE_PDQ_MIN_QUALITY"),
    set("HASHGATE_RETENTION_DAYS"),
    set("HASHGATE_CASE_TABLE"),
    set("HASHGATE_AUDIT_TABLE"),
    set("HASHGATE_REVIEW_QUEUE_URL"),
    set("HASHGATE_EVENT_BUS"),
    set("HASHGATE_MAX_OBJECT_BYTES"),
    set("HASHGATE_TAG_CLEAN"),
    set("HASHGATE_LOG"),
    Variable {
        name: "HASHGATE_DB",
        deployed: Deployed::NotInLambda(
            "the embedded hash store of self-hosted workers; Lambda uses HASHGATE_HASH_TABLE",
        ),
    },
    worker("HASHGATE_INGRESS"),
    worker("HASHGATE_HTTP_LISTEN"),
    worker("HASHGATE_HTTP_TOKEN"),
    worker("HASHGATE_SPOOL_DIR"),
    worker("HASHGATE_SPOOL_MAX"),
    worker("HASHGATE_MAX_ATTEMPTS"),
    worker("HASHGATE_CONCURRENCY"),
    worker("HASHGATE_AMQP_URL"),
    worker("HASHGATE_AMQP_EXCHANGE"),
    worker("HASHGATE_AMQP_QUEUE"),
    worker("HASHGATE_AMQP_ROUTING_KEY"),
    worker("HASHGATE_AMQP_PREFETCH"),
    Variable {
        name: "HASHGATE_SCAN_QUEUE_URL",
        deployed: Deployed::NotInLambda(
            "worker mode only; in Lambda the SQS event source delivers the scan queue",
        ),
    },
    Variable {
        name: "HASHGATE_LOG_FORMAT",
        deployed: Deployed::NotInLambda("outside Lambda only: in Lambda, logs are always JSON"),
    },
];

/// Worker mode (outside Lambda) polls the scan queue itself, leasing what it takes.
pub const WORKER: &[Need] = &[Need::new(
    &["ReceiveMessage", "DeleteMessage", "ChangeMessageVisibility"],
    &[
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
        "sqs:ChangeMessageVisibility",
    ],
    Resource::ScanQueue,
)];

/// What Lambda does with the function's role: the SQS event source polls the scan queue,
/// and the function's output goes to its log group.
pub const LAMBDA: &[Need] = &[
    Need::new(
        &[],
        &[
            "sqs:ReceiveMessage",
            "sqs:DeleteMessage",
            "sqs:ChangeMessageVisibility",
            "sqs:GetQueueAttributes",
        ],
        Resource::ScanQueue,
    ),
    Need::new(
        &[],
        &["logs:CreateLogStream", "logs:PutLogEvents"],
        Resource::LogGroup,
    ),
];

/// Everything the scanner needs, adapter by adapter.
pub const NEEDS: &[&[Need]] = &[
    access::S3_OBJECTS,
    access::FILTER_READ,
    access::HASHES_READ,
    access::CASES,
    access::NOTIFY,
    WORKER,
    LAMBDA,
];

/// Where a deployment finds each resource the scanner acts on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Binding {
    /// Named by this variable (a bucket, table or queue URL).
    Variable(&'static str),
    /// The buckets whose upload events reach the scanner.
    ScannedBuckets,
    /// The queue the function's event source reads.
    EventSourceQueue,
    /// The function's log group.
    LogGroup,
    /// The KMS key the bucket named by this variable encrypts with.
    KeyOfBucket(&'static str),
    /// The objects under this key prefix of the bucket named by the variable.
    ObjectsUnder {
        bucket: &'static str,
        prefix: &'static str,
    },
    /// The EventBridge bus named by this variable.
    EventBus(&'static str),
}

/// The binding of each resource the scanner uses.
pub fn binding(resource: Resource) -> Binding {
    match resource {
        Resource::ScannedObjects | Resource::ScannedBuckets => Binding::ScannedBuckets,
        Resource::QuarantineObjects | Resource::QuarantineBucket => {
            Binding::Variable("HASHGATE_QUARANTINE_BUCKET")
        }
        Resource::QuarantineKey => Binding::KeyOfBucket("HASHGATE_QUARANTINE_BUCKET"),
        // The signed manifest and the snapshots it names.
        Resource::FilterObjects => Binding::ObjectsUnder {
            bucket: "HASHGATE_FILTER_BUCKET",
            prefix: hashgate_core::manifest::FILTER_PREFIX,
        },
        Resource::FilterBucket => Binding::Variable("HASHGATE_FILTER_BUCKET"),
        Resource::HashTable => Binding::Variable("HASHGATE_HASH_TABLE"),
        Resource::CaseTable => Binding::Variable("HASHGATE_CASE_TABLE"),
        Resource::AuditTable => Binding::Variable("HASHGATE_AUDIT_TABLE"),
        Resource::ReviewQueue => Binding::Variable("HASHGATE_REVIEW_QUEUE_URL"),
        Resource::EventBus => Binding::EventBus("HASHGATE_EVENT_BUS"),
        Resource::ScanQueue => Binding::EventSourceQueue,
        Resource::LogGroup => Binding::LogGroup,
        // The review function's resources: no need of the scanner's names one.
        Resource::CaseQueueIndex
        | Resource::AuditCaseIndex
        | Resource::CheckpointObjects
        | Resource::CheckpointBucket
        | Resource::SigningKey
        | Resource::ReportObjects
        | Resource::ReportBucket
        | Resource::CybertipSecret
        | Resource::ReportFailureQueue
        | Resource::ListObjects
        | Resource::ListsBucket
        | Resource::ListsQueue
        | Resource::FilterSigningSecret => {
            unreachable!(
                "the scanner's needs name no review resource, yet {resource:?} was asked for"
            )
        }
    }
}

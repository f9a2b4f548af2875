//! What a deployment must give hashlist-sync: every environment variable it reads, and every
//! AWS action its code (and Lambda, on its behalf) needs, bound to the resource it is
//! needed on. `tests/infra/template.rs` holds `infra/template.yaml` to this.

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

/// Every variable hashlist-sync reads (the README's configuration table explains each).
pub const VARIABLES: &[Variable] = &[
    set("HASHGATE_LISTS_BUCKET"),
    set("HASHGATE_HASH_TABLE"),
    set("HASHGATE_FILTER_BUCKET"),
    set("HASHGATE_FILTER_SIGNING_SECRET"),
    set("HASHGATE_FILTER_PUBLIC_KEYS"),
    set("HASHGATE_FILTER_FP_RATE"),
    set("HASHGATE_SNAPSHOTS_KEPT"),
    set("HASHGATE_LIST_MAX_BYTES"),
    set("HASHGATE_LIST_MAX_ENTRIES"),
    set("HASHGATE_WITHDRAW_MAX_SHARE"),
    set("HASHGATE_LIST_SOURCES"),
    set("HASHGATE_EVENT_BUS"),
    set("HASHGATE_LOG"),
    Variable {
        name: "HASHGATE_FILTER_SIGNING_KEY",
        deployed: Deployed::NotInLambda(
            "local runs only; in Lambda the key is in the Secrets Manager secret \
             HASHGATE_FILTER_SIGNING_SECRET names, never in the environment",
        ),
    },
    Variable {
        name: "HASHGATE_LISTS_QUEUE_URL",
        deployed: Deployed::NotInLambda(
            "worker mode only; in Lambda the SQS event source delivers the lists queue",
        ),
    },
    Variable {
        name: "HASHGATE_SYNC_INTERVAL_SECONDS",
        deployed: Deployed::NotInLambda(
            "worker mode only; in Lambda the schedule rule invokes the function",
        ),
    },
    Variable {
        name: "HASHGATE_LOG_FORMAT",
        deployed: Deployed::NotInLambda("outside Lambda only: in Lambda, logs are always JSON"),
    },
];

/// Worker mode (outside Lambda) polls the lists queue itself.
pub const WORKER: &[Need] = &[Need::new(
    &["ReceiveMessage", "DeleteMessage"],
    &["sqs:ReceiveMessage", "sqs:DeleteMessage"],
    Resource::ListsQueue,
)];

/// What Lambda does with the function's role: the SQS event source polls the lists queue,
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
        Resource::ListsQueue,
    ),
    Need::new(
        &[],
        &["logs:CreateLogStream", "logs:PutLogEvents"],
        Resource::LogGroup,
    ),
];

/// Everything hashlist-sync needs, adapter by adapter.
pub const NEEDS: &[&[Need]] = &[
    access::LISTS_INBOX,
    access::HASHES_WRITE,
    access::FILTER_PUBLISH,
    access::FILTER_SIGNING_SECRET,
    access::LIST_EVENTS,
    WORKER,
    LAMBDA,
];

/// Where a deployment finds each resource hashlist-sync acts on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Binding {
    /// Named by this variable (a bucket, table or secret).
    Variable(&'static str),
    /// The objects under this key prefix of the bucket named by the variable.
    ObjectsUnder {
        bucket: &'static str,
        prefix: &'static str,
    },
    /// Every object of the bucket named by the variable.
    AllObjects(&'static str),
    /// The queue the function's event source reads.
    EventSourceQueue,
    /// The EventBridge bus named by this variable.
    EventBus(&'static str),
    /// The function's log group.
    LogGroup,
}

/// The binding of each resource hashlist-sync uses.
pub fn binding(resource: Resource) -> Binding {
    match resource {
        Resource::ListObjects => Binding::AllObjects("HASHGATE_LISTS_BUCKET"),
        Resource::ListsBucket => Binding::Variable("HASHGATE_LISTS_BUCKET"),
        Resource::ListsQueue => Binding::EventSourceQueue,
        Resource::HashTable => Binding::Variable("HASHGATE_HASH_TABLE"),
        Resource::FilterObjects => Binding::ObjectsUnder {
            bucket: "HASHGATE_FILTER_BUCKET",
            prefix: hashgate_core::manifest::FILTER_PREFIX,
        },
        Resource::FilterBucket => Binding::Variable("HASHGATE_FILTER_BUCKET"),
        Resource::FilterSigningSecret => Binding::Variable("HASHGATE_FILTER_SIGNING_SECRET"),
        Resource::EventBus => Binding::EventBus("HASHGATE_EVENT_BUS"),
        Resource::LogGroup => Binding::LogGroup,
        Resource::ScannedObjects
        | Resource::ScannedBuckets
        | Resource::QuarantineObjects
        | Resource::QuarantineBucket
        | Resource::QuarantineKey
        | Resource::CaseTable
        | Resource::CaseQueueIndex
        | Resource::AuditTable
        | Resource::AuditCaseIndex
        | Resource::CheckpointObjects
        | Resource::CheckpointBucket
        | Resource::SigningKey
        | Resource::ReviewQueue
        | Resource::ReportObjects
        | Resource::ReportBucket
        | Resource::CybertipSecret
        | Resource::ReportFailureQueue
        | Resource::ScanQueue => {
            unreachable!(
                "hashlist-sync's needs name no other function's resource, yet {resource:?} was \
                 asked for"
            )
        }
    }
}

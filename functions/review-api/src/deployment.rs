//! What a deployment must give the review function: every environment variable it reads, and
//! every AWS action its code (and Lambda, on its behalf) needs, bound to the resource it is
//! needed on. `tests/infra/template.rs` holds `infra/template.yaml` to this: each variable
//! the function needs is set there, nothing else is, and its role grants exactly these
//! actions on exactly these resources.
//!
//! The module names nothing of this crate, only `hashgate_aws`, so the contract test can
//! compile it on its own.

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

/// Every variable the review function reads (`config.rs`; the README's configuration table
/// explains each). `AWS_REGION` is Lambda's own.
pub const VARIABLES: &[Variable] = &[
    set("HASHGATE_CASE_TABLE"),
    set("HASHGATE_AUDIT_TABLE"),
    set("HASHGATE_AUDIT_CHECKPOINT_BUCKET"),
    set("HASHGATE_AUDIT_SIGNING_KEY"),
    set("HASHGATE_AUDIT_CHECKPOINT_SECONDS"),
    set("HASHGATE_USER_POOL_ID"),
    set("HASHGATE_USER_POOL_CLIENT_ID"),
    set("HASHGATE_TWO_PERSON_RULE"),
    set("HASHGATE_REVEAL_DAILY_LIMIT"),
    set("HASHGATE_REVEAL_SECONDS"),
    set("HASHGATE_RESTORE_PREFIX"),
    set("HASHGATE_MAX_PREVIEW_BYTES"),
    set("HASHGATE_LOG"),
    set("HASHGATE_HASH_TABLE"),
    set("HASHGATE_REPORTS_BUCKET"),
    set("HASHGATE_EVENT_BUS"),
    set("HASHGATE_REPORT_CONFIG"),
    set("HASHGATE_OWN_LIST"),
    set("HASHGATE_SUPPRESS_AFTER"),
    Variable {
        name: "HASHGATE_IDP_ENDPOINT",
        deployed: Deployed::NotInLambda(
            "the local identity provider emulator only; in Lambda the pool's own Cognito \
             endpoint in AWS_REGION is the default",
        ),
    },
    Variable {
        name: "HASHGATE_REVIEW_BIND",
        deployed: Deployed::NotInLambda(
            "the local HTTP server's address; in Lambda the HTTP API delivers the requests",
        ),
    },
    Variable {
        name: "HASHGATE_LOG_FORMAT",
        deployed: Deployed::NotInLambda("outside Lambda only: in Lambda, logs are always JSON"),
    },
];

/// What Lambda does with the function's role: the function's output goes to its log group.
/// (The HTTP API invokes the function through its resource policy, not this role.)
pub const LAMBDA: &[Need] = &[Need::new(
    &[],
    &["logs:CreateLogStream", "logs:PutLogEvents"],
    Resource::LogGroup,
)];

/// Everything the review function needs, adapter by adapter: `DynamoCases` as the review
/// store, `S3Objects` as the evidence (previews and restores), `S3Checkpoints`; for the
/// followups of a decision `S3Reports` (packages, "Report Ready") and `DynamoHashes` (the
/// own list's import, list feedback).
pub const NEEDS: &[&[Need]] = &[
    access::REVIEW_CASES,
    access::EVIDENCE,
    access::CHECKPOINTS,
    access::REPORT_OUTBOX,
    access::OWN_LIST,
    access::HASHES_FEEDBACK,
    LAMBDA,
];

/// Where a deployment finds each resource the review function acts on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Binding {
    /// Named by this variable (a table, bucket or key).
    Variable(&'static str),
    /// This index of the table named by the variable.
    Index {
        table: &'static str,
        index: &'static str,
    },
    /// The objects under this key prefix of the bucket named by the variable.
    ObjectsUnder {
        bucket: &'static str,
        prefix: &'static str,
    },
    /// The bucket the scanner quarantines into: each case names its quarantined copy there
    /// (the function is not told the bucket, it follows the case).
    QuarantineBucket,
    /// The KMS key the quarantine bucket encrypts with.
    KeyOfQuarantineBucket,
    /// The buckets whose uploads are scanned: objects held in place are previewed there,
    /// and false positives are restored to the bucket they came from.
    ScannedBuckets,
    /// The EventBridge bus named by this variable.
    EventBus(&'static str),
    /// The function's log group.
    LogGroup,
}

/// The binding of each resource the review function uses.
pub fn binding(resource: Resource) -> Binding {
    match resource {
        Resource::CaseTable => Binding::Variable("HASHGATE_CASE_TABLE"),
        Resource::CaseQueueIndex => Binding::Index {
            table: "HASHGATE_CASE_TABLE",
            index: hashgate_aws::dynamo::CASE_QUEUE_INDEX,
        },
        Resource::AuditTable => Binding::Variable("HASHGATE_AUDIT_TABLE"),
        Resource::AuditCaseIndex => Binding::Index {
            table: "HASHGATE_AUDIT_TABLE",
            index: hashgate_aws::dynamo::AUDIT_CASE_INDEX,
        },
        Resource::CheckpointObjects => Binding::ObjectsUnder {
            bucket: "HASHGATE_AUDIT_CHECKPOINT_BUCKET",
            prefix: hashgate_aws::checkpoint::PREFIX,
        },
        Resource::CheckpointBucket => Binding::Variable("HASHGATE_AUDIT_CHECKPOINT_BUCKET"),
        Resource::SigningKey => Binding::Variable("HASHGATE_AUDIT_SIGNING_KEY"),
        Resource::QuarantineObjects | Resource::QuarantineBucket => Binding::QuarantineBucket,
        Resource::QuarantineKey => Binding::KeyOfQuarantineBucket,
        Resource::ScannedObjects | Resource::ScannedBuckets => Binding::ScannedBuckets,
        Resource::LogGroup => Binding::LogGroup,
        Resource::HashTable => Binding::Variable("HASHGATE_HASH_TABLE"),
        Resource::ReportObjects => Binding::ObjectsUnder {
            bucket: "HASHGATE_REPORTS_BUCKET",
            prefix: hashgate_aws::reports::PREFIX,
        },
        Resource::ReportBucket => Binding::Variable("HASHGATE_REPORTS_BUCKET"),
        Resource::EventBus => Binding::EventBus("HASHGATE_EVENT_BUS"),
        // Other functions' resources: no need of the review function's names one.
        Resource::FilterObjects
        | Resource::FilterBucket
        | Resource::ReviewQueue
        | Resource::CybertipSecret
        | Resource::ReportFailureQueue
        | Resource::ScanQueue
        | Resource::ListObjects
        | Resource::ListsBucket
        | Resource::ListsQueue
        | Resource::FilterSigningSecret => {
            unreachable!(
                "the review function's needs name no scanner resource, yet {resource:?} was \
                 asked for"
            )
        }
    }
}

//! What a deployment must give the report sender: every environment variable it reads, and
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

/// Every variable the report sender reads (`config.rs`, `main.rs`).
pub const VARIABLES: &[Variable] = &[
    set("HASHGATE_REPORTS_BUCKET"),
    set("HASHGATE_CYBERTIP_SECRET"),
    set("HASHGATE_CYBERTIP_ENDPOINT"),
    set("HASHGATE_LOG"),
    Variable {
        name: "HASHGATE_CYBERTIP_USERNAME",
        deployed: Deployed::NotInLambda(
            "local runs only; in Lambda the credentials are in the Secrets Manager secret \
             HASHGATE_CYBERTIP_SECRET names, never in the environment",
        ),
    },
    Variable {
        name: "HASHGATE_CYBERTIP_PASSWORD",
        deployed: Deployed::NotInLambda(
            "local runs only; in Lambda the credentials are in the Secrets Manager secret \
             HASHGATE_CYBERTIP_SECRET names, never in the environment",
        ),
    },
    Variable {
        name: "HASHGATE_LOG_FORMAT",
        deployed: Deployed::NotInLambda("outside Lambda only: in Lambda, logs are always JSON"),
    },
];

/// What Lambda does with the function's role: the function's output goes to its log group,
/// and an event whose sending still fails after Lambda's retries goes to the failure
/// queue (the asynchronous invocation's on-failure destination). (The EventBridge rule
/// invokes the function through its resource policy, not this role.)
pub const LAMBDA: &[Need] = &[
    Need::new(
        &[],
        &["logs:CreateLogStream", "logs:PutLogEvents"],
        Resource::LogGroup,
    ),
    Need::new(&[], &["sqs:SendMessage"], Resource::ReportFailureQueue),
];

/// Everything the report sender needs: `S3Reports` as the sender uses it (packages, send
/// states, NCMEC's answers, the quarantined evidence) and the CyberTipline credentials.
pub const NEEDS: &[&[Need]] = &[access::REPORT_SENDER, access::CYBERTIP_SECRET, LAMBDA];

/// Where a deployment finds each resource the report sender acts on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Binding {
    /// Named by this variable (a bucket, a secret).
    Variable(&'static str),
    /// The objects under this key prefix of the bucket named by the variable.
    ObjectsUnder {
        bucket: &'static str,
        prefix: &'static str,
    },
    /// The bucket the scanner quarantines into: each package's manifest names its evidence
    /// there (the function is not told the bucket, it follows the package).
    QuarantineBucket,
    /// The KMS key the quarantine bucket encrypts with.
    KeyOfQuarantineBucket,
    /// The function's log group.
    LogGroup,
    /// The on-failure destination of the function's asynchronous invocations (also the
    /// dead-letter queue of its EventBridge rule).
    FailureDestination,
}

/// The binding of each resource the report sender uses.
pub fn binding(resource: Resource) -> Binding {
    match resource {
        Resource::ReportObjects => Binding::ObjectsUnder {
            bucket: "HASHGATE_REPORTS_BUCKET",
            prefix: hashgate_aws::reports::PREFIX,
        },
        Resource::ReportBucket => Binding::Variable("HASHGATE_REPORTS_BUCKET"),
        Resource::CybertipSecret => Binding::Variable("HASHGATE_CYBERTIP_SECRET"),
        Resource::QuarantineObjects | Resource::QuarantineBucket => Binding::QuarantineBucket,
        Resource::QuarantineKey => Binding::KeyOfQuarantineBucket,
        Resource::LogGroup => Binding::LogGroup,
        Resource::ReportFailureQueue => Binding::FailureDestination,
        // Other functions' resources: no need of the report sender's names one.
        Resource::ScannedObjects
        | Resource::ScannedBuckets
        | Resource::FilterObjects
        | Resource::FilterBucket
        | Resource::HashTable
        | Resource::CaseTable
        | Resource::CaseQueueIndex
        | Resource::AuditTable
        | Resource::AuditCaseIndex
        | Resource::CheckpointObjects
        | Resource::CheckpointBucket
        | Resource::SigningKey
        | Resource::ReviewQueue
        | Resource::EventBus
        | Resource::ScanQueue
        | Resource::ListObjects
        | Resource::ListsBucket
        | Resource::ListsQueue
        | Resource::FilterSigningSecret => {
            unreachable!(
                "the report sender's needs name no other function's resource, yet {resource:?} \
                 was asked for"
            )
        }
    }
}

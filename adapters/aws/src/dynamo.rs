//! DynamoDB behind the core's ports: the exact hash store ([`HashStore`]) and the case store
//! ([`CaseStore`]).
//!
//! Hash table item: `digest` (S, `md5:<hex>`), `entries` (L of M: `list`, optional `id`,
//! `category`, and the generations that added (`added`, N) and withdrew (`removed`, N) it).
//! One item, `digest = "meta:version"`, counts imports (`version`, N), records the
//! algorithms with entries (`algorithms`, SS), so filters can say which store version they
//! cover, and the generation state (`generation`, `pending`, `abandoned`).
//!
//! Imports are atomic per file ([`hashgate_core::generations`]): [`DynamoHashes::begin`]
//! makes a new generation pending, [`DynamoHashes::stage`] writes the file's entries under
//! it, and [`DynamoHashes::commit`] flips it to committed with one conditional write. Every
//! lookup reads the meta item in the same request as the digests, so it sees a file whole
//! or not at all.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, KeysAndAttributes, Put, PutRequest, TransactWriteItem, WriteRequest,
};
use aws_sdk_dynamodb::Client;
use hashgate_core::case::{AuditEntry, CaseRecord};
use hashgate_core::digest::{Algorithm, AlgorithmSet, Digest};
use hashgate_core::generations::{stage_entry, visible, Generations, VersionedEntry};
use hashgate_core::lists::ListEntry;
use hashgate_core::pipeline::{CaseStore, StorageError};
use hashgate_core::store::{
    HashStore, ImportStats, Op, StoreError, StoreState, StoredDigest, StoredEntry,
};
use hashgate_core::time::rfc3339;

/// BatchGetItem takes at most 100 keys, BatchWriteItem 25 requests.
const BATCH_GET: usize = 100;
const BATCH_WRITE: usize = 25;
/// Unprocessed keys (throttling) are retried this many times, with exponential backoff.
const RETRIES: u32 = 8;
const META_KEY: &str = "meta:version";

fn backend(location: &str, message: impl std::fmt::Display) -> StoreError {
    StoreError::Backend {
        location: location.to_string(),
        message: message.to_string(),
    }
}

fn sdk_message<E: ProvideErrorMetadata + std::error::Error + 'static, R: std::fmt::Debug>(
    e: &SdkError<E, R>,
) -> String {
    match e {
        SdkError::ServiceError(s) => format!(
            "{}: {}",
            s.err().code().unwrap_or("error"),
            s.err().message().unwrap_or("(no message)")
        ),
        other => aws_smithy_types::error::display::DisplayErrorContext(other).to_string(),
    }
}

/// `md5:<hex>`: the partition key of a digest.
pub fn digest_key(d: &Digest) -> String {
    format!("{}:{}", d.algorithm(), d.to_hex())
}

fn parse_digest_key(s: &str) -> Option<Digest> {
    let (alg, hex) = s.split_once(':')?;
    Digest::parse_hex_as(alg.parse().ok()?, hex).ok()
}

fn backoff(attempt: u32) -> Duration {
    // 50 ms, 100 ms, … capped at 5 s, with jitter from the clock's low bits.
    let base = 50u64.saturating_mul(1 << attempt.min(7)).min(5_000);
    let jitter = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::from(d.subsec_nanos()) % (base / 2 + 1));
    Duration::from_millis(base / 2 + jitter)
}

/// The exact hash store on DynamoDB.
#[derive(Clone, Debug)]
pub struct DynamoHashes {
    client: Client,
    table: String,
}

fn entry_value(e: &VersionedEntry) -> AttributeValue {
    let mut m = HashMap::from([
        ("list".to_string(), AttributeValue::S(e.entry.list.clone())),
        ("added".to_string(), AttributeValue::N(e.added.to_string())),
    ]);
    if let Some(id) = &e.entry.id {
        m.insert("id".into(), AttributeValue::S(id.clone()));
    }
    if let Some(c) = &e.entry.category {
        m.insert("category".into(), AttributeValue::S(c.clone()));
    }
    if let Some(r) = e.removed {
        m.insert("removed".into(), AttributeValue::N(r.to_string()));
    }
    AttributeValue::M(m)
}

fn number(v: Option<&AttributeValue>) -> Option<u64> {
    v.and_then(|v| v.as_n().ok()).and_then(|n| n.parse().ok())
}

fn entry_from(v: &AttributeValue) -> Option<VersionedEntry> {
    let m = v.as_m().ok()?;
    let s = |k: &str| m.get(k).and_then(|v| v.as_s().ok()).cloned();
    Some(VersionedEntry {
        entry: StoredEntry {
            list: s("list")?,
            id: s("id"),
            category: s("category"),
        },
        // Entries written before generations existed belong to generation 0: committed.
        added: number(m.get("added")).unwrap_or(0),
        removed: number(m.get("removed")),
    })
}

fn entries_of(item: &HashMap<String, AttributeValue>) -> Vec<VersionedEntry> {
    item.get("entries")
        .and_then(|v| v.as_l().ok())
        .map(|l| l.iter().filter_map(entry_from).collect())
        .unwrap_or_default()
}

/// The store's version, algorithms and generations, from the meta item (absent: empty).
fn meta_of(item: Option<&HashMap<String, AttributeValue>>) -> (StoreState, Generations) {
    let Some(meta) = item else {
        return Default::default();
    };
    let state = StoreState {
        version: number(meta.get("version")).unwrap_or(0),
        algorithms: meta
            .get("algorithms")
            .and_then(|v| v.as_ss().ok())
            .map(|ss| {
                ss.iter()
                    .filter_map(|a| a.parse::<Algorithm>().ok())
                    .collect()
            })
            .unwrap_or_default(),
    };
    let generations = Generations {
        committed: number(meta.get("generation")).unwrap_or(0),
        pending: number(meta.get("pending")),
        abandoned: meta
            .get("abandoned")
            .and_then(|v| v.as_ns().ok())
            .map(|ns| ns.iter().filter_map(|n| n.parse().ok()).collect())
            .unwrap_or_default(),
    };
    (state, generations)
}

/// An import in progress: the generation its entries are written under, and the store's
/// generations when it began (what "visible" means while it stages).
#[derive(Clone, Debug)]
pub struct PendingImport {
    pub generation: u64,
    base: Generations,
    algorithms: AlgorithmSet,
}

impl DynamoHashes {
    pub fn new(client: Client, table: impl Into<String>) -> DynamoHashes {
        DynamoHashes {
            client,
            table: table.into(),
        }
    }

    fn location(&self) -> String {
        format!("dynamodb table {}", self.table)
    }

    /// Fetch items by key, retrying unprocessed keys with backoff.
    async fn batch_get(
        &self,
        keys: Vec<String>,
    ) -> Result<Vec<HashMap<String, AttributeValue>>, StoreError> {
        let mut items = Vec::new();
        for chunk in keys.chunks(BATCH_GET) {
            let mut pending: Vec<HashMap<String, AttributeValue>> = chunk
                .iter()
                .map(|k| HashMap::from([("digest".to_string(), AttributeValue::S(k.clone()))]))
                .collect();
            let mut attempt = 0;
            while !pending.is_empty() {
                let request = KeysAndAttributes::builder()
                    .set_keys(Some(std::mem::take(&mut pending)))
                    .consistent_read(true)
                    .build()
                    .map_err(|e| backend(&self.location(), e))?;
                let out = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, request)
                    .send()
                    .await
                    .map_err(|e| backend(&self.location(), sdk_message(&e)))?;
                if let Some(found) = out.responses().and_then(|r| r.get(&self.table)) {
                    items.extend(found.iter().cloned());
                }
                if let Some(rest) = out.unprocessed_keys().and_then(|u| u.get(&self.table)) {
                    pending = rest.keys().to_vec();
                }
                if !pending.is_empty() {
                    attempt += 1;
                    if attempt > RETRIES {
                        return Err(backend(
                            &self.location(),
                            format!(
                                "{} keys still unprocessed after {RETRIES} retries (throttled)",
                                pending.len()
                            ),
                        ));
                    }
                    tokio::time::sleep(backoff(attempt)).await;
                }
            }
        }
        Ok(items)
    }

    async fn batch_write(&self, requests: Vec<WriteRequest>) -> Result<(), StoreError> {
        for chunk in requests.chunks(BATCH_WRITE) {
            let mut pending = chunk.to_vec();
            let mut attempt = 0;
            while !pending.is_empty() {
                let out = self
                    .client
                    .batch_write_item()
                    .request_items(&self.table, std::mem::take(&mut pending))
                    .send()
                    .await
                    .map_err(|e| backend(&self.location(), sdk_message(&e)))?;
                if let Some(rest) = out.unprocessed_items().and_then(|u| u.get(&self.table)) {
                    pending = rest.clone();
                }
                if !pending.is_empty() {
                    attempt += 1;
                    if attempt > RETRIES {
                        return Err(backend(
                            &self.location(),
                            "writes still unprocessed (throttled)",
                        ));
                    }
                    tokio::time::sleep(backoff(attempt)).await;
                }
            }
        }
        Ok(())
    }

    /// The store version, its algorithms and its generations (one consistent read).
    pub async fn meta(&self) -> Result<(StoreState, Generations), StoreError> {
        let items = self.batch_get(vec![META_KEY.to_string()]).await?;
        Ok(meta_of(items.first()))
    }

    /// Start an import: a new generation becomes pending (a pending one that an import left
    /// behind, dead or still running, is abandoned: its entries never become visible).
    pub async fn begin(&self) -> Result<PendingImport, StoreError> {
        let (state, base) = self.meta().await?;
        let mut next = base.clone();
        let generation = next.begin();
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("digest", AttributeValue::S(META_KEY.into()))
            .expression_attribute_values(":g", AttributeValue::N(generation.to_string()));
        update = match base.pending {
            None => update
                .update_expression("SET pending = :g")
                .condition_expression("attribute_not_exists(pending)"),
            Some(old) => update
                .update_expression("SET pending = :g ADD abandoned :old")
                .condition_expression("pending = :oldn")
                .expression_attribute_values(":old", AttributeValue::Ns(vec![old.to_string()]))
                .expression_attribute_values(":oldn", AttributeValue::N(old.to_string())),
        };
        update.send().await.map_err(|e| {
            backend(
                &self.location(),
                format!(
                    "cannot start an import (another one started at the same moment?): {}",
                    sdk_message(&e)
                ),
            )
        })?;
        if let Some(old) = base.pending {
            tracing::warn!(
                abandoned = old,
                "an earlier import never committed; its entries stay invisible"
            );
        }
        Ok(PendingImport {
            generation,
            base,
            algorithms: state.algorithms,
        })
    }

    /// Stage list entries (add, or withdraw with [`Op::Remove`]) under `import`'s
    /// generation: written now, visible only after [`DynamoHashes::commit`]. The caller
    /// validates the whole list first; each entry is checked again by the core's rule.
    pub async fn stage(
        &self,
        import: &mut PendingImport,
        entries: &[ListEntry],
        op: Op,
    ) -> Result<ImportStats, StoreError> {
        let mut by_digest: HashMap<String, Vec<&ListEntry>> = HashMap::new();
        for e in entries {
            by_digest.entry(digest_key(&e.digest)).or_default().push(e);
        }
        let keys: Vec<String> = by_digest.keys().cloned().collect();
        let existing: HashMap<String, Vec<VersionedEntry>> = self
            .batch_get(keys)
            .await?
            .iter()
            .filter_map(|item| Some((item.get("digest")?.as_s().ok()?.clone(), entries_of(item))))
            .collect();
        let mut stats = ImportStats::default();
        let mut writes = Vec::new();
        for (key, incoming) in by_digest {
            let mut current = existing.get(&key).cloned().unwrap_or_default();
            let before = current.clone();
            for e in incoming {
                let change = stage_entry(
                    &mut current,
                    &e.provenance,
                    op,
                    &import.base,
                    import.generation,
                )?;
                stats.count(change);
                if op == Op::Add {
                    import.algorithms.insert(e.digest.algorithm());
                }
            }
            if current == before {
                continue;
            }
            let request = if current.is_empty() {
                WriteRequest::builder()
                    .delete_request(
                        aws_sdk_dynamodb::types::DeleteRequest::builder()
                            .key("digest", AttributeValue::S(key))
                            .build()
                            .map_err(|e| backend(&self.location(), e))?,
                    )
                    .build()
            } else {
                WriteRequest::builder()
                    .put_request(
                        PutRequest::builder()
                            .item("digest", AttributeValue::S(key))
                            .item(
                                "entries",
                                AttributeValue::L(current.iter().map(entry_value).collect()),
                            )
                            .build()
                            .map_err(|e| backend(&self.location(), e))?,
                    )
                    .build()
            };
            writes.push(request);
        }
        self.batch_write(writes).await?;
        Ok(stats)
    }

    /// Make everything staged under `import` visible at once: one conditional write that
    /// commits its generation and bumps the store version. Refused, with nothing visible,
    /// when another import has taken over since.
    pub async fn commit(&self, import: PendingImport) -> Result<u64, StoreError> {
        // Algorithms stay listed after their last entry is withdrawn: a scanner then
        // computes one digest too many, never one too few.
        let names: Vec<String> = import
            .algorithms
            .iter()
            .map(|a| a.name().to_string())
            .collect();
        let g = AttributeValue::N(import.generation.to_string());
        let update = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("digest", AttributeValue::S(META_KEY.into()))
            .condition_expression("pending = :g")
            .expression_attribute_values(":g", g)
            .expression_attribute_values(":one", AttributeValue::N("1".into()))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::UpdatedNew);
        let update = if names.is_empty() {
            update.update_expression("SET generation = :g REMOVE pending ADD version :one")
        } else {
            update
                .update_expression(
                    "SET generation = :g, algorithms = :algs REMOVE pending ADD version :one",
                )
                .expression_attribute_values(":algs", AttributeValue::Ss(names))
        };
        let out = update.send().await.map_err(|e| {
            let taken_over = e
                .as_service_error()
                .is_some_and(|s| s.is_conditional_check_failed_exception());
            if taken_over {
                backend(
                    &self.location(),
                    format!(
                        "generation {} is no longer pending: another import took over; nothing of this import became visible (run it again)",
                        import.generation
                    ),
                )
            } else {
                backend(&self.location(), sdk_message(&e))
            }
        })?;
        Ok(number(out.attributes().and_then(|a| a.get("version"))).unwrap_or(0))
    }

    /// Every digest in the table (a paginated scan), for building a filter.
    pub async fn for_each_digest(&self, mut f: impl FnMut(&Digest)) -> Result<u64, StoreError> {
        let mut start: Option<HashMap<String, AttributeValue>> = None;
        let mut n = 0;
        loop {
            let out = self
                .client
                .scan()
                .table_name(&self.table)
                .projection_expression("digest")
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| backend(&self.location(), sdk_message(&e)))?;
            for item in out.items() {
                if let Some(d) = item
                    .get("digest")
                    .and_then(|v| v.as_s().ok())
                    .and_then(|s| parse_digest_key(s))
                {
                    f(&d);
                    n += 1;
                }
            }
            match out.last_evaluated_key() {
                Some(k) if !k.is_empty() => start = Some(k.clone()),
                _ => return Ok(n),
            }
        }
    }
}

impl HashStore for DynamoHashes {
    async fn lookup(&self, digests: &[Digest]) -> Result<Vec<StoredDigest>, StoreError> {
        // The meta item comes in the same request as the digests, so what is visible is
        // decided by the generations as they were at this read: a file whole, or not at all.
        let mut keys: Vec<String> = digests.iter().map(digest_key).collect();
        keys.insert(0, META_KEY.to_string());
        let items = if keys.len() <= BATCH_GET {
            self.batch_get(keys).await?
        } else {
            // More than one request: read the generations first, then the digests, so an
            // import committing in between shows new entries, never half of one file.
            let mut items = self.batch_get(vec![META_KEY.to_string()]).await?;
            items.extend(self.batch_get(keys.split_off(1)).await?);
            items
        };
        let meta = items.iter().find(|i| {
            i.get("digest")
                .and_then(|d| d.as_s().ok())
                .map(String::as_str)
                == Some(META_KEY)
        });
        let (_, generations) = meta_of(meta);
        Ok(items
            .iter()
            .filter_map(|item| {
                let digest = parse_digest_key(item.get("digest")?.as_s().ok()?)?;
                Some(StoredDigest {
                    digest,
                    provenance: visible(&entries_of(item), &generations),
                })
            })
            .filter(|s| !s.provenance.is_empty())
            .collect())
    }

    async fn state(&self) -> Result<StoreState, StoreError> {
        Ok(self.meta().await?.0)
    }
}

/// Cases and the audit log on DynamoDB.
#[derive(Clone, Debug)]
pub struct DynamoCases {
    client: Client,
    case_table: String,
    audit_table: String,
}

impl DynamoCases {
    pub fn new(
        client: Client,
        case_table: impl Into<String>,
        audit_table: impl Into<String>,
    ) -> Self {
        DynamoCases {
            client,
            case_table: case_table.into(),
            audit_table: audit_table.into(),
        }
    }

    /// Read a case back (for tests and the review side).
    pub async fn get(&self, case_id: &str) -> Result<Option<CaseRecord>, StorageError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.case_table)
            .key("case_id", AttributeValue::S(case_id.into()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| StorageError {
                operation: "GetItem",
                target: self.case_table.clone(),
                message: sdk_message(&e),
            })?;
        let Some(item) = out.item() else {
            return Ok(None);
        };
        let json = item
            .get("record")
            .and_then(|v| v.as_s().ok())
            .ok_or_else(|| StorageError {
                operation: "GetItem",
                target: format!("{} {case_id}", self.case_table),
                message: "case without a record attribute".into(),
            })?;
        serde_json::from_str(json)
            .map(Some)
            .map_err(|e| StorageError {
                operation: "GetItem",
                target: format!("{} {case_id}", self.case_table),
                message: format!("unreadable case record: {e}"),
            })
    }
}

impl CaseStore for DynamoCases {
    async fn create(&self, record: &CaseRecord, audit: &AuditEntry) -> Result<bool, StorageError> {
        let error = |message: String| StorageError {
            operation: "TransactWriteItems",
            target: format!("{} {}", self.case_table, record.case_id),
            message,
        };
        let json = serde_json::to_string(record).map_err(|e| error(e.to_string()))?;
        let case = Put::builder()
            .table_name(&self.case_table)
            .item("case_id", AttributeValue::S(record.case_id.clone()))
            .item("status", AttributeValue::S(record.status.as_str().into()))
            .item("bucket", AttributeValue::S(record.object.bucket.clone()))
            .item("key", AttributeValue::S(record.object.key.clone()))
            .item("created_at", AttributeValue::S(rfc3339(record.created_at)))
            .item("record", AttributeValue::S(json))
            .condition_expression("attribute_not_exists(case_id)")
            .build()
            .map_err(|e| error(e.to_string()))?;
        let entry = Put::builder()
            .table_name(&self.audit_table)
            .item("case_id", AttributeValue::S(audit.case_id.clone()))
            .item(
                "seq",
                AttributeValue::S(format!("{}#{}", rfc3339(audit.at), audit.action)),
            )
            .item("actor", AttributeValue::S(audit.actor.clone()))
            .item("action", AttributeValue::S(audit.action.as_str().into()))
            .item("detail", AttributeValue::S(audit.detail.clone()))
            .condition_expression("attribute_not_exists(seq)")
            .build()
            .map_err(|e| error(e.to_string()))?;
        let result = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().put(case).build())
            .transact_items(TransactWriteItem::builder().put(entry).build())
            .send()
            .await;
        let e = match result {
            Ok(_) => return Ok(true),
            Err(e) => e,
        };
        // Only a cancellation whose every reason is "this item already exists" (or "no
        // problem with this one") means a duplicate; a conflict or throttling must fail, or
        // the original could be deleted with no case behind it.
        let duplicate = e.as_service_error().is_some_and(|s| match s {
            TransactWriteItemsError::TransactionCanceledException(t) => {
                let codes: Vec<&str> = t
                    .cancellation_reasons()
                    .iter()
                    .map(|r| r.code().unwrap_or("None"))
                    .collect();
                codes.contains(&"ConditionalCheckFailed")
                    && codes
                        .iter()
                        .all(|c| matches!(*c, "ConditionalCheckFailed" | "None"))
            }
            _ => false,
        });
        if !duplicate {
            return Err(error(sdk_message(&e)));
        }
        // Belt and braces: the case the condition says exists must be readable.
        match self.get(&record.case_id).await? {
            Some(_) => Ok(false),
            None => Err(error(
                "the transaction was refused as a duplicate, yet the case cannot be read".into(),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_keys_round_trip() {
        let d = Digest::parse_hex("900150983cd24fb0d6963f7d28e17f72").unwrap();
        assert_eq!(digest_key(&d), "md5:900150983cd24fb0d6963f7d28e17f72");
        assert_eq!(parse_digest_key(&digest_key(&d)), Some(d));
        assert_eq!(parse_digest_key(META_KEY), None);
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        assert!(backoff(1) < backoff(5));
        assert!(backoff(30) <= Duration::from_millis(5_000));
    }

    #[test]
    fn entries_round_trip_and_old_ones_are_generation_zero() {
        let e = VersionedEntry {
            entry: StoredEntry {
                list: "ncmec".into(),
                id: Some("1".into()),
                category: None,
            },
            added: 3,
            removed: Some(4),
        };
        assert_eq!(entry_from(&entry_value(&e)), Some(e));
        let old = AttributeValue::M(HashMap::from([(
            "list".to_string(),
            AttributeValue::S("iwf".into()),
        )]));
        let read = entry_from(&old).unwrap();
        assert_eq!((read.added, read.removed), (0, None));
        assert!(read.is_visible(&Generations::default()));
    }
}

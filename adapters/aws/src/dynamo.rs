//! DynamoDB behind the core's ports: the exact hash store ([`HashStore`]), the case store
//! the scanner writes ([`CaseStore`]) and the review service's cases, audit chain and
//! reveal tallies ([`ReviewStore`]), both on [`DynamoCases`].
//!
//! Hash table item: `digest` (S, `md5:<hex>`), `entries` (L of M: `list`, optional `id`,
//! `category`, and the generations that added (`added`, N) and withdrew (`removed`, N) it),
//! and, once a false positive was recorded against one of its entries, `feedback` (S: the
//! JSON of the core's [`EntryFeedback`]s of that digest), so a lookup reads it in the same
//! request and leaves suppressed entries out ([`hashgate_core::feedback::matching`]).
//! One item, `digest = "meta:version"`, counts imports (`version`, N), records the
//! algorithms with entries (`algorithms`, SS), so filters can say which store version they
//! cover, and the generation state (`generation`, `pending`, `abandoned`).
//!
//! Imports are atomic per file ([`hashgate_core::generations`]): [`DynamoHashes::begin`]
//! makes a new generation pending, [`DynamoHashes::stage`] writes the file's entries under
//! it, and [`DynamoHashes::commit`] flips it to committed with one conditional write. Every
//! lookup reads the meta item in the same request as the digests, so it sees a file whole
//! or not at all.
//!
//! The case and audit tables' items, and why every write to them is conditional, are
//! described on [`DynamoCases`].

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, KeysAndAttributes, Put, PutRequest, TransactWriteItem, WriteRequest,
};
use aws_sdk_dynamodb::Client;
use hashgate_core::audit::{instant_text, link, AuditAction, AuditEntry, ChainedEntry};
use hashgate_core::case::CaseRecord;
use hashgate_core::digest::{Algorithm, AlgorithmSet, Digest};
use hashgate_core::feedback::{
    enable_on, matching, record_on, EntryFeedback, EntryKey, FeedbackError, ListFeedback, Recorded,
};
use hashgate_core::generations::{stage_entry, visible, Generations, VersionedEntry};
use hashgate_core::lists::{ListEntry, Provenance};
use hashgate_core::pipeline::{CaseStore, StorageError};
use hashgate_core::review::{
    created_key, CasePage, CaseQuery, RevealGrant, RevealRecord, ReviewStore, Updated,
};
use hashgate_core::scan::Match;
use hashgate_core::store::{
    Change, HashStore, ImportStats, Op, StoreError, StoreState, StoredDigest, StoredEntry,
};
use hashgate_core::time::{rfc3339, Timestamp};

/// BatchGetItem takes at most 100 keys, BatchWriteItem 25 requests.
const BATCH_GET: usize = 100;
const BATCH_WRITE: usize = 25;
/// Unprocessed keys (throttling) are retried this many times, with exponential backoff.
const RETRIES: u32 = 8;
const META_KEY: &str = "meta:version";
/// The meta item's attribute prefix for a list's size: `list#<name>`.
const LIST_SIZE: &str = "list#";

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
    /// Entries added minus entries withdrawn, per list: the lists' sizes move by this on
    /// commit.
    deltas: BTreeMap<String, i64>,
}

impl DynamoHashes {
    pub fn new(client: Client, table: impl Into<String>) -> DynamoHashes {
        DynamoHashes {
            client,
            table: table.into(),
        }
    }

    pub(crate) fn location(&self) -> String {
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
            deltas: BTreeMap::new(),
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
        let items = self.batch_get(keys).await?;
        let existing: HashMap<String, Vec<VersionedEntry>> = items
            .iter()
            .filter_map(|item| Some((item.get("digest")?.as_s().ok()?.clone(), entries_of(item))))
            .collect();
        // The digest's false-positive feedback is written back with its entries.
        let feedback: HashMap<String, AttributeValue> = items
            .iter()
            .filter_map(|item| {
                Some((
                    item.get("digest")?.as_s().ok()?.clone(),
                    item.get(FEEDBACK)?.clone(),
                ))
            })
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
                let delta = match change {
                    Change::Added => 1,
                    Change::Removed(n) => -(n as i64),
                    _ => 0,
                };
                if delta != 0 {
                    *import.deltas.entry(e.provenance.list.clone()).or_default() += delta;
                }
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
                let mut item = HashMap::from([
                    ("digest".to_string(), AttributeValue::S(key.clone())),
                    (
                        "entries".to_string(),
                        AttributeValue::L(current.iter().map(entry_value).collect()),
                    ),
                ]);
                if let Some(f) = feedback.get(&key) {
                    item.insert(FEEDBACK.to_string(), f.clone());
                }
                WriteRequest::builder()
                    .put_request(
                        PutRequest::builder()
                            .set_item(Some(item))
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
        // Each list's size moves by what this import added and withdrew, in the same write.
        let mut counts = String::new();
        let mut update = update;
        for (i, (list, delta)) in import.deltas.iter().filter(|(_, d)| **d != 0).enumerate() {
            counts.push_str(&format!(", #n{i} :n{i}"));
            update = update
                .expression_attribute_names(format!("#n{i}"), format!("{LIST_SIZE}{list}"))
                .expression_attribute_values(
                    format!(":n{i}"),
                    AttributeValue::N(delta.to_string()),
                );
        }
        let update = if names.is_empty() {
            update.update_expression(format!(
                "SET generation = :g REMOVE pending ADD version :one{counts}"
            ))
        } else {
            update
                .update_expression(format!(
                    "SET generation = :g, algorithms = :algs REMOVE pending ADD version :one{counts}"
                ))
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

    /// The number of entries on each list, as imports have counted them since list sizes
    /// were kept (the meta item's `list#<name>` attributes); a list without a count is
    /// absent.
    pub async fn list_sizes(&self) -> Result<BTreeMap<String, u64>, StoreError> {
        let items = self.batch_get(vec![META_KEY.to_string()]).await?;
        Ok(items
            .first()
            .map(|meta| {
                meta.iter()
                    .filter_map(|(k, v)| {
                        let list = k.strip_prefix(LIST_SIZE)?;
                        let n: i64 = v.as_n().ok()?.parse().ok()?;
                        Some((list.to_string(), n.max(0) as u64))
                    })
                    .collect()
            })
            .unwrap_or_default())
    }

    /// Every item of the table (the `digest` attribute only, when `digest_only`), page by
    /// page (a consistent, paginated scan); an error `f` returns stops it.
    async fn scan_items(
        &self,
        digest_only: bool,
        mut f: impl FnMut(&HashMap<String, AttributeValue>) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let mut start: Option<HashMap<String, AttributeValue>> = None;
        loop {
            let out = self
                .client
                .scan()
                .table_name(&self.table)
                .set_projection_expression(digest_only.then(|| "digest".to_string()))
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| backend(&self.location(), sdk_message(&e)))?;
            out.items().iter().try_for_each(&mut f)?;
            match out.last_evaluated_key() {
                Some(k) if !k.is_empty() => start = Some(k.clone()),
                _ => return Ok(()),
            }
        }
    }

    /// Every digest in the table, for building a filter.
    pub async fn for_each_digest(&self, mut f: impl FnMut(&Digest)) -> Result<u64, StoreError> {
        let mut n = 0;
        self.scan_items(true, |item| {
            if let Some(d) = item
                .get("digest")
                .and_then(|v| v.as_s().ok())
                .and_then(|s| parse_digest_key(s))
            {
                f(&d);
                n += 1;
            }
            Ok(())
        })
        .await?;
        Ok(n)
    }

    /// Every digest with the entries a lookup would give it now (committed, not withdrawn,
    /// not suppressed), for an export. The generations are read once first: an import
    /// committing during the walk shows up whole or not at all.
    pub async fn for_each_entry(
        &self,
        mut f: impl FnMut(Digest, Vec<Provenance>) -> Result<(), String>,
    ) -> Result<u64, StoreError> {
        let (_, generations) = self.meta().await?;
        let mut n = 0;
        self.scan_items(false, |item| {
            let Some(key) = item.get("digest").and_then(|v| v.as_s().ok()) else {
                return Ok(());
            };
            let Some(digest) = parse_digest_key(key) else {
                return Ok(()); // the meta item
            };
            let feedback = feedback_of(item).unwrap_or_else(|reason| {
                tracing::error!(digest = %key, %reason, "unreadable list feedback ignored");
                Vec::new()
            });
            let provenance = matching(&digest, visible(&entries_of(item), &generations), &feedback);
            if provenance.is_empty() {
                return Ok(());
            }
            n += 1;
            f(digest, provenance).map_err(|message| StoreError::Backend {
                location: self.location(),
                message,
            })
        })
        .await?;
        Ok(n)
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
                let key = item.get("digest")?.as_s().ok()?;
                let digest = parse_digest_key(key)?;
                let provenance = visible(&entries_of(item), &generations);
                // A feedback attribute that cannot be read suppresses nothing: the entries
                // match (a missed match is worse than a false positive), and it is logged.
                let feedback = feedback_of(item).unwrap_or_else(|reason| {
                    tracing::error!(digest = %key, %reason, "unreadable list feedback ignored");
                    Vec::new()
                });
                Some(StoredDigest {
                    digest,
                    provenance: matching(&digest, provenance, &feedback),
                })
            })
            .filter(|s| !s.provenance.is_empty())
            .collect())
    }

    async fn state(&self) -> Result<StoreState, StoreError> {
        Ok(self.meta().await?.0)
    }
}

/// The attribute of a digest's item that holds its entries' false-positive feedback.
const FEEDBACK: &str = "feedback";
/// Conditional feedback writes retried this often when another write got in between.
const FEEDBACK_ATTEMPTS: u32 = 20;
/// Items a feedback listing evaluates per Scan request.
const FEEDBACK_PAGE: i32 = 1_000;

/// The feedback on a digest's item (none: empty).
fn feedback_of(item: &HashMap<String, AttributeValue>) -> Result<Vec<EntryFeedback>, String> {
    match item.get(FEEDBACK) {
        None => Ok(Vec::new()),
        Some(AttributeValue::S(json)) => {
            serde_json::from_str(json).map_err(|e| format!("unreadable feedback: {e}"))
        }
        Some(other) => Err(format!("feedback is not a string: {other:?}")),
    }
}

/// Whether the digest's item has the entry `(list, id)` (not withdrawn).
fn has_entry(item: &HashMap<String, AttributeValue>, list: &str, id: &Option<String>) -> bool {
    entries_of(item)
        .iter()
        .any(|e| e.removed.is_none() && e.entry.list == list && &e.entry.id == id)
}

impl DynamoHashes {
    /// The digest's item, read consistently (absent: not on any list).
    async fn digest_item(
        &self,
        digest: &Digest,
    ) -> Result<Option<HashMap<String, AttributeValue>>, StoreError> {
        Ok(self.batch_get(vec![digest_key(digest)]).await?.pop())
    }

    /// Write `next` as the digest's feedback, only if it is still `before` (the JSON read)
    /// and the item still exists. `Ok(false)`: another write got in between; read again.
    async fn put_feedback(
        &self,
        digest: &Digest,
        before: Option<&str>,
        next: &[EntryFeedback],
    ) -> Result<bool, StoreError> {
        let json = serde_json::to_string(next).map_err(|e| backend(&self.location(), e))?;
        let update = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("digest", AttributeValue::S(digest_key(digest)))
            .update_expression("SET #f = :next")
            .expression_attribute_names("#f", FEEDBACK)
            .expression_attribute_values(":next", AttributeValue::S(json));
        let update = match before {
            None => {
                update.condition_expression("attribute_exists(digest) AND attribute_not_exists(#f)")
            }
            Some(old) => update
                .condition_expression("attribute_exists(digest) AND #f = :before")
                .expression_attribute_values(":before", AttributeValue::S(old.to_string())),
        };
        match update.send().await {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(e) => Err(backend(&self.location(), sdk_message(&e))),
        }
    }

    /// Change one digest's feedback by `change` (given the item and its feedback; `None`
    /// leaves it as it is), read-modify-write under a condition, retried when another write
    /// got in between: concurrent recordings never lose a count.
    async fn change_feedback<T, E: From<StoreError>>(
        &self,
        digest: &Digest,
        mut change: impl FnMut(
            Option<&HashMap<String, AttributeValue>>,
            &mut Vec<EntryFeedback>,
        ) -> Result<(T, bool), E>,
    ) -> Result<T, E> {
        for attempt in 0..FEEDBACK_ATTEMPTS {
            let item = self.digest_item(digest).await?;
            let before = item
                .as_ref()
                .and_then(|i| i.get(FEEDBACK))
                .and_then(|v| v.as_s().ok())
                .cloned();
            let mut feedback = match &item {
                Some(i) => feedback_of(i).map_err(|reason| StoreError::Corrupt {
                    location: self.location(),
                    key: digest_key(digest),
                    reason,
                })?,
                None => Vec::new(),
            };
            let (out, changed) = change(item.as_ref(), &mut feedback)?;
            if !changed
                || self
                    .put_feedback(digest, before.as_deref(), &feedback)
                    .await?
            {
                return Ok(out);
            }
            tokio::time::sleep(contention_backoff(attempt)).await;
        }
        Err(backend(
            &self.location(),
            format!(
                "feedback on {} kept changing under {FEEDBACK_ATTEMPTS} attempts to write it",
                digest_key(digest)
            ),
        )
        .into())
    }

    /// An admin re-enables the suppressed entry `key` ([`EntryFeedback::enable`]): it
    /// matches again. Returns its feedback as it is now.
    pub async fn enable(
        &self,
        key: &EntryKey,
        by: &str,
        reason: &str,
        at: Timestamp,
    ) -> Result<EntryFeedback, FeedbackError> {
        self.change_feedback(&key.digest, |item, feedback| {
            if !item.is_some_and(|i| has_entry(i, &key.list, &key.id)) {
                return Err(FeedbackError::NotInStore(key.clone()));
            }
            Ok((enable_on(feedback, key, by, reason, at)?, true))
        })
        .await
    }

    /// Every entry with false positives on record, ordered by entry (a Scan of the items
    /// with a `feedback` attribute, a bounded page per request).
    pub async fn feedback(&self) -> Result<Vec<EntryFeedback>, StoreError> {
        let mut start: Option<HashMap<String, AttributeValue>> = None;
        let mut all = Vec::new();
        loop {
            let out = self
                .client
                .scan()
                .table_name(&self.table)
                .filter_expression("attribute_exists(#f)")
                .projection_expression("digest, #f")
                .expression_attribute_names("#f", FEEDBACK)
                .limit(FEEDBACK_PAGE)
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| backend(&self.location(), sdk_message(&e)))?;
            for item in out.items() {
                let key = item
                    .get("digest")
                    .and_then(|v| v.as_s().ok())
                    .cloned()
                    .unwrap_or_default();
                all.extend(feedback_of(item).map_err(|reason| StoreError::Corrupt {
                    location: self.location(),
                    key,
                    reason,
                })?);
            }
            match out.last_evaluated_key() {
                Some(k) if !k.is_empty() => start = Some(k.clone()),
                _ => break,
            }
        }
        all.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(all)
    }
}

impl ListFeedback for DynamoHashes {
    /// Per digest the case matched: the item read, the core's [`record_on`] applied to each
    /// of its entries the case matched that the item still has (a withdrawn entry has
    /// nothing to suppress), and the feedback written back under a condition.
    async fn record_false_positive(
        &self,
        case_id: &str,
        matches: &[Match],
        at: Timestamp,
        suppress_after: u32,
    ) -> Result<Vec<Recorded>, StoreError> {
        let mut by_digest: Vec<(Digest, Vec<&Match>)> = Vec::new();
        for m in matches {
            match by_digest.iter_mut().find(|(d, _)| *d == m.digest) {
                Some((_, ms)) => ms.push(m),
                None => by_digest.push((m.digest, vec![m])),
            }
        }
        let mut recorded = Vec::new();
        for (digest, ms) in by_digest {
            let done = self
                .change_feedback::<_, StoreError>(&digest, |item, feedback| {
                    let Some(item) = item else {
                        return Ok((Vec::new(), false));
                    };
                    let before = feedback.clone();
                    let done: Vec<Recorded> = ms
                        .iter()
                        .filter(|m| has_entry(item, &m.list, &m.id))
                        .map(|m| record_on(feedback, m, case_id, at, suppress_after))
                        .collect();
                    let changed = *feedback != before;
                    Ok((done, changed))
                })
                .await?;
            recorded.extend(done);
        }
        Ok(recorded)
    }
}

/// The partition of the audit table that holds the chain (its only partition).
pub const AUDIT_CHAIN: &str = "audit";
/// The `queue` attribute of every case item: the partition of the index [`CASE_QUEUE_INDEX`].
pub const CASE_QUEUE: &str = "cases";
/// The case table's index that lists the queue oldest first (`queue`, `created_key`).
pub const CASE_QUEUE_INDEX: &str = "by_created";
/// The audit table's index that lists one case's entries in chain order (`case_id`, `seq`).
pub const AUDIT_CASE_INDEX: &str = "by_case";
/// Reveal tallies share the case table under keys that no case id can take (`case-<hex>`).
const REVEALS_PREFIX: &str = "reveals#";
/// Writers that lose the race for the chain's next position try again this many times.
const CHAIN_ATTEMPTS: u32 = 30;
/// Case items one queue request may examine before it returns a cursor instead.
const QUEUE_SCAN_BUDGET: usize = 5_000;

const CONDITION_FAILED: &str = "ConditionalCheckFailed";
const TRANSACTION_CONFLICT: &str = "TransactionConflict";

/// The key of `user`'s reveal tally of `day` (the day is fixed-width, so keys never collide).
pub fn reveal_key(user: &str, day: &str) -> String {
    format!("{REVEALS_PREFIX}{user}#{day}")
}

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_string())
}

fn n(v: u64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn text<'a>(item: &'a HashMap<String, AttributeValue>, name: &str) -> Result<&'a str, String> {
    match item.get(name) {
        Some(AttributeValue::S(v)) => Ok(v),
        Some(other) => Err(format!("{name} is not a string: {other:?}")),
        None => Err(format!("{name} is missing")),
    }
}

fn optional_text(
    item: &HashMap<String, AttributeValue>,
    name: &str,
) -> Result<Option<String>, String> {
    match item.get(name) {
        None | Some(AttributeValue::Null(_)) => Ok(None),
        Some(_) => text(item, name).map(|v| Some(v.to_string())),
    }
}

/// An audit entry as its item in the audit table.
pub fn audit_item(e: &ChainedEntry) -> HashMap<String, AttributeValue> {
    let mut item = HashMap::from([
        ("chain".to_string(), s(AUDIT_CHAIN)),
        ("seq".to_string(), n(e.seq)),
        ("case_id".to_string(), s(&e.entry.case_id)),
        ("at".to_string(), s(&instant_text(e.entry.at))),
        ("actor".to_string(), s(&e.entry.actor)),
        ("action".to_string(), s(e.entry.action.as_str())),
        ("detail".to_string(), s(&e.entry.detail)),
        ("prev".to_string(), s(&e.prev)),
        ("hash".to_string(), s(&e.hash)),
    ]);
    if let Some(a) = &e.entry.address {
        item.insert("address".into(), s(a));
    }
    if let Some(r) = &e.entry.reason {
        item.insert("reason".into(), s(r));
    }
    item
}

/// An audit table item back as the entry it holds, exactly as it was hashed.
pub fn audit_entry_of(item: &HashMap<String, AttributeValue>) -> Result<ChainedEntry, String> {
    let seq = match item.get("seq") {
        Some(AttributeValue::N(v)) => v.parse().map_err(|_| format!("seq {v:?}"))?,
        _ => return Err("seq is missing".into()),
    };
    let within = |e: String| format!("audit entry {seq}: {e}");
    let at = text(item, "at").map_err(within)?;
    let action = text(item, "action").map_err(within)?;
    Ok(ChainedEntry {
        seq,
        prev: text(item, "prev").map_err(within)?.to_string(),
        hash: text(item, "hash").map_err(within)?.to_string(),
        entry: AuditEntry {
            case_id: text(item, "case_id").map_err(within)?.to_string(),
            at: at
                .parse::<Timestamp>()
                .map_err(|e| within(format!("at {at:?}: {e}")))?,
            actor: text(item, "actor").map_err(within)?.to_string(),
            action: action.parse::<AuditAction>().map_err(within)?,
            detail: text(item, "detail").map_err(within)?.to_string(),
            address: optional_text(item, "address").map_err(within)?,
            reason: optional_text(item, "reason").map_err(within)?,
        },
    })
}

/// A case as its item in the case table: the record itself (JSON), the attributes the
/// queue's index and filters use, and the revision updates are conditioned on.
pub fn case_item(r: &CaseRecord) -> Result<HashMap<String, AttributeValue>, String> {
    let json = serde_json::to_string(r).map_err(|e| e.to_string())?;
    Ok(HashMap::from([
        ("case_id".to_string(), s(&r.case_id)),
        ("status".to_string(), s(r.status.as_str())),
        ("bucket".to_string(), s(&r.object.bucket)),
        ("key".to_string(), s(&r.object.key)),
        ("created_at".to_string(), s(&rfc3339(r.created_at))),
        ("record".to_string(), AttributeValue::S(json)),
        ("queue".to_string(), s(CASE_QUEUE)),
        ("created_key".to_string(), s(&created_key(r))),
        ("revision".to_string(), n(r.revision)),
    ]))
}

/// A case item back as its record; the `revision` attribute (absent on items written
/// before revisions existed: 0) is the one conditions compare, so it wins.
pub fn case_of(item: &HashMap<String, AttributeValue>) -> Result<CaseRecord, String> {
    let json = text(item, "record")?;
    let mut record: CaseRecord =
        serde_json::from_str(json).map_err(|e| format!("unreadable case record: {e}"))?;
    record.revision = match item.get("revision") {
        None => 0,
        Some(AttributeValue::N(v)) => v.parse().map_err(|_| format!("revision {v:?}"))?,
        Some(other) => return Err(format!("revision is not a number: {other:?}")),
    };
    Ok(record)
}

fn reveal_value(r: &RevealRecord) -> AttributeValue {
    AttributeValue::M(HashMap::from([
        ("case_id".to_string(), s(&r.case_id)),
        ("at".to_string(), s(&instant_text(r.at))),
    ]))
}

fn reveal_of(v: &AttributeValue) -> Result<RevealRecord, String> {
    let m = v.as_m().map_err(|_| format!("not a reveal: {v:?}"))?;
    let at = text(m, "at")?;
    Ok(RevealRecord {
        case_id: text(m, "case_id")?.to_string(),
        at: at.parse().map_err(|e| format!("at {at:?}: {e}"))?,
    })
}

/// A random duration up to a window that doubles from 10 ms to 640 ms: writers that lost
/// the race for the chain's head spread out instead of colliding again.
fn contention_backoff(attempt: u32) -> Duration {
    use std::hash::{BuildHasher, Hasher};
    let window = 10u64 << attempt.min(6);
    // RandomState is seeded from the operating system's randomness per process and
    // advanced per instance: enough for jitter, with no dependency.
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(attempt);
    Duration::from_millis(h.finish() % (window + 1))
}

/// The per-item reasons of a cancelled transaction, in the order of its items.
fn cancellation<R>(e: &SdkError<TransactWriteItemsError, R>) -> Option<Vec<String>> {
    match e.as_service_error()? {
        TransactWriteItemsError::TransactionCanceledException(t) => Some(
            t.cancellation_reasons()
                .iter()
                .map(|r| r.code().unwrap_or("None").to_string())
                .collect(),
        ),
        _ => None,
    }
}

/// What a cancelled "case + audit entry" transaction means.
#[derive(Debug, PartialEq, Eq)]
enum Cancelled {
    /// The case's condition failed (and nothing else went wrong).
    Case,
    /// Only the audit entry's position was taken (or being taken): the chain moved on.
    ChainMoved,
    /// Anything else: throttling, a conflict on the case, validation.
    Other,
}

fn classify(codes: &[String]) -> Cancelled {
    let code = |i: usize| codes.get(i).map_or("None", String::as_str);
    match (code(0), code(1)) {
        (CONDITION_FAILED, CONDITION_FAILED | "None") if codes.len() == 2 => Cancelled::Case,
        ("None", CONDITION_FAILED | TRANSACTION_CONFLICT) if codes.len() == 2 => {
            Cancelled::ChainMoved
        }
        _ => Cancelled::Other,
    }
}

/// Cases, the audit chain and reviewers' reveal tallies on DynamoDB.
///
/// Case table items: `case_id` (S), `status`, `bucket`, `key`, `created_at` (RFC 3339),
/// `record` (the [`CaseRecord`] as JSON), `queue` (always [`CASE_QUEUE`]), `created_key`
/// ([`created_key`]: the index [`CASE_QUEUE_INDEX`] lists the queue oldest first) and
/// `revision` (N). Every change after creation is a put conditioned on the revision it was
/// read at, so two reviewers deciding at once cannot both win. Reveal tallies are items
/// `case_id = reveals#<user>#<day>` with `count` (N) and `reveals` (L of M `case_id`, `at`),
/// outside the index; one conditional update counts a reveal only below the day's limit.
///
/// Audit table items: `chain` (always [`AUDIT_CHAIN`]) and `seq` (N) are the key; `case_id`,
/// `at` ([`instant_text`]: exact to the nanosecond, as it was hashed), `actor`, `action`,
/// `detail`, optional `address` and `reason`, `prev` and `hash`. The index
/// [`AUDIT_CASE_INDEX`] lists one case's entries. An entry is linked after the head read
/// with a consistent query and written only if its `seq` is free (`attribute_not_exists`):
/// of two writers linking after the same head, one wins and the other reads the new head
/// and links again, so the chain never forks. A case write and its audit entry are one
/// transaction: both or neither.
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

    fn case_error(&self, operation: &'static str, id: &str, message: String) -> StorageError {
        StorageError {
            operation,
            target: format!("{} {id}", self.case_table),
            message,
        }
    }

    fn audit_error(&self, operation: &'static str, message: String) -> StorageError {
        StorageError {
            operation,
            target: self.audit_table.clone(),
            message,
        }
    }

    /// Read a case (a consistent read).
    pub async fn get(&self, case_id: &str) -> Result<Option<CaseRecord>, StorageError> {
        // Reveal tallies live in the same table; no case has such an id.
        if case_id.starts_with(REVEALS_PREFIX) {
            return Ok(None);
        }
        let out = self
            .client
            .get_item()
            .table_name(&self.case_table)
            .key("case_id", s(case_id))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| self.case_error("GetItem", case_id, sdk_message(&e)))?;
        out.item()
            .map(case_of)
            .transpose()
            .map_err(|e| self.case_error("GetItem", case_id, e))
    }

    /// The chain's last entry (a consistent read of the highest `seq`).
    async fn head_entry(&self) -> Result<Option<ChainedEntry>, StorageError> {
        let out = self
            .client
            .query()
            .table_name(&self.audit_table)
            .key_condition_expression("#c = :c")
            .expression_attribute_names("#c", "chain")
            .expression_attribute_values(":c", s(AUDIT_CHAIN))
            .scan_index_forward(false)
            .limit(1)
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| self.audit_error("Query", sdk_message(&e)))?;
        out.items()
            .first()
            .map(audit_entry_of)
            .transpose()
            .map_err(|e| self.audit_error("Query", e))
    }

    /// The conditional put of a linked entry: only into a free position.
    fn audit_put(&self, linked: &ChainedEntry) -> Result<Put, StorageError> {
        Put::builder()
            .table_name(&self.audit_table)
            .set_item(Some(audit_item(linked)))
            .condition_expression("attribute_not_exists(#s)")
            .expression_attribute_names("#s", "seq")
            .build()
            .map_err(|e| self.audit_error("TransactWriteItems", e.to_string()))
    }

    fn contended(&self, operation: &'static str) -> StorageError {
        self.audit_error(
            operation,
            format!(
                "the audit chain's head kept moving: {CHAIN_ATTEMPTS} attempts to append lost \
                 to other writers (contention); nothing was written"
            ),
        )
    }

    /// Write a case item and its linked audit entry in one transaction; the case under
    /// `condition`. Linked again after the chain moves; the case's own failure is returned.
    async fn write_with_entry(
        &self,
        record: &CaseRecord,
        case_condition: (&str, Option<u64>),
        entry: &AuditEntry,
    ) -> Result<Result<ChainedEntry, Cancelled>, StorageError> {
        let (condition, previous) = case_condition;
        let error =
            |message: String| self.case_error("TransactWriteItems", &record.case_id, message);
        let mut case = Put::builder()
            .table_name(&self.case_table)
            .set_item(Some(case_item(record).map_err(error)?))
            .condition_expression(condition)
            .expression_attribute_names("#id", "case_id");
        if let Some(prev) = previous {
            case = case
                .expression_attribute_names("#rev", "revision")
                .expression_attribute_values(":prev", n(prev));
        }
        let case = case.build().map_err(|e| error(e.to_string()))?;
        for attempt in 0..CHAIN_ATTEMPTS {
            let linked = link(self.head_entry().await?.as_ref(), entry.clone());
            let result = self
                .client
                .transact_write_items()
                .transact_items(TransactWriteItem::builder().put(case.clone()).build())
                .transact_items(
                    TransactWriteItem::builder()
                        .put(self.audit_put(&linked)?)
                        .build(),
                )
                .send()
                .await;
            let e = match result {
                Ok(_) => return Ok(Ok(linked)),
                Err(e) => e,
            };
            match cancellation(&e).map(|codes| classify(&codes)) {
                Some(Cancelled::ChainMoved) => {
                    tokio::time::sleep(contention_backoff(attempt)).await;
                }
                Some(Cancelled::Case) => return Ok(Err(Cancelled::Case)),
                Some(Cancelled::Other) => {
                    // A transaction on the same case at this moment: the condition decides
                    // on the next attempt. Anything else (throttling...) is an error.
                    let conflict = cancellation(&e).is_some_and(|c| {
                        c.first().map(String::as_str) == Some(TRANSACTION_CONFLICT)
                    });
                    if !conflict {
                        return Err(error(sdk_message(&e)));
                    }
                    tokio::time::sleep(contention_backoff(attempt)).await;
                }
                None => return Err(error(sdk_message(&e))),
            }
        }
        Err(self.contended("TransactWriteItems"))
    }

    async fn query_all(
        &self,
        operation: &'static str,
        build: impl Fn() -> aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder,
    ) -> Result<Vec<ChainedEntry>, StorageError> {
        let mut entries = Vec::new();
        let mut start = None;
        loop {
            let out = build()
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| self.audit_error(operation, sdk_message(&e)))?;
            for item in out.items() {
                entries.push(audit_entry_of(item).map_err(|e| self.audit_error(operation, e))?);
            }
            match out.last_evaluated_key() {
                Some(k) if !k.is_empty() => start = Some(k.clone()),
                _ => return Ok(entries),
            }
        }
    }

    async fn reveal_item(
        &self,
        key: &str,
    ) -> Result<Option<HashMap<String, AttributeValue>>, StorageError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.case_table)
            .key("case_id", s(key))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| self.case_error("GetItem", key, sdk_message(&e)))?;
        Ok(out.item().cloned())
    }

    async fn reveal_count(&self, key: &str) -> Result<u32, StorageError> {
        Ok(self
            .reveal_item(key)
            .await?
            .and_then(|item| number(item.get("count")))
            .map_or(0, |c| u32::try_from(c).unwrap_or(u32::MAX)))
    }
}

impl CaseStore for DynamoCases {
    async fn get(&self, case_id: &str) -> Result<Option<CaseRecord>, StorageError> {
        DynamoCases::get(self, case_id).await
    }

    async fn create(&self, record: &CaseRecord, audit: &AuditEntry) -> Result<bool, StorageError> {
        let written = self
            .write_with_entry(record, ("attribute_not_exists(#id)", None), audit)
            .await?;
        match written {
            Ok(_) => Ok(true),
            // The case exists: a duplicate or replayed event. Belt and braces: the case the
            // condition says exists must be readable, or the original could be deleted with
            // no case behind it.
            Err(_) => match self.get(&record.case_id).await? {
                Some(_) => Ok(false),
                None => Err(self.case_error(
                    "TransactWriteItems",
                    &record.case_id,
                    "the transaction was refused as a duplicate, yet the case cannot be read"
                        .into(),
                )),
            },
        }
    }
}

impl ReviewStore for DynamoCases {
    async fn case(&self, case_id: &str) -> Result<Option<CaseRecord>, StorageError> {
        self.get(case_id).await
    }

    async fn cases(&self, query: &CaseQuery) -> Result<CasePage, StorageError> {
        let limit = query.limit.clamp(1, CaseQuery::MAX_LIMIT);
        let mut items: Vec<CaseRecord> = Vec::new();
        let mut examined = 0usize;
        let mut start: Option<HashMap<String, AttributeValue>> = None;
        let error = |message: String| StorageError {
            operation: "Query",
            target: format!("{} index {CASE_QUEUE_INDEX}", self.case_table),
            message,
        };
        loop {
            let page = (limit + 1).max(100).min(QUEUE_SCAN_BUDGET - examined);
            let mut request = self
                .client
                .query()
                .table_name(&self.case_table)
                .index_name(CASE_QUEUE_INDEX)
                .expression_attribute_names("#q", "queue")
                .expression_attribute_values(":q", s(CASE_QUEUE))
                .limit(i32::try_from(page).unwrap_or(i32::MAX))
                .set_exclusive_start_key(start.take());
            request = match &query.after {
                Some(after) => request
                    .key_condition_expression("#q = :q AND #k > :after")
                    .expression_attribute_names("#k", "created_key")
                    .expression_attribute_values(":after", s(after)),
                None => request.key_condition_expression("#q = :q"),
            };
            // The status filter runs on the server to save transfer; `query.matches` below
            // is the rule.
            if !query.statuses.is_empty() {
                let names: Vec<String> = (0..query.statuses.len())
                    .map(|i| format!(":s{i}"))
                    .collect();
                request = request
                    .filter_expression(format!("#st IN ({})", names.join(", ")))
                    .expression_attribute_names("#st", "status");
                for (name, status) in names.iter().zip(&query.statuses) {
                    request = request.expression_attribute_values(name, s(status.as_str()));
                }
            }
            let out = request.send().await.map_err(|e| error(sdk_message(&e)))?;
            let scanned = usize::try_from(out.scanned_count()).unwrap_or(0);
            examined += scanned.max(out.items().len()).max(1);
            for item in out.items() {
                let record = case_of(item).map_err(&error)?;
                if !query.matches(&record) {
                    continue;
                }
                if items.len() == limit {
                    // One more matching case exists: the page ends at the last one taken.
                    let next = items.last().map(created_key);
                    return Ok(CasePage { items, next });
                }
                items.push(record);
            }
            let last = match out.last_evaluated_key() {
                Some(k) if !k.is_empty() => k,
                _ => return Ok(CasePage { items, next: None }),
            };
            if items.len() == limit {
                // Full, and more may follow: let the client ask (perhaps for an empty page)
                // rather than reading on to find out.
                let next = items.last().map(created_key);
                return Ok(CasePage { items, next });
            }
            if examined >= QUEUE_SCAN_BUDGET {
                // Enough work for one request: the client continues after the last case
                // examined.
                let cursor = last
                    .get("created_key")
                    .and_then(|v| v.as_s().ok())
                    .cloned()
                    .ok_or_else(|| error("a page ended without a created_key".into()))?;
                return Ok(CasePage {
                    items,
                    next: Some(cursor),
                });
            }
            start = Some(last.clone());
        }
    }

    async fn history(&self, case_id: &str) -> Result<Vec<ChainedEntry>, StorageError> {
        self.query_all("Query", || {
            self.client
                .query()
                .table_name(&self.audit_table)
                .index_name(AUDIT_CASE_INDEX)
                .key_condition_expression("#id = :id")
                .expression_attribute_names("#id", "case_id")
                .expression_attribute_values(":id", s(case_id))
        })
        .await
    }

    async fn append(&self, entry: AuditEntry) -> Result<ChainedEntry, StorageError> {
        for attempt in 0..CHAIN_ATTEMPTS {
            let linked = link(self.head_entry().await?.as_ref(), entry.clone());
            let result = self
                .client
                .put_item()
                .table_name(&self.audit_table)
                .set_item(Some(audit_item(&linked)))
                .condition_expression("attribute_not_exists(#s)")
                .expression_attribute_names("#s", "seq")
                .send()
                .await;
            match result {
                Ok(_) => return Ok(linked),
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
                {
                    tokio::time::sleep(contention_backoff(attempt)).await;
                }
                Err(e) => return Err(self.audit_error("PutItem", sdk_message(&e))),
            }
        }
        Err(self.contended("PutItem"))
    }

    async fn update(&self, case: &CaseRecord, entry: AuditEntry) -> Result<Updated, StorageError> {
        // The stored case must be at the revision below this one (0: never updated, when
        // items written before revisions existed carry no revision at all).
        let Some(previous) = case.revision.checked_sub(1) else {
            return Ok(Updated::Conflict);
        };
        let condition = if previous == 0 {
            "attribute_exists(#id) AND (attribute_not_exists(#rev) OR #rev = :prev)"
        } else {
            "attribute_exists(#id) AND #rev = :prev"
        };
        match self
            .write_with_entry(case, (condition, Some(previous)), &entry)
            .await?
        {
            Ok(linked) => Ok(Updated::Written(linked)),
            Err(_) => Ok(Updated::Conflict),
        }
    }

    async fn take_reveal(
        &self,
        user: &str,
        day: &str,
        limit: u32,
        reveal: &RevealRecord,
    ) -> Result<RevealGrant, StorageError> {
        let key = reveal_key(user, day);
        if limit == 0 {
            return Ok(RevealGrant::Exhausted {
                used: self.reveal_count(&key).await?,
            });
        }
        let result = self
            .client
            .update_item()
            .table_name(&self.case_table)
            .key("case_id", s(&key))
            .update_expression("ADD #n :one SET #r = list_append(if_not_exists(#r, :empty), :new)")
            .condition_expression("attribute_not_exists(#n) OR #n < :limit")
            .expression_attribute_names("#n", "count")
            .expression_attribute_names("#r", "reveals")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":empty", AttributeValue::L(vec![]))
            .expression_attribute_values(":new", AttributeValue::L(vec![reveal_value(reveal)]))
            .expression_attribute_values(":limit", n(u64::from(limit)))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::UpdatedNew)
            .send()
            .await;
        match result {
            Ok(out) => {
                let used =
                    number(out.attributes().and_then(|a| a.get("count"))).ok_or_else(|| {
                        self.case_error("UpdateItem", &key, "no count came back".into())
                    })?;
                Ok(RevealGrant::Granted {
                    used: u32::try_from(used).unwrap_or(u32::MAX),
                })
            }
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                Ok(RevealGrant::Exhausted {
                    used: self.reveal_count(&key).await?,
                })
            }
            Err(e) => Err(self.case_error("UpdateItem", &key, sdk_message(&e))),
        }
    }

    async fn reveals(&self, user: &str, day: &str) -> Result<Vec<RevealRecord>, StorageError> {
        let key = reveal_key(user, day);
        let Some(item) = self.reveal_item(&key).await? else {
            return Ok(vec![]);
        };
        let list = match item.get("reveals") {
            None => return Ok(vec![]),
            Some(v) => v
                .as_l()
                .map_err(|_| self.case_error("GetItem", &key, "reveals is not a list".into()))?,
        };
        list.iter()
            .map(reveal_of)
            .collect::<Result<_, _>>()
            .map_err(|e| self.case_error("GetItem", &key, e))
    }

    async fn chain(&self, after: u64, limit: usize) -> Result<Vec<ChainedEntry>, StorageError> {
        let mut entries = Vec::new();
        let mut start = None;
        while entries.len() < limit {
            let out = self
                .client
                .query()
                .table_name(&self.audit_table)
                .key_condition_expression("#c = :c AND #s > :after")
                .expression_attribute_names("#c", "chain")
                .expression_attribute_names("#s", "seq")
                .expression_attribute_values(":c", s(AUDIT_CHAIN))
                .expression_attribute_values(":after", n(after))
                .consistent_read(true)
                .limit(i32::try_from(limit - entries.len()).unwrap_or(i32::MAX))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| self.audit_error("Query", sdk_message(&e)))?;
            for item in out.items() {
                entries.push(audit_entry_of(item).map_err(|e| self.audit_error("Query", e))?);
            }
            match out.last_evaluated_key() {
                Some(k) if !k.is_empty() => start = Some(k.clone()),
                _ => break,
            }
        }
        entries.truncate(limit);
        Ok(entries)
    }

    async fn head(&self) -> Result<Option<ChainedEntry>, StorageError> {
        self.head_entry().await
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

    fn chained(address: Option<&str>, reason: Option<&str>) -> ChainedEntry {
        let mut e = AuditEntry::new(
            "case-0123",
            Timestamp::new(1_795_255_445, 123_456_789).unwrap(),
            "reviewer-a",
            AuditAction::Revealed,
            "détail <&\"> with ünïcode",
        );
        e.address = address.map(str::to_string);
        e.reason = reason.map(str::to_string);
        let first = link(
            None,
            AuditEntry::new(
                "case-0",
                Timestamp::from_second(1_795_255_440).unwrap(),
                "scanner",
                AuditAction::Quarantined,
                "",
            ),
        );
        link(Some(&first), e)
    }

    #[test]
    fn audit_entries_round_trip_through_items_exactly() {
        for (address, reason) in [
            (None, None),
            (Some("203.0.113.9"), Some("to check the category")),
            (Some(""), None),
        ] {
            let e = chained(address, reason);
            let item = audit_item(&e);
            assert_eq!(item["chain"], s(AUDIT_CHAIN));
            assert_eq!(item["seq"], n(2));
            assert_eq!(item["at"], s("2026-11-21T10:04:05.123456789Z"));
            assert_eq!(item.contains_key("address"), address.is_some());
            assert_eq!(item.contains_key("reason"), reason.is_some());
            let back = audit_entry_of(&item).unwrap();
            assert_eq!(back, e);
            // What comes back still hashes to what it carries.
            assert_eq!(
                hashgate_core::audit::entry_hash(back.seq, &back.prev, &back.entry),
                back.hash
            );
        }
        // A whole-second instant keeps its (zero) nanoseconds in the text.
        let first = link(
            None,
            AuditEntry::new(
                "c",
                Timestamp::from_second(1_795_255_440).unwrap(),
                "scanner",
                AuditAction::HeldInPlace,
                "d",
            ),
        );
        assert_eq!(audit_entry_of(&audit_item(&first)).unwrap(), first);
    }

    #[test]
    fn malformed_audit_items_name_the_entry_and_the_field() {
        let e = chained(None, None);
        let mut item = audit_item(&e);
        item.insert("action".into(), s("deleted"));
        let err = audit_entry_of(&item).unwrap_err();
        assert!(
            err.contains("audit entry 2") && err.contains("deleted"),
            "{err}"
        );
        let mut item = audit_item(&e);
        item.remove("hash");
        assert!(audit_entry_of(&item).unwrap_err().contains("hash"));
        let mut item = audit_item(&e);
        item.insert("at".into(), s("yesterday"));
        assert!(audit_entry_of(&item).unwrap_err().contains("at"));
        let mut item = audit_item(&e);
        item.insert("reason".into(), n(3));
        assert!(audit_entry_of(&item).unwrap_err().contains("reason"));
    }

    fn record() -> CaseRecord {
        let digest = Digest::parse_hex("900150983cd24fb0d6963f7d28e17f72").unwrap();
        CaseRecord {
            case_id: "case-0123".into(),
            object: hashgate_core::event::ObjectRef {
                bucket: "uploads".into(),
                key: "a/b c.jpg".into(),
                version_id: Some("v1".into()),
                etag: Some("e".into()),
            },
            size: 3,
            digests: vec![("md5".into(), digest.to_hex())],
            matches: vec![hashgate_core::scan::Match {
                distance: None,
                algorithm: Algorithm::Md5,
                digest,
                list: "ncmec".into(),
                category: Some("A1".into()),
                id: None,
            }],
            quarantine: None,
            status: hashgate_core::case::CaseStatus::AwaitingSecondReview,
            created_at: Timestamp::new(1_795_255_445, 5).unwrap(),
            uploaded_at: None,
            reviews: vec![],
            classification: None,
            restored_to: None,
            revision: 3,
            upload_facts: Default::default(),
            followups: Vec::new(),
            legal_hold: None,
        }
    }

    #[test]
    fn cases_round_trip_with_their_queue_attributes() {
        let r = record();
        let item = case_item(&r).unwrap();
        assert_eq!(item["queue"], s(CASE_QUEUE));
        assert_eq!(item["created_key"], s(&created_key(&r)));
        assert_eq!(
            item["created_key"],
            s("2026-11-21T10:04:05.000000005Z#case-0123")
        );
        assert_eq!(item["status"], s("awaiting_second_review"));
        assert_eq!(item["revision"], n(3));
        assert_eq!(case_of(&item).unwrap(), r);
        // Items written before revisions existed are at revision 0; the attribute wins.
        let mut old = item.clone();
        old.remove("revision");
        assert_eq!(case_of(&old).unwrap().revision, 0);
        let mut ahead = item;
        ahead.insert("revision".into(), n(4));
        assert_eq!(case_of(&ahead).unwrap().revision, 4);
    }

    #[test]
    fn reveals_round_trip_and_tallies_never_take_a_case_id() {
        let r = RevealRecord {
            case_id: "case-1".into(),
            at: Timestamp::new(1_795_255_445, 999_999_999).unwrap(),
        };
        assert_eq!(reveal_of(&reveal_value(&r)).unwrap(), r);
        let key = reveal_key("reviewer-a", "2026-11-21");
        assert_eq!(key, "reveals#reviewer-a#2026-11-21");
        assert!(!record().case_id.starts_with(REVEALS_PREFIX));
    }

    #[test]
    fn cancelled_transactions_are_told_apart() {
        let codes = |c: &[&str]| c.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            classify(&codes(&["ConditionalCheckFailed", "None"])),
            Cancelled::Case
        );
        assert_eq!(
            classify(&codes(&[
                "ConditionalCheckFailed",
                "ConditionalCheckFailed"
            ])),
            Cancelled::Case
        );
        assert_eq!(
            classify(&codes(&["None", "ConditionalCheckFailed"])),
            Cancelled::ChainMoved
        );
        assert_eq!(
            classify(&codes(&["None", "TransactionConflict"])),
            Cancelled::ChainMoved
        );
        for other in [
            &["ThrottlingError", "None"][..],
            &["ConditionalCheckFailed", "ThrottlingError"],
            &["None", "ValidationError"],
            &["ConditionalCheckFailed"],
        ] {
            assert_eq!(classify(&codes(other)), Cancelled::Other, "{other:?}");
        }
    }

    #[test]
    fn contention_backoff_is_jittered_and_bounded() {
        let waits: std::collections::BTreeSet<Duration> =
            (0..20).map(|_| contention_backoff(8)).collect();
        assert!(waits.len() > 1, "jittered");
        assert!(waits.iter().all(|w| *w <= Duration::from_millis(640)));
        assert!(contention_backoff(0) <= Duration::from_millis(10));
    }
}

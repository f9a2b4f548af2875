//! Backfill: scanning what a bucket held before hashgate was attached, through the same
//! pipeline, idempotency and case ids as events.
//!
//! The bucket is listed in key order a page at a time; each listed object becomes the
//! upload event a notification would have carried (bucket, key, ETag, size), so a match
//! gets the case id an event of the same upload would give it, and scanning an object twice
//! (an event and a backfill, or two backfills) converges on one case. The [`Checkpoint`]
//! records the last key whose page was wholly handled and the counts so far; it is saved
//! after every page, so an interrupted run resumes after that key and loses nothing: at
//! worst the page in flight is scanned again.
//!
//! This module decides; listing is the [`Lister`] port's, and saving the checkpoint and
//! scanning are the caller's.

use std::collections::BTreeMap;
use std::future::Future;

use serde::{Deserialize, Serialize};

use crate::event::{ObjectRef, Trigger, UploadEvent};
use crate::pipeline::StorageError;

/// One object of a listing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listed {
    pub key: String,
    /// Without quotes.
    pub etag: Option<String>,
    pub size: Option<u64>,
}

/// One page of a listing, in key order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Page {
    pub objects: Vec<Listed>,
    /// More keys follow.
    pub truncated: bool,
}

/// Lists a bucket's current objects in key order.
pub trait Lister: Send + Sync {
    /// Up to `max` objects under `prefix` whose keys sort after `start_after`.
    fn list(
        &self,
        bucket: &str,
        prefix: &str,
        start_after: Option<&str>,
        max: u32,
    ) -> impl Future<Output = Result<Page, StorageError>> + Send;
}

/// Where a backfill stands; saved after every page.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The checkpoint format.
    pub format: u32,
    pub bucket: String,
    pub prefix: String,
    /// The last key whose page was wholly handled: the next listing starts after it.
    pub after: Option<String>,
    /// Every object is listed and handled.
    pub complete: bool,
    /// Objects handled so far.
    pub handled: u64,
    /// Bytes of the objects handled, as listed.
    pub bytes: u64,
    /// Outcomes so far, by the result tag's value (`clean`, `match`, …).
    pub outcomes: BTreeMap<String, u64>,
}

/// The checkpoint format this build writes and reads.
pub const CHECKPOINT_FORMAT: u32 = 1;

/// A checkpoint that cannot be resumed from.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("not a backfill checkpoint: {0}")]
    Malformed(String),
    #[error("a checkpoint of format {found}; this build reads format {CHECKPOINT_FORMAT}")]
    Format { found: u32 },
    #[error(
        "the checkpoint is of s3://{found_bucket}/{found_prefix}, not s3://{bucket}/{prefix}: \
         use another checkpoint file"
    )]
    OtherTarget {
        bucket: String,
        prefix: String,
        found_bucket: String,
        found_prefix: String,
    },
}

impl Checkpoint {
    /// A new backfill of `bucket`'s objects under `prefix`.
    pub fn new(bucket: &str, prefix: &str) -> Checkpoint {
        Checkpoint {
            format: CHECKPOINT_FORMAT,
            bucket: bucket.into(),
            prefix: prefix.into(),
            after: None,
            complete: false,
            handled: 0,
            bytes: 0,
            outcomes: BTreeMap::new(),
        }
    }

    /// A saved checkpoint, which must be of this bucket and prefix.
    pub fn resume(text: &str, bucket: &str, prefix: &str) -> Result<Checkpoint, CheckpointError> {
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| CheckpointError::Malformed(e.to_string()))?;
        let found = value.get("format").and_then(serde_json::Value::as_u64);
        if found != Some(u64::from(CHECKPOINT_FORMAT)) {
            return match found {
                Some(f) => Err(CheckpointError::Format { found: f as u32 }),
                None => Err(CheckpointError::Malformed("no \"format\"".into())),
            };
        }
        let checkpoint: Checkpoint =
            serde_json::from_value(value).map_err(|e| CheckpointError::Malformed(e.to_string()))?;
        if checkpoint.bucket != bucket || checkpoint.prefix != prefix {
            return Err(CheckpointError::OtherTarget {
                bucket: bucket.into(),
                prefix: prefix.into(),
                found_bucket: checkpoint.bucket,
                found_prefix: checkpoint.prefix,
            });
        }
        Ok(checkpoint)
    }

    /// The upload event a notification of `object` would have carried.
    pub fn event(&self, object: &Listed) -> UploadEvent {
        UploadEvent {
            object: ObjectRef {
                bucket: self.bucket.clone(),
                key: object.key.clone(),
                // The listing shows current objects; the scan pins the version it reads.
                version_id: None,
                etag: object.etag.clone(),
            },
            size: object.size,
            event_name: "Backfill".into(),
            uploaded_at: None,
            trigger: Trigger::Backfill,
            upload_facts: Default::default(),
        }
    }

    /// Count one handled object and its outcome (the result tag's value).
    pub fn handled(&mut self, object: &Listed, outcome: &str) {
        self.handled += 1;
        self.bytes += object.size.unwrap_or(0);
        *self.outcomes.entry(outcome.to_string()).or_default() += 1;
    }

    /// Every object of a page up to and including `last_key` was handled; `more`: keys
    /// follow it.
    pub fn page_done(&mut self, last_key: Option<&str>, more: bool) {
        if let Some(key) = last_key {
            self.after = Some(key.to_string());
        }
        self.complete = !more;
    }

    /// The next page to ask for: after the last key handled.
    pub fn start_after(&self) -> Option<&str> {
        self.after.as_deref()
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a checkpoint serialises")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// A bucket in memory, listed in key order.
    struct Bucket(Mutex<Vec<Listed>>);

    impl Bucket {
        fn new(n: usize) -> Bucket {
            let mut objects: Vec<Listed> = (0..n)
                .map(|i| Listed {
                    key: format!("k/{i:04} é+ %"),
                    etag: Some(format!("e{i}")),
                    size: Some(10),
                })
                .collect();
            objects.push(Listed {
                key: "other/x".into(),
                etag: None,
                size: None,
            });
            objects.sort_by(|a, b| a.key.cmp(&b.key));
            Bucket(Mutex::new(objects))
        }
    }

    impl Lister for Bucket {
        async fn list(
            &self,
            _bucket: &str,
            prefix: &str,
            start_after: Option<&str>,
            max: u32,
        ) -> Result<Page, StorageError> {
            let all = self.0.lock().unwrap();
            let after: Vec<&Listed> = all
                .iter()
                .filter(|o| o.key.starts_with(prefix))
                .filter(|o| start_after.is_none_or(|s| o.key.as_str() > s))
                .collect();
            Ok(Page {
                objects: after
                    .iter()
                    .take(max as usize)
                    .map(|o| (*o).clone())
                    .collect(),
                truncated: after.len() > max as usize,
            })
        }
    }

    /// Run until complete or `stop_after_pages`, saving and reloading the checkpoint after
    /// every page as the command does; every handled key is recorded.
    fn run(
        bucket: &Bucket,
        saved: &mut Option<String>,
        seen: &mut Vec<String>,
        stop_after_pages: usize,
    ) {
        let mut checkpoint = match saved {
            Some(text) => Checkpoint::resume(text, "b", "k/").unwrap(),
            None => Checkpoint::new("b", "k/"),
        };
        for _ in 0..stop_after_pages {
            if checkpoint.complete {
                return;
            }
            let page =
                pollster::block_on(bucket.list("b", "k/", checkpoint.start_after(), 7)).unwrap();
            for o in &page.objects {
                let event = checkpoint.event(o);
                assert_eq!(event.object.key, o.key);
                assert_eq!(event.object.etag, o.etag);
                seen.push(o.key.clone());
                checkpoint.handled(o, "clean");
            }
            checkpoint.page_done(page.objects.last().map(|o| o.key.as_str()), page.truncated);
            *saved = Some(checkpoint.to_json());
        }
    }

    #[test]
    fn an_interrupted_backfill_resumes_after_its_last_page_and_covers_every_key_once() {
        let bucket = Bucket::new(50);
        let mut saved = None;
        let mut seen = Vec::new();
        run(&bucket, &mut saved, &mut seen, 3);
        assert_eq!(seen.len(), 21);
        run(&bucket, &mut saved, &mut seen, 2);
        run(&bucket, &mut saved, &mut seen, 100);
        let want: Vec<String> = (0..50).map(|i| format!("k/{i:04} é+ %")).collect();
        assert_eq!(seen, want, "every key under the prefix, once, in order");
        let done = Checkpoint::resume(saved.as_deref().unwrap(), "b", "k/").unwrap();
        assert!(done.complete);
        assert_eq!((done.handled, done.bytes), (50, 500));
        assert_eq!(done.outcomes.get("clean"), Some(&50));
        // A finished backfill run again does nothing.
        run(&bucket, &mut saved, &mut seen, 100);
        assert_eq!(seen.len(), 50);
    }

    #[test]
    fn a_page_in_flight_when_interrupted_is_scanned_again_not_skipped() {
        let bucket = Bucket::new(20);
        let mut checkpoint = Checkpoint::new("b", "k/");
        let first = pollster::block_on(bucket.list("b", "k/", None, 7)).unwrap();
        for o in &first.objects {
            checkpoint.handled(o, "clean");
        }
        checkpoint.page_done(
            first.objects.last().map(|o| o.key.as_str()),
            first.truncated,
        );
        let saved = checkpoint.to_json();
        // Four objects of the second page handled, then the process dies before that page
        // is done: what was saved is the first page's checkpoint.
        let second =
            pollster::block_on(bucket.list("b", "k/", checkpoint.start_after(), 7)).unwrap();
        for o in &second.objects[..4] {
            checkpoint.handled(o, "clean");
        }
        let resumed = Checkpoint::resume(&saved, "b", "k/").unwrap();
        assert_eq!(
            resumed.handled, 7,
            "the unfinished page's objects are not counted"
        );
        assert_eq!(
            resumed.start_after(),
            first.objects.last().map(|o| o.key.as_str())
        );
        let again = pollster::block_on(bucket.list("b", "k/", resumed.start_after(), 7)).unwrap();
        assert_eq!(again.objects, second.objects, "the page starts over, whole");
    }

    #[test]
    fn a_checkpoint_of_another_target_or_format_is_refused() {
        let text = Checkpoint::new("b", "k/").to_json();
        let e = Checkpoint::resume(&text, "b", "other/").unwrap_err();
        assert!(
            e.to_string().contains("s3://b/k/, not s3://b/other/"),
            "{e}"
        );
        let e = Checkpoint::resume(&text, "c", "k/").unwrap_err();
        assert!(matches!(e, CheckpointError::OtherTarget { .. }));
        let e = Checkpoint::resume(&text.replace("\"format\": 1", "\"format\": 9"), "b", "k/")
            .unwrap_err();
        assert!(matches!(e, CheckpointError::Format { found: 9 }), "{e}");
        for bad in ["", "{", "[]", "{\"format\": 1}"] {
            assert!(
                Checkpoint::resume(bad, "b", "k/").is_err(),
                "{bad:?} accepted"
            );
        }
    }
}

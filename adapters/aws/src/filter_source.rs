//! Filter snapshots in S3: published by hash-list imports, loaded by scanners at cold start
//! and reloaded by warm ones when a newer one appears.
//!
//! A snapshot that fails its checks is refused, logged loudly, and the last good one stays
//! in use (invariant 4).

use std::sync::Arc;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::Client;
use hashgate_core::filter::{FilterFeed, FilterSnapshot, Refresh};

/// Where the current snapshot lives.
#[derive(Clone, Debug)]
pub struct FilterLocation {
    pub bucket: String,
    pub key: String,
}

impl FilterLocation {
    pub fn url(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.key)
    }
}

/// Upload a snapshot as the current one.
pub async fn publish(
    client: &Client,
    at: &FilterLocation,
    filter: &FilterSnapshot,
) -> Result<(), String> {
    client
        .put_object()
        .bucket(&at.bucket)
        .key(&at.key)
        .body(ByteStream::from(filter.to_bytes()))
        .content_type("application/octet-stream")
        .send()
        .await
        .map(|_| ())
        .map_err(|e| format!("{}: cannot publish the filter snapshot: {e:?}", at.url()))
}

/// The scanner's feed of filter snapshots from S3: each refresh asks S3 with the last
/// ETag, so an unchanged snapshot costs one conditional GET and no download.
pub struct FilterSource {
    client: Client,
    at: FilterLocation,
    etag: Option<String>,
}

impl FilterSource {
    pub fn new(client: Client, at: FilterLocation) -> FilterSource {
        FilterSource {
            client,
            at,
            etag: None,
        }
    }
    /// Look for a newer snapshot now. Only a changed object is downloaded.
    pub async fn fetch(&mut self) -> Refresh {
        let mut request = self
            .client
            .get_object()
            .bucket(&self.at.bucket)
            .key(&self.at.key);
        if let Some(etag) = &self.etag {
            request = request.if_none_match(etag);
        }
        let out = match request.send().await {
            Ok(o) => o,
            Err(e) => {
                let status = e.raw_response().map(|r| r.status().as_u16());
                return match status {
                    Some(304) => Refresh::Unchanged,
                    Some(404) => Refresh::Missing,
                    _ => Refresh::Unavailable(format!("{}: {e:?}", self.at.url())),
                };
            }
        };
        let etag = out.e_tag().map(str::to_string);
        let bytes = match out.body.collect().await {
            Ok(b) => b.into_bytes(),
            Err(e) => return Refresh::Unavailable(format!("{}: body: {e}", self.at.url())),
        };
        match FilterSnapshot::from_bytes(&bytes, &self.at.url()) {
            Ok(filter) => {
                self.etag = etag;
                Refresh::Loaded(Arc::new(filter))
            }
            Err(e) => {
                // Remember the refused object so it is not downloaded again every interval.
                self.etag = etag;
                Refresh::Refused(e)
            }
        }
    }
}

impl FilterFeed for FilterSource {
    async fn refresh(&mut self) -> Refresh {
        self.fetch().await
    }
}

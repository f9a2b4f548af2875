//! The plain HTTP(S) source: one conditional GET, bounded in size and time.

use bytes::{Bytes, BytesMut};
use reqwest::header::{
    HeaderMap, HeaderName, HeaderValue, ETAG, IF_MODIFIED_SINCE, IF_NONE_MATCH, LAST_MODIFIED,
};
use reqwest::{redirect, StatusCode, Url};
use sha2::{Digest, Sha256};

use crate::config::{check_target, check_url, redact};
use crate::{ListSource, PullLimits, Pulled, SourceConfig, SourceError, SourceState};

/// Headers a source's extra headers may not set: the conditional request and the
/// transfer are this source's business.
const RESERVED_HEADERS: &[HeaderName] = &[
    IF_NONE_MATCH,
    IF_MODIFIED_SINCE,
    reqwest::header::IF_MATCH,
    reqwest::header::IF_UNMODIFIED_SINCE,
    reqwest::header::IF_RANGE,
    reqwest::header::RANGE,
    reqwest::header::HOST,
    reqwest::header::CONTENT_LENGTH,
    reqwest::header::TRANSFER_ENCODING,
    reqwest::header::CONNECTION,
    reqwest::header::ACCEPT_ENCODING,
];

/// A list served over HTTP(S) at a fixed URL.
///
/// Each [`pull`](ListSource::pull) is one GET:
///
/// - conditional on the last pull: `If-None-Match` with the stored ETag, or, when only a
///   Last-Modified date is stored, `If-Modified-Since` with it;
/// - 304 → [`Pulled::Unchanged`] (the server sends no body);
/// - 200 (or 203) → the body, read up to [`PullLimits::max_body_bytes`]: a larger
///   Content-Length is refused before any of the body is read, and reading stops as soon
///   as more bytes than that arrive. A body whose SHA-256 equals the stored one is
///   [`Pulled::Unchanged`] too (servers that ignore conditional requests); any other is
///   [`Pulled::Changed`] with the response's ETag and Last-Modified;
/// - any other status (a 304 to an unconditional request included) → [`SourceError::Status`].
///
/// Redirects are followed up to [`PullLimits::max_redirects`], each target checked as the
/// configured URL is (https, or http to loopback; no user information), never from https
/// to http, and, once extra headers are attached, only within the configured URL's origin
/// so that credentials never travel to another host.
#[derive(Debug, Clone)]
pub struct HttpSource {
    name: String,
    url: Url,
    shown_url: String,
    limits: PullLimits,
    headers: HeaderMap,
    client: reqwest::Client,
}

impl HttpSource {
    /// A source for `config` (whose `kind` is not looked at: [`build`](crate::build) does
    /// that), after checking the configuration and the limits.
    pub fn new(config: &SourceConfig, limits: &PullLimits) -> Result<HttpSource, SourceError> {
        config.validate()?;
        let url = check_url(&config.url).map_err(|reason| SourceError::Config {
            index: None,
            name: Some(config.name.clone()),
            field: "url".to_string(),
            reason,
        })?;
        let name = config.name.clone();
        limits.check().map_err(|reason| SourceError::Limits {
            name: name.clone(),
            reason,
        })?;
        let client = client(&name, &url, limits, false)?;
        Ok(HttpSource {
            shown_url: redact(&url),
            name,
            url,
            limits: limits.clone(),
            headers: HeaderMap::new(),
            client,
        })
    }

    /// The same source, sending these extra headers with every request (what the
    /// source's headers secret holds, e.g. `Authorization`). Their values are marked
    /// sensitive, and from now on redirects are followed only within the URL's origin.
    ///
    /// Refused: names or values that are not valid HTTP, and the headers the source sets
    /// itself (conditional and range headers, `Host`, `Content-Length`,
    /// `Transfer-Encoding`, `Connection`, `Accept-Encoding`).
    pub fn with_headers<I, K, V>(mut self, headers: I) -> Result<HttpSource, SourceError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        for (key, value) in headers {
            let key = key.as_ref();
            let refuse = |reason: &str| SourceError::Header {
                name: self.name.clone(),
                header: key.to_string(),
                reason: reason.to_string(),
            };
            let header = HeaderName::from_bytes(key.as_bytes())
                .map_err(|_| refuse("not a valid header name"))?;
            if RESERVED_HEADERS.contains(&header) {
                return Err(refuse("set by the source itself"));
            }
            // The value is never shown: it is most likely a credential.
            let mut value = HeaderValue::from_str(value.as_ref())
                .map_err(|_| refuse("the value is not a valid header value"))?;
            value.set_sensitive(true);
            self.headers.append(header, value);
        }
        self.client = client(
            &self.name,
            &self.url,
            &self.limits,
            !self.headers.is_empty(),
        )?;
        Ok(self)
    }

    /// The source's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The URL as it may be logged: no query string, no credentials.
    pub fn shown_url(&self) -> &str {
        &self.shown_url
    }

    /// One conditional GET; see the type's documentation.
    pub async fn pull(&mut self, last: &SourceState) -> Result<Pulled, SourceError> {
        let mut request = self
            .client
            .get(self.url.clone())
            .headers(self.headers.clone());
        // A stored validator that is not a valid header value (it came from a header, so
        // only a hand-edited state has one) is not sent: the pull is then unconditional
        // and the SHA-256 comparison still spots an unchanged list.
        let etag = last
            .etag
            .as_deref()
            .and_then(|v| HeaderValue::from_str(v).ok());
        let since = last
            .last_modified
            .as_deref()
            .and_then(|v| HeaderValue::from_str(v).ok());
        let conditional = etag.is_some() || since.is_some();
        if let Some(etag) = etag {
            request = request.header(IF_NONE_MATCH, etag);
        } else if let Some(since) = since {
            request = request.header(IF_MODIFIED_SINCE, since);
        }

        let mut response = request.send().await.map_err(|e| self.transport(e))?;
        let status = response.status();
        if status == StatusCode::NOT_MODIFIED && conditional {
            return Ok(Pulled::Unchanged);
        }
        if !(status == StatusCode::OK || status == StatusCode::NON_AUTHORITATIVE_INFORMATION) {
            return Err(SourceError::Status {
                name: self.name.clone(),
                url: self.shown_url.clone(),
                status: status.as_u16(),
            });
        }

        let limit = self.limits.max_body_bytes;
        let declared = response.content_length();
        if let Some(length) = declared.filter(|&n| n > limit) {
            return Err(self.too_large(Some(length)));
        }
        let etag = header_text(response.headers(), &ETAG);
        let last_modified = header_text(response.headers(), &LAST_MODIFIED);

        // Bounded by the limit (checked above when declared), so the reservation is too.
        let mut body = BytesMut::with_capacity(declared.unwrap_or(0) as usize);
        let mut hasher = Sha256::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| self.transport(e))? {
            if (body.len() + chunk.len()) as u64 > limit {
                return Err(self.too_large(declared));
            }
            hasher.update(&chunk);
            body.extend_from_slice(&chunk);
        }
        let sha256 = hex(&hasher.finalize());
        if last
            .sha256
            .as_deref()
            .is_some_and(|old| old.eq_ignore_ascii_case(&sha256))
        {
            return Ok(Pulled::Unchanged);
        }
        Ok(Pulled::Changed {
            body: Bytes::from(body),
            state: SourceState {
                etag,
                last_modified,
                sha256: Some(sha256),
                fetched_at: Some(jiff::Timestamp::now().to_string()),
            },
        })
    }

    fn transport(&self, error: reqwest::Error) -> SourceError {
        let redirect = error.is_redirect();
        // The URL reqwest attaches may carry the query string; the message names the
        // redacted one instead.
        let reason = causes(&error.without_url());
        if redirect {
            SourceError::Redirect {
                name: self.name.clone(),
                url: self.shown_url.clone(),
                reason,
            }
        } else {
            SourceError::Transport {
                name: self.name.clone(),
                url: self.shown_url.clone(),
                reason,
            }
        }
    }

    fn too_large(&self, declared: Option<u64>) -> SourceError {
        SourceError::TooLarge {
            name: self.name.clone(),
            url: self.shown_url.clone(),
            limit: self.limits.max_body_bytes,
            declared,
        }
    }
}

impl ListSource for HttpSource {
    fn name(&self) -> &str {
        HttpSource::name(self)
    }

    async fn pull(&mut self, last: &SourceState) -> Result<Pulled, SourceError> {
        HttpSource::pull(self, last).await
    }
}

/// The client for one source: its timeouts and its redirect policy.
fn client(
    name: &str,
    url: &Url,
    limits: &PullLimits,
    same_origin_only: bool,
) -> Result<reqwest::Client, SourceError> {
    let max_redirects = limits.max_redirects;
    let origin = url.clone();
    let policy = redirect::Policy::custom(move |attempt| {
        let verdict = redirect_verdict(
            attempt.url(),
            attempt.previous(),
            max_redirects,
            same_origin_only.then_some(&origin),
        );
        match verdict {
            Ok(()) => attempt.follow(),
            Err(reason) => attempt.error(reason),
        }
    });
    reqwest::Client::builder()
        .connect_timeout(limits.connect_timeout)
        .timeout(limits.total_timeout)
        .redirect(policy)
        .build()
        .map_err(|e| SourceError::Client {
            name: name.to_string(),
            reason: causes(&e),
        })
}

/// Why a redirect to `target` (after `previous`, the configured URL first) must not be
/// followed, if it must not. With `origin`, only targets in that URL's origin are allowed.
fn redirect_verdict(
    target: &Url,
    previous: &[Url],
    max_redirects: usize,
    origin: Option<&Url>,
) -> Result<(), String> {
    if previous.len() > max_redirects {
        return Err(format!("more than {max_redirects} redirects"));
    }
    check_target(target)?;
    if target.scheme() != "https" && previous.iter().any(|u| u.scheme() == "https") {
        return Err(format!("{} would downgrade https to http", redact(target)));
    }
    if origin.is_some_and(|o| o.origin() != target.origin()) {
        return Err(format!(
            "{} is another origin, and the request carries credentials",
            redact(target)
        ));
    }
    Ok(())
}

/// A header's value as text, when it has one that is.
fn header_text(headers: &HeaderMap, name: &HeaderName) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// An error and its causes, in one line ("a: b: c"), without repeats.
fn causes(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let part = cause.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = cause.source();
    }
    text
}

/// Lower-case hex.
fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 0xf)] as char);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_is_lower_case_and_complete() {
        assert_eq!(hex(&[0x00, 0x0f, 0xa5, 0xff]), "000fa5ff");
        assert_eq!(
            hex(&Sha256::digest(b"")),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn redirects_never_downgrade_nor_leave_the_origin_with_credentials() {
        let u = |s: &str| Url::parse(s).unwrap();
        let start = [u("https://lists.example/l")];
        assert!(redirect_verdict(&u("https://mirror.example/l"), &start, 5, None).is_ok());
        // From https to http is refused even to a loopback host.
        let reason = redirect_verdict(&u("http://127.0.0.1/l"), &start, 5, None).unwrap_err();
        assert!(reason.contains("downgrade"), "{reason}");
        // A target the configuration would refuse is refused.
        let loopback = [u("http://127.0.0.1:1/l")];
        let reason =
            redirect_verdict(&u("http://lists.example/l"), &loopback, 5, None).unwrap_err();
        assert!(reason.contains("not loopback"), "{reason}");
        assert!(redirect_verdict(&u("http://localhost:2/l"), &loopback, 5, None).is_ok());
        assert!(redirect_verdict(&u("https://lists.example/l"), &loopback, 5, None).is_ok());
        // At most max_redirects redirects (`previous` holds the configured URL too).
        let five = vec![start[0].clone(); 5];
        assert!(redirect_verdict(&u("https://lists.example/m"), &five, 5, None).is_ok());
        let six = vec![start[0].clone(); 6];
        let reason = redirect_verdict(&u("https://lists.example/m"), &six, 5, None).unwrap_err();
        assert!(reason.contains("more than 5"), "{reason}");
        // With credentials attached, only the configured origin.
        let origin = Some(&start[0]);
        let reason =
            redirect_verdict(&u("https://mirror.example/l"), &start, 5, origin).unwrap_err();
        assert!(reason.contains("another origin"), "{reason}");
        let reason =
            redirect_verdict(&u("https://lists.example:8443/l"), &start, 5, origin).unwrap_err();
        assert!(reason.contains("another origin"), "{reason}");
        assert!(redirect_verdict(&u("https://lists.example/other"), &start, 5, origin).is_ok());
    }

    #[test]
    fn reserved_and_invalid_headers_are_refused() {
        let config = SourceConfig {
            name: "s".into(),
            kind: "http".into(),
            url: "https://lists.example/l".into(),
            list: "l".into(),
            format: "plain".into(),
            op: None,
            headers_secret: None,
        };
        let source = || HttpSource::new(&config, &PullLimits::default()).unwrap();
        for (k, v) in [
            ("If-None-Match", "x"),
            ("range", "bytes=0-"),
            ("bad name", "x"),
            ("X-Key", "a\nb"),
        ] {
            assert!(
                matches!(
                    source().with_headers([(k, v)]),
                    Err(SourceError::Header { .. })
                ),
                "{k}"
            );
        }
        let s = source()
            .with_headers([("Authorization", "Bearer t"), ("X-Api-Key", "k")])
            .unwrap();
        assert!(s.headers.values().all(HeaderValue::is_sensitive));
        // Sensitive values stay out of debug output.
        assert!(!format!("{s:?}").contains("Bearer t"));
    }
}

//! NCMEC's CyberTipline reporting API, and the driver that sends one report package
//! through it with the core's [`Sender`](hashgate_core::sender::Sender).
//!
//! - [`ReportApi`]: the documented interface (*CyberTipline Reporting API Technical
//!   Documentation*, sections 3 and 6, appendix D): `/submit`, `/upload`, `/fileinfo`,
//!   `/finish`, `/retract`, each answering with a typed [`Reply`].
//! - [`CyberTipline`]: that interface over HTTPS with basic authentication (reqwest,
//!   rustls, the platform's roots); the endpoint is configurable, NCMEC's test
//!   environment ([`TEST_ENDPOINT`]) by default.
//! - [`send`]: runs the core's machine with any [`ReportApi`], reading the evidence and
//!   persisting the state through the caller's functions.
//!
//! How answers map: every endpoint answers with a `<reportResponse>` (`/finish`: a
//! `<reportDoneResponse>`) whose `responseCode` is 0 on success. Errors come with an HTTP
//! error status *and* that document (a validation failure is "HTTP status 400 and
//! application status 4100"), so the document is read whatever the status. Then:
//!
//! - 0 → [`Reply::Accepted`];
//! - 1000–1399 (server error, save, upload or update failed, resource not found) →
//!   [`ApiError::Server`]: NCMEC's side failed, the same request may be made again;
//! - 2000 (authentication required), 3000–3999 (not authorized), or HTTP 401/403 without a
//!   document → [`ApiError::Unauthorized`]: the credentials are wrong, nothing about the
//!   report is;
//! - any other code (4000 invalid request, 4100 validation failed, 4110 malformed XML,
//!   4200 malformed file, 5001/5002 no such report or file, 5101 already retracted, 5102
//!   already finished, undocumented codes) → [`Reply::Refused`], for the core to decide.

use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hashgate_core::case::QuarantineLocation;
use hashgate_core::sender::{Outcome, Package, SendAction, SendError, SendState, Sender};
use quick_xml::events::Event;
use quick_xml::Reader;

/// NCMEC's testing environment, the documentation's example base URI.
pub const TEST_ENDPOINT: &str = "https://exttest.cybertip.org/ispws";
/// NCMEC's production base URI.
pub const PRODUCTION_ENDPOINT: &str = "https://report.cybertip.org/ispws";

/// An answer NCMEC gave.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply<T> {
    Accepted(T),
    /// A non-zero `responseCode` that is about the request (see the crate's docs).
    Refused {
        code: i32,
        description: String,
    },
}

/// What `/upload` answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Uploaded {
    pub file_id: String,
    /// The MD5 of what NCMEC received, as it wrote it.
    pub md5: String,
}

/// Why there was no answer about the request itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    #[error("NCMEC refused the credentials ({0}); check the CyberTipline username and password")]
    Unauthorized(String),
    #[error("NCMEC's server failed ({code}: {description}); the request may be repeated")]
    Server { code: i32, description: String },
    #[error("the request to {endpoint} failed: {error}")]
    Transport { endpoint: String, error: String },
    #[error("{endpoint} answered HTTP {status} with no CyberTipline response: {body}")]
    Unexpected {
        endpoint: String,
        status: u16,
        body: String,
    },
    #[error("the endpoint {0:?} is not an http(s) URL")]
    BadEndpoint(String),
}

/// The documented interface: one method per endpoint a report package uses.
pub trait ReportApi: Send + Sync {
    /// POST the `<report>` to `/submit`: the report id.
    fn submit(&self, report_xml: &str)
        -> impl Future<Output = Result<Reply<u64>, ApiError>> + Send;

    /// POST `id` and the file (multipart) to `/upload`: the file id and NCMEC's MD5.
    fn upload(
        &self,
        report_id: u64,
        file_name: &str,
        content: Vec<u8>,
    ) -> impl Future<Output = Result<Reply<Uploaded>, ApiError>> + Send;

    /// POST the `<fileDetails>` to `/fileinfo`.
    fn fileinfo(&self, xml: &str) -> impl Future<Output = Result<Reply<()>, ApiError>> + Send;

    /// POST `id` to `/finish`.
    fn finish(&self, report_id: u64) -> impl Future<Output = Result<Reply<()>, ApiError>> + Send;

    /// POST `id` to `/retract`.
    fn retract(&self, report_id: u64) -> impl Future<Output = Result<Reply<()>, ApiError>> + Send;

    /// The answers received since the last call, as NCMEC wrote them, oldest first (for the
    /// caller's record of the exchange; [`send_recording`] hands them on). An API that keeps
    /// no such record has none.
    fn take_answers(&self) -> Vec<Answer> {
        Vec::new()
    }
}

/// One answer NCMEC gave, as it wrote it: the endpoint's step (`submit`, `upload`,
/// `fileinfo`, `finish`, `retract`, `status`), the HTTP status and the body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    pub step: String,
    pub status: u16,
    pub body: String,
}

/// A CyberTipline account. The password never appears in `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// The reporting API over HTTPS with basic authentication.
#[derive(Clone, Debug)]
pub struct CyberTipline {
    client: reqwest::Client,
    base: String,
    credentials: Credentials,
    /// Every answer received and not yet taken ([`ReportApi::take_answers`]).
    answers: Arc<Mutex<Vec<Answer>>>,
}

impl CyberTipline {
    /// The API at `endpoint` (a base URI such as [`TEST_ENDPOINT`]; a trailing `/` is
    /// ignored), with a 5-minute limit per request (uploads have no size limit).
    pub fn new(endpoint: &str, credentials: Credentials) -> Result<CyberTipline, ApiError> {
        let base = endpoint.trim_end_matches('/').to_string();
        if !(base.starts_with("https://") || base.starts_with("http://")) {
            return Err(ApiError::BadEndpoint(endpoint.to_string()));
        }
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(30))
            .timeout(Duration::from_secs(300))
            .build()
            .map_err(|e| ApiError::Transport {
                endpoint: base.clone(),
                error: e.to_string(),
            })?;
        Ok(CyberTipline {
            client,
            base,
            credentials,
            answers: Arc::default(),
        })
    }

    /// NCMEC's test environment.
    pub fn test_environment(credentials: Credentials) -> Result<CyberTipline, ApiError> {
        CyberTipline::new(TEST_ENDPOINT, credentials)
    }

    pub fn endpoint(&self) -> &str {
        &self.base
    }

    /// GET `/status`: whether the server can be reached and the credentials are accepted
    /// (its description names the user and the client's address).
    pub async fn status(&self) -> Result<String, ApiError> {
        let url = format!("{}/status", self.base);
        let request = self.client.get(&url);
        let response = self.answer(&url, request).await?;
        Ok(response.description)
    }

    fn url(&self, path: &str) -> String {
        format!("{}/{path}", self.base)
    }

    fn post_xml(&self, url: &str, xml: &str) -> reqwest::RequestBuilder {
        self.client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "text/xml; charset=utf-8")
            .body(xml.to_string())
    }

    fn post_id(&self, url: &str, report_id: u64) -> reqwest::RequestBuilder {
        let form = reqwest::multipart::Form::new().text("id", report_id.to_string());
        self.client.post(url).multipart(form)
    }

    /// Sends `request` with the credentials and reads NCMEC's document, mapping the codes
    /// that are not about the request to errors.
    async fn answer(
        &self,
        url: &str,
        request: reqwest::RequestBuilder,
    ) -> Result<Response, ApiError> {
        let transport = |e: reqwest::Error| ApiError::Transport {
            endpoint: url.to_string(),
            error: e.to_string(),
        };
        let response = request
            .basic_auth(&self.credentials.username, Some(&self.credentials.password))
            .send()
            .await
            .map_err(transport)?;
        let status = response.status();
        let body = response.text().await.map_err(transport)?;
        let step = url.rsplit('/').next().unwrap_or_default().to_string();
        if let Ok(mut answers) = self.answers.lock() {
            answers.push(Answer {
                step,
                status: status.as_u16(),
                body: body.clone(),
            });
        }
        match parse_response(&body) {
            Some(r) => {
                tracing::debug!(
                    url,
                    status = status.as_u16(),
                    code = r.code,
                    "cybertip answer"
                );
                match r.code {
                    1000..=1399 => Err(ApiError::Server {
                        code: r.code,
                        description: r.description,
                    }),
                    2000 | 3000..=3999 => Err(ApiError::Unauthorized(format!(
                        "{}: {}",
                        r.code, r.description
                    ))),
                    _ => Ok(r),
                }
            }
            None if status == reqwest::StatusCode::UNAUTHORIZED
                || status == reqwest::StatusCode::FORBIDDEN =>
            {
                Err(ApiError::Unauthorized(format!("HTTP {}", status.as_u16())))
            }
            None if status.is_server_error() => Err(ApiError::Server {
                code: i32::from(status.as_u16()),
                description: format!("HTTP {status} with no CyberTipline response"),
            }),
            None => Err(ApiError::Unexpected {
                endpoint: url.to_string(),
                status: status.as_u16(),
                body: body.chars().take(200).collect(),
            }),
        }
    }
}

impl ReportApi for CyberTipline {
    async fn submit(&self, report_xml: &str) -> Result<Reply<u64>, ApiError> {
        let url = self.url("submit");
        let r = self.answer(&url, self.post_xml(&url, report_xml)).await?;
        r.reply(|r| r.report_id.ok_or_else(|| r.missing(&url, "reportId")))
    }

    async fn upload(
        &self,
        report_id: u64,
        file_name: &str,
        content: Vec<u8>,
    ) -> Result<Reply<Uploaded>, ApiError> {
        let url = self.url("upload");
        let part = reqwest::multipart::Part::bytes(content)
            .file_name(file_name.to_string())
            .mime_str("application/octet-stream")
            .map_err(|e| ApiError::Transport {
                endpoint: url.clone(),
                error: e.to_string(),
            })?;
        let form = reqwest::multipart::Form::new()
            .text("id", report_id.to_string())
            .part("file", part);
        let r = self
            .answer(&url, self.client.post(&url).multipart(form))
            .await?;
        r.reply(|r| {
            Ok(Uploaded {
                file_id: r.file_id.clone().ok_or_else(|| r.missing(&url, "fileId"))?,
                md5: r.hash.clone().ok_or_else(|| r.missing(&url, "hash"))?,
            })
        })
    }

    async fn fileinfo(&self, xml: &str) -> Result<Reply<()>, ApiError> {
        let url = self.url("fileinfo");
        let r = self.answer(&url, self.post_xml(&url, xml)).await?;
        r.reply(|_| Ok(()))
    }

    async fn finish(&self, report_id: u64) -> Result<Reply<()>, ApiError> {
        let url = self.url("finish");
        let r = self.answer(&url, self.post_id(&url, report_id)).await?;
        r.reply(|_| Ok(()))
    }

    async fn retract(&self, report_id: u64) -> Result<Reply<()>, ApiError> {
        let url = self.url("retract");
        let r = self.answer(&url, self.post_id(&url, report_id)).await?;
        r.reply(|_| Ok(()))
    }

    fn take_answers(&self) -> Vec<Answer> {
        self.answers
            .lock()
            .map(|mut a| std::mem::take(&mut *a))
            .unwrap_or_default()
    }
}

/// A `<reportResponse>` or `<reportDoneResponse>`, as read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Response {
    /// The root element's name.
    pub root: String,
    pub code: i32,
    pub description: String,
    pub report_id: Option<u64>,
    pub file_id: Option<String>,
    pub hash: Option<String>,
}

impl Response {
    fn reply<T>(
        self,
        accepted: impl FnOnce(&Response) -> Result<T, ApiError>,
    ) -> Result<Reply<T>, ApiError> {
        if self.code == 0 {
            accepted(&self).map(Reply::Accepted)
        } else {
            Ok(Reply::Refused {
                code: self.code,
                description: self.description,
            })
        }
    }

    fn missing(&self, url: &str, element: &str) -> ApiError {
        ApiError::Unexpected {
            endpoint: url.to_string(),
            status: 200,
            body: format!("a successful <{}> without <{element}>", self.root),
        }
    }
}

/// Reads NCMEC's answer: `None` unless it is a `<reportResponse>` or
/// `<reportDoneResponse>` with an integer `responseCode`.
pub fn parse_response(body: &str) -> Option<Response> {
    let mut reader = Reader::from_str(body);
    let mut out = Response::default();
    let mut code = None;
    let mut path: Vec<String> = Vec::new();
    let mut text = String::new();
    loop {
        match reader.read_event().ok()? {
            Event::Start(s) => {
                path.push(String::from_utf8_lossy(s.local_name().as_ref()).into_owned());
                text.clear();
            }
            Event::Empty(s) if path.is_empty() => {
                out.root = String::from_utf8_lossy(s.local_name().as_ref()).into_owned();
            }
            Event::Text(t) => text.push_str(&t.xml10_content().ok()?),
            Event::CData(t) => text.push_str(&String::from_utf8_lossy(&t)),
            Event::GeneralRef(r) => match r.resolve_char_ref().ok()? {
                Some(c) => text.push(c),
                None => text.push_str(match r.decode().ok()?.as_ref() {
                    "lt" => "<",
                    "gt" => ">",
                    "amp" => "&",
                    "apos" => "'",
                    "quot" => "\"",
                    _ => return None,
                }),
            },
            Event::End(_) => {
                let name = path.pop()?;
                let value = text.trim().to_string();
                text.clear();
                match (path.len(), name.as_str()) {
                    (0, root) => out.root = root.to_string(),
                    (1, "responseCode") => code = Some(value.parse().ok()?),
                    (1, "responseDescription") => out.description = value,
                    (1, "reportId") => out.report_id = value.parse().ok(),
                    (1, "fileId") => out.file_id = Some(value).filter(|v| !v.is_empty()),
                    (1, "hash") => out.hash = Some(value).filter(|v| !v.is_empty()),
                    _ => {}
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if !matches!(out.root.as_str(), "reportResponse" | "reportDoneResponse") {
        return None;
    }
    out.code = code?;
    Some(out)
}

/// Why [`send`] stopped before the sending was done. The state it holds is the last one
/// persisted (or, for [`Stopped::Persist`], the one that could not be).
#[derive(Debug, thiserror::Error)]
pub enum Stopped {
    #[error("the report package cannot be sent: {0}")]
    Package(#[from] SendError),
    #[error("the send state could not be persisted: {error}")]
    Persist {
        state: Box<SendState>,
        error: String,
    },
    #[error("the evidence at s3://{}/{} could not be read: {error}", .location.bucket, .location.key)]
    Evidence {
        state: Box<SendState>,
        location: QuarantineLocation,
        error: String,
    },
    #[error("{error}")]
    Api {
        state: Box<SendState>,
        error: ApiError,
    },
    /// An answer could not be recorded; the state that answer led to is persisted.
    #[error("NCMEC's answer to {step} could not be recorded: {error}")]
    Record {
        state: Box<SendState>,
        step: String,
        error: String,
    },
}

/// Sends one package from `state` until it is done (see [`SendState`] for how: finished,
/// retracted, or stopped with a reason), reading the evidence with `evidence` and writing
/// every state with `persist` before the next request. A request that gets no answer
/// ([`ApiError`]) is persisted as an attempt and stops the run: the caller runs it again
/// later from the persisted state.
pub async fn send<A, E, EF, P, PF>(
    package: Package,
    state: SendState,
    api: &A,
    evidence: E,
    persist: P,
) -> Result<SendState, Stopped>
where
    A: ReportApi,
    E: FnMut(QuarantineLocation) -> EF,
    EF: Future<Output = Result<Vec<u8>, String>>,
    P: FnMut(SendState) -> PF,
    PF: Future<Output = Result<(), String>>,
{
    send_recording(package, state, api, evidence, persist, |_| async {
        Ok::<(), String>(())
    })
    .await
}

/// [`send`], handing every answer NCMEC gave ([`ReportApi::take_answers`]) to `record`
/// as soon as it came, before the state it led to is persisted. An answer that cannot be
/// recorded does not lose the state: that state is still persisted, then the run stops
/// ([`Stopped::Record`]).
pub async fn send_recording<A, E, EF, P, PF, R, RF>(
    package: Package,
    state: SendState,
    api: &A,
    mut evidence: E,
    mut persist: P,
    mut record: R,
) -> Result<SendState, Stopped>
where
    A: ReportApi,
    E: FnMut(QuarantineLocation) -> EF,
    EF: Future<Output = Result<Vec<u8>, String>>,
    P: FnMut(SendState) -> PF,
    PF: Future<Output = Result<(), String>>,
    R: FnMut(Answer) -> RF,
    RF: Future<Output = Result<(), String>>,
{
    let mut sender = Sender::new(package, state)?;
    let mut stop: Option<Stopped> = None;
    loop {
        let outcome = match sender.action() {
            SendAction::Done => return Ok(sender.state().clone()),
            SendAction::Persist(state) => match persist(state.clone()).await {
                Ok(()) => {
                    sender.advance(Outcome::Persisted);
                    if let Some(stop) = stop.take() {
                        return Err(stop);
                    }
                    continue;
                }
                Err(error) => {
                    return Err(Stopped::Persist {
                        state: Box::new(state),
                        error,
                    })
                }
            },
            SendAction::Submit { report_xml } => outcome(api.submit(&report_xml).await, |id| {
                Outcome::Submitted { report_id: id }
            }),
            SendAction::Upload {
                report_id,
                evidence: location,
                file_name,
                ..
            } => match evidence(location.clone()).await {
                Ok(content) => outcome(
                    api.upload(report_id, &file_name, content).await,
                    |u: Uploaded| Outcome::Uploaded {
                        file_id: u.file_id,
                        md5: u.md5,
                    },
                ),
                Err(error) => {
                    // Nothing was asked of NCMEC: nothing to persist.
                    return Err(Stopped::Evidence {
                        state: Box::new(sender.state().clone()),
                        location,
                        error,
                    });
                }
            },
            SendAction::FileInfo { xml, .. } => {
                outcome(api.fileinfo(&xml).await, |()| Outcome::FileInfoAccepted)
            }
            SendAction::Finish { report_id } => {
                outcome(api.finish(report_id).await, |()| Outcome::Finished)
            }
            SendAction::Retract { report_id, .. } => {
                outcome(api.retract(report_id).await, |()| Outcome::Retracted)
            }
        };
        let outcome = match outcome {
            Ok(o) => o,
            Err(error) => {
                let o = Outcome::Failed {
                    error: error.to_string(),
                };
                stop = Some(Stopped::Api {
                    state: Box::new(SendState::default()),
                    error,
                });
                o
            }
        };
        for answer in api.take_answers() {
            let step = answer.step.clone();
            if let Err(error) = record(answer).await {
                tracing::warn!(step, error, "an answer of NCMEC's could not be recorded");
                if stop.is_none() {
                    stop = Some(Stopped::Record {
                        state: Box::new(SendState::default()),
                        step,
                        error,
                    });
                }
            }
        }
        sender.advance(outcome);
        if let Some(Stopped::Api { state, .. } | Stopped::Record { state, .. }) = stop.as_mut() {
            **state = sender.state().clone();
        }
    }
}

fn outcome<T>(
    reply: Result<Reply<T>, ApiError>,
    accepted: impl FnOnce(T) -> Outcome,
) -> Result<Outcome, ApiError> {
    Ok(match reply? {
        Reply::Accepted(t) => accepted(t),
        Reply::Refused { code, description } => Outcome::Refused { code, description },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_answers_are_read() {
        let upload = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<reportResponse>
    <responseCode>0</responseCode>
    <responseDescription>Success</responseDescription>
    <reportId>4564654</reportId>
    <fileId>b0754af766b426f2928a02c651ed4b99</fileId>
    <hash>fafa5efeaf3cbe3b23b2748d13e629a1</hash>
</reportResponse>"#;
        let r = parse_response(upload).unwrap();
        assert_eq!(
            r,
            Response {
                root: "reportResponse".into(),
                code: 0,
                description: "Success".into(),
                report_id: Some(4564654),
                file_id: Some("b0754af766b426f2928a02c651ed4b99".into()),
                hash: Some("fafa5efeaf3cbe3b23b2748d13e629a1".into()),
            }
        );
        let finish = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<reportDoneResponse>
    <responseCode>0</responseCode>
    <reportId>4564654</reportId>
    <files>
        <fileId>b0754af766b426f2928a02c651ed4b99</fileId>
    </files>
</reportDoneResponse>"#;
        let r = parse_response(finish).unwrap();
        assert_eq!(
            (r.root.as_str(), r.code, r.report_id),
            ("reportDoneResponse", 0, Some(4564654))
        );
        // A file id inside <files> is not the response's own.
        assert_eq!(r.file_id, None);
        let refused = "<reportResponse><responseCode>4100</responseCode>\
            <responseDescription>Validation failed: &lt;email&gt; &amp; more</responseDescription>\
            <reportId>7</reportId></reportResponse>";
        let r = parse_response(refused).unwrap();
        assert_eq!(r.code, 4100);
        assert_eq!(r.description, "Validation failed: <email> & more");
        for junk in [
            "",
            "<html><body>Unauthorized</body></html>",
            "<reportResponse><responseCode>x</responseCode></reportResponse>",
            "<reportResponse></reportResponse>",
            "not xml <",
        ] {
            assert_eq!(parse_response(junk), None, "{junk}");
        }
    }

    #[test]
    fn the_password_is_never_shown_and_endpoints_are_checked() {
        let c = Credentials {
            username: "usr123".into(),
            password: "pswd123".into(),
        };
        assert!(!format!("{c:?}").contains("pswd123"));
        let api = CyberTipline::test_environment(c.clone()).unwrap();
        assert_eq!(api.endpoint(), "https://exttest.cybertip.org/ispws");
        assert!(!format!("{api:?}").contains("pswd123"));
        assert_eq!(
            CyberTipline::new("https://example.test/ispws/", c.clone())
                .unwrap()
                .endpoint(),
            "https://example.test/ispws"
        );
        assert!(matches!(
            CyberTipline::new("exttest.cybertip.org", c),
            Err(ApiError::BadEndpoint(_))
        ));
    }
}

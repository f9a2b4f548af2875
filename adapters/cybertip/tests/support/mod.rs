//! A local CyberTipline for tests: a server, started in the test's runtime, that implements
//! the documented endpoints (`/submit`, `/upload`, `/fileinfo`, `/finish`, `/retract`,
//! `/status`) under `/ispws` with basic authentication ([`USER`], [`PASSWORD`]) and the
//! documented response codes. Shared by `api.rs` and the end-to-end tests
//! (`tests/e2e/reports.rs`, through `#[path]`).

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use base64::Engine;
use hashgate_core::digest::{digest_bytes, Algorithm, AlgorithmSet};

pub const USER: &str = "usr123";
pub const PASSWORD: &str = "pswd123";

pub fn md5(bytes: &[u8]) -> String {
    digest_bytes(bytes, AlgorithmSet::ALL)
        .get(Algorithm::Md5)
        .unwrap()
        .to_hex()
}

#[derive(Default)]
pub struct Ncmec {
    pub next_id: u64,
    pub submissions: u32,
    pub reports: BTreeMap<u64, Report>,
    /// Answer uploads with the MD5 of other bytes.
    pub wrong_md5: bool,
    /// Refuse this endpoint with 4100 "Validation failed" (HTTP 400).
    pub refuse: Option<&'static str>,
    /// Finish, then answer HTTP 502 with no document (the answer is lost), this many times.
    pub lose_finish_answers: u32,
}

#[derive(Default, Debug)]
pub struct Report {
    pub files: Vec<(String, Vec<u8>, String)>,
    pub fileinfo: Vec<String>,
    pub finished: bool,
    pub retracted: bool,
}

pub type Shared = Arc<Mutex<Ncmec>>;

fn document(root: &str, code: i32, description: &str, fields: &[(&str, String)]) -> String {
    let mut xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n<{root}>\n    \
         <responseCode>{code}</responseCode>\n"
    );
    if root == "reportResponse" {
        xml.push_str(&format!(
            "    <responseDescription>{description}</responseDescription>\n"
        ));
    }
    for (name, value) in fields {
        xml.push_str(&format!("    <{name}>{value}</{name}>\n"));
    }
    xml.push_str(&format!("</{root}>\n"));
    xml
}

fn reply(status: StatusCode, xml: String) -> Response {
    (status, [(header::CONTENT_TYPE, "application/xml")], xml).into_response()
}

fn code(code: i32, description: &str, report_id: u64) -> Response {
    let status = match code {
        0 => StatusCode::OK,
        1000..=1999 => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::BAD_REQUEST,
    };
    let id = [("reportId", report_id.to_string())];
    reply(status, document("reportResponse", code, description, &id))
}

fn authorized(headers: &HeaderMap) -> bool {
    let expected = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"));
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == format!("Basic {expected}"))
}

/// The fields of a multipart/form-data body.
fn form(headers: &HeaderMap, body: &[u8]) -> BTreeMap<String, Vec<u8>> {
    let ct = headers[header::CONTENT_TYPE].to_str().unwrap();
    assert!(ct.starts_with("multipart/form-data"), "{ct}");
    let boundary = format!("--{}", ct.split("boundary=").nth(1).unwrap());
    let mut out = BTreeMap::new();
    let mut rest = body;
    while let Some(start) = find(rest, boundary.as_bytes()) {
        rest = &rest[start + boundary.len()..];
        if rest.starts_with(b"--") {
            break;
        }
        let head_end = find(rest, b"\r\n\r\n").unwrap();
        let head = String::from_utf8_lossy(&rest[..head_end]).into_owned();
        let content = &rest[head_end + 4..];
        let end = find(content, boundary.as_bytes()).unwrap();
        let value = content[..end - 2].to_vec(); // the CRLF before the boundary
        let name = head
            .split("name=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        out.insert(name.to_string(), value);
        rest = &content[end..];
    }
    out
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

pub fn element(xml: &str, name: &str) -> Option<String> {
    let start = xml.find(&format!("<{name}>"))? + name.len() + 2;
    let end = xml[start..].find(&format!("</{name}>"))? + start;
    Some(xml[start..end].to_string())
}

/// Finds the report `id`, or answers as the documentation does.
fn open(ncmec: &mut Ncmec, id: u64) -> Result<&mut Report, Box<Response>> {
    match ncmec.reports.get_mut(&id) {
        None => Err(Box::new(code(5001, "Report does not exist", id))),
        Some(r) if r.retracted => Err(Box::new(code(5101, "Report already retracted", id))),
        Some(r) if r.finished => Err(Box::new(code(5102, "Report already finished", id))),
        Some(r) => Ok(r),
    }
}

async fn handle(
    State(ncmec): State<Shared>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !authorized(&headers) {
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Basic realm=\"ispws\"")],
            "<html><body>401 Unauthorized</body></html>",
        )
            .into_response();
    }
    let mut n = ncmec.lock().unwrap();
    let n = &mut *n;
    match uri.path() {
        "/ispws/status" => code(
            0,
            &format!("Remote User : {USER}, Remote Ip : 127.0.0.1"),
            0,
        ),
        "/ispws/submit" => {
            assert!(headers[header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("text/xml"));
            n.submissions += 1;
            let xml = String::from_utf8(body.to_vec()).unwrap();
            if !xml.contains("<report") || n.refuse == Some("submit") {
                return code(4100, "Validation failed", 0);
            }
            n.next_id += 1;
            let id = n.next_id;
            n.reports.insert(id, Report::default());
            code(0, "Success", id)
        }
        "/ispws/upload" => {
            let f = form(&headers, &body);
            let id: u64 = String::from_utf8_lossy(&f["id"]).parse().unwrap();
            let wrong = n.wrong_md5;
            let refuse = n.refuse == Some("upload");
            let r = match open(n, id) {
                Ok(r) => r,
                Err(e) => return *e,
            };
            if refuse {
                return code(4200, "Malformed file submittal", id);
            }
            let content = f["file"].clone();
            let file_id = format!("{:032x}", r.files.len() + 1);
            let hash = if wrong {
                md5(b"other bytes")
            } else {
                md5(&content)
            };
            r.files.push((file_id.clone(), content, hash.clone()));
            let fields = [
                ("reportId", id.to_string()),
                ("fileId", file_id),
                ("hash", hash),
            ];
            reply(
                StatusCode::OK,
                document("reportResponse", 0, "Success", &fields),
            )
        }
        "/ispws/fileinfo" => {
            let xml = String::from_utf8(body.to_vec()).unwrap();
            let id: u64 = element(&xml, "reportId").unwrap().parse().unwrap();
            let file_id = element(&xml, "fileId").unwrap();
            let refuse = n.refuse == Some("fileinfo");
            let r = match open(n, id) {
                Ok(r) => r,
                Err(e) => return *e,
            };
            if !r.files.iter().any(|f| f.0 == file_id) {
                return code(5002, "File does not exist", id);
            }
            if refuse {
                return code(4100, "Validation failed: fileDetails/originalFileHash", id);
            }
            r.fileinfo.push(xml);
            code(0, "Success", id)
        }
        "/ispws/finish" => {
            let id: u64 = String::from_utf8_lossy(&form(&headers, &body)["id"])
                .parse()
                .unwrap();
            let refuse = n.refuse == Some("finish");
            let lose = n.lose_finish_answers > 0;
            let r = match open(n, id) {
                Ok(r) => r,
                Err(e) => return *e,
            };
            if refuse {
                return code(4100, "Validation failed", id);
            }
            r.finished = true;
            let files: String = r
                .files
                .iter()
                .map(|f| format!("<fileId>{}</fileId>", f.0))
                .collect();
            if lose {
                n.lose_finish_answers -= 1;
                return (StatusCode::BAD_GATEWAY, "upstream went away").into_response();
            }
            let fields = [("reportId", id.to_string()), ("files", files)];
            reply(
                StatusCode::OK,
                document("reportDoneResponse", 0, "", &fields),
            )
        }
        "/ispws/retract" => {
            let id: u64 = String::from_utf8_lossy(&form(&headers, &body)["id"])
                .parse()
                .unwrap();
            match open(n, id) {
                Ok(r) => {
                    r.retracted = true;
                    code(0, "Success", id)
                }
                Err(e) => *e,
            }
        }
        _ => (StatusCode::NOT_FOUND, "not found").into_response(),
    }
}

pub async fn server(ncmec: Ncmec) -> (String, Shared) {
    let shared = Arc::new(Mutex::new(ncmec));
    let app = Router::new().fallback(handle).with_state(shared.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/ispws"), shared)
}
